/**
 * The `kube-proxy` agent component: Service routing for LoadBalancer IPs in the node's own network
 * namespace, with real nftables NAT (kube-proxy's nftables mode, Kubernetes ≥ 1.31, does the same
 * with its own table; here one table `ip kube-proxy`, replaced atomically with `nft -f -`).
 *
 * For every Service IP:port and its stream port:
 * - `externalTrafficPolicy: Cluster` → DNAT to any ready endpoint (`numgen random`, like
 *   kube-proxy's probability rules) and mark the flow for masquerade (kube-proxy's
 *   `KUBE-MARK-MASQ`, mark 0x4000): replies return through the ingress node, and the pod sees the
 *   ingress node's IP (client IP lost). A flow delivered to this node's own pod is SNATed to the
 *   node IP too, so the pod sees the ingress node's address whichever endpoint was picked.
 * - `externalTrafficPolicy: Local` → DNAT only to this node's endpoint, no SNAT (client IP
 *   preserved). A node without a ready local endpoint drops the traffic (kube-proxy's
 *   "has no local endpoints" DROP, pkg/proxy/nftables/proxier.go, Kubernetes 1.34).
 * - A Cluster Service with no ready endpoint at all rejects (kube-proxy "has no endpoints" REJECT).
 * The rules sit at prerouting (traffic to an address this node holds — the L2 announcer — and
 * routed traffic — BGP, the router forwards the /32 to the node) and at output (the node's own
 * processes, and tests).
 *
 * strictARP: nodes never answer ARP for Service IPs they do not hold — an address is only ever
 * added by the node that announces it — and the node sets `arp_ignore=1` / `arp_announce=2`, what
 * kube-proxy's `ipvs.strictARP: true` sets (kubernetes.io/docs/reference/config-api/
 * kube-proxy-config.v1alpha1/, MetalLB installation docs "Preparation"). rp_filter is turned off
 * so asymmetric paths inside the cluster are not dropped.
 *
 * Endpoints (the EndpointSlice the real kube-proxy watches) are the nodes that run workloads. Their
 * readiness follows what the control plane would publish:
 * - a pod that terminates (graceful node shutdown) says so (./echo.ts): it is no longer *ready*
 *   but still *serving*; kube-proxy uses ready endpoints, and only when a Service (Cluster) or a
 *   node (Local) has none left, the serving terminating ones (ProxyTerminatingEndpoints, KEP-1669,
 *   GA in Kubernetes 1.28; pkg/proxy/topology.go CategorizeEndpoints). Once the pod is gone it is
 *   removed;
 * - a node that goes silent (crash, freeze, partition) is declared by the node lifecycle chain of
 *   ./endpoints.ts, built from its parts: this component also stands in for the node's kubelet
 *   and renews the node's Lease (every nodeLeaseDuration × 0.25, +U[0, 4 %) jitter, sliding), and
 *   every copy runs the node lifecycle controller's pass (`NodeLifecycle`) on a period grid shared
 *   by all nodes (the wall clock modulo --node-monitor-period), so every copy sees a renewal at
 *   the same pass and declares a silent node at the same pass — what the one controller in
 *   kube-controller-manager would publish to every kube-proxy. The rules then change through a
 *   BoundedFrequencyRunner (`SyncRunner`: minSyncPeriod, burst 2), as the real proxier's;
 * - TCP conntrack entries are NOT flushed when an endpoint goes away: the real kube-proxy clears
 *   only UDP entries (pkg/proxy/conntrack/cleanup.go: "we are only interested in UDP services").
 *   A SYN that matches a stale SYN_SENT entry keeps its old DNAT to the dead pod until the entry
 *   is nf_conntrack_tcp_timeout_syn_sent (120 s) old — real kernel behaviour the sim keeps; the
 *   outage probe does not reuse a 4-tuple within that time (src/traffic/outage.ts);
 * - a node that hears no other node at all (a sim-internal 1 s heartbeat, standing in for "can
 *   reach the API server") is the one cut off: it keeps its last endpoint view (a real kube-proxy
 *   keeps its rules when it loses the API server).
 *
 * Config: KubeProxyConfig (rendered by src/emulation/base-svc.ts).
 */
