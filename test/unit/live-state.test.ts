/**
 * The live view's reducer over a recorded event stream: `npm run lab -- smb --quick --strategies
 * kube-vip-arp+kube-vip-arp --drills crash` (test/fixtures/live/smb-quick.jsonl: a crash of the
 * API VIP holder cp1, then of the Service holder cp3), checked at several points of the run, plus
 * BGP/ECMP and load-balancer cases built here, purity and the memory bounds of a long run.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../../src/model/load.js';
import type { RunEvent } from '../../src/orchestrator/events.js';
import { RUN_FLAG_TEXT, type RunRecord } from '../../src/results/types.js';
import { BUCKET_MS, WINDOW_MS, initialState, reduce, reduceAll, type LiveState } from '../../src/live/state.js';

const FIXTURE = join(REPO_ROOT, 'test/fixtures/live/smb-quick.jsonl');
const events: RunEvent[] = readFileSync(FIXTURE, 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((l) => JSON.parse(l) as RunEvent);

type EventOf<T extends RunEvent['type']> = RunEvent & { type: T };
const find = <T extends RunEvent['type']>(type: T, pred: (e: EventOf<T>) => boolean = () => true) => {
  const i = events.findIndex((e) => e.type === type && pred(e as EventOf<T>));
  expect(i, `fixture has a ${type} event`).toBeGreaterThanOrEqual(0);
  return { i, e: events[i] as EventOf<T> };
};
/** state after the events before index i (i excluded) */
const upTo = (i: number) => reduceAll(events.slice(0, i));
const holdersOf = (s: LiveState, key: string) => s.addresses.find((a) => a.key === key)?.holders;
const strip = (s: LiveState, key: string) => s.strips.find((x) => x.key === key)!;

const injectApi = find('inject', (e) => e.target === 'api');
const injectSvc = find('inject', (e) => e.target === 'service');
const endApi = find('drill-end', (e) => e.target === 'api');
const endSvc = find('drill-end', (e) => e.target === 'service');
const unapply = find('strategy', (e) => e.phase === 'unapply');

