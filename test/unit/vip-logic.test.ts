/**
 * The emulated controllers' logic without etcd or a network: client-go's elector over an in-memory
 * Lease (timings scaled down), kube-vip BGP mode and the lb_enable ruleset through a recording
 * agent context, kube-vip's release-dependent behaviour (first GARP, what losing a lease does) on
 * fake timers, and the Talos operator's preconditions (no campaign while etcd is unreachable) and
 * release rules.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AgentContext, AgentEvent } from '../../src/emulation/agent/types.js';
import type { Topology } from '../../src/model/types.js';
import type { RunResult } from '../../src/util/proc.js';
import { loadLab } from '../../src/model/load.js';
import { sleep } from '../../src/util/proc.js';
import { KubeVip, LeaderElector, lbRuleset, NFT_TABLE, restartDelayMs, type KubeVipConfig, type LeaseLock, type LeaseRecord } from '../../src/strategies/kube-vip/agent.js';
import { TalosVip, revokesOnCancel } from '../../src/strategies/talos-vip/agent.js';
import { mergeTimers } from '../../src/model/timers.js';

/** In-memory Lease with the API server's optimistic concurrency; `down` identities get errors. */
class MemoryLock {
  private value: { raw: string; rev: number } | null = null;
  private rev = 0;
  readonly down = new Set<string>();
  constructor(private readonly who: string) {}
  describe() {
    return this.who;
  }
  /** requests per identity (to see who still campaigns) */
  readonly calls = new Map<string, number>();
  as(identity: string): LeaseLock {
    const self = this;
    const guard = () => {
      self.calls.set(identity, (self.calls.get(identity) ?? 0) + 1);
      if (self.down.has(identity)) return Promise.reject(new Error('unreachable'));
      return Promise.resolve();
    };
    return {
      describe: () => self.describe(),
      get: async () => (await guard(), self.value ? { record: JSON.parse(self.value.raw) as LeaseRecord, raw: self.value.raw, resourceVersion: String(self.value.rev) } : null),
      create: async (r: LeaseRecord) => {
        await guard();
        if (self.value) return null;
        self.value = { raw: JSON.stringify(r), rev: ++self.rev };
        return { raw: self.value.raw, resourceVersion: String(self.value.rev) };
      },
      update: async (r: LeaseRecord, mod: string) => {
        await guard();
        if (!self.value || String(self.value.rev) !== mod) return null;
        self.value = { raw: JSON.stringify(r), rev: ++self.rev };
        return { raw: self.value.raw, resourceVersion: String(self.value.rev) };
      },
    };
  }
  record(): LeaseRecord | null {
    return this.value ? (JSON.parse(this.value.raw) as LeaseRecord) : null;
  }
}

const D = 400;
const RD = 300;
const R = 100;

function elector(lock: MemoryLock, id: string, log: string[]) {
  return new LeaderElector(lock.as(id), {
    identity: id,
    leaseDurationMs: D,
    renewDeadlineMs: RD,
    retryPeriodMs: R,
    releaseOnCancel: true,
    onStartedLeading: () => void log.push(`${id}+@${Date.now()}`),
    onStoppedLeading: () => void log.push(`${id}-@${Date.now()}`),
  });
}
const at = (log: string[], entry: string) => Number(log.find((l) => l.startsWith(entry))?.split('@')[1]);

