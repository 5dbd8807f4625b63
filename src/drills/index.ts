/** The drill registry: one entry per kind; an unknown kind lists the valid ones. */
import type { DrillKind } from '../model/types.js';
import type { Drill } from './types.js';
import { LabError } from '../util/errors.js';
import { baseline } from './baseline.js';
import { gracefulShutdown, crash, freeze, partition, linkFlap } from './node-fault.js';
import { nodeLeave, nodeJoin } from './bgp-churn.js';
import { garpIgnored } from './garp-ignored.js';
import { vipLossInternal } from './vip-loss-internal.js';
import { classConflict } from './class-conflict.js';

const all: Drill[] = [baseline, gracefulShutdown, crash, freeze, partition, linkFlap, nodeLeave, nodeJoin, garpIgnored, vipLossInternal, classConflict];

export const drills: ReadonlyMap<DrillKind, Drill> = new Map(all.map((d) => [d.kind, d]));

export function drill(kind: DrillKind): Drill {
  const d = drills.get(kind);
  if (!d) throw new LabError(`unknown drill '${kind}'; valid: ${[...drills.keys()].join(', ')}`);
  return d;
}