describe('live state over the smb --quick fixture', () => {
  it('run-start: lab, emulated provider, the topology view and the plan', () => {
    const s = upTo(1);
    expect(s.status).toBe('running');
    expect(s.lab).toBe('smb');
    expect(s.provider).toBe('sim');
    expect(s.emulated).toBe(true);
    const t = s.topology!;
    expect(t.racks).toHaveLength(1);
    expect(t.racks[0]!.segment).toBe('lan');
    expect(t.racks[0]!.nodes.map((n) => `${n.name}:${n.role}`)).toEqual(['cp1:controlplane', 'cp2:controlplane', 'cp3:controlplane', 'w1:worker', 'w2:worker']);
    expect(t.racks[0]!.routers).toEqual(['rtr']);
    expect(t.routers.map((r) => [r.name, r.role, r.bgp])).toEqual([['rtr', 'single', true]]);
    expect(t.clients.map((c) => c.name)).toEqual(['client1']);
    expect(t.lb).toEqual({ name: 'lb', ip: '10.32.0.4', segment: 'lan' });
    // every interface is a host → segment link: 5 nodes + router (2) + client + lb
    expect(t.links).toHaveLength(9);
    expect(t.links).toContainEqual({ host: 'rtr', segment: 'uplink', ip: '10.32.100.1' });
    expect(s.addresses.map((a) => `${a.key}=${a.ip}`)).toEqual(['api=10.32.0.10', 'svc:web=10.32.0.192', 'svc:web-local=10.32.0.193']);
    expect(s.strips.map((x) => x.key)).toEqual(['api', 'svc:web', 'svc:web-local']);
    const start = events[0] as Extract<RunEvent, { type: 'run-start' }>;
    expect(s.progress).toEqual({ done: 0, total: 2, leftMs: start.estimateMs, t: start.t });
  });

  it('before the crash: cp1 holds the API VIP, cp3 the Services, traffic is clean', () => {
    const s = upTo(injectApi.i);
    expect(s.strategy).toBe('kube-vip-arp+kube-vip-arp');
    expect(s.strategies[0]!.phase).toBe('ready');
    expect(holdersOf(s, 'api')).toEqual(['cp1']);
    expect(holdersOf(s, 'svc:web')).toEqual(['cp3']);
    expect(holdersOf(s, 'svc:web-local')).toEqual(['cp3']);
    expect(s.addresses.find((a) => a.key === 'api')!.mode).toBe('l2');
    expect(s.current).toMatchObject({ strategy: 'kube-vip-arp+kube-vip-arp', target: 'api', drill: 'crash', victim: 'cp1', phase: 'pre', address: '10.32.0.10' });
    expect(s.current!.band).toMatchObject({ min: 4000, max: 10400 });
    const api = strip(s, 'api');
    expect(api.buckets.length).toBeGreaterThan(5);
    expect(api.buckets.every((b) => b.fail === 0 && b.ok > 0)).toBe(true);
    expect(api.markers).toEqual([]);
  });

  it('during the failover: the VIP moves from cp1 to cp2, the strip chart shows the failure and the markers', () => {
    const injectT = injectApi.e.t;
    const moved = find('holders', (e) => e.target === 'api' && e.holders.includes('cp2'));
    const before = upTo(moved.i);
    // the crashed holder is gone at once; nobody holds the VIP until cp2's `acquired`
    const midOutage = upTo(find('mechanism', (e) => e.event.type === 'leader' && e.event.host === 'cp2' && e.t > injectT).i);
    expect(holdersOf(midOutage, 'api')).toEqual([]);
    expect(midOutage.current!.phase).toBe('injected');
    expect(midOutage.current!.convergeAt).toBeNull();
    expect(holdersOf(before, 'api')).toEqual(['cp2']); // from cp2's `acquired`, before the observer saw it
    const s = upTo(moved.i + 1);
    expect(holdersOf(s, 'api')).toEqual(['cp2']);
    expect(s.addresses.find((a) => a.key === 'api')!.since).toBeGreaterThan(injectT);

    const api = strip(s, 'api');
    const failing = api.buckets.filter((b) => b.t >= injectT - BUCKET_MS && b.fail > 0);
    // ~4.5 s of failed probes at 10 ms: about 45 buckets, the middle ones with no success at all
    expect(failing.length).toBeGreaterThanOrEqual(40);
    expect(failing.filter((b) => b.ok === 0).length).toBeGreaterThanOrEqual(40);
    expect(api.buckets.some((b) => b.t > injectT + 4600 && b.ok > 0 && b.fail === 0)).toBe(true);

    const at = (kind: string) => api.markers.find((m) => m.kind === kind)?.t;
    expect(at('inject')).toBe(injectT);
    expect(at('detect')).toBeCloseTo(injectT + 4470.3, 1); // cp2's kube-vip took the lease
    expect(at('announce')).toBeCloseTo(injectT + 4500.2, 1); // the GARP on the wire
    // the first success after the last failure (failed probes complete 200 ms late: by send time)
    expect(at('converge')).toBe(injectT + 4500);
    expect(s.current!.firstFailAt).toBe(injectT - 10);
  });

  it('drill-end: a results row, the measured phases, progress and time left', () => {
    const prog = find('progress', (e) => e.done === 1);
    expect(prog.i).toBeGreaterThan(endApi.i);
    const s = upTo(prog.i + 1);
    expect(s.results).toHaveLength(1);
    expect(s.results[0]).toMatchObject({
      strategy: 'kube-vip-arp+kube-vip-arp',
      target: 'api',
      drill: 'crash',
      victim: 'cp1',
      outageMs: 4510,
      band: { min: 4000, max: 10400 },
      withinBand: true,
      errors: 1319,
      resets: 0,
      supported: true,
    });
    expect(s.current!.phase).toBe('done');
    expect(s.current!.outageMs).toBe(4510);
    expect(s.progress).toEqual({ done: 1, total: 2, leftMs: prog.e.leftMs, t: prog.e.t });
    expect(s.progress!.leftMs).toBeGreaterThan(0);
  });

  it('the Service crash: web moves from cp3 to cp2, its own strip fails, the API strip keeps its minute', () => {
    const s = upTo(endSvc.i + 1);
    expect(holdersOf(s, 'svc:web')).toEqual(['cp2']);
    expect(holdersOf(s, 'svc:web-local')).toEqual(['cp2']); // no observer for it: from acquired + the crash
    const web = strip(s, 'svc:web');
    expect(web.buckets.some((b) => b.t >= injectSvc.e.t && b.ok === 0 && b.fail > 0)).toBe(true);
    expect(web.markers.map((m) => m.kind)).toEqual(['inject', 'detect', 'announce', 'converge', 'restore']);
    expect(web.markers.find((m) => m.kind === 'converge')!.t).toBe(injectSvc.e.t + 4340);
    expect(strip(s, 'api').buckets.length).toBeGreaterThan(50);
    expect(strip(s, 'svc:web-local').buckets).toEqual([]);
    expect(s.results.map((r) => [r.target, r.service ?? null, r.outageMs, r.resets])).toEqual([
      ['api', null, 4510, 0],
      ['service', 'web', 4340, 4],
    ]);
  });

  it('unapply, report and run-end: addresses released, report.html known, status ok, nothing left to wait', () => {
    const afterUnapply = upTo(unapply.i + 6);
    expect(afterUnapply.addresses.every((a) => a.holders.length === 0)).toBe(true);
    const s = reduceAll(events);
    expect(s.status).toBe('ok');
    expect(s.endedAt).toBe(events.at(-1)!.t);
    expect(s.report!.html).toMatch(/\/report\.html$/);
    expect(s.report!.files).toHaveLength(4);
    expect(s.progress).toMatchObject({ done: 2, total: 2, leftMs: 0 });
    expect(s.feed.length).toBeGreaterThan(10);
    expect(s.feed.at(-1)!.text).toContain('tear down');
  });

  it('is pure: a frozen state is never written to, and the same events give the same state', () => {
    let s = initialState();
    for (const e of events) {
      const next = reduce(deepFreeze(s), e);
      expect(next).not.toBe(s);
      s = next;
    }
    expect(JSON.parse(JSON.stringify(s))).toEqual(reduceAll(events));
  });
});

