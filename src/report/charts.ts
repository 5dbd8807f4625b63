/**
 * Charts as inline SVG, rendered server-side by Apache ECharts (`init(null, null, {renderer:
 * 'svg', ssr: true})` + `renderToSVGString()`, echarts 5 "server-side rendering" docs). No
 * script, no CDN: the HTML report opens offline and shows its charts with JavaScript off.
 *
 * Determinism: zrender numbers every SSR painter (`zr0`, `zr1`, …) and its CSS classes with
 * process-wide counters (zrender/lib/svg/Painter.js `svgId`, svg/cssClassId.js), so the same chart
 * rendered twice in one process differs. `renumber` rewrites those ids to the chart's own key in
 * order of appearance: the same results give the same bytes, and ids stay unique in one page.
 */
import { createRequire } from 'node:module';
import type { Group } from './model.js';
import { fmtMs, fmtPct } from './format.js';

// The package's ESM typings (`export =` in index.d.ts, extension-less re-exports in core.d.ts) do
// not resolve under NodeNext; its CommonJS entry (dist/echarts.js, the one the echarts SSR docs
// use from Node) does, typed with the package's own declarations.
type ECharts = typeof import('echarts');
const echarts = createRequire(import.meta.url)('echarts') as ECharts;

export const PALETTE = ['#5470c6', '#91cc75', '#fac858', '#ee6666', '#73c0de', '#3ba272', '#fc8452', '#9a60b4', '#ea7ccc'];
const IN_BAND = '#3b7dd8';
const OUT_OF_BAND = '#d9534f';
const NO_BAND = '#8a8a8a';
const WIDTH = 900;
const TIMELINE_WIDTH = 1000;
const FONT = { fontFamily: 'sans-serif', fontSize: 12 };

export interface Chart {
  /** stable id inside the page, e.g. `c7` */
  key: string;
  title: string;
  svg: string;
}

/** ids from zrender's global counters → `<key>-…`, classes numbered in order of appearance */
export function renumber(svg: string, key: string): string {
  const cls = new Map<string, number>();
  return svg
    .replace(/\bzr\d+-cls-\d+\b/g, (m) => {
      if (!cls.has(m)) cls.set(m, cls.size);
      return `${key}-cls-${cls.get(m)}`;
    })
    .replace(/\bzr\d+-/g, `${key}-`);
}

export function renderSvg(option: Record<string, unknown>, width: number, height: number, key: string): string {
  const chart = echarts.init(null, null, { renderer: 'svg', ssr: true, width, height });
  try {
    chart.setOption({ animation: false, textStyle: FONT, ...option });
    return renumber(chart.renderToSVGString(), key);
  } finally {
    chart.dispose();
  }
}

/** Colour per strategy, in the report's strategy order (the same in every chart). */
export function strategyColors(strategies: string[]): Map<string, string> {
  return new Map(strategies.map((s, i) => [s, PALETTE[i % PALETTE.length]!]));
}

const secs = (ms: number) => Math.round(ms) / 1000;

/** a row label short enough for a chart axis: "strategy" or "strategy · service" */
function chartLabel(g: Group): string {
  return g.service ? `${g.strategy} · ${g.service}` : g.strategy;
}

/**
 * Probe success and latency over time around the injection (t = 0), one line per strategy (its
 * representative repeat: the median outage), from run.timeline.
 */
