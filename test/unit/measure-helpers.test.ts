/**
 * Helpers of a drill's measurement.
 *
 * A process an earlier drill's fault ended after that drill's own check (a thawed kube-vip leader
 * loses its lease only when its renewal round's RenewDeadline runs out) is found before the next
 * drill: it is reported on the drill that caused it, next to what that drill already reported.
 * A fault is injected only once the probe has had a clean pre window, waiting a bounded time.
 */
import { describe, expect, it } from 'vitest';
import { attachLateStuck, awaitCleanPreWindow, hostLoadCovers, hostStallText } from '../../src/orchestrator/measure.js';
import type { RunRecord } from '../../src/results/types.js';

const record = (extra: Partial<RunRecord> = {}): RunRecord =>
  ({ strategy: 's', target: 'service', drill: 'freeze', victim: 'w2', repeat: 0, outageMs: 17000, ...extra }) as RunRecord;

describe('attachLateStuck', () => {
  it('adds what the next drill found stuck to the earlier record, keeping what it had', () => {
    const prev = record({ leftStuck: ['w1: kube-vip hung'], notes: ['heal: 1 burst'] });
    attachLateStuck(prev, ['w2: kube-vip v1.2.3 hung after losing a lease']);
    expect(prev.leftStuck).toEqual(['w1: kube-vip hung', 'w2: kube-vip v1.2.3 hung after losing a lease']);
    expect(prev.notes).toHaveLength(2);
    expect(prev.notes![0]).toBe('heal: 1 burst');
    expect(prev.notes![1]).toMatch(/after its observation ended.*w2: kube-vip v1\.2\.3 hung/);
  });

  it('leaves a record alone when nothing was found', () => {
    const prev = record();
    attachLateStuck(prev, []);
    expect(prev.leftStuck).toBeUndefined();
    expect(prev.notes).toBeUndefined();
  });
});

// an outage over its band's maximum (beyond the probe's resolution) by no more than the probing
// client stood still cannot be told from the host's load; anything else is the mechanism's
describe('hostLoadCovers', () => {
  const max = 4500;
  const slack = 210;
  it('names host load when the overshoot is no longer than the stalls', () => {
    expect(hostLoadCovers(5580, max, slack, 1764)).toBe(true); // 870 ms over, 1.76 s stalled
    expect(hostLoadCovers(max + slack + 500, max, slack, 500)).toBe(true);
  });
  it('does not when the stalls are shorter than the overshoot', () => {
    expect(hostLoadCovers(10160, max, slack, 1200)).toBe(false);
    expect(hostLoadCovers(max + slack + 501, max, slack, 500)).toBe(false);
  });
  it('does not for outages inside the band or its slack, nor under the minimum', () => {
    expect(hostLoadCovers(max + slack, max, slack, 10_000)).toBe(false);
    expect(hostLoadCovers(100, max, slack, 10_000)).toBe(false);
  });
});

// the run's note names what stood still, the longer first
describe('hostStallText', () => {
  it("names the client's stalls when no lab process was read", () => {
    expect(hostStallText(1764, null)).toBe('the probing client stood still for 1764 ms in all');
  });
  it('puts the lab process first when it waited longer than the client stalled', () => {
    expect(hostStallText(1790, { ms: 3120, process: 'w17/agent' })).toBe('w17/agent waited 3120 ms for a CPU (the probing client stood still for 1790 ms)');
  });
  it("puts the client's stalls first when they were the longer", () => {
    expect(hostStallText(2000, { ms: 400, process: 'cp1/etcd' })).toBe('the probing client stood still for 2000 ms in all (cp1/etcd waited 400 ms for a CPU)');
  });
});

// a fault is injected on a path the probe has just seen healthy: failures in the pre window (a
// restored node still booting, a starved host) would otherwise open the outage before the fault
describe('awaitCleanPreWindow', () => {
  const pre = 40;
  /** a probe whose last failure was sent at `lastFailAt` (epoch ms), `failed` failures in all */
  const probe = (lastFailAt: number | null, failed = 3) => async (since: number) =>
    lastFailAt !== null && lastFailAt >= since ? { firstFailAt: lastFailAt, failed } : { firstFailAt: null, failed: 0 };

  it('injects at once after a clean pre window', async () => {
    expect(await awaitCleanPreWindow(pre, probe(null), undefined, 1000, 5)).toEqual({ waitedMs: 0, clean: true, failed: 0 });
    expect(await awaitCleanPreWindow(pre, probe(Date.now() - 2 * pre), undefined, 1000, 5)).toMatchObject({ waitedMs: 0, clean: true });
  });

  it('waits until no failure is left in the last pre window', async () => {
    const r = await awaitCleanPreWindow(pre, probe(Date.now() - 10, 7), undefined, 1000, 5);
    expect(r.clean).toBe(true);
    expect(r.failed).toBe(7);
    expect(r.waitedMs).toBeGreaterThanOrEqual(pre - 10 - 5);
    expect(r.waitedMs).toBeLessThan(pre + 200);
  });

  it('gives up after its bound on a path that keeps failing, and says so', async () => {
    const failing = async () => ({ firstFailAt: Date.now(), failed: 12 });
    const r = await awaitCleanPreWindow(pre, failing, undefined, 60, 5);
    expect(r).toMatchObject({ clean: false, failed: 12 });
    expect(r.waitedMs).toBeGreaterThanOrEqual(60);
    expect(r.waitedMs).toBeLessThan(400);
  });
});