import dgram from 'node:dgram';
import type { AgentComponent, AgentContext, ComponentFactory } from './agent/types.js';
import type { LbService } from '../model/types.js';
import { KUBE_PROXY_READINESS_PORT, type PodState, type ReadinessMessage } from './echo.js';
import { nodeLifecycleTimers, type NodeLifecycleTimers } from './endpoints.js';
import { CORE_TIMERS } from '../model/timers.js';

export interface KubeProxyService {
  name: string;
  ip: string;
  port: number;
  targetPort: number;
  streamPort: number;
  externalTrafficPolicy: 'Cluster' | 'Local';
}

export interface KubeProxyEndpoint {
  node: string;
  ip: string;
}

export interface KubeProxyConfig {
  services: KubeProxyService[];
  /** nodes running the workload (one echo pod each) */
  endpoints: KubeProxyEndpoint[];
  /** IPs of every node's kube-proxy (heartbeat targets); default: all topology nodes */
  peers?: string[];
  /** this node's address (SNAT source for local delivery); default: the topology's node IP */
  nodeIp?: string;
  readinessPort?: number;
  /** sim-internal reachability heartbeat period (default 1000 ms): who hears nobody is cut off */
  heartbeatMs?: number;
  /** the node lifecycle parts (./endpoints.ts nodeLifecycleTimers); default: Kubernetes defaults */
  lifecycle?: NodeLifecycleTimers;
  /** LAN interface (rp_filter); default: the node's first interface */
  lanIf?: string;
}

/** kube-proxy's masquerade mark (KUBE-MARK-MASQ, `--masquerade-bit` 14 → 0x4000). */
export const MASQ_MARK = 0x4000;
export const TABLE = 'kube-proxy';
/** Kubernetes defaults of the node lifecycle chain (see ./endpoints.ts and src/model/timers.ts). */
export const DEFAULT_LIFECYCLE: NodeLifecycleTimers = nodeLifecycleTimers(CORE_TIMERS.kubernetes);

export function kubeProxyService(s: LbService): KubeProxyService {
  return { name: `${s.namespace}/${s.name}`, ip: s.ip, port: s.port, targetPort: s.targetPort, streamPort: s.streamPort, externalTrafficPolicy: s.externalTrafficPolicy };
}

/** An endpoint kube-proxy may use: ready, or serving while terminating. */
export interface EndpointState extends KubeProxyEndpoint {
  terminating: boolean;
}

export interface NftInput {
  node: string;
  nodeIp: string;
  services: KubeProxyService[];
  /** the endpoints that exist now (silent nodes and stopped pods left out) */
  endpoints: EndpointState[];
}

/** kube-proxy CategorizeEndpoints: ready ones; if none, the serving terminating ones. */
export function usableEndpoints(s: KubeProxyService, node: string, all: EndpointState[]): KubeProxyEndpoint[] {
  const candidates = s.externalTrafficPolicy === 'Local' ? all.filter((e) => e.node === node) : all;
  const ready = candidates.filter((e) => !e.terminating);
  return (ready.length ? ready : candidates).map(({ node: n, ip }) => ({ node: n, ip }));
}

const hex = (n: number) => `0x${n.toString(16)}`;

function dnatTo(eps: { ip: string; port: number }[]): string {
  if (eps.length === 1) return `dnat ip to ${eps[0]!.ip}:${eps[0]!.port}`;
  const map = eps.map((e, i) => `${i} : ${e.ip} . ${e.port}`).join(', ');
  return `dnat ip to numgen random mod ${eps.length} map { ${map} }`;
}

/**
 * The whole ruleset as one `nft -f` transaction (pure): `add table` + `flush table` + define =
 * atomic rewrite, the kernel swaps the old rules for the new in one commit, no window without
 * rules. The table and its base chains are KEPT (flushed, not deleted), as the real nftables
 * proxier keeps its table and rewrites chains and maps in place (pkg/proxy/nftables/proxier.go
 * syncProxyRules: one knftables transaction that flushes and refills what changed): deleting and
 * re-creating the table unregisters and re-registers its NAT hooks on every sync, and new
 * connections arriving around such a commit were measured failing (≈ 0.25 s on a quiet host,
 * seconds on a loaded one) — a step the real kube-proxy lacks.
 */
