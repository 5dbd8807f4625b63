/**
 * How a silent node's pods leave a Service's endpoints, built from the parts the real components
 * have — and the endpoint tail this adds to a Service's outage, derived from the same parts.
 *
 * Under `externalTrafficPolicy: Cluster` every node spreads new connections over ALL ready
 * endpoints, so when a node that runs a pod goes silent (crash, freeze, partition), connections
 * sent to its pod keep failing until its endpoint stops being ready — or until the node is back.
 * The address may have moved in two seconds; the client still sees failures for as long as this
 * tail lasts. `Local` Services have no tail: only the node holding the address serves them.
 *
 * The chain, each link with its source (Kubernetes ≥ 1.32; the `kubernetes` timers group):
 * 1. kubelet Lease renewals: renewInterval = nodeLeaseDurationSeconds (40 s) ×
 *    nodeLeaseRenewIntervalFraction (0.25) = 10 s (pkg/kubelet/kubelet.go), run by
 *    `wait.JitterUntilWithContext(ctx, c.sync, c.renewInterval, 0.04, true)`
 *    (staging/src/k8s.io/component-helpers/apimachinery/lease/controller.go Run): the next renewal
 *    starts renewInterval × (1 + U[0, 0.04)) after the previous one ended (sliding).
 * 2. The node lifecycle controller (pkg/controller/nodelifecycle/node_lifecycle_controller.go
 *    monitorNodeHealth, every --node-monitor-period = 5 s): tryUpdateNodeHealth sets
 *    probeTimestamp = now() at the pass that first SEES a newer Lease RenewTime, and marks the
 *    node Ready=Unknown when `now().After(probeTimestamp + gracePeriod)` (--node-monitor-grace-
 *    period, 50 s since Kubernetes 1.32); in that pass MarkPodsNotReady sets the node's pods
 *    Ready=False and the EndpointSlice controller publishes them not ready.
 * 3. kube-proxy applies the change through its BoundedFrequencyRunner (minSyncPeriod 1 s, burst
 *    2; pkg/proxy/nftables/proxier.go): at once when a token is free, else ≤ minSyncPeriod later.
 *
 * With t = 0 at the node's death: the last renewal R ∈ (−1.04 × renew, 0]; the pass that saw it
 * O ∈ [R, R + period); the node is declared at O + grace (the monitor loop slides: each pass
 * starts `period` after the previous one ENDED, so the pass that lands on O + grace falls just
 * after it); the rules change ≤ minSync later. Removal ∈ [grace − 1.04 × renew, grace + period +
 * minSync]: 39.6–56 s with the defaults, not 50 ± 1 s.
 *
 * Not emulated (direction and size in the code where it matters):
 * - the controller runs in the kube-controller-manager LEADER. If the dead node hosted it, the
 *   new leader first takes the lease (client-go 15/10/2 s) and starts with no saved health
 *   ("assuming now as a timestamp"): the count restarts, ≈ 65–70 s. The sim's Service drill
 *   victims are the Service's holders (workers in the shipped labs): not reached there.
 * - API round trips (Lease write, watch, EndpointSlice write): milliseconds on a healthy cluster.
 * - stale conntrack entries: see src/traffic/outage.ts (the probe never reuses a 4-tuple while an
 *   ingress node may still hold a SYN_SENT entry for it) and src/emulation/kube-proxy.ts.
 */
import type { Band } from '../strategies/types.js';
import type { DrillKind, LbService, Timers, Topology } from '../model/types.js';
import { LEASE_RENEW_FRACTION, LEASE_RENEW_JITTER } from '../model/timers.js';

/** The node lifecycle parts in ms, from the `kubernetes` timers group. */
export interface NodeLifecycleTimers {
  /** kubelet Lease renew interval (before jitter) */
  renewMs: number;
  /** maximum jitter factor of the renew interval */
  renewJitter: number;
  /** node lifecycle controller pass period (--node-monitor-period) */
  monitorMs: number;
  /** --node-monitor-grace-period */
  graceMs: number;
  /** kube-proxy minSyncPeriod */
  minSyncMs: number;
}

