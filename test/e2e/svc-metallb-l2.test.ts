/**
 * MetalLB L2 failover on the real kernel (root): the ci-smb topology (memberlist probes every
 * 500 ms) in `tlx-` namespaces, one real agent per node (`src/emulation/agent/main.ts`) running the base
 * components (echo, kube-proxy) and the `metallb` speaker exactly as metallb-l2 renders them.
 * The client probes the ETP Local Service through the router (fresh connection every 10 ms):
 * - the speakers converge on ONE holder of each Service IP, the first usable candidate in
 *   sha256(node#ip) order, and the pod sees the client's IP;
 * - crash of the holder (all its traffic dropped, agent SIGKILLed): another speaker declares it
 *   dead, takes the IP and sends gratuitous ARP; the client-seen outage lies in the band
 *   metallb-l2 predicts from the same timers;
 * - the crashed node comes back (agent restarted), refutes its death and rejoins;
 * - the holder answers ARP from user space (the IP on lo, the kernel told not to answer): a
 *   partitioned holder is silent, a FROZEN holder is silent at once, and the other candidate takes
 *   over inside the band the test computes from the memberlist timers;
 * - graceful shutdown of the holder (SIGTERM): memberlist leave, sub-second move.
 * Every band is computed here from the timers and memberlist's rules.
 * Namespaces tlx-mlb<pid>-*, removed in afterAll.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ctxOf } from '../helpers/roles.js';
import { readFileSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadLab, REPO_ROOT } from '../../src/model/load.js';
import { buildNetwork, destroyNetwork, renderNetworkPlan, type NetworkPlan } from '../../src/providers/runtimes/netns/network.js';
import { LabState } from '../../src/state/state.js';
import { run, spawnDaemon, stopProcess, signalGroup, sleep, isAlive, type Daemon } from '../../src/util/proc.js';
import { call } from '../../src/emulation/agent/rpc.js';
import { svcBaseComponents } from '../../src/emulation/base-svc.js';
import { createHash } from 'node:crypto';
import { metallbL2 } from '../../src/strategies/metallb-l2/index.js';
import { computeOutage } from '../../src/traffic/outage.js';
import type { AgentEvent, AgentSpec, ComponentSpec } from '../../src/emulation/agent/types.js';
import type { LbService, Topology } from '../../src/model/types.js';
import { useTempDirs } from '../helpers/tmp.js';
import { probePods } from '../helpers/pod-probe.js';
import { isolate, unisolate } from '../../src/providers/runtimes/netns/faults.js';

const mkTemp = useTempDirs();
const prefix = `tlx-mlb${process.pid}`;
let plan: NetworkPlan | undefined;
const agents = new Map<string, { daemon: Daemon; socket: string; specFile: string }>();
let t: Topology;
let dir: string;
let svc: LbService;
let components: Record<string, ComponentSpec[]>;

const ns = (host: string) => plan!.hostNs[host]!;
const clientIp = () => t.clients[0]!.interfaces[0]!.ip;

async function startAgent(host: string): Promise<void> {
  const socket = join(dir, `${host}.sock`);
  const specFile = join(dir, `${host}.spec.json`);
  const spec: AgentSpec = { host, ns: ns(host), stateDir: dir, socket, eventsFile: join(dir, `${host}.events.jsonl`), topology: t, components: components[host]! };
  writeFileSync(specFile, JSON.stringify(spec));
  const daemon = spawnDaemon({ name: `${host}/agent`, cmd: 'node', args: ['--import', 'tsx', 'src/emulation/agent/main.ts', specFile], ns: ns(host), logFile: join(dir, `${host}.log`), cwd: REPO_ROOT });
  agents.set(host, { daemon, socket, specFile });
  const deadline = Date.now() + 30_000;
  for (;;) {
    const r = await call<{ components: string[] }>(socket, 'ping', undefined, 1000).catch(() => null);
    if (r && r.components.includes('metallb')) return;
    if (!daemon.isRunning() || Date.now() > deadline) throw new Error(`agent ${host} did not come up:\n${daemon.logTail(40)}`);
    await sleep(100);
  }
}

/** nodes holding `ip` right now (MetalLB holds it from user space: on `lo`, never on the LAN link) */
async function holders(ip: string): Promise<string[]> {
  const out: string[] = [];
  for (const n of t.nodes) {
    const r = await run('ip', ['-o', '-4', 'addr', 'show'], { ns: ns(n.name) });
    if (r.stdout.includes(` ${ip}/32 `)) out.push(n.name);
  }
  return out;
}

async function waitForSingleHolder(ip: string, notOn: string[] = [], timeoutMs = 15_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const h = (await holders(ip)).filter((x) => !notOn.includes(x));
    const all = await holders(ip);
    if (h.length === 1 && all.length === 1) return h[0]!;
    if (Date.now() > deadline) throw new Error(`no single holder of ${ip}: ${all.join(', ') || 'none'}`);
    await sleep(200);
  }
}

