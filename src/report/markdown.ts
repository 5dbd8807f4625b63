/** report.md: the tables a person pastes in a ticket (charts are in report.html). Pure. */
import type { ReportModel } from './model.js';
import { DRILL_TEXT, TARGET_TITLE } from './model.js';
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
import { mdText } from './format.js';

function cell(x: Cell): string {
  const t = mdText(x.text);
  return x.mark === 'bad' ? `**${t}**` : t;
}

export function mdTable(t: Table): string {
  if (!t.rows.length) return '_none_\n';
  const head = `| ${t.headers.map(mdText).join(' | ')} |`;
  const sep = `|${t.headers.map((_, i) => (t.rows.some((r) => r[i]?.num) ? ' ---: ' : ' --- ')).join('|')}|`;
  const rows = t.rows.map((r) => `| ${r.map(cell).join(' | ')} |`);
  return [head, sep, ...rows].join('\n') + '\n';
}

export function renderMarkdown(m: ReportModel, rec: Recommendation, opts: ReportOptions = {}): string {
  const r = m.results;
  const out: string[] = [];
  const p = (s = '') => out.push(s);

  p(`# HA strategies compared: lab ${mdText(r.lab)}`);
  p();
  if (r.provider.emulated) {
    const comps = Object.keys(r.provider.components).sort().map((k) => `${mdText(k)} ${mdText(r.provider.components[k]!)}`).join(', ');
    p(`**emulated Talos control plane** — provider \`${r.provider.name}\`: Talos VIP, kube-vip, MetalLB, KubePrism and the API server are emulated by the lab’s agents; real parts: ${comps || 'none recorded'}. These figures are not Talos measurements.`);
    p();
  }
  p(mdTable({ headers: ['', ''], rows: headerFacts(m).map(([k, v]) => [{ text: k }, { text: v }]) }));
  for (const note of r.notes ?? []) p(`> ${mdText(note)}\n`);

  p('## How to read this report');
  p();
  for (const line of HOW_TO_READ) p(`- ${mdText(line)}`);
  p('- Charts (timelines, outage against band, node share, phases) are in report.html next to this file.');
  p();

  p('## Strategies');
  p();
  p(mdTable(strategyTable(m)));
  if (m.unsupported.length) {
    p('### Not measured: unsupported strategy/provider pairs');
    p();
    p(mdTable(unsupportedTable(m)));
  }

  for (const target of m.targets) {
    p(`## ${TARGET_TITLE[target]}`);
    p();
    p('### Steady state (baseline)');
    p();
    p(mdTable(baselineTable(m, target)));
    const drills = failoverDrills(m, target);
    if (drills.length) {
      p('### Failover: outage per drill');
      p();
      p(mdTable(failoverTable(m, target)));
      for (const d of drills) p(`- **${mdText(d)}**: ${mdText(DRILL_TEXT[d] ?? 'see the lab file')}`);
      p();
      p('### Latency and throughput around the injection');
      p();
      p(mdTable(latencyTable(m, target)));
      const ph = phaseTable(m, target);
      if (ph.rows.length) {
        p('### Detect / announce / converge (after the injection)');
        p();
        p(mdTable(ph));
      }
    }
  }

  p('## Recommendation');
  p();
  p(`Cluster size: **${rec.size.cls}** (${mdText(rec.size.why)}). Network: **${mdText(rec.network)}**.`);
  p();
  for (const s of rec.article) p(`- ${mdText(s)}`);
  p();
  if (rec.caveat) {
    p(`> ${mdText(rec.caveat)}`);
    p();
  }
  p('### Measured');
  p();
  for (const s of rec.measured) p(`- ${mdText(s)}`);
  p();
  p('### The article’s decision table against this run');
  p();
  p(mdTable(decisionTable(rec)));
  p('### Where the measurement agrees or disagrees with the article');
  p();
  p(mdTable(findingsTable(rec)));
  if (rec.notMeasured.length) {
    p(`Not measured in this run: ${rec.notMeasured.map(mdText).join('; ')}.`);
    p();
  }

  const bands = bandsTable(m);
  if (bands.rows.length) {
    p('## Expected bands and their basis');
    p();
    p(mdTable(bands));
  }
  const fid = fidelitySection(m);
  if (fid.rows.length) {
    const doc = opts.fidelityDoc ?? DEFAULT_FIDELITY_DOC;
    p('## Fidelity notes per run');
    p();
    p(`Where what ran differs from the real components, and the effect on the figures; the long form of each note is in [${mdText(DEFAULT_FIDELITY_DOC)}](${doc}) under its id.`);
    p();
    p('| target | drill | strategy | notes |');
    p('| --- | --- | --- | --- |');
    for (const r of fid.rows) p(`| ${r.target} | ${mdText(r.drill)} | ${mdText(r.strategy)} | ${r.ids.map((id) => `[${mdText(id)}](${fidelityHref(doc, id)})`).join(', ')} |`);
    p();
    for (const n of fid.notes) p(`- **${mdText(n.id)}**: ${mdText(n.text)}`);
    p();
  }
  const notes = runNotes(m);
  if (notes.length) {
    p('## Run notes');
    p();
    for (const n of notes) p(`- ${mdText(n)}`);
    p();
  }
  return out.join('\n').replace(/\n{3,}/g, '\n\n').trimEnd() + '\n';
}
