/**
 * `timers.talosVip`: the Talos VIP operator's election timers, with their upstream defaults.
 */
import type { TimerGroupDef } from '../types.js';

declare module '../../model/types.js' {
  interface Timers {
    talosVip: { sessionTtlS: number; campaignRetryS: number };
  }
}

export const talosVipTimers: TimerGroupDef = {
  group: 'talosVip',
  defaults: {
    // Talos creates its election session with concurrency.NewSession(client) and no WithTTL, so the
    // etcd client default applies: defaultSessionTTL = 60 s (go.etcd.io/etcd/client/v3/concurrency/
    // session.go, etcd v3.5). Used by siderolabs/talos internal/app/machined/pkg/controllers/network/
    // operator/vip.go (Talos v1.11): a crashed holder keeps the VIP key until this lease expires.
    sessionTtlS: 60,
    // campaignRetryInterval = time.Second in the same vip.go: pause before re-campaigning after a failure.
    campaignRetryS: 1,
  },
  issues(t) {
    const out: { fields: string[]; message: string }[] = [];
    // etcd raises any lease TTL below minTTL = 1.5 × election timeout (etcd server.go: minTTL =
    // (3*ElectionTicks)/2 heartbeats): a shorter Talos session TTL would not be what is measured.
    const minTtlS = Math.ceil((1.5 * t.etcd.electionMs) / 1000);
    if (t.talosVip.sessionTtlS < minTtlS) {
      out.push({ fields: ['talosVip.sessionTtlS', 'etcd.electionMs'], message: `expected talosVip.sessionTtlS ≥ ${minTtlS} s (etcd raises any lease TTL below 1.5 × etcd.electionMs = ${t.etcd.electionMs} ms), got ${t.talosVip.sessionTtlS} s` });
    }
    if (t.talosVip.campaignRetryS >= t.talosVip.sessionTtlS) {
      out.push({ fields: ['talosVip.campaignRetryS', 'talosVip.sessionTtlS'], message: `expected talosVip.campaignRetryS (${t.talosVip.campaignRetryS} s) < talosVip.sessionTtlS (${t.talosVip.sessionTtlS} s)` });
    }
    return out;
  },
};