describe('live state: BGP sessions, ECMP next hops, the load-balancer box', () => {
  const start = events[0] as Extract<RunEvent, { type: 'run-start' }>;
  const S = 'haproxy+metallb-bgp';
  const T = start.t + 100_000;
  const mech = (t: number, host: string, type: string, data: Record<string, unknown>): RunEvent => ({ type: 'mechanism', t, strategy: S, event: { t, host, component: 'metallb', type, ...data } });
  const base = reduceAll([
    { ...start, strategies: [{ id: S, label: S, recommended: false }] },
    { type: 'strategy', t: T, strategy: S, phase: 'apply' },
    { type: 'bgp', t: T + 10, router: 'rtr', peers: [{ peer: '10.32.0.14', state: 'Established' }, { peer: '10.32.0.15', state: 'Established' }, { peer: '10.32.0.11', state: 'Active' }] },
    mech(T + 20, 'w1', 'bgp-announce', { prefixes: ['10.32.0.192/32', '10.32.0.193/32'] }),
    mech(T + 21, 'w2', 'bgp-announce', { prefixes: ['10.32.0.192/32'] }),
    { type: 'strategy', t: T + 30, strategy: S, phase: 'ready' },
  ]);

  it('sessions are named by host; announcers become holders and the router’s ECMP next hops', () => {
    expect(base.bgp.rtr).toEqual([
      { peer: '10.32.0.11', host: 'cp1', state: 'Active' },
      { peer: '10.32.0.14', host: 'w1', state: 'Established' },
      { peer: '10.32.0.15', host: 'w2', state: 'Established' },
    ]);
    const web = base.addresses.find((a) => a.key === 'svc:web')!;
    expect(web.mode).toBe('bgp');
    expect(web.holders).toEqual(['w1', 'w2']);
    expect(web.nexthops).toEqual([{ router: 'rtr', via: ['w1', 'w2'] }]);
    expect(base.addresses.find((a) => a.key === 'svc:web-local')!.nexthops).toEqual([{ router: 'rtr', via: ['w1'] }]);
  });

  it('a withdraw, a session going down and a route deleted on the router all show', () => {
    const s = reduceAll(
      [
        mech(T + 1000, 'w1', 'bgp-withdraw', { prefixes: ['10.32.0.192/32'] }),
        { type: 'bgp', t: T + 1100, router: 'rtr', peers: [{ peer: '10.32.0.14', state: 'Idle' }, { peer: '10.32.0.15', state: 'Established' }, { peer: '10.32.0.11', state: 'Active' }] },
      ],
      base,
    );
    expect(s.addresses.find((a) => a.key === 'svc:web')!.nexthops).toEqual([{ router: 'rtr', via: ['w2'] }]);
    expect(s.feed.some((f) => f.kind === 'bgp' && f.text === 'rtr ↔ w1: Established → Idle')).toBe(true);
    const gone = reduce(s, { type: 'mechanism', t: T + 1200, strategy: S, event: { t: T + 1200, host: 'rtr', component: 'router', type: 'route', prefix: '10.32.0.192/32', deleted: true } });
    expect(gone.routes.rtr!['10.32.0.192']).toEqual({ present: false, t: T + 1200 });
    expect(gone.addresses.find((a) => a.key === 'svc:web')!.nexthops).toEqual([{ router: 'rtr', via: [] }]);
  });

  it('a route change on the router after the injection is the announce marker; a late event still counts by its time', () => {
    let s = reduceAll(
      [
        { type: 'drill-start', t: T + 2000, strategy: S, target: 'service', service: 'web', drill: 'crash', repeat: 0, victim: 'w1', address: '10.32.0.192', band: { min: 0, max: 9500, basis: 'hold 9 s' } },
        { type: 'inject', t: T + 3000, strategy: S, target: 'service', drill: 'crash', victim: 'w1' },
        { type: 'mechanism', t: T + 12_100, strategy: S, event: { t: T + 12_100, host: 'rtr', component: 'router', type: 'route', prefix: '10.32.0.192/32', deleted: false } },
      ],
      base,
    );
    expect(holdersOf(s, 'svc:web')).toEqual(['w2']); // the crashed announcer holds nothing
    expect(s.current!.announceAt).toBe(T + 12_100);
    // the survivor's event arrives after the router's, but happened first: it is the detection
    s = reduce(s, mech(T + 12_000, 'w2', 'peer-down', { node: 'w1', state: 'dead' }));
    expect(s.current!.detectAt).toBe(T + 12_000);
    expect(strip(s, 'svc:web').markers.map((m) => m.kind)).toEqual(['inject', 'detect', 'announce']);
    // the victim's own events are not a detection
    s = reduce(s, mech(T + 11_000, 'w1', 'withdraw', { ip: '10.32.0.192' }));
    expect(s.current!.detectAt).toBe(T + 12_000);
  });

  it('the API behind an external load balancer: the address is the LB box’s, held by it', () => {
    const s = reduce(base, { type: 'drill-start', t: T + 5000, strategy: S, target: 'api', drill: 'crash', repeat: 0, victim: 'cp1', address: '10.32.0.4', band: null });
    const api = s.addresses.find((a) => a.key === 'api')!;
    expect(api).toMatchObject({ ip: '10.32.0.4', mode: 'lb', holders: ['lb'] });
    expect(api.nexthops).toEqual([]);
  });
});

