/**
 * The pure part of scripts/bench-whole-labs.ts (a whole `lab run` per lab, timed as a user sees
 * it): which labs and targets, the CLI's arguments, parsing what the CLI and /proc print, counting
 * the runs of a results.json, the verdicts, and the "## Whole-lab runs" section of
 * docs/bench-labs.md. Nothing here reads a file or the clock.
 */
import { fmtDuration } from '../../src/report/format.js';
import type { RunRecord } from '../../src/results/types.js';

// ---------------------------------------------------------------------------------------------
// labs and targets

export interface LabSpec {
  /** how --labs names it: `smb`, `smb:quick` */
  spec: string;
  lab: string;
  quick: boolean;
  /** the whole run, start to exit, must not take longer */
  targetMs: number;
}

/** The benchmark's labs in table order with their targets (minecraft full = what `make lab` runs). */
export const LAB_SPECS: readonly LabSpec[] = [
  { spec: 'minecraft', lab: 'minecraft', quick: false, targetMs: 2 * 60_000 },
  { spec: 'smb:quick', lab: 'smb', quick: true, targetMs: 2.5 * 60_000 },
  { spec: 'smb', lab: 'smb', quick: false, targetMs: 20 * 60_000 },
  { spec: 'enterprise:quick', lab: 'enterprise', quick: true, targetMs: 5 * 60_000 },
  { spec: 'enterprise', lab: 'enterprise', quick: false, targetMs: 30 * 60_000 },
];

/** a run may take at most this many times its plan's floor */
export const FLOOR_FACTOR = 1.5;
/** peak PSS of everything the run started, at most */
export const MEMORY_LIMIT_KIB = 8 * 1024 * 1024;
/** how often memory is sampled */
export const SAMPLE_EVERY_MS = 2000;

/** `--labs a,b:quick` → the specs in the order given (default: all of them); an unknown name lists the valid ones. */
export function parseLabList(arg: string | undefined): LabSpec[] {
  if (arg === undefined) return [...LAB_SPECS];
  const names = arg
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (!names.length) throw new Error(`--labs: expected a comma-separated list of ${LAB_SPECS.map((l) => l.spec).join(', ')}`);
  const out: LabSpec[] = [];
  for (const name of names) {
    const spec = LAB_SPECS.find((l) => l.spec === name);
    if (!spec) throw new Error(`--labs: unknown lab '${name}'; expected one of ${LAB_SPECS.map((l) => l.spec).join(', ')}`);
    if (!out.includes(spec)) out.push(spec);
  }
  return out;
}

/** The arguments after `node`: the CLI as a user runs it (`make lab` passes `--provider sim` too). */
export function cliArgs(spec: LabSpec, outDir: string): string[] {
  return ['scripts/lab.mjs', 'run', spec.lab, ...(spec.quick ? ['--quick'] : []), '--provider', 'sim', '--out', outDir, '--json'];
}

/**
 * The name prefixes (`tlab-<lab>-<hex>`) of the lab instances the CLI under test owns: the state
 * records (src/state/state.ts LabMeta) whose owner process is in the CLI's process tree. Another
 * run of the same lab on the machine at the same time has its own owner and is not counted.
 */
export function ownedPrefixes(metas: readonly { prefix: string; ownerPid: number }[], tree: ReadonlySet<number>): string[] {
  return metas.filter((m) => tree.has(m.ownerPid)).map((m) => m.prefix);
}

/** A namespace of one of these instances: `<prefix>-<host>` (src/providers/runtimes/netns/). */
export function inLab(namespace: string, prefixes: Iterable<string>): boolean {
  for (const p of prefixes) if (namespace.startsWith(`${p}-`)) return true;
  return false;
}

// ---------------------------------------------------------------------------------------------
// parsing what the CLI and /proc print