/**
 * Which node announces `ip`, by MetalLB's rule restated here (not asked of the mechanism): the
 * speakers sort the usable nodes by sha256(node + "#" + ip) and the first one announces
 * (metallb speaker/layer2_controller.go ShouldAnnounce, v0.14).
 */
function l2Announcer(ip: string, usable: readonly string[]): string {
  const h = (n: string) => createHash('sha256').update(`${n}#${ip}`).digest();
  return [...usable].sort((a, b) => Buffer.compare(h(a), h(b)))[0]!;
}

function events(host: string): AgentEvent[] {
  const f = join(dir, `${host}.events.jsonl`);
  return existsSync(f) ? readFileSync(f, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as AgentEvent) : [];
}

/**
 * The crash/freeze band of MetalLB L2 from the memberlist timers and hashicorp/memberlist's rules
 * (config.go DefaultLANConfig, util.go suspicionTimeout, state.go probeNode/suspectNode), restated
 * here: n speakers; suspicion min = SuspicionMult × max(1, log10(n)) × ProbeInterval, max = 6 ×
 * min, shrinking to min with k = SuspicionMult − 2 confirmations (0 when n − 2 < k). Earliest
 * death: a failed probe (ack timeout) + min. Latest: a survivor probes the victim within
 * min(2 × survivors − 1, 6) intervals, the probe fails one interval later, then either min, or the
 * k confirmations (≈ 3(k+1) intervals + 1), never past first suspicion + max. Then the new
 * announcer hears it (gossip: GossipInterval × (ceil(log_GossipNodes n) + 1)), holds the IP and
 * sends gratuitous ARP (+300 ms for the agent's reconcile).
 */
function l2TakeoverBand(): { min: number; max: number } {
  const n = t.nodes.length;
  const m = t.timers.metallb;
  const I = m.probeIntervalMs;
  const minT = m.suspicionMult * Math.max(1, Math.log10(Math.max(1, n))) * I;
  const maxT = 6 * minT;
  const k = n - 2 < m.suspicionMult - 2 ? 0 : m.suspicionMult - 2;
  const firstSuspect = Math.min(2 * (n - 1) - 1, 6) * I + I;
  const confirmed = k > 0 ? Math.min(firstSuspect + maxT, 3 * (k + 1) * I + I) : 0;
  const gossip = m.gossipMs * (Math.ceil(Math.log(n) / Math.log(3)) + 1) + 300;
  return { min: m.probeTimeoutMs + minT, max: Math.max(firstSuspect + minT, confirmed) + gossip };
}

/** MACs that answer an ARP request for `ip` from the router within `waitS` seconds */
async function arpAnswers(ip: string, waitS = 1): Promise<string[]> {
  const r = await run('arping', ['-c', String(waitS + 1), '-w', String(waitS), '-I', 'eth0', ip], { ns: ns(t.routers[0]!.name), reject: false });
  return [...new Set([...r.stdout.matchAll(/\[([0-9A-Fa-f:]{17})\]/g)].map((x) => x[1]!.toLowerCase()))];
}

const macOf = async (host: string) => (await run('cat', ['/sys/class/net/eth0/address'], { ns: ns(host) })).stdout.trim().toLowerCase();

/** open-loop probe from the client: a fresh connection every 10 ms for durationMs */
const probe = (url: string, durationMs: number) => probePods(ns(t.clients[0]!.name), url, durationMs);

async function crash(host: string): Promise<void> {
  // the sim's crash: every packet of the node dropped (ARP too), then SIGKILL (no goodbye)
  await isolate(t.nodes.find((n) => n.name === host)!, ns(host));
  const a = agents.get(host)!;
  signalGroup(a.daemon.pid, 'SIGKILL');
  for (let i = 0; i < 100 && isAlive(a.daemon.pid); i++) await sleep(10);
}

async function restore(host: string): Promise<void> {
  await unisolate(ns(host));
  await startAgent(host);
}

