import { describe, expect, it } from 'vitest';
import { loadLab } from '../../src/model/load.js';
import { selectLab, splitList } from '../../src/model/select.js';
import { UsageError } from '../../src/util/errors.js';
import { labSchema } from '../../src/model/schema.js';
import { describeIssue } from '../../src/model/load.js';

describe('CLI selection of a lab', () => {
  const smb = loadLab('smb');

  it('splits comma lists', () => {
    expect(splitList('a, b,,c')).toEqual(['a', 'b', 'c']);
    expect(splitList(undefined)).toBeUndefined();
    expect(splitList(' ')).toBeUndefined();
  });

  it('filters strategies and drills, keeping the lab order', () => {
    const s = selectLab(smb, { strategies: ['haproxy+metallb-bgp', 'talos-vip+metallb-l2'], drills: ['crash', 'baseline'] });
    expect(s.strategies.map((x) => x.id)).toEqual(['talos-vip+metallb-l2', 'haproxy+metallb-bgp']);
    expect(s.drills.map((d) => d.kind)).toEqual(['baseline', 'crash']);
    expect(s.repeats).toBe(smb.repeats);
  });

  it('unknown names are a usage error that lists the valid ones', () => {
    let e: unknown;
    try {
      selectLab(smb, { strategies: ['kube-vip-bgp+metallb-bgp'], drills: ['explode'] });
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(UsageError);
    expect((e as UsageError).exitCode).toBe(2);
    const msg = (e as Error).message;
    expect(msg).toContain('--strategies: unknown for lab smb: kube-vip-bgp+metallb-bgp; valid: talos-vip+metallb-l2, kube-vip-arp+kube-vip-arp, kube-vip-arp+metallb-l2, haproxy+metallb-bgp');
    expect(msg).toContain('--drills: unknown for lab smb: explode; valid: baseline, graceful-shutdown, crash');
  });

  it('--quick: 1 repeat, the quick drills, capped windows; --repeat still wins', () => {
    const q = selectLab(smb, { quick: true });
    expect(q.repeats).toBe(1);
    expect(q.drills.map((d) => d.kind)).toEqual(['baseline', 'graceful-shutdown', 'crash']);
    for (const d of q.drills) {
      expect(d.preMs).toBeLessThanOrEqual(smb.quick!.preMs);
      expect(d.settleMs).toBeLessThanOrEqual(smb.quick!.settleMs);
      expect(d.observeMs).toBeLessThanOrEqual(smb.quick!.observeMs);
    }
    expect(selectLab(smb, { quick: true, repeat: 2 }).repeats).toBe(2);
    // an explicit --drills beats the quick list
    expect(selectLab(smb, { quick: true, drills: ['partition'] }).drills.map((d) => d.kind)).toEqual(['partition']);
    // the original is untouched
    expect(smb.drills.length).toBeGreaterThan(3);
    expect(() => selectLab(smb, { repeat: 0 })).toThrow(/--repeat/);
  });
});

describe('raw schema', () => {
  it('accepts the short forms (strategy and drill as plain strings) and fills defaults', () => {
    const r = labSchema.parse({ topology: 'smb', strategies: ['talos-vip+metallb-l2'], drills: ['crash'] });
    expect(r.strategies[0]).toEqual({ id: 'talos-vip+metallb-l2', recommended: false, options: {} });
    expect(r.drills[0]).toEqual({ kind: 'crash' });
    expect(r.traffic.probeIntervalMs).toBe(10);
    expect(r.repeats).toBe(3);
  });

  it('strict objects name the unknown key and the allowed ones', () => {
    const data = { topology: 'smb', strategies: [{ id: 'talos-vip+metallb-l2', optons: {} }], drills: ['crash'] };
    const r = labSchema.safeParse(data);
    expect(r.success).toBe(false);
    const described = r.success ? [] : r.error.issues.flatMap((i) => describeIssue(i, data));
    expect(described).toContainEqual({ path: ['strategies', 0, 'optons'], message: "unknown key 'optons'; allowed keys: id, label, recommended, options" });
  });
});
