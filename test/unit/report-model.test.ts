/**
 * The report model: grouping, median and min–max over repeats, band flags, spread (active-passive
 * vs active-active), client IP, on the synthetic but schema-valid fixtures in
 * test/fixtures/results/ (minecraft-like and smb-like).
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../../src/model/load.js';
import type { Results, RunRecord } from '../../src/results/types.js';
import { validateResults } from '../../src/results/validate.js';
import { buildGroup, buildModel, isOutside, median, shareMode, spread, type Group } from '../../src/report/model.js';

const fixture = (name: string): Results => JSON.parse(readFileSync(join(REPO_ROOT, 'test/fixtures/results', `${name}.results.json`), 'utf8')) as Results;
const smb = fixture('smb');
const minecraft = fixture('minecraft');

const find = (gs: Group[], target: string, strategy: string, drill: string, service?: string) => {
  const g = gs.find((x) => x.target === target && x.strategy === strategy && x.drill === drill && (service === undefined || x.service === service));
  if (!g) throw new Error(`no group ${target} ${strategy} ${drill} ${service ?? ''}`);
  return g;
};

function run(over: Partial<RunRecord>): RunRecord {
  return { strategy: 's+t', target: 'api', drill: 'crash', outageMs: 0, errors: 0, requests: 100, latencyMs: { p50: 1, p99: 2 }, throughputRps: 10, supported: true, ...over };
}

describe('fixtures', () => {
  it('both fixtures validate against results.schema.json', () => {
    expect(validateResults(smb)).toEqual({ valid: true, errors: [] });
    expect(validateResults(minecraft)).toEqual({ valid: true, errors: [] });
  });
  it('cover what the report must show: repeats, unsupported pairs, both targets, both ETPs', () => {
    for (const r of [smb, minecraft]) {
      expect(r.runs.some((x) => x.supported === false && x.reason)).toBe(true);
      expect(new Set(r.runs.map((x) => x.target))).toEqual(new Set(['api', 'service']));
      expect(new Set(r.runs.filter((x) => x.service).map((x) => x.externalTrafficPolicy))).toEqual(new Set(['Cluster', 'Local']));
      expect(Math.max(...r.runs.map((x) => x.repeat ?? 0))).toBe(2);
    }
  });
});

describe('median and min–max', () => {
  it('median of odd and even counts, min–max, n; non-numbers ignored', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(spread([5, null, 1, undefined, 9, Number.NaN])).toEqual({ median: 5, min: 1, max: 9, n: 3 });
    expect(spread([null, undefined])).toBeNull();
  });

  it('every group’s outage = median and min–max of its repeats in results.json', () => {
    const m = buildModel(smb);
    const measured = m.groups.filter((g) => g.drill !== 'baseline');
    expect(measured.length).toBeGreaterThan(20);
    for (const g of measured) {
      const raw = smb.runs
        .filter((r) => r.supported !== false && r.target === g.target && r.strategy === g.strategy && r.drill === g.drill && (g.target === 'api' || r.service === g.service))
        .map((r) => r.outageMs as number)
        .sort((a, b) => a - b);
      expect(raw.length, g.id).toBe(3);
      expect(g.outage, g.id).toEqual({ median: raw[1], min: raw[0], max: raw[2], n: 3 });
    }
  });

  it('Talos VIP crash on smb: 52.31 s median of 52.31 / 47.92 / 58.14 s', () => {
    const g = find(buildModel(smb).groups, 'api', 'talos-vip+metallb-l2', 'crash');
    expect(g.outage).toEqual({ median: 52310, min: 47920, max: 58140, n: 3 });
    expect(g.victims).toEqual(['cp1']);
    // the charted repeat is the one with the median outage
    expect(g.representative.outageMs).toBe(52310);
  });

  it('baseline Services are kept apart per Service (ETP Cluster vs Local), not pooled as repeats', () => {
    const m = buildModel(smb);
    const base = m.groups.filter((g) => g.target === 'service' && g.drill === 'baseline' && g.strategy === 'talos-vip+metallb-l2');
    expect(base.map((g) => `${g.service}/${g.externalTrafficPolicy}`)).toEqual(['web/Cluster', 'web-local/Local']);
    expect(base.every((g) => g.runs.length === 1)).toBe(true);
  });
});

describe('band flags', () => {
  it('counts repeats outside the band and whether the median is outside', () => {
    const m = buildModel(smb);
    const kv = find(m.groups, 'api', 'kube-vip-arp+kube-vip-arp', 'crash');
    expect(kv.band).toEqual({ min: 3000, max: 7000 });
    expect([kv.judged, kv.outside, kv.medianOutside]).toEqual([3, 1, false]); // 7.84 s > 7 s in one repeat
    const talos = find(m.groups, 'api', 'talos-vip+metallb-l2', 'crash');
    expect([talos.judged, talos.outside, talos.medianOutside]).toEqual([3, 0, false]);
    const mc = find(buildModel(minecraft).groups, 'api', 'talos-vip+metallb-l2', 'vip-loss-internal');
    expect([mc.outside, mc.judged]).toEqual([1, 3]);
  });

  it('a median outside is flagged; no band or no outage is not judged', () => {
    const band = { min: 1000, max: 2000 };
    const g = buildGroup([run({ outageMs: 2500, expectedOutageMs: band, repeat: 0 }), run({ outageMs: 900, expectedOutageMs: band, repeat: 1 }), run({ outageMs: 3000, expectedOutageMs: band, repeat: 2 })], 3);
    expect([g.outside, g.judged, g.medianOutside]).toEqual([3, 3, true]);
    expect(isOutside(1000, band)).toBe(false);
    expect(isOutside(2000, band)).toBe(false);
    expect(isOutside(2001, band)).toBe(true);
    expect(isOutside(null, band)).toBeNull();
    expect(isOutside(5, null)).toBeNull();
    const nb = buildGroup([run({ outageMs: 10, expectedOutageMs: null })], 3);
    expect([nb.judged, nb.outside, nb.medianOutside]).toEqual([0, 0, null]);
  });
});

describe('spread over nodes and client IP', () => {
  it('active-passive vs active-active vs single node, from the measured node share', () => {
    const m = buildModel(smb);
    expect(find(m.groups, 'api', 'talos-vip+metallb-l2', 'baseline').shareMode).toBe('active-passive');
    expect(find(m.groups, 'api', 'kube-vip-arp+kube-vip-arp', 'baseline').shareMode).toBe('active-active');
    expect(find(m.groups, 'api', 'haproxy+metallb-bgp', 'baseline').shareMode).toBe('active-active');
    expect(find(m.groups, 'service', 'talos-vip+metallb-l2', 'baseline', 'web-local').shareMode).toBe('active-passive');
    expect(find(m.groups, 'service', 'haproxy+metallb-bgp', 'baseline', 'web-local').shareMode).toBe('active-active');
    expect(find(buildModel(minecraft).groups, 'api', 'talos-vip+metallb-l2', 'baseline').shareMode).toBe('single-node');
    expect(shareMode([], 3)).toBe('unknown');
    expect(shareMode([['a', 0.97], ['b', 0.03]], 3)).toBe('active-passive');
    expect(shareMode([['a', 0.6], ['b', 0.4]], 3)).toBe('active-active');
  });

  it('node share is the per-node median over repeats, largest first', () => {
    const g = buildGroup(
      [run({ repeat: 0, nodeShare: { cp1: 0.5, cp2: 0.5 } }), run({ repeat: 1, nodeShare: { cp2: 1 } }), run({ repeat: 2, nodeShare: { cp1: 0.2, cp2: 0.8 } })],
      3,
    );
    expect(g.nodeShare).toEqual([['cp2', 0.8], ['cp1', 0.2]]);
  });

  it('client IP preserved follows ETP; repeats that disagree are "mixed"', () => {
    const m = buildModel(smb);
    expect(find(m.groups, 'service', 'talos-vip+metallb-l2', 'baseline', 'web-local').clientIpPreserved).toBe(true);
    expect(find(m.groups, 'service', 'talos-vip+metallb-l2', 'baseline', 'web').clientIpPreserved).toBe(false);
    expect(find(m.groups, 'api', 'talos-vip+metallb-l2', 'baseline').clientIpPreserved).toBeNull();
    const mixed = buildGroup([run({ target: 'service', repeat: 0, clientIpPreserved: true }), run({ target: 'service', repeat: 1, clientIpPreserved: false })], 3);
    expect(mixed.clientIpPreserved).toBe('mixed');
  });
});

describe('strategies and unsupported pairs', () => {
  it('unsupported strategies carry their reason and are not grouped as measurements', () => {
    const m = buildModel(smb);
    expect(m.unsupported).toEqual([{ strategy: 'kube-vip-bgp+metallb-bgp', reason: expect.stringContaining('TCP port 179'), runs: 11 }]);
    expect(m.groups.some((g) => g.strategy === 'kube-vip-bgp+metallb-bgp')).toBe(false);
    expect(m.strategies.map((s) => s.id)).toEqual(['talos-vip+metallb-l2', 'kube-vip-arp+kube-vip-arp', 'kube-vip-arp+metallb-l2', 'haproxy+metallb-bgp', 'kube-vip-bgp+metallb-bgp']);
    expect(m.drills[0]).toBe('baseline');
  });

  it('without results.strategies the reason comes from the unsupported runs', () => {
    const { strategies: _s, network: _n, ...bare } = minecraft;
    const m = buildModel(bare as Results);
    expect(m.unsupported).toEqual([{ strategy: 'talos-vip+metallb-bgp', reason: expect.stringContaining('needs a BGP router'), runs: 5 }]);
    // network inferred: no BGP strategy ran
    expect(m.network).toEqual({ l2: true, bgp: false, inferred: true });
  });
});
