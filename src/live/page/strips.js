// One strip chart per address: probe success rate (top) and the slowest successful probe
// (bottom) per 100 ms over the last minute, with the drill's markers as vertical lines and the
// client-seen outage (first failure → converge) shaded.

const WINDOW_MS = 60_000;
const MIN_SPAN_MS = 15_000;
// detect, announce and converge often fall within a few ms of each other: only the injection
// and the convergence are labelled on the chart (the colours are explained in the strip's
// legend, the times in the "Now" card)
export const MARKER = {
  inject: { color: '#f87171', text: 'inject', label: true },
  detect: { color: '#fbbf24', text: 'detect', label: false },
  announce: { color: '#22d3ee', text: 'announce', label: false },
  converge: { color: '#34d399', text: 'converge', label: true },
  restore: { color: '#cbd5e1', text: 'restore', label: false },
};
const AXIS = { color: '#a3afc7', fontSize: 14 };
const GRID_LINE = { lineStyle: { color: '#25304a' } };

const pad2 = (n) => String(n).padStart(2, '0');
export const clock = (t) => {
  const d = new Date(t);
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
};

/** what the chart shows; `end` = the strip's "now" (its newest point, or the run's clock while active) */
export function stripOption(strip, end) {
  // the last minute, or less while the strip fills up (at least MIN_SPAN_MS)
  const first = strip.buckets.length ? strip.buckets[0].t : end;
  const from = Math.max(end - WINDOW_MS, Math.min(first - 500, end - MIN_SPAN_MS));
  const success = [];
  const latency = [];
  for (const b of strip.buckets) {
    const n = b.ok + b.fail;
    if (!n) continue;
    const pct = Math.round((b.ok / n) * 1000) / 10;
    success.push([b.t, pct]);
    latency.push([b.t, b.latMax === null ? null : Math.round(b.latMax * 10) / 10]);
  }
  const markers = strip.markers.filter((m) => m.t >= from);
  // inject marker of each drill → its offsets for the labels ("detect +4.47 s")
  const injectOf = new Map(markers.filter((m) => m.kind === 'inject').map((m) => [m.run, m.t]));
  const lines = markers.map((m) => {
    const at = injectOf.get(m.run);
    const rel = m.kind !== 'inject' && at !== undefined ? ` +${((m.t - at) / 1000).toFixed(2)} s` : '';
    const text = m.kind === 'inject' ? m.label : `${MARKER[m.kind].text}${rel}`;
    return {
      xAxis: m.t,
      lineStyle: { color: MARKER[m.kind].color, width: m.kind === 'inject' || m.kind === 'converge' ? 2.5 : 2, type: m.kind === 'inject' || m.kind === 'converge' ? 'solid' : 'dashed' },
      label: MARKER[m.kind].label
        ? { show: true, formatter: text, color: MARKER[m.kind].color, fontSize: 14, fontWeight: 700, position: m.kind === 'inject' ? 'insideEndTop' : 'insideEndBottom', distance: [0, 4] }
        : { show: false },
    };
  });
  // the outage as the client saw it: from the drill's first failure after the injection to converge
  const areas = [];
  for (const [run, injectAt] of injectOf) {
    const conv = markers.find((m) => m.run === run && m.kind === 'converge');
    const firstFail = strip.buckets.find((b) => b.t >= injectAt - 100 && b.fail > 0);
    if (!firstFail) continue;
    areas.push([{ xAxis: Math.max(firstFail.t, from) }, { xAxis: conv ? conv.t : end }]);
  }
  const xAxis = (i) => ({
    type: 'time',
    gridIndex: i,
    min: from,
    max: end,
    // echarts picks 1–2 s ticks for a short span: label only the round ten seconds
    axisLabel: { show: i === 1, ...AXIS, formatter: (v) => (Math.round(v) % 10_000 === 0 ? clock(v) : ''), hideOverlap: true },
    axisTick: { show: i === 1 },
    axisLine: { lineStyle: { color: '#3a4767' } },
    splitLine: { show: false },
  });
  return {
    backgroundColor: 'transparent',
    animation: false,
    textStyle: { fontFamily: 'system-ui, sans-serif' },
    grid: [
      { left: 64, right: 18, top: 26, height: 128 },
      { left: 64, right: 18, top: 186, height: 72 },
    ],
    xAxis: [xAxis(0), xAxis(1)],
    yAxis: [
      { type: 'value', gridIndex: 0, min: 0, max: 100, interval: 50, name: 'success %', nameTextStyle: { ...AXIS, align: 'left' }, nameGap: 8, axisLabel: AXIS, splitLine: GRID_LINE },
      { type: 'value', gridIndex: 1, min: 0, name: 'latency ms (max)', nameTextStyle: { ...AXIS, align: 'left' }, nameGap: 8, axisLabel: AXIS, splitNumber: 2, splitLine: GRID_LINE },
    ],
    series: [
      {
        id: 'success',
        name: 'success %',
        type: 'line',
        xAxisIndex: 0,
        yAxisIndex: 0,
        data: success,
        showSymbol: false,
        step: 'end',
        lineStyle: { width: 2.5, color: '#34d399' },
        itemStyle: { color: '#34d399' },
        areaStyle: { color: 'rgba(52,211,153,0.16)' },
        markLine: { silent: true, symbol: 'none', animation: false, data: lines },
        markArea: { silent: true, itemStyle: { color: 'rgba(248,113,113,0.10)' }, data: areas },
      },
      {
        // the failed share: filled from the success line up to 100 %, an outage turns the strip red
        id: 'failed',
        name: 'failed %',
        type: 'line',
        xAxisIndex: 0,
        yAxisIndex: 0,
        data: success,
        showSymbol: false,
        step: 'end',
        lineStyle: { width: 0 },
        itemStyle: { color: '#f87171' },
        areaStyle: { color: 'rgba(248,113,113,0.85)', origin: 'end' },
        z: 1,
      },
      {
        id: 'latency',
        name: 'latency',
        type: 'line',
        xAxisIndex: 1,
        yAxisIndex: 1,
        data: latency,
        showSymbol: false,
        connectNulls: false,
        lineStyle: { width: 2, color: '#60a5fa' },
        itemStyle: { color: '#60a5fa' },
        markLine: { silent: true, symbol: 'none', animation: false, label: { show: false }, data: lines.map((l) => ({ xAxis: l.xAxis, lineStyle: l.lineStyle })) },
      },
    ],
  };
}
