/**
 * The names the model accepts besides mechanisms: drill kinds, victim rules, targets. Mechanism
 * ids, their traits and options come from the mechanism registry (src/strategies/registry.ts), so
 * a new mechanism needs no change here.
 */
import type { DrillKind } from './types.js';

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

export function isDrillKind(id: string): id is DrillKind {
  return (DRILL_KINDS as readonly string[]).includes(id);
}

