/**
 * Every timer group a lab can set: the core groups of ./timers.ts and the groups each mechanism
 * defines in its own folder (taken from the mechanism registry), with their defaults and the
 * cross-field rules of each. The lab and topology schemas are built from DEFAULT_TIMERS, so a
 * mechanism's new group is accepted in `timers:` as soon as the mechanism is registered.
 */
import type { Timers } from './types.js';
import { CORE_TIMERS, coreTimerIssues, type TimerGroup, type TimerIssue } from './timers.js';
import { mechanismTimerGroups } from '../strategies/registry.js';

function compose(): Timers {
  const out = structuredClone(CORE_TIMERS) as unknown as Record<string, unknown>;
  for (const g of mechanismTimerGroups()) {
    if (g.group in out) throw new Error(`timer group '${g.group}' of a mechanism clashes with a core group`);
    out[g.group] = { ...g.defaults };
  }
  return out as unknown as Timers;
}

export const DEFAULT_TIMERS: Timers = compose();
export const TIMER_GROUPS = Object.keys(DEFAULT_TIMERS) as TimerGroup[];

export function timerIssues(t: Timers): TimerIssue[] {
  return [...coreTimerIssues(t), ...mechanismTimerGroups().flatMap((g) => g.issues?.(t) ?? [])];
}