export function renderKubeProxyNft(i: NftInput): string {
  const nat: string[] = [];
  const filter: string[] = [];
  for (const s of i.services) {
    const ports = [
      { port: s.port, target: s.targetPort },
      { port: s.streamPort, target: s.streamPort },
    ];
    const local = s.externalTrafficPolicy === 'Local';
    const eps = usableEndpoints(s, i.node, i.endpoints);
    const portSet = `{ ${ports.map((p) => p.port).join(', ')} }`;
    if (!eps.length) {
      filter.push(
        local
          ? `    ip daddr ${s.ip} tcp dport ${portSet} counter drop comment "${s.name} has no local endpoints"`
          : `    ip daddr ${s.ip} tcp dport ${portSet} counter reject comment "${s.name} has no endpoints"`,
      );
      continue;
    }
    for (const p of ports) {
      const mark = local ? '' : `meta mark set meta mark | ${hex(MASQ_MARK)} `;
      nat.push(`    ip daddr ${s.ip} tcp dport ${p.port} counter ${mark}${dnatTo(eps.map((e) => ({ ip: e.ip, port: p.target })))} comment "${s.name} ${local ? 'Local' : 'Cluster'}"`);
    }
  }
  const L = [
    `table ip ${TABLE}`,
    `flush table ip ${TABLE}`,
    `table ip ${TABLE} {`,
    '  chain services {',
    ...nat,
    '  }',
    '  chain prerouting {',
    '    type nat hook prerouting priority dstnat; policy accept;',
    '    jump services',
    '  }',
    '  chain output {',
    '    type nat hook output priority -100; policy accept;',
    '    jump services',
    '  }',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    `    meta mark & ${hex(MASQ_MARK)} == ${hex(MASQ_MARK)} oifname != "lo" masquerade`,
    '  }',
    '  chain input {',
    '    type nat hook input priority 100; policy accept;',
    // Cluster traffic delivered to this node's own pod: the pod sees the ingress node (this one)
    `    meta mark & ${hex(MASQ_MARK)} == ${hex(MASQ_MARK)} iifname != "lo" snat ip to ${i.nodeIp}`,
    '  }',
    '  chain filter-services {',
    ...filter,
    '  }',
    '  chain filter-prerouting {',
    '    type filter hook prerouting priority mangle; policy accept;',
    '    jump filter-services',
    '  }',
    '  chain filter-output {',
    '    type filter hook output priority mangle; policy accept;',
    '    jump filter-services',
    '  }',
    '}',
  ];
  return L.join('\n') + '\n';
}

/** Sysctls of the node namespace that kube-proxy's routing needs (see the header). */
export function kubeProxySysctls(lanIf: string): string[] {
  return [
    'net.ipv4.conf.all.rp_filter=0',
    'net.ipv4.conf.default.rp_filter=0',
    `net.ipv4.conf.${lanIf}.rp_filter=0`,
    'net.ipv4.conf.all.arp_ignore=1',
    'net.ipv4.conf.all.arp_announce=2',
  ];
}

/**
 * The node lifecycle controller's view of the nodes (pure; time is passed in):
 * pkg/controller/nodelifecycle/node_lifecycle_controller.go tryUpdateNodeHealth. A node first
 * seen gets probeTimestamp = now ("assuming now as a timestamp"); a pass that sees a Lease
 * RenewTime newer than the saved one sets probeTimestamp = the pass's time; a Ready node whose
 * probeTimestamp + grace has passed is declared (Unknown; MarkPodsNotReady). A declared node is
 * ready again at the first pass that sees a new renewal (its kubelet is back and posts Ready; the
 * real kubelet's status manager may take up to its 10 s resync to set the pods Ready again: the
 * sim is up to that much early, only for holds longer than the removal time).
 */
export class NodeLifecycle {
  private readonly seen = new Map<string, number>(); // latest RenewTime observed (informer)
  private readonly saved = new Map<string, number>(); // RenewTime of the last pass that saw one
  private readonly probe = new Map<string, number>();
  private readonly notReady = new Set<string>();

  constructor(
    nodes: readonly string[],
    private readonly graceMs: number,
    now: number,
  ) {
    for (const n of nodes) this.probe.set(n, now);
  }

  /** the Lease informer delivered a renewal (RenewTime in epoch ms) */
  observe(node: string, renewTime: number): void {
    if (renewTime > (this.seen.get(node) ?? -Infinity)) this.seen.set(node, renewTime);
  }

