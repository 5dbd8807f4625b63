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
import type { DrillKind, LbService, Topology } from '../../model/types.js';
import type { Band, Mechanism, MechanismContext, RenderedFile, SpeakerSpec } from '../types.js';
import { BGP_ANNOUNCER_NOTE } from '../../emulation/fidelity.js';
import type { ComponentSpec } from '../../emulation/agent/types.js';
import type { BgpServicesConfig } from '../../emulation/bgp-announcer.js';
import { nodeRouter, renderSpeakerFrr, BFD_PROFILE } from '../../render/frr.js';
import { bfdFor, bgpDeadPeerBand, bgpDrillIssue, bgpEcmpBand, bgpRouterNote } from '../bands.js';
import { METALLB_FAMILY, METALLB_NAMESPACE, METALLB_SOURCES, excludedFromLb, hostSelector, ipAddressPool, metallbReal, servedServices, yamlDocs } from '../metallb/common.js';

/** Nodes that announce `s` over BGP (ShouldAnnounce): not excluded; Local → with a local pod. */
export function bgpAnnouncers(t: Topology, s: LbService): string[] {
  const anyEndpoint = t.nodes.some((n) => n.runsWorkloads);
  if (!anyEndpoint) return [];
  return t.nodes.filter((n) => !excludedFromLb(n, t) && (s.externalTrafficPolicy === 'Cluster' || n.runsWorkloads)).map((n) => n.name);
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
      delivery: 'kubectl',
      content: `# MetalLB BGP mode (FRR mode): pool, one BGPPeer per gateway router${bfd ? ', BFD profile' : ''}, advertisement (MetalLB v0.14/v0.15 CRDs).\n` + yamlDocs(docs),
    },
  ];
}

const ID = 'metallb-bgp';


export const metallbBgp: Mechanism = {
  id: ID,
  family: METALLB_FAMILY,
  svc: {
    id: ID,
    kind: 'svc',
    family: METALLB_FAMILY,
    title: 'MetalLB BGP',
    summary:
      'Every eligible node announces each Service IP as a /32 to its router, which spreads flows by ECMP (active-active). Eligible: not labelled node.kubernetes.io/exclude-from-external-load-balancers; with externalTrafficPolicy Local only nodes running a pod. A crashed node is removed only when the router’s BGP hold time (MetalLB default 90 s; 9 s in the BGP labs) or BFD expires; until then the flows hashed to it fail. A graceful stop withdraws at once. Adding or removing a path re-hashes flows: established connections that move are reset unless the router hashes resiliently. MetalLB serves only Services without spec.loadBalancerClass.',
    sources: [
      ...METALLB_SOURCES,
      'metallb.io BGPPeer (v1beta2) holdTime/keepaliveTime/connectTime/bfdProfile, BFDProfile (v1beta1), BGPAdvertisement (v1beta1) CRDs',
      'RFC 4271 §4.2 (hold time = min of both sides), FRR 8.4 bgpd (keepalive = min(configured, hold/3)); RFC 5880 §6.8.4 BFD detection time',
    ],
    traits: { l2: false, bgp: true, spread: 'active-active' },
    holders: 'routes',
    claimsClasslessServices: () => true,
    articleClaims: ['bgp-ecmp-spread', 'bgp-churn-resets'],
    fidelity: [BGP_ANNOUNCER_NOTE, bgpRouterNote('svc')],
    real: metallbReal,
    render(ctx: MechanismContext) {
      const t = ctx.topology;
      const bfd = bfdFor(t, ctx.strategy);
      const served = servedServices(t);
      const components: Record<string, ComponentSpec[]> = {};
      const speakers: Record<string, SpeakerSpec> = {};
      for (const n of t.nodes) {
        const mine = served.filter((s) => bgpAnnouncers(t, s).includes(n.name)).map((s) => ({ name: `${s.namespace}/${s.name}`, ip: s.ip }));
        const config: BgpServicesConfig = { component: METALLB_FAMILY, services: mine };
        components[n.name] = [{ kind: 'bgp-services', name: METALLB_FAMILY, config: config as unknown as Record<string, unknown> }];
        if (mine.length) {
          speakers[n.name] = {
            owner: METALLB_FAMILY,
            asn: n.asn,
            frrConf: renderSpeakerFrr(n, t, { timers: t.timers.bgp, bfd, owner: METALLB_FAMILY }),
            staticPrefixes: [],
          };
        }
      }
      return { files: bgpFiles(t, bfd !== null), sim: { components, speakers } };
    },
    expectedOutage(drill: DrillKind, ctx: MechanismContext): Band | null {
      if (drill === 'baseline') return null;
      const t = ctx.topology;
      const svc = t.services[0];
      if (!svc || !servedServices(t).includes(svc)) return null;
      const dead = bgpDeadPeerBand(t.timers.bgp, t.timers.bgp, bfdFor(t, ctx.strategy), 'the node');
      return bgpEcmpBand(drill, bgpAnnouncers(t, svc).length, dead, 'the Service /32');
    },
    drillIssue: bgpDrillIssue(ID, 'svc'),
  },
};