describe("client-go leader election over a Lease (scaled: lease 400 ms, renew 300 ms, retry 100 ms)", () => {
  it('one leader; a crashed leader is replaced only after the lease duration since the last renewal was seen', async () => {
    const lock = new MemoryLock('x');
    const log: string[] = [];
    const a = elector(lock, 'a', log);
    const b = elector(lock, 'b', log);
    const ca = new AbortController();
    const cb = new AbortController();
    const ra = a.run(ca.signal);
    await sleep(30);
    const rb = b.run(cb.signal);
    await sleep(600); // several lease durations: b must never get it while a renews
    expect(log.map((l) => l.split('@')[0])).toEqual(['a+']);
    expect(lock.record()!.holderIdentity).toBe('a');
    const crashAt = Date.now();
    a.abandon(); // SIGKILL: no more renewals, no release
    ca.abort();
    expect(await ra).toBe('abandoned');
    await waitUntil(() => log.some((l) => l.startsWith('b+')), 3000);
    const took = at(log, 'b+') - crashAt;
    expect(took).toBeGreaterThanOrEqual(D - R - 5);
    expect(took).toBeLessThanOrEqual(D + 2 * 2.2 * R + 100);
    expect(lock.record()).toMatchObject({ holderIdentity: 'b', leaseTransitions: 1, leaseDurationSeconds: D / 1000 });
    cb.abort();
    expect(await rb).toBe('cancelled');
    // graceful stop released the lease: empty holder, 1 s
    expect(lock.record()).toMatchObject({ holderIdentity: '', leaseDurationSeconds: 1 });
    expect(log.at(-1)!.startsWith('b-')).toBe(true);
  });

  it('a released lease is taken at the next retry, not after the lease duration', async () => {
    const lock = new MemoryLock('x');
    const log: string[] = [];
    const a = elector(lock, 'a', log);
    const b = elector(lock, 'b', log);
    const ca = new AbortController();
    const cb = new AbortController();
    const ra = a.run(ca.signal);
    await sleep(30);
    const rb = b.run(cb.signal);
    await sleep(300);
    const stopAt = Date.now();
    ca.abort();
    expect(await ra).toBe('cancelled');
    await waitUntil(() => log.some((l) => l.startsWith('b+')), 2000);
    expect(at(log, 'b+') - stopAt).toBeLessThanOrEqual(2.2 * R + 60);
    cb.abort();
    await rb;
  });

  it('a leader that cannot renew gives up after the renew deadline (partition), before anyone else may take over', async () => {
    const lock = new MemoryLock('x');
    const log: string[] = [];
    const a = elector(lock, 'a', log);
    const b = elector(lock, 'b', log);
    const ca = new AbortController();
    const cb = new AbortController();
    const ra = a.run(ca.signal);
    await sleep(30);
    const rb = b.run(cb.signal);
    await sleep(250);
    const cutAt = Date.now();
    lock.down.add('a');
    expect(await ra).toBe('lost');
    const gaveUp = at(log, 'a-') - cutAt;
    expect(gaveUp).toBeLessThanOrEqual(RD + R + 60);
    await waitUntil(() => log.some((l) => l.startsWith('b+')), 2000);
    // no overlap: a stopped leading before b started
    expect(at(log, 'b+')).toBeGreaterThanOrEqual(at(log, 'a-'));
    cb.abort();
    await rb;
  });
});

async function waitUntil(fn: () => boolean, timeoutMs: number) {
  const end = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(5);
  }
}

// ---------------------------------------------------------------------------------------------

function recordingCtx(host: string, topology: Topology, events: AgentEvent[], commands: string[], addrs = new Map<string, Set<string>>()): AgentContext {
  const run = async (cmd: string, args: string[], opts?: { input?: string }): Promise<RunResult> => {
    const line = [cmd, ...args].join(' ');
    commands.push(opts?.input ? `${line} <<${opts.input}` : line);
    let stdout = '';
    if (cmd === 'ip' && args[0] === 'addr') {
      const set = addrs.get(args[4]!) ?? new Set<string>();
      addrs.set(args[4]!, set);
      if (args[1] === 'replace') set.add(args[2]!.split('/')[0]!);
      if (args[1] === 'del') set.delete(args[2]!.split('/')[0]!);
    } else if (cmd === 'ip' && args[0] === '-o') {
      const dev = args.at(-1)!;
      stdout = [...(addrs.get(dev) ?? [])].map((ip) => `2: ${dev}    inet ${ip}/32 scope global ${dev}\n`).join('');
    }
    return { command: line, stdout, stderr: '', exitCode: 0, durationMs: 0 };
  };
  return {
    host,
    topology,
    spec: { host, ns: `tlx-${host}`, stateDir: '/nonexistent', socket: '', eventsFile: '', topology, components: [] },
    signal: new AbortController().signal,
    emit: (component, type, data = {}) => events.push({ t: Date.now(), host, component, type, ...data }),
    log: () => undefined,
    run,
  };
}