export function nodeLifecycleTimers(k: Timers['kubernetes']): NodeLifecycleTimers {
  return {
    renewMs: k.nodeLeaseDurationS * 1000 * LEASE_RENEW_FRACTION,
    renewJitter: LEASE_RENEW_JITTER,
    monitorMs: k.nodeMonitorPeriodS * 1000,
    graceMs: k.nodeMonitorGraceS * 1000,
    minSyncMs: k.proxyMinSyncS * 1000,
  };
}

/** When a node that died at t = 0 has its endpoints out of every kube-proxy's rules (ms, see the header). */
export function endpointRemovalRange(n: NodeLifecycleTimers): { min: number; max: number } {
  return { min: n.graceMs - n.renewMs * (1 + n.renewJitter), max: n.graceMs + n.monitorMs + n.minSyncMs };
}

const SILENT_NODE: ReadonlySet<DrillKind> = new Set(['crash', 'freeze', 'partition', 'garp-ignored']);
const s1 = (ms: number) => `${Math.round(ms) / 1000} s`;

/**
 * How long before the end of the endpoint tail its last failed probe can come: in the tail only
 * the connections kube-proxy sends to the silent node's pod fail, one in `endpoints`, so the
 * probe (one new connection every `probeIntervalMs`) sees its last failure a random gap before
 * the cause ends — geometric, mean `probeIntervalMs × endpoints`. The bound is the gap 99 % of
 * runs stay within, ln 100 / −ln(1 − 1/endpoints) probe intervals: 66 ms for 2 endpoints (smb),
 * 1.36 s for 30 (enterprise), at 10 ms. A real client opening connections at that rate measures
 * the same; the band's lower edge, not the mechanism, has to allow for it.
 */
export function sparseTailGapMs(endpoints: number, probeIntervalMs: number): number {
  if (endpoints < 2 || probeIntervalMs <= 0) return 0;
  return Math.round((probeIntervalMs * Math.log(100)) / -Math.log(1 - 1 / endpoints));
}

export function withEndpointTail(band: Band | null, drill: DrillKind, service: LbService | undefined, t: Topology, victimRunsPod: boolean, holdMs: number, held: boolean, probeIntervalMs: number): Band | null {
  if (!band || !service || service.externalTrafficPolicy !== 'Cluster' || !victimRunsPod || !SILENT_NODE.has(drill)) return band;
  const endpoints = t.nodes.filter((n) => n.runsWorkloads).length;
  if (endpoints < 2) return band; // no other pod: the mechanism's band is the whole story
  const n = nodeLifecycleTimers(t.timers.kubernetes);
  const removal = endpointRemovalRange(n);
  const gap = sparseTailGapMs(endpoints, probeIntervalMs);
  // a held fault ends at restore (after the hold) if that comes first: the pod answers again
  const tailEnd = held ? Math.min(removal.min, holdMs) : removal.min;
  const tailMin = Math.max(0, tailEnd - gap);
  const tailMax = held ? Math.min(removal.max, holdMs + 3000) : removal.max;
  const parts =
    `kubelet Lease renewed every ${s1(n.renewMs)} (+ ≤ ${n.renewJitter * 100} % jitter), seen by the node lifecycle controller's next ${s1(n.monitorMs)} pass, ` +
    `NotReady ${s1(n.graceMs)} later (node-monitor-grace-period), kube-proxy sync ≤ ${s1(n.minSyncMs)}: ${s1(removal.min)}–${s1(removal.max)}`;
  return {
    min: Math.max(band.min, tailMin),
    max: Math.max(band.max, tailMax),
    basis:
      `${band.basis}; and, ETP Cluster: new connections to the silent node's pod fail until ${held ? `the node is restored (hold ${holdMs} ms) or ` : ''}its endpoint is removed (${parts}); ` +
      `one connection in ${endpoints} goes to that pod, so the last failed probe can come up to ${s1(gap)} before that end`,
  };
}
