/**
 * Band building blocks shared by several mechanisms: an address that moves over L2 after an
 * election (Talos VIP, kube-vip ARP, MetalLB L2 and any leader-elected L2 announcer), a router
 * that ignores gratuitous ARP, and a /32 announced by several nodes over BGP (ECMP). Each
 * mechanism computes its own election or detection terms and composes them here; every constant
 * names its source.
 */
import type { DrillKind, StrategyRef, Timers, Topology } from '../model/types.js';
import type { Band, FidelityNote } from './types.js';
import type { BfdOptions, BgpTimers } from '../render/frr.js';

/** Slack for etcd round trips, `ip addr`, the GARP and the probe's recovery run (ms). */
export const VIP_MARGIN_MS = 1000;
/** a withdraw/NOTIFICATION reaches the router's FIB within this (BGP UPDATE + zebra) */
export const WITHDRAW_MS = 1000;

export const secs = (ms: number) => `${Math.round(ms) / 1000} s`;

/**
 * Linux neigh/default/mcast_solicit: broadcast probes sent for a new neighbour, retrans_time
 * apart, before it FAILS (Documentation/networking/ip-sysctl.rst; the lab leaves it at 3).
 */
export const MCAST_SOLICIT = 3;

/**
 * garp-ignored on any L2 mechanism: the address moves as in a crash, but the router ignores the
 * new holder's GARP and keeps sending to the dead MAC until its own neighbour entry fails (Linux
 * neigh states: REACHABLE for a random 0.5–1.5 × base_reachable_time since the last confirmation,
 * DELAY delay_first_probe_time, PROBE ucast_solicit unicast probes retrans_time apart, FAILED;
 * the next packet resolves again by broadcast, answered by the new holder within one retrans) —
 * Linux Documentation/networking/ip-sysctl.rst neigh/default/*.
 */
export function garpIgnoredBand(crash: Band, arp: Timers['arp']): Band {
  const staleMs = 1.5 * arp.baseReachableS * 1000 + arp.delayFirstProbeS * 1000 + arp.ucastSolicit * arp.retransMs;
  return {
    min: crash.min,
    max: Math.max(crash.max, staleMs + arp.retransMs + VIP_MARGIN_MS),
    basis:
      `the address moves as after a crash (${crash.basis}); the router ignores the gratuitous ARP and heals only when its neighbour entry ` +
      `for the dead MAC fails: ≤ 1.5 × base_reachable ${arp.baseReachableS} s + delay_first_probe ${arp.delayFirstProbeS} s + ` +
      `ucast_solicit ${arp.ucastSolicit} × retrans ${arp.retransMs} ms (= ${secs(staleMs)}) + one broadcast resolution; the later of the two`,
  };
}

/**
 * The drill → band rule of every address-moving (L2) election: a graceful stop gives the address
 * away; a crash, a freeze, a partition and the VIP loss all wait for the holder's lease to lapse;
 * garp-ignored adds the router's neighbour timers. Link flaps depend on how long the link is down.
 */
export function l2ElectionBand(drill: DrillKind, bands: { graceful: Band; crash: Band }, arp: Timers['arp']): Band | null {
  switch (drill) {
    case 'graceful-shutdown':
      return bands.graceful;
    case 'crash':
    case 'freeze':
    case 'partition':
    case 'vip-loss-internal':
      return bands.crash;
    case 'garp-ignored':
      return garpIgnoredBand(bands.crash, arp);
    default:
      return null;
  }
}

/** Why no takeover can be predicted (a single candidate: nobody can take the address over), or null. */
export function noPeerReason(candidates: number, id: string): string | null {
  return candidates < 2 ? `${id}: a single candidate has no peer to take the address over; the outage lasts until the node is back` : null;
}

/** BFD for a strategy's BGP sessions: the strategy's `bfd` option, else the lab's `timers.bfd.enabled`. */
export function bfdFor(t: Topology, ref: StrategyRef): BfdOptions | null {
  const on = ref.options.bfd ?? t.timers.bfd.enabled;
  return on ? t.timers.bfd : null;
}

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
    return { min: detect - rx, max: detect + WITHDRAW_MS, basis: `BFD detection at the router (${bfd.detectMultiplier} × ${rx} ms) drops ${who}'s BGP session and its ECMP path` };
  }
  const hold = Math.min(router.holdS, speaker.holdS) * 1000;
  const ka = Math.min(speaker.keepaliveS * 1000, hold / 3);
  return {
    min: hold - ka,
    max: hold + WITHDRAW_MS,
    basis: `BGP hold time at the router (${secs(hold)} negotiated, last keepalive ≤ ${secs(ka)} before the fault) removes ${who}'s ECMP path; until then only the flows hashed to it fail`,
  };
}

