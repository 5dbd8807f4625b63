/**
 * MetalLB, BGP mode (mechanism `metallb-bgp`), with MetalLB's FRR mode: every node whose speaker
 * should announce a Service IP announces the /32 through the node's FRR instance (rendered by
 * src/render/frr.ts renderSpeakerFrr) to its gateway router; the router spreads flows over the
 * announcing nodes by ECMP (real load balancing). Sources (MetalLB v0.14/v0.15):
 * - speaker/bgp_controller.go ShouldAnnounce: a node announces when the pool's BGPAdvertisement
 *   selects it, it is not labelled node.kubernetes.io/exclude-from-external-load-balancers, and
 *   the Service has externalTrafficPolicy Cluster with any ready endpoint, or Local with a ready
 *   endpoint ON this node. There is no memberlist in this decision: a dead node's routes go away
 *   only when the router's BGP hold timer (or BFD) expires.
 * - BGPPeer holdTime / keepaliveTime (default 90 s / 30 s, the lab's BGP labs use 9 s / 3 s),
 *   connectTime, bfdProfile → BFDProfile (metallb.io BGPPeer / BFDProfile CRDs, v1beta2 / v1beta1).
 * - Graceful stop: the speaker withdraws (BGP UPDATE) and FRR closes the session (NOTIFICATION
 *   Cease): the router drops the paths at once.
 * - Known problem the node-leave/node-join drills show: plain ECMP re-hashes flows when a path is
 *   added or removed; established TCP flows that land on another node are reset (that node's
 *   kube-proxy has no conntrack entry for them) unless the router uses resilient hashing.
 */
import type { DrillKind, LbService, Target, Topology } from '../../model/types.js';
import type { Band, Mechanism, MechanismContext, RenderedFile, SpeakerSpec } from '../types.js';
import type { ComponentSpec } from '../../agent/types.js';
import { nodeRouter, renderSpeakerFrr, BFD_PROFILE, type BfdOptions, type BgpTimers } from '../../render/frr.js';
import { excludedFromLb, hostSelector, ipAddressPool, METALLB_NAMESPACE, METALLB_SOURCES, servedServices, yamlDocs } from './metallb-l2.js';

/** Nodes that announce `s` over BGP (ShouldAnnounce): not excluded; Local → with a local pod. */
export function bgpAnnouncers(t: Topology, s: LbService): string[] {
  const anyEndpoint = t.nodes.some((n) => n.runsWorkloads);
  if (!anyEndpoint) return [];
  return t.nodes.filter((n) => !excludedFromLb(n, t) && (s.externalTrafficPolicy === 'Cluster' || n.runsWorkloads)).map((n) => n.name);
}

export interface BgpServiceConfig {
  mode: 'bgp';
  /** the Service IPs THIS node announces */
  services: { name: string; ip: string }[];
}

const s1 = (ms: number) => `${Math.round(ms) / 1000} s`;

/**
 * The router's view of a node that dies silently: the negotiated hold time is the smaller of both
 * sides' (RFC 4271 §4.2), the node sent its last KEEPALIVE at most one keepalive interval
 * (min(configured, hold/3), FRR) before dying; with BFD the session drops after detect-multiplier
 * × the agreed receive interval (RFC 5880 §6.8.4; FRR bfdd). +1 s for bgpd/zebra to reprogram
 * the ECMP route.
 */
export function bgpDeadPeerBand(router: BgpTimers, speaker: BgpTimers, bfd: BfdOptions | null, who: string): Band {
  if (bfd) {
    const rx = Math.max(bfd.receiveMs, bfd.transmitMs);
    const detect = bfd.detectMultiplier * rx;
    return { min: detect - rx, max: detect + 1000, basis: `BFD detection at the router (${bfd.detectMultiplier} × ${rx} ms) drops ${who}'s BGP session and its ECMP path` };
  }
  const hold = Math.min(router.holdS, speaker.holdS) * 1000;
  const ka = Math.min(speaker.keepaliveS * 1000, hold / 3);
  return {
    min: hold - ka,
    max: hold + 1000,
    basis: `BGP hold time at the router (${s1(hold)} negotiated, last keepalive ≤ ${s1(ka)} before the fault) removes ${who}'s ECMP path; until then only the flows hashed to it fail`,
  };
}

export function bgpBand(drill: DrillKind, announcers: number, dead: Band): Band | null {
  switch (drill) {
    case 'crash':
    case 'freeze':
    case 'partition':
      return announcers >= 2 ? dead : null; // a single announcer: down until the node is back
    case 'graceful-shutdown':
      return announcers >= 2 ? { min: 0, max: 1000, basis: 'the speaker withdraws (BGP UPDATE) and closes the session (NOTIFICATION): the router drops the path at once, sub-second' } : null;
    case 'node-leave':
    case 'node-join':
      return {
        min: 0,
        max: 1000,
        basis: 'the router removes/adds one ECMP path at once: new connections keep working (no outage expected); established streams re-hashed to another node are reset unless the router hashes resiliently',
      };
    default:
      return null;
  }
}

export function bgpDrillIssue(id: string) {
  return (drill: DrillKind, target: Target): string | null => {
    if (target === 'api') return `${id} announces Service IPs, not the API endpoint`;
    if (drill === 'garp-ignored') return `${id} does not move an address over L2 (no GARP involved)`;
    if (drill === 'vip-loss-internal') return 'KubePrism carries API traffic only';
    return null;
  };
}

function useBfd(ctx: MechanismContext): boolean {
  return ctx.strategy.options.bfd ?? ctx.topology.timers.bfd.enabled;
}

