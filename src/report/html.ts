/**
 * report.html: one self-contained page (inline CSS, charts as inline SVG from charts.ts; no script,
 * no external resource), so it opens offline, in CI artefacts and with JavaScript disabled. Pure.
 */
import type { ReportModel, Target } from './model.js';
import { DRILL_TEXT, groupsOf, TARGET_TITLE } from './model.js';
import type { Recommendation } from './recommend.js';
import type { Cell, Table } from './tables.js';
import {
  bandsTable,
  baselineTable,
  decisionTable,
  failoverDrills,
  DEFAULT_FIDELITY_DOC,
  failoverTable,
  fidelityHref,
  fidelitySection,
  findingsTable,
  headerFacts,
  HOW_TO_READ,
  latencyTable,
  phaseTable,
  runNotes,
  strategyTable,
  unsupportedTable,
  type ReportOptions,
} from './tables.js';
import { outageChart, phaseChart, shareChart, strategyColors, timelineChart, type Chart } from './charts.js';
import { escapeHtml as e } from './format.js';

const CSS = `
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d1d1f;background:#fff;line-height:1.45}
header{background:#f4f6fa;border-bottom:1px solid #dde3ee;padding:20px 32px}
h1{margin:0 0 8px;font-size:26px}
main{padding:8px 32px 40px;max-width:1400px}
h2{margin-top:36px;border-bottom:2px solid #dde3ee;padding-bottom:4px}
h3{margin-top:28px}
h4{margin:22px 0 6px}
nav{padding:8px 32px;border-bottom:1px solid #eee;font-size:14px}
nav a{margin-right:14px}
.emulated{font-size:15px;background:#fff4d6;border:1px solid #f0d58a;padding:8px 12px;border-radius:6px;display:inline-block}
table{border-collapse:collapse;margin:8px 0 14px;font-size:13px}
th,td{border:1px solid #d6dbe4;padding:4px 8px;vertical-align:top;text-align:left}
th{background:#eef1f6}
td.num{text-align:right;white-space:nowrap}
td.bad{background:#fde2e1;color:#8a1c17;font-weight:600}
td.good{background:#e3f4e6}
table.facts td:first-child{font-weight:600;background:#f4f6fa}
figure{margin:10px 0 18px}
figure svg{max-width:100%;height:auto;display:block}
figcaption{font-size:12px;color:#555}
.drill{font-size:13px;color:#444;margin:0 0 6px}
blockquote{margin:8px 0;padding:6px 12px;border-left:4px solid #c9d3e3;color:#333;background:#f8f9fb}
footer{padding:16px 32px;font-size:12px;color:#666;border-top:1px solid #eee}
`;

function td(x: Cell): string {
  const cls = [x.num ? 'num' : '', x.mark ?? ''].filter(Boolean).join(' ');
  return `<td${cls ? ` class="${cls}"` : ''}>${e(x.text)}</td>`;
}

export function htmlTable(t: Table, cls = ''): string {
  if (!t.rows.length) return '<p><em>none</em></p>';
  return (
    `<table${cls ? ` class="${cls}"` : ''}>\n` +
    (t.headers.some(Boolean) ? `<thead><tr>${t.headers.map((h) => `<th>${e(h)}</th>`).join('')}</tr></thead>\n` : '') +
    '<tbody>\n' +
    t.rows.map((r) => `<tr>${r.map(td).join('')}</tr>`).join('\n') +
    '\n</tbody></table>'
  );
}

function figure(ch: Chart | null, caption: string): string {
  if (!ch) return '';
  return `<figure class="chart" data-chart="${ch.key}">\n${ch.svg}\n<figcaption>${e(caption)}</figcaption>\n</figure>`;
}

/** Chart keys in page order: c1, c2, … */
function keys(): () => string {
  let i = 0;
  return () => `c${++i}`;
}

function targetSection(m: ReportModel, target: Target, colors: Map<string, string>, key: () => string): string {
  const out: string[] = [];
  const T = TARGET_TITLE[target];
  out.push(`<section id="target-${target}">`, `<h2>${e(T)}</h2>`);
  out.push('<h3>Steady state (baseline)</h3>', htmlTable(baselineTable(m, target)));
  out.push(
    figure(
      shareChart(groupsOf(m, target, 'baseline'), key(), `${T}: share of served requests per node (baseline)`),
      'Active-passive shows one node at ~100 %; active-active spreads over several nodes.',
    ),
  );
  const drills = failoverDrills(m, target);
  if (drills.length) {
    out.push('<h3>Failover: outage per drill</h3>', htmlTable(failoverTable(m, target)));
    for (const d of drills) {
      const gs = groupsOf(m, target, d);
      out.push(`<h4 id="${e(`${target}-${d}`)}">${e(d)}</h4>`, `<p class="drill">${e(DRILL_TEXT[d] ?? 'see the lab file')}</p>`);
      out.push(
        figure(
          outageChart(gs, key(), `${T} · ${d}: outage against the expected band`),
          'Bar: median outage over the repeats (red when outside the band); whisker: min–max; grey: the band the configured timers predict.',
        ),
      );
      out.push(
        figure(
          timelineChart(gs, colors, key(), `${T} · ${d}: probes around the injection`),
          'Probe success (top) and probe p99 latency (bottom) in 100 ms buckets, t = 0 at the injection; for each strategy the repeat with the median outage.',
        ),
      );
      out.push(htmlTable(latencyTable(m, target, d)));
    }
    const ph = phaseTable(m, target);
    if (ph.rows.length) {
      out.push('<h3>Detect / announce / converge (after the injection)</h3>');
      out.push(figure(phaseChart(groupsOf(m, target), key(), `${T}: detect / announce / converge`), 'Median time after the injection; a missing bar = not observed.'));
      out.push(htmlTable(ph));
    }
  }
  out.push('</section>');
  return out.filter(Boolean).join('\n');
}