/**
 * Bands of an address announced by several nodes over BGP (ECMP), for faults on one of them:
 * a graceful stop withdraws at once; a silent death lasts until `dead` (hold time or BFD, see
 * bgpDeadPeerBand); node leave/join only re-hash. `announcers` < 2 → nobody can take over: no
 * band (the outage lasts until the node is back).
 */
export function bgpEcmpBand(drill: DrillKind, announcers: number, dead: Band, what: string): Band | null {
  if (announcers < 2 && drill !== 'node-leave' && drill !== 'node-join') return null;
  switch (drill) {
    case 'graceful-shutdown':
      return { min: 0, max: WITHDRAW_MS + VIP_MARGIN_MS, basis: `the victim withdraws ${what} (BGP UPDATE) and closes the session (NOTIFICATION): the router drops the path at once; ≤ ${secs(WITHDRAW_MS)} + ${secs(VIP_MARGIN_MS)} margin` };
    case 'node-leave':
    case 'node-join':
      return {
        min: 0,
        max: WITHDRAW_MS + VIP_MARGIN_MS,
        basis: `the router ${drill === 'node-join' ? 'adds' : 'removes'} one ECMP path for ${what} at once: new connections keep working (no outage expected); established streams re-hashed to another node are reset unless the router hashes resiliently`,
      };
    case 'crash':
    case 'freeze':
    case 'partition':
    case 'vip-loss-internal':
      // the probe opens a new connection every few ms from a new source port, so some hash to the
      // victim at once: the outage is the router's detection time, not 0
      return dead;
    default:
      return null;
  }
}

/** The drills that make no sense for a role announcing over BGP, with the reason. */
export function bgpDrillIssue(id: string, kind: 'cp' | 'svc') {
  return (drill: DrillKind): string | null => {
    if (drill === 'garp-ignored') return `${id} routes its address over BGP: no gratuitous ARP is involved`;
    if (kind === 'svc' && drill === 'vip-loss-internal') return 'KubePrism carries API traffic only';
    if (kind === 'cp' && drill === 'class-conflict') return 'loadBalancerClass conflicts concern Services, not the API endpoint';
    if (kind === 'cp' && (drill === 'node-leave' || drill === 'node-join')) return 'node leave/join (ECMP churn) is measured on Services';
    return null;
  };
}

/** The drills that make no sense for a role moving its address over L2, with the reason. */
export function l2DrillIssue(id: string, kind: 'cp' | 'svc') {
  return (drill: DrillKind): string | null => {
    if (drill === 'node-leave' || drill === 'node-join') return `${id} moves its address over L2 (gratuitous ARP), it is not announced over BGP: no ECMP to churn`;
    if (kind === 'svc' && drill === 'vip-loss-internal') return 'KubePrism carries API traffic only';
    if (kind === 'cp' && drill === 'class-conflict') return 'loadBalancerClass conflicts concern Services, not the API endpoint';
    return null;
  };
}

/**
 * The router every BGP mechanism's ECMP runs through in the sim: FRR on Linux, layer-4 multipath
 * hashing (net.ipv4.fib_multipath_hash_policy = 1, Linux Documentation/networking/ip-sysctl.rst),
 * resilient hashing as Linux nexthop groups (ip-nexthop(8)).
 */
export function bgpRouterNote(kind: 'cp' | 'svc'): FidelityNote {
  return {
    id: 'bgp-linux-router',
    text:
      'The ECMP router is FRR 8.4 on Linux with layer-4 hashing (fib_multipath_hash_policy 1); resilient ECMP is Linux nexthop groups (buckets, idle timer). ' +
      'Plain ECMP re-hashes on a path change as hardware does, but which and how many established flows move depends on the router\'s hash: the reset count after a path change has the right direction, its size is this router\'s.',
    applies: (d) => d.target === (kind === 'cp' ? 'api' : 'service') && d.kind !== 'baseline',
  };
}

/** notes restricted to one role's target (a note shared by both roles of one family, listed on each) */
export function onTarget(kind: 'cp' | 'svc', notes: FidelityNote[]): FidelityNote[] {
  const target = kind === 'cp' ? 'api' : 'service';
  return notes.map((n) => ({ ...n, applies: (d, c) => d.target === target && (n.applies ? n.applies(d, c) : true) }));
}
