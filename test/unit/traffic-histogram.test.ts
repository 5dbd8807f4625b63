import { describe, expect, it } from 'vitest';
import { LatencyHistogram, latencyStats } from '../../src/traffic/histogram.js';
import { serialiseColumns, SampleStore } from '../../src/traffic/engine.js';
import { timeline, windowStats, clientIpPreserved } from '../../src/traffic/stats.js';

describe('LatencyHistogram', () => {
  it('keeps µs resolution in ms with ≤ 0.1% relative error', () => {
    const h = new LatencyHistogram();
    for (let i = 1; i <= 10_000; i++) h.record(i / 100); // 0.01 … 100 ms
    expect(h.count).toBe(10_000);
    for (const [p, exact] of [[50, 50], [90, 90], [99, 99], [99.9, 99.9]] as const) {
      expect(Math.abs(h.percentile(p) - exact) / exact).toBeLessThan(0.001);
    }
    expect(h.min).toBeCloseTo(0.01, 3);
    expect(Math.abs(h.max - 100) / 100).toBeLessThan(0.001);
    const s = h.stats();
    expect(Object.keys(s)).toEqual(expect.arrayContaining(['p50', 'p90', 'p99', 'p999', 'max']));
    const back = LatencyHistogram.decode(h.encode());
    expect(back.count).toBe(10_000);
    expect(back.percentile(99)).toBe(h.percentile(99));
  });

  it('handles long outages and empty input', () => {
    expect(latencyStats([])).toMatchObject({ p50: 0, p99: 0, max: 0, count: 0 });
    const s = latencyStats([0.05, 65_000]);
    expect(Math.abs(s.max - 65_000) / 65_000).toBeLessThan(0.001);
    expect(s.min).toBeCloseTo(0.05, 3);
  });
});

describe('window statistics and timelines on raw samples', () => {
  // 10 attempts, 100 ms apart, starting at epoch 1000: ok except #4 (timeout) and #5 (http-503)
  const store = new SampleStore();
  store.ensure(10);
  for (let i = 0; i < 10; i++) {
    store.latencyMs[i] = i + 1;
    store.sentMs[i] = 0;
    store.outcome[i] = 0;
    store.node[i] = store.nodes.code(i < 5 ? 'cp1' : 'cp2');
    store.clientIp[i] = store.clientIps.code('10.0.0.1');
  }
  store.outcome[4] = store.kindCode('timeout');
  store.outcome[5] = store.kindCode('http-503');
  const cols = store.columns(1000, 100);

  it('window [from, to) by intended send time', () => {
    const all = windowStats(cols);
    expect(all).toMatchObject({ requests: 10, errors: 2, errorsByKind: { timeout: 1, 'http-503': 1 }, clientIps: ['10.0.0.1'] });
    expect(all.nodeCounts).toEqual({ cp1: 4, cp2: 4 });
    expect(all.throughputRps).toBe(8);
    const w = windowStats(cols, 1200, 1500); // attempts 2,3,4
    expect(w.requests).toBe(3);
    expect(w.errorsByKind).toEqual({ timeout: 1 });
    expect(w.latencyMs.max).toBeCloseTo(4, 2);
  });

  it('timeline buckets and JSON round trip give the same numbers', () => {
    const tl = timeline(cols, 500);
    expect(tl.map((b) => [b.tMs, b.ok, b.failed])).toEqual([
      [0, 4, 1],
      [500, 4, 1],
    ]);
    expect(tl[0].nodes).toEqual({ cp1: 4 });
    const json = JSON.parse(JSON.stringify(serialiseColumns(cols)));
    expect(timeline(json, 500)).toEqual(tl);
    expect(windowStats(json)).toEqual(windowStats(cols));
  });

  it('client IP preserved only when every reported IP is the client’s own', () => {
    expect(clientIpPreserved(['10.0.0.1'], ['10.0.0.1'])).toBe(true);
    expect(clientIpPreserved(['10.0.0.1', '10.1.0.5'], ['10.0.0.1'])).toBe(false);
    expect(clientIpPreserved([], ['10.0.0.1'])).toBeNull();
  });
});