export function renderHtml(m: ReportModel, rec: Recommendation, opts: ReportOptions = {}): string {
  const r = m.results;
  const key = keys();
  const colors = strategyColors(m.strategies.map((s) => s.id));
  const title = `HA strategies compared: lab ${r.lab}`;
  const comps = Object.keys(r.provider.components).sort().map((k) => `${k} ${r.provider.components[k]}`).join(', ');
  const nav = [
    ['how', 'How to read'],
    ['strategies', 'Strategies'],
    ...m.targets.map((t) => [`target-${t}`, TARGET_TITLE[t]]),
    ['recommendation', 'Recommendation'],
    ['bands', 'Bands'],
    ...(fidelitySection(m).rows.length ? [['fidelity', 'Fidelity']] : []),
  ];
  const body: string[] = [];
  body.push('<header>', `<h1>${e(title)}</h1>`);
  if (r.provider.emulated) {
    body.push(
      `<p class="emulated"><strong>emulated Talos control plane</strong> — provider ${e(r.provider.name)}: Talos VIP, kube-vip, MetalLB, KubePrism and the API server are emulated by the lab’s agents; real parts: ${e(comps || 'none recorded')}. These figures are not Talos measurements.</p>`,
    );
  }
  body.push(htmlTable({ headers: ['', ''], rows: headerFacts(m).map(([k, v]) => [{ text: k }, { text: v }]) }, 'facts'));
  for (const note of r.notes ?? []) body.push(`<blockquote>${e(note)}</blockquote>`);
  body.push('</header>');
  body.push(`<nav>${nav.map(([id, t]) => `<a href="#${id}">${e(t!)}</a>`).join('')}</nav>`);
  body.push('<main>');
  body.push('<section id="how"><h2>How to read this report</h2><ul>', ...HOW_TO_READ.map((l) => `<li>${e(l)}</li>`), '</ul></section>');
  body.push('<section id="strategies"><h2>Strategies</h2>', htmlTable(strategyTable(m)));
  if (m.unsupported.length) body.push('<h3>Not measured: unsupported strategy/provider pairs</h3>', htmlTable(unsupportedTable(m)));
  body.push('</section>');
  for (const t of m.targets) body.push(targetSection(m, t, colors, key));

  body.push('<section id="recommendation"><h2>Recommendation</h2>');
  body.push(`<p>Cluster size: <strong>${e(rec.size.cls)}</strong> (${e(rec.size.why)}). Network: <strong>${e(rec.network)}</strong>.</p>`);
  body.push('<ul>', ...rec.article.map((s) => `<li>${e(s)}</li>`), '</ul>');
  if (rec.caveat) body.push(`<blockquote>${e(rec.caveat)}</blockquote>`);
  body.push('<h3>Measured</h3><ul>', ...rec.measured.map((s) => `<li>${e(s)}</li>`), '</ul>');
  body.push('<h3>The article’s decision table against this run</h3>', htmlTable(decisionTable(rec)));
  body.push('<h3>Where the measurement agrees or disagrees with the article</h3>', htmlTable(findingsTable(rec)));
  if (rec.notMeasured.length) body.push(`<p>Not measured in this run: ${e(rec.notMeasured.join('; '))}.</p>`);
  body.push('</section>');

  body.push('<section id="bands"><h2>Expected bands and their basis</h2>', htmlTable(bandsTable(m)), '</section>');
  const fid = fidelitySection(m);
  if (fid.rows.length) {
    const doc = opts.fidelityDoc ?? DEFAULT_FIDELITY_DOC;
    body.push(
      '<section id="fidelity"><h2>Fidelity notes per run</h2>',
      `<p>Where what ran differs from the real components, and the effect on the figures; the long form of each note is in <a href="${e(doc)}">${e(DEFAULT_FIDELITY_DOC)}</a> under its id.</p>`,
      '<table><thead><tr><th>target</th><th>drill</th><th>strategy</th><th>notes</th></tr></thead><tbody>',
      ...fid.rows.map((r) => `<tr><td>${e(r.target)}</td><td>${e(r.drill)}</td><td>${e(r.strategy)}</td><td>${r.ids.map((id) => `<a href="#fidelity-${e(id)}">${e(id)}</a>`).join(', ')}</td></tr>`),
      '</tbody></table>',
      '<dl>',
      ...fid.notes.map((n) => `<dt id="fidelity-${e(n.id)}"><a href="${e(fidelityHref(doc, n.id))}">${e(n.id)}</a></dt><dd>${e(n.text)}</dd>`),
      '</dl></section>',
    );
  }
  const notes = runNotes(m);
  if (notes.length) body.push('<section id="notes"><h2>Run notes</h2><ul>', ...notes.map((n) => `<li>${e(n)}</li>`), '</ul></section>');
  body.push('</main>');
  body.push(`<footer>Generated from results.json (lab ${e(r.lab)}, started ${e(r.startedAt)}). Regenerate with <code>npm run cli -- report &lt;dir&gt;</code>.</footer>`);

  return [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${e(title)}</title>`,
    `<style>${CSS}</style>`,
    '</head>',
    '<body>',
    ...body,
    '</body>',
    '</html>',
    '',
  ].join('\n');
}
