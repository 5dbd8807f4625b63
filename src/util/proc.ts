/**
 * The one process runner for `ip`, `nft`, `vtysh`, `haproxy -c`, daemons…
 * Every command can run inside a network namespace, has a timeout and an AbortSignal, and fails
 * with a ProcessError carrying command, exit code, signal, stdout, stderr and duration.
 */
import { execa } from 'execa';
import { spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync, existsSync } from 'node:fs';
import { LabError, ProcessError, tail } from './errors.js';

export interface RunOptions {
  /** network namespace to run in (`ip netns exec <ns> …`) */
  ns?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
  input?: string;
  /** throw ProcessError on non-zero exit (default true) */
  reject?: boolean;
  env?: Record<string, string>;
  cwd?: string;
}

export interface RunResult {
  command: string;
  stdout: string;
  stderr: string;
  exitCode: number;
  durationMs: number;
}

/**
 * `ip netns exec <ns> cmd …`, or the command itself when no namespace is given. A namespace that
 * is GIVEN but empty (`{ ns: map[host] }` for an unknown host) is refused: run in the root
 * namespace by accident, an `nft` or `ip` command of a drill would change the host's networking.
 */
export function nsWrap(cmd: string, args: string[], ns?: string, given = ns !== undefined): [string, string[]] {
  if (given && !ns) throw new LabError(`refusing to run '${cmd} ${args.join(' ')}' with an empty network namespace (it would run in the host's root namespace)`);
  return ns ? ['ip', ['netns', 'exec', ns, cmd, ...args]] : [cmd, args];
}

export function quote(args: string[]): string {
  return args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

export async function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const [file, argv] = nsWrap(cmd, args, opts.ns, 'ns' in opts);
  const command = quote([file, ...argv]);
  const started = performance.now();
  const r = await execa(file, argv, {
    reject: false,
    timeout: opts.timeoutMs ?? 30_000,
    cancelSignal: opts.signal,
    input: opts.input,
    env: opts.env,
    cwd: opts.cwd,
    stripFinalNewline: false,
    forceKillAfterDelay: 1000,
    killSignal: 'SIGTERM',
  });
  const durationMs = performance.now() - started;
  const stdout = String(r.stdout ?? '');
  const stderr = String(r.stderr ?? '');
  const failed = r.failed || r.exitCode !== 0;
  if (failed && opts.reject !== false) {
    throw new ProcessError(command, r.exitCode, r.signal ?? undefined, stdout, stderr || String(r.message ?? ''), durationMs, Boolean(r.timedOut));
  }
  return { command, stdout, stderr, exitCode: r.exitCode ?? -1, durationMs };
}

/** Run a batch of commands through one `ip -batch` / `nft -f` style stdin invocation. */
export async function runScript(cmd: string, args: string[], script: string, opts: RunOptions = {}): Promise<RunResult> {
  return run(cmd, args, { ...opts, input: script });
}

export interface DaemonSpec {
  /** short name for logs and errors, e.g. `cp1/etcd` */
  name: string;
  cmd: string;
  args: string[];
  ns?: string;
  logFile: string;
  env?: Record<string, string>;
  cwd?: string;
}

export interface Daemon {
  name: string;
  pid: number;
  logFile: string;
  /** resolves with the exit code (or signal name) when the process exits */
  exited: Promise<number | string>;
  isRunning(): boolean;
  logTail(lines?: number): string;
}

/**
 * Start a long-running process detached in its own process group (so `lab up` can exit and the
 * lab keeps running, and so group kills reach its children). Output goes to `logFile`.
 */
