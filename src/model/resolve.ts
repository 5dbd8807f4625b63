/**
 * Raw (schema-valid) lab + topology → the resolved model of ./types.ts (parse, then resolve), with every
 * cross-field rule checked on the way. Nothing here throws on bad input: every problem is added to
 * an `Issues` collector with the file, the path inside it and what was expected, so the user sees
 * ALL problems at once (load.ts throws them as one LabInputError).
 *
 * Address plan (per segment, host numbers are 1-based offsets in the subnet):
 *   LAN     .1 its router (gateway) · .4 the load balancer, if on this LAN · nodes from
 *           network.firstNodeHost (default .11): control planes first, then workers
 *   fabric  .1 the edge router · .2… the ToRs in rack order · then the load balancer, if here
 *   uplink  .1 the router (flat) or the edge router (racks) · .4 the load balancer, if here ·
 *           clients from .10
 * Segments: flat layout → `lan` + `uplink`; rack layout → one LAN per rack (named after the rack,
 * behind its ToR) + `fabric` (ToRs ↔ edge) + `uplink` (edge ↔ clients).
 */
import type { InputIssue } from '../util/errors.js';
import type {
  Client,
  DrillKind,
  DrillSpec,
  Interface,
  Lab,
  LbService,
  LoadBalancerHost,
  Node,
  QuickSpec,
  Router,
  Segment,
  Settings,
  StrategyRef,
  Target,
  Timers,
  Topology,
  VictimRule,
} from './types.js';
import type { RawDrill, RawLab, RawTopology } from './schema.js';
import * as A from './address.js';
import { parseStrategyId, roles } from '../strategies/registry.js';
import { strategyConflicts } from '../strategies/compose.js';
import { mergeTimers, type TimersOverride } from './timers.js';
import { DEFAULT_TIMERS, timerIssues } from './timer-groups.js';
import { DEFAULT_SETTINGS, mergeSettings, settingsIssues, settingsTimerDefaults, type SettingsOverride } from './settings.js';

export type PathPart = string | number;

export interface SourceFile {
  /** the file as shown to the user (relative to the repo when inside it) */
  file: string;
  /** absolute path */
  abs: string;
  /** 1-based line of a path inside the file, when known */
  lineOf?(path: PathPart[]): number | undefined;
}

