/**
 * Whole-lab benchmark of the sim: each requested lab is run through the CLI exactly as a user runs
 * it (`node scripts/lab.mjs run <lab> [--quick] --provider sim --out <tmp> --json`), timed from
 * start to exit, and compared with the run's own estimate and floor, its targets and the memory it
 * used. Writes the "## Whole-lab runs" section of docs/bench-labs.md (its own markers only; the
 * bring-up section belongs to scripts/bench-labs.ts). The pure part is scripts/lib/whole-labs.ts.
 *
 * Usage (root): node --import tsx scripts/bench-whole-labs.ts [--labs minecraft,smb:quick,smb,enterprise:quick,enterprise] [--no-write] [--keep-out]
 * Exit 0 when every lab met every target, 1 when one did not, 2 on a usage error, 3 without root.
 *
 * Memory: every SAMPLE_EVERY_MS the PSS of every process in the lab's namespaces plus the CLI's
 * process tree, summed; the peak sum is kept. The lab's namespaces are those of the lab instances
 * whose state record (lab.json) names a process of the CLI's tree as owner: a second run of the
 * same lab on the machine (another terminal, a test) is never counted. A process is in a namespace when /proc/<pid>/ns/net is the same inode as
 * /run/netns/<name>, the test `ip netns pids` makes; it is done here in-process so that sampling
 * a 43-namespace lab does not start 43 `ip` processes every 2 s on the machine being measured.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import type { Results } from '../src/results/types.js';
import { stateRoot, type LabMeta } from '../src/state/state.js';
import { readSection, replaceSection } from './lib/bench-doc.js';
import {
  cliArgs,
  countRuns,
  decodeRows,
  inLab,
  mergeRows,
  ownedPrefixes,
  parseLabList,
  parsePlanLine,
  parsePssKib,
  parseStatPpid,
  processTree,
  renderRow,
  renderSection,
  SAMPLE_EVERY_MS,
  verdicts,
  type LabSpec,
  type WholeRow,
} from './lib/whole-labs.js';

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const DOC = join(REPO_ROOT, 'docs', 'bench-labs.md');
/** this script's section of docs/bench-labs.md (scripts/lib/bench-doc.ts) */
const SECTION_ID = 'whole-labs';

const argv = process.argv.slice(2);
const write = !argv.includes('--no-write');
const keepOut = argv.includes('--keep-out');
const li = argv.indexOf('--labs');
const known = new Set(['--labs', '--no-write', '--keep-out']);
for (const [i, a] of argv.entries()) {
  if (a.startsWith('--') && !known.has(a)) usage(`unknown flag ${a}`);
  if (!a.startsWith('--') && argv[i - 1] !== '--labs') usage(`unexpected argument '${a}'`);
}
let specs: LabSpec[];
try {
  specs = parseLabList(li >= 0 ? (argv[li + 1] ?? '') : undefined);
} catch (e) {
  usage((e as Error).message);
}
if (process.getuid?.() !== 0) {
  process.stderr.write(`bench-whole-labs: the sim needs root\n  fix: sudo npm run bench:whole -- ${argv.join(' ')}\n`);
  process.exit(3);
}

function usage(msg: string): never {
  process.stderr.write(`bench-whole-labs: ${msg}\nusage: node --import tsx scripts/bench-whole-labs.ts [--labs minecraft,smb:quick,smb,enterprise:quick,enterprise] [--no-write] [--keep-out]\n`);
  process.exit(2);
}

// ---------------------------------------------------------------------------------------------
// /proc sampling

function netnsNames(): string[] {
  try {
    return readdirSync('/run/netns');
  } catch {
    return [];
  }
}

function nsKey(path: string): string | null {
  try {
    const s = statSync(path);
    return `${s.dev}:${s.ino}`;
  } catch {
    return null;
  }
}

/** Every lab's state record (the CLI's own state directory: same environment, same root). */
function labMetas(): LabMeta[] {
  const root = stateRoot();
  let ids: string[];
  try {
    ids = readdirSync(root);
  } catch {
    return [];
  }
  const metas: LabMeta[] = [];
  for (const id of ids) {
    try {
      metas.push(JSON.parse(readFileSync(join(root, id, 'lab.json'), 'utf8')) as LabMeta);
    } catch {
      /* being written or removed */
    }
  }
  return metas;
}

/**
 * PSS sum (KiB) and process count of the CLI's tree plus every process in its labs' namespaces.
 * `prefixes` collects the CLI's lab instances as they appear (kept after their record is gone,
 * for the leftover check).
 */
