/**
 * Agent component `apiserver`: the kube-apiserver stand-in of a control-plane node. What it keeps
 * from the real one is what the lab measures through it:
 *
 * - HTTPS on `0.0.0.0:6443` with the node's serving certificate from the lab PKI (./pki.ts).
 * - Readiness follows the node's LOCAL etcd member: Talos runs kube-apiserver with
 *   `--etcd-servers=https://localhost:2379` only (siderolabs/talos internal/app/machined/pkg/
 *   controllers/k8s/control_plane.go, APIServerConfig EtcdServers, v1.11), so a control plane whose
 *   etcd member is cut off from quorum turns not-ready even though the other members are fine.
 *   The check is the real one's: a linearizable GET of `/registry/health` with a deadline
 *   (k8s.io/apiserver pkg/storage/storagebackend/factory/etcd3.go newETCD3Check/Probe; the readyz
 *   etcd check's timeout is the kube-apiserver flag `--etcd-readycheck-timeout`, default 2 s,
 *   added by kubernetes/kubernetes PR #111399, k8s ≥ 1.26). The real check is
 *   rate-limited to one probe per timeout/2 and serves the cached result in between; the stand-in
 *   probes every `pollMs` (250 ms) and serves the cached result, so `/readyz` itself never blocks.
 *   With a stopped etcd the probe fails at once (refused); with an etcd that lost quorum it fails
 *   when the deadline passes, i.e. not-ready within readyTimeoutMs + pollMs.
 * - `GET /readyz`, `/livez`, `/healthz`: 200 `ok` / 503 with the real text format
 *   (`[-]etcd failed: reason withheld`). `GET /version`: the real JSON shape, gitVersion from
 *   `topology.talos.kubernetesVersion`. One list call, `GET /api/v1/namespaces/default/endpoints`,
 *   answered from etcd (503 when etcd fails): the `kubernetes` Endpoints built from the API servers'
 *   master leases. Like the real lease endpoint reconciler, every API server refreshes
 *   `/registry/masterleases/<its ip>` every 10 s with a 15 s TTL (k8s.io/kubernetes pkg/controlplane
 *   DefaultEndpointReconcilerInterval = 10 s, DefaultEndpointReconcilerTTL = 15 s) and removes it
 *   on graceful stop (pkg/controlplane/controller.go Stop: "cleans up this API Server's endpoint
 *   reconciliation leases so another master can take over more quickly").
 * - coordination.k8s.io/v1 Leases, what client-go's leader election (kube-vip) calls: `GET` and
 *   `PUT …/namespaces/<ns>/leases/<name>`, `POST …/namespaces/<ns>/leases`. Stored in etcd under
 *   `/registry/leases/<ns>/<name>` (JSON here, protobuf in a real cluster) through the node's local
 *   member; `metadata.resourceVersion` is the key's mod revision, and an update whose
 *   resourceVersion is not the current one is refused with 409 Conflict, a create of an existing
 *   Lease with 409 AlreadyExists — the optimistic concurrency the real API server enforces
 *   (k8s.io/apiserver pkg/storage/etcd3 store.go GuaranteedUpdate: a transaction on the mod
 *   revision). A request waits for etcd at most its `timeout` query parameter, else the
 *   kube-apiserver default `--request-timeout` 60 s; the client gives up at its own deadline.
 * - Every response carries `x-served-by: <node>` and `x-client-ip: <peer address>`; JSON bodies
 *   carry `"node"` (the traffic probes read both, src/traffic/target.ts `servedBy`).
 *
 * Events: `ready` / `not-ready` on readiness transitions (with the etcd error), `listening`.
 * Stop (graceful shutdown drill): the listener closes first (new connections are refused at once,
 * which is what lets HAProxy re-dispatch them), open connections get up to 1 s, the master lease is
 * removed, the etcd client closed. Not emulated: authentication/authorization, the shutdown delay
 * (`--shutdown-delay-duration`, 0 by default), watch caches, everything else of the API.
 *
 * Config: `{ port?, host?, etcdEndpoints?, advertiseAddress?, readyTimeoutMs?, pollMs? }`; the
 * certificate comes from `pkiPaths(ctx.spec.stateDir).cert(ctx.host)`.
 */
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';
import { Etcd3, type IOptions } from 'etcd3';
import type { AgentComponent, AgentContext, ComponentFactory } from './agent/types.js';
import { pkiPaths } from './pki.js';

export interface ApiServerConfig {
  /** listen port (default topology.apiPort, 6443) */
  port?: number;
  /** bind address (default 0.0.0.0) */
  host?: string;
  /** etcd client URLs; default the node's local member `http://<node ip>:2379` */
  etcdEndpoints?: string[];
  /** the address published in the `kubernetes` Endpoints (default the node IP) */
  advertiseAddress?: string;
  /** deadline of the readiness probe (default 2000 ms, kube-apiserver --etcd-readycheck-timeout) */
  readyTimeoutMs?: number;
  /** readiness probe period (default 250 ms) */
  pollMs?: number;
}

