/**
 * kube-proxy + echo on the real kernel (root): the smb topology's network in `tlx-` namespaces,
 * the real agent entry (`node --import tsx src/emulation/agent/main.ts spec.json` inside each node's
 * namespace) hosting the components svcBaseComponents renders, and a client on the uplink whose
 * requests cross the router, as in a lab:
 * - ETP Cluster to a node that holds the Service IP (L2 announcer) → answered by some node's echo,
 *   the pod sees the ingress node's IP (masquerade);
 * - ETP Local → answered by the ingress node's own pod, which sees the client's IP;
 * - routed like BGP (the router sends the /32 to a node): Cluster works through any node, Local is
 *   dropped by a node without a local endpoint;
 * - strictARP: nobody answers ARP for a Service IP no node holds;
 * - the TCP stream port greets with the same JSON and echoes;
 * - an endpoint change rewrites the rules in place (table kept and flushed): the lab's probe sees
 *   no failure across syncs (deleting and re-creating the table did make new connections fail);
 * - a drill's stale SYN_SENT conntrack entries (DNATed to a pod that was dead) catch the next
 *   drill's SYNs from the same 4-tuple until every host is flushed between drills (conntrack and
 *   neighbour caches); a crashed node comes back clean;
 * - a pod that terminates (graceful agent stop) is removed from the other nodes' rules at once.
 * Everything lives in namespaces named tlx-svc<pid>-*, removed in afterAll; the root namespace's
 * links and nftables ruleset are compared before and after.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadLab, REPO_ROOT } from '../../src/model/load.js';
import { buildNetwork, destroyNetwork, renderNetworkPlan, type NetworkPlan } from '../../src/providers/runtimes/netns/network.js';
import { LabState } from '../../src/state/state.js';
import { run, spawnDaemon, stopProcess, signalGroup, sleep, type Daemon } from '../../src/util/proc.js';
import { flushTransientState, isolate, resetKernelState, unisolate } from '../../src/providers/runtimes/netns/faults.js';
import { call } from '../../src/emulation/agent/rpc.js';
import { svcBaseComponents } from '../../src/emulation/base-svc.js';
import type { AgentSpec } from '../../src/emulation/agent/types.js';
import type { Topology } from '../../src/model/types.js';
import { useTempDirs } from '../helpers/tmp.js';

const mkTemp = useTempDirs();
const prefix = `tlx-svc${process.pid}`;
let plan: NetworkPlan | undefined;
const agents = new Map<string, { daemon: Daemon; socket: string }>();
let t: Topology;
let dir: string;
let rootBefore: { links: string; nft: string };

const rootState = async () => ({
  links: (await run('ip', ['-o', 'link', 'show'])).stdout.split('\n').map((l) => l.split(':')[1]?.trim()).sort().join(','),
  nft: (await run('nft', ['list', 'ruleset'], { reject: false })).stdout,
});

const ns = (host: string) => plan!.hostNs[host]!;
const node = (name: string) => t.nodes.find((n) => n.name === name)!;
const svc = (name: string) => t.services.find((s) => s.name === name)!;

async function startAgent(host: string): Promise<void> {
  const socket = join(dir, `${host}.sock`);
  const spec: AgentSpec = {
    host,
    ns: ns(host),
    stateDir: dir,
    socket,
    eventsFile: join(dir, `${host}.events.jsonl`),
    topology: t,
    components: svcBaseComponents(t)[host]!,
  };
  const specFile = join(dir, `${host}.spec.json`);
  writeFileSync(specFile, JSON.stringify(spec));
  const daemon = spawnDaemon({ name: `${host}/agent`, cmd: 'node', args: ['--import', 'tsx', 'src/emulation/agent/main.ts', specFile], ns: ns(host), logFile: join(dir, `${host}.log`), cwd: REPO_ROOT });
  agents.set(host, { daemon, socket });
  const want = spec.components.map((c) => c.name ?? c.kind);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const r = await call<{ components: string[] }>(socket, 'ping', undefined, 1000).catch(() => null);
    if (r && want.every((w) => r.components.includes(w))) return;
    if (!daemon.isRunning() || Date.now() > deadline) throw new Error(`agent ${host} did not come up:\n${daemon.logTail(40)}`);
    await sleep(100);
  }
}

/** whether a kube-proxy nft script sends any Service to this endpoint address */
const dnatsTo = (rules: string, ip: string) => rules.includes(`to ${ip}:`) || rules.includes(`: ${ip} . `);

