import { describe, expect, it } from 'vitest';
import { drill, drills } from '../../src/drills/index.js';
import { pickVictim } from '../../src/drills/victims.js';
import type { DrillContext } from '../../src/drills/types.js';
import type { Strategy, Role } from '../../src/strategies/types.js';
import type { Target } from '../../src/model/types.js';
import { seeded } from '../../src/orchestrator/ids.js';
import { DRILL_KINDS } from '../../src/model/catalog.js';

const mech = (id: string, l2: boolean, bgp: boolean): Role =>
  ({ id, kind: 'svc', family: id, title: id, summary: '', sources: [], traits: { l2, bgp, spread: 'active-passive' }, holders: 'address', render: () => ({}), expectedOutage: () => null }) as unknown as Role;

const strategy = (cp: [string, boolean, boolean], svc: [string, boolean, boolean], useClass?: boolean): Strategy => ({
  ref: { id: `${cp[0]}+${svc[0]}`, cp: cp[0] as never, svc: svc[0] as never, options: useClass === undefined ? {} : { useLoadBalancerClass: useClass } },
  cp: mech(...cp) as Strategy['cp'],
  svc: mech(...svc) as Strategy['svc'],
  // what composeStrategy finds for kube-vip (API) + MetalLB without loadBalancerClass
  conflicts: useClass === false ? ['pitfall 2: both claim class-less Services'] : [],
});

const talosL2 = strategy(['talos-vip', true, false], ['metallb-l2', true, false]);
const haproxyBgp = strategy(['haproxy', false, false], ['metallb-bgp', false, true]);
const kvMisconfigured = strategy(['kube-vip-arp', true, false], ['metallb-l2', true, false], false);

describe('drill registry', () => {
  it('has exactly one drill per kind the model accepts', () => {
    expect([...drills.keys()].sort()).toEqual([...DRILL_KINDS].sort());
  });
  it('an unknown kind lists the valid ones', () => {
    expect(() => drill('meteor' as never)).toThrow(/valid: baseline, graceful-shutdown/);
  });
});

describe('applicability', () => {
  it('ECMP churn only where the service is announced over BGP', () => {
    expect(drill('node-leave').applicable(haproxyBgp, 'service')).toBeNull();
    expect(drill('node-leave').applicable(talosL2, 'service')).toMatch(/does not announce over BGP/);
    expect(drill('node-join').applicable(haproxyBgp, 'api')).toMatch(/service address/);
  });
  it('sticky ARP only where an address moves over L2', () => {
    expect(drill('garp-ignored').applicable(talosL2, 'api')).toBeNull();
    expect(drill('garp-ignored').applicable(haproxyBgp, 'service')).toMatch(/no GARP/);
  });
  it('KubePrism drill only for the API; class conflict only for the misconfigured two-controller case', () => {
    expect(drill('vip-loss-internal').applicable(talosL2, 'service')).toMatch(/API traffic only/);
    expect(drill('class-conflict').applicable(kvMisconfigured, 'service')).toBeNull();
    expect(drill('class-conflict').applicable(talosL2, 'service')).toMatch(/do not both claim class-less Services/);
    expect(drill('class-conflict').applicable(strategy(['kube-vip-arp', true, false], ['metallb-l2', true, false], true), 'service')).toMatch(/spec.loadBalancerClass/);
  });
});

describe('victims', () => {
  const topology = {
    nodes: [
      { name: 'cp1', role: 'controlplane' },
      { name: 'cp2', role: 'controlplane' },
      { name: 'cp3', role: 'controlplane' },
      { name: 'w1', role: 'worker' },
      { name: 'w2', role: 'worker' },
    ],
  };
  const ctx = (holders: string[], victim: DrillContext['spec']['victim'], target: Target = 'api', seed = 1): DrillContext =>
    ({
      lab: { lab: { topology }, holders: async () => holders } as never,
      strategy: talosL2,
      spec: { kind: 'crash', target, victim, preMs: 0, holdMs: 0, settleMs: 0, observeMs: 0 },
      target,
      random: seeded(seed),
    }) as DrillContext;

  it('holder = the node observed holding the address', async () => {
    expect(await pickVictim(ctx(['cp2'], 'holder'))).toBe('cp2');
  });
  it('holder of a single-holder address: waits while two nodes hold it (a thawed old leader), then picks the one left', async () => {
    const seen = [['cp1', 'cp3'], ['cp1', 'cp3'], ['cp1']];
    let calls = 0;
    const c = ctx([], 'holder');
    c.lab = { ...c.lab, holders: async () => seen[Math.min(calls++, seen.length - 1)]! } as never;
    expect(await pickVictim(c)).toBe('cp1');
    expect(calls).toBe(3);
  });
  it('no observed holder (external LB): a control plane for the API, a worker for services', async () => {
    expect(await pickVictim(ctx([], 'holder', 'api'))).toMatch(/^cp[123]$/);
    expect(await pickVictim(ctx([], 'holder', 'service'))).toMatch(/^w[12]$/);
  });
  it('random choices are reproducible per seed and stay in their role', async () => {
    const a = await Promise.all([1, 2, 3, 4, 5, 6].map((s) => pickVictim(ctx([], 'random-controlplane', 'api', s))));
    const b = await Promise.all([1, 2, 3, 4, 5, 6].map((s) => pickVictim(ctx([], 'random-controlplane', 'api', s))));
    expect(a).toEqual(b);
    expect(a.every((v) => /^cp[123]$/.test(v!))).toBe(true);
    expect(await pickVictim(ctx([], 'worker'))).toMatch(/^w[12]$/);
    expect(await pickVictim(ctx([], { node: 'w2' }))).toBe('w2');
    expect(await pickVictim(ctx(['cp1'], 'none'))).toBeNull();
  });
});
