/**
 * MetalLB, layer 2 mode (mechanism `metallb-l2`), and the MetalLB rules both modes share.
 *
 * What is emulated (the speaker, ./agent.ts), with sources (MetalLB
 * v0.14/v0.15, metallb/metallb; hashicorp/memberlist as vendored by it):
 * - Which Services MetalLB serves: without `--lb-class`, only Services WITHOUT
 *   `spec.loadBalancerClass`; with `--lb-class=X` (given to controller and speaker) only class X
 *   (metallb.io "Installation → Setting the LoadBalancer Class"; filterByLoadBalancerClass in
 *   internal/k8s/controllers/service_controller.go; PR #1417, v0.13). The lab runs MetalLB without
 *   `--lb-class`: it serves class-less Services. Next to kube-vip (`useLoadBalancerClass`),
 *   kube-vip takes only `kube-vip.io/kube-vip-class` Services (`lb_class_only`), so each Service
 *   has exactly one controller; with `useLoadBalancerClass: false` both take class-less Services
 *   (pitfall 2, the class-conflict drill).
 * - Announcer of a Service IP: speaker/layer2_controller.go `ShouldAnnounce`: the usable nodes are
 *   the nodes with a live speaker (memberlist members) that the pool's L2Advertisement selects,
 *   minus nodes with NetworkUnavailable and nodes labelled
 *   `node.kubernetes.io/exclude-from-external-load-balancers` (unless the speaker runs with
 *   `--ignore-exclude-lb`); for `externalTrafficPolicy: Local` only those with a ready local
 *   endpoint. They are sorted by sha256(node + "#" + ip) and the FIRST one announces.
 * - Failure detection: memberlist.DefaultLANConfig() (internal/speakerlist/speakerlist.go):
 *   SWIM probes every ProbeInterval, ProbeTimeout for the direct ack, then IndirectChecks (3)
 *   ping-reqs until the end of the interval; a failed probe makes the node *suspect*; the suspicion
 *   timeout is min = SuspicionMult × max(1, log10(max(1, n))) × ProbeInterval (memberlist util.go
 *   suspicionTimeout), starting at SuspicionMaxTimeoutMult (6) × min and shrinking towards min
 *   as k = SuspicionMult − 2 independent confirmations arrive (k = 0 when n − 2 < k; state.go
 *   suspectNode, suspicion.go). Suspect nodes are still members (UsableSpeakers = Members());
 *   only a *dead* node stops being usable. Graceful stop: `ml.Leave(time.Second)` (a dead message
 *   about itself, gossiped; peers mark it *left* at once).
 * - Takeover: the new announcer answers ARP and sends gratuitous ARP at once, then every 1100 ms
 *   for 5 s (internal/layer2/announcer.go spamLoop; issue #172 for the 1100). ARP is answered from
 *   user space (internal/layer2/arp.go@v0.16.1, a raw socket; the IP is never added to a link):
 *   a frozen speaker is silent, its node's kernel does not answer for it.
 * - Control planes of a Talos cluster carry the exclude label by default
 *   (node.kubernetes.io/exclude-from-external-load-balancers, the single-node pitfall); `topology.removeExcludeLbLabel` removes it.
 */
import { createHash } from 'node:crypto';
import type { DrillKind, LbService, Topology } from '../../model/types.js';
import type { Band, FidelityNote, Mechanism, MechanismContext, RenderedFile } from '../types.js';
import type { ComponentSpec } from '../../emulation/agent/types.js';
import { suspicionTimeoutMs, type MemberlistTimers } from '../../emulation/memberlist.js';
import { l2DrillIssue, MCAST_SOLICIT, secs as s1 } from '../bands.js';
import {
  EXCLUDE_LB_LABEL,
  METALLB_FAMILY,
  METALLB_SOURCES as SHARED_SOURCES,
  excludedFromLb,
  hostSelector,
  ipAddressPool,
  metallbL2Holders,
  metallbMeta,
  metallbReal,
  metallbServes,
  servedServices,
  yamlDocs,
} from '../metallb/common.js';
import { metallbTimers } from './timers.js';
/** memberlist's default bind port (memberlist config.go DefaultLANConfig, BindPort 7946) */
export const MEMBERLIST_PORT = 7946;

