/**
 * The names the model accepts, in one place: control-plane endpoint mechanisms, service LB
 * mechanisms, drill kinds, victim rules, and what each mechanism needs from the network. The
 * mechanism modules themselves live in src/strategies/ (they register the same ids); the model
 * keeps its own list so validating a lab never loads a renderer.
 */
import type { CpMechanismId, DrillKind, SvcMechanismId } from './types.js';

export const CP_MECHANISMS = ['talos-vip', 'kube-vip-arp', 'kube-vip-bgp', 'haproxy'] as const satisfies readonly CpMechanismId[];
export const SVC_MECHANISMS = ['metallb-l2', 'metallb-bgp', 'kube-vip-arp', 'kube-vip-bgp', 'cilium-bgp'] as const satisfies readonly SvcMechanismId[];

export const DRILL_KINDS = [
  'baseline',
  'graceful-shutdown',
  'crash',
  'freeze',
  'partition',
  'link-flap',
  'node-leave',
  'node-join',
  'garp-ignored',
  'vip-loss-internal',
  'class-conflict',
] as const satisfies readonly DrillKind[];

export const VICTIM_RULES = ['holder', 'random-controlplane', 'worker', 'random-node', 'none'] as const;
export const TARGETS = ['api', 'service', 'both'] as const;

export interface MechanismTraits {
  /** moves an address on one L2 segment (ARP/GARP) */
  l2: boolean;
  /** announces over BGP (needs a router with BGP; owns TCP/179 on the node) */
  bgp: boolean;
  /** the API endpoint is the topology's VIP (as opposed to the external load balancer's address) */
  vip: boolean;
  /** needs the external load-balancer host */
  lbHost: boolean;
}

const T = (l2: boolean, bgp: boolean, vip = false, lbHost = false): MechanismTraits => ({ l2, bgp, vip, lbHost });

export const CP_TRAITS: Record<CpMechanismId, MechanismTraits> = {
  'talos-vip': T(true, false, true),
  'kube-vip-arp': T(true, false, true),
  'kube-vip-bgp': T(false, true, true),
  haproxy: T(false, false, false, true),
};

export const SVC_TRAITS: Record<SvcMechanismId, MechanismTraits> = {
  'metallb-l2': T(true, false),
  'metallb-bgp': T(false, true),
  'kube-vip-arp': T(true, false),
  'kube-vip-bgp': T(false, true),
  'cilium-bgp': T(false, true),
};

export function isCp(id: string): id is CpMechanismId {
  return (CP_MECHANISMS as readonly string[]).includes(id);
}

export function isSvc(id: string): id is SvcMechanismId {
  return (SVC_MECHANISMS as readonly string[]).includes(id);
}

export function isDrillKind(id: string): id is DrillKind {
  return (DRILL_KINDS as readonly string[]).includes(id);
}

/** The sentence every unknown-strategy error ends with. */
export const STRATEGY_FORMAT = `'<cp>+<svc>' with cp ∈ {${CP_MECHANISMS.join(', ')}} and svc ∈ {${SVC_MECHANISMS.join(', ')}}`;

/** Parse '<cp>+<svc>'; null with a reason when it is not one. */
export function parseStrategyId(id: string): { cp: CpMechanismId; svc: SvcMechanismId } | { error: string } {
  const parts = id.split('+');
  if (parts.length !== 2) return { error: `'${id}' is not ${STRATEGY_FORMAT}` };
  const [cp, svc] = parts as [string, string];
  const bad: string[] = [];
  if (!isCp(cp)) bad.push(`unknown control-plane mechanism '${cp}' (valid: ${CP_MECHANISMS.join(', ')})`);
  if (!isSvc(svc)) bad.push(`unknown service mechanism '${svc}' (valid: ${SVC_MECHANISMS.join(', ')})`);
  if (bad.length) return { error: `strategy '${id}': ${bad.join('; ')}; expected ${STRATEGY_FORMAT}` };
  return { cp: cp as CpMechanismId, svc: svc as SvcMechanismId };
}
