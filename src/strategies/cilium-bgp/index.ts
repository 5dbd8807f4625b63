/**
 * Cilium BGP Control Plane (mechanism `cilium-bgp`, Cilium 1.14+; resources as of Cilium 1.16):
 * the Cilium agent on every node selected by the BGP configuration (`CiliumBGPClusterConfig`
 * nodeSelector, formerly `CiliumBGPPeeringPolicy`) peers with its router and advertises the
 * LoadBalancer IPs of the Services a `CiliumBGPAdvertisement` selects (advertisementType Service,
 * addresses LoadBalancerIP; exact /32 routes). IPs come from LB IPAM (`CiliumLoadBalancerIPPool`).
 * Sources (docs.cilium.io, Documentation/network/bgp-control-plane/bgp-control-plane-v2.rst):
 * - externalTrafficPolicy Cluster: the IP is advertised unconditionally by every selected node;
 *   Local: only while the node has a local endpoint (cilium PR #25477, v1.14).
 * - Load Balancer Class: Services with class `io.cilium/bgp-control-plane` or none are announced,
 *   others are not.
 * - Timers: CiliumBGPPeerConfig `timers` connectRetryTimeSeconds 120 / holdTimeSeconds 90 /
 *   keepAliveTimeSeconds 30 by default (the lab's `timers.cilium`, 9 s / 3 s in the BGP labs).
 * - No BFD: Cilium's GoBGP-based control plane has none (cilium/cilium issue #22394, open), so a
 *   crashed node is only removed by the router's hold timer, whatever `options.bfd` says.
 * The speaker is emulated with FRR (src/render/frr.ts renderSpeakerFrr) using Cilium's timers; the
 * datapath stays the cluster's kube-proxy emulation (Cilium with kube-proxy, no kube-proxy
 * replacement).
 */
import type { DrillKind, LbService, Topology } from '../../model/types.js';
import type { Band, FidelityNote, Mechanism, MechanismContext, RenderedFile, SpeakerSpec } from '../types.js';
import type { ComponentSpec } from '../../emulation/agent/types.js';
import type { BgpServicesConfig } from '../../emulation/bgp-announcer.js';
import { nodeRouter, renderSpeakerFrr } from '../../render/frr.js';
import { bgpDeadPeerBand, bgpDrillIssue, bgpEcmpBand, bgpRouterNote } from '../bands.js';
import { BGP_ANNOUNCER_NOTE } from '../../emulation/fidelity.js';
import { CILIUM_FAMILY, ciliumNodeSelector, ciliumNodes, ciliumPool, ciliumReal, ciliumServes, yamlDocs } from '../cilium/common.js';
import { ciliumTimers } from './timers.js';

export const CILIUM_LB_CLASS = 'io.cilium/bgp-control-plane';
const ADVERTISE_LABEL = { advertise: 'bgp' };
const PEER_CONFIG = 'lab-peer';

/** Nodes that advertise `s`: selected; Local → only with a local endpoint (selected nodes all run one). */
export function ciliumAnnouncers(t: Topology, s: LbService): string[] {
  const selected = new Set(ciliumNodes(t));
  return t.nodes.filter((n) => selected.has(n.name) && (s.externalTrafficPolicy === 'Cluster' || n.runsWorkloads)).map((n) => n.name);
}

function ciliumFiles(t: Topology): RenderedFile[] {
  const c = t.timers.cilium;
  const racks = [...new Set(t.nodes.map((n) => n.rack))];
  const clusterConfigs = racks.map((rack) => {
    const n = t.nodes.find((x) => x.rack === rack)!;
    const r = nodeRouter(n, t);
    const ip = r.interfaces.find((i) => i.segment === rack)!.ip;
    return {
      apiVersion: 'cilium.io/v2alpha1',
      kind: 'CiliumBGPClusterConfig',
      metadata: { name: racks.length > 1 ? `cilium-bgp-${rack}` : 'cilium-bgp' },
      spec: {
        nodeSelector: ciliumNodeSelector(t, racks.length > 1 ? rack : null),
        bgpInstances: [{ name: `instance-${n.asn}`, localASN: n.asn, peers: [{ name: r.name, peerASN: r.asn, peerAddress: ip, peerConfigRef: { name: PEER_CONFIG } }] }],
      },
    };
  });
  const docs = [
    ciliumPool(t),
    ...clusterConfigs,
    {
      apiVersion: 'cilium.io/v2alpha1',
      kind: 'CiliumBGPPeerConfig',
      metadata: { name: PEER_CONFIG },
      spec: {
        timers: { connectRetryTimeSeconds: c.connectRetryS, holdTimeSeconds: c.holdS, keepAliveTimeSeconds: c.keepaliveS },
        families: [{ afi: 'ipv4', safi: 'unicast', advertisements: { matchLabels: ADVERTISE_LABEL } }],
      },
    },
    {
      apiVersion: 'cilium.io/v2alpha1',
      kind: 'CiliumBGPAdvertisement',
      metadata: { name: 'lb-services', labels: ADVERTISE_LABEL },
      spec: {
        advertisements: [
          {
            advertisementType: 'Service',
            service: { addresses: ['LoadBalancerIP'] },
            // every Service (the documented "NotIn a never-used value" selector)
            selector: { matchExpressions: [{ key: 'somekey', operator: 'NotIn', values: ['never-used-value'] }] },
          },
        ],
      },
    },
  ];
  return [
    {
      path: 'cilium/bgp.yaml',
      kind: 'k8s-manifest',
      delivery: 'kubectl',
      content: '# Cilium BGP Control Plane (cilium.io/v2alpha1, Cilium 1.16; helm: bgpControlPlane.enabled=true) and LB IPAM pool.\n' + yamlDocs(docs),
    },
  ];
}

