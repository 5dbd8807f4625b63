/**
 * A drill = where (victim rule) + what (provider primitives) + when it ends (restore).
 * Drills act only through the RunningLab interface, so every provider runs the same drills.
 */
import type { DrillKind, DrillSpec, Target } from '../model/types.js';
import type { Primitive, RunningLab } from '../providers/types.js';
import type { Strategy } from '../strategies/types.js';

export interface DrillContext {
  lab: RunningLab;
  strategy: Strategy;
  spec: DrillSpec;
  target: Target;
  /** deterministic choice for "random" victims (seeded per run) */
  random(): number;
}

export interface Drill {
  kind: DrillKind;
  description: string;
  /** the fault is held until restore (freeze, partition); others are instantaneous */
  held: boolean;
  /** the provider primitives it uses (a provider that cannot do one records the run as unsupported) */
  primitives: Primitive[];
  /** null when the drill applies to this strategy/target, else why not */
  applicable(strategy: Strategy, target: Target): string | null;
  /** runs before traffic starts (e.g. node-join first makes the node leave) */
  prepare?(ctx: DrillContext, victim: string | null): Promise<void>;
  /** choose the victim (null = no victim, e.g. baseline) */
  pickVictim(ctx: DrillContext): Promise<string | null>;
  inject(ctx: DrillContext, victim: string | null): Promise<void>;
  restore(ctx: DrillContext, victim: string | null): Promise<void>;
}
