import type { Drill } from './types.js';

/** No fault: latency, throughput and node share in steady state. */
export const baseline: Drill = {
  kind: 'baseline',
  description: 'steady state: no fault injected',
  held: false,
  primitives: [],
  applicable: () => null,
  pickVictim: async () => null,
  inject: async () => {},
  restore: async () => {},
};