beforeAll(async () => {
  expect(process.getuid?.()).toBe(0);
  const lab = loadLab(join(REPO_ROOT, 'test/fixtures/labs/ci-smb.yaml'), { repoRoot: REPO_ROOT });
  // ci-smb shortens only the grace (4 s); the kubelet's Lease must then renew faster than that,
  // or every node flaps NotReady between renewals: renew 1 s (4 s × 0.25), passes every 0.5 s
  t = { ...lab.topology, timers: { ...lab.topology.timers, kubernetes: { ...lab.topology.timers.kubernetes, nodeLeaseDurationS: 4, nodeMonitorPeriodS: 0.5 } } };
  svc = t.services.find((s) => s.externalTrafficPolicy === 'Local')!;
  dir = mkTemp('svc-mlb-');
  plan = renderNetworkPlan(t, prefix);
  const state = LabState.create({ id: 'svcmlb', prefix, lab: 'ci-smb', labFile: lab.file, provider: 'sim', createdAt: new Date().toISOString(), ownerPid: process.pid, status: 'starting' }, mkTemp('svc-mlb-state-'));
  await buildNetwork(plan, state);
  const base = svcBaseComponents(t);
  const mech = metallbL2.svc!.render(ctxOf(t, 'talos-vip+metallb-l2')).sim!.components!;
  components = Object.fromEntries(t.nodes.map((n) => [n.name, [...base[n.name]!, ...mech[n.name]!]]));
  await Promise.all(t.nodes.map((n) => startAgent(n.name)));
}, 120_000);

afterAll(async () => {
  for (const { daemon } of agents.values()) await stopProcess(daemon.pid, 3000);
  if (plan) await destroyNetwork(plan);
  const left = (await run('ip', ['netns', 'list'])).stdout.split('\n').filter((l) => l.startsWith(prefix));
  expect(left).toEqual([]);
}, 60_000);