/** memberlist.DefaultLANConfig() values the lab does not expose as timers (hashicorp/memberlist config.go). */
export const MEMBERLIST_FIXED = {
  suspicionMaxTimeoutMult: 6,
  gossipNodes: 3,
  indirectChecks: 3,
  retransmitMult: 4,
  gossipToTheDeadMs: 30_000,
  pushPullIntervalMs: 30_000,
} as const;
/** MetalLB speakerlist: re-join every minute (joinMembers ticker) and leave with a 1 s timeout (Stop). */
export const METALLB_JOIN_INTERVAL_MS = 60_000;
export const METALLB_LEAVE_TIMEOUT_MS = 1000;
/** internal/layer2/announcer.go spamLoop: GARP at once, then every 1100 ms until 5 s have passed. */
export const GARP_INTERVAL_MS = 1100;
export const GARP_DURATION_MS = 5000;

export function memberlistTimers(t: Topology): MemberlistTimers {
  const m = t.timers.metallb;
  return {
    probeIntervalMs: m.probeIntervalMs,
    probeTimeoutMs: m.probeTimeoutMs,
    suspicionMult: m.suspicionMult,
    gossipIntervalMs: m.gossipMs,
    suspicionMaxTimeoutMult: MEMBERLIST_FIXED.suspicionMaxTimeoutMult,
    gossipNodes: MEMBERLIST_FIXED.gossipNodes,
    indirectChecks: MEMBERLIST_FIXED.indirectChecks,
    retransmitMult: MEMBERLIST_FIXED.retransmitMult,
    gossipToTheDeadMs: MEMBERLIST_FIXED.gossipToTheDeadMs,
    pushPullIntervalMs: MEMBERLIST_FIXED.pushPullIntervalMs,
    joinIntervalMs: METALLB_JOIN_INTERVAL_MS,
    leaveTimeoutMs: METALLB_LEAVE_TIMEOUT_MS,
  };
}

/** Nodes the L2Advertisement can announce `s` from: on the pool's LAN, not excluded, Local → with a pod. */
export function l2Candidates(t: Topology, s: LbService): string[] {
  if (!t.pool.segment) return [];
  return t.nodes
    .filter((n) => n.rack === t.pool.segment && !excludedFromLb(n, t))
    .filter((n) => s.externalTrafficPolicy === 'Cluster' || n.runsWorkloads)
    .map((n) => n.name);
}

/** Sort order of ShouldAnnounce: ascending sha256(node + "#" + ip). */
export function l2Order(ip: string, nodes: readonly string[]): string[] {
  const h = (n: string) => createHash('sha256').update(`${n}#${ip}`).digest();
  return [...nodes].sort((a, b) => Buffer.compare(h(a), h(b)));
}

/** The announcer among the usable nodes (null when there is none). */
export function l2Announcer(ip: string, usable: readonly string[]): string | null {
  return l2Order(ip, usable)[0] ?? null;
}

// ---------------------------------------------------------------------------------------------
// Expected outage (from the configured timers)

export interface DetectionBand {
  min: number;
  max: number;
  minTimeoutMs: number;
  maxTimeoutMs: number;
  k: number;
}

/**
 * When a surviving speaker declares a silent speaker dead (ms after the fault), n = speakers.
 * - lower bound: a failed probe ends one probe period after a ping sent after the fault, and the
 *   suspicion lasts at least `min`: ≥ probeTimeout + min (kept below ProbeInterval + min).
 * - upper bound: some survivor's round-robin probes the victim within F = min(2s − 1, 6)
 *   intervals (s survivors; each pings one peer per interval and every peer once per shuffled
 *   round, so P(nobody pings it for 6 intervals) ≈ e^-6 ≈ 0.25 %); the suspicion ends after `min`,
 *   or, when k confirmations are expected, once k more survivors' probes failed (≈ 3(k+1)
 *   intervals at 99 %), never after the first suspicion + 6 × min. Checked against the emulation
 *   (test/unit/svc-memberlist.test.ts; 200 seeds: n=5 5.0–9.5 s, n=35 7.2–12.6 s at 1 s probes).
 */