  /**
   * One monitorNodeHealth pass at `now`; returns the nodes whose readiness changed. The real
   * check is `now.After(probe + grace)` on a loop that starts each pass one period after the
   * previous pass ENDED, so the pass nominally at probe + grace runs just after it: on the sim's
   * exact grid that is `>=`.
   */
  pass(now: number): string[] {
    const changed: string[] = [];
    for (const [node, probe] of this.probe) {
      const seen = this.seen.get(node);
      let p = probe;
      if (seen !== undefined && seen > (this.saved.get(node) ?? -Infinity)) {
        this.saved.set(node, seen);
        p = now;
        this.probe.set(node, now);
        if (this.notReady.delete(node)) changed.push(node);
      }
      if (!this.notReady.has(node) && now >= p + this.graceMs) {
        this.notReady.add(node);
        changed.push(node);
      }
    }
    return changed;
  }

  /** the node's pod was (re)started and is ready: the kubelet posted it, no pass needed */
  podReady(node: string, now: number): void {
    this.notReady.delete(node);
    this.probe.set(node, now);
  }

  ready(node: string): boolean {
    return !this.notReady.has(node);
  }

  /** every undeclared node's grace counts from now (a copy that could not watch) */
  restartGrace(now: number): void {
    for (const n of this.probe.keys()) if (!this.notReady.has(n)) this.probe.set(n, now);
  }
}

/**
 * kube-proxy's sync runner (k8s.io/kubernetes/pkg/util/async BoundedFrequencyRunner as the
 * nftables/iptables proxiers build it: minInterval = minSyncPeriod, burst 2): a token bucket of
 * `burst` tokens refilled one per minInterval; a request runs at once when a token is free,
 * else when the next one is. Pure: returns the delay to wait before running.
 */
export class SyncRunner {
  private tokens: number;
  private last: number;

  constructor(
    private readonly minIntervalMs: number,
    private readonly burst = 2,
    now = 0,
  ) {
    this.tokens = burst;
    this.last = now;
  }

  private refill(now: number): void {
    if (this.minIntervalMs <= 0) {
      this.tokens = this.burst;
      return;
    }
    const add = (now - this.last) / this.minIntervalMs;
    this.tokens = Math.min(this.burst, this.tokens + add);
    this.last = now;
  }

  /** ms to wait before a sync may run (0 = now); call `ran(now)` when it runs */
  delay(now: number): number {
    this.refill(now);
    return this.tokens >= 1 ? 0 : Math.ceil((1 - this.tokens) * this.minIntervalMs);
  }

  ran(now: number): void {
    this.refill(now);
    this.tokens = Math.max(0, this.tokens - 1);
  }
}

/** Endpoint readiness from the node lifecycle, pod notices and reachability (pure state; time is passed in). */
export class EndpointReadiness {
  private readonly pods = new Map<string, PodState>();
  private lastHeardAny: number;
  readonly lifecycle: NodeLifecycle;

  constructor(
    private readonly self: string,
    private readonly all: KubeProxyEndpoint[],
    graceMs: number,
    /** hearing no other node for this long = this node is the one cut off */
    private readonly isolatedAfterMs: number,
    now: number,
    /** nodes expected to heartbeat (every node but self) */
    private readonly others: number,
  ) {
    this.lastHeardAny = now;
    this.lifecycle = new NodeLifecycle(
      all.map((e) => e.node).filter((n) => n !== self),
      graceMs,
      now,
    );
  }

  /** a reachability heartbeat (and, when it carries one, the node's latest Lease renewal) */
  heartbeat(node: string, now: number, renewTime?: number): void {
    if (node === this.self) return;
    this.lastHeardAny = Math.max(this.lastHeardAny, now);
    if (renewTime !== undefined) this.lifecycle.observe(node, renewTime);
  }

  pod(node: string, state: PodState, now: number): void {
    this.pods.set(node, state);
    this.heartbeat(node, now);
    if (state === 'ready' && node !== this.self) this.lifecycle.podReady(node, now);
  }

  /**
   * The node lifecycle controller's pass. A node cut off keeps its last view: its copy decides
   * nothing and restarts every node's grace (what it sees once it is back is the controller's
   * current view, not a count it could not follow).
   */
  pass(now: number): string[] {
    if (!this.isolated(now)) return this.lifecycle.pass(now);
    this.lifecycle.restartGrace(now);
    return [];
  }

  isolated(now: number): boolean {
    return this.others > 0 && now - this.lastHeardAny >= this.isolatedAfterMs;
  }

