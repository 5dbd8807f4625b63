/**
 * Which of an agent's components survive a change of its component list (pure). The agent starts
 * its components in list order and stops them in reverse, and a later component may rely on an
 * earlier one being there when it starts (the kubelet-like client dials KubePrism, a mechanism
 * announces through the echo pods' kube-proxy rules…). So only the longest common PREFIX of the
 * old and the new list is kept, and only where every spec in it is identical (kind, name and the
 * whole config): from the first difference on, the old components stop (last first) and the new
 * ones start (first first). The agent then runs exactly the new list, in the new order, each
 * component started after the same predecessors as on a fresh start.
 */
import type { ComponentSpec } from './types.js';

/** canonical JSON (object keys sorted), so two specs rendered by different code paths compare by content */
export function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : x,
  );
}

export function sameSpec(a: ComponentSpec, b: ComponentSpec): boolean {
  return (a.name ?? a.kind) === (b.name ?? b.kind) && a.kind === b.kind && canonical(a.config ?? {}) === canonical(b.config ?? {});
}

/** how many leading components of `before` are kept when the agent's list becomes `after` */
export function keptPrefix(before: readonly ComponentSpec[], after: readonly ComponentSpec[]): number {
  let i = 0;
  while (i < before.length && i < after.length && sameSpec(before[i]!, after[i]!)) i++;
  return i;
}
