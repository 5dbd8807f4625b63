/**
 * A fake Docker Engine for tests: an HTTP server on a unix socket that speaks the subset of the
 * Docker Engine API v1.41 (Docker 20.10) that dockerode 4 uses for the docker provider and
 * `lab clean` — ping/version/info, networks, containers, exec, images (inspect, list, build,
 * import, tag, remove) and volumes — with realistic state and status codes, so the provider can be
 * driven end to end on a machine without a Docker daemon or Talos images.
 *
 * Nothing runs: a container is a record moving through created → running ⇄ paused → exited, an
 * exec's output comes from `onExec`, a one-shot container's exit from `onStart`.
 *
 * Sources of the emulated behaviour (status codes and messages):
 *  - the Docker Engine API v1.41 reference (Docker 20.10): routes, bodies,
 *    response shapes, the 101 "UPGRADED" hijack and the 8-byte stdout/stderr frame header of
 *    "Attach to a container" (stream format);
 *  - moby v20.10 daemon/start.go (paused → 409 "cannot start a paused container, try unpause
 *    instead", running → 304), daemon/delete.go (running without force → 409 "You cannot remove a
 *    running container …"), daemon/exec.go (paused → 409 "Container … is paused, unpause the
 *    container before exec", not running → 409), daemon/pause.go / unpause.go (409 when not
 *    running / already paused / not paused), daemon/kill.go (409 when not running),
 *    daemon/names.go (409 name conflict), libnetwork ActiveEndpointsError (403 Forbidden),
 *    daemon/network.go (403 for pre-defined networks, 409 duplicate network name).
 *
 * Every request is recorded in arrival order: `requests()` in memory, and one JSON line per
 * request in `<dir>/requests.jsonl` (written when the response is complete, with its status).
 *
 * Not emulated: attach/logs/events/stats, exec stdin, archives, swarm, registries (a pull fails
 * unless `allowPull`), tar contents (build and import count the bytes; `onBuild` says what a build
 * inherits from its base), restart policies. Unknown routes answer 404 "page not found", as the
 * engine does, and are recorded like the rest.
 */
