/**
 * The emulated controllers' logic without etcd or a network: client-go's elector over an in-memory
 * Lease (timings scaled down), kube-vip BGP mode and the lb_enable ruleset through a recording
 * agent context, and the Talos operator's preconditions (no campaign while etcd is unreachable).
 */
import { describe, expect, it } from 'vitest';
import type { AgentContext, AgentEvent } from '../../src/emulation/agent/types.js';
import type { Topology } from '../../src/model/types.js';
import type { RunResult } from '../../src/util/proc.js';
import { loadLab } from '../../src/model/load.js';
import { sleep } from '../../src/util/proc.js';
import { KubeVip, LeaderElector, lbRuleset, NFT_TABLE, type EtcdLeaseLock, type LeaseRecord } from '../../src/strategies/kube-vip/agent.js';
import { TalosVip } from '../../src/strategies/talos-vip/agent.js';

/** In-memory Lease with the API server's optimistic concurrency; `down` identities get errors. */
class MemoryLock {
  private value: { raw: string; rev: number } | null = null;
  private rev = 0;
  readonly down = new Set<string>();
  constructor(private readonly who: string) {}
  describe() {
    return 'test/lease';
  }
  as(identity: string): EtcdLeaseLock {
    const self = this;
    const guard = () => {
      if (self.down.has(identity)) return Promise.reject(new Error('unreachable'));
      return Promise.resolve();
    };
    return {
      describe: () => self.describe(),
      get: async () => (await guard(), self.value ? { record: JSON.parse(self.value.raw) as LeaseRecord, raw: self.value.raw, modRevision: String(self.value.rev) } : null),
      create: async (r: LeaseRecord) => {
        await guard();
        if (self.value) return null;
        self.value = { raw: JSON.stringify(r), rev: ++self.rev };
        return { raw: self.value.raw, modRevision: String(self.value.rev) };
      },
      update: async (r: LeaseRecord, mod: string) => {
        await guard();
        if (!self.value || String(self.value.rev) !== mod) return null;
        self.value = { raw: JSON.stringify(r), rev: ++self.rev };
        return { raw: self.value.raw, modRevision: String(self.value.rev) };
      },
    } as unknown as EtcdLeaseLock;
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
      endpoints: ['http://127.0.0.1:1'],
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
    const kv = new KubeVip(recordingCtx(cp1.name, t, events, cmds, addrs), { endpoints: ['http://127.0.0.1:1'], api: { mode: 'bgp', vip: t.vip, port: 6443 } });
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
    const v = new TalosVip(recordingCtx(cp1.name, t, events, cmds, addrs), { vip: t.vip, endpoints: ['http://127.0.0.1:1'], watchApiserver: false });
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