// k8s.io/kubernetes pkg/controlplane: DefaultEndpointReconcilerInterval / TTL (see header)
const ENDPOINT_RECONCILE_MS = 10_000;
const MASTER_LEASE_TTL_S = 15;
const MASTER_LEASES = '/registry/masterleases/';
// kube-apiserver --etcd-readycheck-timeout default (see header)
const DEFAULT_READY_TIMEOUT_MS = 2000;
// kube-apiserver --request-timeout default (k8s.io/apiserver pkg/server/options ServerRunOptions: 60 s)
const REQUEST_TIMEOUT_MS = 60_000;
const LEASES = /^\/apis\/coordination\.k8s\.io\/v1\/namespaces\/([a-z0-9-]+)\/leases(?:\/([a-z0-9.-]+))?$/;
/** where the API server keeps a Lease in etcd (k8s.io/kubernetes pkg/registry/coordination/lease/storage: prefix /registry/leases) */
export const leaseKey = (namespace: string, name: string) => `/registry/leases/${namespace}/${name}`;

type Policy = NonNullable<NonNullable<IOptions['faultHandling']>['global']>;

/**
 * The etcd3 package wraps calls in cockatiel policies: a global retry (3 tries) and a per-host
 * circuit breaker that stops sending for 5 s after 3 consecutive failures (etcd3 v1.1
 * lib/connection-pool.js `defaultCircuitBreaker`). Both would blur the measurement (a recovered
 * etcd would look down 5 s longer), so every call here is exactly one attempt bounded by its
 * deadline (only `execute` of a policy is used by etcd3).
 */
const passThrough = {
  execute: <T>(fn: (c: { signal: AbortSignal }) => PromiseLike<T> | T, signal?: AbortSignal) =>
    Promise.resolve().then(() => fn({ signal: signal ?? new AbortController().signal })),
} as unknown as Policy;

function etcdClient(hosts: string[]): Etcd3 {
  return new Etcd3({
    hosts,
    dialTimeout: 2000,
    faultHandling: { host: () => passThrough, global: passThrough },
    // grpc-js reconnects with a backoff growing to 120 s; cap it so a restarted etcd is seen at once
    grpcOptions: { 'grpc.initial_reconnect_backoff_ms': 100, 'grpc.min_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': 1000 },
  });
}

const within = (ms: number) => ({ deadline: Date.now() + ms });

const factory: ComponentFactory = (ctx: AgentContext, config: ApiServerConfig = {}) => new ApiServer(ctx, config ?? {});
export default factory;

export class ApiServer implements AgentComponent {
  readonly kind = 'apiserver';
  private server?: https.Server;
  private etcd?: Etcd3;
  private ready = false;
  private lastError: string | null = 'not checked yet';
  private lastCheckAt: number | null = null;
  private stopped = false;
  private pollTimer?: NodeJS.Timeout;
  private leaseTimer?: NodeJS.Timeout;
  private readonly port: number;
  private readonly host: string;
  private readonly endpoints: string[];
  private readonly advertise: string;
  private readonly readyTimeoutMs: number;
  private readonly pollMs: number;
  private readonly name: string;

  constructor(
    private readonly ctx: AgentContext,
    config: ApiServerConfig,
  ) {
    const t = ctx.topology;
    const node = t.nodes.find((n) => n.name === ctx.host);
    this.name = ctx.host;
    this.port = config.port ?? t.apiPort;
    this.host = config.host ?? '0.0.0.0';
    const ip = node?.ip;
    if (!config.etcdEndpoints && !ip) throw new Error(`apiserver: ${ctx.host} is not a node of ${t.name} and no etcdEndpoints were given`);
    this.endpoints = config.etcdEndpoints ?? [`http://${ip}:2379`];
    this.advertise = config.advertiseAddress ?? ip ?? '127.0.0.1';
    this.readyTimeoutMs = config.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
    this.pollMs = config.pollMs ?? 250;
  }

