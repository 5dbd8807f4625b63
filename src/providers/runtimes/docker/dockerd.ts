/**
 * A Docker engine for the docker runtime and its tests: use the one that answers, or (root, no
 * systemd needed) start `dockerd` ourselves and stop exactly that process afterwards.
 *
 * A dockerd we start runs with Docker's defaults (its default bridge, iptables NAT — what a Talos
 * container needs to pull its images), so it behaves like the engine a user has; like any dockerd
 * it creates `docker0` and its iptables chains in the host's root namespace and leaves them there
 * when it exits (Docker's own behaviour, not undone here). Its containerd is its child and is
 * stopped by dockerd on SIGTERM.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, accessSync, constants as fsc, statSync } from 'node:fs';
import { request } from 'node:http';
import { homedir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import type Dockerode from 'dockerode';
import { PrerequisiteError, ReadinessError } from '../../../util/errors.js';
import { isAlive, pidStartTime, procStat, sleep, spawnDaemon, type Daemon } from '../../../util/proc.js';

export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';
/** dockerd's default pid file: a live pid there means an engine is starting, not absent. */
const DOCKERD_PIDFILE = '/var/run/docker.pid';
/** dockerd waits up to 15 s for containers on SIGTERM (`--shutdown-timeout` default), then its own teardown. */
const STOP_GRACE_MS = 30_000;

export interface DockerdOptions {
  /** unix socket to use or serve (default: DOCKER_HOST when it is unix://, else /var/run/docker.sock) */
  socket?: string;
  /** log of a dockerd we start (default: <state dir>/dockerd.log, appended) */
  logFile?: string;
  /** how long a dockerd we start may take to answer `_ping` (default 60 s) */
  timeoutMs?: number;
  /** extra dockerd flags for a dockerd we start */
  args?: string[];
  log?: (m: string) => void;
  signal?: AbortSignal;
}

export interface DockerdHandle {
  /** true when this call started dockerd (and stop() will end it) */
  started: boolean;
  pid?: number;
  socket: string;
  logFile?: string;
  /** ends the dockerd this call started (SIGTERM, wait, SIGKILL); a no-op for an engine found running */
  stop(): Promise<void>;
}

export function dockerSocket(opts: { socket?: string } = {}, env: NodeJS.ProcessEnv = process.env): string {
  if (opts.socket) return opts.socket;
  const h = env.DOCKER_HOST;
  if (h?.startsWith('unix://')) return h.slice('unix://'.length);
  return DEFAULT_DOCKER_SOCKET;
}

/** GET /_ping on a unix socket: true when the engine answers 200 OK. */
export async function pingSocket(socket: string, timeoutMs = 2000): Promise<boolean> {
  return (await ping(socket, timeoutMs)).ok;
}

function ping(socket: string, timeoutMs: number): Promise<{ ok: boolean; permission?: boolean }> {
  if (!existsSync(socket)) return Promise.resolve({ ok: false });
  return new Promise((resolve) => {
    const req = request({ socketPath: socket, path: '/_ping', method: 'GET', timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ ok: res.statusCode === 200 && body.trim() === 'OK' }));
      res.on('error', () => resolve({ ok: false }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ ok: false, permission: e.code === 'EACCES' }));
    req.end();
  });
}

function onPath(cmd: string): string | null {
  for (const dir of [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/bin', '/sbin']) {
    if (!dir) continue;
    const p = join(dir, cmd);
    try {
      accessSync(p, fsc.X_OK);
      if (statSync(p).isFile()) return p;
    } catch {
      // not here
    }
  }
  return null;
}

/** A dockerd already running per its pid file (it may still be starting). */
function runningDockerdPid(): number | null {
  try {
    const pid = Number(readFileSync(DOCKERD_PIDFILE, 'utf8').trim());
    if (!pid || !isAlive(pid)) return null;
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'dockerd' ? pid : null;
  } catch {
    return null;
  }
}

async function waitForPing(socket: string, timeoutMs: number, signal?: AbortSignal, daemon?: Daemon): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await pingSocket(socket)) return true;
    if (daemon && !daemon.isRunning()) return false;
    await sleep(200, signal);
  }
  return false;
}

/** Signal exactly `pid`, and only while it is still the process we started (same start time). */
function signalOurs(pid: number, startTime: number | null, sig: NodeJS.Signals): boolean {
  if (startTime !== null && pidStartTime(pid) !== startTime) return false;
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

/**
 * Docker's own processes left in process group `pgid` (a dockerd we start leads its own group:
 * spawnDaemon is detached), e.g. the containerd of a dockerd that had to be SIGKILLed.
 */
function dockerGroupLeftovers(pgid: number): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const f = procStat(Number(e));
    if (!f || Number(f[2]) !== pgid || f[0] === 'Z') continue;
    let comm = '';
    try {
      comm = readFileSync(`/proc/${e}/comm`, 'utf8').trim();
    } catch {
      continue;
    }
    if (/^(containerd|dockerd|docker-proxy)/.test(comm)) out.push(Number(e));
  }
  return out;
}

/** Beside the lab state directories (`$XDG_STATE_HOME/talos-ha-lab/`), never in the repository. */
function defaultLogFile(): string {
  const base = process.env.XDG_STATE_HOME || join(homedir(), '.local', 'state');
  return join(base, 'talos-ha-lab', 'dockerd.log');
}

