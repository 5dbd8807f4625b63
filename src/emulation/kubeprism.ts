/**
 * Agent component `kubeprism`: Talos KubePrism, a TCP load balancer on `127.0.0.1:7445` of every
 * node over the API servers, which kubelet and the other host-network clients use instead of the
 * external endpoint. Emulated after the code Talos runs (siderolabs/talos k8s.KubePrismController in
 * internal/app/machined/pkg/controllers/k8s, v1.11 → siderolabs/go-loadbalancer controlplane +
 * loadbalancer + upstream packages), with the same rules and numbers:
 *
 * Upstreams (Talos docs kubernetes-guides/configuration/kubeprism.md, v1.12): the external
 * cluster endpoint (config `clusterEndpoint`, e.g. the VIP or the HAProxy box, when a strategy
 * provides one), `localhost:<apiPort>` on control-plane nodes, and `<cp ip>:<apiPort>` of every
 * control plane.
 *
 * Scores (go-loadbalancer upstream/upstream.go NewListWithCmp defaults): every upstream starts at
 * score +1, each failed health check or failed dial subtracts 1, each passed check adds 1, clamped
 * to [-3, +3]; an upstream is used while its score is ≥ 0. So an upstream that has been healthy for
 * a while (+3) needs FOUR failures before it is avoided.
 *
 * Latency tiers (go-loadbalancer loadbalancer/node.go@v0.4.0 `mins` + calcTier): a passed check
 * puts the upstream in tier 0 (dial < 0.1 ms), 1 (≥ 0.1 ms), 2 (≥ 1 ms), 3 (≥ 10 ms), 4 (≥ 100 ms)
 * or 5 (≥ 1 s); a failed check keeps the tier. loadbalancer.TCP.AddRoute inserts
 * upstream.WithTiers(0, len(mins)−1 = 5, 1) (loadbalancer/loadbalancer.go@v0.4.0), so every
 * upstream STARTS in tier 1, and tiers run 0–5 (the upstream package's own default is 0–4 from 0).
 * Pick (upstream.go Pick) goes round robin over the lowest tier that has a usable upstream. So
 * real KubePrism strictly prefers what it dials fastest: on a control plane, `localhost` (a
 * loopback dial takes tens of µs in Go: tier 0) over every API server across the LAN (≥ one
 * round trip: tier 1 on real gear). Measuring that in Node is the catch: a dial here includes the
 * event loop's own latency (0.4–1 ms median for a loopback dial on the lab machine), which would
 * put every upstream in tier 1 or 2 and erase the 0.1 ms boundary. So a dial to this host itself
 * (127.0.0.0/8 or an address the node holds at that moment, a VIP included) that succeeds is
 * rated tier 0, as Go rates it;
 * a dial across the network is rated from the measured time, at least tier 1 (what a real LAN
 * gives; the sim's veth links are faster than real gear, which Go here would also rate tier 0).
 * A busy agent may still rate a remote upstream ≥ 1 ms (tier 2) where Go would have seen tier 1,
 * and then prefers the other upstreams until the next round — what real KubePrism does with an
 * upstream that is genuinely slower.
 *
 * Health checks (upstream.go healthcheck): a plain TCP dial of every upstream, one after another,
 * each bounded by the check timeout, then wait for the next tick of a ticker with the check
 * interval. Talos: KubePrismHealthCheckInterval = 20 s, KubePrismHealthCheckTimeout = 15 s
 * (pkg/machinery/constants/constants.go, v1.11; `topology.timers.kubePrism`). A TCP dial does not
 * look at /readyz: an API server whose etcd is cut off still accepts connections and stays "up".
 * Talos creates the list empty and adds the endpoints right after, so the first real check round
 * is one interval after start. Dial times are measured in Node and include event-loop delay: a
 * busy agent may rate an upstream ≥ 1 ms (tier 2) where Go would have seen tier 0, and then
 * prefers the other upstreams until the next round — what real KubePrism does with an upstream
 * that is genuinely slower.
 *
 * Connections (loadbalancer/target.go HandleConn + tcpproxy): each client connection picks ONE
 * upstream and dials it (KubePrismDialTimeout = 15 s); if that dial fails the client connection is
 * CLOSED (there is no retry on another upstream; the issue text assumed one — upstream does not,
 * checked in go-loadbalancer target.go: `OnDialError` closes `src` and calls `list.Down`) and the
 * upstream's score drops by 1. TCP keepalive 30 s on the upstream side (KubePrismKeepAlivePeriod).
 * Not emulated: TCP_USER_TIMEOUT (KubePrismTCPUserTimeout = 30 s; Node has no socket option for it).
 *
 * Events: `upstream-down` when an upstream's score falls below 0 (no longer picked), `upstream-up`
 * when it is back at ≥ 0; both with `{upstream, reason: 'dial'|'healthcheck', score}`.
 * Config: `{ host?, port?, clusterEndpoint?, upstreams?, healthIntervalMs?, healthTimeoutMs?,
 * dialTimeoutMs? }` (upstreams = the complete list as `ip:port`, replaces the default one).
 */
