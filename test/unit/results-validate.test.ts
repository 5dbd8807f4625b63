import { describe, expect, it } from 'vitest';
import { validateResults } from '../../src/results/validate.js';
import type { Results } from '../../src/results/types.js';

const ok: Results = {
  lab: 'smb',
  topology: { name: 'smb', controlPlanes: 3, workers: 2 },
  provider: { name: 'sim', emulated: true, components: { frr: '8.4.4', haproxy: '2.6.12', etcd: '3.4.23' } },
  startedAt: '2026-11-24T16:00:00.000Z',
  bringUpMs: 4200,
  durationMs: 90000,
  runs: [
    {
      strategy: 'talos-vip+metallb-l2',
      target: 'api',
      drill: 'crash',
      victim: 'cp1',
      repeat: 0,
      outageMs: 11234,
      expectedOutageMs: { min: 10000, max: 13500 },
      withinBand: true,
      errors: 1123,
      resets: 0,
      requests: 4000,
      latencyMs: { p50: 1.2, p90: 2, p99: 5.1, p999: 9, max: 11000 },
      throughputRps: 180,
      nodeShare: { cp1: 0.4, cp2: 0.6 },
      clientIpPreserved: null,
      supported: true,
      // the run's fidelity notes (docs/fidelity.md#<id>): an added field the schema allows
      fidelity: [{ id: 'talos-vip-etcd-version', text: 'the lab runs etcd 3.4 where Talos ships 3.6; the lease rules are the same: no effect' }],
    },
    { strategy: 'kube-vip-bgp+metallb-bgp', target: 'api', drill: 'crash', outageMs: null, errors: 0, requests: 0, latencyMs: { p50: 0, p99: 0 }, throughputRps: 0, supported: false, reason: 'pitfall 3' },
  ],
};

describe('results.json contract (schemas/results.schema.json)', () => {
  it('a complete result with the toolkit’s added fields validates', () => {
    expect(validateResults(ok)).toEqual({ valid: true, errors: [] });
  });
  it('a renamed or missing required field is reported with its JSON path', () => {
    const bad = structuredClone(ok) as unknown as { runs: Record<string, unknown>[]; provider: Record<string, unknown> };
    delete bad.runs[0]!.outageMs;
    bad.runs[1]!.target = 'apiserver';
    bad.provider.name = 'vmware';
    const r = validateResults(bad);
    expect(r.valid).toBe(false);
    expect(r.errors).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^\/runs\/0: must have required property 'outageMs'/),
        expect.stringMatching(/^\/runs\/1\/target: must be equal to one of the allowed values/),
        expect.stringMatching(/^\/provider\/name: /),
      ]),
    );
  });
  it('startedAt must be a date-time', () => {
    expect(validateResults({ ...ok, startedAt: 'yesterday' }).errors).toEqual([expect.stringMatching(/^\/startedAt: must match format "date-time"/)]);
  });
});
