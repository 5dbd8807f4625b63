/**
 * MetalLB BGP on the real kernel and real FRR (root): the ci-smb topology (BGP keepalive 1 s /
 * hold 3 s) in `tlx-` namespaces, FRR on the router and on the announcing nodes (the speakers
 * metallb-bgp renders, started the way the sim provider starts them), one real agent per node
 * with echo, kube-proxy and the `metallb` speaker in BGP mode. The client probes the ETP Local
 * Service through the router:
 * - both workers announce the /32, the router installs an ECMP route over them, both pods serve,
 *   each sees the client's IP;
 * - graceful stop of one agent: it withdraws, the router keeps one path, no outage to speak of;
 *   started again, it re-announces;
 * - crash of a node (traffic dropped, agent and FRR killed): the router drops the path when the
 *   hold time expires; the client-seen outage lies in the band this test computes from the BGP
 *   timers (never from metallb-bgp's own band function, which would only agree with itself).
 * Namespaces tlx-bgp<pid>-*, FRR run dirs /var/run/frr/tlx-bgp<pid>-*: removed in afterAll.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ctxOf } from '../helpers/roles.js';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadLab, REPO_ROOT } from '../../src/model/load.js';
import { buildNetwork, destroyNetwork, renderNetworkPlan, type NetworkPlan } from '../../src/providers/runtimes/netns/network.js';
import { LabState } from '../../src/state/state.js';
import { run, spawnDaemon, stopProcess, signalGroup, sleep, type Daemon } from '../../src/util/proc.js';
import { call } from '../../src/emulation/agent/rpc.js';
import { svcBaseComponents } from '../../src/emulation/base-svc.js';
import { metallbBgp } from '../../src/strategies/metallb-bgp/index.js'; // render only
import { renderRouterFrr } from '../../src/render/frr.js';
import { startFrr, frrRunDir, type FrrInstance } from '../../src/providers/gear/frr.js';
import { NetnsRuntime } from '../../src/providers/runtimes/netns/runtime.js';
import { computeOutage } from '../../src/traffic/outage.js';
import type { AgentSpec, ComponentSpec } from '../../src/emulation/agent/types.js';
import type { LbService, StrategyRef, Topology } from '../../src/model/types.js';
import type { SimPlan } from '../../src/strategies/types.js';
import { useTempDirs } from '../helpers/tmp.js';
import { probePods } from '../helpers/pod-probe.js';

const mkTemp = useTempDirs();
const prefix = `tlx-bgp${process.pid}`;
let plan: NetworkPlan | undefined;
let rt: NetnsRuntime | undefined;
const frr = new Map<string, FrrInstance>();
const agents = new Map<string, Daemon>();
let t: Topology;
let dir: string;
let svc: LbService;
let components: Record<string, ComponentSpec[]>;
let sim: Partial<SimPlan>;
const strategy: StrategyRef = { id: 'haproxy+metallb-bgp', cp: 'haproxy', svc: 'metallb-bgp', options: {} };

const ns = (host: string) => plan!.hostNs[host]!;
const nodeIp = (name: string) => t.nodes.find((n) => n.name === name)!.ip;

async function startAgent(host: string): Promise<void> {
  const socket = join(dir, `${host}.sock`);
  const specFile = join(dir, `${host}.spec.json`);
  const spec: AgentSpec = { host, ns: ns(host), stateDir: dir, socket, eventsFile: join(dir, `${host}.events.jsonl`), topology: t, components: components[host]! };
  writeFileSync(specFile, JSON.stringify(spec));
  const daemon = spawnDaemon({ name: `${host}/agent`, cmd: 'node', args: ['--import', 'tsx', 'src/emulation/agent/main.ts', specFile], ns: ns(host), logFile: join(dir, `${host}.log`), cwd: REPO_ROOT });
  agents.set(host, daemon);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const r = await call<{ components: string[] }>(socket, 'ping', undefined, 1000).catch(() => null);
    if (r && r.components.includes('metallb')) return;
    if (!daemon.isRunning() || Date.now() > deadline) throw new Error(`agent ${host} did not come up:\n${daemon.logTail(40)}`);
    await sleep(100);
  }
}

/** next hops of the router's kernel route for ip/32 (zebra installs what bgpd chose) */
async function nextHops(ip: string): Promise<string[]> {
  const r = await run('ip', ['-4', 'route', 'show', `${ip}/32`], { ns: ns(t.routers[0]!.name) });
  return [...r.stdout.matchAll(/via (\d+\.\d+\.\d+\.\d+)/g)].map((m) => m[1]!).sort();
}