export function timelineChart(groups: Group[], colors: Map<string, string>, key: string, title: string): Chart | null {
  const withData = groups.filter((g) => g.representative.timeline?.length);
  if (!withData.length) return null;
  // the strategy alone names a line unless one strategy has several lines (one per Service)
  const unique = new Set(withData.map((g) => g.strategy)).size === withData.length;
  const name = (g: Group) => (unique ? g.strategy : chartLabel(g));
  const success = withData.map((g) => ({
    name: name(g),
    type: 'line',
    xAxisIndex: 0,
    yAxisIndex: 0,
    showSymbol: false,
    step: 'end',
    lineStyle: { width: 1.5 },
    color: colors.get(g.strategy),
    data: g.representative.timeline!.filter((b) => b.ok + b.failed > 0).map((b) => [secs(b.tMs), Math.round((b.ok / (b.ok + b.failed)) * 1000) / 10]),
    markLine: { silent: true, symbol: 'none', label: { formatter: 'injection', position: 'insideEndTop' }, lineStyle: { color: '#333', type: 'dashed' }, data: [{ xAxis: 0 }] },
  }));
  const latency = withData.map((g) => ({
    name: name(g),
    type: 'line',
    xAxisIndex: 1,
    yAxisIndex: 1,
    showSymbol: false,
    connectNulls: false,
    lineStyle: { width: 1 },
    color: colors.get(g.strategy),
    data: g.representative.timeline!.map((b) => [secs(b.tMs), b.p99Ms === null || b.p99Ms === undefined ? '-' : b.p99Ms]),
    markLine: { silent: true, symbol: 'none', label: { show: false }, lineStyle: { color: '#333', type: 'dashed' }, data: [{ xAxis: 0 }] },
  }));
  const xs = withData.flatMap((g) => g.representative.timeline!.map((b) => secs(b.tMs)));
  const xMin = Math.floor(Math.min(...xs));
  const xMax = Math.ceil(Math.max(...xs));
  const xAxis = (i: number) => ({ type: 'value', gridIndex: i, min: xMin, max: xMax, name: i === 1 ? 's after injection' : '', nameLocation: 'middle', nameGap: 24, axisLabel: { show: i === 1 } });
  const height = 440;
  const svg = renderSvg(
    {
      title: { text: title, left: 'center', textStyle: { fontSize: 14 } },
      // vertical legend: SSR measures text only approximately, a horizontal one can overlap
      legend: { orient: 'vertical', left: TIMELINE_WIDTH - 270, top: 60, itemGap: 12, data: withData.map(name) },
      grid: [
        { left: 70, right: 300, top: 60, height: 170 },
        { left: 70, right: 300, top: 260, height: 130 },
      ],
      xAxis: [xAxis(0), xAxis(1)],
      yAxis: [
        { type: 'value', gridIndex: 0, min: 0, max: 100, name: 'probe success %', nameLocation: 'middle', nameGap: 45 },
        { type: 'value', gridIndex: 1, name: 'probe p99 ms', nameLocation: 'middle', nameGap: 45 },
      ],
      series: [...success, ...latency],
    },
    TIMELINE_WIDTH,
    height,
    key,
  );
  return { key, title, svg };
}

/**
 * Outage per strategy for one drill: the measured median (bar, red when outside the expected
 * band), min–max over repeats (whisker), and the band the timers predict (grey range behind).
 */
export function outageChart(groups: Group[], key: string, title: string): Chart | null {
  const gs = groups.filter((g) => g.outage || g.band);
  if (!gs.length) return null;
  const labels = gs.map(chartLabel);
  const color = (g: Group) => (!g.band || !g.outage ? NO_BAND : g.medianOutside ? OUT_OF_BAND : IN_BAND);
  const height = 90 + 44 * gs.length;
  const svg = renderSvg(
    {
      title: { text: title, left: 'center', textStyle: { fontSize: 14 } },
      legend: { top: 26, itemGap: 28, data: ['expected band', 'measured median', 'min–max'] },
      grid: { left: 300, right: 170, top: 60, bottom: 40 },
      xAxis: { type: 'value', name: 'outage (s)', nameLocation: 'middle', nameGap: 26, min: 0 },
      yAxis: { type: 'category', data: labels, inverse: true, axisLabel: { width: 280, overflow: 'truncate' } },
      series: [
        { name: 'band-start', type: 'bar', stack: 'band', silent: true, barWidth: '70%', itemStyle: { color: 'rgba(0,0,0,0)' }, data: gs.map((g) => (g.band ? secs(g.band.min) : '-')) },
        { name: 'expected band', type: 'bar', stack: 'band', silent: true, barWidth: '70%', color: 'rgba(110,110,110,0.28)', data: gs.map((g) => (g.band ? secs(g.band.max - g.band.min) : '-')) },
        {
          name: 'measured median',
          type: 'bar',
          barGap: '-100%',
          barWidth: '34%',
          color: IN_BAND,
          z: 3,
          data: gs.map((g) => ({ value: g.outage ? secs(g.outage.median) : '-', itemStyle: { color: color(g) } })),
        },
        {
          // whisker min–max, and the figure written right of everything drawn on the row
          name: 'min–max',
          type: 'custom',
          z: 4,
          color: '#222',
          data: gs.map((g, i) => [g.outage ? secs(g.outage.min) : '-', g.outage ? secs(g.outage.max) : '-', i, secs(Math.max(g.outage?.max ?? 0, g.band?.max ?? 0))]),
          renderItem: (params: { dataIndex: number }, api: { value(i: number): number; coord(v: [number, number]): [number, number] }) => {
            const g = gs[params.dataIndex]!;
            const row = api.value(2);
            const lo = api.value(0);
            const hi = api.value(1);
            const right = api.coord([api.value(3), row]);
            const style = { stroke: '#222', lineWidth: 1.5 };
            const cap = 7;
            const children: Record<string, unknown>[] = [];
            if (Number.isFinite(lo) && Number.isFinite(hi)) {
              const a = api.coord([lo, row]);
              const b = api.coord([hi, row]);
              children.push(
                { type: 'line', shape: { x1: a[0], y1: a[1], x2: b[0], y2: b[1] }, style },
                { type: 'line', shape: { x1: a[0], y1: a[1] - cap, x2: a[0], y2: a[1] + cap }, style },
                { type: 'line', shape: { x1: b[0], y1: b[1] - cap, x2: b[0], y2: b[1] + cap }, style },
              );
            }
            const text = g.outage ? `${fmtMs(g.outage.median)}${g.medianOutside ? ' — outside the band' : ''}` : 'no outage measured';
            children.push({ type: 'text', x: right[0] + 8, y: right[1], style: { text, fill: g.medianOutside ? OUT_OF_BAND : '#222', font: '12px sans-serif', verticalAlign: 'middle' } });
            return { type: 'group', children };
          },
        },
      ],
    },
    WIDTH,
    height,
    key,
  );
  return { key, title, svg };
}