describe('kube-vip BGP mode (no election)', () => {
  const t = loadLab('smb').topology;
  const w1 = t.nodes.find((n) => n.role === 'worker')!;
  const cp1 = t.nodes.find((n) => n.role === 'controlplane')!;

  it('Services: announces every Cluster Service and Local ones only with a local endpoint; withdraws on stop', async () => {
    const events: AgentEvent[] = [];
    const cmds: string[] = [];
    const kv = new KubeVip(recordingCtx(w1.name, t, events, cmds), {
      apiServers: ['https://127.0.0.1:1'],
      services: {
        mode: 'bgp',
        election: 'global',
        items: [
          { name: 'web', namespace: 'default', ip: '10.32.0.192', externalTrafficPolicy: 'Cluster', localEndpoint: false },
          { name: 'web-local', namespace: 'default', ip: '10.32.0.193', externalTrafficPolicy: 'Local', localEndpoint: false },
        ],
      },
    });
    await kv.start();
    await sleep(50);
    const vtysh = cmds.filter((c) => c.startsWith('vtysh'));
    expect(vtysh).toHaveLength(1);
    expect(vtysh[0]).toBe(`vtysh -N tlx-${w1.name} -c configure terminal -c router bgp ${w1.asn} -c address-family ipv4 unicast -c network 10.32.0.192/32`);
    expect(events.filter((e) => e.type === 'announce').map((e) => e.ip)).toEqual(['10.32.0.192']);
    await kv.stop();
    expect(cmds.at(-1)).toBe(`vtysh -N tlx-${w1.name} -c configure terminal -c router bgp ${w1.asn} -c address-family ipv4 unicast -c no network 10.32.0.192/32`);
    expect(events.filter((e) => e.type === 'withdraw').map((e) => e.ip)).toEqual(['10.32.0.192']);
  });

  it('API: the VIP goes on lo and is announced; a stale VIP from a killed run is removed first', async () => {
    const events: AgentEvent[] = [];
    const cmds: string[] = [];
    const addrs = new Map([['lo', new Set([t.vip])]]);
    const kv = new KubeVip(recordingCtx(cp1.name, t, events, cmds, addrs), { apiServers: ['https://127.0.0.1:1'], api: { mode: 'bgp', vip: t.vip, port: 6443 } });
    await kv.start();
    await sleep(50);
    const firstDel = cmds.indexOf(`ip addr del ${t.vip}/32 dev lo`);
    const add = cmds.indexOf(`ip addr replace ${t.vip}/32 dev lo`);
    expect(firstDel).toBeGreaterThanOrEqual(0);
    expect(add).toBeGreaterThan(firstDel);
    expect(cmds.some((c) => c.endsWith(`-c network ${t.vip}/32`))).toBe(true);
    expect(cmds.some((c) => c.startsWith('arping'))).toBe(false); // BGP mode: no ARP
    await kv.stop();
    expect(addrs.get('lo')!.has(t.vip)).toBe(false);
    expect(cmds.some((c) => c.endsWith(`-c no network ${t.vip}/32`))).toBe(true);
  });
});