async function waitHops(ip: string, want: string[], timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    const h = await nextHops(ip);
    if (JSON.stringify(h) === JSON.stringify([...want].sort())) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs) throw new Error(`route ${ip}/32 via ${h.join(',') || 'nothing'}, expected ${want.join(',')}`);
    await sleep(50);
  }
}

const probe = (url: string, durationMs: number) => probePods(ns(t.clients[0]!.name), url, durationMs);

/**
 * bgpd drops a path and zebra reprograms the router's kernel route: milliseconds on an idle box,
 * allowed 1 s on this shared 2-core machine (it also covers the probe's 10 ms resolution).
 */
const FIB_MS = 1000;
/** the victim's speaker withdraws on a graceful stop through vtysh in its namespace: a process spawn, allowed 1 s */
const VTYSH_MS = 1000;

/** the keepalive and hold time a rendered FRR config gives its BGP neighbours (`neighbor X timers K H`) */
function frrTimers(conf: string): { keepaliveMs: number; holdMs: number } {
  const m = /^\s*neighbor \S+ timers (\d+) (\d+)\s*$/m.exec(conf);
  if (!m) throw new Error(`no 'neighbor … timers K H' in:\n${conf}`);
  return { keepaliveMs: Number(m[1]) * 1000, holdMs: Number(m[2]) * 1000 };
}

/**
 * The bands, computed here from the BGP timers of the rendered configs (the router's and the
 * victim speaker's; ci-smb runs no BFD) and the upstream rules:
 * - graceful stop: the speaker withdraws the /32 (BGP UPDATE) at once, the router drops the path
 *   → [0, VTYSH_MS + FIB_MS].
 * - crash: the router keeps the silent node's path until the negotiated hold time H = the smaller
 *   of both sides' hold times (RFC 4271 §4.2) passes since its last KEEPALIVE; the node sent them
 *   every min(its keepalive, H/3) (FRR bgpd/bgp_packet.c bgp_open_receive), so the last one was
 *   0…that before the fault → [H − keepalive, H + FIB_MS].
 */
function bgpExpected(victim: string) {
  const routerConf = renderRouterFrr(t.routers[0]!, t);
  const speakerConf = sim.speakers![victim]!.frrConf;
  if (/\bbfd\b/.test(routerConf + speakerConf)) throw new Error('these bands assume no BFD (ci-smb has none)');
  const router = frrTimers(routerConf);
  const speaker = frrTimers(speakerConf);
  const H = Math.min(router.holdMs, speaker.holdMs);
  const ka = Math.min(speaker.keepaliveMs, H / 3);
  return {
    graceful: { min: 0, max: VTYSH_MS + FIB_MS },
    crash: { min: H - ka, max: H + FIB_MS, basis: `negotiated hold ${H} ms, the victim's last keepalive ≤ ${ka} ms before the fault` },
  };
}

beforeAll(async () => {
  expect(process.getuid?.()).toBe(0);
  const lab = loadLab(join(REPO_ROOT, 'test/fixtures/labs/ci-smb.yaml'), { repoRoot: REPO_ROOT });
  t = lab.topology;
  svc = t.services.find((s) => s.externalTrafficPolicy === 'Local')!;
  dir = mkTemp('svc-bgp-');
  plan = renderNetworkPlan(t, prefix);
  const state = LabState.create({ id: 'svcbgp', prefix, lab: 'ci-smb', labFile: lab.file, provider: 'sim', createdAt: new Date().toISOString(), ownerPid: process.pid, status: 'starting' }, mkTemp('svc-bgp-state-'));
  rt = new NetnsRuntime(t, { prefix, state });
  await rt.build();
  const rtr = t.routers[0]!;
  frr.set(rtr.name, await startFrr(rt, rtr.name, renderRouterFrr(rtr, t)));
  sim = metallbBgp.svc!.render(ctxOf(t, strategy)).sim!;
  for (const [node, sp] of Object.entries(sim.speakers!)) frr.set(node, await startFrr(rt, node, sp.frrConf));
  const base = svcBaseComponents(t);
  components = Object.fromEntries(t.nodes.map((n) => [n.name, [...base[n.name]!, ...sim.components![n.name]!]]));
  await Promise.all(t.nodes.map((n) => startAgent(n.name)));
}, 120_000);