export function spawnDaemon(spec: DaemonSpec): Daemon {
  const [file, argv] = nsWrap(spec.cmd, spec.args, spec.ns, 'ns' in spec);
  const fd = openSync(spec.logFile, 'a');
  const child = spawn(file, argv, {
    detached: true,
    stdio: ['ignore', fd, fd],
    env: spec.env ? { ...process.env, ...spec.env } : process.env,
    cwd: spec.cwd,
  });
  closeSync(fd);
  if (child.pid === undefined) throw new ProcessError(quote([file, ...argv]), undefined, undefined, '', 'spawn failed', 0);
  let running = true;
  const exited = new Promise<number | string>((resolve) => {
    child.on('exit', (code, signal) => {
      running = false;
      resolve(code ?? signal ?? -1);
    });
    child.on('error', () => {
      running = false;
      resolve(-1);
    });
  });
  child.unref();
  return {
    name: spec.name,
    pid: child.pid,
    logFile: spec.logFile,
    exited,
    isRunning: () => running && isAlive(child.pid!),
    logTail: (lines = 30) => readLogTail(spec.logFile, lines),
  };
}

export function readLogTail(file: string, lines = 30): string {
  try {
    return existsSync(file) ? tail(readFileSync(file, 'utf8'), lines) : '';
  } catch {
    return '';
  }
}

/** Is a pid alive (and not a zombie)? */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const state = procStat(pid)?.[0];
  return state !== undefined && state !== 'Z' && state !== 'X';
}

/**
 * The fields of /proc/<pid>/stat after the command name (which may hold spaces and parens):
 * [0] = state, [2] = process group, [19] = start time in clock ticks since boot. null when gone.
 */
export function procStat(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/**
 * How long a process's main thread has been runnable without a CPU since it started, in ms
 * (/proc/<pid>/schedstat, second field: time spent waiting on a run queue, in ns). It grows only
 * while the thread wanted to run and the host gave the CPU to someone else — a thread blocked on
 * I/O, sleeping or stopped (SIGSTOP) adds nothing. null when the process is gone.
 */
export function runQueueWaitMs(pid: number): number | null {
  try {
    const f = readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ');
    const ns = Number(f[1]);
    return Number.isFinite(ns) ? ns / 1e6 : null;
  } catch {
    return null;
  }
}

/** Start time of a pid in clock ticks since boot: recorded beside pids so a reused pid is never killed. */
export function pidStartTime(pid: number): number | null {
  const f = procStat(pid);
  return f ? Number(f[19]) : null;
}

/** Signal a process group we started (negative pid); ignore ESRCH. */
export function signalGroup(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    try {
      process.kill(pid, signal);
      return true;
    } catch {
      return false;
    }
  }
}

/** SIGTERM, wait up to graceMs, then SIGKILL. Resolves when the process is gone. */
export async function stopProcess(pid: number, graceMs = 3000): Promise<void> {
  if (!isAlive(pid)) return;
  signalGroup(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return;
    await sleep(20);
  }
  signalGroup(pid, 'SIGKILL');
  const hard = Date.now() + 2000;
  while (Date.now() < hard && isAlive(pid)) await sleep(10);
}

export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    // the listener goes when the sleep ends: long polls on one signal must not pile them up
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** Shared wall clock with sub-ms resolution, comparable across processes of one host. */
export const now = () => performance.timeOrigin + performance.now();

export interface LineWatcher {
  pid: number;
  stop(): Promise<void>;
}

/**
 * A long-running observer whose stdout is read line by line in this process (tcpdump, `ip
 * monitor`): each line is handed over with the time it arrived. It belongs to this process (not
 * detached): it ends with `stop()` or when this process exits.
 */
export function spawnLines(cmd: string, args: string[], opts: { ns?: string; onLine(line: string, t: number): void }): LineWatcher {
  const [file, argv] = nsWrap(cmd, args, opts.ns, 'ns' in opts);
  const child = spawn(file, argv, { stdio: ['ignore', 'pipe', 'ignore'] });
  if (child.pid === undefined) throw new ProcessError(quote([file, ...argv]), undefined, undefined, '', 'spawn failed', 0);
  let buf = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    const t = now();
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line) opts.onLine(line, t);
    }
  });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  return {
    pid: child.pid,
    async stop() {
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(2000)]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}
