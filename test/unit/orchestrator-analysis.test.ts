import { describe, expect, it } from 'vitest';
import { bucketTimeline, phaseBreakdown, servedShare } from '../../src/orchestrator/analysis.js';
import { newLabId, seeded } from '../../src/orchestrator/ids.js';
import type { AgentEvent } from '../../src/emulation/agent/types.js';

describe('bucketTimeline', () => {
  it('puts probe samples in buckets relative to the injection, failures counted apart', () => {
    const t0 = 1_000_000;
    const samples = [
      { t: t0 - 150, ok: true, latencyMs: 2 },
      { t: t0 - 50, ok: true, latencyMs: 4 },
      { t: t0 + 10, ok: false, latencyMs: 0 },
      { t: t0 + 20, ok: false, latencyMs: 0 },
      { t: t0 + 120, ok: true, latencyMs: 30 },
    ];
    const tl = bucketTimeline(samples, t0, 100);
    expect(tl.map((b) => b.tMs)).toEqual([-200, -100, 0, 100]);
    expect(tl.find((b) => b.tMs === 0)).toEqual({ tMs: 0, ok: 0, failed: 2, p99Ms: null });
    expect(tl.find((b) => b.tMs === 100)!.p99Ms).toBe(30);
  });
});

describe('servedShare', () => {
  it('counts every answered request of the window, the probe\'s and the load\'s together', () => {
    // a round robin dealing turns to both streams: the probe took cp1 and cp2 every time, the load cp3
    const probe = Array.from({ length: 200 }, (_, i) => ({ t: i * 10, ok: true, latencyMs: 1, node: i % 2 ? 'cp1' : 'cp2' }));
    expect(servedShare(probe, { cp3: 100 })).toEqual({ cp1: 0.3333, cp2: 0.3333, cp3: 0.3333 });
  });
  it('leaves out failed probes and replies that named no node; nothing answered gives no share', () => {
    const probe = [
      { t: 0, ok: false, latencyMs: 200, kind: 'timeout', node: 'w1' },
      { t: 10, ok: true, latencyMs: 1 },
      { t: 20, ok: true, latencyMs: 1, node: 'w2' },
    ];
    expect(servedShare(probe, { w2: 1 })).toEqual({ w2: 1 });
    expect(servedShare(probe.slice(0, 2))).toBeUndefined();
  });
});

describe('phaseBreakdown', () => {
  const inject = 5000;
  const ev = (t: number, host: string, component: string, type: string, extra = {}): AgentEvent => ({ t, host, component, type, ...extra });
  it('detect = first mechanism event on a survivor; announce = first GARP for the address on the wire', () => {
    const events = [
      ev(4000, 'cp2', 'talos-vip', 'campaign'), // before the injection: ignored
      ev(5100, 'cp1', 'talos-vip', 'released'), // the victim itself: not a detection
      ev(5200, 'cp2', 'talos-vip', 'acquired'),
      ev(5210, 'sw', 'wire', 'garp', { ip: '10.0.0.99' }), // another address
      ev(5230, 'sw', 'wire', 'garp', { ip: '10.0.0.50' }),
    ];
    expect(phaseBreakdown(events, inject, '10.0.0.50', 'cp1', 5400)).toEqual({ detectMs: 200, announceMs: 230, convergeMs: 400 });
  });
  it('a BGP route change for the /32 counts as the announcement; nothing seen → null', () => {
    const events = [ev(5900, 'rtr', 'router', 'route', { prefix: '10.0.1.10/32' })];
    expect(phaseBreakdown(events, inject, '10.0.1.10', 'w1', null)).toEqual({ detectMs: null, announceMs: 900, convergeMs: null });
  });
});

describe('ids and randomness', () => {
  it('lab ids carry the lab name and a prefix that names every resource', () => {
    const { id, prefix } = newLabId('smb');
    expect(id).toMatch(/^smb-[0-9a-f]{8}$/);
    expect(prefix).toBe(`tlab-${id}`);
  });
  it('the seeded generator is reproducible and in [0,1)', () => {
    const a = seeded(7), b = seeded(7);
    const xs = Array.from({ length: 50 }, () => a());
    expect(xs).toEqual(Array.from({ length: 50 }, () => b()));
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(new Set(xs).size).toBe(50);
  });
});