export function memberlistDetection(n: number, m: MemberlistTimers): DetectionBand {
  const I = m.probeIntervalMs;
  const minT = suspicionTimeoutMs(m.suspicionMult, n, I);
  const maxT = m.suspicionMaxTimeoutMult * minT;
  const k = n - 2 < m.suspicionMult - 2 ? 0 : m.suspicionMult - 2;
  const survivors = n - 1;
  const firstProbe = Math.min(2 * Math.max(1, survivors) - 1, 6) * I;
  const firstSuspect = firstProbe + I;
  const confirmed = k > 0 ? Math.min(firstSuspect + maxT, 3 * (k + 1) * I + I) : 0;
  const max = Math.max(firstSuspect + minT, confirmed);
  return { min: m.probeTimeoutMs + minT, max, minTimeoutMs: minT, maxTimeoutMs: maxT, k };
}

/** slack for the new announcer to hear of it (gossip), reconcile, add the address and GARP */
function takeoverSlackMs(n: number, m: MemberlistTimers): number {
  return m.gossipIntervalMs * (Math.ceil(Math.log(Math.max(2, n)) / Math.log(m.gossipNodes)) + 1) + 300;
}

export function l2Band(drill: DrillKind, t: Topology): Band | null {
  const svc = t.services[0];
  if (!svc || !metallbServes(svc)) return null;
  const candidates = l2Candidates(t, svc);
  const n = t.nodes.length; // a speaker on every node (DaemonSet tolerating control planes)
  const m = memberlistTimers(t);
  if (candidates.length < 2) return null; // nobody can take over: the outage lasts until the node is back
  const slack = takeoverSlackMs(n, m);
  const d = memberlistDetection(n, m);
  const detect = `memberlist detection (n=${n} speakers: probe every ${s1(m.probeIntervalMs)}, ack timeout ${s1(m.probeTimeoutMs)}, suspicion ${s1(d.minTimeoutMs)}${d.k ? `…${s1(d.maxTimeoutMs)} until ${d.k} confirmations` : ''})`;
  switch (drill) {
    case 'crash':
    case 'partition':
      return { min: d.min, max: d.max + slack, basis: `${detect} + gossip + gratuitous ARP from the new announcer` };
    case 'freeze':
      // MetalLB answers ARP from user space (internal/layer2/arp.go@v0.16.1): a frozen speaker is
      // silent. Until the survivors declare it dead, the router keeps sending to its MAC while its
      // neighbour entry holds, and the frozen node's kernel still forwards what arrives (only
      // connections to its own, frozen pod fail: 0 when it runs none); once the router must
      // re-confirm the entry (REACHABLE lapses after 0.5–1.5 × base_reachable_time, then
      // delay_first_probe_time and ucast_solicit unicast probes: Linux ip-sysctl.rst neigh/*) nobody
      // answers and everything fails. Either way it ends with the new announcer's gratuitous ARP.
      return {
        min: 0,
        max: d.max + slack,
        basis: `${detect} + gratuitous ARP from the new announcer; until then the frozen speaker answers no ARP: the router reaches the frozen node only while its neighbour entry holds (its kernel forwards, its own pod's connections fail), then nothing — so anything from 0 up to the takeover`,
      };
    case 'graceful-shutdown': {
      const leave = m.gossipIntervalMs * (Math.ceil(Math.log(Math.max(2, n)) / Math.log(m.gossipNodes)) + 1);
      return { min: 0, max: Math.max(leave, m.leaveTimeoutMs) + 500, basis: `memberlist leave (dead message gossiped every ${s1(m.gossipIntervalMs)} to ${m.gossipNodes} peers, MetalLB waits ≤ ${s1(m.leaveTimeoutMs)}) + gratuitous ARP: sub-second` };
    }
    case 'garp-ignored': {
      const a = t.timers.arp;
      // Linux: an entry confirmed just before the crash stays REACHABLE up to 1.5 × base_reachable_time,
      // then DELAY (delay_first_probe_time), unicast PROBEs (ucast_solicit × retrans_time), FAILED, and
      // a fresh broadcast resolution (mcast_solicit × retrans_time) finds the new announcer.
      const arpMs = 1.5 * a.baseReachableS * 1000 + a.delayFirstProbeS * 1000 + a.ucastSolicit * a.retransMs + MCAST_SOLICIT * a.retransMs;
      return {
        min: d.min,
        max: d.max + slack + arpMs,
        basis: `${detect}; the router ignores the GARP, so its neighbour entry must age out: ≤ 1.5 × ${a.baseReachableS} s reachable + ${a.delayFirstProbeS} s delay + ${a.ucastSolicit} unicast probes × ${s1(a.retransMs)} + re-resolution`,
      };
    }
    default:
      return null;
  }
}