/** The inverse of fmtDuration (src/report/format.ts): "430 ms", "52.3 s", "110 s", "31 min 14 s" → ms; anything else → null. */
export function parseDuration(text: string): number | null {
  const t = text.trim();
  let m = /^(\d+) min (\d+) s$/.exec(t);
  if (m) return (Number(m[1]) * 60 + Number(m[2])) * 1000;
  m = /^(\d+(?:\.\d+)?) s$/.exec(t);
  if (m) return Math.round(Number(m[1]) * 1000);
  m = /^(-?\d+) ms$/.exec(t);
  if (m) return Number(m[1]);
  return null;
}

export interface PlanLine {
  runs: number;
  strategies: number;
  instances: number;
  estimateMs: number | null;
  floorMs: number | null;
}

/**
 * The last `plan: N runs of S strategies on L lab instances; estimated E (floor F)` line in the
 * CLI's output (src/orchestrator/run.ts; listr2 may put a timestamp and a tag before it).
 */
export function parsePlanLine(output: string): PlanLine | null {
  const re = /plan: (\d+) runs? of (\d+) strateg(?:y|ies) on (\d+) lab instances?; estimated (.+?) \(floor (.+?)\)/g;
  let last: RegExpExecArray | null = null;
  for (let m = re.exec(output); m; m = re.exec(output)) last = m;
  if (!last) return null;
  return { runs: Number(last[1]), strategies: Number(last[2]), instances: Number(last[3]), estimateMs: parseDuration(last[4]!), floorMs: parseDuration(last[5]!) };
}

/** The parent pid from /proc/<pid>/stat. The command name (field 2) may hold spaces and ')' : fields are counted after its last ')'. */
export function parseStatPpid(stat: string): number | null {
  const close = stat.lastIndexOf(')');
  if (close < 0) return null;
  const rest = stat.slice(close + 1).trim().split(/\s+/);
  // rest[0] = state, rest[1] = ppid
  const ppid = Number(rest[1]);
  return Number.isInteger(ppid) ? ppid : null;
}

/** `root` and every process below it, from a pid → parent pid map. */
export function processTree(root: number, parentOf: ReadonlyMap<number, number>): Set<number> {
  const children = new Map<number, number[]>();
  for (const [pid, ppid] of parentOf) {
    const list = children.get(ppid);
    if (list) list.push(pid);
    else children.set(ppid, [pid]);
  }
  const tree = new Set<number>([root]);
  const todo = [root];
  while (todo.length) {
    for (const c of children.get(todo.pop()!) ?? []) {
      if (tree.has(c)) continue;
      tree.add(c);
      todo.push(c);
    }
  }
  return tree;
}

/** `Pss:` of /proc/<pid>/smaps_rollup, in KiB (null when absent: a kernel thread, a process gone). */
export function parsePssKib(smapsRollup: string): number | null {
  const m = /^Pss:\s+(\d+) kB$/m.exec(smapsRollup);
  return m ? Number(m[1]) : null;
}

// ---------------------------------------------------------------------------------------------
// results.json

export interface RunCounts {
  /** measured runs (unsupported ones are not runs) */
  total: number;
  inside: number;
  outside: number;
  /** runs with no band to judge (a baseline) */
  noBand: number;
  /** outage still on when observation stopped */
  unrecovered: number;
}

export function countRuns(runs: readonly Pick<RunRecord, 'supported' | 'withinBand' | 'recovered'>[]): RunCounts {
  const c: RunCounts = { total: 0, inside: 0, outside: 0, noBand: 0, unrecovered: 0 };
  for (const r of runs) {
    if (r.supported === false) continue;
    c.total++;
    if (r.withinBand === true) c.inside++;
    else if (r.withinBand === false) c.outside++;
    else c.noBand++;
    if (r.recovered === false) c.unrecovered++;
  }
  return c;
}

// ---------------------------------------------------------------------------------------------
// a row and its verdicts

export interface WholeRow {
  spec: string;
  /** ISO time the run started */
  date: string;
  /** one line of machine facts */
  machine: string;
  /** the benchmark command that produced the row */
  command: string;
  /** the CLI's exit code (null: killed by `signal`) */
  exitCode: number | null;
  signal?: string | null;
  wallMs: number;
  /** results.json estimateMs, else the plan line's */
  estimateMs: number | null;
  /** from the plan line (results.json does not carry it) */
  floorMs: number | null;
  /** results.json parallel, else the plan line's */
  instances: number | null;
  runs: RunCounts | null;
  peakPssKib: number;
  /** processes counted at the peak */
  peakProcesses: number;
  /** the lab's namespaces still there after the CLI exited */
  leftover: string[];
}