describe('live state stays bounded over a long run', () => {
  it('strip charts keep one minute of 100 ms buckets, markers, feed and results rows are capped', () => {
    const start = events[0] as Extract<RunEvent, { type: 'run-start' }>;
    const S = 'kube-vip-arp+kube-vip-arp';
    let s = reduce(initialState(), start);
    let t = start.t;
    // 30 minutes of probing, 100 ms batches of ten 10 ms probes, one drill every 30 s
    for (let i = 0; i < 18_000; i++) {
      if (i % 300 === 0) {
        s = reduce(s, { type: 'drill-start', t, strategy: S, target: 'api', drill: 'crash', repeat: 0, victim: 'cp1', address: '10.32.0.10', band: null });
        s = reduce(s, { type: 'inject', t: t + 50, strategy: S, target: 'api', drill: 'crash', victim: 'cp1' });
        s = reduce(s, { type: 'log', t, message: `drill ${i}` });
      }
      const samples = Array.from({ length: 10 }, (_, k) => ({ t: t + k * 10, ok: (i % 300) > 20, latencyMs: 3 }));
      s = reduce(s, { type: 'probe', t: t + 100, strategy: S, target: 'api', samples });
      t += 100;
    }
    const api = strip(s, 'api');
    expect(api.buckets.length).toBeLessThanOrEqual(WINDOW_MS / BUCKET_MS);
    expect(api.buckets.length).toBeGreaterThan(WINDOW_MS / BUCKET_MS - 5);
    expect(api.buckets.at(-1)!.t - api.buckets[0]!.t).toBeLessThan(WINDOW_MS);
    expect(api.markers.length).toBeLessThanOrEqual(40);
    expect(api.markers.every((m) => m.t >= api.buckets[0]!.t - BUCKET_MS)).toBe(true);
    expect(s.feed.length).toBeLessThanOrEqual(40);
    expect(s.current!.okAfter.length).toBeLessThanOrEqual(50);

    const record = (i: number): RunRecord => ({ strategy: S, target: 'api', drill: 'crash', outageMs: i, errors: 0, requests: 1, latencyMs: { p50: 1, p99: 2 }, throughputRps: 1 });
    for (let i = 0; i < 2100; i++) s = reduce(s, { type: 'drill-end', t: t + i, strategy: S, target: 'api', drill: 'crash', repeat: 0, record: record(i) });
    expect(s.results).toHaveLength(2000);
    expect(s.resultsDropped).toBe(100);
    expect(s.results[0]!.outageMs).toBe(100);
    // the whole state a late browser receives stays small
    expect(JSON.stringify(s).length).toBeLessThan(1_000_000);
  });
});

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

