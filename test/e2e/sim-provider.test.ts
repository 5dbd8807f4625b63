/**
 * The sim provider on the real kernel (root): FRR router + node speakers, ECMP with one
 * nexthop per speaking node, every drill primitive's observable effect, resilient vs plain ECMP,
 * and nothing left behind. Network-only plans (speakers, no emulated components) keep this file
 * independent of the mechanisms; the lab e2e suites cover those.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadLab, REPO_ROOT } from '../../src/model/load.js';
import type { Lab, StrategyRef } from '../../src/model/types.js';
import type { SimPlan } from '../../src/strategies/types.js';
import { renderSpeakerFrr } from '../../src/render/frr.js';
import { simProvider } from '../../src/providers/kinds/emulated/provider.js';
import { EmulatedLab as SimLab } from '../../src/providers/kinds/emulated/lab.js';
import type { NetnsRuntime } from '../../src/providers/runtimes/netns/runtime.js';

const nsOf = (l: SimLab, host: string) => (l.rt as NetnsRuntime).ns(host);
import { LabState } from '../../src/state/state.js';
import { listNetns } from '../../src/state/clean.js';
import { run, sleep, now } from '../../src/util/proc.js';
import { useTempDirs } from '../helpers/tmp.js';

const mkTemp = useTempDirs();
const labs: SimLab[] = [];
afterAll(async () => {
  for (const l of labs) await l.down().catch(() => undefined);
});

async function up(file: string): Promise<SimLab> {
  const lab = loadLab(file, { repoRoot: REPO_ROOT });
  await simProvider.check(lab);
  const prefix = `tlab-simp${labs.length}-${process.pid}`;
  const state = LabState.create({ id: `simp${labs.length}`, prefix, lab: lab.name, labFile: lab.file, provider: 'sim', createdAt: new Date().toISOString(), ownerPid: process.pid, status: 'starting' }, mkTemp('simstate-'));
  const l = (await simProvider.up(lab, { id: state.id, prefix, state })) as SimLab;
  labs.push(l);
  return l;
}

/** speakers on the given nodes, each announcing `prefix` (what MetalLB BGP mode does) */
function speakerPlan(lab: Lab, nodes: string[], prefix: string): SimPlan {
  const t = lab.topology;
  const speakers: SimPlan['speakers'] = {};
  for (const name of nodes) {
    const n = t.nodes.find((x) => x.name === name)!;
    speakers[name] = { owner: 'test', asn: n.asn, frrConf: renderSpeakerFrr(n, t, { timers: t.timers.bgp, owner: 'test', prefixes: [prefix] }), staticPrefixes: [prefix] };
  }
  return { components: {}, speakers, daemons: [] };
}

const ref = (id: string): StrategyRef => {
  const [cp, svc] = id.split('+') as [StrategyRef['cp'], StrategyRef['svc']];
  return { id, cp, svc, options: {} };
};

const ping = async (l: SimLab, from: string, ip: string) => (await l.exec(from, 'ping', ['-c', '1', '-W', '1', ip])).exitCode === 0;

/** the router's ECMP choice for N client flows (kernel input route lookups with the L4 hash, one `ip -batch`) */
async function flowMap(l: SimLab, dst: string, flows: number): Promise<string[]> {
  const t = l.lab.topology;
  const client = t.clients[0]!.interfaces[0]!.ip;
  const rtr = t.routers[0]!;
  const iif = rtr.interfaces.find((i) => i.segment === 'uplink')!.ifname;
  const lookups = Array.from({ length: flows }, (_, i) => `route get ${dst} from ${client} iif ${iif} ipproto tcp sport ${40000 + i} dport 80`);
  const r = await l.rt.exec(rtr.name, 'ip', ['-j', '-batch', '-'], { input: lookups.join('\n') + '\n' });
  const out = r.stdout.split('\n').filter(Boolean).map((line) => (JSON.parse(line) as { gateway: string }[])[0]!.gateway);
  expect(out).toHaveLength(flows);
  return out;
}

async function waitUntil(what: string, fn: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const t0 = now();
  while (now() - t0 < timeoutMs) {
    if (await fn()) return now() - t0;
    await sleep(50);
  }
  throw new Error(`${what}: not within ${timeoutMs} ms`);
}

