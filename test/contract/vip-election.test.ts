/**
 * The Talos VIP and kube-vip election logic against a REAL etcd (single member on 127.0.0.1, random
 * ports, temp dir): three emulated control planes each, with fake agent contexts whose `run` keeps
 * an in-memory address table instead of touching the network. kube-vip reaches its Lease through
 * real API server stand-ins (one per control plane, on 127.0.0.11–13, the lab PKI), as the real
 * process goes through an API server. Proves: one holder at a time, graceful stop → takeover
 * within the graceful band, crash (no resign/release, lease not kept alive) → takeover after ≈ TTL
 * / lease duration, inside the bands the mechanisms derive from the same timers; a kube-vip leader
 * whose API server is gone cannot renew and hands over; the Talos operator waits for its etcd
 * health check, keeps the VIP while the kube-apiserver static pod is listed, and cleans a cancelled
 * campaign up as its release does. Short timers: Talos TTL 3 s; kube-vip lease 3 s / renew 2 s /
 * retry 0.5 s.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import type { AgentContext, AgentEvent } from '../../src/emulation/agent/types.js';
import type { Node, Topology } from '../../src/model/types.js';
import { mergeTimers } from '../../src/model/timers.js';
import { DEFAULT_TIMERS, timerIssues } from '../../src/model/timer-groups.js';
import { now, sleep, spawnDaemon, stopProcess, type Daemon, type RunResult } from '../../src/util/proc.js';
import { TalosVip, labEtcdClient, talosElectionKey, type TalosVipConfig } from '../../src/strategies/talos-vip/agent.js';
import { makePki } from '../../src/emulation/pki.js';
import apiserverFactory from '../../src/emulation/apiserver.js';
import { KubeVip, lbRuleset, type KubeVipConfig, type LeaseRecord } from '../../src/strategies/kube-vip/agent.js';
import { useTempDirs } from '../helpers/tmp.js';

const mkTemp = useTempDirs();
const VIP = '10.99.0.10';
const stateDir = mkTemp('tlx-vip-state-');
/** Talos' etcd health check, shortened (the real one: first after 5 s, then every 20 s) */
const HEALTH = { initialDelayMs: 200, periodMs: 1000, timeoutMs: 500 };

// ---------------------------------------------------------------------------------------------
// Expected bands, computed HERE from the fixture's timers and the upstream rules (never by the
// mechanisms' own band functions: a test that asked them would only check they agree with
// themselves). What is timed is the `acquired` event: the address added in the fake host's
// in-memory table, before any gratuitous ARP, so no GARP term appears in these bands.

/** etcd server/lease/lessor.go (v3.4, v3.5) runLoop: expired leases are revoked on a 500 ms tick */
const LESSOR_TICK_MS = 500;
/** k8s.io/client-go tools/leaderelection/leaderelection.go: JitterFactor = 1.2 — every retry waits RetryPeriod × (1 + rand × 1.2) */
const CLIENT_GO_JITTER = 1.2;
/**
 * The takeover's own work after the rule has fired: etcd round trips (for kube-vip a GET and a PUT
 * of the Lease through the API server stand-in) and the in-memory `ip addr` — milliseconds, allowed
 * 1 s because this contract suite shares a 2-core machine with other tests.
 */
const ACT_MS = 1000;

/**
 * Talos VIP (siderolabs/talos internal/app/machined/pkg/controllers/network/operator/vip.go @v1.11.6,
 * go.etcd.io/etcd/client/v3/concurrency election.go + key.go, client/v3 lease.go):
 * - graceful: the holder resigns (deletes its election key); the next candidate is already blocked
 *   in Campaign waiting for that key's deletion and wins at once; a candidate whose campaign had
 *   just failed campaigns again after campaignRetryS → [0, C + ACT].
 * - crash / partition: the key goes when etcd expires the session lease, TTL after the last
 *   keepalive; keepalives go out every TTL/3, so the last one was 0…TTL/3 before the fault →
 *   expiry TTL − TTL/3 … TTL after it, found on the lessor's next tick. One etcd member here: no
 *   leader change, so no re-election or Promote() lease extension → [T − T/3, T + tick + C + ACT].
 */
function talosVipExpected(topo: Topology): { graceful: { min: number; max: number }; crash: { min: number; max: number } } {
  const T = topo.timers.talosVip.sessionTtlS * 1000;
  const C = topo.timers.talosVip.campaignRetryS * 1000;
  return {
    graceful: { min: 0, max: C + ACT_MS },
    crash: { min: T - T / 3, max: T + LESSOR_TICK_MS + C + ACT_MS },
  };
}

