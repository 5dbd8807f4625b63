/**
 * Control-plane mechanism `kube-vip-bgp`: kube-vip as a static pod on every control plane in BGP
 * mode (bgp_enable, vip_leaderelection=false): no election — every control plane puts the VIP on
 * `lo` and announces it as a /32 to its router, which spreads connections by ECMP (active-active).
 * kube-vip speaks BGP itself (GoBGP); in the sim the node's FRR speaker owns TCP/179 and the
 * emulated kube-vip (../kube-vip.agent.ts) adds/withdraws the /32 through it. The speaker config is
 * rendered here (`sim.speakers[cp]`, owner 'kube-vip', timers `timers.bgp`, optional BFD).
 *
 * Expected client-seen outage of the VIP (a victim among the announcing nodes). With ECMP the
 * client's flows may not even hash to the victim (Linux hashes L3 by default), so min is 0:
 * - graceful shutdown: the victim withdraws the /32 and its speaker sends a NOTIFICATION; the
 *   router removes that path at once → ≤ 1 s + margin;
 * - crash / freeze / partition: the router keeps the dead path until it notices: its hold timer
 *   (`timers.bgp.holdS`, reset by every keepalive, so hold − keepalive … hold after the fault), or
 *   BFD (detect multiplier × receive interval) when enabled → ≤ detection + margin.
 */
import type { DrillKind, Target, Topology, StrategyRef } from '../../model/types.js';
import type { Band, Mechanism, MechanismContext } from '../types.js';
import { bfdFor, KUBE_VIP_SOURCES, renderKubeVipCp } from './kube-vip-arp.js';
import { noPeerReason, VIP_MARGIN_MS } from './talos-vip.js';

const s = (ms: number) => `${Math.round(ms) / 1000} s`;
/** a withdraw/NOTIFICATION reaches the router's FIB within this (BGP UPDATE + zebra) */
const WITHDRAW_MS = 1000;

/** How long the router keeps a dead node's path: BFD detection, else the hold timer. */
export function bgpDetection(t: Topology, ref: StrategyRef): { min: number; max: number; basis: string } {
  const bfd = bfdFor(t, ref);
  if (bfd) {
    // the session's detection time = remote detect multiplier × the agreed receive interval
    const iv = Math.max(bfd.receiveMs, bfd.transmitMs);
    return { min: (bfd.detectMultiplier - 1) * iv, max: bfd.detectMultiplier * iv, basis: `BFD detect multiplier ${bfd.detectMultiplier} × ${iv} ms` };
  }
  const { holdS, keepaliveS } = t.timers.bgp;
  return { min: (holdS - keepaliveS) * 1000, max: holdS * 1000, basis: `BGP hold time ${holdS} s (keepalive ${keepaliveS} s)` };
}

/** Bands of an address announced by several nodes over BGP (ECMP), for node faults on one of them. */
export function bgpEcmpBand(drill: DrillKind, t: Topology, ref: StrategyRef, what: string): Band | null {
  const d = bgpDetection(t, ref);
  const gone: Band = {
    min: 0,
    max: d.max + VIP_MARGIN_MS,
    basis: `the router removes the victim's path for ${what} when ${d.basis} expires (${s(d.min)}–${s(d.max)} after the fault) + ${s(VIP_MARGIN_MS)} margin; flows hashed to other nodes never notice (min 0)`,
  };
  switch (drill) {
    case 'graceful-shutdown':
    case 'node-leave':
    case 'node-join':
      return {
        min: 0,
        max: WITHDRAW_MS + VIP_MARGIN_MS,
        basis: `${drill === 'node-join' ? 'the joining node announces' : 'the victim withdraws'} ${what} (UPDATE / NOTIFICATION), the router updates its ECMP group at once: ≤ ${s(WITHDRAW_MS)} + ${s(VIP_MARGIN_MS)} margin; only flows re-hashed to another node are affected`,
      };
    case 'crash':
    case 'freeze':
    case 'partition':
    case 'vip-loss-internal':
      return gone;
    default:
      return null;
  }
}

export const kubeVipBgpMechanism: Mechanism = {
  id: 'kube-vip-bgp',
  kind: 'cp',
  title: 'kube-vip (BGP)',
  summary:
    'kube-vip runs as a static pod on every control plane in BGP mode: there is no election, every control plane adds the VIP to lo and announces it as a /32 ' +
    'to the router, which spreads connections over them by ECMP (active-active). A graceful stop withdraws the route at once; a crash is noticed only when ' +
    'the router\'s BGP hold timer expires (or BFD, when enabled), and until then the flows hashed to the dead node fail. kube-vip and MetalLB/Cilium cannot ' +
    'both speak BGP on a node (TCP/179, pitfall 3). Sim: the node\'s FRR speaker announces what the emulated kube-vip adds.',
  sources: [
    ...KUBE_VIP_SOURCES,
    'kube-vip.io/docs/modes/bgp (v0.8/v0.9): BGP mode, VIP on lo, every node advertises; bgp_hold_time / bgp_keepalive_interval',
    'RFC 4271 §4.2/§10 (hold timer reset by KEEPALIVE/UPDATE); FRR 8.4 docs bgp.rst, bfd.rst',
  ],
  uses: { l2: false, bgp: true },

  render: (ctx) => renderKubeVipCp(ctx, 'bgp'),

  expectedOutage(drill: DrillKind, target: Target, ctx: MechanismContext): Band | null {
    if (target !== 'api' || drill === 'baseline') return null;
    if (noPeerReason(ctx.topology, 'kube-vip-bgp')) return null;
    if (drill === 'node-leave' || drill === 'node-join') return null; // measured on Services only
    return bgpEcmpBand(drill, ctx.topology, ctx.strategy, `the VIP ${ctx.topology.vip}/32`);
  },

  drillIssue(drill: DrillKind, target: Target): string | null {
    if (target !== 'api') return null;
    switch (drill) {
      case 'garp-ignored':
        return 'kube-vip BGP mode routes the VIP over BGP: no gratuitous ARP is involved';
      case 'class-conflict':
        return 'loadBalancerClass conflicts concern Services, not the API endpoint';
      default:
        return null;
    }
  },
};

export default kubeVipBgpMechanism;
