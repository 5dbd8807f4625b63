/**
 * runs.csv: one row per run record of results.json, fixed column order (CSV_COLUMNS), RFC 4180
 * quoting (a field with a comma, a double quote, CR or LF is quoted; quotes are doubled; CRLF
 * line ends). Empty field = no value. Nested figures are flattened into their own columns; maps
 * (node share, errors by kind) become `key=value;key=value` sorted by key. Pure.
 */
import type { LatencyStats, Results, RunRecord } from '../results/types.js';
import { byString } from './format.js';

type Value = string | number | boolean | null | undefined;

const lat = (prefix: string, get: (r: RunRecord) => LatencyStats | undefined): [string, (r: RunRecord) => Value][] =>
  (['p50', 'p90', 'p99', 'p999', 'max'] as const).map((k) => [`${prefix}${k}`, (r: RunRecord) => get(r)?.[k]]);

const kv = (m: Record<string, number> | undefined): string =>
  m ? Object.keys(m).sort(byString).map((k) => `${k}=${m[k]}`).join(';') : '';

/** Column name → how to read it from a run record. The order here is the file's column order. */
export const CSV_COLUMNS: [string, (r: RunRecord, results: Results) => Value][] = [
  ['lab', (_r, res) => res.lab],
  ['strategy', (r) => r.strategy],
  ['target', (r) => r.target],
  ['service', (r) => r.service],
  ['externalTrafficPolicy', (r) => r.externalTrafficPolicy],
  ['drill', (r) => r.drill],
  ['victim', (r) => r.victim],
  ['repeat', (r) => r.repeat],
  ['supported', (r) => r.supported ?? true],
  ['reason', (r) => r.reason],
  ['outageMs', (r) => r.outageMs],
  // false: outageMs is only a lower bound (the outage had not ended when observation stopped)
  ['recovered', (r) => r.recovered],
  ['expectedMinMs', (r) => r.expectedOutageMs?.min],
  ['expectedMaxMs', (r) => r.expectedOutageMs?.max],
  // the run's own judgement, as every report shows it: the band widened by the probe's resolution
  // (bandSlackMs), and never inside when the outage had not ended
  ['withinBand', (r) => (r.recovered === false ? false : r.withinBand)],
  ['bandSlackMs', (r) => r.bandSlackMs],
  // 'host-load': outside by no more than the host stood still (the client's stalls, cpuWaitMs)
  ['outsideReason', (r) => r.outsideReason],
  // false: the fault went in while the probe was still failing
  ['cleanBeforeFault', (r) => r.cleanBeforeFault],
  // failures after a held fault was undone, reported apart from the failover's outage
  ['healOutageMs', (r) => r.healOutage?.outageMs],
  ['healRecovered', (r) => r.healOutage?.recovered],
  ['cpuWaitMs', (r) => r.cpuWait?.ms],
  ['cpuWaitProcess', (r) => r.cpuWait?.process],
  ['expectedBasis', (r) => r.expectedBasis],
  ['detectMs', (r) => r.phases?.detectMs],
  ['announceMs', (r) => r.phases?.announceMs],
  ['convergeMs', (r) => r.phases?.convergeMs],
  ['errors', (r) => r.errors],
  ['probeFailures', (r) => r.probeFailures],
  ['outageBursts', (r) => r.outageBursts],
  ['errorsByKind', (r) => kv(r.errorsByKind)],
  ['resets', (r) => r.resets],
  ['resetsOnVictim', (r) => r.resetsOnVictim],
  ['resetsOnSurvivors', (r) => r.resetsOnSurvivors],
  ['streams', (r) => r.streams],
  ['requests', (r) => r.requests],
  ['throughputRps', (r) => r.throughputRps],
  ...lat('latency_', (r) => r.latencyMs),
  ...lat('before_', (r) => r.latencyByPhaseMs?.before),
  ...lat('during_', (r) => r.latencyByPhaseMs?.during),
  ...lat('after_', (r) => r.latencyByPhaseMs?.after),
  ['nodeShare', (r) => kv(r.nodeShare)],
  ['clientIpPreserved', (r) => r.clientIpPreserved],
  ['internalOutageMs', (r) => r.internalOutageMs],
  ['samples', (r) => r.samples],
  // ids of the fidelity notes that apply (docs/fidelity.md#<id>)
  ['fidelity', (r) => (Array.isArray(r.fidelity) ? r.fidelity.map((f) => f.id).join(' ') : '')],
  ['notes', (r) => (r.notes ?? []).join(' | ')],
];

export function csvField(v: Value): string {
  if (v === null || v === undefined) return '';
  const s = typeof v === 'number' ? (Number.isFinite(v) ? String(v) : '') : String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function renderCsv(results: Results): string {
  const lines = [CSV_COLUMNS.map(([name]) => csvField(name)).join(',')];
  for (const r of results.runs) lines.push(CSV_COLUMNS.map(([, get]) => csvField(get(r, results))).join(','));
  return lines.join('\r\n') + '\r\n';
}