import { createServer, STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';

/** request bodies and response documents are loose JSON */
type Obj = Record<string, any>;

// ---------------------------------------------------------------------------------------------
// public types

export const FAKE_API_VERSION = '1.41';
/** Docker 20.10 is the release line whose maximum API version is 1.41 (API version history). */
export const FAKE_ENGINE_VERSION = '20.10.24';

export interface RecordedRequest {
  /** arrival order, from 1 */
  seq: number;
  method: string;
  /** the path without its `/v1.xx` prefix, e.g. `/containers/create` */
  path: string;
  /** the `/v1.xx` prefix's version when the client sent one */
  version?: string;
  query: Record<string, string>;
  /** parsed JSON for JSON bodies, the byte count for tar/binary ones; absent when empty */
  body?: unknown;
  /** the response status, once answered (101 for a hijacked exec) */
  status?: number;
}

export interface ExecOutput {
  stdout?: string | Buffer;
  stderr?: string | Buffer;
  exitCode?: number;
  /** how long the process runs after writing its output (default: the engine's execDurationMs) */
  durationMs?: number;
}

export type ContainerStatus = 'created' | 'running' | 'paused' | 'exited';

/** What handlers and `containers()` see of a container (a copy). */
export interface FakeContainerView {
  id: string;
  name: string;
  /** the image as the create body named it */
  image: string;
  imageId: string;
  labels: Record<string, string>;
  status: ContainerStatus;
  exitCode: number;
  /** the whole create body, as received */
  create: Obj;
  /** network name → its address on it ('' when dynamic allocation had no free address) */
  networks: Record<string, string>;
  /** signals received by `kill` that did not end it */
  signals: string[];
}

export interface ExecContext {
  env: string[];
  user: string;
  workingDir: string;
  tty: boolean;
  detach: boolean;
}
export type ExecHandler = (container: FakeContainerView, cmd: string[], ctx: ExecContext) => ExecOutput | void | Promise<ExecOutput | void>;
/** Called when a container starts; return an exit to make it a one-shot (exits after `afterMs`, default at once). */
export type StartHandler = (container: FakeContainerView) => { exitCode: number; afterMs?: number } | void;
/**
 * Called for each image build (the context is not read, so FROM is unknown): return `{ error }` to
 * fail it the way Docker does (an error line in the progress stream), or what the image inherits
 * from its base (`env`, `labels`; the build's own `labels` win).
 */
export type BuildHandler = (b: { tags: string[]; labels: Record<string, string>; bytes: number; query: Record<string, string> }) => { error?: string; env?: string[]; labels?: Record<string, string> } | void;

export interface FakeImageSeed {
  ref: string;
  labels?: Record<string, string>;
  env?: string[];
}

export interface FakeEngineOptions {
  /** where the socket and requests.jsonl go (default: a new temp dir, removed by stop()) */
  dir?: string;
  onExec?: ExecHandler;
  onStart?: StartHandler;
  onBuild?: BuildHandler;
  /** images present from the start (e.g. the Talos image the provider expects) */
  images?: (string | FakeImageSeed)[];
  /** `POST /images/create?fromImage=` registers unknown images instead of failing (no registry either way) */
  allowPull?: boolean;
  /**
   * How long an exec runs: its output is written at once, the stream ends (and inspect shows
   * Running false with its exit code) this much later. Default 50 ms, about what `docker exec` of
   * a trivial command costs on a real engine (runc starting the process); 0 ends at once.
   */
  execDurationMs?: number;
}

export interface FakeNetworkView {
  id: string;
  name: string;
  driver: string;
  internal: boolean;
  labels: Record<string, string>;
  options: Record<string, string>;
  subnet: string;
  gateway: string;
  ipRange?: string;
  /** container name → address, every attached container (running or not) */
  containers: Record<string, string>;
}

export interface FakeImageView {
  id: string;
  tags: string[];
  labels: Record<string, string>;
  env: string[] | null;
}

export interface FakeVolumeView {
  name: string;
  labels: Record<string, string>;
  anonymous: boolean;
}

export interface FakeEngine {
  /** the unix socket (`new Docker({ socketPath })`) */
  socketPath: string;
  /** `unix://<socketPath>`, for DOCKER_HOST */
  dockerHost: string;
  dir: string;
  requestsFile: string;
  requests(): RecordedRequest[];
  containers(): FakeContainerView[];
  networks(): FakeNetworkView[];
  images(): FakeImageView[];
  volumes(): FakeVolumeView[];
  /** register an image (returns its id); an existing tag moves to the new image, as on `docker tag` */
  addImage(ref: string, labels?: Record<string, string>): string;
  setExecHandler(h?: ExecHandler): void;
  setStartHandler(h?: StartHandler): void;
  setBuildHandler(h?: BuildHandler): void;
  stop(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// helpers

class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}
const fail = (status: number, message: string): never => {
  throw new ApiError(status, message);
};

const hex64 = () => randomBytes(32).toString('hex');
const nowIso = () => new Date().toISOString();
const ZERO_TIME = '0001-01-01T00:00:00Z';
const truthy = (v: string | undefined) => v === '1' || v?.toLowerCase() === 'true';

const ip2n = (ip: string) => ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
const n2ip = (n: number) => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
const isIPv4 = (s: string) => /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.test(s) && s.split('.').every((o) => Number(o) <= 255);
function cidr(s: string): { base: number; size: number; len: number } | null {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(s ?? '');
  if (!m || !isIPv4(m[1]!) || Number(m[2]) > 32) return null;
  const len = Number(m[2]);
  const size = 2 ** (32 - len);
  return { base: Math.floor(ip2n(m[1]!) / size) * size, size, len };
}
const inRange = (n: number, r: { base: number; size: number }) => n >= r.base && n < r.base + r.size;
/** Docker's bridge driver derives the MAC from the IPv4 address (02:42 + the four octets). */
const macOf = (ip: string) => (ip ? ['02', '42', ...ip.split('.').map((o) => Number(o).toString(16).padStart(2, '0'))].join(':') : '');

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGUSR1: 10, SIGUSR2: 12, SIGTERM: 15, SIGSTOP: 19, SIGCONT: 18 };
function signalNumber(s: string | undefined): number {
  if (!s) return 9;
  if (/^\d+$/.test(s)) return Number(s);
  const up = s.toUpperCase();
  const n = SIGNALS[up.startsWith('SIG') ? up : `SIG${up}`];
  if (n === undefined) fail(400, `Invalid signal: ${s}`);
  return n!;
}
/** Signals whose default action ends a process that does not handle them (signal(7)). */
const FATAL = new Set([1, 2, 3, 9, 15]);

/** `docker.io/library/x` → `x`; a reference without a tag gets `:latest` (distribution/reference rules). */
export function normalizeRef(ref: string): string {
  let r = ref.replace(/^docker\.io\/library\//, '').replace(/^docker\.io\//, '');
  if (r.includes('@')) return r;
  const last = r.slice(r.lastIndexOf('/') + 1);
  if (!last.includes(':')) r += ':latest';
  return r;
}

function parseFilters(raw: string | undefined): Map<string, string[]> {
  const out = new Map<string, string[]>();
  if (!raw) return out;
  let o: Obj;
  try {
    o = JSON.parse(raw) as Obj;
  } catch {
    return fail(400, `invalid filter '${raw}'`);
  }
  // both forms the API accepts: {"label":["a=b"]} and the older {"label":{"a=b":true}}
  for (const [k, v] of Object.entries(o)) out.set(k, Array.isArray(v) ? v.map(String) : Object.keys(v ?? {}).filter((x) => (v as Obj)[x]));
  return out;
}
/** Every `key` / `key=value` of the filter holds (labels are AND-ed, as in moby's MatchKVList). */
function labelsMatch(labels: Record<string, string> | undefined, wanted: string[] | undefined): boolean {
  if (!wanted?.length) return true;
  const l = labels ?? {};
  return wanted.every((w) => {
    const i = w.indexOf('=');
    return i < 0 ? w in l : l[w.slice(0, i)] === w.slice(i + 1);
  });
}
/** Any of the values matches, as a regular expression (moby filters.Match), or as a substring when it is not one. */
function anyMatch(values: string[] | undefined, ...subjects: string[]): boolean {
  if (!values?.length) return true;
  return values.some((v) => {
    let re: RegExp | null = null;
    try {
      re = new RegExp(v);
    } catch {
      re = null;
    }
    return subjects.some((s) => (re ? re.test(s) : s.includes(v)));
  });
}
const globMatch = (pattern: string, s: string) => new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`).test(s);

function human(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 1) return 'Less than a second';
  if (s < 60) return `${s} seconds`;
  const m = Math.floor(s / 60);
  return m === 1 ? 'About a minute' : `${m} minutes`;
}

const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Dockerfile-style words: whitespace-separated, double quotes group (and are removed), backslash escapes. */
function words(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inQ = false;
  let any = false;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (ch === '\\' && i + 1 < s.length) {
      cur += s[++i];
      any = true;
    } else if (ch === '"') {
      inQ = !inQ;
      any = true;
    } else if (!inQ && /\s/.test(ch)) {
      if (any) out.push(cur);
      cur = '';
      any = false;
    } else {
      cur += ch;
      any = true;
    }
  }
  if (any) out.push(cur);
  return out;
}
const execForm = (rest: string): string[] => {
  const t = rest.trim();
  if (t.startsWith('[')) {
    try {
      return (JSON.parse(t) as unknown[]).map(String);
    } catch {
      /* shell form */
    }
  }
  return ['/bin/sh', '-c', t];
};

/**
 * One `docker import --change` instruction applied to an image config. The instructions import
 * accepts (docker import reference, Engine 20.10): CMD, ENTRYPOINT, ENV, EXPOSE, ONBUILD, USER,
 * VOLUME, WORKDIR, plus LABEL and STOPSIGNAL; anything else is a 400.
 */
function applyChange(cfg: Partial<ImageConfig>, change: string): void {
  const m = /^\s*(\w+)\s+([\s\S]*)$/.exec(change);
  if (!m) return fail(400, `dockerfile parse error: ${change}`);
  const op = m[1]!.toUpperCase();
  const rest = m[2]!.trim();
  switch (op) {
    case 'LABEL': {
      const labels = { ...(cfg.labels ?? {}) };
      for (const w of words(rest)) {
        const i = w.indexOf('=');
        if (i <= 0) return fail(400, `LABEL must have two arguments: ${change}`);
        labels[w.slice(0, i)] = w.slice(i + 1);
      }
      cfg.labels = labels;
      return;
    }
    case 'ENV': {
      const env = [...(cfg.env ?? [])];
      const ws = words(rest);
      // `ENV K V` (legacy) or `ENV K=V K2=V2`
      const pairs = ws.every((w) => w.includes('=')) ? ws.map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)] as const) : [[ws[0] ?? '', rest.slice((ws[0] ?? '').length).trim()] as const];
      for (const [k, v] of pairs) {
        const at = env.findIndex((e) => e.startsWith(`${k}=`));
        if (at >= 0) env[at] = `${k}=${v}`;
        else env.push(`${k}=${v}`);
      }
      cfg.env = env;
      return;
    }
    case 'CMD':
      cfg.cmd = execForm(rest);
      return;
    case 'ENTRYPOINT':
      cfg.entrypoint = execForm(rest);
      return;
    case 'WORKDIR':
      cfg.workingDir = rest;
      return;
    case 'USER':
      cfg.user = rest;
      return;
    case 'STOPSIGNAL':
      cfg.stopSignal = rest;
      return;
    case 'EXPOSE':
    case 'VOLUME':
    case 'ONBUILD':
      return;
    default:
      return fail(400, `${op} is not a valid change command`);
  }
}

function frame(stream: 1 | 2, data: Buffer): Buffer {
  // stream format of "Attach to a container" (API v1.41): [type, 0, 0, 0, size uint32 BE] + payload
  const h = Buffer.alloc(8);
  h.writeUInt8(stream, 0);
  h.writeUInt32BE(data.length, 4);
  return Buffer.concat([h, data]);
}
const buf = (x: string | Buffer | undefined) => (x === undefined ? Buffer.alloc(0) : Buffer.isBuffer(x) ? x : Buffer.from(x, 'utf8'));

// ---------------------------------------------------------------------------------------------
// state

interface Endpoint {
  networkId: string;
  endpointId: string;
  ip: string;
  ipamConfig: Obj | null;
  aliases: string[] | null;
}

interface Waiter {
  condition: 'not-running' | 'next-exit' | 'removed';
  resolve: (r: Reply) => void;
}

interface Container {
  id: string;
  name: string;
  created: string;
  createdMs: number;
  create: Obj;
  image: string;
  imageId: string;
  status: ContainerStatus;
  pid: number;
  exitCode: number;
  startedAt: string;
  startedMs: number;
  finishedAt: string;
  finishedMs: number;
  restartCount: number;
  endpoints: Map<string, Endpoint>;
  volumes: { name: string; destination: string; anonymous: boolean }[];
  binds: { source: string; destination: string; mode: string; rw: boolean }[];
  signals: string[];
  execIds: string[];
  waiters: Waiter[];
  exitTimer?: NodeJS.Timeout;
}

interface Network {
  id: string;
  name: string;
  created: string;
  driver: string;
  scope: 'local';
  internal: boolean;
  attachable: boolean;
  enableIPv6: boolean;
  ipamDriver: string;
  subnet: string;
  gateway: string;
  ipRange?: string;
  /** the subnet came from the request (fixed addresses are only allowed then) */
  userSubnet: boolean;
  options: Record<string, string>;
  labels: Record<string, string>;
  builtin: boolean;
}

interface ImageConfig {
  labels: Record<string, string>;
  env: string[] | null;
  cmd: string[] | null;
  entrypoint: string[] | null;
  workingDir: string;
  user: string;
  stopSignal?: string;
}

interface Image {
  id: string;
  tags: string[];
  config: ImageConfig;
  created: string;
  size: number;
}

interface Volume {
  name: string;
  labels: Record<string, string>;
  created: string;
  anonymous: boolean;
  options: Record<string, string> | null;
}

interface Exec {
  id: string;
  containerId: string;
  cmd: string[];
  env: string[];
  user: string;
  workingDir: string;
  tty: boolean;
  attachStdout: boolean;
  attachStderr: boolean;
  privileged: boolean;
  started: boolean;
  running: boolean;
  exitCode: number | null;
  pid: number;
}

interface RawBody {
  contentType: string;
  data: Buffer;
  /** keep the stream open this long after the data (a running exec), then call onEnd and end it */
  endAfterMs?: number;
  onEnd?: () => void;
}

interface Reply {
  status: number;
  json?: unknown;
  /** raw body with its content type (streams: build progress, attached exec output) */
  raw?: RawBody;
  /** for an upgraded (hijacked) request: 101 and this payload on the raw connection */
  hijack?: RawBody;
}

// ---------------------------------------------------------------------------------------------
// the engine

export async function startFakeEngine(opts: FakeEngineOptions = {}): Promise<FakeEngine> {
  const ownDir = !opts.dir;
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'tlab-fake-docker-'));
  mkdirSync(dir, { recursive: true });
  const socketPath = join(dir, 'docker.sock');
  // sun_path is 108 bytes on Linux (unix(7)): a longer path cannot be bound
  if (Buffer.byteLength(socketPath) > 107) throw new Error(`fake docker: socket path too long for a unix socket (${socketPath}); pass a shorter dir`);
  if (existsSync(socketPath)) rmSync(socketPath, { force: true });
  const requestsFile = join(dir, 'requests.jsonl');

  let onExec: ExecHandler | undefined = opts.onExec;
  let onStart: StartHandler | undefined = opts.onStart;
  let onBuild: BuildHandler | undefined = opts.onBuild;

  const log: RecordedRequest[] = [];
  const containers = new Map<string, Container>();
  const networks = new Map<string, Network>();
  const images = new Map<string, Image>();
  const volumes = new Map<string, Volume>();
  const execs = new Map<string, Exec>();
  const timers = new Set<NodeJS.Timeout>();
  const sockets = new Set<Socket>();
  let pidSeq = 4000;
  let stopped = false;
  /** run f after ms (0: on the next turn), unless the engine stops first */
  const later = (f: () => void, ms: number) => {
    const t = setTimeout(() => {
      timers.delete(t);
      f();
    }, ms);
    timers.add(t);
  };

  // ---- networks Docker always has (daemon/daemon_unix.go initNetworkController: bridge, host, none)
  const addBuiltin = (name: string, driver: string, subnet = '', gateway = '') => {
    const id = hex64();
    networks.set(id, { id, name, created: nowIso(), driver, scope: 'local', internal: false, attachable: false, enableIPv6: false, ipamDriver: 'default', subnet, gateway, userSubnet: false, options: {}, labels: {}, builtin: true });
  };
  addBuiltin('bridge', 'bridge', '172.17.0.0/16', '172.17.0.1');
  addBuiltin('host', 'host');
  addBuiltin('none', 'null');

  // ---- lookups -------------------------------------------------------------------------------
  function byIdOrName<T extends { id: string; name: string }>(m: Map<string, T>, ref: string, what: string): T {
    const r = ref.replace(/^\//, '');
    const exact = m.get(r) ?? [...m.values()].find((x) => x.name === r);
    if (exact) return exact;
    const pre = [...m.values()].filter((x) => x.id.startsWith(r));
    if (pre.length === 1) return pre[0]!;
    if (pre.length > 1) return fail(400, `multiple IDs found with provided prefix: ${r}`);
    return fail(404, what === 'container' ? `No such container: ${ref}` : `network ${ref} not found`);
  }
  const getContainer = (ref: string) => byIdOrName(containers, ref, 'container');
  const getNetwork = (ref: string) => byIdOrName(networks, ref, 'network');

  function findImage(ref: string): Image | undefined {
    const norm = normalizeRef(ref);
    for (const i of images.values()) if (i.tags.includes(norm)) return i;
    const h = ref.replace(/^sha256:/, '');
    if (/^[0-9a-f]+$/.test(h)) {
      const pre = [...images.values()].filter((i) => i.id.slice(7).startsWith(h));
      if (pre.length === 1) return pre[0];
    }
    return undefined;
  }
  const getImage = (ref: string) => findImage(ref) ?? fail(404, `No such image: ${ref}`);

  function addImage(ref: string | null, config: Partial<ImageConfig> = {}, size = 0): Image {
    const id = `sha256:${hex64()}`;
    const img: Image = { id, tags: [], config: { labels: {}, env: [DEFAULT_PATH], cmd: null, entrypoint: null, workingDir: '', user: '', ...config }, created: nowIso(), size };
    images.set(id, img);
    if (ref) tagImage(img, ref);
    return img;
  }
  function tagImage(img: Image, ref: string): void {
    const norm = normalizeRef(ref);
    // a tag belongs to one image: it moves, the old image keeps its other tags (or none: dangling)
    for (const other of images.values()) other.tags = other.tags.filter((t) => t !== norm);
    img.tags.push(norm);
  }
  for (const s of opts.images ?? []) {
    const seed = typeof s === 'string' ? { ref: s } : s;
    addImage(seed.ref, { labels: { ...(seed.labels ?? {}) }, ...(seed.env ? { env: [...seed.env] } : {}) });
  }

  // ---- views ---------------------------------------------------------------------------------
  const netName = (id: string) => networks.get(id)?.name ?? id;
  const active = (c: Container) => c.status === 'running' || c.status === 'paused';
  function view(c: Container): FakeContainerView {
    return {
      id: c.id,
      name: c.name,
      image: c.image,
      imageId: c.imageId,
      labels: { ...((c.create.Labels as Record<string, string>) ?? {}) },
      status: c.status,
      exitCode: c.exitCode,
      create: structuredClone(c.create),
      networks: Object.fromEntries([...c.endpoints.values()].map((e) => [netName(e.networkId), e.ip])),
      signals: [...c.signals],
    };
  }

  function stateJson(c: Container): Obj {
    return {
      Status: c.status,
      Running: active(c),
      Paused: c.status === 'paused',
      Restarting: false,
      OOMKilled: false,
      Dead: false,
      Pid: active(c) ? c.pid : 0,
      ExitCode: c.exitCode,
      Error: '',
      StartedAt: c.startedAt,
      FinishedAt: c.finishedAt,
    };
  }
  function endpointJson(c: Container, e: Endpoint): Obj {
    const n = networks.get(e.networkId);
    const up = active(c);
    const len = n?.subnet ? cidr(n.subnet)!.len : 0;
    // Docker shows the address, gateway and endpoint only while the container's sandbox exists
    return {
      IPAMConfig: e.ipamConfig,
      Links: null,
      Aliases: e.aliases,
      NetworkID: e.networkId,
      EndpointID: up ? e.endpointId : '',
      Gateway: up ? n?.gateway ?? '' : '',
      IPAddress: up ? e.ip : '',
      IPPrefixLen: up ? len : 0,
      IPv6Gateway: '',
      GlobalIPv6Address: '',
      GlobalIPv6PrefixLen: 0,
      MacAddress: up ? macOf(e.ip) : '',
      DriverOpts: null,
    };
  }
  function mountsJson(c: Container): Obj[] {
    return [
      ...c.binds.map((b) => ({ Type: 'bind', Source: b.source, Destination: b.destination, Mode: b.mode, RW: b.rw, Propagation: 'rprivate' })),
      ...c.volumes.map((v) => ({ Type: 'volume', Name: v.name, Source: `/var/lib/docker/volumes/${v.name}/_data`, Destination: v.destination, Driver: 'local', Mode: '', RW: true, Propagation: '' })),
    ];
  }
  function cmdOf(c: Container): string[] {
    const ep = c.create.Entrypoint;
    const entry: string[] = Array.isArray(ep) ? ep : typeof ep === 'string' ? [ep] : [];
    const cmd: string[] = Array.isArray(c.create.Cmd) ? c.create.Cmd : typeof c.create.Cmd === 'string' ? [c.create.Cmd] : [];
    return [...entry, ...cmd];
  }
  function inspectContainer(c: Container): Obj {
    const argv = cmdOf(c);
    const b = c.create;
    return {
      Id: c.id,
      Created: c.created,
      Path: argv[0] ?? '',
      Args: argv.slice(1),
      State: stateJson(c),
      Image: c.imageId,
      ResolvConfPath: `/var/lib/docker/containers/${c.id}/resolv.conf`,
      HostnamePath: `/var/lib/docker/containers/${c.id}/hostname`,
      HostsPath: `/var/lib/docker/containers/${c.id}/hosts`,
      LogPath: `/var/lib/docker/containers/${c.id}/${c.id}-json.log`,
      Name: `/${c.name}`,
      RestartCount: c.restartCount,
      Driver: 'overlay2',
      Platform: 'linux',
      MountLabel: '',
      ProcessLabel: '',
      AppArmorProfile: '',
      ExecIDs: c.execIds.length ? [...c.execIds] : null,
      HostConfig: { NetworkMode: 'default', ...(b.HostConfig ?? {}) },
      Mounts: mountsJson(c),
      Config: {
        Hostname: b.Hostname || c.id.slice(0, 12),
        Domainname: b.Domainname ?? '',
        User: b.User ?? '',
        AttachStdin: !!b.AttachStdin,
        AttachStdout: !!b.AttachStdout,
        AttachStderr: !!b.AttachStderr,
        Tty: !!b.Tty,
        OpenStdin: !!b.OpenStdin,
        StdinOnce: !!b.StdinOnce,
        Env: b.Env ?? null,
        Cmd: b.Cmd ?? null,
        Image: c.image,
        Volumes: b.Volumes ?? null,
        WorkingDir: b.WorkingDir ?? '',
        Entrypoint: b.Entrypoint ?? null,
        OnBuild: null,
        Labels: b.Labels ?? {},
        StopSignal: b.StopSignal,
      },
      NetworkSettings: {
        Bridge: '',
        SandboxID: active(c) ? c.id.split('').reverse().join('') : '',
        HairpinMode: false,
        Ports: {},
        SandboxKey: active(c) ? `/var/run/docker/netns/${c.id.slice(0, 12)}` : '',
        Networks: Object.fromEntries([...c.endpoints.values()].map((e) => [netName(e.networkId), endpointJson(c, e)])),
      },
    };
  }
  function statusText(c: Container): string {
    const now = Date.now();
    if (c.status === 'created') return 'Created';
    if (c.status === 'exited') return `Exited (${c.exitCode}) ${human(now - c.finishedMs)} ago`;
    return `Up ${human(now - c.startedMs)}${c.status === 'paused' ? ' (Paused)' : ''}`;
  }
  function listContainer(c: Container): Obj {
    return {
      Id: c.id,
      Names: [`/${c.name}`],
      Image: c.image,
      ImageID: c.imageId,
      Command: cmdOf(c).join(' '),
      Created: Math.floor(c.createdMs / 1000),
      Ports: [],
      Labels: c.create.Labels ?? {},
      State: c.status,
      Status: statusText(c),
      HostConfig: { NetworkMode: c.create.HostConfig?.NetworkMode ?? 'default' },
      NetworkSettings: { Networks: Object.fromEntries([...c.endpoints.values()].map((e) => [netName(e.networkId), endpointJson(c, e)])) },
      Mounts: mountsJson(c),
    };
  }
  function inspectNetwork(n: Network): Obj {
    const members: Obj = {};
    for (const c of containers.values()) {
      const e = c.endpoints.get(n.id);
      if (!e || !active(c)) continue;
      members[c.id] = { Name: c.name, EndpointID: e.endpointId, MacAddress: macOf(e.ip), IPv4Address: e.ip ? `${e.ip}/${cidr(n.subnet)!.len}` : '', IPv6Address: '' };
    }
    return {
      Name: n.name,
      Id: n.id,
      Created: n.created,
      Scope: n.scope,
      Driver: n.driver,
      EnableIPv6: n.enableIPv6,
      IPAM: { Driver: n.ipamDriver, Options: null, Config: n.subnet ? [{ Subnet: n.subnet, Gateway: n.gateway, ...(n.ipRange ? { IPRange: n.ipRange } : {}) }] : [] },
      Internal: n.internal,
      Attachable: n.attachable,
      Ingress: false,
      ConfigFrom: { Network: '' },
      ConfigOnly: false,
      Containers: members,
      Options: n.options,
      Labels: n.labels,
    };
  }
  const volumeJson = (v: Volume): Obj => ({ CreatedAt: v.created, Driver: 'local', Labels: v.labels, Mountpoint: `/var/lib/docker/volumes/${v.name}/_data`, Name: v.name, Options: v.options, Scope: 'local' });
  function imageInspect(i: Image): Obj {
    return {
      Id: i.id,
      RepoTags: [...i.tags],
      RepoDigests: [],
      Parent: '',
      Comment: '',
      Created: i.created,
      Container: '',
      DockerVersion: FAKE_ENGINE_VERSION,
      Author: '',
      Config: {
        Labels: { ...i.config.labels },
        Env: i.config.env ? [...i.config.env] : null,
        Cmd: i.config.cmd,
        Entrypoint: i.config.entrypoint,
        WorkingDir: i.config.workingDir,
        User: i.config.user,
        ...(i.config.stopSignal ? { StopSignal: i.config.stopSignal } : {}),
      },
      Architecture: process.arch === 'arm64' ? 'arm64' : 'amd64',
      Os: 'linux',
      Size: i.size,
      VirtualSize: i.size,
      GraphDriver: { Name: 'overlay2', Data: null },
      RootFS: { Type: 'layers', Layers: [] },
      Metadata: { LastTagTime: i.created },
    };
  }

  // ---- addresses -----------------------------------------------------------------------------
  function usedIps(n: Network, except?: Container): Set<number> {
    const used = new Set<number>();
    for (const c of containers.values()) {
      if (c === except) continue;
      const e = c.endpoints.get(n.id);
      if (e?.ip) used.add(ip2n(e.ip));
    }
    return used;
  }
  /** An endpoint on `n` for `c`: the requested fixed address (checked), else the first free one of IPRange/subnet. */
  function makeEndpoint(n: Network, c: Container, cfg: Obj | undefined): Endpoint {
    if (n.builtin && n.name !== 'bridge') return { networkId: n.id, endpointId: hex64(), ip: '', ipamConfig: null, aliases: null };
    const ipam = (cfg?.IPAMConfig ?? null) as Obj | null;
    const want = ipam?.IPv4Address as string | undefined;
    const sub = cidr(n.subnet)!;
    const used = usedIps(n, c);
    const gw = n.gateway ? ip2n(n.gateway) : -1;
    let ip = '';
    if (want) {
      // daemon/network.go: a fixed address needs a network whose subnet the user configured
      if (!n.userSubnet) fail(400, 'user specified IP address is supported only when connecting to networks with user configured subnets');
      if (!isIPv4(want) || !inRange(ip2n(want), sub)) fail(400, `no configured subnet or ip-range contain the IP address ${want}`);
      const w = ip2n(want);
      if (w === gw || used.has(w) || w === sub.base || w === sub.base + sub.size - 1) fail(403, `Address already in use`);
      ip = want;
    } else {
      const pool = (n.ipRange && cidr(n.ipRange)) || sub;
      for (let k = pool.base; k < pool.base + pool.size; k++) {
        if (k === sub.base || k === sub.base + sub.size - 1 || k === gw || used.has(k)) continue;
        ip = n2ip(k);
        break;
      }
      if (!ip) fail(503, `no available IPv4 addresses on this network's address pools: ${n.name} (${n.id})`);
    }
    return { networkId: n.id, endpointId: hex64(), ip, ipamConfig: ipam, aliases: (cfg?.Aliases as string[] | undefined) ?? null };
  }

  // ---- container lifecycle ---------------------------------------------------------------------
  function settleWaiters(c: Container, removed: boolean): void {
    const keep: Waiter[] = [];
    for (const w of c.waiters) {
      if (w.condition === 'removed' && !removed) keep.push(w);
      else w.resolve({ status: 200, json: { StatusCode: c.exitCode } });
    }
    c.waiters = keep;
  }
  function exitContainer(c: Container, code: number): void {
    if (c.exitTimer) {
      clearTimeout(c.exitTimer);
      timers.delete(c.exitTimer);
      c.exitTimer = undefined;
    }
    c.status = 'exited';
    c.exitCode = code;
    c.pid = 0;
    c.finishedAt = nowIso();
    c.finishedMs = Date.now();
    // execs still running die with the container (SIGKILL: 128 + 9)
    for (const id of c.execIds) {
      const x = execs.get(id);
      if (x?.running) {
        x.running = false;
        x.exitCode = 137;
      }
    }
    settleWaiters(c, false);
  }
  function startContainer(c: Container): Reply {
    if (c.status === 'paused') fail(409, 'cannot start a paused container, try unpause instead');
    if (c.status === 'running') return { status: 304 };
    const mode = String(c.create.HostConfig?.NetworkMode ?? '');
    if (mode.startsWith('container:')) {
      const other = getContainer(mode.slice('container:'.length));
      if (!active(other)) fail(409, `cannot join network of a non running container: ${other.id}`);
    }
    for (const e of c.endpoints.values()) if (!networks.has(e.networkId)) fail(404, `network ${e.networkId} not found`);
    c.status = 'running';
    c.pid = ++pidSeq;
    c.startedAt = nowIso();
    c.startedMs = Date.now();
    c.exitCode = 0;
    const oneShot = onStart?.(view(c));
    if (oneShot) {
      const t = setTimeout(() => {
        timers.delete(t);
        c.exitTimer = undefined;
        if (active(c)) exitContainer(c, oneShot.exitCode);
      }, oneShot.afterMs ?? 0);
      timers.add(t);
      c.exitTimer = t;
    }
    return { status: 204 };
  }
  function removeContainer(c: Container, force: boolean, removeVolumes: boolean): void {
    if (active(c)) {
      if (!force) {
        if (c.status === 'paused') fail(409, `You cannot remove a paused container ${c.id}. Unpause and then stop the container before attempting removal or force remove`);
        fail(409, `You cannot remove a running container ${c.id}. Stop the container before attempting removal or force remove`);
      }
      exitContainer(c, 137);
    }
    containers.delete(c.id);
    for (const id of c.execIds) execs.delete(id);
    if (removeVolumes) for (const v of c.volumes) if (v.anonymous) volumes.delete(v.name);
    settleWaiters(c, true);
  }

  // ---- routes --------------------------------------------------------------------------------
  interface Req {
    method: string;
    path: string;
    query: URLSearchParams;
    q: Record<string, string>;
    body: Obj;
    bytes: number;
    upgrade: boolean;
  }

  async function route(r: Req): Promise<Reply> {
    const { method: m, path: p } = r;
    let x: RegExpExecArray | null;

    // system
    if (p === '/_ping' && (m === 'GET' || m === 'HEAD')) return { status: 200, raw: { contentType: 'text/plain; charset=utf-8', data: Buffer.from(m === 'HEAD' ? '' : 'OK') } };
    if (p === '/version' && m === 'GET') return { status: 200, json: versionJson() };
    if (p === '/info' && m === 'GET') return { status: 200, json: infoJson() };

    // networks
    if (p === '/networks/create' && m === 'POST') return networkCreate(r.body);
    if (p === '/networks' && m === 'GET') {
      const f = parseFilters(r.q.filters);
      const list = [...networks.values()].filter(
        (n) => labelsMatch(n.labels, f.get('label')) && anyMatch(f.get('name'), n.name) && anyMatch(f.get('id'), n.id) && (!f.get('driver')?.length || f.get('driver')!.includes(n.driver)) && (!f.get('type')?.length || f.get('type')!.includes(n.builtin ? 'builtin' : 'custom')),
      );
      return { status: 200, json: list.map((n) => ({ ...inspectNetwork(n), Containers: {} })) };
    }
    if ((x = /^\/networks\/([^/]+)\/(connect|disconnect)$/.exec(p)) && m === 'POST') return x[2] === 'connect' ? networkConnect(getNetwork(x[1]!), r.body) : networkDisconnect(getNetwork(x[1]!), r.body);
    if ((x = /^\/networks\/([^/]+)$/.exec(p))) {
      const n = getNetwork(x[1]!);
      if (m === 'GET') return { status: 200, json: inspectNetwork(n) };
      if (m === 'DELETE') {
        if (n.builtin) fail(403, `${n.name} is a pre-defined network and cannot be removed`);
        const users = [...containers.values()].filter((c) => c.endpoints.has(n.id) && active(c));
        if (users.length) fail(403, `error while removing network: network ${n.name} id ${n.id} has active endpoints`);
        for (const c of containers.values()) c.endpoints.delete(n.id);
        networks.delete(n.id);
        return { status: 204 };
      }
    }

    // containers
    if (p === '/containers/create' && m === 'POST') return containerCreate(r);
    if (p === '/containers/json' && m === 'GET') {
      const f = parseFilters(r.q.filters);
      const all = truthy(r.q.all);
      let list = [...containers.values()].filter((c) => (all || active(c)) && containerMatches(c, f));
      list.sort((a, b) => b.createdMs - a.createdMs);
      if (r.q.limit && Number(r.q.limit) > 0) list = list.slice(0, Number(r.q.limit));
      return { status: 200, json: list.map(listContainer) };
    }
    if ((x = /^\/containers\/([^/]+)\/json$/.exec(p)) && m === 'GET') return { status: 200, json: inspectContainer(getContainer(x[1]!)) };
    if ((x = /^\/containers\/([^/]+)\/(start|stop|kill|pause|unpause|restart|wait|exec)$/.exec(p)) && m === 'POST') return containerAction(getContainer(x[1]!), x[2]!, r);
    if ((x = /^\/containers\/([^/]+)$/.exec(p)) && m === 'DELETE') {
      removeContainer(getContainer(x[1]!), truthy(r.q.force), truthy(r.q.v));
      return { status: 204 };
    }

    // exec
    if ((x = /^\/exec\/([^/]+)\/start$/.exec(p)) && m === 'POST') return execStart(x[1]!, r);
    if ((x = /^\/exec\/([^/]+)\/json$/.exec(p)) && m === 'GET') return { status: 200, json: execJson(execs.get(x[1]!) ?? fail(404, `No such exec instance: ${x[1]}`)) };
    if ((x = /^\/exec\/([^/]+)\/resize$/.exec(p)) && m === 'POST') {
      if (!execs.has(x[1]!)) fail(404, `No such exec instance: ${x[1]}`);
      return { status: 200 };
    }

    // images
    if (p === '/build' && m === 'POST') return imageBuild(r);
    if (p === '/images/create' && m === 'POST') return imageCreate(r);
    if (p === '/images/json' && m === 'GET') {
      const f = parseFilters(r.q.filters);
      const list = [...images.values()].filter(
        (i) =>
          labelsMatch(i.config.labels, f.get('label')) &&
          (!f.get('reference')?.length || f.get('reference')!.some((pat) => i.tags.some((t) => globMatch(pat, t) || globMatch(pat, t.replace(/:[^:/]+$/, ''))))) &&
          (!f.get('dangling')?.length || truthy(f.get('dangling')![0]) === (i.tags.length === 0)),
      );
      return {
        status: 200,
        json: list.map((i) => ({ Id: i.id, ParentId: '', RepoTags: i.tags.length ? [...i.tags] : ['<none>:<none>'], RepoDigests: [], Created: Math.floor(Date.parse(i.created) / 1000), Size: i.size, VirtualSize: i.size, SharedSize: -1, Labels: { ...i.config.labels }, Containers: -1 })),
      };
    }
    if ((x = /^\/images\/(.+)\/json$/.exec(p)) && m === 'GET') return { status: 200, json: imageInspect(getImage(x[1]!)) };
    if ((x = /^\/images\/(.+)\/tag$/.exec(p)) && m === 'POST') {
      const img = getImage(x[1]!);
      if (!r.q.repo) fail(400, 'repository name must have at least one component');
      tagImage(img, r.q.tag ? `${r.q.repo}:${r.q.tag}` : r.q.repo!);
      return { status: 201 };
    }
    if ((x = /^\/images\/(.+)$/.exec(p)) && m === 'DELETE') return imageRemove(x[1]!, truthy(r.q.force));

    // volumes
    if (p === '/volumes' && m === 'GET') {
      const f = parseFilters(r.q.filters);
      const inUse = new Set([...containers.values()].flatMap((c) => c.volumes.map((v) => v.name)));
      const list = [...volumes.values()].filter(
        (v) => labelsMatch(v.labels, f.get('label')) && anyMatch(f.get('name'), v.name) && (!f.get('dangling')?.length || truthy(f.get('dangling')![0]) === !inUse.has(v.name)),
      );
      return { status: 200, json: { Volumes: list.map(volumeJson), Warnings: null } };
    }
    if (p === '/volumes/create' && m === 'POST') {
      const name = (r.body.Name as string) || hex64();
      const existing = volumes.get(name);
      if (existing) return { status: 201, json: volumeJson(existing) };
      const v: Volume = { name, labels: { ...(r.body.Labels ?? {}) }, created: nowIso(), anonymous: false, options: r.body.DriverOpts ?? null };
      volumes.set(name, v);
      return { status: 201, json: volumeJson(v) };
    }
    if ((x = /^\/volumes\/([^/]+)$/.exec(p))) {
      const v = volumes.get(x[1]!) ?? fail(404, `get ${x[1]}: no such volume`);
      if (m === 'GET') return { status: 200, json: volumeJson(v) };
      if (m === 'DELETE') {
        const users = [...containers.values()].filter((c) => c.volumes.some((u) => u.name === v.name));
        if (users.length && !truthy(r.q.force)) fail(409, `remove ${v.name}: volume is in use - [${users.map((c) => c.id).join(', ')}]`);
        volumes.delete(v.name);
        return { status: 204 };
      }
    }

    return fail(404, 'page not found');
  }

  function versionJson(): Obj {
    const arch = process.arch === 'arm64' ? 'arm64' : 'amd64';
    return {
      Platform: { Name: 'talos-ha-lab fake Docker Engine' },
      Components: [{ Name: 'Engine', Version: FAKE_ENGINE_VERSION, Details: { ApiVersion: FAKE_API_VERSION, Arch: arch, MinAPIVersion: '1.12', Os: 'linux', KernelVersion: release(), Experimental: 'false', GitCommit: 'fake' } }],
      Version: FAKE_ENGINE_VERSION,
      ApiVersion: FAKE_API_VERSION,
      MinAPIVersion: '1.12',
      GitCommit: 'fake',
      GoVersion: 'go1.19.7',
      Os: 'linux',
      Arch: arch,
      KernelVersion: release(),
      BuildTime: '2023-04-04T00:00:00.000000000+00:00',
    };
  }
  function infoJson(): Obj {
    const all = [...containers.values()];
    return {
      ID: 'FAKE:ENGINE',
      Containers: all.length,
      ContainersRunning: all.filter((c) => c.status === 'running').length,
      ContainersPaused: all.filter((c) => c.status === 'paused').length,
      ContainersStopped: all.filter((c) => !active(c)).length,
      Images: images.size,
      Driver: 'overlay2',
      DockerRootDir: '/var/lib/docker',
      Name: 'fake-docker',
      ServerVersion: FAKE_ENGINE_VERSION,
      OperatingSystem: 'talos-ha-lab fake engine',
      OSType: 'linux',
      Architecture: process.arch === 'arm64' ? 'aarch64' : 'x86_64',
      KernelVersion: release(),
      NCPU: availableParallelism(),
      MemTotal: totalmem(),
      CgroupDriver: 'systemd',
      CgroupVersion: '2',
      Labels: [],
      SecurityOptions: ['name=seccomp,profile=default', 'name=cgroupns'],
      Warnings: null,
    };
  }

  function networkCreate(b: Obj): Reply {
    const name = String(b.Name ?? '');
    if (!name) fail(400, 'network name is required');
    if ([...networks.values()].some((n) => n.name === name)) fail(409, `network with name ${name} already exists`);
    const driver = String(b.Driver || 'bridge');
    if (driver !== 'bridge') fail(404, `plugin "${driver}" not found`);
    const cfgs = ((b.IPAM?.Config as Obj[] | undefined) ?? []).filter((c) => c && (c.Subnet || c.Gateway || c.IPRange));
    if (cfgs.length > 1) fail(400, 'fake docker: one IPv4 IPAM config per network is supported');
    let subnet: string;
    let gateway: string;
    let ipRange: string | undefined;
    const userSubnet = !!cfgs[0]?.Subnet;
    const taken = [...networks.values()].filter((n) => n.subnet).map((n) => cidr(n.subnet)!);
    const overlaps = (r: { base: number; size: number }) => taken.some((t) => r.base < t.base + t.size && t.base < r.base + r.size);
    if (userSubnet) {
      const c = cfgs[0]!;
      const s = cidr(String(c.Subnet));
      if (!s) fail(400, `invalid subnet ${c.Subnet}`);
      // libnetwork ipam: a requested pool must not overlap one in use on the same address space
      if (overlaps(s!)) fail(403, 'Pool overlaps with other one on this address space');
      subnet = `${n2ip(s!.base)}/${s!.len}`;
      if (c.Gateway) {
        if (!isIPv4(c.Gateway) || !inRange(ip2n(c.Gateway), s!)) fail(400, `no matching subnet for gateway ${c.Gateway}`);
        gateway = c.Gateway;
      } else gateway = n2ip(s!.base + 1);
      if (c.IPRange) {
        const rr = cidr(String(c.IPRange));
        if (!rr || !inRange(rr.base, s!) || !inRange(rr.base + rr.size - 1, s!)) fail(400, `no matching subnet for range ${c.IPRange}`);
        ipRange = c.IPRange;
      }
    } else {
      // the default address pools hand out 172.17–31.0.0/16, then 192.168.x.0/20 (daemon defaults)
      const candidates = [...Array.from({ length: 15 }, (_, i) => `172.${17 + i}.0.0/16`), ...Array.from({ length: 16 }, (_, i) => `192.168.${i * 16}.0/20`)];
      const free = candidates.find((c) => !overlaps(cidr(c)!));
      if (!free) fail(500, 'could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network');
      subnet = free!;
      gateway = n2ip(cidr(free!)!.base + 1);
    }
    const id = hex64();
    networks.set(id, {
      id,
      name,
      created: nowIso(),
      driver,
      scope: 'local',
      internal: !!b.Internal,
      attachable: !!b.Attachable,
      enableIPv6: !!b.EnableIPv6,
      ipamDriver: String(b.IPAM?.Driver ?? 'default'),
      subnet: subnet!,
      gateway: gateway!,
      ipRange,
      userSubnet,
      options: { ...(b.Options ?? {}) },
      labels: { ...(b.Labels ?? {}) },
      builtin: false,
    });
    return { status: 201, json: { Id: id, Warning: '' } };
  }

  function networkConnect(n: Network, b: Obj): Reply {
    const c = getContainer(String(b.Container ?? ''));
    const mode = String(c.create.HostConfig?.NetworkMode ?? '');
    if (mode.startsWith('container:') || mode === 'host' || mode === 'none') fail(400, `container sharing network namespace with another container or host cannot be connected to any other network`);
    if (n.builtin && n.name !== 'bridge') fail(400, `container cannot be disconnected from host network or connected to host network`);
    if (c.endpoints.has(n.id)) fail(403, `endpoint with name ${c.name} already exists in network ${n.name}`);
    c.endpoints.set(n.id, makeEndpoint(n, c, b.EndpointConfig as Obj | undefined));
    return { status: 200 };
  }
  function networkDisconnect(n: Network, b: Obj): Reply {
    const c = getContainer(String(b.Container ?? ''));
    if (!c.endpoints.has(n.id)) fail(403, `container ${c.id} is not connected to network ${n.name}`);
    c.endpoints.delete(n.id);
    return { status: 200 };
  }

  function containerMatches(c: Container, f: Map<string, string[]>): boolean {
    const labels = (c.create.Labels ?? {}) as Record<string, string>;
    if (!labelsMatch(labels, f.get('label'))) return false;
    if (!anyMatch(f.get('name'), `/${c.name}`, c.name)) return false;
    if (f.get('id')?.length && !f.get('id')!.some((i) => c.id.startsWith(i))) return false;
    if (f.get('status')?.length && !f.get('status')!.includes(c.status)) return false;
    if (f.get('network')?.length && !f.get('network')!.some((nn) => [...c.endpoints.values()].some((e) => e.networkId.startsWith(nn) || netName(e.networkId) === nn))) return false;
    if (f.get('ancestor')?.length && !f.get('ancestor')!.some((a) => findImage(a)?.id === c.imageId)) return false;
    if (f.get('exited')?.length && !(c.status === 'exited' && f.get('exited')!.includes(String(c.exitCode)))) return false;
    return true;
  }

  function containerCreate(r: Req): Reply {
    const b = r.body;
    const name = (r.q.name ?? (b.name as string | undefined) ?? '').replace(/^\//, '');
    const id = hex64();
    const finalName = name || `fake_${id.slice(0, 8)}`;
    // daemon/names.go validContainerNamePattern
    if (name && !/^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/.test(name)) fail(400, `Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
    const clash = [...containers.values()].find((c) => c.name === finalName);
    if (clash) fail(409, `Conflict. The container name "/${finalName}" is already in use by container "${clash.id}". You have to remove (or rename) that container to be able to reuse that name.`);
    if (!b.Image) fail(400, 'Config cannot be empty in order to create a container');
    const img = findImage(String(b.Image)) ?? fail(404, `No such image: ${b.Image}`);
    const now = Date.now();
    const c: Container = {
      id,
      name: finalName,
      created: new Date(now).toISOString(),
      createdMs: now,
      create: structuredClone(b),
      image: String(b.Image),
      imageId: img.id,
      status: 'created',
      pid: 0,
      exitCode: 0,
      startedAt: ZERO_TIME,
      startedMs: 0,
      finishedAt: ZERO_TIME,
      finishedMs: 0,
      restartCount: 0,
      endpoints: new Map(),
      volumes: [],
      binds: [],
      signals: [],
      execIds: [],
      waiters: [],
    };
    // networks: NetworkMode plus NetworkingConfig.EndpointsConfig (the API's way of a fixed address at create)
    const hc = (b.HostConfig ?? {}) as Obj;
    const mode = String(hc.NetworkMode ?? 'default');
    const eps = (b.NetworkingConfig?.EndpointsConfig ?? {}) as Record<string, Obj>;
    if (mode.startsWith('container:')) {
      getContainer(mode.slice('container:'.length)); // 404 when it does not exist
    } else if (mode !== 'host' && mode !== 'none') {
      const names = new Set<string>([mode === 'default' ? 'bridge' : mode, ...Object.keys(eps)]);
      for (const nn of names) {
        const n = getNetwork(nn);
        c.endpoints.set(n.id, makeEndpoint(n, c, eps[nn] ?? eps[n.id]));
      }
    }
    // mounts: anonymous volumes (Source ''), named volumes (created on first use), binds (must exist)
    const mkVolume = (vname: string, anonymous: boolean) => {
      if (!volumes.has(vname)) volumes.set(vname, { name: vname, labels: {}, created: nowIso(), anonymous, options: null });
    };
    for (const mt of (hc.Mounts ?? []) as Obj[]) {
      if (mt.Type === 'volume') {
        const anonymous = !mt.Source;
        const vname = anonymous ? hex64() : String(mt.Source);
        mkVolume(vname, anonymous);
        c.volumes.push({ name: vname, destination: String(mt.Target), anonymous });
      } else if (mt.Type === 'bind') {
        // the Mounts API refuses a missing bind source (unlike the legacy Binds, which create a directory)
        if (!mt.Source || !existsSync(String(mt.Source))) fail(400, `invalid mount config for type "bind": bind source path does not exist: ${mt.Source}`);
        c.binds.push({ source: String(mt.Source), destination: String(mt.Target), mode: '', rw: !mt.ReadOnly });
      }
    }
    for (const bind of (hc.Binds ?? []) as string[]) {
      const [src = '', dst = '', mode2 = ''] = bind.split(':');
      if (src.startsWith('/')) c.binds.push({ source: src, destination: dst, mode: mode2, rw: !/\bro\b/.test(mode2) });
      else {
        mkVolume(src, false);
        c.volumes.push({ name: src, destination: dst, anonymous: false });
      }
    }
    for (const dst of Object.keys((b.Volumes ?? {}) as Obj)) {
      const vname = hex64();
      mkVolume(vname, true);
      c.volumes.push({ name: vname, destination: dst, anonymous: true });
    }
    containers.set(id, c);
    return { status: 201, json: { Id: id, Warnings: [] } };
  }

  function containerAction(c: Container, action: string, r: Req): Reply | Promise<Reply> {
    const arg = (k: string) => r.q[k] ?? (r.body[k] === undefined ? undefined : String(r.body[k]));
    switch (action) {
      case 'start':
        return startContainer(c);
      case 'stop':
        if (!active(c)) return { status: 304 };
        // the stop signal (SIGTERM unless StopSignal) ends the main process: 128 + its number
        exitContainer(c, 128 + signalNumber(String(c.create.StopSignal ?? 'SIGTERM')));
        return { status: 204 };
      case 'restart':
        if (active(c)) exitContainer(c, 128 + signalNumber(String(c.create.StopSignal ?? 'SIGTERM')));
        return { ...startContainer(c), status: 204 };
      case 'kill': {
        if (!active(c)) fail(409, `Cannot kill container: ${c.id}: Container ${c.id} is not running`);
        const sig = signalNumber(arg('signal'));
        if (FATAL.has(sig)) exitContainer(c, 128 + sig);
        else c.signals.push(arg('signal') ?? String(sig));
        return { status: 204 };
      }
      case 'pause':
        if (c.status === 'paused') fail(409, `Container ${c.id} is already paused`);
        if (c.status !== 'running') fail(409, `Container ${c.id} is not running`);
        c.status = 'paused';
        return { status: 204 };
      case 'unpause':
        if (c.status !== 'paused') fail(409, `Container ${c.id} is not paused`);
        c.status = 'running';
        return { status: 204 };
      case 'wait': {
        const condition = (arg('condition') ?? 'not-running') as Waiter['condition'];
        if (!['not-running', 'next-exit', 'removed'].includes(condition)) fail(400, `invalid condition: "${condition}"`);
        if (condition === 'not-running' && !active(c)) return { status: 200, json: { StatusCode: c.exitCode } };
        return new Promise<Reply>((resolve) => c.waiters.push({ condition, resolve }));
      }
      case 'exec': {
        if (c.status === 'paused') fail(409, `Container ${c.id} is paused, unpause the container before exec`);
        if (c.status !== 'running') fail(409, `Container ${c.id} is not running`);
        const b = r.body;
        const cmd = Array.isArray(b.Cmd) ? (b.Cmd as unknown[]).map(String) : typeof b.Cmd === 'string' ? [b.Cmd] : [];
        if (!cmd.length) fail(400, 'No exec command specified');
        const id = hex64();
        execs.set(id, {
          id,
          containerId: c.id,
          cmd,
          env: Array.isArray(b.Env) ? b.Env.map(String) : [],
          user: String(b.User ?? ''),
          workingDir: String(b.WorkingDir ?? ''),
          tty: !!b.Tty,
          attachStdout: !!b.AttachStdout,
          attachStderr: !!b.AttachStderr,
          privileged: !!b.Privileged,
          started: false,
          running: false,
          exitCode: null,
          pid: 0,
        });
        c.execIds.push(id);
        return { status: 201, json: { Id: id } };
      }
    }
    return fail(404, 'page not found');
  }

  function execJson(x: Exec): Obj {
    return {
      CanRemove: false,
      ContainerID: x.containerId,
      DetachKeys: '',
      ExitCode: x.exitCode,
      ID: x.id,
      OpenStderr: x.attachStderr,
      OpenStdin: false,
      OpenStdout: x.attachStdout,
      ProcessConfig: { arguments: x.cmd.slice(1), entrypoint: x.cmd[0], privileged: x.privileged, tty: x.tty, user: x.user },
      Running: x.running,
      Pid: x.pid,
    };
  }

  async function execStart(id: string, r: Req): Promise<Reply> {
    const x = execs.get(id) ?? fail(404, `No such exec instance: ${id}`);
    if (x.started) fail(409, `Error: Exec command ${id} is already running`);
    const c = containers.get(x.containerId) ?? fail(404, `No such container: ${x.containerId}`);
    if (c.status === 'paused') fail(409, `Container ${c.id} is paused, unpause the container before exec`);
    if (c.status !== 'running') fail(409, `Container ${c.id} is not running`);
    const detach = !!r.body.Detach;
    const tty = r.body.Tty === undefined ? x.tty : !!r.body.Tty;
    x.started = true;
    x.running = true;
    x.pid = ++pidSeq;
    let out: ExecOutput | void;
    try {
      out = await onExec?.(view(c), [...x.cmd], { env: [...x.env], user: x.user, workingDir: x.workingDir, tty, detach });
    } catch (e) {
      x.running = false;
      x.exitCode = 126;
      return fail(500, `fake docker: the exec handler failed: ${(e as Error).message}`);
    }
    const finish = () => {
      if (!x.running) return;
      x.running = false;
      x.exitCode = out?.exitCode ?? 0;
    };
    const endAfterMs = Math.max(0, out?.durationMs ?? opts.execDurationMs ?? 50);
    if (detach) {
      later(finish, endAfterMs);
      return { status: 200 };
    }
    const so = x.attachStdout ? buf(out?.stdout) : Buffer.alloc(0);
    const se = x.attachStderr ? buf(out?.stderr) : Buffer.alloc(0);
    // a TTY exec has one raw stream; otherwise stdout and stderr frames (API v1.41: raw-stream content type)
    const data = tty ? Buffer.concat([so, se]) : Buffer.concat([...(so.length ? [frame(1, so)] : []), ...(se.length ? [frame(2, se)] : [])]);
    const body: RawBody = { contentType: 'application/vnd.docker.raw-stream', data, endAfterMs, onEnd: finish };
    return r.upgrade ? { status: 101, hijack: body } : { status: 200, raw: body };
  }

  function progress(lines: Obj[]): Reply {
    return { status: 200, raw: { contentType: 'application/json', data: Buffer.from(lines.map((l) => JSON.stringify(l) + '\r\n').join('')) } };
  }

  function imageBuild(r: Req): Reply {
    const tags = r.query.getAll('t').filter(Boolean);
    let labels: Record<string, string> = {};
    if (r.q.labels) {
      try {
        labels = JSON.parse(r.q.labels) as Record<string, string>;
      } catch {
        fail(400, `invalid labels: ${r.q.labels}`);
      }
    }
    const lines: Obj[] = [{ stream: `Sending build context to Docker daemon  ${r.bytes}B\r\n` }, { stream: `Step 1/1 : (fake engine: the ${r.bytes}-byte context is not read)\n` }];
    if (!r.bytes) return progress([...lines, { errorDetail: { message: 'Cannot locate specified Dockerfile: Dockerfile' }, error: 'Cannot locate specified Dockerfile: Dockerfile' }]);
    const verdict = onBuild?.({ tags, labels, bytes: r.bytes, query: r.q });
    if (verdict?.error) return progress([...lines, { errorDetail: { message: verdict.error }, error: verdict.error }]);
    const img = addImage(null, { labels: { ...(verdict?.labels ?? {}), ...labels }, ...(verdict?.env ? { env: [...verdict.env] } : {}) }, r.bytes);
    for (const t of tags) tagImage(img, t);
    return progress([
      ...lines,
      { stream: ' ---> Running in fake\n' },
      { aux: { ID: img.id } },
      { stream: `Successfully built ${img.id.slice(7, 19)}\n` },
      ...tags.map((t) => ({ stream: `Successfully tagged ${normalizeRef(t)}\n` })),
    ]);
  }

  function imageCreate(r: Req): Reply {
    if (r.q.fromSrc !== undefined) {
      if (r.q.fromSrc !== '-') fail(500, 'fake docker: importing from a URL is not supported (use fromSrc=- with the tar as body)');
      // an imported rootfs has no config but what --change gives it
      const config: Partial<ImageConfig> = { env: null };
      for (const ch of r.query.getAll('changes')) applyChange(config, ch);
      const img = addImage(null, config, r.bytes);
      if (r.q.repo) tagImage(img, r.q.tag ? `${r.q.repo}:${r.q.tag}` : r.q.repo);
      return progress([{ status: img.id }]);
    }
    if (r.q.fromImage) {
      const ref = r.q.tag && !r.q.fromImage.includes('@') ? `${r.q.fromImage}:${r.q.tag}` : r.q.fromImage;
      const known = findImage(ref);
      if (known) return progress([{ status: `Pulling from ${r.q.fromImage}`, id: r.q.tag ?? 'latest' }, { status: `Status: Image is up to date for ${normalizeRef(ref)}` }]);
      if (!opts.allowPull) fail(404, `pull access denied for ${r.q.fromImage}: the fake engine has no registry (register the image with images: [...] or addImage)`);
      addImage(ref);
      return progress([{ status: `Pulling from ${r.q.fromImage}`, id: r.q.tag ?? 'latest' }, { status: `Status: Downloaded newer image for ${normalizeRef(ref)}` }]);
    }
    return fail(400, 'fromImage or fromSrc is required');
  }

  function imageRemove(ref: string, force: boolean): Reply {
    const img = getImage(ref);
    const byTag = img.tags.includes(normalizeRef(ref)) && !/^(sha256:)?[0-9a-f]{12,64}$/.test(ref);
    if (byTag && img.tags.length > 1) {
      img.tags = img.tags.filter((t) => t !== normalizeRef(ref));
      return { status: 200, json: [{ Untagged: normalizeRef(ref) }] };
    }
    if (!force) {
      const user = [...containers.values()].find((c) => c.imageId === img.id);
      if (user) fail(409, `conflict: unable to remove repository reference "${ref}" (must force) - container ${user.id.slice(0, 12)} is using its referenced image ${img.id.slice(7, 19)}`);
      if (!byTag && img.tags.length > 1) fail(409, `conflict: unable to delete ${img.id.slice(7, 19)} (must be forced) - image is referenced in multiple repositories`);
    }
    images.delete(img.id);
    return { status: 200, json: [...img.tags.map((t) => ({ Untagged: t })), { Deleted: img.id }] };
  }

  // ---- transport -----------------------------------------------------------------------------
  function parseUrl(url: string): { path: string; version?: string; query: URLSearchParams } {
    const u = new URL(url, 'http://docker');
    let path = decodeURIComponent(u.pathname);
    let version: string | undefined;
    const m = /^\/v(\d+\.\d+)(\/.*)$/.exec(path);
    if (m) {
      version = m[1];
      path = m[2]!;
    }
    if (path.length > 1) path = path.replace(/\/+$/, '');
    return { path, version, query: u.searchParams };
  }

  function parseBody(data: Buffer, contentType: string | undefined): { body: Obj; recorded: unknown } {
    if (!data.length) return { body: {}, recorded: undefined };
    const ct = (contentType ?? '').toLowerCase();
    const binary = /tar|octet-stream|gzip/.test(ct);
    if (!binary) {
      try {
        const j = JSON.parse(data.toString('utf8')) as unknown;
        return { body: j && typeof j === 'object' && !Array.isArray(j) ? (j as Obj) : {}, recorded: j };
      } catch {
        /* not JSON: recorded as its length */
      }
    }
    return { body: {}, recorded: data.length };
  }

  async function handle(method: string, url: string, headers: IncomingMessage['headers'], data: Buffer, upgrade: boolean): Promise<{ entry: RecordedRequest; reply: Reply }> {
    const { path, version, query } = parseUrl(url);
    const q = Object.fromEntries(query.entries());
    const { body, recorded } = parseBody(data, headers['content-type']);
    const entry: RecordedRequest = { seq: log.length + 1, method, path, ...(version ? { version } : {}), query: q, ...(recorded !== undefined ? { body: recorded } : {}) };
    log.push(entry);
    let reply: Reply;
    try {
      reply = await route({ method, path, query, q, body, bytes: data.length, upgrade });
    } catch (e) {
      reply = e instanceof ApiError ? { status: e.status, json: { message: e.message } } : { status: 500, json: { message: `fake docker: ${(e as Error).message}` } };
    }
    entry.status = reply.status;
    try {
      appendFileSync(requestsFile, JSON.stringify(entry) + '\n');
    } catch {
      /* the directory went away with a test's cleanup: the in-memory log still has it */
    }
    return { entry, reply };
  }

  const baseHeaders = () => ({ 'Api-Version': FAKE_API_VERSION, 'Docker-Experimental': 'false', Ostype: 'linux', Server: `Docker/${FAKE_ENGINE_VERSION} (linux)` });

  function replyBody(reply: Reply): { contentType?: string; data: Buffer } {
    if (reply.raw) return reply.raw;
    if (reply.json !== undefined) return { contentType: 'application/json', data: Buffer.from(JSON.stringify(reply.json) + '\n') };
    return { data: Buffer.alloc(0) };
  }

  function writeHttp(res: ServerResponse, method: string, reply: Reply): void {
    const { contentType, data } = replyBody(reply);
    const noBody = reply.status === 204 || reply.status === 304 || method === 'HEAD';
    if (reply.raw?.endAfterMs !== undefined && !noBody) {
      // a stream that stays open while the exec runs (chunked)
      res.writeHead(reply.status, { ...baseHeaders(), 'Content-Type': reply.raw.contentType });
      if (data.length) res.write(data);
      const onEnd = reply.raw.onEnd;
      later(() => {
        onEnd?.();
        res.end();
      }, reply.raw.endAfterMs);
      return;
    }
    res.writeHead(reply.status, { ...baseHeaders(), ...(contentType ? { 'Content-Type': contentType } : {}), ...(noBody ? {} : { 'Content-Length': data.length }) });
    res.end(noBody ? undefined : data);
  }

  function writeRaw(socket: Socket, reply: Reply): void {
    if (reply.hijack) {
      // the API's hijack handshake: 101 UPGRADED, then the raw stream until the exec ends
      const head = ['HTTP/1.1 101 UPGRADED', `Content-Type: ${reply.hijack.contentType}`, 'Connection: Upgrade', 'Upgrade: tcp', `Api-Version: ${FAKE_API_VERSION}`, '', ''].join('\r\n');
      socket.write(Buffer.concat([Buffer.from(head), reply.hijack.data]));
      const onEnd = reply.hijack.onEnd;
      later(() => {
        onEnd?.();
        socket.end();
      }, reply.hijack.endAfterMs ?? 0);
      return;
    }
    const { contentType, data } = replyBody(reply);
    const lines = [`HTTP/1.1 ${reply.status} ${STATUS_CODES[reply.status] ?? ''}`, ...Object.entries(baseHeaders()).map(([k, v]) => `${k}: ${v}`), ...(contentType ? [`Content-Type: ${contentType}`] : []), `Content-Length: ${data.length}`, 'Connection: close', '', ''];
    socket.end(Buffer.concat([Buffer.from(lines.join('\r\n')), data]));
  }

  function readUpgradeBody(req: IncomingMessage, socket: Socket, head: Buffer): Promise<Buffer> {
    const len = Number(req.headers['content-length'] ?? 0);
    if (head.length >= len) return Promise.resolve(head.subarray(0, len));
    return new Promise((resolve) => {
      let got = head;
      const done = () => {
        socket.off('data', onData);
        socket.off('end', done);
        resolve(got.subarray(0, len));
      };
      const onData = (d: Buffer) => {
        got = Buffer.concat([got, d]);
        if (got.length >= len) done();
      };
      socket.on('data', onData);
      socket.on('end', done);
    });
  }

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      void handle(req.method ?? 'GET', req.url ?? '/', req.headers, Buffer.concat(chunks), false).then(({ reply }) => {
        if (!res.destroyed) writeHttp(res, req.method ?? 'GET', reply);
      });
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    void readUpgradeBody(req, socket, head)
      .then((data) => handle(req.method ?? 'POST', req.url ?? '/', req.headers, data, true))
      .then(({ reply }) => {
        if (!socket.destroyed) writeRaw(socket, reply);
      });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });

  return {
    socketPath,
    dockerHost: `unix://${socketPath}`,
    dir,
    requestsFile,
    requests: () => log.map((e) => structuredClone(e)),
    containers: () => [...containers.values()].map(view),
    networks: () =>
      [...networks.values()].map((n) => ({
        id: n.id,
        name: n.name,
        driver: n.driver,
        internal: n.internal,
        labels: { ...n.labels },
        options: { ...n.options },
        subnet: n.subnet,
        gateway: n.gateway,
        ...(n.ipRange ? { ipRange: n.ipRange } : {}),
        containers: Object.fromEntries([...containers.values()].filter((c) => c.endpoints.has(n.id)).map((c) => [c.name, c.endpoints.get(n.id)!.ip])),
      })),
    images: () => [...images.values()].map((i) => ({ id: i.id, tags: [...i.tags], labels: { ...i.config.labels }, env: i.config.env ? [...i.config.env] : null })),
    volumes: () => [...volumes.values()].map((v) => ({ name: v.name, labels: { ...v.labels }, anonymous: v.anonymous })),
    addImage: (ref, labels) => addImage(ref, { labels: { ...(labels ?? {}) } }).id,
    setExecHandler: (h) => {
      onExec = h;
    },
    setStartHandler: (h) => {
      onStart = h;
    },
    setBuildHandler: (h) => {
      onBuild = h;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      // pending waits end as the daemon going away would end them
      for (const c of containers.values()) {
        for (const w of c.waiters) w.resolve({ status: 503, json: { message: 'fake docker: engine stopped' } });
        c.waiters = [];
      }
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        for (const s of sockets) s.destroy();
      });
      rmSync(socketPath, { force: true });
      if (ownDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** True when `path` is a socket (for tests that check stop() removed it). */
export function isSocket(path: string): boolean {
  try {
    return statSync(path).isSocket();
  } catch {
    return false;
  }
}