// ---------------------------------------------------------------------------------------------
// Real-cluster manifests (metallb.io/v1beta1)

export function l2Advertisement(t: Topology): Record<string, unknown> {
  const onPoolLan = t.nodes.filter((n) => n.rack === t.pool.segment).map((n) => n.name);
  const limited = onPoolLan.length < t.nodes.length;
  return {
    apiVersion: 'metallb.io/v1beta1',
    kind: 'L2Advertisement',
    metadata: metallbMeta(`${t.pool.name}-l2`),
    spec: { ipAddressPools: [t.pool.name], ...(limited ? { nodeSelectors: hostSelector(onPoolLan) } : {}) },
  };
}

function l2Files(t: Topology): RenderedFile[] {
  return [
    {
      path: 'metallb/l2.yaml',
      kind: 'k8s-manifest',
      delivery: 'kubectl',
      content: `# MetalLB L2 mode: the pool and its L2Advertisement (MetalLB v0.14/v0.15 CRDs).\n# Control planes keep ${EXCLUDE_LB_LABEL} unless the Talos patch removes it (removeExcludeLbLabel: ${t.removeExcludeLbLabel}).\n` + yamlDocs([ipAddressPool(t), l2Advertisement(t)]),
    },
  ];
}

// ---------------------------------------------------------------------------------------------
// The mechanism

export interface MetalLbL2Config {
  mode: 'l2';
  services: { name: string; ip: string; candidates: string[] }[];
  speakers: { name: string; ip: string }[];
  memberlist: MemberlistTimers;
  garp: { intervalMs: number; durationMs: number };
  port: number;
}

export function metallbL2Config(t: Topology): MetalLbL2Config {
  return {
    mode: 'l2',
    services: servedServices(t).map((s) => ({ name: `${s.namespace}/${s.name}`, ip: s.ip, candidates: l2Candidates(t, s) })),
    speakers: t.nodes.map((n) => ({ name: n.name, ip: n.ip })),
    memberlist: memberlistTimers(t),
    garp: { intervalMs: GARP_INTERVAL_MS, durationMs: GARP_DURATION_MS },
    port: MEMBERLIST_PORT,
  };
}

const SOURCES = [
  ...SHARED_SOURCES,
  'metallb/metallb internal/speakerlist/speakerlist.go (v0.14/v0.15): memberlist.DefaultLANConfig(), Members() = usable speakers, Leave(time.Second), join every 1 min',
  'hashicorp/memberlist config.go DefaultLANConfig: ProbeInterval 1 s, ProbeTimeout 500 ms, SuspicionMult 4, SuspicionMaxTimeoutMult 6, GossipInterval 200 ms, GossipNodes 3, IndirectChecks 3, RetransmitMult 4, GossipToTheDeadTime 30 s, PushPullInterval 30 s',
  'hashicorp/memberlist util.go suspicionTimeout = SuspicionMult × max(1, log10(max(1, n))) × ProbeInterval; state.go suspectNode / suspicion.go (k = SuspicionMult − 2 confirmations, max = 6 × min)',
  'metallb/metallb internal/layer2/announcer.go spamLoop: gratuitous ARP at once, then every 1100 ms for 5 s',
  'metallb/metallb internal/layer2/arp.go@v0.16.1: ARP answered from user space (raw socket), only requests, broadcast or to our MAC, unicast reply; Gratuitous = request + reply, broadcast',
];