export async function ensureDockerd(opts: DockerdOptions = {}): Promise<DockerdHandle> {
  const socket = dockerSocket(opts);
  const log = opts.log ?? (() => {});
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const notOurs: DockerdHandle = { started: false, socket, stop: async () => {} };
  const first = await ping(socket, 2000);
  if (first.ok) return notOurs;
  // an engine that runs but refuses this user: starting another one would not help
  if (first.permission) throw new PrerequisiteError(`the Docker engine on ${socket} refuses this user (permission denied)`, 'sudo usermod -aG docker "$USER" && newgrp docker');

  const dockerd = onPath('dockerd');
  const root = process.getuid?.() === 0;
  if (!dockerd) throw new PrerequisiteError(`no Docker engine answers on ${socket} and dockerd is not installed (Debian package docker.io)`, `${root ? '' : 'sudo '}apt-get install -y docker.io`);
  // an engine mid-start (its pid file names a live dockerd): wait for it instead of starting a second one
  const other = socket === DEFAULT_DOCKER_SOCKET ? runningDockerdPid() : null;
  if (other) {
    log(`dockerd: pid ${other} is running but not answering yet; waiting`);
    if (await waitForPing(socket, timeoutMs, opts.signal)) return notOurs;
    throw new ReadinessError('docker _ping', `the running dockerd (pid ${other})`, timeoutMs);
  }
  if (!root) {
    const systemd = existsSync('/run/systemd/system');
    throw new PrerequisiteError(`no Docker engine answers on ${socket} and starting dockerd needs root`, systemd ? 'sudo systemctl start docker' : 'sudo sh -c "dockerd > /var/log/dockerd.log 2>&1 &"');
  }

  const logFile = opts.logFile ?? defaultLogFile();
  mkdirSync(dirname(logFile), { recursive: true });
  const hostArgs = socket === DEFAULT_DOCKER_SOCKET ? [] : ['--host', `unix://${socket}`];
  const daemon = spawnDaemon({ name: 'dockerd', cmd: dockerd, args: [...hostArgs, ...(opts.args ?? [])], logFile });
  const startTime = pidStartTime(daemon.pid);
  log(`dockerd: started pid ${daemon.pid} (log ${logFile})`);

  let stopped: Promise<void> | null = null;
  const stop = () =>
    (stopped ??= (async () => {
      if (!daemon.isRunning()) return;
      signalOurs(daemon.pid, startTime, 'SIGTERM');
      const exited = await Promise.race([daemon.exited.then(() => true), sleep(STOP_GRACE_MS).then(() => false)]);
      if (!exited) {
        signalOurs(daemon.pid, startTime, 'SIGKILL');
        await Promise.race([daemon.exited, sleep(5000)]);
      }
      // a SIGKILLed dockerd leaves its containerd behind in the group we created: end that too
      for (const pid of dockerGroupLeftovers(daemon.pid)) {
        try {
          process.kill(pid, exited ? 'SIGTERM' : 'SIGKILL');
        } catch {
          // gone
        }
      }
    })());

  let ready = false;
  try {
    ready = await waitForPing(socket, timeoutMs, opts.signal, daemon);
  } catch (e) {
    await stop();
    throw e;
  }
  if (!ready) {
    const tail = daemon.logTail(30);
    await stop();
    throw new ReadinessError('docker _ping', `dockerd (pid ${daemon.pid}, ${socket})`, timeoutMs, tail);
  }
  return { started: true, pid: daemon.pid, socket, logFile, stop };
}

/**
 * br_netfilter decides whether frames bridged between containers on one Docker network pass the
 * host's iptables FORWARD chain (Docker sets its policy to DROP): with it, L2 experiments on a
 * Docker bridge are filtered by the host; without it, they are not. Reported, never changed.
 */
export async function brNetfilter(): Promise<{ loaded: boolean; how?: 'module' | 'builtin'; bridgeNfCallIptables?: string; bridgeNfCallIp6tables?: string; bridgeNfCallArptables?: string }> {
  const dir = '/proc/sys/net/bridge';
  const read = (f: string) => {
    try {
      return readFileSync(join(dir, f), 'utf8').trim();
    } catch {
      return undefined;
    }
  };
  const iptables = read('bridge-nf-call-iptables');
  let module = false;
  try {
    module = /^br_netfilter\s/m.test(readFileSync('/proc/modules', 'utf8'));
  } catch {
    // a kernel without loadable modules has no /proc/modules: built in or absent
  }
  const loaded = module || iptables !== undefined;
  if (!loaded) return { loaded };
  return {
    loaded,
    how: module ? 'module' : 'builtin',
    bridgeNfCallIptables: iptables,
    bridgeNfCallIp6tables: read('bridge-nf-call-ip6tables'),
    bridgeNfCallArptables: read('bridge-nf-call-arptables'),
  };
}

export interface DockerVersion {
  version: string;
  apiVersion: string;
  os: string;
  arch: string;
  kernel: string;
  containerd?: string;
  runc?: string;
}

/** The engine's version for results.json (docker among the real components). */
export async function dockerVersion(docker: Dockerode): Promise<DockerVersion> {
  const v = await docker.version();
  const comp = (name: string) => v.Components?.find((c) => c.Name.toLowerCase() === name)?.Version;
  return {
    version: v.Version,
    apiVersion: v.ApiVersion,
    os: v.Os,
    arch: v.Arch,
    kernel: v.KernelVersion,
    containerd: comp('containerd'),
    runc: comp('runc'),
  };
}
