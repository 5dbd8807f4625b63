/**
 * `timers.haproxy`: the external HAProxy's health-check timers.
 */
import type { TimerGroupDef } from '../types.js';

declare module '../../model/types.js' {
  interface Timers {
    haproxy: { checkIntervalMs: number; fall: number; rise: number; checkTimeoutMs: number };
  }
}

export const haproxyTimers: TimerGroupDef = {
  group: 'haproxy',
  defaults: {
    // HAProxy 2.6 configuration manual, section 5.2 server options: `inter` default 2000 ms,
    // `fall` default 3, `rise` default 2; without `timeout check`, `inter` bounds the whole check.
    checkIntervalMs: 2000,
    fall: 3,
    rise: 2,
    checkTimeoutMs: 2000,
  },
  issues(t) {
    const out: { fields: string[]; message: string }[] = [];
    const h = t.haproxy;
    if (h.checkIntervalMs < 1) out.push({ fields: ['haproxy.checkIntervalMs'], message: `expected ≥ 1 ms, got ${h.checkIntervalMs}` });
    if (h.fall < 1) out.push({ fields: ['haproxy.fall'], message: `expected ≥ 1, got ${h.fall}` });
    if (h.rise < 1) out.push({ fields: ['haproxy.rise'], message: `expected ≥ 1, got ${h.rise}` });
    if (h.checkTimeoutMs > h.checkIntervalMs) {
      out.push({ fields: ['haproxy.checkTimeoutMs', 'haproxy.checkIntervalMs'], message: `expected haproxy.checkTimeoutMs (${h.checkTimeoutMs} ms) ≤ haproxy.checkIntervalMs (${h.checkIntervalMs} ms): a check must end before the next starts` });
    }
    return out;
  },
};
