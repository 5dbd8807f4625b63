/**
 * `timers.kubeVip`: kube-vip's leader-election and ARP timers (shared by its ARP and BGP modes,
 * for the API and for Services), with their upstream defaults.
 */
import type { TimerGroupDef } from '../types.js';

declare module '../../model/types.js' {
  interface Timers {
    kubeVip: { leaseDurationS: number; renewDeadlineS: number; retryPeriodS: number; arpRateMs: number };
  }
}

export const kubeVipTimers: TimerGroupDef = {
  group: 'kubeVip',
  defaults: {
    // The manifests kube-vip generates (`kube-vip manifest pod|daemonset`, kube-vip.io/docs/
    // installation/static/, kube-vip v0.8/v0.9) set vip_leaseduration=5, vip_renewdeadline=3,
    // vip_retryperiod=1. (client-go's own leader-election defaults are 15/10/2 s,
    // k8s.io/client-go/tools/leaderelection; kube-vip overrides them with the values above.)
    leaseDurationS: 5,
    renewDeadlineS: 3,
    retryPeriodS: 1,
    // vip_arpRate default 3000 ms (kube-vip pkg/kubevip/config_environment.go); pkg/arp/manager.go
    // resets any rate below 500 ms to 3000 ms.
    arpRateMs: 3000,
  },
  issues(t) {
    const out: { fields: string[]; message: string }[] = [];
    // client-go NewLeaderElector (k8s.io/client-go/tools/leaderelection/leaderelection.go):
    // leaseDuration > renewDeadline, renewDeadline > JitterFactor(1.2) × retryPeriod.
    const kv = t.kubeVip;
    if (!(kv.renewDeadlineS < kv.leaseDurationS)) {
      out.push({ fields: ['kubeVip.renewDeadlineS', 'kubeVip.leaseDurationS'], message: `expected kubeVip.renewDeadlineS (${kv.renewDeadlineS} s) < kubeVip.leaseDurationS (${kv.leaseDurationS} s); client-go's leader election refuses it otherwise` });
    }
    if (!(kv.renewDeadlineS > 1.2 * kv.retryPeriodS)) {
      out.push({ fields: ['kubeVip.retryPeriodS', 'kubeVip.renewDeadlineS'], message: `expected 1.2 × kubeVip.retryPeriodS (${kv.retryPeriodS} s) < kubeVip.renewDeadlineS (${kv.renewDeadlineS} s); client-go's leader election refuses it otherwise` });
    }
    if (kv.retryPeriodS <= 0) out.push({ fields: ['kubeVip.retryPeriodS'], message: `expected > 0, got ${kv.retryPeriodS}` });
    if (kv.arpRateMs < 500) {
      out.push({ fields: ['kubeVip.arpRateMs'], message: `expected ≥ 500 ms (kube-vip pkg/arp resets lower rates to 3000 ms), got ${kv.arpRateMs} ms` });
    }
    return out;
  },
};