afterAll(async () => {
  for (const d of agents.values()) await stopProcess(d.pid, 3000);
  for (const h of Object.keys(plan?.hostNs ?? {})) for (const p of rt?.procs(h) ?? []) await rt!.stop(p, 3000);
  if (plan) {
    await destroyNetwork(plan);
    for (const h of Object.keys(plan.hostNs)) rmSync(frrRunDir(ns(h)), { recursive: true, force: true });
  }
  const left = (await run('ip', ['netns', 'list'])).stdout.split('\n').filter((l) => l.startsWith(prefix));
  expect(left).toEqual([]);
}, 60_000);

describe('MetalLB BGP in real namespaces with FRR (ci-smb timers)', () => {
  it('both workers announce: the router has an ECMP route over them and both pods serve', async () => {
    expect(Object.keys(sim.speakers!).sort()).toEqual(['w1', 'w2']);
    await waitHops(svc.ip, [nodeIp('w1'), nodeIp('w2')], 20_000);
    const samples = await probe(`http://${svc.ip}:${svc.port}/`, 1500);
    expect(samples.every((s) => s.ok)).toBe(true);
    expect(new Set(samples.map((s) => s.node))).toEqual(new Set(['w1', 'w2']));
    expect(new Set(samples.map((s) => s.clientIp))).toEqual(new Set([t.clients[0]!.interfaces[0]!.ip]));
  }, 60_000);

  it('graceful stop of w1’s agent withdraws its path at once; restarted, it announces again', async () => {
    const band = bgpExpected('w1').graceful;
    const probing = probe(`http://${svc.ip}:${svc.port}/`, 3000);
    await sleep(1000);
    const injectAt = Date.now();
    await stopProcess(agents.get('w1')!.pid, 5000);
    await waitHops(svc.ip, [nodeIp('w2')], 5000);
    const goneAt = Date.now() - injectAt;
    const o = computeOutage(await probing, { injectAt, recoverSuccesses: 5 });
    console.info(`metallb-bgp graceful stop of w1: path gone ≤ ${goneAt} ms, client outage ${o.outageMs} ms (band ${band.min}–${band.max} ms)`);
    expect(goneAt).toBeLessThanOrEqual(band.max);
    expect(o.outageMs).toBeLessThanOrEqual(band.max);
    await startAgent('w1');
    await waitHops(svc.ip, [nodeIp('w1'), nodeIp('w2')], 10_000);
  }, 60_000);

  it('crash of w2: the router drops its path when the hold time expires, inside the predicted band', async () => {
    const band = bgpExpected('w2').crash;
    const probing = probe(`http://${svc.ip}:${svc.port}/`, 1000 + band.max + 2000);
    await sleep(1000);
    const injectAt = Date.now();
    await run('nft', ['-f', '-'], {
      ns: ns('w2'),
      input: 'table inet tlx-crash {\n chain in { type filter hook prerouting priority -300; policy drop; }\n chain out { type filter hook output priority -300; policy drop; }\n}\n',
    });
    signalGroup(agents.get('w2')!.pid, 'SIGKILL');
    for (const p of rt!.procs('w2', 'frr')) await rt!.kill(p);
    await waitHops(svc.ip, [nodeIp('w1')], band.max + 2000);
    const removedAt = Date.now() - injectAt;
    const o = computeOutage(await probing, { injectAt, recoverSuccesses: 5 });
    console.info(`metallb-bgp crash of w2: route gone ≤ ${removedAt} ms, client outage ${o.outageMs} ms (band ${band.min}–${band.max} ms; ${band.basis})`);
    expect(removedAt).toBeGreaterThanOrEqual(band.min);
    expect(removedAt).toBeLessThanOrEqual(band.max + 100);
    expect(o.recovered).toBe(true);
    expect(o.outageMs).toBeGreaterThanOrEqual(band.min - 1000); // the last failed flow was hashed to w2 shortly before
    expect(o.outageMs).toBeLessThanOrEqual(band.max);
    expect(o.nodeAfter).toBe('w1');
  }, 60_000);
});