interface Reply {
  ok: boolean;
  node?: string;
  clientIp?: string;
  err?: string;
}

/** n fresh-connection GETs from the client host (its namespace), one process for all of them */
async function get(url: string, n: number, timeoutMs = 1500): Promise<Reply[]> {
  const script = `
const http = require('node:http');
const [url, n, timeout] = process.argv.slice(1);
(async () => {
  const out = [];
  for (let i = 0; i < Number(n); i++) {
    out.push(await new Promise((resolve) => {
      const req = http.get(url, { agent: false, timeout: Number(timeout) }, (res) => {
        let b = '';
        res.on('data', (d) => (b += d));
        res.on('end', () => { try { const j = JSON.parse(b); resolve({ ok: res.statusCode === 200, node: j.node, clientIp: j.clientIp }); } catch { resolve({ ok: false, err: 'bad body' }); } });
      });
      req.on('timeout', () => { req.destroy(); resolve({ ok: false, err: 'timeout' }); });
      req.on('error', (e) => resolve({ ok: false, err: e.code || e.message }));
    }));
  }
  console.log(JSON.stringify(out));
})();`;
  const r = await run('node', ['-e', script, url, String(n), String(timeoutMs)], { ns: ns(t.clients[0]!.name), timeoutMs: n * timeoutMs + 10_000 });
  return JSON.parse(r.stdout) as Reply[];
}

/** the raw TCP stream port: first line (greeting) and the echo of one line */
async function streamRoundTrip(ip: string, port: number): Promise<{ greeting: { node: string; clientIp: string }; echo: string }> {
  const script = `
const net = require('node:net');
const s = net.connect(Number(process.argv[2]), process.argv[1]);
let buf = '';
const t = setTimeout(() => { console.log(JSON.stringify({ error: 'timeout', buf })); process.exit(0); }, 3000);
s.on('data', (d) => {
  buf += d;
  const lines = buf.split('\\n');
  if (lines.length >= 2 && !buf.includes('ping')) s.write('{"seq":1,"ping":true}\\n');
  if (lines.length >= 3) { clearTimeout(t); console.log(JSON.stringify({ greeting: JSON.parse(lines[0]), echo: lines[1] })); s.destroy(); }
});
s.on('error', (e) => { console.log(JSON.stringify({ error: e.code })); process.exit(0); });`;
  const r = await run('node', ['-e', script, ip, String(port)], { ns: ns(t.clients[0]!.name), timeoutMs: 10_000 });
  return JSON.parse(r.stdout);
}

beforeAll(async () => {
  expect(process.getuid?.()).toBe(0); // real namespaces need root, as CI has
  rootBefore = await rootState();
  const lab = loadLab('smb', { repoRoot: REPO_ROOT });
  t = lab.topology;
  dir = mkTemp('svc-kp-');
  mkdirSync(dir, { recursive: true });
  plan = renderNetworkPlan(t, prefix);
  const state = LabState.create({ id: 'svckp', prefix, lab: 'smb', labFile: lab.file, provider: 'sim', createdAt: new Date().toISOString(), ownerPid: process.pid, status: 'starting' }, mkTemp('svc-kp-state-'));
  await buildNetwork(plan, state);
  // w1, w2 run the workload; cp1 routes Services without a pod of its own
  await Promise.all(['w1', 'w2', 'cp1'].map(startAgent));
  // w1 is the L2 announcer of both Service IPs (what MetalLB's speaker would do)
  for (const s of t.services) await run('ip', ['addr', 'add', `${s.ip}/32`, 'dev', 'eth0'], { ns: ns('w1') });
}, 120_000);

afterAll(async () => {
  for (const { daemon } of agents.values()) await stopProcess(daemon.pid, 3000);
  if (plan) await destroyNetwork(plan);
  const left = (await run('ip', ['netns', 'list'])).stdout.split('\n').filter((l) => l.startsWith(prefix));
  expect(left).toEqual([]);
  expect(await rootState()).toEqual(rootBefore);
}, 60_000);