  async start(): Promise<void> {
    const pki = pkiPaths(this.ctx.spec.stateDir);
    const key = readFileSync(pki.key(this.name));
    const cert = readFileSync(pki.cert(this.name));
    this.etcd = etcdClient(this.endpoints);
    const server = https.createServer({ key, cert }, (req, res) => void this.handle(req, res));
    server.on('clientError', (_e, socket) => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, this.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (e) => this.ctx.log('apiserver', `server error: ${e.message}`));
    this.server = server;
    this.ctx.emit('apiserver', 'listening', { port: this.port, etcd: this.endpoints });
    void this.pollLoop();
    void this.leaseLoop();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.pollTimer);
    clearTimeout(this.leaseTimer);
    const server = this.server;
    if (server) {
      // stop accepting first: new connections are refused from here on
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const grace = new Promise<void>((resolve) => setTimeout(resolve, 1000).unref());
      await Promise.race([closed, grace]);
      server.closeAllConnections();
    }
    if (this.etcd) {
      await this.etcd.delete().key(MASTER_LEASES + this.advertise).options(within(500)).exec().catch(() => undefined);
      this.etcd.close();
    }
  }

  status(): Record<string, unknown> {
    return { ready: this.ready, lastError: this.lastError, lastCheckAt: this.lastCheckAt, port: this.port, etcd: this.endpoints };
  }

  /** Readiness probe: one linearizable read with a deadline, then wait pollMs. */
  private async pollLoop(): Promise<void> {
    if (this.stopped || !this.etcd) return;
    let err: string | null = null;
    try {
      // etcd3 range requests are linearizable unless .serializable(true) is asked for
      await this.etcd.get('/registry/health').options(within(this.readyTimeoutMs)).exec();
    } catch (e) {
      err = (e as Error).message || String(e);
    }
    if (this.stopped) return;
    this.lastCheckAt = Date.now();
    this.lastError = err;
    const ready = err === null;
    if (ready !== this.ready) {
      this.ready = ready;
      this.ctx.emit('apiserver', ready ? 'ready' : 'not-ready', ready ? {} : { error: err });
      // a fresh lease right away, as the reconciler's first run after start-up does
      if (ready) void this.refreshLease();
    }
    this.pollTimer = setTimeout(() => void this.pollLoop(), this.pollMs);
  }

  private async leaseLoop(): Promise<void> {
    if (this.stopped) return;
    await this.refreshLease();
    if (this.stopped) return;
    this.leaseTimer = setTimeout(() => void this.leaseLoop(), ENDPOINT_RECONCILE_MS);
  }

  private async refreshLease(): Promise<void> {
    if (!this.etcd || !this.ready) return;
    try {
      const g = await this.etcd.leaseClient.leaseGrant({ TTL: MASTER_LEASE_TTL_S, ID: 0 }, within(this.readyTimeoutMs));
      const value = JSON.stringify({ kind: 'Endpoints', apiVersion: 'v1', subsets: [{ addresses: [{ ip: this.advertise }], ports: [{ name: 'https', port: this.port, protocol: 'TCP' }] }] });
      await this.etcd.put(MASTER_LEASES + this.advertise).value(value).lease(g.ID).options(within(this.readyTimeoutMs)).exec();
    } catch {
      // etcd trouble shows up in readiness; the lease simply expires
    }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const peer = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    res.setHeader('x-served-by', this.name);
    res.setHeader('x-client-ip', peer);
    res.setHeader('cache-control', 'no-cache, private');
    const [path = '/', query = ''] = (req.url ?? '/').split('?');
    const lease = LEASES.exec(path);
    if (lease) return this.leases(req, res, lease[1]!, lease[2], new URLSearchParams(query));
    if (req.method !== 'GET' && req.method !== 'HEAD') return this.json(res, 405, status(405, 'MethodNotAllowed', `method ${req.method} not allowed`, this.name));
    switch (path) {
      case '/readyz':
      case '/livez':
      case '/healthz': {
        const check = path.slice(1);
        if (this.ready) return this.text(res, 200, 'ok');
        // the real format of a failed check (k8s.io/apiserver pkg/server/healthz)
        return this.text(res, 503, `[-]etcd failed: reason withheld\n${check} check failed\n`);
      }
      case '/version':
        return this.json(res, 200, this.version());
      case '/api/v1/namespaces/default/endpoints':
        return this.listEndpoints(res);
      default:
        return this.json(res, 404, status(404, 'NotFound', `the server could not find the requested resource (${path})`, this.name));
    }
  }

  /** coordination.k8s.io/v1 Leases: get, create, update with resourceVersion (see header) */
  private async leases(req: IncomingMessage, res: ServerResponse, ns: string, name: string | undefined, q: URLSearchParams): Promise<void> {
    const t = /^(\d+)(ms|s)$/.exec(q.get('timeout') ?? '');
    const deadline = t ? Number(t[1]) * (t[2] === 's' ? 1000 : 1) : REQUEST_TIMEOUT_MS;
    const etcd = this.etcd!;
    const fail = (e: unknown) => this.json(res, 504, status(504, 'Timeout', `etcd: ${(e as Error).message}`, this.name));
    try {
      if (req.method === 'GET' && name) {
        const r = await etcd.get(leaseKey(ns, name)).options(within(deadline)).exec();
        const kv = r.kvs[0];
        if (!kv) return this.json(res, 404, status(404, 'NotFound', `leases.coordination.k8s.io "${name}" not found`, this.name));
        return this.json(res, 200, leaseObject(ns, name, JSON.parse(kv.value.toString()), String(kv.mod_revision)));
      }
      const body = await readJson(req).catch(() => null);
      const spec = (body as { spec?: Record<string, unknown> } | null)?.spec;
      if (!spec) return this.json(res, 400, status(400, 'BadRequest', 'expected a Lease with a spec', this.name));
      const value = JSON.stringify(spec);
      if (req.method === 'POST' && !name) {
        const leaseName = String((body as { metadata?: { name?: string } }).metadata?.name ?? '');
        if (!leaseName) return this.json(res, 400, status(400, 'BadRequest', 'expected metadata.name', this.name));
        const key = leaseKey(ns, leaseName);
        const r = await etcd.if(key, 'Create', '==', 0).then(etcd.put(key).value(value)).options(within(deadline)).commit();
        if (!r.succeeded) return this.json(res, 409, status(409, 'AlreadyExists', `leases.coordination.k8s.io "${leaseName}" already exists`, this.name));
        return this.json(res, 201, leaseObject(ns, leaseName, spec, String(r.header.revision)));
      }
      if (req.method === 'PUT' && name) {
        const rv = String((body as { metadata?: { resourceVersion?: string } }).metadata?.resourceVersion ?? '');
        const key = leaseKey(ns, name);
        if (!/^\d+$/.test(rv)) return this.json(res, 422, status(422, 'Invalid', 'metadata.resourceVersion: expected the version read', this.name));
        const r = await etcd.if(key, 'Mod', '==', rv).then(etcd.put(key).value(value)).options(within(deadline)).commit();
        if (!r.succeeded) {
          return this.json(res, 409, status(409, 'Conflict', `Operation cannot be fulfilled on leases.coordination.k8s.io "${name}": the object has been modified; please apply your changes to the latest version and try again`, this.name));
        }
        return this.json(res, 200, leaseObject(ns, name, spec, String(r.header.revision)));
      }
      return this.json(res, 405, status(405, 'MethodNotAllowed', `method ${req.method} not allowed`, this.name));
    } catch (e) {
      return fail(e);
    }
  }

  private async listEndpoints(res: ServerResponse): Promise<void> {
    try {
      const kvs = await this.etcd!.getAll().prefix(MASTER_LEASES).options(within(this.readyTimeoutMs)).strings();
      const addresses = Object.keys(kvs)
        .map((k) => k.slice(MASTER_LEASES.length))
        .sort()
        .map((ip) => ({ ip }));
      this.json(res, 200, {
        kind: 'EndpointsList',
        apiVersion: 'v1',
        node: this.name,
        items: [
          {
            metadata: { name: 'kubernetes', namespace: 'default' },
            subsets: addresses.length ? [{ addresses, ports: [{ name: 'https', port: this.port, protocol: 'TCP' }] }] : [],
          },
        ],
      });
    } catch (e) {
      this.json(res, 503, status(503, 'ServiceUnavailable', `etcd: ${(e as Error).message}`, this.name));
    }
  }

  private version() {
    const v = this.ctx.topology.talos.kubernetesVersion.replace(/^v/, '');
    const [major = '1', minor = '0'] = v.split('.');
    const arch = process.arch === 'x64' ? 'amd64' : process.arch;
    return {
      major,
      minor,
      gitVersion: `v${v}`,
      gitCommit: 'lab-stand-in',
      gitTreeState: 'clean',
      buildDate: '1970-01-01T00:00:00Z',
      goVersion: 'n/a (talos-ha-lab kube-apiserver stand-in)',
      compiler: 'gc',
      platform: `linux/${arch}`,
      node: this.name,
    };
  }

  private text(res: ServerResponse, code: number, body: string) {
    res.writeHead(code, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  private json(res: ServerResponse, code: number, body: unknown) {
    const s = JSON.stringify(body);
    res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s) });
    res.end(s);
  }
}

function leaseObject(namespace: string, name: string, spec: unknown, resourceVersion: string) {
  return { kind: 'Lease', apiVersion: 'coordination.k8s.io/v1', metadata: { name, namespace, resourceVersion }, spec };
}

function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => {
      body += d;
      if (body.length > 1 << 20) req.destroy(new Error('body too large'));
    });
    req.on('end', () => {
      try {
        resolve(JSON.parse(body));
      } catch (e) {
        reject(e);
      }
    });
    req.on('error', reject);
  });
}

function status(code: number, reason: string, message: string, node: string) {
  return { kind: 'Status', apiVersion: 'v1', status: 'Failure', message, reason, code, node };
}