function sample(cliPid: number, prefixes: Set<string>): { kib: number; processes: number } {
  const pids = readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number);
  const parentOf = new Map<number, number>();
  for (const pid of pids) {
    try {
      const ppid = parseStatPpid(readFileSync(`/proc/${pid}/stat`, 'utf8'));
      if (ppid !== null) parentOf.set(pid, ppid);
    } catch {
      /* exited */
    }
  }
  const tree = processTree(cliPid, parentOf);
  for (const p of ownedPrefixes(labMetas(), tree)) prefixes.add(p);
  const labNs = new Set<string>();
  for (const name of netnsNames()) {
    if (!inLab(name, prefixes)) continue;
    const k = nsKey(`/run/netns/${name}`);
    if (k) labNs.add(k);
  }
  let kib = 0;
  let processes = 0;
  for (const pid of pids) {
    if (pid === process.pid) continue;
    const mine = tree.has(pid) || (labNs.size > 0 && labNs.has(nsKey(`/proc/${pid}/ns/net`) ?? ''));
    if (!mine) continue;
    try {
      const pss = parsePssKib(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
      if (pss === null) continue;
      kib += pss;
      processes++;
    } catch {
      /* exited */
    }
  }
  return { kib, processes };
}

// ---------------------------------------------------------------------------------------------
// one lab

const machine = `${os.cpus().length} CPUs (${os.cpus()[0]?.model.trim() ?? '?'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM, Linux ${os.release()}, Node ${process.version}`;
const benchCommand = `npm run bench:whole -- --labs ${specs.map((s) => s.spec).join(',')}${write ? '' : ' --no-write'}`;

let stopping: NodeJS.Signals | null = null;
let current: ReturnType<typeof spawn> | null = null;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    // the CLI tears its lab down on the first signal (scripts/lab.mjs); the next lab is not started
    stopping = sig;
    if (current && current.exitCode === null && current.signalCode === null) current.kill(sig);
  });
}

async function benchLab(spec: LabSpec): Promise<WholeRow> {
  const prefixes = new Set<string>();
  const out = mkdtempSync(join(os.tmpdir(), `bench-whole-${spec.spec.replace(/[^a-z0-9]/gi, '-')}-`));
  const args = cliArgs(spec, out);
  const date = new Date().toISOString();
  process.stderr.write(`[bench-whole] ${spec.spec}: node ${args.join(' ')}\n`);
  let stdout = '';
  let stderr = '';
  let peak = { kib: 0, processes: 0 };
  const t0 = performance.now();
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } });
  current = child;
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
    process.stderr.write(d);
  });
  const take = () => {
    if (!child.pid) return;
    const s = sample(child.pid, prefixes);
    if (s.kib > peak.kib) peak = s;
  };
  take();
  const timer = setInterval(take, SAMPLE_EVERY_MS);
  // the clock stops at the CLI's exit; its pipes may still hold the last lines ('close'), unless a
  // process it left behind holds them open: then 2 s is enough for what the CLI wrote itself
  const closed = new Promise<void>((resolve) => {
    child.on('close', () => resolve());
    child.on('exit', () => setTimeout(resolve, 2000).unref());
  });
  const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (c, s) => resolve({ code: c, signal: s }));
  });
  const wallMs = performance.now() - t0;
  clearInterval(timer);
  current = null;
  await closed;

  const plan = parsePlanLine(stderr + '\n' + stdout);
  let results: Results | null = null;
  const file = join(out, 'results.json');
  if (existsSync(file)) {
    try {
      results = JSON.parse(readFileSync(file, 'utf8')) as Results;
    } catch (e) {
      process.stderr.write(`[bench-whole] ${spec.spec}: ${file} does not parse: ${(e as Error).message}\n`);
    }
  }
  const leftover = netnsNames().filter((n) => inLab(n, prefixes));
  if (!prefixes.size) process.stderr.write(`[bench-whole] ${spec.spec}: no lab instance of the CLI was seen in ${stateRoot()}: memory counts the CLI's process tree only\n`);
  if (keepOut) process.stderr.write(`[bench-whole] ${spec.spec}: output kept in ${out}\n`);
  else rmSync(out, { recursive: true, force: true });
  return {
    spec: spec.spec,
    date,
    machine,
    command: benchCommand,
    exitCode: code,
    signal,
    wallMs: Math.round(wallMs),
    estimateMs: results?.estimateMs ?? plan?.estimateMs ?? null,
    floorMs: plan?.floorMs ?? null,
    instances: results?.parallel ?? plan?.instances ?? null,
    runs: results ? countRuns(results.runs) : null,
    peakPssKib: peak.kib,
    peakProcesses: peak.processes,
    leftover,
  };
}

// ---------------------------------------------------------------------------------------------

const rows: WholeRow[] = [];
for (const spec of specs) {
  if (stopping) break;
  const row = await benchLab(spec);
  rows.push(row);
  const v = verdicts(row);
  process.stderr.write(`[bench-whole] ${spec.spec}: ${v.overall}${v.why.length ? ` (${v.why.join('; ')})` : ''}\n${renderRow(row)}\n`);
}

const doc = existsSync(DOC) ? readFileSync(DOC, 'utf8') : null;
const section = renderSection(stopping ? rows : mergeRows(decodeRows(doc && readSection(doc, SECTION_ID)), rows));
process.stdout.write(section + '\n');
if (stopping) {
  process.stderr.write(`[bench-whole] stopped by ${stopping}: ${DOC} not written\n`);
  process.exit(130);
}
if (write) writeFileSync(DOC, replaceSection(doc, SECTION_ID, section));
process.exit(rows.every((r) => verdicts(r).overall === 'PASS') ? 0 : 1);
