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
import type { LbService, Topology } from '../../model/types.js';
import type { Mechanism, MechanismContext, RenderedFile, SpeakerSpec } from '../types.js';
import type { ComponentSpec } from '../../agent/types.js';
import { nodeRouter, renderSpeakerFrr } from '../../render/frr.js';
import { bgpBand, bgpDeadPeerBand, bgpDrillIssue, type BgpServiceConfig } from './metallb-bgp.js';
import { yamlDocs } from './metallb-l2.js';

export const CILIUM_LB_CLASS = 'io.cilium/bgp-control-plane';
const ADVERTISE_LABEL = { advertise: 'bgp' };
const PEER_CONFIG = 'lab-peer';

/** Cilium announces Services with its class or none. */
export function ciliumServes(s: LbService): boolean {
  return s.loadBalancerClass === undefined || s.loadBalancerClass === CILIUM_LB_CLASS;
}

/** Nodes the BGP cluster config selects: the nodes that run workloads (workers, or all when control planes schedule pods). */
export function ciliumSelected(t: Topology): string[] {
  return t.nodes.filter((n) => n.runsWorkloads).map((n) => n.name);
}

/** Nodes that advertise `s`: selected; Local → only with a local endpoint (selected nodes all run one). */
export function ciliumAnnouncers(t: Topology, s: LbService): string[] {
  const selected = new Set(ciliumSelected(t));
  return t.nodes.filter((n) => selected.has(n.name) && (s.externalTrafficPolicy === 'Cluster' || n.runsWorkloads)).map((n) => n.name);
}

function nodeSelector(t: Topology, rack: string | null): Record<string, unknown> {
  const expr: Record<string, unknown>[] = [];
  if (!t.allowSchedulingOnControlPlanes) expr.push({ key: 'node-role.kubernetes.io/control-plane', operator: 'DoesNotExist' });
  if (rack) {
    const names = t.nodes.filter((n) => n.rack === rack).map((n) => n.name);
    expr.push({ key: 'kubernetes.io/hostname', operator: 'In', values: names });
  }
  return expr.length ? { matchExpressions: expr } : {};
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
        nodeSelector: nodeSelector(t, racks.length > 1 ? rack : null),
        bgpInstances: [{ name: `instance-${n.asn}`, localASN: n.asn, peers: [{ name: r.name, peerASN: r.asn, peerAddress: ip, peerConfigRef: { name: PEER_CONFIG } }] }],
      },
    };
  });
  const docs = [
    {
      apiVersion: 'cilium.io/v2alpha1',
      kind: 'CiliumLoadBalancerIPPool',
      metadata: { name: t.pool.name },
      spec: { blocks: [{ cidr: t.pool.cidr }] },
    },
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
      content: '# Cilium BGP Control Plane (cilium.io/v2alpha1, Cilium 1.16; helm: bgpControlPlane.enabled=true) and LB IPAM pool.\n' + yamlDocs(docs),
    },
  ];
}

export const ciliumBgp: Mechanism = {
  id: 'cilium-bgp',
  kind: 'svc',
  title: 'Cilium BGP Control Plane',
  summary:
    'The Cilium agent of every node selected by the BGP cluster config (here: the nodes that run workloads) advertises each LoadBalancer IP as a /32 to its router (externalTrafficPolicy Local: only while the node has a local endpoint); the router spreads flows by ECMP. IPs come from Cilium LB IPAM. Failure detection is the router’s BGP hold time with Cilium’s timers (default 90 s / keepalive 30 s; 9 s / 3 s in the BGP labs); Cilium has no BFD. A graceful agent stop closes the session and the paths go at once; path changes re-hash flows like any plain ECMP.',
  sources: [
    'docs.cilium.io BGP Control Plane Resources (Cilium 1.16, bgp-control-plane-v2.rst): CiliumBGPClusterConfig / CiliumBGPPeerConfig / CiliumBGPAdvertisement, Service LoadBalancerIP advertisement, loadBalancerClass io.cilium/bgp-control-plane, ExternalTrafficPolicy Local',
    'CiliumBGPPeerConfig timers defaults: connectRetryTimeSeconds 120, holdTimeSeconds 90, keepAliveTimeSeconds 30 (same doc; cilium pkg/k8s/apis/cilium.io/v2alpha1)',
    'cilium/cilium PR #25477 (v1.14): externalTrafficPolicy=Local for BGP Control Plane service VIP advertisement',
    'cilium/cilium issue #22394: no BFD in the BGP Control Plane (GoBGP)',
    'docs.cilium.io LoadBalancer IP Address Management: CiliumLoadBalancerIPPool spec.blocks',
  ],
  uses: { l2: false, bgp: true },
  render(ctx: MechanismContext) {
    const t = ctx.topology;
    const served = t.services.filter(ciliumServes);
    const components: Record<string, ComponentSpec[]> = {};
    const speakers: Record<string, SpeakerSpec> = {};
    for (const n of t.nodes) {
      const mine = served.filter((s) => ciliumAnnouncers(t, s).includes(n.name)).map((s) => ({ name: `${s.namespace}/${s.name}`, ip: s.ip }));
      const config: BgpServiceConfig = { mode: 'bgp', services: mine };
      components[n.name] = [{ kind: 'cilium', config: config as unknown as Record<string, unknown> }];
      if (mine.length) {
        speakers[n.name] = { owner: 'cilium', asn: n.asn, frrConf: renderSpeakerFrr(n, t, { timers: t.timers.cilium, bfd: null, owner: 'cilium' }), staticPrefixes: [] };
      }
    }
    return { files: ciliumFiles(t), sim: { components, speakers } };
  },
  expectedOutage(drill, target, ctx) {
    if (target !== 'service' || drill === 'baseline') return null;
    const t = ctx.topology;
    const svc = t.services[0];
    if (!svc || !ciliumServes(svc)) return null;
    // the router's side of node sessions uses timers.bgp (src/render/frr.ts renderRouterFrr); the hold time is the smaller
    return bgpBand(drill, ciliumAnnouncers(t, svc).length, bgpDeadPeerBand(t.timers.bgp, t.timers.cilium, null, 'the node'));
  },
  drillIssue: bgpDrillIssue('cilium-bgp'),
};
