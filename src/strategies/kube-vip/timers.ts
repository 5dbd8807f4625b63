/**
 * `timers.kubeVip`: kube-vip's leader-election and ARP timers (shared by its ARP and BGP modes,
 * for the API and for Services), and `timers.kubeVipBgp`: the BGP timers of kube-vip's own GoBGP
 * speaker (BGP mode), with their upstream defaults. The lease defaults are those of the DEFAULT
 * release (./versions.ts); a lab pinning another release gets that release's lease defaults
 * (./settings.ts timerDefaults) unless it sets `timers.kubeVip` itself.
 */
import type { TimerGroupDef } from '../types.js';
import { bgpTimerIssues } from '../../model/timers.js';
import { KUBE_VIP_BGP_DEFAULTS, KUBE_VIP_DEFAULT_VERSION, kubeVipRelease } from './versions.js';

declare module '../../model/types.js' {
  interface Timers {
    kubeVip: { leaseDurationS: number; renewDeadlineS: number; retryPeriodS: number; arpRateMs: number };
    kubeVipBgp: { keepaliveS: number; holdS: number; connectRetryS: number };
  }
}

export const kubeVipTimers: TimerGroupDef = {
  group: 'kubeVip',
  defaults: {
    // vip_leaseduration / vip_renewdeadline / vip_retryperiod: the defaults of the default release,
    // 15/10/2 s since v1.1.0 (cmd/kube-vip.go@v1.2.3; 5/3/1 s up to v1.0.x, cmd/kube-vip.go@v0.8.9);
    // `kube-vip manifest` writes the same values (pkg/kubevip/config_generator.go@v1.2.3).
    ...kubeVipRelease(KUBE_VIP_DEFAULT_VERSION).lease,
    // vip_arpRate default 3000 ms (pkg/kubevip/config_environment.go@v0.8.9/@v1.2.3); the ARP
    // manager raises a rate below 500 ms to 3000 ms (pkg/arp/arp.go NewManager@v1.2.3).
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

export const kubeVipBgpTimers: TimerGroupDef = {
  group: 'kubeVipBgp',
  // bgp_hold_time 30 s, bgp_keepalive_interval 10 s, ConnectRetry 10 s (see ./versions.ts):
  // kube-vip's own, not MetalLB's `timers.bgp`. The routers are rendered to match (role.bgpTimers).
  defaults: { ...KUBE_VIP_BGP_DEFAULTS },
  issues(t) {
    const out = bgpTimerIssues('kubeVipBgp', t.kubeVipBgp);
    // kube-vip has no setting for it: pkg/bgp/peers.go passes ConnectRetry 10 to GoBGP in every release read
    if (t.kubeVipBgp.connectRetryS !== KUBE_VIP_BGP_DEFAULTS.connectRetryS) {
      out.push({ fields: ['kubeVipBgp.connectRetryS'], message: `expected ${KUBE_VIP_BGP_DEFAULTS.connectRetryS} s: kube-vip hard-codes its BGP connect-retry timer (no setting), got ${t.kubeVipBgp.connectRetryS} s` });
    }
    return out;
  },
};