describe('sim provider (smb, network-only plan)', () => {
  let l: SimLab;
  const svcIp = () => l.lab.topology.services[0]!.ip;
  const speaking = ['cp1', 'cp2', 'w1', 'w2'];

  beforeAll(async () => {
    expect(process.getuid?.()).toBe(0);
    l = await up('test/fixtures/labs/ci-smb.yaml');
    await l.apply(ref('haproxy+metallb-bgp'), { files: [], sim: speakerPlan(l.lab, speaking, `${l.lab.topology.services[0]!.ip}/32`) });
  });

  it('reports the real components it runs', async () => {
    const c = await l.components();
    expect(c.frr).toMatch(/^\d+\.\d+/);
    expect(c.etcd).toMatch(/^\d+\.\d+/);
    expect(c.haproxy).toMatch(/^\d+\.\d+/);
  });

  it('BGP sessions are up from every speaking node and the router has one ECMP nexthop per node', async () => {
    await waitUntil('4 nexthops', async () => (await l.holders('service')).length === 4, 10_000);
    expect(await l.holders('service')).toEqual([...speaking].sort());
    const r = await l.exec('rtr', 'vtysh', ['-N', nsOf(l, 'rtr'), '-c', 'show bgp ipv4 unicast summary json']);
    const peers = Object.values((JSON.parse(r.stdout) as { peers: Record<string, { state: string }> }).peers);
    expect(peers.filter((p) => p.state === 'Established')).toHaveLength(4);
    // flows from the client spread over several nodes (L4 hash)
    expect(new Set(await flowMap(l, svcIp(), 32)).size).toBeGreaterThan(1);
  });

  it('leave withdraws at once (NOTIFICATION), join brings the node back', async () => {
    await l.inject('leave', 'w1');
    await waitUntil('w1 withdrawn', async () => !(await l.holders('service')).includes('w1'), 2000);
    await l.restore('w1');
    await waitUntil('w1 back', async () => (await l.holders('service')).includes('w1'), 5000);
  });

  it('graceful shutdown withdraws in well under the hold time; restore brings the node back', async () => {
    const t0 = now();
    await l.inject('shutdown', 'w2');
    await waitUntil('w2 withdrawn', async () => !(await l.holders('service')).includes('w2'), 3000);
    expect(now() - t0).toBeLessThan(l.lab.topology.timers.bgp.holdS * 1000);
    await l.restore('w2');
    await waitUntil('w2 back', async () => (await l.holders('service')).includes('w2'), 10_000);
  });

  it('crash: the router notices only when the hold time expires; the node is unreachable; restore heals', async () => {
    const holdMs = l.lab.topology.timers.bgp.holdS * 1000;
    const keepaliveMs = l.lab.topology.timers.bgp.keepaliveS * 1000;
    const t0 = now();
    await l.inject('crash', 'w2');
    expect(await ping(l, 'rtr', '10.32.0.15')).toBe(false);
    await waitUntil('w2 route gone', async () => !(await l.holders('service')).includes('w2'), holdMs + 3000);
    const gone = now() - t0;
    // the last keepalive came at most one keepalive interval before the crash
    expect(gone).toBeGreaterThanOrEqual(holdMs - keepaliveMs - 100);
    expect(gone).toBeLessThanOrEqual(holdMs + 1500);
    await l.restore('w2');
    expect(await ping(l, 'rtr', '10.32.0.15')).toBe(true);
    await waitUntil('w2 back', async () => (await l.holders('service')).includes('w2'), 10_000);
  });

  it('partition drops all traffic both ways while processes run; restore heals', async () => {
    await l.inject('partition', 'cp2');
    expect(await ping(l, 'rtr', '10.32.0.12')).toBe(false);
    expect(await ping(l, 'cp2', '10.32.0.11')).toBe(false);
    const etcd = (await l.exec('cp2', 'sh', ['-c', `for p in $(ip netns pids ${nsOf(l, 'cp2')}); do cat /proc/$p/comm; done`])).stdout;
    expect(etcd).toContain('etcd');
    await l.restore('cp2');
    expect(await ping(l, 'rtr', '10.32.0.12')).toBe(true);
  });

  it('freeze stops the processes while the kernel still answers; restore continues them', async () => {
    const states = async () => {
      const r = await run('ip', ['netns', 'pids', nsOf(l, 'cp1')]);
      return Promise.all(r.stdout.split(/\s+/).filter(Boolean).map(async (p) => (await run('cat', [`/proc/${p}/stat`], { reject: false })).stdout.split(') ')[1]?.[0]));
    };
    await l.inject('freeze', 'cp1');
    expect((await states()).every((s) => s === 'T')).toBe(true);
    expect(await ping(l, 'rtr', '10.32.0.11')).toBe(true);
    await l.restore('cp1');
    expect((await states()).some((s) => s === 'T')).toBe(false);
  });

  it('link flap: unreachable while down, reachable after', async () => {
    const flap = l.inject('link-flap', 'w1', { downMs: 1500 });
    await sleep(300);
    expect(await ping(l, 'rtr', '10.32.0.14')).toBe(false);
    await flap;
    expect(await ping(l, 'client1', '10.32.0.14')).toBe(true);
  });

  it('plain ECMP re-maps flows of surviving nodes when one leaves', async () => {
    await waitUntil('4 nexthops', async () => (await l.holders('service')).length === 4, 10_000);
    // the forwarding lookups, not only the route listing, use all four
    let before: string[] = [];
    await waitUntil('4 nexthops in the forwarding lookups', async () => new Set((before = await flowMap(l, svcIp(), 256))).size === 4, 10_000);
    await l.inject('leave', 'w1');
    await waitUntil('w1 withdrawn', async () => !(await l.holders('service')).includes('w1'), 2000);
    const w1 = l.lab.topology.nodes.find((n) => n.name === 'w1')!.ip;
    expect(before.filter((g) => g === w1).length, 'some flows went to w1 before').toBeGreaterThan(0);
    // the forwarding lookup, not only the route listing, without w1: once (CI) a lookup right after
    // the listing changed still gave every flow its old nexthop
    let after: string[] = [];
    await waitUntil('w1 out of the forwarding lookups, and two reads 300 ms apart agree', async () => {
      const a = await flowMap(l, svcIp(), 256);
      await sleep(300);
      after = await flowMap(l, svcIp(), 256);
      return !a.includes(w1) && a.join() === after.join();
    }, 10_000);
    const survivorsMoved = before.filter((g, i) => g !== w1 && after[i] !== g).length;
    const fib = async () => (await Promise.all([['-d', 'route', 'show', `${svcIp()}/32`], ['-d', 'nexthop', 'show'], ['neigh', 'show']].map(async (a) => (await l.exec('rtr', 'ip', a)).stdout))).join('\n');
    const moves = new Map<string, number>();
    before.forEach((g, i) => moves.set(`${g}→${after[i]}`, (moves.get(`${g}→${after[i]}`) ?? 0) + 1));
    expect(survivorsMoved, `flows by old→new nexthop: ${[...moves].map(([k, n]) => `${k} ${n}`).join(', ')}\nrouter:\n${survivorsMoved ? '' : await fib()}`).toBeGreaterThan(0);
    await l.restore('w1');
  });
});

