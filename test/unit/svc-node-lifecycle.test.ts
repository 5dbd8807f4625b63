/**
 * The node lifecycle chain that takes a silent node's pods out of a Service (src/emulation/
 * endpoints.ts, src/emulation/kube-proxy.ts), built from its parts: kubelet Lease renewals
 * (renewInterval = nodeLeaseDurationSeconds × 0.25, sliding, + U[0, 0.04) jitter), the node
 * lifecycle controller's passes every --node-monitor-period (probeTimestamp = the pass that saw
 * the renewal; declared once probeTimestamp + grace is reached), and kube-proxy's sync runner
 * (minSyncPeriod, burst 2). Every expected figure is computed here from the timers and those rules.
 */
import { describe, expect, it } from 'vitest';
import { loadLab, REPO_ROOT } from '../../src/model/load.js';
import type { Topology } from '../../src/model/types.js';
import { NodeLifecycle, SyncRunner } from '../../src/emulation/kube-proxy.js';
import { withEndpointTail } from '../../src/emulation/endpoints.js';
import { svcBaseComponents } from '../../src/emulation/base-svc.js';

const smb = (): Topology => loadLab('smb', { repoRoot: REPO_ROOT }).topology;

/** the upstream parts, from the timers (the test's own arithmetic) */
function parts(t: Topology) {
  const k = t.timers.kubernetes;
  return { renew: k.nodeLeaseDurationS * 1000 * 0.25, jitter: 0.04, period: k.nodeMonitorPeriodS * 1000, grace: k.nodeMonitorGraceS * 1000, minSync: k.proxyMinSyncS * 1000 };
}