  /** the endpoints that exist now: not stopped, on a node not declared (a node cut off keeps its last view) */
  endpoints(_now: number): EndpointState[] {
    return this.all
      .filter((e) => this.pods.get(e.node) !== 'stopped' && (e.node === this.self || this.lifecycle.ready(e.node)))
      .map((e) => ({ ...e, terminating: this.pods.get(e.node) === 'terminating' }));
  }
}

const factory: ComponentFactory = (ctx: AgentContext, config: KubeProxyConfig) => new KubeProxyComponent(ctx, config);
export default factory;

export class KubeProxyComponent implements AgentComponent {
  readonly kind = 'kube-proxy';
  private udp?: dgram.Socket;
  private timer?: NodeJS.Timeout;
  private renewTimer?: NodeJS.Timeout;
  private passTimer?: NodeJS.Timeout;
  private syncTimer?: NodeJS.Timeout;
  private stopped = false;
  private readiness!: EndpointReadiness;
  private runner!: SyncRunner;
  private lastRenew?: number;
  private wasIsolated = false;
  private applied = '';
  private applying: Promise<void> = Promise.resolve();
  private readonly nodeIp: string;
  private readonly peers: string[];
  private readonly lc: NodeLifecycleTimers;

  constructor(
    private readonly ctx: AgentContext,
    private readonly config: KubeProxyConfig,
  ) {
    if (!config || !Array.isArray(config.services) || !Array.isArray(config.endpoints)) {
      throw new Error(`kube-proxy: config needs {services, endpoints}, got ${JSON.stringify(config)}`);
    }
    const me = ctx.topology?.nodes.find((n) => n.name === ctx.host);
    const ip = config.nodeIp ?? me?.ip;
    if (!ip) throw new Error(`kube-proxy: no address for ${ctx.host} (give config.nodeIp)`);
    this.nodeIp = ip;
    this.peers = (config.peers ?? ctx.topology?.nodes.map((n) => n.ip) ?? []).filter((p) => p !== ip);
    this.lc = config.lifecycle ?? DEFAULT_LIFECYCLE;
  }

  private get heartbeatMs() {
    return this.config.heartbeatMs ?? 1000;
  }

