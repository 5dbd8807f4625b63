/**
 * The CLI's view of a lab: `--strategies a,b`, `--drills a,b`, `--quick`, `--repeat N` applied to a
 * resolved Lab, before any engine call. Unknown names are a UsageError (exit 2) that lists the
 * valid ones. The result is an ordinary Lab, so the engine never needs to know about the flags.
 *
 * `--quick` (per lab, `quick:` in the lab file): 1 repeat, each drill's pre/settle/observe windows
 * capped (defaults 1.5 s / 1 s / 5 s — the engine still extends the observe window to the
 * mechanism's expected outage band, so slow failovers are not cut short), only the lab's quick
 * drills (default: baseline, graceful-shutdown, crash) and the quick timers, if the lab sets any.
 */
import { UsageError } from '../util/errors.js';
import type { Lab } from './types.js';

export interface Selection {
  strategies?: string[];
  drills?: string[];
  quick?: boolean;
  repeat?: number;
}

/** 'a,b, c' → ['a','b','c']; undefined/empty → undefined */
export function splitList(v: string | string[] | undefined): string[] | undefined {
  if (v === undefined) return undefined;
  const xs = (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
  return xs.length ? xs : undefined;
}

export function selectLab(lab: Lab, sel: Selection): Lab {
  const problems: string[] = [];
  let strategies = lab.strategies;
  if (sel.strategies) {
    const valid = lab.strategies.map((s) => s.id);
    const unknown = sel.strategies.filter((s) => !valid.includes(s));
    if (unknown.length) problems.push(`--strategies: unknown for lab ${lab.name}: ${unknown.join(', ')}; valid: ${valid.join(', ')}`);
    strategies = lab.strategies.filter((s) => sel.strategies!.includes(s.id));
  }
  let drills = lab.drills;
  if (sel.drills) {
    const valid = lab.drills.map((d) => d.kind as string);
    const unknown = sel.drills.filter((d) => !valid.includes(d));
    if (unknown.length) problems.push(`--drills: unknown for lab ${lab.name}: ${unknown.join(', ')}; valid: ${valid.join(', ')}`);
    drills = lab.drills.filter((d) => sel.drills!.includes(d.kind));
  }
  if (sel.repeat !== undefined && (!Number.isInteger(sel.repeat) || sel.repeat < 1)) {
    problems.push(`--repeat: expected a whole number ≥ 1, got ${sel.repeat}`);
  }
  if (problems.length) throw new UsageError(problems.join('\n'));

  let repeats = lab.repeats;
  let topology = lab.topology;
  if (sel.quick && lab.quick) {
    const q = lab.quick;
    repeats = q.repeats;
    // an explicit --drills wins over the quick drill list
    if (!sel.drills) drills = drills.filter((d) => q.drills.includes(d.kind));
    drills = drills.map((d) => ({
      ...d,
      preMs: Math.min(d.preMs, q.preMs),
      settleMs: Math.min(d.settleMs, q.settleMs),
      observeMs: Math.min(d.observeMs, q.observeMs),
    }));
    topology = { ...topology, timers: q.timers };
  }
  if (sel.repeat !== undefined) repeats = sel.repeat;
  return { ...lab, strategies, drills, repeats, topology };
}
