/**
 * `timers.cilium`: the BGP timers of Cilium's BGP control plane (CiliumBGPPeerConfig), which are
 * not MetalLB's.
 */
import type { TimerGroupDef } from '../types.js';
import { bgpTimerIssues } from '../../model/timers.js';

declare module '../../model/types.js' {
  interface Timers {
    cilium: { keepaliveS: number; holdS: number; connectRetryS: number };
  }
}

export const ciliumTimers: TimerGroupDef = {
  group: 'cilium',
  defaults: {
    // cilium pkg/k8s/apis/cilium.io/v2alpha1 (bgp peer types, Cilium 1.14+): DefaultBGPKeepAliveTimeSeconds
    // = 30, DefaultBGPHoldTimeSeconds = 90, DefaultBGPConnectRetryTimeSeconds = 120.
    keepaliveS: 30,
    holdS: 90,
    connectRetryS: 120,
  },
  issues: (t) => bgpTimerIssues('cilium', t.cilium),
};