import net from 'node:net';
import os from 'node:os';
import type { AgentComponent, AgentContext, ComponentFactory } from './agent/types.js';
import type { Topology } from '../model/types.js';

export interface KubePrismConfig {
  /** listen address (default 127.0.0.1) */
  host?: string;
  /** listen port (default topology.kubePrismPort, 7445) */
  port?: number;
  /** the cluster endpoint `ip:port` (VIP / load balancer); listed first, as Talos does */
  clusterEndpoint?: string;
  /** the whole upstream list (`ip:port`), replacing the default */
  upstreams?: string[];
  healthIntervalMs?: number;
  healthTimeoutMs?: number;
  dialTimeoutMs?: number;
}

// go-loadbalancer upstream/upstream.go NewListWithCmp defaults (@v0.4.0)
const SCORE = { low: -3, high: 3, fail: -1, success: 1, initial: 1 } as const;
// go-loadbalancer loadbalancer/node.go `mins` (@v0.4.0): dial time thresholds of tiers 0..5 (ms)
export const TIER_MINS_MS = [0, 0.1, 1, 10, 100, 1000];
// loadbalancer.go@v0.4.0 AddRoute: upstream.WithTiers(0, len(mins)-1, 1)
export const TIER = { min: 0, max: TIER_MINS_MS.length - 1, init: 1 } as const;
// siderolabs/talos pkg/machinery/constants: KubePrismDialTimeout, KubePrismKeepAlivePeriod
const DIAL_TIMEOUT_MS = 15_000;
const KEEPALIVE_MS = 30_000;

export interface UpstreamState {
  address: string;
  host: string;
  port: number;
  score: number;
  tier: number;
}

/**
 * Talos' KubePrism endpoint list for a node (k8s/kubeprism_endpoints.go@v1.11.6): the cluster
 * endpoint, `localhost:<apiPort>` on control planes (127.0.0.1 here), then every control plane.
 */
export function kubePrismUpstreams(t: Topology, host: string, clusterEndpoint?: string): string[] {
  const node = t.nodes.find((n) => n.name === host);
  const list: string[] = [];
  if (clusterEndpoint) list.push(clusterEndpoint);
  if (node?.role === 'controlplane') list.push(`127.0.0.1:${t.apiPort}`);
  for (const n of t.nodes) if (n.role === 'controlplane') list.push(`${n.ip}:${t.apiPort}`);
  return [...new Set(list)];
}

/** go-loadbalancer calcTier: the tier a passed check with this dial time earns. */
export function tierFor(elapsedMs: number): number {
  for (let i = TIER_MINS_MS.length - 1; i >= 0; i--) if (elapsedMs >= TIER_MINS_MS[i]!) return i;
  return TIER_MINS_MS.length;
}

/** The tier of a passed health-check dial as Go would measure it (see the header): this host → 0, else ≥ 1. */
export function dialTier(elapsedMs: number, local: boolean): number {
  return local ? 0 : Math.max(1, tierFor(elapsedMs));
}