describe('MetalLB L2 in real namespaces (ci-smb timers)', () => {
  let holder: string;

  it('converges on one holder per Service IP: the first candidate in sha256(node#ip) order', async () => {
    for (const s of t.services) {
      const h = await waitForSingleHolder(s.ip);
      expect(h).toBe(l2Announcer(s.ip, ['w1', 'w2']));
    }
    holder = await waitForSingleHolder(svc.ip);
    const ok = await probe(`http://${svc.ip}:${svc.port}/`, 500);
    expect(ok.length).toBeGreaterThan(20);
    expect(ok.every((s) => s.ok && s.node === holder && s.clientIp === clientIp())).toBe(true);
  });

  it('crash of the holder: the other candidate takes over inside the predicted band', async () => {
    const band = { ...l2TakeoverBand(), basis: 'memberlist detection + gossip + gratuitous ARP (computed by the test)' };
    const probing = probe(`http://${svc.ip}:${svc.port}/`, 1000 + band.max + 2000);
    await sleep(1000);
    const injectAt = Date.now();
    await crash(holder);
    const samples = await probing;
    const o = computeOutage(samples, { injectAt, recoverSuccesses: 5 });
    const next = (await holders(svc.ip)).filter((h) => h !== holder);
    const trace = t.nodes
      .flatMap((n) => events(n.name).filter((e) => e.t >= injectAt && e.type !== 'garp-sent').map((e) => `+${Math.round(e.t - injectAt)} ms ${e.host} ${e.type} ${e.node ?? e.ip ?? ''}`))
      .sort((a, b) => parseInt(a.slice(1)) - parseInt(b.slice(1)))
      .join('; ');
    console.info(`metallb-l2 crash of ${holder}: client outage ${o.outageMs} ms (band ${band.min}–${Math.round(band.max)} ms), now on ${next.join(',')}`);
    expect(next).toHaveLength(1);
    expect(o.recovered).toBe(true);
    expect(o.nodeAfter).toBe(next[0]);
    expect(o.outageMs, `band ${band.min}–${band.max} ms (${band.basis}); events: ${trace}`).toBeGreaterThanOrEqual(band.min);
    expect(o.outageMs, `band ${band.min}–${band.max} ms; events: ${trace}`).toBeLessThanOrEqual(band.max);
    const ev = events(next[0]!).filter((e) => e.t >= injectAt);
    expect(ev.some((e) => e.type === 'peer-down' && e.node === holder && e.state === 'dead')).toBe(true);
    expect(ev.some((e) => e.type === 'acquired' && e.ip === svc.ip)).toBe(true);
    expect(ev.filter((e) => e.type === 'garp-sent' && e.ip === svc.ip).length).toBeGreaterThanOrEqual(1);
    holder = next[0]!;
  }, 60_000);

  it('the crashed node comes back, refutes its death and is a member everywhere again', async () => {
    const crashed = t.nodes.map((n) => n.name).find((n) => n !== holder && ['w1', 'w2'].includes(n))!;
    await restore(crashed);
    const deadline = Date.now() + 15_000;
    let members: Record<string, string> = {};
    while (Date.now() < deadline) {
      members = await call<Record<string, string>>(agents.get('cp1')!.socket, 'metallb.members');
      if (members[crashed] === 'alive') break;
      await sleep(200);
    }
    expect(members[crashed]).toBe('alive');
    // one holder again (the hash winner takes its IP back)
    holder = await waitForSingleHolder(svc.ip);
    expect(holder).toBe(l2Announcer(svc.ip, ['w1', 'w2']));
  }, 60_000);

  it('the holder answers ARP from user space: the IP is on lo, not on the LAN link, and the kernel is told not to answer', async () => {
    const h = await waitForSingleHolder(svc.ip);
    expect(await arpAnswers(svc.ip)).toEqual([await macOf(h)]);
    expect((await run('ip', ['-o', '-4', 'addr', 'show', 'dev', 'eth0'], { ns: ns(h) })).stdout).not.toContain(svc.ip);
    expect((await run('ip', ['-o', '-4', 'addr', 'show', 'dev', 'lo'], { ns: ns(h) })).stdout).toContain(` ${svc.ip}/32 `);
    expect((await run('sysctl', ['-n', 'net.ipv4.conf.eth0.arp_ignore', 'net.ipv4.conf.eth0.arp_announce'], { ns: ns(h) })).stdout.split(/\s+/).filter(Boolean)).toEqual(['1', '2']);
  });

  it('partition of the holder: its responder is silent too (dropped at the link, below ARP and IP)', async () => {
    const h = await waitForSingleHolder(svc.ip);
    await isolate(t.nodes.find((n) => n.name === h)!, ns(h));
    try {
      expect(await arpAnswers(svc.ip)).toEqual([]);
    } finally {
      await unisolate(ns(h));
    }
    // back before memberlist declared it (suspicion ≥ 2 s): still the holder, answering
    expect(await arpAnswers(svc.ip)).toEqual([await macOf(h)]);
  }, 30_000);

  it('freeze of the holder: a frozen speaker is silent for ARP at once; the other candidate takes over inside the band', async () => {
    const h = await waitForSingleHolder(svc.ip);
    const band = l2TakeoverBand();
    const probing = probe(`http://${svc.ip}:${svc.port}/`, 1000 + band.max + 2000);
    await sleep(1000);
    const injectAt = Date.now();
    signalGroup(agents.get(h)!.daemon.pid, 'SIGSTOP');
    try {
      // the kernel of a frozen node would still answer; MetalLB's node does not
      expect(await arpAnswers(svc.ip)).toEqual([]);
      const samples = await probing;
      const o = computeOutage(samples, { injectAt, recoverSuccesses: 5 });
      const next = (await holders(svc.ip)).filter((x) => x !== h);
      console.info(`metallb-l2 freeze of ${h}: client outage ${o.outageMs} ms (band ${band.min}–${Math.round(band.max)} ms), now on ${next.join(',')}`);
      expect(next).toHaveLength(1);
      expect(await arpAnswers(svc.ip)).toEqual([await macOf(next[0]!)]);
      expect(o.recovered).toBe(true);
      expect(o.nodeAfter).toBe(next[0]);
      expect(o.outageMs).toBeGreaterThanOrEqual(band.min);
      expect(o.outageMs).toBeLessThanOrEqual(band.max);
    } finally {
      signalGroup(agents.get(h)!.daemon.pid, 'SIGCONT');
    }
    // thawed: it refutes its death and, first in the hash order, takes its IP back
    expect(await waitForSingleHolder(svc.ip, [], 30_000)).toBe(l2Announcer(svc.ip, ['w1', 'w2']));
    holder = await waitForSingleHolder(svc.ip);
  }, 90_000);

  it('graceful shutdown of the holder: memberlist leave, the IP moves in about a second', async () => {
    // memberlist Leave: a dead message about itself, gossiped every GossipInterval to GossipNodes
    // peers (reaches all n in ceil(log_3 n) + 1 rounds); MetalLB's Leave waits ≤ 1 s; + 500 ms
    // for the reconcile, the hold and the first gratuitous ARP
    const leave = t.timers.metallb.gossipMs * (Math.ceil(Math.log(t.nodes.length) / Math.log(3)) + 1);
    const band = { min: 0, max: Math.max(leave, 1000) + 500 };
    const probing = probe(`http://${svc.ip}:${svc.port}/`, 4000);
    await sleep(1000);
    const injectAt = Date.now();
    await stopProcess(agents.get(holder)!.daemon.pid, 5000);
    const samples = await probing;
    const o = computeOutage(samples, { injectAt, recoverSuccesses: 5 });
    const next = await waitForSingleHolder(svc.ip);
    console.info(`metallb-l2 graceful shutdown of ${holder}: client outage ${o.outageMs} ms, band ${band.min}–${band.max} ms, now on ${next}`);
    expect(next).not.toBe(holder);
    expect(o.recovered).toBe(true);
    expect(o.outageMs).toBeLessThanOrEqual(band.max);
    expect(events(next).some((e) => e.t >= injectAt && e.type === 'peer-down' && e.node === holder && e.state === 'left')).toBe(true);
  }, 60_000);
});
