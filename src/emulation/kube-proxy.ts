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
 * - a node that goes silent (crash, freeze, partition) is marked NotReady by the node lifecycle
 *   controller after `--node-monitor-grace-period` (50 s since Kubernetes 1.32, kubernetes PR
 *   #126287; 40 s before), and its pods' endpoints stop being ready: removed after
 *   `notReadyAfterMs` of missing node heartbeats (each kube-proxy sends one per second, standing in
 *   for the kubelet's Lease renewals);
 * - a node that hears no other node at all is the one cut off: it cannot reach the API server
 *   either, so it keeps its last endpoint view (a real kube-proxy keeps its rules when it loses the
 *   API server).
 *
 * Config: KubeProxyConfig (rendered by src/emulation/base-svc.ts).
 */
import dgram from 'node:dgram';
import type { AgentComponent, AgentContext, ComponentFactory } from './agent/types.js';
import type { LbService } from '../model/types.js';
import { KUBE_PROXY_READINESS_PORT, type PodState, type ReadinessMessage } from './echo.js';

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
  /** node heartbeat period (default 1000 ms) */
  heartbeatMs?: number;
  /** silence after which a node's endpoints stop being ready (default 50 000 ms) */
  notReadyAfterMs?: number;
  /** LAN interface (rp_filter); default: the node's first interface */
  lanIf?: string;
}

/** kube-proxy's masquerade mark (KUBE-MARK-MASQ, `--masquerade-bit` 14 → 0x4000). */
export const MASQ_MARK = 0x4000;
export const TABLE = 'kube-proxy';
/** Kubernetes ≥ 1.32 `--node-monitor-grace-period` default (kubernetes/kubernetes PR #126287). */
export const NODE_MONITOR_GRACE_MS = 50_000;

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
 * The whole table as one `nft -f` transaction (pure). `add` + `delete` + define = atomic replace:
 * the kernel swaps the old rules for the new in one commit, no window without rules.
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
    `delete table ip ${TABLE}`,
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

/** Endpoint readiness from heartbeats and pod notices (pure state; time is passed in). */
export class EndpointReadiness {
  private readonly lastSeen = new Map<string, number>();
  private readonly pods = new Map<string, PodState>();
  private lastHeardAny: number;

  constructor(
    private readonly self: string,
    private readonly all: KubeProxyEndpoint[],
    private readonly notReadyAfterMs: number,
    /** hearing no other node for this long = this node is the one cut off */
    private readonly isolatedAfterMs: number,
    now: number,
    /** nodes expected to heartbeat (every node but self) */
    private readonly others: number,
  ) {
    this.lastHeardAny = now;
    for (const e of all) this.lastSeen.set(e.node, now);
  }

  heartbeat(node: string, now: number): void {
    if (node === this.self) return;
    this.lastSeen.set(node, Math.max(now, this.lastSeen.get(node) ?? now));
    this.lastHeardAny = Math.max(this.lastHeardAny, now);
  }

  pod(node: string, state: PodState, now: number): void {
    this.pods.set(node, state);
    this.heartbeat(node, now);
  }

  isolated(now: number): boolean {
    return this.others > 0 && now - this.lastHeardAny >= this.isolatedAfterMs;
  }

  /** the endpoints that exist now: not stopped, on a node that is not silent (or we are cut off) */
  endpoints(now: number): EndpointState[] {
    const isolated = this.isolated(now);
    return this.all
      .filter((e) => {
        if (this.pods.get(e.node) === 'stopped') return false;
        if (e.node === this.self || isolated) return true;
        return now - (this.lastSeen.get(e.node) ?? now) < this.notReadyAfterMs;
      })
      .map((e) => ({ ...e, terminating: this.pods.get(e.node) === 'terminating' }));
  }
}

const factory: ComponentFactory = (ctx: AgentContext, config: KubeProxyConfig) => new KubeProxyComponent(ctx, config);
export default factory;

export class KubeProxyComponent implements AgentComponent {
  readonly kind = 'kube-proxy';
  private udp?: dgram.Socket;
  private timer?: NodeJS.Timeout;
  private readiness!: EndpointReadiness;
  private applied = '';
  private applying: Promise<void> = Promise.resolve();
  private readonly nodeIp: string;
  private readonly peers: string[];

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
  }

  private get heartbeatMs() {
    return this.config.heartbeatMs ?? 1000;
  }

  async start(): Promise<void> {
    const lan = this.config.lanIf ?? this.ctx.topology?.nodes.find((n) => n.name === this.ctx.host)?.interfaces[0]?.ifname ?? 'eth0';
    await this.ctx.run('sysctl', ['-qw', ...kubeProxySysctls(lan)]);
    const now = Date.now();
    this.readiness = new EndpointReadiness(
      this.ctx.host,
      this.config.endpoints,
      this.config.notReadyAfterMs ?? NODE_MONITOR_GRACE_MS,
      3 * this.heartbeatMs,
      now,
      this.peers.length,
    );
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
    this.tick();
    this.ctx.emit('kube-proxy', 'ready', { services: this.config.services.length, endpoints: this.config.endpoints.map((e) => e.node) });
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await new Promise<void>((r) => (this.udp ? this.udp.close(() => r()) : r()));
    this.udp = undefined;
    await this.applying.catch(() => undefined);
    await this.ctx.run('nft', ['delete', 'table', 'ip', TABLE], { reject: false });
  }

  status(): Record<string, unknown> {
    const now = Date.now();
    return { endpoints: this.readiness?.endpoints(now), isolated: this.readiness?.isolated(now), rules: this.applied };
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
    if (m.t === 'hb') this.readiness.heartbeat(m.node, now);
    else if (m.t === 'ready' || m.t === 'terminating' || m.t === 'stopped') {
      this.readiness.pod(m.node, m.t, now);
      void this.sync(); // a pod's readiness changes the rules at once
    }
  }

  private tick(): void {
    const msg = Buffer.from(JSON.stringify({ t: 'hb', node: this.ctx.host } satisfies ReadinessMessage));
    const port = this.config.readinessPort ?? KUBE_PROXY_READINESS_PORT;
    for (const p of this.peers) {
      try {
        this.udp?.send(msg, port, p);
      } catch {
        /* closing */
      }
    }
    void this.sync();
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