describe('live results rows say what the reports say', () => {
  const S = 'talos-vip+metallb-l2';
  const end = (record: Partial<RunRecord>) =>
    reduce(initialState(), {
      type: 'drill-end',
      t: 1000,
      strategy: S,
      target: 'api',
      drill: record.drill ?? 'crash',
      repeat: 0,
      record: { strategy: S, target: 'api', drill: 'crash', outageMs: 42_000, errors: 0, requests: 100, latencyMs: { p50: 1, p99: 2 }, throughputRps: 1, ...record } as RunRecord,
    });

  it('an outage that had not ended is a lower bound, in the row and in the feed', () => {
    const s = end({ recovered: false, expectedOutageMs: { min: 40_000, max: 65_500 }, withinBand: false });
    expect(s.results[0]).toMatchObject({ outageMs: 42_000, recovered: false, withinBand: false });
    expect(s.feed.at(-1)!.text).toContain('outage > 42.0 s (not recovered)');
    expect(end({ recovered: true }).results[0]!.recovered).toBe(true);
  });

  it("carries the report's flags: host load, a fault on a failing path, what the drill left stuck", () => {
    const s = end({ withinBand: false, outsideReason: 'host-load', cleanBeforeFault: false, healOutage: { outageMs: 2900, bursts: 2, failedProbes: 27, recovered: false }, leftStuck: ['w2: kube-vip hung'] });
    expect(s.results[0]!.flags).toEqual([RUN_FLAG_TEXT.hostLoad, RUN_FLAG_TEXT.uncleanBefore, RUN_FLAG_TEXT.healOpen, 'left stuck (restarted before the next drill): w2: kube-vip hung']);
    expect(end({ withinBand: true }).results[0]!.flags).toEqual([]);
  });

  it('judges a baseline clean at up to 1 % of what the client sent failed, from the record’s own counts', () => {
    // 100 load requests + 100 probes: 2 failures are 1 %, 3 are 1.5 %
    const timeline = [{ tMs: 0, ok: 99, failed: 1, p99Ms: 1 }];
    expect(end({ drill: 'baseline', outageMs: null, errors: 2, timeline }).results[0]!.baseline).toEqual({ clean: true, failedPct: 1 });
    expect(end({ drill: 'baseline', outageMs: null, errors: 3, timeline }).results[0]!.baseline).toEqual({ clean: false, failedPct: 1.5 });
    expect(end({ drill: 'crash' }).results[0]!.baseline).toBeUndefined();
  });
});