function bgpFiles(t: Topology, bfd: boolean): RenderedFile[] {
  const b = t.timers.bgp;
  // one BGPPeer per (router, node ASN): each node peers with the router of its own LAN
  const groups = new Map<string, { router: string; ip: string; asn: number; myASN: number; nodes: string[] }>();
  for (const n of t.nodes) {
    const r = nodeRouter(n, t);
    const ip = r.interfaces.find((i) => i.segment === n.rack)!.ip;
    const key = `${r.name}/${n.asn}`;
    const g = groups.get(key) ?? { router: r.name, ip, asn: r.asn, myASN: n.asn, nodes: [] };
    g.nodes.push(n.name);
    groups.set(key, g);
  }
  const peers = [...groups.values()].map((g) => ({
    apiVersion: 'metallb.io/v1beta2',
    kind: 'BGPPeer',
    metadata: { name: groups.size > 1 ? `${g.router}-${g.myASN}` : g.router, namespace: METALLB_NAMESPACE },
    spec: {
      myASN: g.myASN,
      peerASN: g.asn,
      peerAddress: g.ip,
      holdTime: `${b.holdS}s`,
      keepaliveTime: `${b.keepaliveS}s`,
      connectTime: `${b.connectRetryS}s`,
      ...(bfd ? { bfdProfile: BFD_PROFILE } : {}),
      ...(g.nodes.length < t.nodes.length ? { nodeSelectors: hostSelector(g.nodes) } : {}),
    },
  }));
  const docs: unknown[] = [ipAddressPool(t), ...peers];
  if (bfd) {
    const f = t.timers.bfd;
    docs.push({
      apiVersion: 'metallb.io/v1beta1',
      kind: 'BFDProfile',
      metadata: { name: BFD_PROFILE, namespace: METALLB_NAMESPACE },
      spec: { receiveInterval: f.receiveMs, transmitInterval: f.transmitMs, detectMultiplier: f.detectMultiplier },
    });
  }
  docs.push({
    apiVersion: 'metallb.io/v1beta1',
    kind: 'BGPAdvertisement',
    metadata: { name: `${t.pool.name}-bgp`, namespace: METALLB_NAMESPACE },
    spec: { ipAddressPools: [t.pool.name], aggregationLength: 32 },
  });
  return [
    {
      path: 'metallb/bgp.yaml',
      kind: 'k8s-manifest',
      content: `# MetalLB BGP mode (FRR mode): pool, one BGPPeer per gateway router${bfd ? ', BFD profile' : ''}, advertisement (MetalLB v0.14/v0.15 CRDs).\n` + yamlDocs(docs),
    },
  ];
}

export const metallbBgp: Mechanism = {
  id: 'metallb-bgp',
  kind: 'svc',
  title: 'MetalLB (BGP, FRR mode)',
  summary:
    'Every eligible node announces each Service IP as a /32 to its router, which spreads flows by ECMP (active-active). Eligible: not labelled node.kubernetes.io/exclude-from-external-load-balancers; with externalTrafficPolicy Local only nodes running a pod. A crashed node is removed only when the router’s BGP hold time (MetalLB default 90 s; 9 s in the BGP labs) or BFD expires; until then the flows hashed to it fail. A graceful stop withdraws at once. Adding or removing a path re-hashes flows: established connections that move are reset unless the router hashes resiliently. MetalLB serves only Services without spec.loadBalancerClass.',
  sources: [
    ...METALLB_SOURCES,
    'metallb.io BGPPeer (v1beta2) holdTime/keepaliveTime/connectTime/bfdProfile, BFDProfile (v1beta1), BGPAdvertisement (v1beta1) CRDs',
    'RFC 4271 §4.2 (hold time = min of both sides), FRR 8.4 bgpd (keepalive = min(configured, hold/3)); RFC 5880 §6.8.4 BFD detection time',
  ],
  uses: { l2: false, bgp: true },
  render(ctx: MechanismContext) {
    const t = ctx.topology;
    const bfd = useBfd(ctx);
    const served = servedServices(t);
    const components: Record<string, ComponentSpec[]> = {};
    const speakers: Record<string, SpeakerSpec> = {};
    for (const n of t.nodes) {
      const mine = served.filter((s) => bgpAnnouncers(t, s).includes(n.name)).map((s) => ({ name: `${s.namespace}/${s.name}`, ip: s.ip }));
      const config: BgpServiceConfig = { mode: 'bgp', services: mine };
      components[n.name] = [{ kind: 'metallb', config: config as unknown as Record<string, unknown> }];
      if (mine.length) {
        speakers[n.name] = {
          owner: 'metallb',
          asn: n.asn,
          frrConf: renderSpeakerFrr(n, t, { timers: t.timers.bgp, bfd: bfd ? t.timers.bfd : null, owner: 'metallb' }),
          staticPrefixes: [],
        };
      }
    }
    return { files: bgpFiles(t, bfd), sim: { components, speakers } };
  },
  expectedOutage(drill, target, ctx) {
    if (target !== 'service' || drill === 'baseline') return null;
    const t = ctx.topology;
    const svc = t.services[0];
    if (!svc || !servedServices(t).includes(svc)) return null;
    const dead = bgpDeadPeerBand(t.timers.bgp, t.timers.bgp, useBfd(ctx) ? t.timers.bfd : null, 'the node');
    return bgpBand(drill, bgpAnnouncers(t, svc).length, dead);
  },
  drillIssue: bgpDrillIssue('metallb-bgp'),
};
