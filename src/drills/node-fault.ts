/**
 * Faults of one node, each one provider primitive: graceful shutdown, crash, freeze, partition,
 * link flap. The victim is by default the node holding the target's address (observed).
 */
import type { DrillKind } from '../model/types.js';
import type { Primitive } from '../providers/types.js';
import type { Drill } from './types.js';
import { pickVictim } from './victims.js';

function nodeFault(kind: DrillKind, primitive: Primitive, held: boolean, description: string): Drill {
  return {
    kind,
    description,
    held,
    primitives: [primitive],
    applicable: () => null,
    pickVictim: (ctx) => pickVictim(ctx),
    inject: async (ctx, victim) => {
      if (!victim) return;
      await ctx.lab.inject(primitive, victim, primitive === 'link-flap' ? { downMs: ctx.spec.holdMs || 2000 } : undefined);
    },
    restore: async (ctx, victim) => {
      if (victim) await ctx.lab.restore(victim);
    },
  };
}

export const gracefulShutdown = nodeFault('graceful-shutdown', 'shutdown', false, 'graceful shutdown of the victim: its daemons say goodbye (resign, withdraw, leave)');
export const crash = nodeFault('crash', 'crash', false, 'sudden crash: every process killed and all traffic dropped; peers notice only by timeouts');
export const freeze = nodeFault('freeze', 'freeze', true, 'hang: the victim’s processes are stopped while its kernel still answers ARP and TCP handshakes');
export const partition = nodeFault('partition', 'partition', true, 'network partition: all the victim’s traffic dropped both ways, processes keep running');
export const linkFlap = nodeFault('link-flap', 'link-flap', false, 'link flap: the victim’s NIC goes down for the hold time, then up');
