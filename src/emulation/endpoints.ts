/**
 * What kube-proxy adds to a Service's outage, whatever announces the address: under
 * `externalTrafficPolicy: Cluster` every node spreads new connections over ALL ready endpoints, so
 * when a node that runs a pod goes silent (crash, freeze, partition), connections sent to its pod
 * keep failing until the node lifecycle controller marks the node NotReady after
 * `--node-monitor-grace-period` (timers.kubernetes.nodeMonitorGraceS, 50 s by default) and the
 * endpoint stops being ready — or until the node is back. The address may have moved in two
 * seconds; the client still sees failures for as long as this tail lasts. `Local` Services have
 * no tail: only the node holding the address serves them, from its own pod.
 * The sim's kube-proxy (./kube-proxy.ts) counts the grace from the node's last heartbeat (one per
 * second), hence the ±1 s.
 */
import type { Band } from '../strategies/types.js';
import type { DrillKind, LbService, Topology } from '../model/types.js';

const SILENT_NODE: ReadonlySet<DrillKind> = new Set(['crash', 'freeze', 'partition', 'garp-ignored']);
const HEARTBEAT_MS = 1000;

export function withEndpointTail(band: Band | null, drill: DrillKind, service: LbService | undefined, t: Topology, victimRunsPod: boolean, holdMs: number, held: boolean): Band | null {
  if (!band || !service || service.externalTrafficPolicy !== 'Cluster' || !victimRunsPod || !SILENT_NODE.has(drill)) return band;
  if (t.nodes.filter((n) => n.runsWorkloads).length < 2) return band; // no other pod: the mechanism's band is the whole story
  const grace = t.timers.kubernetes.nodeMonitorGraceS * 1000;
  // a held fault ends at restore (after the hold), a crash when the endpoint is declared not ready
  const tailMin = held ? Math.min(grace - HEARTBEAT_MS, holdMs) : grace - HEARTBEAT_MS;
  const tailMax = held ? Math.min(grace + HEARTBEAT_MS, holdMs + 3000) : grace + HEARTBEAT_MS;
  return {
    min: Math.max(band.min, tailMin),
    max: Math.max(band.max, tailMax),
    basis: `${band.basis}; and, ETP Cluster: new connections to the silent node's pod fail until ${held ? `the node is restored (hold ${holdMs} ms) or ` : ''}it is NotReady (node-monitor-grace-period ${grace / 1000} s ± 1 s heartbeat)`,
  };
}
