/**
 * The pure part of scripts/fidelity-calibration.ts: rows from a small hand-made results pair.
 * Every expected median below is computed by hand from the fixture's outages.
 */
import { describe, expect, it } from 'vitest';
import { calibrationRows, renderCalibration, type CalibrationRow } from '../../scripts/fidelity-calibration.js';
import type { Results, RunRecord } from '../../src/results/types.js';
import { validateResults } from '../../src/results/validate.js';

const run = (strategy: string, target: 'api' | 'service', drill: string, outageMs: number | null, extra: Partial<RunRecord> = {}): RunRecord => ({
  strategy,
  target,
  drill,
  outageMs,
  errors: 0,
  requests: 100,
  latencyMs: { p50: 1, p99: 2 },
  throughputRps: 50,
  ...extra,
});

const base = (timers: Record<string, unknown>, runs: RunRecord[]): Results => ({
  lab: 'smb',
  topology: { name: 'smb', controlPlanes: 3, workers: 2 },
  provider: { name: 'sim', emulated: true, components: { etcd: '3.4.23' } },
  startedAt: '2026-11-30T12:00:00.000Z',
  bringUpMs: 1000,
  runs,
  timers,
});

const defaults = {
  talosVip: { sessionTtlS: 60, campaignRetryS: 1 },
  etcd: { heartbeatMs: 100, electionMs: 1000 },
  kubeVip: { leaseDurationS: 15, renewDeadlineS: 10, retryPeriodS: 2, arpRateMs: 3000 },
  metallb: { probeIntervalMs: 1000, probeTimeoutMs: 500, suspicionMult: 4, gossipMs: 200 },
  bfd: { enabled: true, receiveMs: 300, transmitMs: 300, detectMultiplier: 3 },
};

const A = base(defaults, [
  run('talos-vip+metallb-l2', 'api', 'crash', 48_000),
  run('talos-vip+metallb-l2', 'api', 'crash', 52_000),
  run('talos-vip+metallb-l2', 'api', 'crash', 61_000),
  run('talos-vip+metallb-l2', 'api', 'crash', 90_000, { recovered: false }),
  run('talos-vip+metallb-l2', 'service', 'crash', 2500, { service: 'web-local', externalTrafficPolicy: 'Local' }),
  run('talos-vip+metallb-l2', 'service', 'crash', 3100, { service: 'web-local', externalTrafficPolicy: 'Local' }),
  // Cluster: the endpoint tail, not the announcement: not counted
  run('talos-vip+metallb-l2', 'service', 'crash', 45_000, { service: 'web', externalTrafficPolicy: 'Cluster' }),
  run('kube-vip-arp+metallb-l2', 'api', 'crash', 16_000),
  run('kube-vip-arp+metallb-l2', 'api', 'crash', null, { supported: false, reason: 'not here' }),
  run('haproxy+metallb-bgp', 'service', 'crash', 1400, { externalTrafficPolicy: 'Local', expectedBasis: 'BFD detection at the router (3 × 300 ms) drops the node' }),
  run('haproxy+metallb-bgp', 'service', 'crash', 9000, { externalTrafficPolicy: 'Local', expectedBasis: 'BGP hold time at the router (9 s negotiated)' }),
]);

const B = base({ ...defaults, talosVip: { sessionTtlS: 30, campaignRetryS: 1 }, kubeVip: { leaseDurationS: 5, renewDeadlineS: 3, retryPeriodS: 1, arpRateMs: 3000 } }, [
  run('kube-vip-arp+kube-vip-arp', 'api', 'crash', 5200),
  run('talos-vip+metallb-l2', 'api', 'crash', 25_000),
]);

const byId = (rows: CalibrationRow[], id: string) => rows.find((r) => r.id === id)!;

describe('fidelity calibration rows', () => {
  it('the fixtures are valid results.json', () => {
    expect(validateResults(A).errors).toEqual([]);
    expect(validateResults(B).errors).toEqual([]);
  });

  const rows = calibrationRows([A, B]);

  it('Talos VIP crash: median of the recovered runs with TTL 60 s; other TTLs and open outages left out and counted', () => {
    const r = byId(rows, 'cal-talos-vip-crash');
    // 48, 52, 61 s → median 52 s
    expect(r).toMatchObject({ n: 3, medianMs: 52_000, minMs: 48_000, maxMs: 61_000, otherTimers: 1, notRecovered: 1, providers: ['sim, emulated'] });
    expect(r.differences).toEqual(['talosVip.sessionTtlS = 30 (assumed 60)']);
    expect(byId(rows, 'cal-talos-vip-graceful')).toMatchObject({ n: 0, medianMs: null, otherTimers: 0 });
  });

  it('kube-vip: "about 3 s" takes every lease setting, the 15 s and 5 s figures only their own', () => {
    // 16 s (15/10/2) and 5.2 s (5/3/1) → (5.2 + 16) / 2 = 10.6 s; the unsupported run is ignored
    expect(byId(rows, 'cal-kube-vip-3s')).toMatchObject({ n: 2, medianMs: 10_600, otherTimers: 0 });
    expect(byId(rows, 'cal-kube-vip-15s')).toMatchObject({ n: 1, medianMs: 16_000, otherTimers: 1 });
    expect(byId(rows, 'cal-kube-vip-5s')).toMatchObject({ n: 1, medianMs: 5200, otherTimers: 1 });
  });

  it('MetalLB L2: only externalTrafficPolicy Local Services count (no endpoint tail)', () => {
    // 2.5 and 3.1 s → 2.8 s; the 45 s Cluster run is not matched at all
    for (const id of ['cal-metallb-l2-few-seconds', 'cal-metallb-l2-3s', 'cal-metallb-l2-10s']) expect(byId(rows, id)).toMatchObject({ n: 2, medianMs: 2800, minMs: 2500, maxMs: 3100, otherTimers: 0 });
  });

  it('BFD: only runs whose band was BFD detection', () => {
    expect(byId(rows, 'cal-bfd-900ms')).toMatchObject({ n: 1, medianMs: 1400 });
    expect(byId(rows, 'cal-cilium-l2-default')).toMatchObject({ n: 0, medianMs: null });
  });

  it('renders the generated section with the figures, the medians and what was left out', () => {
    const md = renderCalibration(rows, [A, B]);
    expect(md.startsWith('## Measured (generated by scripts/fidelity-calibration.ts)\n')).toBe(true);
    expect(md).toContain('Inputs (2): smb on sim (emulated Talos control plane: not a Talos measurement), started 2026-11-30T12:00:00.000Z;');
    const line = md.split('\n').find((l) => l.startsWith('| [cal-talos-vip-crash](#cal-talos-vip-crash) |'))!;
    expect(line).toContain('| 52.0 s (sim, emulated) | 3 | 48.0 s–61.0 s | 1 with other timers: talosVip.sessionTtlS = 30 (assumed 60); 1 not recovered (no figure) |');
    expect(md).toContain('| 2.80 s (sim, emulated) | 2 | 2.50 s–3.10 s |');
    expect(md).toMatch(/\| \[cal-talos-vip-graceful\]\(#cal-talos-vip-graceful\) \| [^|]+ \| no matching run \| 0 \| — \| — \|/);
    expect(md).toMatch(/\| \[cal-kube-vip-15s\]\(#cal-kube-vip-15s\) \| [^|]+ \| 16\.0 s \(sim, emulated\) \| 1 \|/);
  });
});