const ID = 'cilium-bgp';

/** Cilium's GoBGP-based control plane, stood in for by FRR with Cilium's timers (docs/fidelity.md). */
const SPEAKER_NOTE: FidelityNote = {
  id: 'cilium-bgp-speaker',
  text:
    'The Cilium agent\'s GoBGP speaker is stood in for by the node\'s FRR bgpd with Cilium\'s timers (hold 90 s, keepalive 30 s, connect retry 120 s by default) and no BFD, as Cilium has none: hold-time detection is RFC 4271\'s either way. ' +
    'The Cilium sources were read as untagged copies (not pinned to 1.18). No effect expected.',
  applies: (d) => d.target === 'service' && d.kind !== 'baseline',
};

export const ciliumBgp: Mechanism = {
  id: ID,
  family: CILIUM_FAMILY,
  timers: [ciliumTimers],
  svc: {
    id: ID,
    kind: 'svc',
    family: CILIUM_FAMILY,
    title: 'Cilium BGP',
    summary:
      'The Cilium agent of every node selected by the BGP cluster config (here: the nodes that run workloads) advertises each LoadBalancer IP as a /32 to its router (externalTrafficPolicy Local: only while the node has a local endpoint); the router spreads flows by ECMP. IPs come from Cilium LB IPAM. Failure detection is the router’s BGP hold time with Cilium’s timers (default 90 s / keepalive 30 s; 9 s / 3 s in the BGP labs); Cilium has no BFD. A graceful agent stop closes the session and the paths go at once; path changes re-hash flows like any plain ECMP.',
    sources: [
      'docs.cilium.io BGP Control Plane Resources (Cilium 1.16, bgp-control-plane-v2.rst): CiliumBGPClusterConfig / CiliumBGPPeerConfig / CiliumBGPAdvertisement, Service LoadBalancerIP advertisement, loadBalancerClass io.cilium/bgp-control-plane, ExternalTrafficPolicy Local',
      'CiliumBGPPeerConfig timers defaults: connectRetryTimeSeconds 120, holdTimeSeconds 90, keepAliveTimeSeconds 30 (same doc; cilium pkg/k8s/apis/cilium.io/v2alpha1)',
      'cilium/cilium PR #25477 (v1.14): externalTrafficPolicy=Local for BGP Control Plane service VIP advertisement',
      'cilium/cilium issue #22394: no BFD in the BGP Control Plane (GoBGP)',
      'docs.cilium.io LoadBalancer IP Address Management: CiliumLoadBalancerIPPool spec.blocks',
    ],
    traits: { l2: false, bgp: true, spread: 'active-active' },
    holders: 'routes',
    claimsClasslessServices: () => true,
    articleClaims: ['bgp-ecmp-spread', 'bgp-churn-resets'],
    bgpTimers: (t) => t.timers.cilium,
    fidelity: [SPEAKER_NOTE, BGP_ANNOUNCER_NOTE, bgpRouterNote('svc')],
    // Cilium with kube-proxy (no replacement), the BGP control plane on
    real: ciliumReal(['kubeProxyReplacement=false', 'bgpControlPlane.enabled=true']),
    render(ctx: MechanismContext) {
      const t = ctx.topology;
      const served = t.services.filter((s) => ciliumServes(s, CILIUM_LB_CLASS));
      const components: Record<string, ComponentSpec[]> = {};
      const speakers: Record<string, SpeakerSpec> = {};
      for (const n of t.nodes) {
        const mine = served.filter((s) => ciliumAnnouncers(t, s).includes(n.name)).map((s) => ({ name: `${s.namespace}/${s.name}`, ip: s.ip }));
        const config: BgpServicesConfig = { component: CILIUM_FAMILY, services: mine };
        components[n.name] = [{ kind: 'bgp-services', name: CILIUM_FAMILY, config: config as unknown as Record<string, unknown> }];
        if (mine.length) {
          speakers[n.name] = { owner: CILIUM_FAMILY, asn: n.asn, frrConf: renderSpeakerFrr(n, t, { timers: t.timers.cilium, bfd: null, owner: CILIUM_FAMILY }), staticPrefixes: [] };
        }
      }
      return { files: ciliumFiles(t), sim: { components, speakers } };
    },
    expectedOutage(drill: DrillKind, ctx: MechanismContext): Band | null {
      if (drill === 'baseline') return null;
      const t = ctx.topology;
      const svc = t.services[0];
      if (!svc || !ciliumServes(svc, CILIUM_LB_CLASS)) return null;
      // the routers are configured to match the speakers (routerConfs in ../compose.ts: bgpTimers above), real and emulated alike
      return bgpEcmpBand(drill, ciliumAnnouncers(t, svc).length, bgpDeadPeerBand(t.timers.cilium, t.timers.cilium, null, 'the node'), 'the Service /32');
    },
    drillIssue: bgpDrillIssue(ID, 'svc'),
  },
};