/** Is `host` this node itself (loopback or one of its addresses)? */
export function isLocalHost(host: string, ownAddresses: readonly string[]): boolean {
  return host === 'localhost' || host.startsWith('127.') || host === '::1' || ownAddresses.includes(host);
}

/** The addresses of this host right now (the agent runs in the node's namespace; a VIP it holds counts). */
function ownAddresses(): string[] {
  return Object.values(os.networkInterfaces()).flatMap((xs) => (xs ?? []).map((x) => x.address));
}

/** The upstream list with go-loadbalancer's scoring and picking rules (pure, testable). */
export class UpstreamList {
  readonly nodes: UpstreamState[];
  private current = -1;

  constructor(
    addresses: string[],
    private readonly onChange: (u: UpstreamState, usable: boolean, reason: 'dial' | 'healthcheck') => void = () => {},
  ) {
    this.nodes = addresses.map((address) => {
      const i = address.lastIndexOf(':');
      return { address, host: address.slice(0, i), port: Number(address.slice(i + 1)), score: SCORE.initial, tier: TIER.init };
    });
  }

  /** upstream.go Pick: round robin over the lowest tier holding a usable (score ≥ 0) upstream. */
  pick(): UpstreamState | null {
    const n = this.nodes.length;
    for (let tier = TIER.min; tier <= TIER.max; tier++) {
      for (let j = 0; j < n; j++) {
        const i = (this.current + 1 + j) % n;
        const u = this.nodes[i]!;
        if (u.tier === tier && u.score >= 0) {
          this.current = i;
          return u;
        }
      }
    }
    return null;
  }

  /** upstream.go upWithTier (tier -1 = keep) */
  up(u: UpstreamState, tier: number, reason: 'dial' | 'healthcheck' = 'healthcheck'): void {
    const was = u.score >= 0;
    u.score = Math.min(SCORE.high, u.score + SCORE.success);
    if (tier >= 0) u.tier = Math.max(TIER.min, Math.min(TIER.max, tier));
    if (!was && u.score >= 0) this.onChange(u, true, reason);
  }

  /** upstream.go downWithTier; a failed check or dial keeps the tier */
  down(u: UpstreamState, reason: 'dial' | 'healthcheck'): void {
    const was = u.score >= 0;
    u.score = Math.max(SCORE.low, u.score + SCORE.fail);
    if (was && u.score < 0) this.onChange(u, false, reason);
  }

  healthy(): boolean {
    return this.nodes.some((u) => u.score >= 0);
  }
}

const factory: ComponentFactory = (ctx: AgentContext, config: KubePrismConfig = {}) => new KubePrism(ctx, config ?? {});
export default factory;

export class KubePrism implements AgentComponent {
  readonly kind = 'kubeprism';
  readonly list: UpstreamList;
  private server?: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly abort = new AbortController();
  private readonly host: string;
  private readonly port: number;
  private readonly intervalMs: number;
  private readonly checkTimeoutMs: number;
  private readonly dialTimeoutMs: number;
  private stats = { accepted: 0, dialFailures: 0, noUpstream: 0 };

  constructor(
    private readonly ctx: AgentContext,
    config: KubePrismConfig,
  ) {
    const t = ctx.topology;
    this.host = config.host ?? '127.0.0.1';
    this.port = config.port ?? t.kubePrismPort;
    // topology.timers.kubePrism: Talos KubePrismHealthCheckInterval / Timeout (see header)
    this.intervalMs = config.healthIntervalMs ?? t.timers.kubePrism.healthIntervalS * 1000;
    this.checkTimeoutMs = config.healthTimeoutMs ?? t.timers.kubePrism.healthTimeoutS * 1000;
    this.dialTimeoutMs = config.dialTimeoutMs ?? DIAL_TIMEOUT_MS;
    const upstreams = config.upstreams ?? kubePrismUpstreams(t, ctx.host, config.clusterEndpoint);
    if (!upstreams.length) throw new Error(`kubeprism on ${ctx.host}: no upstreams (the topology has no control planes?)`);
    this.list = new UpstreamList(upstreams, (u, usable, reason) =>
      this.ctx.emit('kubeprism', usable ? 'upstream-up' : 'upstream-down', { upstream: u.address, reason, score: u.score }),
    );
  }