export function formatPath(path: PathPart[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

/** Collects every problem; `add` never throws. */
export class Issues {
  readonly list: InputIssue[] = [];
  add(src: SourceFile, path: PathPart[], message: string): void {
    const line = path.length ? src.lineOf?.(path) : undefined;
    this.list.push({ file: src.file, path: formatPath(path), message: line ? `${message} (line ${line})` : message });
  }
  get count(): number {
    return this.list.length;
  }
}

// ---------------------------------------------------------------------------------------------
// topology

export interface ResolvedTopology {
  topology: Topology;
  raw: RawTopology;
  src: SourceFile;
  /** where each host's address came from, for error messages */
  owners: Map<string, string>;
}

const LB_HOST = 4;
const FIRST_CLIENT_HOST = 10;

export function resolveTopology(raw: RawTopology, src: SourceFile, issues: Issues, fallbackName: string): ResolvedTopology | null {
  const before = issues.count;
  const add = (path: PathPart[], msg: string) => issues.add(src, path, msg);
  const net = raw.network;

  // --- layout ---------------------------------------------------------------------------------
  let layout: 'flat' | 'racks' | null = null;
  if (net.lan && net.racks) add(['network', 'racks'], 'give either network.lan (one flat cluster LAN) or network.racks (one LAN per rack), not both');
  else if (net.lan) layout = 'flat';
  else if (net.racks) layout = 'racks';
  else add(['network'], 'expected network.lan (one flat cluster LAN, e.g. 10.10.0.0/24) or network.racks (one LAN per rack behind its ToR router)');
  if (layout === 'flat') {
    if (net.fabric) add(['network', 'fabric'], 'network.fabric is only used with network.racks (the segment between the ToRs and the edge router); remove it for a flat LAN');
    if (raw.cluster.controlPlanes === undefined) add(['cluster', 'controlPlanes'], 'missing; expected the number of control-plane nodes (≥ 1)');
    else if (raw.cluster.controlPlanes < 1) add(['cluster', 'controlPlanes'], `expected at least 1 control plane, got ${raw.cluster.controlPlanes}`);
  }
  if (layout === 'racks') {
    if (!net.fabric) add(['network', 'fabric'], 'missing; the rack layout needs a fabric subnet between the ToR routers and the edge router, e.g. 10.20.0.0/24');
    for (const k of ['controlPlanes', 'workers'] as const) {
      if (raw.cluster[k] !== undefined) add(['cluster', k], `with network.racks the node counts are per rack (network.racks[].${k}); remove cluster.${k}`);
    }
    const cps = net.racks!.reduce((s, r) => s + r.controlPlanes, 0);
    if (cps < 1) add(['network', 'racks'], 'expected at least 1 control plane in some rack (network.racks[].controlPlanes)');
    if (!raw.router.bgp) add(['router', 'bgp'], 'the rack layout routes between racks with BGP (ToRs ↔ edge): the edge router needs bgp: true');
  }
  if (layout === null) return null;

  // --- segments -------------------------------------------------------------------------------
  interface SegPlan {
    seg: Segment;
    cidr: A.Cidr;
    path: PathPart[];
  }
  const segs: SegPlan[] = [];
  const segPath = new Map<string, PathPart[]>();
  const addSeg = (name: string, kind: Segment['kind'], cidrText: string | undefined, path: PathPart[], namePath?: PathPart[]) => {
    if (!cidrText) return;
    if (segs.some((s) => s.seg.name === name) || (namePath && ['fabric', 'uplink'].includes(name))) {
      add(namePath ?? path, `segment name '${name}' is already used; rack names must be unique and not 'fabric' or 'uplink'`);
      return;
    }
    const cidr = A.parseCidr(cidrText);
    segs.push({ seg: { name, kind, cidr: cidrText, prefixLen: cidr.prefixLen }, cidr, path });
    segPath.set(name, path);
  };
  if (layout === 'flat') addSeg('lan', 'lan', net.lan, ['network', 'lan']);
  else net.racks!.forEach((r, i) => addSeg(r.name, 'lan', r.cidr, ['network', 'racks', i, 'cidr'], ['network', 'racks', i, 'name']));
  if (layout === 'racks') addSeg('fabric', 'fabric', net.fabric, ['network', 'fabric']);
  addSeg('uplink', 'uplink', net.uplink, ['network', 'uplink']);
  for (let i = 0; i < segs.length; i++) {
    for (let j = 0; j < i; j++) {
      if (A.overlaps(segs[i]!.cidr, segs[j]!.cidr)) {
        add(segs[i]!.path, `${segs[i]!.seg.cidr} overlaps segment '${segs[j]!.seg.name}' (${segs[j]!.seg.cidr}); every segment needs its own subnet`);
      }
    }
  }
  const segOf = (name: string) => segs.find((s) => s.seg.name === name);

  // --- address book: every allocated address and who holds it ----------------------------------
  const owners = new Map<string, string>(); // ip → "router rtr (lan)"
  const hostNames = new Map<string, string>(); // name → what it is
  // generated names (cp1…, w1…, client1…) are fixed: reserve them first so a clash is blamed on
  // the name someone chose (router.name, loadBalancer.name, a ToR name)
  {
    const cps = layout === 'flat' ? (raw.cluster.controlPlanes ?? 0) : net.racks!.reduce((s, r) => s + r.controlPlanes, 0);
    const ws = layout === 'flat' ? (raw.cluster.workers ?? 0) : net.racks!.reduce((s, r) => s + r.workers, 0);
    for (let i = 1; i <= cps; i++) hostNames.set(`cp${i}`, `control-plane node cp${i}`);
    for (let i = 1; i <= ws; i++) hostNames.set(`w${i}`, `worker node w${i}`);
    for (let i = 1; i <= raw.clients; i++) hostNames.set(`client${i}`, `client host client${i}`);
  }
  const claimName = (name: string, what: string, path: PathPart[]) => {
    const had = hostNames.get(name);
    if (had) add(path, `host name '${name}' is already used by ${had}; host names must be unique across nodes, routers, the load balancer and clients`);
    else hostNames.set(name, what);
  };
  /** allocate host #n of a segment; null (and an issue) when it does not fit */
  const alloc = (segName: string, n: number, who: string): string | null => {
    const s = segOf(segName);
    if (!s) return null;
    try {
      const ip = A.host(s.cidr, n);
      owners.set(ip, who);
      return ip;
    } catch {
      const r = A.hostRange(s.cidr);
      add(s.path, `${s.seg.cidr} has ${r.count} usable addresses, too few for ${who} (host #${n} of the address plan); use a larger subnet`);
      return null;
    }
  };
  const iface = (ifname: string, segName: string, ip: string | null): Interface | null => {
    const s = segOf(segName);
    return s && ip ? { ifname, segment: segName, ip, prefixLen: s.cidr.prefixLen } : null;
  };
  const ifaces = (...xs: (Interface | null)[]) => xs.filter((x): x is Interface => x !== null);

  // --- routers ----------------------------------------------------------------------------------
  const routers: Router[] = [];
  const nodeAsnOfSeg = new Map<string, number>();
  if (layout === 'flat') {
    const r = raw.router;
    claimName(r.name, `router ${r.name}`, ['router', 'name']);
    const lanIp = alloc('lan', 1, `router ${r.name}`);
    const upIp = alloc('uplink', 1, `router ${r.name}`);
    routers.push({
      kind: 'router',
      name: r.name,
      role: 'single',
      asn: r.asn,
      routerId: lanIp ?? '0.0.0.0',
      interfaces: ifaces(iface('eth0', 'lan', lanIp), iface('eth1', 'uplink', upIp)),
      nodeSegments: r.bgp ? ['lan'] : [],
      peers: [],
      bgp: r.bgp,
    });
    nodeAsnOfSeg.set('lan', raw.cluster.nodeAsn);
    if (r.bgp && raw.cluster.nodeAsn === r.asn && !r.ibgp) {
      add(['cluster', 'nodeAsn'], `the nodes' ASN ${raw.cluster.nodeAsn} equals router.asn: eBGP needs different ASNs (or set router.ibgp: true for iBGP)`);
    }
  } else {
    const e = raw.router;
    claimName(e.name, `edge router ${e.name}`, ['router', 'name']);
    const edgeFabric = alloc('fabric', 1, `edge router ${e.name}`);
    const edgeUp = alloc('uplink', 1, `edge router ${e.name}`);
    const edge: Router = {
      kind: 'router',
      name: e.name,
      role: 'edge',
      asn: e.asn,
      routerId: edgeFabric ?? '0.0.0.0',
      interfaces: ifaces(iface('eth0', 'fabric', edgeFabric), iface('eth1', 'uplink', edgeUp)),
      nodeSegments: [],
      peers: [],
      bgp: true,
    };
    routers.push(edge);
    net.racks!.forEach((rk, i) => {
      const t = rk.tor;
      const p: PathPart[] = ['network', 'racks', i, 'tor'];
      claimName(t.name, `ToR router ${t.name}`, [...p, 'name']);
      const lanIp = alloc(rk.name, 1, `ToR router ${t.name}`);
      const fabIp = alloc('fabric', 2 + i, `ToR router ${t.name}`);
      routers.push({
        kind: 'router',
        name: t.name,
        role: 'tor',
        asn: t.asn,
        routerId: lanIp ?? '0.0.0.0',
        interfaces: ifaces(iface('eth0', rk.name, lanIp), iface('eth1', 'fabric', fabIp)),
        gateway: edgeFabric ?? undefined,
        nodeSegments: [rk.name],
        peers: edgeFabric ? [{ router: e.name, ip: edgeFabric, asn: e.asn }] : [],
        bgp: true,
      });
      if (fabIp) edge.peers.push({ router: t.name, ip: fabIp, asn: t.asn });
      if (t.asn === e.asn) add([...p, 'asn'], `ToR ${t.name} has the edge router's ASN ${e.asn}: the ToR ↔ edge sessions are eBGP and need different ASNs`);
      const nodeAsn = rk.nodeAsn ?? raw.cluster.nodeAsn;
      nodeAsnOfSeg.set(rk.name, nodeAsn);
      if (nodeAsn === t.asn && !t.ibgp) {
        add(rk.nodeAsn !== undefined ? ['network', 'racks', i, 'nodeAsn'] : ['cluster', 'nodeAsn'], `the nodes' ASN ${nodeAsn} equals ToR ${t.name}'s ASN: eBGP needs different ASNs (or set network.racks[${i}].tor.ibgp: true for iBGP)`);
      }
      if (nodeAsn === e.asn) {
        add(rk.nodeAsn !== undefined ? ['network', 'racks', i, 'nodeAsn'] : ['cluster', 'nodeAsn'], `the nodes' ASN ${nodeAsn} equals the edge router's ASN: routes from the nodes would be dropped by the edge's AS-path loop check`);
      }
    });
  }
  const gatewayOf = (segName: string): { router: string; ip: string } | undefined => {
    const s = segOf(segName);
    if (!s) return undefined;
    const r = routers.find((x) => x.interfaces.some((i) => i.segment === segName) && (s.seg.kind !== 'fabric' || x.role === 'edge'));
    const ip = r?.interfaces.find((i) => i.segment === segName)?.ip;
    return r && ip ? { router: r.name, ip } : undefined;
  };
  for (const s of segs) s.seg.gateway = gatewayOf(s.seg.name);

  // --- nodes ------------------------------------------------------------------------------------
  const nodes: Node[] = [];
  const allowSched = raw.cluster.allowSchedulingOnControlPlanes;
  const first = net.firstNodeHost;
  let cpIndex = 0;
  let wIndex = 0;
  const placeNodes = (segName: string, cps: number, workers: number) => {
    const asnHere = nodeAsnOfSeg.get(segName) ?? raw.cluster.nodeAsn;
    const gw = segOf(segName)?.seg.gateway?.ip;
    for (let k = 0; k < cps + workers; k++) {
      const role = k < cps ? 'controlplane' : 'worker';
      const index = role === 'controlplane' ? ++cpIndex : ++wIndex;
      const name = role === 'controlplane' ? `cp${index}` : `w${index}`;
      const ip = alloc(segName, first + k, `node ${name}`);
      if (!ip) continue;
      nodes.push({
        kind: 'node',
        name,
        role,
        index,
        rack: segName,
        ip,
        asn: asnHere,
        runsWorkloads: role === 'worker' || allowSched,
        interfaces: ifaces(iface('eth0', segName, ip)),
        gateway: gw,
      });
    }
  };
  if (layout === 'flat') placeNodes('lan', raw.cluster.controlPlanes ?? 0, raw.cluster.workers ?? 0);
  else for (const rk of net.racks!) placeNodes(rk.name, rk.controlPlanes, rk.workers);
  const workerCount = layout === 'flat' ? (raw.cluster.workers ?? 0) : net.racks!.reduce((s, r) => s + r.workers, 0);
  if (workerCount === 0 && !allowSched) {
    add(['cluster', 'allowSchedulingOnControlPlanes'], 'there are no workers, so the control planes must run the workloads: set allowSchedulingOnControlPlanes: true (or add workers)');
  }
  const removeExcludeLbLabel = raw.cluster.removeExcludeLbLabel ?? allowSched;
  if (workerCount === 0 && allowSched && !removeExcludeLbLabel) {
    add(['cluster', 'removeExcludeLbLabel'], 'with no workers every node is a control plane carrying node.kubernetes.io/exclude-from-external-load-balancers, so MetalLB/kube-vip would expose no Service: expected true (the single-node pitfall)');
  }
  const cpSegments = [...new Set(nodes.filter((n) => n.role === 'controlplane').map((n) => n.rack))];

  // --- load balancer and clients ------------------------------------------------------------------
  let loadBalancer: LoadBalancerHost | undefined;
  if (raw.loadBalancer) {
    const lb = raw.loadBalancer;
    const segName = lb.segment ?? cpSegments[0] ?? segs[0]!.seg.name;
    const s = segOf(segName);
    claimName(lb.name, `load balancer ${lb.name}`, ['loadBalancer', 'name']);
    if (!s) {
      add(['loadBalancer', 'segment'], `unknown segment '${segName}'; segments: ${segs.map((x) => x.seg.name).join(', ')}`);
    } else {
      const n = s.seg.kind === 'fabric' ? 2 + (net.racks?.length ?? 0) : LB_HOST;
      const ip = alloc(segName, n, `load balancer ${lb.name}`);
      if (ip) loadBalancer = { kind: 'lb', name: lb.name, ip, interfaces: ifaces(iface('eth0', segName, ip)), gateway: s.seg.gateway?.ip };
    }
  }
  const clients: Client[] = [];
  const upGw = segOf('uplink')?.seg.gateway?.ip;
  for (let i = 1; i <= raw.clients; i++) {
    const name = `client${i}`;
    const ip = alloc('uplink', FIRST_CLIENT_HOST + i - 1, `client ${name}`);
    if (ip) clients.push({ kind: 'client', name, interfaces: ifaces(iface('eth0', 'uplink', ip)), gateway: upGw });
  }

  // --- VIP ----------------------------------------------------------------------------------------
  const vip = net.vip;
  const vipSeg = segs.find((s) => A.contains(s.cidr, vip));
  if (!cpSegments.length) {
    // no control plane at all: already reported; a VIP check would only add noise
  } else if (!vipSeg || vipSeg.seg.kind !== 'lan' || !cpSegments.includes(vipSeg.seg.name)) {
    const where = cpSegments.map((n) => `${n} ${segOf(n)?.seg.cidr}`).join(', ');
    add(['network', 'vip'], `expected an address inside the control planes' LAN (${where}), got ${vip}${vipSeg ? ` (in segment '${vipSeg.seg.name}')` : ''}`);
  } else if (A.isNetworkOrBroadcast(vipSeg.cidr, vip)) {
    add(['network', 'vip'], `${vip} is the network or broadcast address of ${vipSeg.seg.cidr}; expected a host address`);
  }
  if (owners.has(vip)) add(['network', 'vip'], `${vip} is already the address of ${owners.get(vip)}; expected a free address`);

  // --- pool ---------------------------------------------------------------------------------------
  const poolCidr = A.parseCidr(net.pool.cidr);
  let poolSegment: string | undefined;
  for (const s of segs) {
    if (!A.overlaps(poolCidr, s.cidr)) continue;
    if (s.seg.kind !== 'lan') {
      add(['network', 'pool', 'cidr'], `${net.pool.cidr} overlaps the ${s.seg.name} segment (${s.seg.cidr}); a pool lies inside a cluster LAN (L2 and BGP modes) or outside every segment (BGP only)`);
    } else if (!A.within(poolCidr, s.cidr)) {
      add(['network', 'pool', 'cidr'], `${net.pool.cidr} straddles the edge of LAN '${s.seg.name}' (${s.seg.cidr}); expected a range entirely inside it or entirely outside it`);
    } else {
      // MetalLB hands out every address of a CIDR pool, so it must not contain the LAN's
      // network or broadcast address
      poolSegment = s.seg.name;
      for (const edge of [s.cidr.network, A.lastAddress(s.cidr)]) {
        if (s.cidr.prefixLen < 31 && A.contains(poolCidr, edge)) {
          add(['network', 'pool', 'cidr'], `${net.pool.cidr} contains ${A.intToIp(edge)}, the network or broadcast address of LAN '${s.seg.name}'`);
        }
      }
    }
  }
  if (A.contains(poolCidr, vip)) add(['network', 'pool', 'cidr'], `${net.pool.cidr} contains the VIP ${vip}; the API VIP and Service addresses must not overlap`);
  const taken = [...owners.entries()].filter(([ip]) => A.contains(poolCidr, ip));
  if (taken.length) {
    const shown = taken.slice(0, 4).map(([ip, who]) => `${ip} (${who})`).join(', ');
    add(['network', 'pool', 'cidr'], `${net.pool.cidr} overlaps host addresses: ${shown}${taken.length > 4 ? ` and ${taken.length - 4} more` : ''}; move the pool or the hosts (network.firstNodeHost)`);
  }
  let poolAddresses: string[] = [];
  try {
    poolAddresses = A.addresses(poolCidr, 1024);
  } catch (e) {
    add(['network', 'pool', 'cidr'], `${(e as Error).message}; expected a /22 or smaller`);
  }

  // --- services -----------------------------------------------------------------------------------
  const services: LbService[] = [];
  const rawServices = raw.services ?? [
    { name: 'web', namespace: 'default', port: 80, targetPort: 8080, streamPort: 9000, externalTrafficPolicy: 'Cluster' as const },
    { name: 'web-local', namespace: 'default', port: 80, targetPort: 8080, streamPort: 9000, externalTrafficPolicy: 'Local' as const },
  ];
  const svcPath = (i: number, k?: string): PathPart[] => (raw.services ? ['services', i, ...(k ? [k] : [])] : ['network', 'pool', 'cidr']);
  const usedSvcIps = new Set(rawServices.map((s) => ('ip' in s ? s.ip : undefined)).filter((x): x is string => !!x));
  const freeIps = poolAddresses.filter((ip) => !usedSvcIps.has(ip));
  const seenSvc = new Map<string, number>();
  const seenIp = new Map<string, string>();
  rawServices.forEach((s, i) => {
    const key = `${s.namespace}/${s.name}`;
    if (seenSvc.has(key)) add(svcPath(i, 'name'), `service '${key}' is listed twice (services[${seenSvc.get(key)}]); names must be unique`);
    seenSvc.set(key, i);
    let ip = 'ip' in s ? s.ip : undefined;
    if (ip) {
      if (!A.contains(poolCidr, ip)) add(svcPath(i, 'ip'), `${ip} is outside the pool ${net.pool.cidr}; expected an address from network.pool`);
    } else {
      ip = freeIps.shift();
      if (!ip) add(svcPath(i), `the pool ${net.pool.cidr} has no free address left for service '${s.name}'; use a larger pool`);
    }
    if (ip && seenIp.has(ip)) add(svcPath(i, 'ip'), `${ip} is already the address of service '${seenIp.get(ip)}'; each Service gets its own IP`);
    if (ip) seenIp.set(ip, s.name);
    if (s.port === s.streamPort) add(svcPath(i, 'streamPort'), `expected a port different from the service port ${s.port} (the stream echo listens beside the HTTP echo)`);
    if (ip) {
      services.push({
        name: s.name,
        namespace: s.namespace,
        ip,
        port: s.port,
        targetPort: s.targetPort,
        streamPort: s.streamPort,
        externalTrafficPolicy: s.externalTrafficPolicy,
        ...('loadBalancerClass' in s && s.loadBalancerClass ? { loadBalancerClass: s.loadBalancerClass } : {}),
      });
    }
  });
  for (const etp of ['Cluster', 'Local'] as const) {
    if (!rawServices.some((s) => s.externalTrafficPolicy === etp)) {
      add(['services'], `expected at least one Service with externalTrafficPolicy: ${etp} (the report compares Cluster, which SNATs, with Local, which keeps the client IP)`);
    }
  }

  if (net.apiPort === net.kubePrismPort) add(['network', 'kubePrismPort'], `expected a port different from network.apiPort (${net.apiPort})`);

  // --- settings and timers (topology layer; the lab layer is checked again in resolveLab) -------------
  const settings = mergeSettings(DEFAULT_SETTINGS, raw.settings as SettingsOverride | undefined);
  const timers = mergeTimers(DEFAULT_TIMERS, settingsTimerDefaults(settings), raw.timers as TimersOverride | undefined);

  if (issues.count > before) return null;
  const topology: Topology = {
    name: raw.name ?? fallbackName,
    file: src.abs,
    segments: segs.map((s) => s.seg),
    nodes,
    routers,
    clients,
    ...(loadBalancer ? { loadBalancer } : {}),
    vip,
    apiPort: net.apiPort,
    kubePrismPort: net.kubePrismPort,
    pool: { name: net.pool.name, cidr: net.pool.cidr, addresses: poolAddresses, ...(poolSegment ? { segment: poolSegment } : {}) },
    services,
    nodeAsn: raw.cluster.nodeAsn,
    allowSchedulingOnControlPlanes: allowSched,
    removeExcludeLbLabel,
    resilientEcmp: { ...net.resilientEcmp },
    timers,
    settings,
    talos: { ...raw.talos },
  };
  return { topology, raw, src, owners };
}

// ---------------------------------------------------------------------------------------------
// lab

type DrillDefaults = Omit<DrillSpec, 'kind'>;
/** Per-kind defaults of a drill's windows (the observe window is extended by the engine to the
 * mechanism's expected band, so these are lower bounds for slow failovers). A held fault's
 * `holdMs: 0` means "until the slowest strategy of the run could have failed over" (plan.ts
 * holdFor): a fixed 10 s freeze or partition ended before Talos VIP's 60 s session TTL did, so
 * Talos VIP never failed over and looked as good as kube-vip. A blip is the same drill with
 * `holdMs` set; a link flap is a blip by nature. */
export const DRILL_DEFAULTS: Record<DrillKind, DrillDefaults> = {
  baseline: { target: 'both', victim: 'none', preMs: 1000, holdMs: 0, settleMs: 1000, observeMs: 10000 },
  'graceful-shutdown': { target: 'both', victim: 'holder', preMs: 3000, holdMs: 0, settleMs: 5000, observeMs: 15000 },
  crash: { target: 'both', victim: 'holder', preMs: 3000, holdMs: 0, settleMs: 5000, observeMs: 15000 },
  freeze: { target: 'both', victim: 'holder', preMs: 3000, holdMs: 0, settleMs: 5000, observeMs: 15000 },
  partition: { target: 'both', victim: 'holder', preMs: 3000, holdMs: 0, settleMs: 5000, observeMs: 15000 },
  'link-flap': { target: 'both', victim: 'holder', preMs: 3000, holdMs: 2000, settleMs: 5000, observeMs: 15000 },
  'node-leave': { target: 'service', victim: 'holder', preMs: 3000, holdMs: 0, settleMs: 5000, observeMs: 10000 },
  'node-join': { target: 'service', victim: 'holder', preMs: 3000, holdMs: 0, settleMs: 5000, observeMs: 10000 },
  'garp-ignored': { target: 'both', victim: 'holder', preMs: 3000, holdMs: 0, settleMs: 5000, observeMs: 60000 },
  'vip-loss-internal': { target: 'api', victim: 'holder', preMs: 3000, holdMs: 0, settleMs: 5000, observeMs: 15000 },
  'class-conflict': { target: 'service', victim: 'none', preMs: 1000, holdMs: 0, settleMs: 1000, observeMs: 15000 },
};

/** the only target a kind makes sense for, if it has one */
const TARGET_OF: Partial<Record<DrillKind, Target>> = {
  'node-leave': 'service',
  'node-join': 'service',
  'vip-loss-internal': 'api',
  'class-conflict': 'service',
};

export function resolveLab(raw: RawLab, src: SourceFile, rt: ResolvedTopology, issues: Issues, fallbackName: string): Lab | null {
  const before = issues.count;
  const add = (path: PathPart[], msg: string) => issues.add(src, path, msg);
  const topo = rt.topology;
  const topoFile = rt.src.file;
  const bgpRouters = topo.routers.filter((r) => r.bgp !== false);
  const cpSegments = [...new Set(topo.nodes.filter((n) => n.role === 'controlplane').map((n) => n.rack))];

  // --- strategies -------------------------------------------------------------------------------------
  const strategies: StrategyRef[] = [];
  const seen = new Map<string, number>();
  raw.strategies.forEach((s, i) => {
    const p: PathPart[] = ['strategies', i];
    const parsed = parseStrategyId(s.id);
    if ('error' in parsed) return; // the schema already reported it
    if (seen.has(s.id)) add([...p, 'id'], `strategy '${s.id}' is listed twice (strategies[${seen.get(s.id)}]); each strategy runs once`);
    seen.set(s.id, i);
    const { cp, svc } = parsed;
    if (cp.traits.endpoint === 'lb-host' && !topo.loadBalancer) {
      add([...p, 'id'], `${cp.id} needs a load-balancer host in the topology: add \`loadBalancer: {}\` to ${topoFile}`);
    }
    const bgpUsers = [cp.traits.bgp ? cp.id : null, svc.traits.bgp ? svc.id : null].filter(Boolean);
    if (bgpUsers.length && bgpRouters.length === 0) {
      add([...p, 'id'], `${bgpUsers.join(' and ')} announce over BGP, but ${topoFile} has no router with BGP (router '${topo.routers[0]?.name}' has bgp: false)`);
    }
    if (cp.traits.l2 && cpSegments.length > 1) {
      const routed = CP_ROUTED().join('/');
      add([...p, 'id'], `${cp.id} moves the VIP on one L2 segment, but the control planes of ${topoFile} span ${cpSegments.join(', ')}; put them in one rack or use ${routed}`);
    }
    if (svc.traits.l2) {
      const seg = topo.pool.segment;
      if (!seg) add([...p, 'id'], `${svc.id} answers ARP for Service IPs on a LAN, but the pool ${topo.pool.cidr} of ${topoFile} is outside every LAN; put network.pool inside a cluster LAN`);
      else if (!topo.nodes.some((n) => n.rack === seg && n.runsWorkloads)) {
        add([...p, 'id'], `${svc.id} needs nodes that run workloads on the pool's LAN '${seg}' to answer ARP there; ${topoFile} has none`);
      }
    }
    // an option is meaningful when one of the strategy's roles declares it (and, if it says so, beside the other role)
    for (const [name, value] of Object.entries(s.options)) {
      if (value === undefined || name === 'bfd') continue;
      const pairs: [typeof cp | typeof svc, typeof cp | typeof svc][] = [[cp, svc], [svc, cp]];
      const owners = pairs.filter(([r]) => r.options?.[name]);
      const why = owners.map(([r, other]) => r.options![name]!.meaningful?.(other) ?? null);
      if (!owners.length) {
        const declaring = roles().filter((r) => r.options?.[name]).map((r) => `${r.id} (${r.kind === 'cp' ? 'API' : 'Services'})`);
        add([...p, 'options', name], `only meaningful with ${[...new Set(declaring)].join(' or ')}, not for ${s.id}`);
      } else if (why.every((w) => w !== null)) {
        add([...p, 'options', name], `${why.find((w) => w)} (${s.id})`);
      }
    }
    if (s.options.bfd && !bgpUsers.length) add([...p, 'options', 'bfd'], `BFD speeds up BGP failure detection; ${s.id} uses no BGP`);
    strategies.push({
      id: s.id,
      cp: cp.id,
      svc: svc.id,
      options: { ...s.options },
      label: s.label ?? `${cp.title} + ${svc.title}`,
      recommended: s.recommended,
    });
  });

  // --- drills ------------------------------------------------------------------------------------------
  const drills: DrillSpec[] = [];
  const seenKind = new Map<string, number>();
  const listOf = (xs: readonly string[]) => xs.join(', ');
  raw.drills.forEach((d: RawDrill, i) => {
    const p: PathPart[] = ['drills', i];
    const kind = d.kind;
    if (seenKind.has(kind)) add([...p, 'kind'], `drill '${kind}' is listed twice (drills[${seenKind.get(kind)}]); set repeats for more runs`);
    seenKind.set(kind, i);
    const def = DRILL_DEFAULTS[kind];
    const target = d.target ?? def.target;
    const only = TARGET_OF[kind];
    if (only && target !== only) add([...p, 'target'], `${kind} is measured on the ${only === 'api' ? 'API endpoint' : 'Service address'}: expected target: ${only}, got ${target}`);
    const victim: VictimRule = d.victim ?? def.victim;
    if (kind === 'baseline' || kind === 'class-conflict') {
      if (d.victim !== undefined && victim !== 'none') add([...p, 'victim'], `${kind} acts on no node: expected victim: none (or leave it out)`);
    } else if (victim === 'none') {
      add([...p, 'victim'], `${kind} needs a victim node: expected one of holder, random-controlplane, worker, random-node or { node: <name> }`);
    }
    if (victim === 'worker' && !topo.nodes.some((n) => n.role === 'worker')) add([...p, 'victim'], `${topoFile} has no workers: expected another victim rule`);
    if (typeof victim === 'object' && !topo.nodes.some((n) => n.name === victim.node)) {
      const names = topo.nodes.map((n) => n.name);
      add([...p, 'victim', 'node'], `no node '${victim.node}' in ${topoFile}; nodes: ${names.slice(0, 8).join(', ')}${names.length > 8 ? ', …' : ''}`);
    }

    // is there at least one strategy in this lab the drill means something for?
    const targets: Target[] = target === 'both' ? ['api', 'service'] : [target];
    const why = drillNeed(kind, targets, strategies);
    if (why) add([...p, 'kind'], why);

    const t = (k: 'preMs' | 'holdMs' | 'settleMs' | 'observeMs') => d[k] ?? def[k];
    drills.push({ kind, target, victim, preMs: t('preMs'), holdMs: t('holdMs'), settleMs: t('settleMs'), observeMs: t('observeMs') });
  });

  // --- settings: defaults ⊕ topology ⊕ lab, each issue blamed on the file that set it -----------------
  const settingLayers: { src: SourceFile; base: PathPart[]; over: SettingsOverride | undefined }[] = [
    { src: rt.src, base: ['settings'], over: rt.raw.settings as SettingsOverride | undefined },
    { src, base: ['settings'], over: raw.settings as SettingsOverride | undefined },
  ];
  const settings = mergeSettings(DEFAULT_SETTINGS, ...settingLayers.map((l) => l.over));

  // --- timers: defaults ⊕ what the settings imply ⊕ topology ⊕ lab (⊕ quick), each issue blamed on the file that set it
  const layers: { src: SourceFile; base: PathPart[]; over: TimersOverride | undefined }[] = [
    { src: rt.src, base: ['timers'], over: rt.raw.timers as TimersOverride | undefined },
    { src, base: ['timers'], over: raw.timers as TimersOverride | undefined },
  ];
  const timers = mergeTimers(DEFAULT_TIMERS, settingsTimerDefaults(settings), ...layers.map((l) => l.over));
  checkTimers(timers, layers, issues);
  checkSettings(settings, timers, settingLayers, issues);

  // --- what a role cannot do as configured (e.g. a release without a feature the lab asks for) --------
  raw.strategies.forEach((s, i) => {
    const ref = strategies.find((x) => x.id === s.id);
    const parsed = parseStrategyId(s.id);
    if (!ref || 'error' in parsed) return;
    const t = { ...topo, timers, settings };
    for (const role of new Set([parsed.cp, parsed.svc])) {
      const why = role.strategyIssue?.(ref, t);
      if (!why) continue;
      const optionSet = why.option !== undefined && (s.options as Record<string, unknown>)[why.option] !== undefined;
      add(['strategies', i, ...(optionSet ? ['options', why.option!] : ['id'])], why.message);
    }
  });

  // --- quick ----------------------------------------------------------------------------------------------
  const q = raw.quick;
  const kinds = drills.map((d) => d.kind);
  let quickDrills: DrillKind[];
  if (q.drills) {
    q.drills.forEach((k, i) => {
      if (!kinds.includes(k)) add(['quick', 'drills', i], `'${k}' is not one of this lab's drills (${listOf(kinds)})`);
    });
    quickDrills = kinds.filter((k) => q.drills!.includes(k));
  } else {
    const light: DrillKind[] = ['baseline', 'graceful-shutdown', 'crash'];
    quickDrills = kinds.filter((k) => light.includes(k));
    if (!quickDrills.length) quickDrills = kinds.slice(0, 1);
  }
  const quickLayers = [...layers, { src, base: ['quick', 'timers'], over: q.timers as TimersOverride | undefined }];
  const quickTimers = q.timers ? mergeTimers(timers, q.timers as TimersOverride) : timers;
  if (q.timers) checkTimers(quickTimers, quickLayers, issues, true);
  const quick: QuickSpec = { drills: quickDrills, repeats: q.repeats, preMs: q.preMs, settleMs: q.settleMs, observeMs: q.observeMs, timers: quickTimers };

  // --- thresholds -------------------------------------------------------------------------------------------
  for (const [k, v] of Object.entries(raw.thresholds)) {
    if (v < 0) add(['thresholds', k], `expected a non-negative number, got ${v}`);
  }

  if (issues.count > before) return null;
  return {
    name: raw.name ?? fallbackName,
    file: src.abs,
    description: raw.description,
    topology: { ...topo, timers, settings },
    strategies,
    drills,
    traffic: { ...raw.traffic },
    repeats: raw.repeats,
    thresholds: { ...raw.thresholds },
    quick,
  };
}

function checkTimers(
  timers: Timers,
  layers: { src: SourceFile; base: PathPart[]; over: TimersOverride | undefined }[],
  issues: Issues,
  onlyLast = false,
): void {
  for (const ti of timerIssues(timers)) {
    // blame the last layer that set any of the fields involved, at the first such field
    let blamed = false;
    for (let l = layers.length - 1; l >= 0 && !blamed; l--) {
      const layer = layers[l]!;
      for (const f of ti.fields) {
        const [g, k] = f.split('.') as [string, string];
        const v = (layer.over as Record<string, Record<string, unknown> | undefined> | undefined)?.[g]?.[k];
        if (v !== undefined) {
          if (!onlyLast || l === layers.length - 1) issues.add(layer.src, [...layer.base, g, k], ti.message);
          blamed = true;
          break;
        }
      }
    }
    if (!blamed && !onlyLast) {
      const last = layers[layers.length - 1]!;
      issues.add(last.src, [...last.base, ...ti.fields[0]!.split('.')], ti.message);
    }
  }
}

function checkSettings(
  settings: Settings,
  timers: Timers,
  layers: { src: SourceFile; base: PathPart[]; over: SettingsOverride | undefined }[],
  issues: Issues,
): void {
  for (const si of settingsIssues(settings, timers)) {
    // blame the last layer that set the first field involved; else the lab file, where it would go
    const [g, k] = si.fields[0]!.split('.') as [string, string];
    const layer = [...layers].reverse().find((l) => (l.over as Record<string, Record<string, unknown> | undefined> | undefined)?.[g]?.[k] !== undefined) ?? layers[layers.length - 1]!;
    issues.add(layer.src, [...layer.base, g, k], si.message);
  }
}

/** the cp mechanisms that route the VIP instead of moving it over L2 */
const CP_ROUTED = () => roles().filter((r) => r.kind === 'cp' && !r.traits.l2).map((r) => r.id);

/** null when at least one of the lab's strategies gives the drill something to measure, else why not */
function drillNeed(kind: DrillKind, targets: Target[], strategies: StrategyRef[]): string | null {
  if (!strategies.length) return null; // strategies already reported
  const ids = strategies.map((s) => s.id).join(', ');
  const parsed = strategies.map((s) => ({ ref: s, p: parseStrategyId(s.id) })).flatMap(({ ref, p }) => ('error' in p ? [] : [{ ref, ...p }]));
  const names = (f: (r: ReturnType<typeof roles>[number]) => boolean, kind: 'cp' | 'svc') => [...new Set(roles().filter((r) => r.kind === kind && f(r)).map((r) => r.id))].join(', ');
  switch (kind) {
    case 'node-leave':
    case 'node-join': {
      if (parsed.some((s) => s.svc.traits.bgp)) return null;
      return `${kind} is only meaningful with a BGP service mechanism (${names((r) => r.traits.bgp, 'svc')}): it measures how ECMP re-hashing breaks flows when an announcing node leaves or joins, and none of this lab's strategies (${ids}) announces over BGP`;
    }
    case 'garp-ignored': {
      if (parsed.some((s) => (targets.includes('api') && s.cp.traits.l2) || (targets.includes('service') && s.svc.traits.l2))) return null;
      const l2 = [...new Set([names((r) => r.traits.l2, 'cp'), names((r) => r.traits.l2, 'svc')].join(', ').split(', ').filter(Boolean))].join(', ');
      return `garp-ignored needs a mechanism that moves an address over L2 with gratuitous ARP (${l2}) on the drill's target; none of this lab's strategies (${ids}) does`;
    }
    case 'vip-loss-internal':
      if (parsed.some((s) => s.cp.traits.endpoint === 'vip')) return null;
      return `vip-loss-internal needs a VIP for the API (${names((r) => (r as { traits: { endpoint?: string } }).traits.endpoint === 'vip', 'cp')}); this lab's strategies (${ids}) use none`;
    case 'class-conflict':
      if (parsed.some((s) => strategyConflicts(s.ref, s.cp, s.svc).some((c) => c.startsWith('pitfall 2')))) return null;
      return `class-conflict needs a strategy whose API mechanism also takes class-less Services beside another Service controller (e.g. kube-vip for the API + MetalLB with options.useLoadBalancerClass: false: both controllers claim the Service, pitfall 2); none of this lab's strategies (${ids}) is one`;
    default:
      return null;
  }
}