describe('kube-proxy + echo in real namespaces', () => {
  it('ETP Cluster through the L2 holder: any node answers, the pod sees the ingress node IP', async () => {
    const web = svc('web');
    const replies = await get(`http://${web.ip}:${web.port}/`, 40);
    expect(replies.every((r) => r.ok), JSON.stringify(replies.filter((r) => !r.ok))).toBe(true);
    const nodes = new Set(replies.map((r) => r.node));
    expect([...nodes].sort()).toEqual(['w1', 'w2']); // random over both endpoints (P(miss) = 2^-39)
    expect(new Set(replies.map((r) => r.clientIp))).toEqual(new Set([node('w1').ip]));
  });

  it('ETP Local through the L2 holder: its own pod answers and sees the client IP', async () => {
    const local = svc('web-local');
    const replies = await get(`http://${local.ip}:${local.port}/`, 10);
    expect(replies.every((r) => r.ok && r.node === 'w1')).toBe(true);
    expect(new Set(replies.map((r) => r.clientIp))).toEqual(new Set([t.clients[0]!.interfaces[0]!.ip]));
  });

  it('routed /32 (BGP-like) to a node without a pod: Cluster is served and SNATed, Local is dropped', async () => {
    const rtr = ns(t.routers[0]!.name);
    const web = svc('web');
    const local = svc('web-local');
    // move both IPs off w1 and route them to cp1, as a router does with a BGP /32
    for (const s of t.services) {
      await run('ip', ['addr', 'del', `${s.ip}/32`, 'dev', 'eth0'], { ns: ns('w1') });
      await run('ip', ['route', 'replace', `${s.ip}/32`, 'via', node('cp1').ip], { ns: rtr });
    }
    try {
      const cluster = await get(`http://${web.ip}:${web.port}/`, 20);
      expect(cluster.every((r) => r.ok)).toBe(true);
      expect(new Set(cluster.map((r) => r.clientIp))).toEqual(new Set([node('cp1').ip]));
      expect(cluster.every((r) => r.node === 'w1' || r.node === 'w2')).toBe(true);
      const dropped = await get(`http://${local.ip}:${local.port}/`, 2, 700);
      expect(dropped.map((r) => r.err)).toEqual(['timeout', 'timeout']);
      // the same Local Service routed to a node WITH a pod works and keeps the client IP
      await run('ip', ['route', 'replace', `${local.ip}/32`, 'via', node('w2').ip], { ns: rtr });
      const viaW2 = await get(`http://${local.ip}:${local.port}/`, 5);
      expect(viaW2.map((r) => `${r.node}/${r.clientIp}`)).toEqual(Array(5).fill(`w2/${t.clients[0]!.interfaces[0]!.ip}`));
    } finally {
      for (const s of t.services) {
        await run('ip', ['route', 'del', `${s.ip}/32`], { ns: rtr, reject: false });
        await run('ip', ['addr', 'replace', `${s.ip}/32`, 'dev', 'eth0'], { ns: ns('w1') });
      }
    }
  });

  it('strictARP: nobody answers ARP for a pool address no node holds; the holder does', async () => {
    const rtr = ns(t.routers[0]!.name);
    const unheld = t.pool.addresses[5]!;
    const none = await run('arping', ['-c', '2', '-w', '2', '-I', 'eth0', unheld], { ns: rtr, reject: false });
    expect(none.stdout).not.toMatch(/reply from/i);
    const held = await run('arping', ['-c', '1', '-w', '2', '-I', 'eth0', svc('web').ip], { ns: rtr, reject: false });
    const mac = (await run('cat', ['/sys/class/net/eth0/address'], { ns: ns('w1') })).stdout.trim().toUpperCase();
    expect(held.stdout.toUpperCase()).toContain(mac);
    for (const h of ['w1', 'w2', 'cp1']) {
      expect((await run('sysctl', ['-n', 'net.ipv4.conf.all.arp_ignore'], { ns: ns(h) })).stdout.trim()).toBe('1');
    }
  });

  it('the TCP stream port greets with the pod JSON and echoes lines (Local keeps the client IP)', async () => {
    const local = svc('web-local');
    const r = await streamRoundTrip(local.ip, local.streamPort);
    expect(r.greeting).toEqual({ node: 'w1', clientIp: t.clients[0]!.interfaces[0]!.ip });
    expect(r.echo).toBe('{"seq":1,"ping":true}');
    const c = await streamRoundTrip(svc('web').ip, svc('web').streamPort);
    expect(c.greeting.clientIp).toBe(node('w1').ip);
  });

  it('an endpoint change rewrites the rules in place: new connections never notice the sync', async () => {
    const web = svc('web');
    // the lab's outage probe (a new connection every 10 ms, 200 ms timeout) from the client
    const script = `
const { startOutageProbe } = await import(${JSON.stringify(REPO_ROOT + '/src/traffic/outage.ts')});
const p = startOutageProbe({ target: 'http://${web.ip}:${web.port}/', intervalMs: 10, timeoutMs: 200, durationMs: 9000 });
console.log(JSON.stringify((await p.done).map((x) => [x.ok ? 1 : 0, x.node ?? x.kind])));`;
    writeFileSync(join(dir, 'probe.mts'), script);
    const probing = run('node', ['--import', 'tsx', join(dir, 'probe.mts')], { ns: ns(t.clients[0]!.name), timeoutMs: 60_000, cwd: REPO_ROOT });
    await sleep(3000);
    // EndpointSlice flips of w2's pod, as w1's kube-proxy hears them: terminating, then ready again
    for (const state of ['terminating', 'ready']) {
      await run('node', ['-e', `const d=require('dgram').createSocket('udp4'); d.send(JSON.stringify({t:'${state}',node:'w2',port:8080}), 10250, '${node('w1').ip}', () => d.close());`], { ns: ns('w2') });
      await sleep(2500);
    }
    const samples = JSON.parse((await probing).stdout) as [number, string][];
    expect(samples.length).toBeGreaterThan(500);
    expect(samples.filter(([ok]) => !ok), 'probes that failed across two rule syncs').toEqual([]);
    expect(new Set(samples.map(([, n]) => n))).toEqual(new Set(['w1', 'w2']));
    const log = readFileSync(join(dir, 'w1.log'), 'utf8');
    expect(log).toMatch(/endpoints now: w1, w2 \(terminating\)/);
  }, 60_000);

  it('a drill leaves stale SYN_SENT conntrack entries (real kernel behaviour) that break the next drill unless every host is flushed between drills', async () => {
    const web = svc('web');
    const w2 = node('w2');
    const client = ns(t.clients[0]!.name);
    const ports = Array.from({ length: 40 }, (_, i) => 41_000 + i);
    // one bare connect per source port, in order, 300 ms each: ok / the error code
    const connects = async () => {
      const script = `
const net = require('node:net');
const [ip, port, timeout, ...ports] = process.argv.slice(1).map(String);
(async () => {
  const out = [];
  for (const p of ports) out.push(await new Promise((resolve) => {
    const s = net.connect({ host: ip, port: Number(port), localPort: Number(p) });
    const t = setTimeout(() => { s.destroy(); resolve('timeout'); }, Number(timeout));
    s.on('connect', () => { clearTimeout(t); s.destroy(); resolve('ok'); });
    s.on('error', (e) => { clearTimeout(t); resolve(e.code || 'error'); });
  }));
  console.log(JSON.stringify(out));
})();`;
      const r = await run('node', ['-e', script, web.ip, String(web.streamPort), '300', ...ports.map(String)], { ns: client, timeoutMs: 60_000 });
      return JSON.parse(r.stdout) as string[];
    };
    const staleToW2 = async () =>
      (await run('conntrack', ['-L', '-p', 'tcp', '--state', 'SYN_SENT', '-d', web.ip, '--reply-src', w2.ip], { ns: ns('w1'), reject: false })).stdout
        .split('\n')
        .filter((l) => l.includes('SYN_SENT'))
        .map((l) => Number(/sport=(\d+)/.exec(l)![1]));
    await flushTransientState(ns('w1'));

    // drill 1, crash of w2: its traffic dropped and its pod killed; w1's kube-proxy still lists it (grace 50 s)
    await isolate(w2, ns('w2'));
    signalGroup(agents.get('w2')!.daemon.pid, 'SIGKILL');
    await resetKernelState(w2, ns('w2'));
    const during = await connects();
    const stale = await staleToW2();
    expect(during.filter((r) => r !== 'ok').length, JSON.stringify(during)).toBeGreaterThan(0); // P(all 40 hashed to w1) = 2^-40
    expect(stale.sort((a, b) => a - b)).toEqual(ports.filter((_, i) => during[i] !== 'ok'));
    // the restored node comes back clean: no conntrack entry and no address of its previous life
    expect((await run('conntrack', ['-C'], { ns: ns('w2') })).stdout.trim()).toBe('0');
    expect((await run('ip', ['-o', '-4', 'addr', 'show'], { ns: ns('w2') })).stdout).not.toContain(web.ip);
    await unisolate(ns('w2'));
    await startAgent('w2');

    // drill 2, graceful shutdown of w2: its endpoint leaves w1's rules at once …
    await stopProcess(agents.get('w2')!.daemon.pid, 5000);
    for (let i = 0; i < 60 && (await call<{ node: string }[]>(agents.get('w1')!.socket, 'kube-proxy.endpoints')).length !== 1; i++) await sleep(50);
    expect((await call<{ node: string }[]>(agents.get('w1')!.socket, 'kube-proxy.endpoints')).map((e) => e.node)).toEqual(['w1']);
    // … but a SYN from a port that failed in drill 1 joins its stale entry and goes to the dead pod
    const leaked = await connects();
    const failedAgain = ports.filter((_, i) => leaked[i] !== 'ok');
    expect(failedAgain.length).toBeGreaterThan(0);
    expect(failedAgain.every((p) => stale.includes(p))).toBe(true);

    // between drills every host is flushed: conntrack and dynamic neighbour entries are gone
    const hosts = [...t.nodes.map((n) => n.name), ...t.routers.map((r) => r.name), ...t.clients.map((c) => c.name)];
    await Promise.all(hosts.map((h) => flushTransientState(ns(h))));
    for (const h of hosts) {
      // (the nodes' own UDP heartbeats open new entries at once: count what a drill leaves, TCP)
      expect((await run('conntrack', ['-L', '-p', 'tcp'], { ns: ns(h), reject: false })).stdout.trim(), h).toBe('');
      // (their heartbeats resolve each other at once again: what must not survive is an entry
      // for an address that moves — a Service IP bound to the MAC of its previous holder)
      for (const s of t.services) expect((await run('ip', ['neigh', 'show', s.ip], { ns: ns(h) })).stdout.trim(), `${h} ${s.ip}`).toBe('');
    }
    const clean = await connects();
    expect(clean).toEqual(ports.map(() => 'ok'));
    expect(await staleToW2()).toEqual([]);
    await startAgent('w2'); // as before, for the next test
    let eps: string[] = [];
    for (let i = 0; i < 60 && eps.length !== 2; i++) {
      eps = (await call<{ node: string }[]>(agents.get('w1')!.socket, 'kube-proxy.endpoints')).map((e) => e.node);
      if (eps.length !== 2) await sleep(50);
    }
    expect(eps.sort(), readFileSync(join(dir, 'w1.log'), 'utf8').split('\n').slice(-30).join('\n')).toEqual(['w1', 'w2']);
  });

  it('a pod that shuts down gracefully leaves the other nodes’ rules at once', async () => {
    const w1 = agents.get('w1')!;
    const before = await call<{ node: string }[]>(w1.socket, 'kube-proxy.endpoints');
    expect(before.map((e) => e.node).sort()).toEqual(['w1', 'w2']);
    const w2 = agents.get('w2')!;
    const stoppedAt = Date.now();
    await stopProcess(w2.daemon.pid, 5000);
    let after: string[] = [];
    while (Date.now() - stoppedAt < 3000) {
      after = (await call<{ node: string }[]>(w1.socket, 'kube-proxy.endpoints')).map((e) => e.node);
      if (after.length === 1) break;
      await sleep(50);
    }
    expect(after).toEqual(['w1']);
    // the endpoint set changes first; the rules follow through the sync runner (minSyncPeriod),
    // as the real proxier's do: requests are only bound to avoid w2 once the rules are written
    const w2Ip = node('w2').ip;
    let rules = '';
    while (Date.now() - stoppedAt < 3000) {
      rules = await call<string>(w1.socket, 'kube-proxy.rules');
      if (!dnatsTo(rules, w2Ip)) break;
      await sleep(50);
    }
    expect(dnatsTo(rules, w2Ip), rules).toBe(false);
    const web = svc('web');
    const replies = await get(`http://${web.ip}:${web.port}/`, 10);
    expect(replies.map((r) => r.node)).toEqual(Array(10).fill('w1'));
  });
});