describe('lb_enable ruleset (IPVS rr emulated with nftables)', () => {
  it('round robin over the healthy backends + masquerade of the DNATed connections; no backend → no table', () => {
    const r = lbRuleset('10.32.0.10', 6443, ['10.32.0.11', '10.32.0.12']);
    expect(r.startsWith(`add table ip ${NFT_TABLE}\ndelete table ip ${NFT_TABLE}\n`)).toBe(true); // atomic replace
    expect(r).toContain('ip daddr 10.32.0.10 tcp dport 6443 dnat to numgen inc mod 2 map { 0 : 10.32.0.11, 1 : 10.32.0.12 }');
    expect(r).toContain('ct original ip daddr 10.32.0.10 ct status dnat masquerade');
    expect(lbRuleset('10.32.0.10', 6443, [])).toBe(`add table ip ${NFT_TABLE}\ndelete table ip ${NFT_TABLE}\n`);
  });
});

describe('talos-vip preconditions', () => {
  it('does not campaign while its etcd member is unreachable; drops a stale VIP at start; stops promptly', async () => {
    const t = loadLab('smb').topology;
    const cp1 = t.nodes.find((n) => n.role === 'controlplane')!;
    const events: AgentEvent[] = [];
    const cmds: string[] = [];
    const addrs = new Map([['eth0', new Set([t.vip])]]);
    const v = new TalosVip(recordingCtx(cp1.name, t, events, cmds, addrs), {
      vip: t.vip,
      endpoints: ['http://127.0.0.1:1'],
      watchApiserver: false,
      etcdHealth: { initialDelayMs: 50, periodMs: 100, timeoutMs: 50 },
    });
    await v.start();
    expect(addrs.get('eth0')!.has(t.vip)).toBe(false);
    await waitUntil(() => events.some((e) => e.type === 'etcd-unhealthy'), 5000);
    await sleep(300);
    expect(events.some((e) => e.type === 'campaign')).toBe(false);
    expect(v.status()).toMatchObject({ leader: false, holding: false, etcdHealthy: false, sessionTtlS: 60 });
    const t0 = Date.now();
    await v.stop();
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(events.filter((e) => e.type === 'etcd-unhealthy')).toHaveLength(1); // once per transition
  });
});

// ---------------------------------------------------------------------------------------------
// kube-vip as the pinned release does it (fake timers: the timings are exact, nothing races)

