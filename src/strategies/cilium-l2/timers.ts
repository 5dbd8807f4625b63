/**
 * `timers.ciliumL2`: the client-go leader-election timers of Cilium's L2 announcer (one Lease per
 * announced Service), which are not kube-vip's.
 *
 * Cilium does not refuse bad combinations: pkg/l2announcer/l2announcer.go `leaseTimings()`
 * (Cilium 1.17/1.18 line) logs a warning and REWRITES them before handing them to client-go —
 * a lab asking for one of them would measure other timers than it names, so each is an issue here.
 */
import type { TimerGroupDef } from '../types.js';
import { JITTER_FACTOR } from '../kube-vip/agent.js';

declare module '../../model/types.js' {
  interface Timers {
    ciliumL2: { leaseDurationS: number; renewDeadlineS: number; retryPeriodS: number };
  }
}

export const ciliumL2Timers: TimerGroupDef = {
  group: 'ciliumL2',
  defaults: {
    // cilium daemon/cmd/daemon_main.go (the agent's flags, unchanged 1.14 → 1.18):
    // --l2-announcements-lease-duration 15s, --l2-announcements-renew-deadline 5s,
    // --l2-announcements-retry-period 2s; Helm l2announcements.leaseDuration / leaseRenewDeadline /
    // leaseRetryPeriod default to the same (Documentation/network/l2-announcements.rst "Leases").
    leaseDurationS: 15,
    renewDeadlineS: 5,
    retryPeriodS: 2,
  },
  issues(t) {
    const out: { fields: string[]; message: string }[] = [];
    const c = t.ciliumL2;
    // pkg/l2announcer/l2announcer.go leaseTimings(), in its order
    if (c.leaseDurationS < 1) {
      out.push({ fields: ['ciliumL2.leaseDurationS'], message: `expected ≥ 1 s, got ${c.leaseDurationS} s; Cilium replaces a shorter lease duration by 1 s` });
    }
    if (c.renewDeadlineS <= 0) out.push({ fields: ['ciliumL2.renewDeadlineS'], message: `expected > 0, got ${c.renewDeadlineS} s; Cilium replaces it by 1 s` });
    if (c.retryPeriodS <= 0) out.push({ fields: ['ciliumL2.retryPeriodS'], message: `expected > 0, got ${c.retryPeriodS} s; Cilium replaces it by 200 ms` });
    if (c.leaseDurationS >= 1 && c.renewDeadlineS > 0 && !(c.leaseDurationS > c.renewDeadlineS)) {
      out.push({
        fields: ['ciliumL2.renewDeadlineS', 'ciliumL2.leaseDurationS'],
        message: `expected ciliumL2.renewDeadlineS (${c.renewDeadlineS} s) < ciliumL2.leaseDurationS (${c.leaseDurationS} s); Cilium rewrites the renew deadline to half the lease duration`,
      });
    }
    if (c.renewDeadlineS > 0 && c.retryPeriodS > 0 && !(c.renewDeadlineS > JITTER_FACTOR * c.retryPeriodS)) {
      out.push({
        fields: ['ciliumL2.retryPeriodS', 'ciliumL2.renewDeadlineS'],
        message: `expected ${JITTER_FACTOR} × ciliumL2.retryPeriodS (${c.retryPeriodS} s) < ciliumL2.renewDeadlineS (${c.renewDeadlineS} s); Cilium rewrites the retry period to half the renew deadline`,
      });
    }
    // k8s.io/client-go tools/leaderelection/leaderelection.go tryAcquireOrRenew writes
    // LeaseDurationSeconds = int(LeaseDuration / time.Second): a fraction is cut off, and the
    // other candidates wait the truncated duration
    if (c.leaseDurationS >= 1 && !Number.isInteger(c.leaseDurationS)) {
      out.push({ fields: ['ciliumL2.leaseDurationS'], message: `expected whole seconds, got ${c.leaseDurationS} s; the Lease records ${Math.floor(c.leaseDurationS)} s (client-go truncates it)` });
    }
    return out;
  },
};
