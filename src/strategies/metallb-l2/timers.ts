/**
 * `timers.metallb`: the memberlist timers MetalLB's L2 speakers detect dead peers with.
 */
import type { TimerGroupDef } from '../types.js';

declare module '../../model/types.js' {
  interface Timers {
    metallb: { probeIntervalMs: number; probeTimeoutMs: number; suspicionMult: number; gossipMs: number };
  }
}

export const metallbTimers: TimerGroupDef = {
  group: 'metallb',
  defaults: {
    // MetalLB's speaker builds its memberlist from memberlist.DefaultLANConfig() (metallb
    // internal/speakerlist, v0.14/v0.15); hashicorp/memberlist config.go DefaultLANConfig:
    // ProbeInterval 1 s, ProbeTimeout 500 ms, SuspicionMult 4, GossipInterval 200 ms.
    probeIntervalMs: 1000,
    probeTimeoutMs: 500,
    suspicionMult: 4,
    gossipMs: 200,
  },
  issues(t) {
    const out: { fields: string[]; message: string }[] = [];
    // memberlist: a probe must time out before the next one is due (memberlist state.go probeNode).
    const ml = t.metallb;
    if (ml.probeTimeoutMs >= ml.probeIntervalMs) {
      out.push({ fields: ['metallb.probeTimeoutMs', 'metallb.probeIntervalMs'], message: `expected metallb.probeTimeoutMs (${ml.probeTimeoutMs} ms) < metallb.probeIntervalMs (${ml.probeIntervalMs} ms)` });
    }
    if (ml.suspicionMult < 1) out.push({ fields: ['metallb.suspicionMult'], message: `expected ≥ 1, got ${ml.suspicionMult}` });
    return out;
  },
};
