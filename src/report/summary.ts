/**
 * The short table printed at the end of `npm run lab` (human mode): strategy × target × drill →
 * outage (median), expected band and check, p99, errors; unsupported strategies with their
 * reason; and the path of report.html. Pure except `summaryForDir`, which reads results.json.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Results } from '../results/types.js';
import { buildModel, type Group, type ReportModel } from './model.js';
import { DASH, fmtBand, fmtInt, fmtLat, fmtMs, fmtOutage, fmtPct } from './format.js';
import { DEFAULT_FIDELITY_DOC, fidelitySection } from './tables.js';

function pad(s: string, w: number): string {
  // code points, not UTF-16 units: "—" and "–" are one column each
  const len = [...s].length;
  return len >= w ? s : s + ' '.repeat(w - len);
}

/**
 * ok / OUTSIDE k/n, and beside either how many runs the host could not judge or went in on a path
 * already failing: a run injected on a failing path is named even when it fell inside its band.
 * A baseline: clean, or NOT CLEAN when more than BASELINE_MAX_FAILED_SHARE of its attempts failed.
 */
function checkCell(g: Group): string {
  if (g.drill === 'baseline') return g.baselineUnclean ? `NOT CLEAN ${g.baselineUnclean.n}/${g.runs.length} (${fmtPct(g.baselineUnclean.worstShare)} failed)` : 'clean';
  if (!g.band || !g.judged) return '';
  const unclean = (g.uncleanBefore ? ` (${g.uncleanBefore} unclean before)` : '') + (g.healOpen ? ` (${g.healOpen} heal open)` : '');
  return g.outside ? `OUTSIDE ${g.outside}/${g.judged}${g.outsideHostLoad ? ` (${g.outsideHostLoad} host load)` : ''}${unclean}` : `ok${unclean}`;
}

export function renderSummary(m: ReportModel, reportPath: string): string {
  const r = m.results;
  const headers = ['strategy', 'target', 'drill', 'outage', 'band', 'check', 'p99 ms', 'errors'];
  const rows = m.groups.map((g) => [
    g.strategy,
    g.service ? `${g.target}:${g.service}` : g.target,
    g.drill,
    g.unrecovered ? fmtOutage(g) : g.outage ? fmtMs(g.outage.median) : DASH,
    g.band ? fmtBand(g.band) : DASH,
    checkCell(g),
    fmtLat(g.latency.p99?.median),
    g.errors ? fmtInt(g.errors.median) : DASH,
  ]);
  const widths = headers.map((h, i) => Math.max([...h].length, ...rows.map((row) => [...row[i]!].length)));
  const line = (cells: string[]) => cells.map((x, i) => pad(x, widths[i]!)).join('  ').trimEnd();
  const measured = r.runs.filter((x) => x.supported !== false).length;
  const out = [
    `lab ${r.lab} on ${r.provider.name}${r.provider.emulated ? ' (emulated Talos control plane)' : ''}: ${measured} runs measured, ${r.runs.length - measured} unsupported; medians over repeats`,
    line(headers),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
  ];
  for (const u of m.unsupported) out.push(`unsupported: ${u.strategy} — ${u.reason}`);
  // per run, the ids of the known differences from the real components (the text is in the report, the long form in the doc)
  const fid = fidelitySection(m).rows;
  if (fid.length) {
    out.push(`fidelity notes per run (${DEFAULT_FIDELITY_DOC}#<id>):`);
    for (const f of fid) out.push(`  ${f.strategy} ${f.target} ${f.drill}: ${f.ids.join(', ')}`);
  }
  out.push(`report: ${reportPath}`);
  return out.join('\n') + '\n';
}

/** The summary of the run written to `dir` (null when dir has no readable results.json). */
export function summaryForDir(dir: string): string | null {
  const file = join(resolve(dir), 'results.json');
  if (!existsSync(file)) return null;
  let results: Results;
  try {
    results = JSON.parse(readFileSync(file, 'utf8')) as Results;
    if (!results || !Array.isArray(results.runs) || !results.topology || !results.provider) return null;
  } catch {
    return null;
  }
  return renderSummary(buildModel(results), join(resolve(dir), 'report.html'));
}