const ID = 'metallb-l2';

/** Where the emulated speaker (./agent.ts, src/emulation/memberlist.ts) differs from MetalLB's (docs/fidelity.md). */
const FIDELITY: FidelityNote[] = [
  {
    id: 'metallb-l2-memberlist',
    text:
      'memberlist is emulated without TCP fallback pings and without Lifeguard\'s awareness (which stretches probe timeouts up to 8× on a node that misses acks), and the announcer choice ignores MetalLB\'s activeEndpointExists/serving and NetworkUnavailable checks. ' +
      'On a healthy host: none. On a CPU-starved host real speakers detect a dead peer later than the sim\'s nominal detection (real longer).',
    applies: (d) => d.target === 'service' && ['crash', 'freeze', 'partition', 'garp-ignored'].includes(d.kind),
  },
  {
    id: 'metallb-l2-address-on-lo',
    text:
      'The speaker answers ARP from user space as MetalLB does, but the Service IP also sits on the node\'s lo (arp_ignore=1 keeps the kernel from answering) so the node accepts it; real MetalLB never adds it and kube-proxy\'s DNAT takes the Service ports. ' +
      'Ports without a Service rule answer RST here instead of being dropped: none for the measured ports.',
    applies: (d) => d.target === 'service' && d.kind !== 'baseline',
  },
];

export const metallbL2: Mechanism = {
  id: ID,
  family: METALLB_FAMILY,
  timers: [metallbTimers],
  components: { metallb: new URL('./agent.js', import.meta.url).href },
  // the speaker's user-space ARP responder (src/emulation/arp-responder.pl) runs on perl-base
  hostNeeds: [{ bin: '/usr/bin/perl', debian: 'perl-base' }],
  svc: {
    id: ID,
    kind: 'svc',
    family: METALLB_FAMILY,
    title: 'MetalLB L2',
    summary:
      'One node per Service IP answers ARP: among the live speakers the pool may use (control planes excluded while they carry node.kubernetes.io/exclude-from-external-load-balancers; with externalTrafficPolicy Local only nodes with a local pod) the first in sha256(node#ip) order. All traffic for the IP enters through that node. Speakers find dead peers with memberlist (defaults: SWIM probe every 1 s, 500 ms ack timeout, suspicion 4 × max(1, log10 n) probe intervals, starting at 6× that until 2 other speakers confirm); the next node in the order takes the IP and sends gratuitous ARP (at once, then every 1.1 s for 5 s). A graceful stop leaves memberlist and the move is sub-second. MetalLB serves only Services without spec.loadBalancerClass (no --lb-class).',
    sources: SOURCES,
    traits: { l2: true, bgp: false, spread: 'active-passive' },
    holders: 'address',
    claimsClasslessServices: () => true,
    articleClaims: ['l2-single-entry'],
    fidelity: FIDELITY,
    real: { ...metallbReal, holders: metallbL2Holders },
    render(ctx: MechanismContext) {
      const t = ctx.topology;
      const cfg = metallbL2Config(t);
      const components: Record<string, ComponentSpec[]> = {};
      for (const n of t.nodes) components[n.name] = [{ kind: 'metallb', config: structuredClone(cfg) as unknown as Record<string, unknown> }];
      return { files: l2Files(t), sim: { components } };
    },
    expectedOutage(drill: DrillKind, ctx: MechanismContext): Band | null {
      if (drill === 'baseline') return null;
      return l2Band(drill, ctx.topology);
    },
    drillIssue: l2DrillIssue(ID, 'svc'),
  },
};