/** Per-node share of served requests (baseline), stacked to 100 % per strategy. */
export function shareChart(groups: Group[], key: string, title: string): Chart | null {
  const gs = groups.filter((g) => g.nodeShare.length);
  if (!gs.length) return null;
  const nodes = [...new Set(gs.flatMap((g) => g.nodeShare.map(([n]) => n)))].sort();
  const height = 90 + 40 * gs.length;
  const svg = renderSvg(
    {
      title: { text: title, left: 'center', textStyle: { fontSize: 14 } },
      legend: { top: 26, itemGap: 24, data: nodes },
      color: PALETTE,
      grid: { left: 300, right: 30, top: 60, bottom: 40 },
      xAxis: { type: 'value', min: 0, max: 100, name: 'share of served requests (%)', nameLocation: 'middle', nameGap: 26 },
      yAxis: { type: 'category', data: gs.map(chartLabel), inverse: true, axisLabel: { width: 280, overflow: 'truncate' } },
      series: nodes.map((n) => ({
        name: n,
        type: 'bar',
        stack: 'share',
        barWidth: '60%',
        data: gs.map((g) => Math.round((g.nodeShare.find(([x]) => x === n)?.[1] ?? 0) * 1000) / 10),
        label: { show: true, formatter: (p: { value: number }) => (p.value >= 8 ? fmtPct(p.value / 100) : '') },
      })),
    },
    WIDTH,
    height,
    key,
  );
  return { key, title, svg };
}

/** detect / announce / converge (median, s after the injection) per drill × strategy. */
export function phaseChart(groups: Group[], key: string, title: string): Chart | null {
  const gs = groups.filter((g) => g.drill !== 'baseline' && (g.phases.detect || g.phases.announce || g.phases.converge));
  if (!gs.length) return null;
  const phases = [
    ['detect', (g: Group) => g.phases.detect],
    ['announce', (g: Group) => g.phases.announce],
    ['converge', (g: Group) => g.phases.converge],
  ] as const;
  const height = 90 + 48 * gs.length;
  const svg = renderSvg(
    {
      title: { text: title, left: 'center', textStyle: { fontSize: 14 } },
      legend: { top: 26, itemGap: 24, data: phases.map(([n]) => n) },
      color: ['#fac858', '#73c0de', '#3ba272'],
      grid: { left: 350, right: 70, top: 60, bottom: 40 },
      xAxis: { type: 'value', min: 0, name: 's after injection (median)', nameLocation: 'middle', nameGap: 26 },
      yAxis: { type: 'category', data: gs.map((g) => `${g.drill} · ${chartLabel(g)}`), inverse: true, axisLabel: { width: 330, overflow: 'truncate' } },
      series: phases.map(([name, f]) => ({
        name,
        type: 'bar',
        barGap: '10%',
        data: gs.map((g) => {
          const s = f(g);
          return s ? secs(s.median) : '-';
        }),
        label: { show: true, position: 'right', fontSize: 10, formatter: (p: { value: number }) => fmtMs(p.value * 1000) },
      })),
    },
    WIDTH,
    height,
    key,
  );
  return { key, title, svg };
}