describe('kube-vip releases: first gratuitous ARP and what losing a lease does', () => {
  afterEach(() => void vi.useRealTimers());

  const smb = loadLab('smb').topology;
  const cp1 = smb.nodes.find((n) => n.role === 'controlplane')!;
  const w1 = smb.nodes.find((n) => n.role === 'worker')!;
  // kube-vip's generated-manifest timers of v1.1+ and its 3 s ARP rate, the same for every release here
  const lease = { leaseDurationS: 15, renewDeadlineS: 10, retryPeriodS: 2, arpRateMs: 3000 };
  const topo = (version: string): Topology => ({ ...structuredClone(smb), settings: { kubeVip: { version } }, timers: mergeTimers(smb.timers, { kubeVip: lease }) });

  function run(version: string, host: string, config: KubeVipConfig) {
    const t = topo(version);
    const events: AgentEvent[] = [];
    const cmds: string[] = [];
    const addrs = new Map<string, Set<string>>();
    const kv = new KubeVip(recordingCtx(host, t, events, cmds, addrs), config);
    const locks = new Map<string, MemoryLock>();
    const lockOf = (name: string) => locks.get(name) ?? locks.set(name, new MemoryLock(name)).get(name)!;
    kv.makeLock = (ns, name) => lockOf(`${ns}/${name}`).as(host);
    return { kv, events, cmds, addrs, lockOf, holds: (ip: string) => [...addrs.values()].some((x) => x.has(ip)) };
  }
  const api = (): KubeVipConfig => ({ api: { mode: 'arp', vip: smb.vip, port: 6443, link: 'eth0' } });
  const svc = (ip: string): KubeVipConfig => ({
    services: { mode: 'arp', election: 'global', items: [{ name: 'web', namespace: 'default', ip, externalTrafficPolicy: 'Cluster', localEndpoint: true }] },
  });
  const firstOf = (events: AgentEvent[], type: string) => events.find((e) => e.type === type);
  /** advance the fake clock in 50 ms steps until `pred` holds (at most `maxMs`) */
  async function advanceUntil(pred: () => unknown, maxMs: number) {
    for (let t = 0; t < maxMs && !pred(); t += 50) await vi.advanceTimersByTimeAsync(50);
    expect(pred()).toBeTruthy();
  }
  const lossWithin = (lease.renewDeadlineS + 2 * lease.retryPeriodS) * 1000;

  it('≤ v0.8: the first GARP goes out with the address', async () => {
    vi.useFakeTimers();
    const r = run('v0.8.9', cp1.name, api());
    await r.kv.start();
    await vi.advanceTimersByTimeAsync(100);
    const acquired = firstOf(r.events, 'acquired')!;
    const garp = firstOf(r.events, 'garp-sent')!;
    expect(acquired).toBeDefined();
    expect(garp.t - acquired.t).toBe(0);
    // the control-plane VIP's repeat is hard-coded to 3 s at v0.8.9
    const arpings = () => r.cmds.filter((c) => c.startsWith('arping')).length;
    const n = arpings();
    await vi.advanceTimersByTimeAsync(3000);
    expect(arpings()).toBe(n + 1);
    await r.kv.stop();
  });

  it('≥ v0.9: the first GARP waits for the process-wide ARP loop (0…vip_arpRate after the takeover, phase set at process start)', async () => {
    vi.useFakeTimers();
    const r = run('v1.2.3', cp1.name, api());
    const startedAt = Date.now();
    await r.kv.start();
    await vi.advanceTimersByTimeAsync(100);
    const acquired = firstOf(r.events, 'acquired')!;
    expect(acquired).toBeDefined();
    expect(firstOf(r.events, 'garp-sent')).toBeUndefined(); // not with the address
    expect(r.cmds.some((c) => c.startsWith('arping'))).toBe(false);
    await vi.advanceTimersByTimeAsync(3000);
    const garp = firstOf(r.events, 'garp-sent')!;
    expect(garp.t - acquired.t).toBeGreaterThan(0);
    expect(garp.t - acquired.t).toBeLessThanOrEqual(lease.arpRateMs);
    expect((garp.t - startedAt) % lease.arpRateMs).toBe(0);
    await r.kv.stop();
  });

  it('v0.8.9: losing the control-plane lease kills the process (log.Fatal): the other lease is not released; the kubelet restarts it after 1 s', async () => {
    vi.useFakeTimers();
    const ip = '10.32.0.200';
    const r = run('v0.8.9', cp1.name, { ...api(), ...svc(ip) });
    await r.kv.start();
    await vi.advanceTimersByTimeAsync(100);
    expect(r.holds(smb.vip) && r.holds(ip)).toBe(true);
    r.lockOf('kube-system/plndr-cp-lock').down.add(cp1.name);
    await advanceUntil(() => firstOf(r.events, 'restart'), lossWithin);
    const restart = firstOf(r.events, 'restart')!;
    expect(restart).toMatchObject({ exit: 'die', afterMs: 1000 });
    expect(r.holds(smb.vip)).toBe(false); // OnStoppedLeading deleted it before log.Fatal
    expect(r.holds(ip)).toBe(true); // the Services address is left behind…
    expect(r.lockOf('kube-system/plndr-svcs-lock').record()!.holderIdentity).toBe(cp1.name); // …and its lease not released
    const cleared = r.cmds.length;
    await vi.advanceTimersByTimeAsync(1000);
    expect(r.cmds.slice(cleared)).toContain(`ip addr del ${ip}/32 dev eth0`); // the restarted process clears it first
    expect(r.events.filter((e) => e.type === 'leader' && e.lease === 'kube-system/plndr-svcs-lock')).toHaveLength(2); // and campaigns again
    await r.kv.stop();
  });

  it('v1.2.3: losing the control-plane lease shuts the process down gracefully (other leases released) and it is restarted', async () => {
    vi.useFakeTimers();
    const ip = '10.32.0.200';
    const r = run('v1.2.3', cp1.name, { ...api(), ...svc(ip) });
    await r.kv.start();
    await vi.advanceTimersByTimeAsync(100);
    r.lockOf('kube-system/plndr-cp-lock').down.add(cp1.name);
    await advanceUntil(() => firstOf(r.events, 'restart'), lossWithin);
    await vi.advanceTimersByTimeAsync(10); // the graceful shutdown's release and clean-up
    expect(firstOf(r.events, 'restart')).toMatchObject({ exit: 'exit', afterMs: 1000 });
    expect(r.holds(ip)).toBe(false);
    expect(r.lockOf('kube-system/plndr-svcs-lock').record()).toMatchObject({ holderIdentity: '', leaseDurationSeconds: 1 });
    expect(firstOf(r.events, 'hung')).toBeUndefined();
    await r.kv.stop();
  });

  it('v1.2.3: losing the global Services lease leaves the process running but dead (no restart, no new campaign); v1.1.2 exits and is restarted', async () => {
    vi.useFakeTimers();
    const ip = '10.32.0.200';
    const r = run('v1.2.3', w1.name, svc(ip));
    await r.kv.start();
    await vi.advanceTimersByTimeAsync(100);
    expect(r.holds(ip)).toBe(true);
    const lock = r.lockOf('kube-system/plndr-svcs-lock');
    lock.down.add(w1.name);
    await advanceUntil(() => firstOf(r.events, 'hung'), lossWithin);
    expect(r.holds(ip)).toBe(false);
    lock.down.clear();
    const callsAfter = lock.calls.get(w1.name);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(lock.calls.get(w1.name)).toBe(callsAfter); // never campaigns again
    expect(firstOf(r.events, 'restart')).toBeUndefined();
    expect(r.kv.status()).toMatchObject({ hung: true, restarts: 0 });
    // only deleting the pod ends it: the replacement campaigns again and takes the free lease
    expect(await r.kv.unstick()).toMatch(/hung .*pod/);
    expect(r.kv.status()).toMatchObject({ hung: false });
    await advanceUntil(() => r.events.filter((e) => e.type === 'leader' && e.lease === 'kube-system/plndr-svcs-lock').length === 2, lossWithin);
    expect(r.holds(ip)).toBe(true);
    expect(await r.kv.unstick()).toBeNull(); // nothing stuck: nothing done
    await r.kv.stop();

    const old = run('v1.1.2', w1.name, svc(ip));
    await old.kv.start();
    await vi.advanceTimersByTimeAsync(100);
    old.lockOf('kube-system/plndr-svcs-lock').down.add(w1.name);
    await advanceUntil(() => firstOf(old.events, 'restart'), lossWithin);
    expect(firstOf(old.events, 'restart')).toMatchObject({ exit: 'exit' });
    expect(firstOf(old.events, 'hung')).toBeUndefined();
    await old.kv.stop();
  });

  it('kubelet restart back-off: at once the first time (after the 1 s PLEG relist), then 10 s doubling to 300 s', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7].map(restartDelayMs)).toEqual([1000, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000]);
  });
});

describe('talos-vip: which releases revoke a cancelled campaign\'s session', () => {
  it('from v1.12.11, v1.13.8 and v1.14 on; never in v1.11.x', () => {
    const yes = ['v1.12.11', 'v1.13.8', 'v1.13.9', 'v1.14.0', 'v2.0.0'];
    const no = ['v1.11.6', 'v1.11.0', 'v1.12.0', 'v1.12.10', 'v1.13.0', 'v1.13.7', 'v1.10.9'];
    for (const v of yes) expect(revokesOnCancel(v), v).toBe(true);
    for (const v of no) expect(revokesOnCancel(v), v).toBe(false);
  });
});