export type Mark = 'PASS' | 'FAIL' | 'n/a';

export interface Verdicts {
  time: Mark;
  floor: Mark;
  memory: Mark;
  /** FAIL when a target failed or cannot be judged, the CLI failed, no results, or namespaces were left */
  overall: 'PASS' | 'FAIL';
  why: string[];
}

export function verdicts(row: WholeRow, targetMs = targetOf(row.spec)): Verdicts {
  const why: string[] = [];
  const time: Mark = row.wallMs <= targetMs ? 'PASS' : 'FAIL';
  if (time === 'FAIL') why.push(`wall time ${fmtDuration(row.wallMs)} > ${fmtDuration(targetMs)}`);
  let floor: Mark = 'n/a';
  if (row.floorMs !== null && row.floorMs > 0) {
    floor = row.wallMs <= FLOOR_FACTOR * row.floorMs ? 'PASS' : 'FAIL';
    if (floor === 'FAIL') why.push(`wall time ${ratio(row.wallMs, row.floorMs)} its floor`);
  } else why.push('no floor (no plan line)');
  const memory: Mark = row.peakPssKib <= MEMORY_LIMIT_KIB ? 'PASS' : 'FAIL';
  if (memory === 'FAIL') why.push(`peak memory ${fmtKib(row.peakPssKib)} > ${fmtKib(MEMORY_LIMIT_KIB)}`);
  if (row.exitCode !== 0) why.push(row.exitCode === null ? `CLI killed by ${row.signal ?? 'a signal'}` : `CLI exit ${row.exitCode}`);
  if (!row.runs) why.push('no results.json');
  if (row.leftover.length) why.push(`${row.leftover.length} namespace(s) left`);
  return { time, floor, memory, overall: why.length ? 'FAIL' : 'PASS', why };
}

export function targetOf(spec: string): number {
  const s = LAB_SPECS.find((l) => l.spec === spec);
  if (!s) throw new Error(`unknown lab '${spec}'`);
  return s.targetMs;
}

// ---------------------------------------------------------------------------------------------
// rendering

export function fmtKib(kib: number): string {
  return kib >= 1024 * 1024 ? `${(kib / (1024 * 1024)).toFixed(2)} GiB` : `${Math.round(kib / 1024)} MiB`;
}

/** wall/floor: "1.23×" */
export function ratio(wallMs: number, floorMs: number | null): string {
  return floorMs && floorMs > 0 ? `${(wallMs / floorMs).toFixed(2)}×` : '—';
}

const dur = (ms: number | null) => (ms === null ? '—' : fmtDuration(ms));

export function renderRow(row: WholeRow): string {
  const v = verdicts(row);
  const r = row.runs;
  const notes = r ? [...(r.outside ? [`${r.outside} outside`] : []), ...(r.noBand ? [`${r.noBand} without band`] : [])] : [];
  const band = r ? `${r.inside} / ${r.total}${notes.length ? ` (${notes.join(', ')})` : ''}` : '—';
  const mark = (m: Mark, text: string) => (m === 'n/a' ? 'n/a' : `${text} ${m}`);
  const overall = v.overall === 'PASS' ? 'PASS' : `FAIL: ${v.why.join('; ')}`;
  return `| ${row.spec} | ${fmtDuration(row.wallMs)} | ${dur(row.estimateMs)} | ${dur(row.floorMs)} | ${ratio(row.wallMs, row.floorMs)} | ${row.instances ?? '—'} | ${band} | ${r ? r.unrecovered : '—'} | ${fmtKib(row.peakPssKib)} (${row.peakProcesses} proc.) | ${mark(v.time, `≤ ${fmtDuration(targetOf(row.spec))}`)} | ${mark(v.floor, `≤ ${FLOOR_FACTOR}×`)} | ${mark(v.memory, `≤ ${fmtKib(MEMORY_LIMIT_KIB)}`)} | ${overall} | ${row.date.slice(0, 16).replace('T', ' ')} UTC |`;
}