  async start(): Promise<void> {
    const server = net.createServer({ pauseOnConnect: true }, (c) => this.handle(c));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, this.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (e) => this.ctx.log('kubeprism', `server error: ${e.message}`));
    this.server = server;
    this.ctx.emit('kubeprism', 'listening', { address: `${this.host}:${this.port}`, upstreams: this.list.nodes.map((u) => u.address) });
    void this.healthLoop();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    const server = this.server;
    this.server = undefined;
    // close() only calls back once every connection is gone: stop listening, then cut them
    const closed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await closed;
  }

  status(): Record<string, unknown> {
    return {
      listening: `${this.host}:${this.port}`,
      healthy: this.list.healthy(),
      upstreams: this.list.nodes.map((u) => ({ address: u.address, score: u.score, tier: u.tier, usable: u.score >= 0 })),
      ...this.stats,
    };
  }

  private track(s: net.Socket) {
    this.sockets.add(s);
    s.once('close', () => this.sockets.delete(s));
  }

  private handle(client: net.Socket): void {
    this.stats.accepted++;
    this.track(client);
    client.on('error', () => client.destroy());
    const u = this.list.pick();
    if (!u) {
      // target.go: "no upstreams available, closing connection"
      this.stats.noUpstream++;
      client.destroy();
      return;
    }
    const up = net.connect({ host: u.host, port: u.port, noDelay: true, keepAlive: true, keepAliveInitialDelay: KEEPALIVE_MS });
    this.track(up);
    let connected = false;
    const dialTimer = setTimeout(() => up.destroy(Object.assign(new Error('dial timeout'), { code: 'ETIMEDOUT' })), this.dialTimeoutMs);
    up.once('connect', () => {
      connected = true;
      clearTimeout(dialTimer);
      client.pipe(up);
      up.pipe(client);
    });
    up.on('error', () => {
      clearTimeout(dialTimer);
      if (!connected) {
        // OnDialError: close the client connection, score the upstream down; no retry elsewhere
        this.stats.dialFailures++;
        this.list.down(u, 'dial');
        client.destroy();
      }
      up.destroy();
    });
    up.once('close', () => {
      clearTimeout(dialTimer);
      if (!client.destroyed) client.end();
    });
    client.once('close', () => {
      if (!up.destroyed) up.end();
    });
  }

  /** upstream.go healthcheck(): check every upstream in turn, then wait for the ticker. */
  private async healthLoop(): Promise<void> {
    const signal = this.abort.signal;
    const t0 = performance.now();
    let consumed = 0; // ticks consumed; Go's ticker keeps at most one pending tick
    for (;;) {
      // wait for the next tick (the first round runs one interval after start, see header)
      const k = Math.floor((performance.now() - t0) / this.intervalMs);
      if (k > consumed) consumed = k;
      else {
        consumed++;
        const wait = t0 + consumed * this.intervalMs - performance.now();
        if (!(await delay(wait, signal))) return;
      }
      for (const u of this.list.nodes) {
        if (signal.aborted) return;
        const started = performance.now();
        const ok = await dial(u.host, u.port, this.checkTimeoutMs, signal);
        if (signal.aborted) return;
        if (ok) this.list.up(u, dialTier(performance.now() - started, isLocalHost(u.host, ownAddresses())));
        else this.list.down(u, 'healthcheck');
      }
    }
  }
}

function delay(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, Math.max(0, ms));
    const onAbort = () => {
      clearTimeout(t);
      resolve(false);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** A plain TCP dial with a timeout (go-loadbalancer node.healthCheck). */
function dial(host: string, port: number, timeoutMs: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      s.destroy();
      resolve(ok);
    };
    const onAbort = () => done(false);
    const timer = setTimeout(() => done(false), timeoutMs);
    signal.addEventListener('abort', onAbort, { once: true });
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}