/** a tiny deterministic PRNG (mulberry32) so the simulation is the same every run */
function rng(seed: number) {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

describe('node lifecycle defaults', () => {
  it('the kubernetes timers are the upstream defaults: grace 50 s, monitor period 5 s, Lease 40 s (renew 10 s), kube-proxy minSyncPeriod 1 s', () => {
    expect(smb().timers.kubernetes).toEqual({ nodeMonitorGraceS: 50, nodeMonitorPeriodS: 5, nodeLeaseDurationS: 40, proxyMinSyncS: 1 });
    const kp = svcBaseComponents(smb()).w1!.find((c) => c.kind === 'kube-proxy')!.config as { lifecycle: Record<string, number> };
    expect(kp.lifecycle).toEqual({ renewMs: 10_000, renewJitter: 0.04, monitorMs: 5000, graceMs: 50_000, minSyncMs: 1000 });
  });
});

describe('NodeLifecycle: the controller pass', () => {
  it('probeTimestamp is the PASS that saw a renewal, not the renewal; declared at probe + grace; ready at the pass that sees a new renewal', () => {
    const lc = new NodeLifecycle(['w2'], 50_000, 0);
    lc.observe('w2', 3000); // renewed at 3 s
    expect(lc.pass(5000)).toEqual([]); // seen at 5 s → probe = 5 s
    expect(lc.pass(50_000)).toEqual([]); // 0 + 50 s would be the renewal's count: not it
    expect(lc.pass(54_999)).toEqual([]);
    expect(lc.pass(55_000)).toEqual(['w2']);
    expect(lc.ready('w2')).toBe(false);
    lc.observe('w2', 3000); // an old renewal again: nothing
    expect(lc.pass(60_000)).toEqual([]);
    lc.observe('w2', 61_000);
    expect(lc.pass(65_000)).toEqual(['w2']);
    expect(lc.ready('w2')).toBe(true);
  });

  it('a node never renewing is counted from the controller start (no saved health: "now")', () => {
    const lc = new NodeLifecycle(['w2'], 50_000, 2000);
    expect(lc.pass(51_999)).toEqual([]);
    expect(lc.pass(52_000)).toEqual(['w2']);
  });
});

describe('SyncRunner: BoundedFrequencyRunner(minSyncPeriod, burst 2)', () => {
  it('two syncs at once, then one per minSyncPeriod', () => {
    const r = new SyncRunner(1000, 2, 0);
    expect(r.delay(10_000)).toBe(0);
    r.ran(10_000);
    expect(r.delay(10_000)).toBe(0);
    r.ran(10_000);
    expect(r.delay(10_000)).toBe(1000);
    expect(r.delay(10_400)).toBe(600);
    expect(r.delay(11_000)).toBe(0);
    r.ran(11_000);
    expect(r.delay(11_000)).toBe(1000);
  });
});

describe('endpoint removal after a silent node: a distribution, not grace ± 1 s', () => {
  /**
   * The chain driven the way the component drives it: renewals every renew × (1 + U[0, 0.04))
   * from a random phase, passes on the period grid, death at a random time, the rules applied
   * through the runner. Returns ms from death to the rules without the node.
   */
  function simulate(t: Topology, seed: number): number {
    const p = parts(t);
    const rand = rng(seed);
    const lc = new NodeLifecycle(['w2'], p.grace, 0);
    const runner = new SyncRunner(p.minSync, 2, 0);
    const death = 200_000 + rand() * 60_000;
    let renew = rand() * p.renew;
    let nextPass = p.period;
    for (;;) {
      // events in time order: renewals before the death reach the informer, passes run on the grid
      if (renew < death && renew <= nextPass) {
        lc.observe('w2', renew);
        renew += p.renew * (1 + rand() * p.jitter);
        continue;
      }
      const changed = lc.pass(nextPass);
      if (changed.includes('w2')) {
        expect(nextPass).toBeGreaterThan(death);
        const wait = runner.delay(nextPass);
        return nextPass + wait - death;
      }
      nextPass += p.period;
    }
  }

  it('smb defaults: every run inside [grace − renew × 1.04, grace + period + minSync], spread over most of it', () => {
    const t = smb();
    const p = parts(t);
    const min = p.grace - p.renew * (1 + p.jitter); // 39.6 s
    const max = p.grace + p.period + p.minSync; // 56 s
    const runs = Array.from({ length: 2000 }, (_, i) => simulate(t, i + 1));
    expect(Math.min(...runs)).toBeGreaterThanOrEqual(min);
    expect(Math.max(...runs)).toBeLessThanOrEqual(max);
    // the old model (50 ± 1 s) would put everything in [49, 51]; the parts spread it over ≈ 15 s
    expect(Math.min(...runs)).toBeLessThan(p.grace - 0.8 * p.renew);
    expect(Math.max(...runs)).toBeGreaterThan(p.grace + 0.6 * p.period);
    const mean = runs.reduce((a, b) => a + b, 0) / runs.length;
    // E[R] ≈ −renew/2, E[O − R] ≈ period/2: mean ≈ grace − renew/2 + period/2
    expect(Math.abs(mean - (p.grace - p.renew / 2 + p.period / 2))).toBeLessThan(1000);
  });

  it('the band of an ETP Cluster crash has the same bounds (computed here), and a held fault ends at restore', () => {
    const t = smb();
    const p = parts(t);
    const web = t.services.find((s) => s.externalTrafficPolicy === 'Cluster')!;
    const mech = { min: 4500, max: 11_000, basis: 'memberlist' };
    const crash = withEndpointTail(mech, 'crash', web, t, true, 0, false, 10)!;
    // the tail's last failure: one connection in 2 (smb's two workers' pods) fails, at one probe
    // every 10 ms; 99 % of the gaps before the tail's end are under ln 100 / ln 2 probes = 66 ms
    const gap = Math.round((10 * Math.log(100)) / Math.log(2));
    expect(gap).toBe(66);
    expect(crash.min).toBe(p.grace - p.renew * (1 + p.jitter) - gap);
    expect(crash.max).toBe(p.grace + p.period + p.minSync);
    expect(crash.basis).toMatch(/Lease renewed every 10 s/);
    const held = withEndpointTail(mech, 'partition', web, t, true, 6000, true, 10)!;
    expect(held).toMatchObject({ min: 6000 - gap, max: 11_000 });
    // Local Services, a victim without a pod, a graceful stop: no tail
    const local = t.services.find((s) => s.externalTrafficPolicy === 'Local')!;
    expect(withEndpointTail(mech, 'crash', local, t, true, 0, false, 10)).toBe(mech);
    expect(withEndpointTail(mech, 'crash', web, t, false, 0, false, 10)).toBe(mech);
    expect(withEndpointTail(mech, 'graceful-shutdown', web, t, true, 0, false, 10)).toBe(mech);
    // faster parts move the bounds with them
    const fast = { ...t, timers: { ...t.timers, kubernetes: { nodeMonitorGraceS: 4, nodeMonitorPeriodS: 0.5, nodeLeaseDurationS: 4, proxyMinSyncS: 1 } } };
    const f = withEndpointTail(mech, 'crash', web, fast, true, 0, false, 10)!;
    expect(f.min).toBe(Math.max(mech.min, 4000 - 1000 * 1.04 - gap));
    expect(f.max).toBe(Math.max(mech.max, 4000 + 500 + 1000));
  });
});
