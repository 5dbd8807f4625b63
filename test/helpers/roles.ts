/** Roles of registered mechanisms and the context they are asked in, for tests. */
import type { StrategyRef, Topology } from '../../src/model/types.js';
import type { CpRole, MechanismContext, SvcRole } from '../../src/strategies/types.js';
import { composeStrategy } from '../../src/strategies/compose.js';
import { mechanism } from '../../src/strategies/registry.js';

export function cpOf(id: string): CpRole {
  const r = mechanism(id).cp;
  if (!r) throw new Error(`${id} has no control-plane role`);
  return r;
}

export function svcOf(id: string): SvcRole {
  const r = mechanism(id).svc;
  if (!r) throw new Error(`${id} has no service role`);
  return r;
}

/** the context a role renders and predicts in: '<cp>+<svc>' strategy with options */
export function ctxOf(topology: Topology, strategy: string | StrategyRef, options: StrategyRef['options'] = {}): MechanismContext {
  const ref: StrategyRef = typeof strategy === 'string' ? { id: strategy, cp: strategy.split('+')[0]!, svc: strategy.split('+')[1]!, options } : strategy;
  const s = composeStrategy(ref);
  return { topology, strategy: ref, roles: { cp: s.cp, svc: s.svc } };
}