/**
 * kube-vip's Lease election (client-go tools/leaderelection/leaderelection.go @v0.36.3,
 * ReleaseOnCancel as kube-vip pkg/cluster/clusterLeaderElection.go @v1.2.3 sets it):
 * - graceful: the holder releases (writes an empty holderIdentity); a follower acquires at its next
 *   tryAcquireOrRenew, RetryPeriod × (1 + rand × JitterFactor) ≤ R × 2.2 later → [0, R × 2.2 + ACT].
 * - crash / partition / API server gone: the holder renewed every RetryPeriod, so its last renewal
 *   was 0…R before the fault; a follower records the renewal when it next polls (≤ R × 2.2 later)
 *   and takes the Lease at its first poll after observedTime + leaseDuration (≤ R × 2.2 more) →
 *   [D − R, D + 2 × R × 2.2 + ACT]. One etcd member: no etcd leader election stalls the reads.
 */
function kubeVipExpected(topo: Topology): { graceful: { min: number; max: number }; crash: { min: number; max: number } } {
  const D = topo.timers.kubeVip.leaseDurationS * 1000;
  const R = topo.timers.kubeVip.retryPeriodS * 1000;
  const maxRetry = R * (1 + CLIENT_GO_JITTER);
  return {
    graceful: { min: 0, max: maxRetry + ACT_MS },
    crash: { min: D - R, max: D + 2 * maxRetry + ACT_MS },
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

function topology(talosVersion = 'v1.11.6'): Topology {
  const timers = mergeTimers(DEFAULT_TIMERS, {
    talosVip: { sessionTtlS: 3, campaignRetryS: 1 },
    kubeVip: { leaseDurationS: 3, renewDeadlineS: 2, retryPeriodS: 0.5, arpRateMs: 3000 },
  });
  expect(timerIssues(timers)).toEqual([]);
  // the nodes' addresses are loopback ones, so their API server stand-ins can listen on them
  const nodes: Node[] = [1, 2, 3].map((i) => ({
    kind: 'node',
    name: `cp${i}`,
    role: 'controlplane',
    index: i,
    rack: 'lan',
    ip: `127.0.0.1${i}`,
    asn: 64600,
    runsWorkloads: false,
    gateway: '127.0.0.1',
    interfaces: [{ ifname: 'eth0', segment: 'lan', ip: `127.0.0.1${i}`, prefixLen: 8 }],
  }));
  return {
    name: 'vip-contract',
    nodes,
    routers: [],
    clients: [],
    segments: [],
    services: [],
    vip: VIP,
    apiPort: 6443,
    kubePrismPort: 7445,
    timers,
    settings: { kubeVip: { version: 'v1.2.3' } },
    talos: { version: talosVersion, kubernetesVersion: '1.34.1' },
  } as unknown as Topology;
}

/** One API server stand-in per control plane, each on its node's address, over the given etcd URLs. */
async function apiServers(topo: Topology, etcdOf: (i: number) => string) {
  const port = await freePort();
  const servers = topo.nodes.map((n, i) => {
    const ctx = new FakeHost(n.name, topo, []).ctx();
    return apiserverFactory(ctx, { host: n.ip, port, etcdEndpoints: [etcdOf(i)], pollMs: 200 });
  });
  await Promise.all(servers.map((s) => s.start()));
  return { urls: topo.nodes.map((n) => `https://${n.ip}:${port}`), servers, stop: () => Promise.all(servers.map((s) => s.stop().catch(() => undefined))) };
}

/** A host whose `ip addr` is an in-memory table; every command is recorded. */
class FakeHost {
  readonly addrs = new Map<string, Set<string>>();
  readonly commands: string[] = [];
  dead = false;

  constructor(
    readonly name: string,
    private readonly topo: Topology,
    private readonly events: AgentEvent[],
  ) {}

  holds(ip: string): boolean {
    return [...this.addrs.values()].some((s) => s.has(ip));
  }

  ctx(): AgentContext {
    const run = async (cmd: string, args: string[], opts?: { input?: string }): Promise<RunResult> => {
      const line = [cmd, ...args].join(' ');
      this.commands.push(opts?.input ? `${line} <<${opts.input}` : line);
      let stdout = '';
      if (cmd === 'ip' && args[0] === 'addr') {
        const [, op, cidr, , dev] = args as [string, string, string, string, string];
        const set = this.addrs.get(dev) ?? new Set<string>();
        this.addrs.set(dev, set);
        if (op === 'replace') set.add(cidr.split('/')[0]!);
        if (op === 'del') set.delete(cidr.split('/')[0]!);
      } else if (cmd === 'ip' && args[0] === '-o') {
        const dev = args[args.length - 1]!;
        stdout = [...(this.addrs.get(dev) ?? [])].map((ip) => `2: ${dev}    inet ${ip}/32 scope global ${dev}\n`).join('');
      }
      return { command: line, stdout, stderr: '', exitCode: 0, durationMs: 0 };
    };
    return {
      host: this.name,
      topology: this.topo,
      spec: { host: this.name, ns: `tlx-${this.name}`, stateDir, socket: '', eventsFile: '', topology: this.topo, components: [] },
      signal: new AbortController().signal,
      emit: (component, type, data = {}) => this.events.push({ t: now(), host: this.name, component, type, ...data }),
      log: () => undefined,
      run,
    };
  }
}

/** Samples every 10 ms how many live hosts hold the VIP. */
function holderSampler(hosts: FakeHost[], ip: string) {
  let max = 0;
  const timer = setInterval(() => {
    const n = hosts.filter((h) => !h.dead && h.holds(ip)).length;
    max = Math.max(max, n);
  }, 10);
  return { stop: () => clearInterval(timer), max: () => max };
}

async function waitFor<T>(what: string, fn: () => T | undefined | null | false, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

let etcd: Daemon;
let url: string;

beforeAll(async () => {
  await makePki(stateDir, topology());
  const dir = mkTemp('tlx-vip-etcd-');
  const [client, peer] = [await freePort(), await freePort()];
  url = `http://127.0.0.1:${client}`;
  etcd = spawnDaemon({
    name: 'vip-test/etcd',
    cmd: 'etcd',
    args: [
      '--name', 'vip', '--data-dir', join(dir, 'data'),
      '--listen-client-urls', url, '--advertise-client-urls', url,
      '--listen-peer-urls', `http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
      '--initial-cluster', `vip=http://127.0.0.1:${peer}`,
    ],
    logFile: join(dir, 'etcd.log'),
  });
  const c = labEtcdClient([url], 1000); // one attempt per call: no circuit breaker while etcd starts
  try {
    const end = Date.now() + 25_000;
    for (;;) {
      try {
        await c.get('health').options({ deadline: Date.now() + 500 }).exec();
        break;
      } catch (e) {
        if (Date.now() > end || !etcd.isRunning()) throw new Error(`etcd not healthy: ${(e as Error).message}\n${etcd.logTail()}`);
        await sleep(100);
      }
    }
  } finally {
    c.close();
  }
}, 40_000);

afterAll(async () => {
  if (etcd) await stopProcess(etcd.pid);
});

describe('talos-vip election on a real etcd', () => {
  it('one holder; graceful stop hands over at once; a crash hands over after the session TTL', async () => {
    const topo = topology();
    const events: AgentEvent[] = [];
    const hosts = topo.nodes.map((n) => new FakeHost(n.name, topo, events));
    const vips = hosts.map((h) => new TalosVip(h.ctx(), { vip: VIP, link: 'eth0', endpoints: [url], watchApiserver: false, etcdHealth: HEALTH }));
    const sampler = holderSampler(hosts, VIP);
    const bands = talosVipExpected(topo);
    const acquiredAfter = (t: number, notHost?: string) => events.find((e) => e.type === 'acquired' && e.t >= t && e.host !== notHost);
    const db = new Etcd3({ hosts: url });
    try {
      await Promise.all(vips.map((v) => v.start()));
      const first = await waitFor('first acquired', () => acquiredAfter(0), 10_000);
      await sleep(300);
      expect(hosts.filter((h) => h.holds(VIP)).map((h) => h.name)).toEqual([first.host]);
      expect(events.filter((e) => e.type === 'campaign')).toHaveLength(3);
      // the election queue in etcd: three keys under talos:v1:vip:election:<ip>/<lease hex>, the oldest is the holder
      const keys = await db.getAll().prefix(`${talosElectionKey(VIP)}/`).sort('Create', 'Ascend').exec();
      expect(keys.kvs).toHaveLength(3);
      expect(keys.kvs[0]!.value.toString()).toBe(first.host);
      expect(keys.kvs.every((kv) => /\/[0-9a-f]+$/.test(kv.key.toString()))).toBe(true);
      // the GARP went out with the address
      const leaderHost = hosts.find((h) => h.name === first.host)!;
      expect(leaderHost.commands.some((c) => c.startsWith(`arping -U -c 1`) && c.endsWith(VIP))).toBe(true);

      // graceful: the holder releases + resigns; the next in the queue takes over
      const leaderIdx = hosts.indexOf(leaderHost);
      await vips[leaderIdx]!.stop();
      const released = events.find((e) => e.type === 'released' && e.host === first.host)!;
      expect(released).toBeDefined();
      expect(events.some((e) => e.type === 'resigned' && e.host === first.host)).toBe(true);
      const second = await waitFor('takeover after graceful stop', () => acquiredAfter(released.t, first.host), 5_000);
      const gracefulMs = second.t - released.t;
      expect(gracefulMs).toBeGreaterThanOrEqual(bands.graceful.min);
      expect(gracefulMs).toBeLessThanOrEqual(bands.graceful.max);
      expect(gracefulMs).toBeLessThan(1500); // the ~instant handover, well inside the 2 s band
      expect(leaderHost.holds(VIP)).toBe(false);
      leaderHost.dead = true;

      // crash: no resign, no revoke; the key goes when etcd expires the session lease
      const secondHost = hosts.find((h) => h.name === second.host)!;
      await sleep(200);
      const crashAt = now();
      vips[hosts.indexOf(secondHost)]!.simulateCrash();
      secondHost.dead = true;
      const third = await waitFor('takeover after crash', () => acquiredAfter(crashAt, second.host), 15_000);
      const crashMs = third.t - crashAt;
      const T = topo.timers.talosVip.sessionTtlS * 1000;
      expect(crashMs).toBeGreaterThanOrEqual(bands.crash.min);
      expect(crashMs).toBeLessThanOrEqual(bands.crash.max);
      // single etcd member: no leader change, so tighter: [T − T/3, T + lessor tick + margin]
      expect(crashMs).toBeGreaterThanOrEqual(T - T / 3 - 50);
      expect(crashMs).toBeLessThanOrEqual(T + LESSOR_TICK_MS + 1000);
      expect(secondHost.holds(VIP)).toBe(true); // a SIGKILLed process leaves its address behind
      expect(events.some((e) => e.type === 'resigned' && e.host === second.host)).toBe(false);

      expect(sampler.max()).toBe(1);
      expect(events.filter((e) => e.type === 'acquired').map((e) => e.host)).toEqual([first.host, second.host, third.host]);
    } finally {
      sampler.stop();
      await Promise.all(vips.map((v) => v.stop().catch(() => undefined)));
      db.close();
    }
  }, 45_000);
});

describe('kube-vip lease election on a real etcd', () => {
  it('one holder; graceful stop releases the Lease; a crash is taken over after the lease duration', async () => {
    const topo = topology();
    const events: AgentEvent[] = [];
    const hosts = topo.nodes.map((n) => new FakeHost(n.name, topo, events));
    const backends = topo.nodes.map((n) => ({ name: n.name, ip: n.ip }));
    const config: KubeVipConfig = {
      api: { mode: 'arp', vip: VIP, port: 6443, link: 'eth0', leaseName: 'plndr-cp-lock-test', leaseNamespace: 'kube-system', lbEnable: true, backends, backendCheckIntervalS: 0.2 },
    };
    const api = await apiServers(topo, () => url);
    const down = new Set<string>();
    const kvs = hosts.map((h, i) => {
      const k = new KubeVip(h.ctx(), { ...config, apiServers: [api.urls[i]!] });
      k.checkBackend = async (ip) => !down.has(ip);
      return k;
    });
    const sampler = holderSampler(hosts, VIP);
    const bands = kubeVipExpected(topo);
    const acquiredAfter = (t: number, notHost?: string) => events.find((e) => e.type === 'acquired' && e.t >= t && e.host !== notHost);
    const db = new Etcd3({ hosts: url });
    const lease = async () => JSON.parse((await db.get('/registry/leases/kube-system/plndr-cp-lock-test').string())!) as LeaseRecord;
    try {
      await Promise.all(kvs.map((k) => k.start()));
      const first = await waitFor('first acquired', () => acquiredAfter(0), 10_000);
      const h1 = hosts.find((h) => h.name === first.host)!;
      expect((await lease()).holderIdentity).toBe(first.host);
      expect((await lease()).leaseDurationSeconds).toBe(3);

      // lb_enable: the holder DNATs round robin over every healthy control plane…
      const allThree = lbRuleset(VIP, 6443, backends.map((b) => b.ip));
      await waitFor('nft rules with 3 backends', () => h1.commands.some((c) => c === `nft -f - <<${allThree}`), 3_000);
      // …and rewrites them when a backend fails its /version check
      down.add('127.0.0.13');
      const two = lbRuleset(VIP, 6443, ['127.0.0.11', '127.0.0.12']);
      await waitFor('backend-down event', () => events.some((e) => e.type === 'backend-down' && e.ip === '127.0.0.13' && e.host === first.host), 3_000);
      const lastNft = () => h1.commands.filter((c) => c.startsWith('nft -f')).at(-1);
      await waitFor('nft rules without the failed backend', () => lastNft() === `nft -f - <<${two}`, 3_000);
      // the backend comes back at its next check
      down.clear();
      await waitFor('backend-up event', () => events.some((e) => e.type === 'backend-up' && e.ip === '127.0.0.13'), 3_000);
      await waitFor('nft rules with the backend back', () => lastNft() === `nft -f - <<${allThree}`, 3_000);
      // followers run no load balancer
      for (const h of hosts.filter((x) => x !== h1)) expect(h.commands.some((c) => c.startsWith('nft -f'))).toBe(false);

      // graceful: ReleaseOnCancel empties the holder; a follower takes it at its next retry
      await kvs[hosts.indexOf(h1)]!.stop();
      const released = events.find((e) => e.type === 'released' && e.host === first.host)!;
      expect(released).toBeDefined();
      expect(h1.commands).toContain('nft delete table ip kube-vip');
      const second = await waitFor('takeover after graceful stop', () => acquiredAfter(released.t, first.host), 5_000);
      const gracefulMs = second.t - released.t;
      expect(gracefulMs).toBeGreaterThanOrEqual(bands.graceful.min);
      expect(gracefulMs).toBeLessThanOrEqual(bands.graceful.max);
      h1.dead = true;
      const afterGraceful = await lease();
      expect(afterGraceful.holderIdentity).toBe(second.host);
      expect(afterGraceful.leaseTransitions).toBe(1);

      // crash: no release; followers wait for the lease duration since they last saw a renewal
      const h2 = hosts.find((h) => h.name === second.host)!;
      await sleep(300);
      const crashAt = now();
      kvs[hosts.indexOf(h2)]!.simulateCrash();
      h2.dead = true;
      const third = await waitFor('takeover after crash', () => acquiredAfter(crashAt, second.host), 15_000);
      const crashMs = third.t - crashAt;
      expect(crashMs).toBeGreaterThanOrEqual(bands.crash.min);
      expect(crashMs).toBeLessThanOrEqual(bands.crash.max);
      const afterCrash = await lease();
      expect(afterCrash.holderIdentity).toBe(third.host);
      expect(afterCrash.leaseTransitions).toBe(2);
      expect(h2.holds(VIP)).toBe(true); // the killed process never removed its address

      expect(sampler.max()).toBe(1);
      expect(new Set([first.host, second.host, third.host]).size).toBe(3);
    } finally {
      sampler.stop();
      await Promise.all(kvs.map((k) => k.stop().catch(() => undefined)));
      await api.stop();
      db.close();
    }
  }, 45_000);

  it('per-Service election: ETP Local Services only on nodes with a local endpoint, one holder per Service', async () => {
    const topo = topology();
    const events: AgentEvent[] = [];
    const hosts = topo.nodes.map((n) => new FakeHost(n.name, topo, events));
    const api = await apiServers(topo, () => url);
    const mk = (local: boolean, i: number): KubeVipConfig => ({
      apiServers: [api.urls[i]!],
      services: {
        mode: 'arp',
        election: 'per-service',
        items: [
          { name: 'web-t', namespace: 'default', ip: '10.99.0.201', externalTrafficPolicy: 'Cluster', localEndpoint: local },
          { name: 'web-local-t', namespace: 'default', ip: '10.99.0.202', externalTrafficPolicy: 'Local', localEndpoint: local },
        ],
      },
    });
    // cp3 has no local endpoint
    const kvs = hosts.map((h, i) => new KubeVip(h.ctx(), mk(i < 2, i)));
    const db = new Etcd3({ hosts: url });
    try {
      await Promise.all(kvs.map((k) => k.start()));
      await waitFor('both Services held', () => hosts.some((h) => h.holds('10.99.0.201')) && hosts.some((h) => h.holds('10.99.0.202')), 10_000);
      await sleep(1500);
      for (const ip of ['10.99.0.201', '10.99.0.202']) expect(hosts.filter((h) => h.holds(ip))).toHaveLength(1);
      expect(hosts[2]!.holds('10.99.0.202')).toBe(false);
      // cp3 never campaigned for the Local Service's lease
      const local = JSON.parse((await db.get('/registry/leases/default/kubevip-web-local-t').string())!) as LeaseRecord;
      expect(['cp1', 'cp2']).toContain(local.holderIdentity);
      expect(events.some((e) => e.host === 'cp3' && e.type === 'leader' && e.lease === 'default/kubevip-web-local-t')).toBe(false);
    } finally {
      await Promise.all(kvs.map((k) => k.stop()));
      await api.stop();
      db.close();
    }
    // graceful stop of everyone: every address removed
    for (const h of hosts) expect(h.holds('10.99.0.201') || h.holds('10.99.0.202')).toBe(false);
  }, 30_000);
});

/** A TCP proxy to etcd that can black-hole everything (a partition: no RST, calls just hang). */
class CuttableProxy {
  private server?: Server;
  private readonly sockets: Socket[] = [];
  private cut = false;
  url = '';

  async start(target: string): Promise<void> {
    const { hostname, port } = new URL(target);
    this.server = createServer((c) => {
      this.sockets.push(c);
      c.on('error', () => undefined);
      if (this.cut) return; // accepted, never answered
      const u = connect({ host: hostname, port: Number(port) });
      this.sockets.push(u);
      u.on('error', () => undefined);
      c.on('data', (d) => void (this.cut || u.write(d)));
      u.on('data', (d) => void (this.cut || c.write(d)));
      c.on('close', () => u.destroy());
      u.on('close', () => c.destroy());
    });
    const p = await freePort();
    await new Promise<void>((resolve) => this.server!.listen(p, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${p}`;
  }

  blackhole(): void {
    this.cut = true;
  }

  close(): void {
    for (const s of this.sockets) s.destroy();
    this.server?.close();
  }
}

describe('partition: the holder is cut off from etcd and must notice by itself', () => {
  it('talos-vip: the cut-off holder drops the VIP when its session has had no keepalive for a TTL; another takes over on lease expiry', async () => {
    const topo = topology();
    const events: AgentEvent[] = [];
    const hosts = topo.nodes.map((n) => new FakeHost(n.name, topo, events));
    const proxy = new CuttableProxy();
    await proxy.start(url);
    const vips = hosts.map((h, i) => new TalosVip(h.ctx(), { vip: VIP, link: 'eth0', endpoints: [i === 0 ? proxy.url : url], watchApiserver: false, etcdHealth: HEALTH }));
    const T = topo.timers.talosVip.sessionTtlS * 1000;
    const bands = talosVipExpected(topo);
    try {
      await vips[0]!.start();
      await waitFor('cp1 holds the VIP', () => hosts[0]!.holds(VIP), 10_000);
      await Promise.all(vips.slice(1).map((v) => v.start()));
      await sleep(1200);
      const cutAt = now();
      proxy.blackhole();
      const released = await waitFor('cp1 lets go', () => events.find((e) => e.type === 'released' && e.host === 'cp1'), 10_000);
      // the session ends a TTL after the last answered keepalive (0…TTL/3 before the cut), checked every 500 ms
      expect(released.t - cutAt).toBeGreaterThanOrEqual(T - T / 3 - 50);
      expect(released.t - cutAt).toBeLessThanOrEqual(T + 600);
      expect(String(released.reason)).toMatch(/etcd session closed/);
      const taken = await waitFor('takeover', () => events.find((e) => e.type === 'acquired' && e.host !== 'cp1'), 10_000);
      expect(taken.t - cutAt).toBeGreaterThanOrEqual(bands.crash.min);
      expect(taken.t - cutAt).toBeLessThanOrEqual(bands.crash.max);
      // while cut off it cannot campaign again: its etcd is unhealthy
      await waitFor('etcd-unhealthy on cp1', () => events.some((e) => e.type === 'etcd-unhealthy' && e.host === 'cp1'), 5_000);
      expect(hosts[0]!.holds(VIP)).toBe(false);
    } finally {
      await Promise.all(vips.map((v) => v.stop().catch(() => undefined)));
      proxy.close();
    }
  }, 40_000);

  it('kube-vip: the leader whose API server is cut off from etcd gives up after the renew deadline, drops the VIP and restarts; another takes over after the lease duration', async () => {
    const topo = topology();
    const events: AgentEvent[] = [];
    const hosts = topo.nodes.map((n) => new FakeHost(n.name, topo, events));
    const proxy = new CuttableProxy();
    await proxy.start(url);
    // cp1's API server reaches etcd through the proxy: the cut leaves it listening but unable to answer
    const api = await apiServers(topo, (i) => (i === 0 ? proxy.url : url));
    const mk = (i: number) => new KubeVip(hosts[i]!.ctx(), { apiServers: [api.urls[i]!], api: { mode: 'arp', vip: VIP, port: 6443, link: 'eth0', leaseName: 'plndr-cp-lock-part' } });
    const kvs = [0, 1, 2].map(mk);
    const { renewDeadlineS, retryPeriodS } = topo.timers.kubeVip;
    const bands = kubeVipExpected(topo);
    try {
      await kvs[0]!.start();
      await waitFor('cp1 holds the VIP', () => hosts[0]!.holds(VIP), 10_000);
      await Promise.all(kvs.slice(1).map((k) => k.start()));
      await sleep(1200);
      const cutAt = now();
      proxy.blackhole();
      const released = await waitFor('cp1 gives up', () => events.find((e) => e.type === 'released' && e.host === 'cp1'), 15_000);
      const gaveUp = released.t - cutAt;
      // the renewal fails once RenewDeadline has passed; client-go then tries to release the lease
      // (a get within RenewDeadline, which hangs too) before OnStoppedLeading drops the VIP
      expect(gaveUp).toBeGreaterThanOrEqual((renewDeadlineS - retryPeriodS) * 1000 - 50);
      expect(gaveUp).toBeLessThanOrEqual((2 * renewDeadlineS + retryPeriodS) * 1000 + 500);
      expect(events.some((e) => e.type === 'restart' && e.host === 'cp1')).toBe(true);
      const taken = await waitFor('takeover', () => events.find((e) => e.type === 'acquired' && e.host !== 'cp1'), 10_000);
      expect(taken.t - cutAt).toBeGreaterThanOrEqual(bands.crash.min);
      expect(taken.t - cutAt).toBeLessThanOrEqual(bands.crash.max);
      expect(hosts[0]!.holds(VIP)).toBe(false);
    } finally {
      await Promise.all(kvs.map((k) => k.stop().catch(() => undefined)));
      await api.stop();
      proxy.close();
    }
  }, 40_000);

  it('kube-vip: the leader whose own API server is gone (the node and etcd fine) cannot renew and hands over', async () => {
    const topo = topology();
    const events: AgentEvent[] = [];
    const hosts = topo.nodes.map((n) => new FakeHost(n.name, topo, events));
    const api = await apiServers(topo, () => url);
    const kvs = hosts.map((h, i) => new KubeVip(h.ctx(), { apiServers: [api.urls[i]!], api: { mode: 'arp', vip: VIP, port: 6443, link: 'eth0', leaseName: 'plndr-cp-lock-apiserver' } }));
    const bands = kubeVipExpected(topo);
    const { renewDeadlineS } = topo.timers.kubeVip;
    try {
      await kvs[0]!.start();
      await waitFor('cp1 holds the VIP', () => hosts[0]!.holds(VIP), 10_000);
      await Promise.all(kvs.slice(1).map((k) => k.start()));
      await sleep(1200);
      const stopAt = now();
      await api.servers[0]!.stop(); // cp1's kube-apiserver: connections refused from now on
      const released = await waitFor('cp1 gives up', () => events.find((e) => e.type === 'released' && e.host === 'cp1'), 10_000);
      // refused at once, so no request hangs: it gives up when RenewDeadline has passed
      expect(released.t - stopAt).toBeLessThanOrEqual(renewDeadlineS * 1000 + 500);
      const taken = await waitFor('takeover', () => events.find((e) => e.type === 'acquired' && e.host !== 'cp1'), 10_000);
      expect(taken.t - stopAt).toBeGreaterThanOrEqual(bands.crash.min);
      expect(taken.t - stopAt).toBeLessThanOrEqual(bands.crash.max);
      expect(hosts[0]!.holds(VIP)).toBe(false);
    } finally {
      await Promise.all(kvs.map((k) => k.stop().catch(() => undefined)));
      await api.stop();
    }
  }, 40_000);
});

describe('talos-vip as the pinned release runs it', () => {
  const key = (db: Etcd3) => db.getAll().prefix(`${talosElectionKey(VIP)}/`).sort('Create', 'Ascend').strings();
  const base = (extra: Partial<TalosVipConfig> = {}): TalosVipConfig => ({ vip: VIP, link: 'eth0', endpoints: [url], watchApiserver: false, etcdHealth: HEALTH, ...extra });

  it('campaigns only once its etcd health check has passed (first check after the initial delay), not at start', async () => {
    const topo = topology();
    const events: AgentEvent[] = [];
    const host = new FakeHost('cp1', topo, events);
    const initialDelayMs = 1500;
    const v = new TalosVip(host.ctx(), base({ etcdHealth: { ...HEALTH, initialDelayMs } }));
    const startedAt = now();
    try {
      await v.start();
      const campaign = await waitFor('campaign', () => events.find((e) => e.type === 'campaign'), 10_000);
      expect(campaign.t - startedAt).toBeGreaterThanOrEqual(initialDelayMs - 20);
      expect(events.find((e) => e.type === 'etcd-healthy')!.t).toBeLessThanOrEqual(campaign.t);
    } finally {
      await v.stop();
    }
  }, 20_000);

  for (const [version, keyStays] of [
    ['v1.11.6', true],
    ['v1.13.9', false],
  ] as const) {
    it(`${version}: a queued node's key after its campaign is cancelled (operator removed) ${keyStays ? 'stays until its lease expires' : 'is revoked at once'}; a graceful shutdown revokes it in every release`, async () => {
      const topo = topology(version);
      const events: AgentEvent[] = [];
      const hosts = topo.nodes.slice(0, 2).map((n) => new FakeHost(n.name, topo, events));
      const vips = hosts.map((h) => new TalosVip(h.ctx(), base()));
      const db = new Etcd3({ hosts: url });
      const T = topo.timers.talosVip.sessionTtlS * 1000;
      try {
        await vips[0]!.start();
        await waitFor('cp1 holds', () => hosts[0]!.holds(VIP), 10_000);
        await vips[1]!.start();
        await waitFor('cp2 queued', () => events.some((e) => e.type === 'campaign' && e.host === 'cp2'), 10_000);
        await sleep(300);
        expect(Object.values(await key(db))).toEqual(['cp1', 'cp2']);
        const removedAt = now();
        await vips[1]!.remove();
        const left = Object.values(await key(db));
        if (keyStays) {
          expect(left).toEqual(['cp1', 'cp2']);
          // gone when etcd expires the orphaned lease: one TTL after its last keepalive
          const deadline = now() + T + 3000;
          while (Object.values(await key(db)).length !== 1) {
            if (now() > deadline) throw new Error('the stale key did not expire');
            await sleep(100);
          }
          expect(now() - removedAt).toBeGreaterThanOrEqual(T - T / 3 - 100);
        } else {
          expect(left).toEqual(['cp1']);
        }
        // a graceful shutdown (KubeletLifecycle teardown, context live): the queued key goes at once
        const again = new TalosVip(hosts[1]!.ctx(), base());
        await again.start();
        await waitFor('cp2 queued again', () => events.filter((e) => e.type === 'campaign' && e.host === 'cp2').length === 2, 10_000);
        await sleep(300);
        expect(Object.values(await key(db))).toEqual(['cp1', 'cp2']);
        await again.stop();
        expect(Object.values(await key(db))).toEqual(['cp1']);
      } finally {
        await Promise.all(vips.map((v) => v.stop().catch(() => undefined)));
        db.close();
      }
    }, 30_000);
  }

  it('keeps the VIP while the kube-apiserver static pod is listed, even with nothing on :6443; releases at the next static-pod refresh once it is not', async () => {
    const topo = topology();
    const events: AgentEvent[] = [];
    const host = new FakeHost('cp1', topo, events);
    const refreshMs = 300;
    const v = new TalosVip(host.ctx(), base({ watchApiserver: true, staticPodRefreshMs: refreshMs }));
    let listed = true;
    v.apiserverListed = () => listed;
    try {
      await v.start();
      await waitFor('cp1 holds', () => host.holds(VIP), 10_000);
      await sleep(4 * refreshMs); // nothing listens on 127.0.0.1:6443 here: the VIP stays
      expect(host.holds(VIP)).toBe(true);
      const goneAt = now();
      listed = false;
      const released = await waitFor('released', () => events.find((e) => e.type === 'released'), 5000);
      expect(released.reason).toBe('kube-apiserver static pod destroyed');
      expect(released.t - goneAt).toBeLessThanOrEqual(refreshMs + 300);
    } finally {
      await v.stop();
    }
  }, 20_000);
});
