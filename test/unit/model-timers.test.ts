import { describe, expect, it } from 'vitest';
import { mergeTimers } from '../../src/model/timers.js';
import { DEFAULT_TIMERS, timerIssues } from '../../src/model/timer-groups.js';
import type { Timers } from '../../src/model/types.js';

const withOverride = (o: Parameters<typeof mergeTimers>[1]) => mergeTimers(DEFAULT_TIMERS, o);
const fieldsOf = (t: Timers) => timerIssues(t).map((i) => i.fields[0]);

describe('timers', () => {
  it('the documented defaults are the upstream numbers and are mutually consistent', () => {
    expect(DEFAULT_TIMERS.talosVip).toEqual({ sessionTtlS: 60, campaignRetryS: 1 });
    // kube-vip ≥ v1.1.0 (the default release, settings.kubeVip.version): 15/10/2 s
    expect(DEFAULT_TIMERS.kubeVip).toEqual({ leaseDurationS: 15, renewDeadlineS: 10, retryPeriodS: 2, arpRateMs: 3000 });
    expect(DEFAULT_TIMERS.metallb).toMatchObject({ probeIntervalMs: 1000, probeTimeoutMs: 500, suspicionMult: 4 });
    expect(DEFAULT_TIMERS.bgp).toMatchObject({ keepaliveS: 30, holdS: 90 });
    expect(DEFAULT_TIMERS.cilium).toEqual({ keepaliveS: 30, holdS: 90, connectRetryS: 120 });
    expect(DEFAULT_TIMERS.bfd).toMatchObject({ transmitMs: 300, receiveMs: 300, detectMultiplier: 3 });
    expect(DEFAULT_TIMERS.haproxy).toMatchObject({ checkIntervalMs: 2000, fall: 3, rise: 2 });
    expect(DEFAULT_TIMERS.kubePrism).toEqual({ healthIntervalS: 20, healthTimeoutS: 15 });
    expect(DEFAULT_TIMERS.etcd).toEqual({ heartbeatMs: 100, electionMs: 1000 });
    expect(DEFAULT_TIMERS.arp).toEqual({ baseReachableS: 30, delayFirstProbeS: 5, ucastSolicit: 3, retransMs: 1000, gcStaleS: 60 });
    expect(timerIssues(DEFAULT_TIMERS)).toEqual([]);
  });

  it('merges layers field by field, later wins, without touching the defaults', () => {
    const t = mergeTimers(DEFAULT_TIMERS, { bgp: { keepaliveS: 3, holdS: 9 } }, { bgp: { holdS: 12 }, bfd: { enabled: true } });
    expect(t.bgp).toEqual({ keepaliveS: 3, holdS: 12, connectRetryS: 120 });
    expect(t.bfd.enabled).toBe(true);
    expect(DEFAULT_TIMERS.bgp.holdS).toBe(90);
    expect(DEFAULT_TIMERS.bfd.enabled).toBe(false);
  });

  it('refuses a node grace period a healthy node would fall through between two Lease renewals', () => {
    // default Lease 40 s → a renewal every 10 s (≤ 10.4 s with jitter), seen ≤ 5 s late: grace 4 s flaps
    const flapping = timerIssues(withOverride({ kubernetes: { nodeMonitorGraceS: 4 } })).find((i) => i.fields[0] === 'kubernetes.nodeMonitorGraceS');
    expect(flapping?.message).toMatch(/> nodeLeaseDurationS × 0\.25 × 1\.04 \+ nodeMonitorPeriodS = 15\.4 s/);
    expect(flapping?.fields).toEqual(['kubernetes.nodeMonitorGraceS', 'kubernetes.nodeLeaseDurationS', 'kubernetes.nodeMonitorPeriodS']);
    // the same grace with a 1 s renewal and 1 s passes is consistent (2.04 s < 4 s) …
    expect(timerIssues(withOverride({ kubernetes: { nodeMonitorGraceS: 4, nodeLeaseDurationS: 4, nodeMonitorPeriodS: 1 } }))).toEqual([]);
    // … and the boundary itself is refused (a renewal seen exactly at the deadline still flaps)
    expect(fieldsOf(withOverride({ kubernetes: { nodeMonitorGraceS: 15.4 } }))).toContain('kubernetes.nodeMonitorGraceS');
    expect(fieldsOf(withOverride({ kubernetes: { nodeMonitorGraceS: 16 } }))).not.toContain('kubernetes.nodeMonitorGraceS');
  });

  it('rejects what the real components reject or silently change', () => {
    expect(fieldsOf(withOverride({ kubeVip: { renewDeadlineS: 15 } }))).toContain('kubeVip.renewDeadlineS');
    expect(fieldsOf(withOverride({ kubeVip: { retryPeriodS: 8.4 } }))).toContain('kubeVip.retryPeriodS');
    expect(fieldsOf(withOverride({ kubeVip: { arpRateMs: 300 } }))).toContain('kubeVip.arpRateMs');
    expect(fieldsOf(withOverride({ bgp: { keepaliveS: 3, holdS: 8 } }))).toContain('bgp.holdS');
    expect(fieldsOf(withOverride({ bgp: { keepaliveS: 3, holdS: 2 } }))).toContain('bgp.holdS');
    expect(timerIssues(withOverride({ bgp: { keepaliveS: 30, holdS: 0 } }))).toEqual([]); // hold 0 = no keepalives (RFC 4271)
    expect(fieldsOf(withOverride({ cilium: { keepaliveS: 40 } }))).toContain('cilium.holdS');
    expect(fieldsOf(withOverride({ etcd: { heartbeatMs: 250 } }))).toContain('etcd.electionMs');
    expect(fieldsOf(withOverride({ talosVip: { sessionTtlS: 1 } }))).toContain('talosVip.sessionTtlS');
    expect(fieldsOf(withOverride({ metallb: { probeTimeoutMs: 1000 } }))).toContain('metallb.probeTimeoutMs');
    expect(fieldsOf(withOverride({ bfd: { transmitMs: 5 } }))).toContain('bfd.transmitMs');
    expect(fieldsOf(withOverride({ bfd: { detectMultiplier: 1 } }))).toContain('bfd.detectMultiplier');
    expect(fieldsOf(withOverride({ haproxy: { checkTimeoutMs: 5000 } }))).toContain('haproxy.checkTimeoutMs');
    expect(fieldsOf(withOverride({ kubePrism: { healthTimeoutS: 30 } }))).toContain('kubePrism.healthTimeoutS');
  });

  it('a short but legal CI configuration passes', () => {
    const t = withOverride({ talosVip: { sessionTtlS: 5 }, kubeVip: { leaseDurationS: 3, renewDeadlineS: 2, retryPeriodS: 0.5 }, bgp: { keepaliveS: 1, holdS: 3 } });
    expect(timerIssues(t)).toEqual([]);
  });
});
