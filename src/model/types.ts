/**
 * The RESOLVED lab model (parse, then resolve). Raw YAML is validated by the
 * schemas in ./schema.ts and resolved by ./resolve.ts into these objects: every address allocated,
 * every name fixed, every timer filled with its documented default. Everything after the model
 * (strategies, providers, drills, traffic, report) reads only these types.
 */

export type Role = 'controlplane' | 'worker';
/** A mechanism id known to the registry (src/strategies/registry.ts), checked when a lab loads. */
export type CpMechanismId = string;
export type SvcMechanismId = string;
export type DrillKind =
  | 'baseline'
  | 'graceful-shutdown'
  | 'crash'
  | 'freeze'
  | 'partition'
  | 'link-flap'
  | 'node-leave'
  | 'node-join'
  | 'garp-ignored'
  | 'vip-loss-internal'
  | 'class-conflict';
export type Target = 'api' | 'service';
export type VictimRule = 'holder' | 'random-controlplane' | 'worker' | 'random-node' | 'none' | { node: string };

/** One L2 segment (a bridge in the sim, a docker network, a VLAN on real gear). */
export interface Segment {
  name: string; // e.g. 'lan', 'rack1', 'fabric', 'uplink'
  kind: 'lan' | 'fabric' | 'uplink';
  cidr: string; // e.g. '10.10.0.0/24'
  prefixLen: number;
  /** the router that is this segment's default gateway (its address on the segment) */
  gateway?: { router: string; ip: string };
}

export interface Interface {
  /** interface name inside the host, e.g. 'eth0', 'eth1' */
  ifname: string;
  segment: string;
  ip: string;
  prefixLen: number;
}

export interface HostBase {
  name: string; // unique across the topology, e.g. 'cp1', 'w3', 'rtr', 'tor1', 'client1', 'lb'
  interfaces: Interface[];
  /** default gateway address (on one of the host's segments), if any */
  gateway?: string;
}

export interface Node extends HostBase {
  kind: 'node';
  role: Role;
  index: number; // 1-based within its role
  rack: string; // segment name of its LAN
  ip: string; // = interfaces[0].ip
  asn: number; // its BGP speaker's ASN (BGP mechanisms)
  runsWorkloads: boolean; // workers always; control planes when allowSchedulingOnControlPlanes
}

export interface Router extends HostBase {
  kind: 'router';
  role: 'edge' | 'tor' | 'single'; // single = the one router of a flat lab (LAN + uplink)
  asn: number;
  routerId: string;
  /** segments on which this router accepts BGP from nodes (dynamic neighbours, listen range) */
  nodeSegments: string[];
  /** BGP sessions to other routers (ToR ↔ edge) */
  peers: { router: string; ip: string; asn: number }[];
  /** false = a plain router without bgpd (no BGP mechanism can use it). Always set by resolve.ts. */
  bgp?: boolean;
}

export interface Client extends HostBase {
  kind: 'client';
}

export interface LoadBalancerHost extends HostBase {
  kind: 'lb';
  ip: string;
}

export type Host = Node | Router | Client | LoadBalancerHost;

export interface LbService {
  name: string; // e.g. 'web'
  namespace: string;
  ip: string; // from the pool
  port: number; // service port (80)
  targetPort: number; // pod port (8080)
  streamPort: number; // raw TCP echo port for long-lived connections (9000)
  externalTrafficPolicy: 'Cluster' | 'Local';
  /** spec.loadBalancerClass; undefined = class-less (MetalLB's by default) */
  loadBalancerClass?: string;
}

/**
 * The timers of the lab's network and of Kubernetes itself, with their documented defaults
 * (sources in src/model/timers.ts). Each mechanism adds its own group to this interface from its
 * folder (`declare module` in src/strategies/<id>/timers.ts), so `Timers` always has every group
 * of every registered mechanism.
 */
export interface CoreTimers {
  bgp: { keepaliveS: number; holdS: number; connectRetryS: number };
  bfd: { enabled: boolean; transmitMs: number; receiveMs: number; detectMultiplier: number };
  kubePrism: { healthIntervalS: number; healthTimeoutS: number };
  etcd: { heartbeatMs: number; electionMs: number };
  /** Kubernetes control loops that decide when a dead node's pods stop receiving Service traffic */
  kubernetes: { nodeMonitorGraceS: number; nodeMonitorPeriodS: number; nodeLeaseDurationS: number; proxyMinSyncS: number };
  /** router/client neighbour (ARP) cache, used by garp-ignored (Linux neigh defaults) */
  arp: { baseReachableS: number; delayFirstProbeS: number; ucastSolicit: number; retransMs: number; gcStaleS: number };
}

// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- mechanisms augment it
export interface Timers extends CoreTimers {}

/**
 * A mechanism's choices that are not timers, e.g. the upstream release it emulates: one group per
 * mechanism, `settings.<group>` in lab and topology files, with the defaults and rules in the
 * mechanism's folder (composed by src/model/settings.ts, merged like the timers: defaults ⊕
 * topology ⊕ lab). Each mechanism adds its group here with `declare module`.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- mechanisms augment it
export interface Settings {}

export interface Topology {
  name: string;
  file: string; // absolute path of the topology YAML
  segments: Segment[];
  nodes: Node[];
  routers: Router[];
  clients: Client[];
  loadBalancer?: LoadBalancerHost;
  /** API endpoint VIP (talos-vip, kube-vip) — in the control planes' LAN */
  vip: string;
  apiPort: number; // 6443
  kubePrismPort: number; // 7445
  pool: {
    name: string;
    cidr: string;
    addresses: string[];
    /** the LAN segment whose subnet contains the pool (L2 modes answer ARP there); undefined = routed only */
    segment?: string;
  };
  services: LbService[];
  nodeAsn: number; // default ASN of node speakers
  allowSchedulingOnControlPlanes: boolean;
  /** the single-node pitfall: control planes carry node.kubernetes.io/exclude-from-external-load-balancers */
  removeExcludeLbLabel: boolean;
  /** resilient ECMP on the router(s) (Linux resilient nexthop groups) */
  resilientEcmp: { enabled: boolean; buckets: number; idleTimerS: number };
  timers: Timers;
  /** every mechanism's settings group, filled with its defaults (see Settings) */
  settings: Settings;
  talos: { version: string; kubernetesVersion: string };
}

export interface StrategyRef {
  id: string; // '<cp>+<svc>', e.g. 'talos-vip+metallb-l2'
  cp: CpMechanismId;
  svc: SvcMechanismId;
  /**
   * Options of the strategy's mechanisms (each mechanism declares the ones it reads, see
   * Role.options), plus `bfd` (BFD on the BGP sessions of any BGP mechanism).
   */
  options: { bfd?: boolean } & Record<string, boolean | undefined>;
  label?: string;
  /** the article's recommendation for this lab's cluster size */
  recommended?: boolean;
}

export interface DrillSpec {
  kind: DrillKind;
  target: Target | 'both';
  victim: VictimRule;
  /** time the traffic runs before the injection */
  preMs: number;
  /** how long a condition (freeze/partition/link down) is held before restore; 0 = until recovered */
  holdMs: number;
  /** time after restore to let things settle before the next drill */
  settleMs: number;
  /** upper bound of the observation window after the injection */
  observeMs: number;
}

export interface TrafficProfile {
  rate: number; // req/s of the load generator per target
  connections: number;
  mode: 'keepalive' | 'new-connection';
  timeoutMs: number;
  probeIntervalMs: number; // outage probe (≤ 10 ms)
  probeTimeoutMs: number;
  recoverSuccesses: number; // consecutive successes that end an outage
  streams: number; // long-lived connections per target
}

export interface Lab {
  name: string;
  file: string;
  description: string;
  topology: Topology;
  strategies: StrategyRef[];
  drills: DrillSpec[];
  traffic: TrafficProfile;
  repeats: number;
  /** free-form thresholds the report flags against (e.g. maxApiOutageMs) */
  thresholds: Record<string, number>;
  /** what `--quick` does for this lab (applied by src/model/select.ts, not by the engine) */
  quick?: QuickSpec;
}

export interface QuickSpec {
  /** the drills kept in quick mode (a subset of the lab's drills, in the lab's order) */
  drills: DrillKind[];
  repeats: number;
  /** upper bounds of each drill's windows in quick mode */
  preMs: number;
  settleMs: number;
  observeMs: number;
  /** the effective timers in quick mode (the lab's timers ⊕ quick.timers) */
  timers: Timers;
}