/** Fresh rows replace the stored ones of the same lab; the result is in table order. */
export function mergeRows(stored: readonly WholeRow[], fresh: readonly WholeRow[]): WholeRow[] {
  const bySpec = new Map(stored.map((r) => [r.spec, r]));
  for (const r of fresh) bySpec.set(r.spec, r);
  return LAB_SPECS.flatMap((l) => (bySpec.has(l.spec) ? [bySpec.get(l.spec)!] : []));
}

const ROWS_TAG = 'bench-whole-labs:rows';

/**
 * The rows as JSON inside an HTML comment, so a run of some labs keeps the others' rows. `--`
 * may not appear in a comment: in JSON it can only be inside a string, where `-\u002d` means the same.
 */
export function encodeRows(rows: readonly WholeRow[]): string {
  return `<!-- ${ROWS_TAG} ${JSON.stringify(rows).replaceAll('--', '-\\u002d')} -->`;
}

export function decodeRows(section: string | null): WholeRow[] {
  if (!section) return [];
  const at = section.indexOf(`<!-- ${ROWS_TAG} `);
  if (at < 0) return [];
  const end = section.indexOf(' -->', at);
  if (end < 0) return [];
  try {
    const rows: unknown = JSON.parse(section.slice(at + ROWS_TAG.length + 6, end));
    return Array.isArray(rows) ? (rows as WholeRow[]).filter((r) => LAB_SPECS.some((l) => l.spec === r?.spec)) : [];
  } catch {
    return [];
  }
}

export function renderSection(rows: readonly WholeRow[]): string {
  const machines = [...new Set(rows.map((r) => r.machine))];
  const commands = rows.map((r) => `- ${r.spec}: \`${r.command}\` → \`node ${cliArgs(LAB_SPECS.find((l) => l.spec === r.spec)!, '<tmp>').join(' ')}\``);
  return `## Whole-lab runs

Produced by \`sudo npm run bench:whole -- --labs <list>\` (\`scripts/bench-whole-labs.ts\`, root; \`--labs\` takes
${LAB_SPECS.map((l) => `\`${l.spec}\``).join(', ')}, default all; \`--no-write\` prints without writing this file).
Each lab is one \`lab run\` through the CLI a user runs, from start to exit: bring-up of every lab instance,
every strategy × drill, results.json and the reports, teardown. Estimate and floor are the run's own
(the \`plan:\` line; results.json \`estimateMs\`); instances = results.json \`parallel\`. "Inside band" counts
runs whose outage fell in their expected band (\`withinBand\`), out of the measured runs; unrecovered =
runs whose outage had not ended when observation stopped. Peak memory = the largest sum, sampled every
${SAMPLE_EVERY_MS / 1000} s, of the proportional set size (PSS, \`/proc/<pid>/smaps_rollup\`) of every process in
the namespaces of the lab instances the CLI owns (its state records' \`tlab-<lab>-<id>\`; another run
of the same lab at the same time is not counted) and in the CLI's process tree.

Targets: ${LAB_SPECS.map((l) => `${l.spec} ≤ ${fmtDuration(l.targetMs)}`).join(', ')}; each ≤ ${FLOOR_FACTOR} × its floor;
peak memory ≤ ${fmtKib(MEMORY_LIMIT_KIB)}. Rows from earlier runs of the script stay until their lab is run again.

| lab | wall time | estimate | floor | wall/floor | instances | runs inside band / total | unrecovered | peak memory (PSS) | time target | ≤ ${FLOOR_FACTOR} × floor | memory | verdict | date |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
${rows.map(renderRow).join('\n')}

**Machine:** ${machines.join(' / ') || '—'}.

Commands (benchmark → the CLI it ran):
${commands.join('\n')}

${encodeRows(rows)}`;
}
