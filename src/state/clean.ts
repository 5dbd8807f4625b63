/**
 * Remove what a lab created, from its state directory alone (so it works after the orchestrator
 * was SIGKILLed, and without the lab or topology file): every recorded resource, newest first,
 * then a sweep by name prefix for whatever a kill between "record" and "create" left unrecorded.
 *
 *  - pid records: SIGTERM the process group, then SIGKILL — only while /proc/<pid>/stat still shows
 *    the recorded start time, so a reused pid is never signalled;
 *  - netns records: the processes inside (`ip netns pids`) are stopped, then `ip netns del`;
 *  - container / network / image records: removed through dockerode, only when Docker answers;
 *  - file / dir records: removed (never `/`, the home directory or an ancestor of the cwd);
 *  - sweep: namespaces named `<prefix>` or `<prefix>-…` (`ip netns list`) and their processes;
 *    containers and networks whose name starts with the prefix, when Docker was used.
 *
 * `lab clean` with no id cleans the stale labs (owner process dead and status not `up`); `--all`
 * every lab in the state directory plus `tlab-*` namespaces no lab there owns. A lab is named by
 * its id, its prefix, or its lab name when exactly one lab of that name exists (resolveLabRef).
 */
import { existsSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { resolve, sep } from 'node:path';
import { LabState, stateRoot, type LabMeta, type ResourceRecord } from './state.js';
import { isAlive, pidStartTime, procStat, run, sleep } from '../util/proc.js';
import { UsageError } from '../util/errors.js';

/** Every sim/docker object of a lab starts with this (src/orchestrator/ids.ts). */
export const LAB_PREFIX_ROOT = 'tlab-';

export interface LabListing {
  id: string;
  prefix: string;
  lab: string;
  provider: string;
  status: LabMeta['status'] | 'unknown';
  createdAt: string;
  ownerPid: number;
  ownerAlive: boolean;
  /** owner dead and status not `up`: a crashed or killed run whose leftovers `lab clean` removes */
  stale: boolean;
  dir: string;
  resources: number;
}

export interface LabCleanResult {
  id: string;
  prefix: string;
  /** human lines: what was removed */
  removed: string[];
  /** what was deliberately left alone, and why */
  skipped: string[];
  errors: string[];
  /** the state directory was removed (only when there were no errors) */
  forgotten: boolean;
}

export interface CleanReport {
  labs: LabCleanResult[];
  /** namespaces swept that no lab in the state directory owned (`--all`) */
  orphans: string[];
  errors: string[];
}

// ---------------------------------------------------------------------------------------------
// listing

function readMeta(s: LabState): LabMeta | null {
  try {
    return s.meta();
  } catch {
    return null; // torn or unreadable lab.json
  }
}

/** `<short>-<hex>` → `tlab-<short>-<hex>` (src/orchestrator/ids.ts) when lab.json is unreadable */
function fallbackPrefix(id: string): string {
  return `${LAB_PREFIX_ROOT}${id}`;
}

export function listLabStates(root = stateRoot()): LabListing[] {
  return LabState.list(root).map((s) => {
    const m = readMeta(s);
    const ownerAlive = m ? isAlive(m.ownerPid) && m.ownerPid !== 0 : false;
    const status = m?.status ?? 'unknown';
    return {
      id: s.id,
      prefix: m?.prefix ?? fallbackPrefix(s.id),
      lab: m?.lab ?? '?',
      provider: m?.provider ?? '?',
      status,
      createdAt: m?.createdAt ?? '',
      ownerPid: m?.ownerPid ?? 0,
      ownerAlive,
      stale: !ownerAlive && status !== 'up',
      dir: s.dir,
      resources: s.resources().length,
    };
  });
}

/**
 * The id a user's word means: an id or prefix as is; else a lab NAME (`lab down smb`) when exactly
 * one lab of that name is in the state directory. Several of that name → UsageError listing their
 * ids; nothing matches → null (the caller says there is no such lab).
 */
export function resolveLabRef(ref: string, verb: string, root = stateRoot()): string | null {
  const listing = listLabStates(root);
  const exact = listing.find((l) => l.id === ref) ?? listing.find((l) => l.prefix === ref);
  if (exact) return exact.id;
  const named = listing.filter((l) => l.lab === ref);
  if (named.length === 1) return named[0]!.id;
  if (named.length > 1) {
    const ids = named.map((l) => `${l.id} (${l.stale ? `${l.status}, stale` : l.status}, created ${l.createdAt || '?'})`);
    throw new UsageError(`${named.length} labs named '${ref}' in ${root}: ${ids.join(', ')}; expected one: say which with \`lab ${verb} <id>\``);
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// processes

/** The process group of a pid (field 5 of /proc/<pid>/stat), null when gone. */
export function processGroup(pid: number): number | null {
  const f = procStat(pid);
  return f ? Number(f[2]) : null;
}

export type KillOutcome = 'killed' | 'gone' | 'start-time-mismatch' | 'no-start-time' | 'survived';

/**
 * Stop a recorded process: SIGTERM (its group when it leads one), wait up to graceMs, then SIGKILL.
 * Acts only while the pid still has the recorded start time; a pid reused by another process is
 * left alone ('start-time-mismatch'), and so is a record without a start time.
 */
export async function killRecordedPid(pid: number, startTime: number | null | undefined, graceMs = 3000): Promise<KillOutcome> {
  if (!Number.isInteger(pid) || pid <= 1) return 'no-start-time';
  if (startTime === null || startTime === undefined) return 'no-start-time';
  const same = () => pidStartTime(pid) === startTime && isAlive(pid);
  const first = pidStartTime(pid);
  if (first === null || !isAlive(pid)) return 'gone';
  if (first !== startTime) return 'start-time-mismatch';
  const signal = (sig: NodeJS.Signals) => {
    if (!same()) return;
    const target = processGroup(pid) === pid ? -pid : pid;
    try {
      process.kill(target, sig);
    } catch {
      /* gone meanwhile */
    }
  };
  signal('SIGTERM');
  const soft = Date.now() + graceMs;
  while (Date.now() < soft) {
    if (!same()) return 'killed';
    await sleep(20);
  }
  signal('SIGKILL');
  const hard = Date.now() + 2000;
  while (Date.now() < hard) {
    if (!same()) return 'killed';
    await sleep(10);
  }
  return 'survived';
}

/** Stop processes found inside a namespace of ours (no start-time record: they were just listed). */
async function killPids(pids: number[], graceMs = 2000): Promise<number[]> {
  const self = process.pid;
  const live = pids.filter((p) => p > 1 && p !== self && isAlive(p));
  for (const p of live) {
    try {
      process.kill(p, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
  const soft = Date.now() + graceMs;
  while (Date.now() < soft && live.some(isAlive)) await sleep(20);
  for (const p of live.filter(isAlive)) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  const hard = Date.now() + 2000;
  while (Date.now() < hard && live.some(isAlive)) await sleep(10);
  return live.filter(isAlive);
}

// ---------------------------------------------------------------------------------------------
// namespaces

export async function listNetns(): Promise<string[]> {
  const r = await run('ip', ['netns', 'list'], { reject: false, timeoutMs: 10_000 }).catch(() => null);
  if (!r || r.exitCode !== 0) return [];
  // "name (id: 3)" or "name"
  return r.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter(Boolean);
}

export function ownsNamespace(prefix: string, ns: string): boolean {
  if (!prefix) return false;
  return ns === prefix || (ns.startsWith(prefix) && /^[-_.]/.test(ns.slice(prefix.length)));
}

async function netnsPids(ns: string): Promise<number[]> {
  const r = await run('ip', ['netns', 'pids', ns], { reject: false, timeoutMs: 10_000 }).catch(() => null);
  if (!r || r.exitCode !== 0) return [];
  return r.stdout
    .split(/\s+/)
    .map(Number)
    .filter((n) => Number.isInteger(n) && n > 0);
}

async function removeNetns(ns: string, out: LabCleanResult): Promise<void> {
  const left = await killPids(await netnsPids(ns));
  if (left.length) out.errors.push(`netns ${ns}: processes ${left.join(', ')} did not exit`);
  const r = await run('ip', ['netns', 'del', ns], { reject: false, timeoutMs: 10_000 }).catch((e: Error) => ({ exitCode: -1, stderr: e.message, stdout: '' }));
  if (r.exitCode === 0) out.removed.push(`netns ${ns}`);
  else out.errors.push(`netns ${ns}: ip netns del failed: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
}

// ---------------------------------------------------------------------------------------------
// docker (only when recorded or used, and only when it answers)

interface DockerLike {
  ping(): Promise<unknown>;
  getContainer(id: string): { remove(o: { force: boolean; v: boolean }): Promise<unknown> };
  getNetwork(id: string): { remove(): Promise<unknown> };
  getImage(id: string): { remove(o: { force: boolean }): Promise<unknown> };
  listContainers(o: { all: boolean }): Promise<{ Id: string; Names?: string[] }[]>;
  listNetworks(): Promise<{ Id: string; Name: string }[]>;
}

async function docker(): Promise<DockerLike | null> {
  try {
    const { default: Docker } = await import('dockerode');
    const d = new Docker() as unknown as DockerLike;
    const ok = await Promise.race([d.ping().then(() => true), sleep(2000).then(() => false)]).catch(() => false);
    return ok ? d : null;
  } catch {
    return null;
  }
}

const notFound = (e: unknown) => {
  const code = (e as { statusCode?: number }).statusCode;
  return code === 404;
};

async function removeDockerObject(d: DockerLike, r: ResourceRecord, out: LabCleanResult): Promise<void> {
  try {
    if (r.kind === 'container') await d.getContainer(r.name).remove({ force: true, v: true });
    else if (r.kind === 'network') await d.getNetwork(r.name).remove();
    else if (r.kind === 'image') await d.getImage(r.name).remove({ force: false });
    out.removed.push(`${r.kind} ${r.name}`);
  } catch (e) {
    if (notFound(e)) out.removed.push(`${r.kind} ${r.name} (already gone)`);
    else out.errors.push(`${r.kind} ${r.name}: ${(e as Error).message}`);
  }
}

// ---------------------------------------------------------------------------------------------
// files

/** Refuse to delete a path that is not plausibly a lab's own: `/`, home, an ancestor of the cwd. */
export function safeToDelete(path: string): boolean {
  if (!path || !path.startsWith('/')) return false;
  const p = resolve(path);
  if (p === '/' || p === resolve(homedir())) return false;
  const cwd = resolve(process.cwd());
  if (cwd === p || cwd.startsWith(p.endsWith(sep) ? p : p + sep)) return false;
  return p.split(sep).filter(Boolean).length >= 2;
}

function removePath(r: ResourceRecord, out: LabCleanResult): void {
  if (!safeToDelete(r.name)) {
    out.skipped.push(`${r.kind} ${r.name}: refused (not a lab-owned path)`);
    return;
  }
  try {
    if (!existsSync(r.name)) return;
    rmSync(r.name, { recursive: r.kind === 'dir', force: true });
    out.removed.push(`${r.kind} ${r.name}`);
  } catch (e) {
    out.errors.push(`${r.kind} ${r.name}: ${(e as Error).message}`);
  }
}

// ---------------------------------------------------------------------------------------------
// one lab

export async function cleanLab(state: LabState, opts: { graceMs?: number } = {}): Promise<LabCleanResult> {
  const meta = readMeta(state);
  const prefix = meta?.prefix ?? fallbackPrefix(state.id);
  const out: LabCleanResult = { id: state.id, prefix, removed: [], skipped: [], errors: [], forgotten: false };
  const records = state.resources().reverse(); // newest first
  const usesDocker = meta?.provider === 'docker' || records.some((r) => r.kind === 'container' || r.kind === 'network' || r.kind === 'image');
  const d = usesDocker ? await docker() : null;
  if (usesDocker && !d) out.errors.push('docker objects are recorded but Docker does not answer: start Docker and run `lab clean` again');

  const nsDone = new Set<string>();
  const nsPresent = new Set(await listNetns());
  for (const r of records) {
    switch (r.kind) {
      case 'pid': {
        const pid = r.pid ?? Number(r.name);
        const res = await killRecordedPid(pid, r.startTime, opts.graceMs ?? 3000);
        if (res === 'killed') out.removed.push(`process ${pid} (${r.name})`);
        else if (res === 'start-time-mismatch') out.skipped.push(`process ${pid} (${r.name}): pid now belongs to another process, left alone`);
        else if (res === 'no-start-time') out.skipped.push(`process ${pid} (${r.name}): no start time recorded, left alone (the namespace sweep stops it if it runs in one of the lab's namespaces)`);
        else if (res === 'survived') out.errors.push(`process ${pid} (${r.name}) survived SIGKILL`);
        break;
      }
      case 'netns':
        if (nsDone.has(r.name)) break;
        nsDone.add(r.name);
        if (nsPresent.has(r.name)) await removeNetns(r.name, out);
        break;
      case 'container':
      case 'network':
      case 'image':
        if (d) await removeDockerObject(d, r, out);
        break;
      case 'file':
      case 'dir':
        removePath(r, out);
        break;
    }
  }

  // sweep: anything named after the lab that a kill between "record" and "create" left behind
  for (const ns of await listNetns()) {
    if (ownsNamespace(prefix, ns) && !nsDone.has(ns)) await removeNetns(ns, out);
  }
  if (d) {
    try {
      for (const c of await d.listContainers({ all: true })) {
        if ((c.Names ?? []).some((n) => n.replace(/^\//, '').startsWith(prefix))) {
          await removeDockerObject(d, { kind: 'container', name: c.Id }, out);
        }
      }
      for (const n of await d.listNetworks()) {
        if (n.Name.startsWith(prefix)) await removeDockerObject(d, { kind: 'network', name: n.Id }, out);
      }
    } catch (e) {
      out.errors.push(`docker sweep: ${(e as Error).message}`);
    }
  }

  if (!out.errors.length) {
    state.remove();
    out.forgotten = true;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// many labs

export async function cleanAll(opts: { id?: string; all?: boolean } = {}, root = stateRoot()): Promise<CleanReport> {
  const report: CleanReport = { labs: [], orphans: [], errors: [] };
  const states = LabState.list(root);
  const listing = listLabStates(root);
  let chosen: LabState[];
  if (opts.id && opts.all) throw new UsageError(`clean: give a lab id or --all, not both`);
  if (opts.id) {
    const id = resolveLabRef(opts.id, 'clean', root);
    const s = id ? states.find((x) => x.id === id) : undefined;
    if (!s) {
      throw new UsageError(`no lab '${opts.id}' in ${root}; labs: ${listing.map((l) => l.id).join(', ') || '(none)'}`);
    }
    chosen = [s];
  } else if (opts.all) {
    chosen = states;
  } else {
    const stale = new Set(listing.filter((l) => l.stale).map((l) => l.id));
    chosen = states.filter((s) => stale.has(s.id));
  }
  for (const s of chosen) {
    try {
      report.labs.push(await cleanLab(s));
    } catch (e) {
      report.errors.push(`${s.id}: ${(e as Error).message}`);
    }
  }
  if (opts.all) {
    // namespaces of labs whose state directory is gone (or lives elsewhere): every `tlab-*` one
    // not owned by a lab still listed here
    const known = listLabStates(root).map((l) => l.prefix);
    const sweep: LabCleanResult = { id: '(orphans)', prefix: LAB_PREFIX_ROOT, removed: [], skipped: [], errors: [], forgotten: false };
    for (const ns of await listNetns()) {
      if (ns.startsWith(LAB_PREFIX_ROOT) && !known.some((p) => ownsNamespace(p, ns))) {
        await removeNetns(ns, sweep);
        report.orphans.push(ns);
      }
    }
    report.errors.push(...sweep.errors);
  }
  return report;
}