  async start(): Promise<void> {
    const lan = this.config.lanIf ?? this.ctx.topology?.nodes.find((n) => n.name === this.ctx.host)?.interfaces[0]?.ifname ?? 'eth0';
    await this.ctx.run('sysctl', ['-qw', ...kubeProxySysctls(lan)]);
    const now = Date.now();
    this.readiness = new EndpointReadiness(this.ctx.host, this.config.endpoints, this.lc.graceMs, 3 * this.heartbeatMs, now, this.peers.length);
    this.runner = new SyncRunner(this.lc.minSyncMs, 2, now);
    await this.sync();
    const udp = dgram.createSocket('udp4');
    this.udp = udp;
    udp.on('error', (e) => this.ctx.log('kube-proxy', `readiness socket: ${e.message}`));
    udp.on('message', (buf) => this.onMessage(buf));
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(this.config.readinessPort ?? KUBE_PROXY_READINESS_PORT, '0.0.0.0', () => {
        udp.off('error', reject);
        resolve();
      });
    });
    this.timer = setInterval(() => this.tick(), this.heartbeatMs);
    this.renew(); // JitterUntil(…, sliding=true) runs the first sync at once
    this.schedulePass();
    this.ctx.emit('kube-proxy', 'ready', { services: this.config.services.length, endpoints: this.config.endpoints.map((e) => e.node) });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.renewTimer);
    clearTimeout(this.passTimer);
    clearTimeout(this.syncTimer);
    await new Promise<void>((r) => (this.udp ? this.udp.close(() => r()) : r()));
    this.udp = undefined;
    await this.applying.catch(() => undefined);
    await this.ctx.run('nft', ['delete', 'table', 'ip', TABLE], { reject: false });
  }

  status(): Record<string, unknown> {
    const now = Date.now();
    return { endpoints: this.readiness?.endpoints(now), isolated: this.readiness?.isolated(now), lastRenew: this.lastRenew, rules: this.applied };
  }

  async call(method: string): Promise<unknown> {
    if (method === 'endpoints') return this.readiness.endpoints(Date.now());
    if (method === 'rules') return this.applied;
    throw new Error(`kube-proxy: unknown method '${method}'; valid: endpoints, rules`);
  }

  private onMessage(buf: Buffer): void {
    let m: ReadinessMessage;
    try {
      m = JSON.parse(buf.toString('utf8')) as ReadinessMessage;
    } catch {
      return;
    }
    const now = Date.now();
    if (m.t === 'hb' || m.t === 'lease') this.readiness.heartbeat(m.node, now, m.renew);
    else if (m.t === 'ready' || m.t === 'terminating' || m.t === 'stopped') {
      this.readiness.pod(m.node, m.t, now);
      this.requestSync(); // a pod's readiness reaches the EndpointSlice at once
    }
  }

  private send(msg: ReadinessMessage): void {
    const buf = Buffer.from(JSON.stringify(msg));
    const port = this.config.readinessPort ?? KUBE_PROXY_READINESS_PORT;
    for (const p of this.peers) {
      try {
        this.udp?.send(buf, port, p);
      } catch {
        /* closing */
      }
    }
  }

  /**
   * The node's kubelet renews its Lease (this component stands in for it): RenewTime = now, seen
   * by every node's lifecycle copy (the Lease informer); the next renewal starts renewInterval ×
   * (1 + U[0, jitter)) after this one (wait.JitterUntil, sliding).
   */
  private renew(): void {
    if (this.stopped) return;
    this.lastRenew = Date.now();
    this.send({ t: 'lease', node: this.ctx.host, renew: this.lastRenew });
    const next = this.lc.renewMs * (1 + Math.random() * this.lc.renewJitter);
    this.renewTimer = setTimeout(() => this.renew(), next);
  }

  /** the node lifecycle controller's passes, on the grid every node shares (wall clock mod period) */
  private schedulePass(): void {
    if (this.stopped) return;
    const period = this.lc.monitorMs;
    const now = Date.now();
    const at = Math.floor(now / period) * period + period;
    this.passTimer = setTimeout(() => {
      const changed = this.readiness.pass(at);
      if (changed.length) {
        this.ctx.log('kube-proxy', `node lifecycle pass: ${changed.map((n) => `${n} ${this.readiness.lifecycle.ready(n) ? 'Ready' : 'NotReady'}`).join(', ')}`);
        for (const n of changed) this.ctx.emit('kube-proxy', this.readiness.lifecycle.ready(n) ? 'node-ready' : 'node-not-ready', { node: n });
        this.requestSync();
      }
      this.schedulePass();
    }, at - now);
  }

  /** sim-internal reachability heartbeat (carries the latest RenewTime, in case a lease datagram was lost) */
  private tick(): void {
    this.send({ t: 'hb', node: this.ctx.host, ...(this.lastRenew !== undefined ? { renew: this.lastRenew } : {}) });
    const isolated = this.readiness.isolated(Date.now());
    if (isolated !== this.wasIsolated) {
      this.wasIsolated = isolated;
      this.ctx.log('kube-proxy', isolated ? 'hears no other node: keeping the last endpoint view' : 'hears the other nodes again');
    }
  }

  /** a change to apply: through the BoundedFrequencyRunner (minSyncPeriod, burst 2) */
  private requestSync(): void {
    if (this.syncTimer || this.stopped) return;
    const wait = this.runner.delay(Date.now());
    this.syncTimer = setTimeout(() => {
      this.syncTimer = undefined;
      this.runner.ran(Date.now());
      void this.sync();
    }, wait);
  }

  /** re-render and apply when the ready endpoint set changed (serialised) */
  private sync(): Promise<void> {
    this.applying = this.applying.catch(() => undefined).then(async () => {
      const endpoints = this.readiness.endpoints(Date.now());
      const script = renderKubeProxyNft({ node: this.ctx.host, nodeIp: this.nodeIp, services: this.config.services, endpoints });
      if (script === this.applied) return;
      try {
        await this.ctx.run('nft', ['-f', '-'], { input: script });
        if (this.applied) this.ctx.log('kube-proxy', `endpoints now: ${endpoints.map((e) => `${e.node}${e.terminating ? ' (terminating)' : ''}`).join(', ') || 'none'}`);
        this.applied = script;
      } catch (e) {
        this.ctx.log('kube-proxy', `nft failed: ${(e as Error).message}`);
        if (!this.applied) throw e;
      }
    });
    return this.applying;
  }
}