describe('sim provider: resilient ECMP', () => {
  it('keeps the nexthop of every flow on a surviving node when one leaves', async () => {
    const l = await up('test/fixtures/labs/ci-smb-resilient.yaml');
    const svc = l.lab.topology.services[0]!.ip;
    await l.apply(ref('haproxy+metallb-bgp'), { files: [], sim: speakerPlan(l.lab, ['cp1', 'cp2', 'w1', 'w2'], `${svc}/32`) });
    await waitUntil('4 nexthops', async () => (await l.holders('service')).length === 4, 10_000);
    // the shim's resilient group is what the kernel uses (its table is consulted before main)
    await waitUntil('resilient route', async () => (await l.exec('rtr', 'ip', ['route', 'show', 'table', '100', `${svc}/32`])).stdout.includes('nhid'), 5000);
    const group = (await l.exec('rtr', 'ip', ['-d', 'nexthop', 'show'])).stdout;
    expect(group).toMatch(/type resilient buckets 128/);
    const before = await flowMap(l, svc, 64);
    const w1 = l.lab.topology.nodes.find((n) => n.name === 'w1')!.ip;
    expect(before.filter((g) => g === w1).length).toBeGreaterThan(0);
    await l.inject('leave', 'w1');
    await waitUntil('w1 withdrawn', async () => !(await l.holders('service')).includes('w1'), 2000);
    await sleep(300);
    const after = await flowMap(l, svc, 64);
    expect(after.filter((g) => g === w1)).toHaveLength(0);
    expect(before.filter((g, i) => g !== w1 && after[i] !== g)).toHaveLength(0);
    await l.down();
  });
});

describe('sim provider: nothing is left behind', () => {
  it('after down, no namespace of these labs exists and no daemon of theirs runs', async () => {
    for (const l of labs) await l.down();
    const left = (await listNetns()).filter((n) => labs.some((l) => n.startsWith(l.prefix)));
    expect(left).toEqual([]);
    const daemons = (await run('ps', ['-eo', 'args'])).stdout.split('\n').filter((a) => labs.some((l) => a.includes(l.prefix)));
    expect(daemons).toEqual([]);
  });
});
