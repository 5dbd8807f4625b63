/**
 * The control-plane base for real, on loopback (no root, no namespaces): the lab PKI from openssl,
 * one real etcd (random ports, temp dir, killed in afterAll), two kube-apiserver stand-ins on
 * 127.0.0.1 / 127.0.0.2, KubePrism over both and the kubelet-like client through KubePrism with
 * the lab CA — each a component built by its factory with a hand-made AgentContext, as the agent
 * would. Shows: /readyz follows etcd (503 when it is stopped, 200 when it is back), the list call
 * reads etcd, and KubePrism stops using an API server that went away (after the failed dials
 * go-loadbalancer's rules allow, no retry elsewhere), and the coordination.k8s.io Leases the API
 * server stand-in keeps for client-go leader election (kube-vip), with resourceVersion CAS.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import https from 'node:https';
import net from 'node:net';
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadLab, REPO_ROOT } from '../../src/model/load.js';
import type { Node, Topology } from '../../src/model/types.js';
import type { AgentComponent, AgentContext, AgentEvent } from '../../src/emulation/agent/types.js';
import type { ProbeSample } from '../../src/traffic/rpc.js';
import { makePki, pkiPaths } from '../../src/emulation/pki.js';
import apiserverFactory from '../../src/emulation/apiserver.js';
import kubeprismFactory from '../../src/emulation/kubeprism.js';
import kubeletClientFactory, { OBSERVING_FILE } from '../../src/emulation/kubelet-client.js';
import { now, run, sleep, spawnDaemon, stopProcess, type Daemon } from '../../src/util/proc.js';
import { useTempDirs } from '../helpers/tmp.js';

const mkTemp = useTempDirs();
const stateDir = mkTemp('tlx-cp-state-');
const events: AgentEvent[] = [];
const started: AgentComponent[] = [];
let etcd: Daemon | null = null;
let etcdArgs: string[] = [];
let etcdUrl = '';
let topo: Topology;

async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

/** smb's topology, its control planes moved onto loopback addresses. */
function loopbackTopology(): Topology {
  const t = structuredClone(loadLab('smb', { repoRoot: REPO_ROOT }).topology);
  const move = (n: Node, ip: string) => {
    n.ip = ip;
    n.interfaces[0]!.ip = ip;
  };
  const cps = t.nodes.filter((n) => n.role === 'controlplane');
  move(cps[0]!, '127.0.0.1');
  move(cps[1]!, '127.0.0.2');
  t.nodes = [cps[0]!, cps[1]!, t.nodes.find((n) => n.role === 'worker')!];
  return t;
}

function ctxFor(host: string): AgentContext {
  return {
    host,
    spec: { host, ns: '', stateDir, socket: '', eventsFile: '', topology: topo, components: [] },
    topology: topo,
    emit: (component, type, data = {}) => events.push({ t: now(), host, component, type, ...data }),
    log: () => undefined,
    signal: new AbortController().signal,
    run: (cmd, args, opts) => run(cmd, args, opts),
  };
}

async function startComponent<T extends AgentComponent>(c: T): Promise<T> {
  await c.start();
  started.push(c);
  return c;
}

interface Reply {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

function get(url: string, timeoutMs = 3000): Promise<Reply> {
  const ca = readFileSync(pkiPaths(stateDir).caCert);
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca, agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs: number, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
}

function startEtcd(): Daemon {
  const d = spawnDaemon({ name: 'test/etcd', cmd: 'etcd', args: etcdArgs, logFile: join(stateDir, 'etcd.log') });
  return d;
}

async function etcdHealthy(): Promise<boolean> {
  const r = await run('etcdctl', ['--endpoints', etcdUrl, '--command-timeout=1s', 'endpoint', 'health'], { reject: false, env: { ETCDCTL_API: '3' }, timeoutMs: 3000 });
  return r.exitCode === 0;
}

beforeAll(async () => {
  topo = loopbackTopology();
  const [client, peer] = [await freePort(), await freePort()];
  etcdUrl = `http://127.0.0.1:${client}`;
  etcdArgs = [
    '--name', 'tlx-test', '--data-dir', join(stateDir, 'etcd'),
    '--listen-client-urls', etcdUrl, '--advertise-client-urls', etcdUrl,
    '--listen-peer-urls', `http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
    '--initial-cluster', `tlx-test=http://127.0.0.1:${peer}`,
    '--logger', 'zap', '--log-level', 'warn',
  ];
  etcd = startEtcd();
  await until('etcd healthy', () => etcdHealthy(), 45_000, 100);
}, 60_000);

afterAll(async () => {
  try {
    for (const c of started.reverse()) await Promise.race([c.stop().catch(() => undefined), sleep(3000)]);
  } finally {
    if (etcd) await stopProcess(etcd.pid, 2000);
  }
}, 30_000);

describe('lab PKI', () => {
  it('issues a CA and per-control-plane serving certificates with the right SANs, idempotently', async () => {
    const p = await makePki(stateDir, topo);
    expect(p.dir).toBe(join(stateDir, 'pki'));
    const cps = topo.nodes.filter((n) => n.role === 'controlplane');
    for (const n of cps) {
      await run('openssl', ['verify', '-CAfile', p.caCert, p.cert(n.name)]);
      const text = (await run('openssl', ['x509', '-in', p.cert(n.name), '-noout', '-ext', 'subjectAltName,extendedKeyUsage'])).stdout;
      for (const ip of [n.ip, topo.vip, topo.loadBalancer!.ip, '127.0.0.1']) expect(text).toContain(`IP Address:${ip}`);
      for (const dns of [n.name, 'localhost', 'kubernetes', 'kubernetes.default.svc']) expect(text).toContain(`DNS:${dns}`);
      expect(text).toContain('TLS Web Server Authentication');
      expect(statSync(p.key(n.name)).mode & 0o077).toBe(0);
      const key = (await run('openssl', ['pkey', '-in', p.key(n.name), '-noout', '-text'])).stdout;
      expect(key).toMatch(/prime256v1|P-256/);
    }
    // a worker gets no API server certificate
    const worker = topo.nodes.find((n) => n.role === 'worker')!;
    expect(() => statSync(p.cert(worker.name))).toThrow();
    // second run keeps every file
    const before = cps.map((n) => readFileSync(p.cert(n.name), 'utf8'));
    const ca = readFileSync(p.caCert, 'utf8');
    await makePki(stateDir, topo);
    expect(readFileSync(p.caCert, 'utf8')).toBe(ca);
    expect(cps.map((n) => readFileSync(p.cert(n.name), 'utf8'))).toEqual(before);
  });
});

describe('kube-apiserver stand-in, KubePrism, kubelet-client', () => {
  let portA = 0;
  let portB = 0;

  it('serves /readyz, /version and the endpoints list; /readyz follows etcd down and back', async () => {
    await makePki(stateDir, topo);
    portA = await freePort('127.0.0.1');
    // readyTimeoutMs 600 instead of the real 2 s keeps the frozen-etcd step short
    const a = await startComponent(apiserverFactory(ctxFor('cp1'), { host: '127.0.0.1', port: portA, etcdEndpoints: [etcdUrl], pollMs: 100, readyTimeoutMs: 600 }));
    const base = `https://127.0.0.1:${portA}`;
    const ready = await until('cp1 ready', async () => ((await get(`${base}/readyz`)).status === 200 ? await get(`${base}/readyz`) : null), 10_000);
    expect(ready.body).toBe('ok');
    expect(ready.headers['x-served-by']).toBe('cp1');
    expect(ready.headers['x-client-ip']).toBe('127.0.0.1');
    expect((await get(`${base}/livez`)).status).toBe(200);

    const version = JSON.parse((await get(`${base}/version`)).body);
    expect(version).toMatchObject({ major: '1', minor: '34', gitVersion: 'v1.34.1', node: 'cp1' });
    expect(version.platform).toMatch(/^linux\//);

    // the list call reads the master leases from etcd (cp1 registered its address)
    const list = await until('cp1 in the kubernetes endpoints', async () => {
      const r = await get(`${base}/api/v1/namespaces/default/endpoints`);
      const j = JSON.parse(r.body);
      return r.status === 200 && j.items[0].subsets[0]?.addresses.some((x: { ip: string }) => x.ip === '127.0.0.1') ? j : null;
    }, 5000);
    expect(list).toMatchObject({ kind: 'EndpointsList', node: 'cp1' });
    expect((await get(`${base}/nope`)).status).toBe(404);

    // etcd goes away: not-ready within the probe period (a stopped etcd refuses at once)
    await stopProcess(etcd!.pid, 2000);
    const stoppedAt = Date.now();
    const down = await until('cp1 not ready', async () => {
      const r = await get(`${base}/readyz`);
      return r.status === 503 ? r : null;
    }, 5000, 20);
    const detectMs = Date.now() - stoppedAt;
    expect(detectMs).toBeLessThan(2500);
    expect(down.body).toContain('[-]etcd failed');
    expect(down.headers['x-served-by']).toBe('cp1');
    expect((await get(`${base}/api/v1/namespaces/default/endpoints`)).status).toBe(503);
    expect(events.some((e) => e.host === 'cp1' && e.component === 'apiserver' && e.type === 'not-ready')).toBe(true);

    // etcd comes back: ready again
    etcd = startEtcd();
    const readyAgainAfter = Date.now();
    await until('cp1 ready again', async () => (await get(`${base}/readyz`)).status === 200, 20_000, 50);
    expect(Date.now() - readyAgainAfter).toBeLessThan(15_000);
    const readyEvents = events.filter((e) => e.host === 'cp1' && e.component === 'apiserver' && e.type === 'ready');
    expect(readyEvents.length).toBeGreaterThanOrEqual(2);
    expect(a.status?.()).toMatchObject({ ready: true, lastError: null });

    // etcd stops answering without refusing (SIGSTOP: what a member cut off from quorum looks
    // like to its API server): the linearizable read misses its deadline → not ready; back on SIGCONT
    process.kill(etcd!.pid, 'SIGSTOP');
    const frozenAt = Date.now();
    try {
      await until('cp1 not ready (etcd frozen)', async () => (await get(`${base}/readyz`)).status === 503, 5000, 20);
      const ms = Date.now() - frozenAt;
      expect(ms).toBeGreaterThanOrEqual(400); // it waited for the deadline (600 ms), not a refusal
      expect(ms).toBeLessThan(2500);
    } finally {
      process.kill(etcd!.pid, 'SIGCONT');
    }
    await until('cp1 ready after SIGCONT', async () => (await get(`${base}/readyz`)).status === 200, 10_000, 50);
  }, 60_000);

  it('KubePrism balances over both API servers and stops using one that went away', async () => {
    expect(portA).toBeGreaterThan(0); // the previous test started cp1
    portB = await freePort('127.0.0.2');
    await startComponent(apiserverFactory(ctxFor('cp2'), { host: '127.0.0.2', port: portB, etcdEndpoints: [etcdUrl], pollMs: 100 }));
    await until('cp2 ready', async () => (await get(`https://127.0.0.2:${portB}/readyz`)).status === 200, 10_000);

    const kpPort = await freePort('127.0.0.1');
    const worker = topo.nodes.find((n) => n.role === 'worker')!.name;
    // no health-check round during this test (interval 60 s): both upstreams keep their initial
    // score (+1) and tier (1), so round robin alternates and the dial-failure path is what removes cp1
    const kp = await startComponent(
      kubeprismFactory(ctxFor(worker), { port: kpPort, upstreams: [`127.0.0.1:${portA}`, `127.0.0.2:${portB}`], healthIntervalMs: 60_000, healthTimeoutMs: 500 }),
    );
    const kc = await startComponent(kubeletClientFactory(ctxFor(worker), { url: `https://127.0.0.1:${kpPort}/readyz`, intervalMs: 50, timeoutMs: 1000 }));
    const samples = async (since?: number) => (await kc.call!('samples', { since, until: null })) as ProbeSample[];

    // both API servers answer through KubePrism (round robin)
    await until('both API servers seen through KubePrism', async () => {
      const s = await samples();
      return s.some((x) => x.ok && x.node === 'cp1') && s.some((x) => x.ok && x.node === 'cp2');
    }, 5000);

    // cp1's API server stops (graceful: listener closed, connections refused)
    const cp1 = started.find((c) => c.kind === 'apiserver' && (c.status?.() as { port: number }).port === portA)!;
    const stopAt = now();
    await cp1.stop();
    await until('KubePrism takes cp1 out', async () => events.some((e) => e.component === 'kubeprism' && e.type === 'upstream-down' && e.upstream === `127.0.0.1:${portA}`), 5000);
    const down = events.find((e) => e.component === 'kubeprism' && e.type === 'upstream-down')!;
    expect(down).toMatchObject({ reason: 'dial', score: -1 });
    await sleep(1000);

    const after = await samples(stopAt);
    // a probe sent just before the stop may reach KubePrism after it: count failures over the run
    const failed = (await samples()).filter((s) => !s.ok);
    expect(failed.every((s) => s.t > stopAt - 1000)).toBe(true);
    // go-loadbalancer closes the client connection on a failed dial (no retry on another
    // upstream) and scores the upstream down by 1: from +1, two refused dials take it below 0
    expect(failed.length).toBeGreaterThanOrEqual(1);
    expect(failed.length).toBeLessThanOrEqual(3);
    expect(failed.every((s) => s.kind === 'reset' || s.kind === 'other')).toBe(true);
    // then every probe is answered, by cp2 only
    const tail = after.filter((s) => s.t > now() - 700);
    expect(tail.length).toBeGreaterThan(5);
    expect(tail.every((s) => s.ok && s.node === 'cp2')).toBe(true);
    const st = kp.status!() as { upstreams: { address: string; usable: boolean }[]; dialFailures: number };
    expect(st.upstreams.find((u) => u.address === `127.0.0.1:${portA}`)!.usable).toBe(false);
    expect(st.upstreams.find((u) => u.address === `127.0.0.2:${portB}`)!.usable).toBe(true);
    expect(st.dialFailures).toBe(failed.length);

    // samples() honours the window and is sorted
    const window = await kc.call!('samples', { since: stopAt, until: stopAt + 500 }) as ProbeSample[];
    expect(window.length).toBeGreaterThan(0);
    expect(window.every((s, i) => s.t >= stopAt && s.t <= stopAt + 500 && (i === 0 || s.t >= window[i - 1]!.t))).toBe(true);
  }, 60_000);

  it('a gated kubelet-client probes only while the lab says a fault is being observed (<stateDir>/observing)', async () => {
    expect(portB).toBeGreaterThan(0); // cp2 from the previous test answers
    const worker = topo.nodes.find((n) => n.role === 'worker')!.name;
    const flag = join(stateDir, OBSERVING_FILE);
    rmSync(flag, { force: true });
    const kc = await startComponent(kubeletClientFactory(ctxFor(worker), { url: `https://127.0.0.2:${portB}/readyz`, intervalMs: 50, timeoutMs: 1000, gated: true }));
    const samples = async () => (await kc.call!('samples', { since: null, until: null })) as ProbeSample[];
    await sleep(500);
    expect(await samples(), 'no probe while nothing is observed').toEqual([]);
    writeFileSync(flag, '');
    const on = now();
    await sleep(600);
    const seen = await samples();
    expect(seen.length, 'probes every 50 ms once observed').toBeGreaterThanOrEqual(6);
    expect(seen.every((x) => x.ok && x.t >= on - 60)).toBe(true);
    rmSync(flag);
    const off = now();
    await sleep(500);
    // a probe already due when the file went may still be sent; none after that
    expect((await samples()).filter((x) => x.t > off + 60)).toEqual([]);
    expect((kc.status!() as { gated: number }).gated).toBeGreaterThanOrEqual(15);
  }, 30_000);

  it('KubePrism health checks take a dead upstream out after two rounds (score +1 → −1) and put it back', async () => {
    const deadPort = await freePort('127.0.0.3');
    const kpPort = await freePort('127.0.0.1');
    const intervalMs = 300;
    const t0 = now();
    const kp = await startComponent(
      kubeprismFactory(ctxFor('cp2'), { port: kpPort, upstreams: [`127.0.0.3:${deadPort}`, `127.0.0.2:${portB}`], healthIntervalMs: intervalMs, healthTimeoutMs: 200 }),
    );
    const isDown = (e: AgentEvent) => e.component === 'kubeprism' && e.type === 'upstream-down' && e.upstream === `127.0.0.3:${deadPort}`;
    const ev = await until('dead upstream taken out', async () => events.find(isDown), 5000, 20);
    expect(ev.reason).toBe('healthcheck');
    // the first round runs one interval after start, the second one interval later
    expect(ev.t - t0).toBeGreaterThanOrEqual(1.8 * intervalMs);
    expect(ev.t - t0).toBeLessThan(4 * intervalMs + 500);
    // something listens there again: one passed check brings it back (score −1 → 0)
    const srv = net.createServer((c) => c.destroy());
    await new Promise<void>((r) => srv.listen(deadPort, '127.0.0.3', () => r()));
    try {
      const up = await until('upstream back', async () => events.find((e) => e.component === 'kubeprism' && e.type === 'upstream-up' && e.upstream === `127.0.0.3:${deadPort}`), 5000, 20);
      expect(up.reason).toBe('healthcheck');
    } finally {
      srv.close();
      await kp.stop();
    }
  }, 30_000);

  it('Leases through the API server: create once, get with a resourceVersion, update only with the current one (409 otherwise)', async () => {
    const port = await freePort('127.0.0.1');
    await startComponent(apiserverFactory(ctxFor('cp1'), { host: '127.0.0.1', port, etcdEndpoints: [etcdUrl], pollMs: 100 }));
    const base = `https://127.0.0.1:${port}/apis/coordination.k8s.io/v1/namespaces/kube-system/leases`;
    const ca = readFileSync(pkiPaths(stateDir).caCert);
    const call = (method: string, url: string, body?: unknown): Promise<{ status: number; json: any }> =>
      new Promise((resolve, reject) => {
        const payload = body === undefined ? undefined : JSON.stringify(body);
        const req = https.request(url, { method, ca, agent: false, headers: payload ? { 'content-type': 'application/json' } : {} }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d) => (text += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) }));
        });
        req.on('error', reject);
        req.end(payload);
      });
    const name = `lock-${Date.now()}`;
    const spec = { holderIdentity: 'cp1', leaseDurationSeconds: 15, acquireTime: new Date().toISOString(), renewTime: new Date().toISOString(), leaseTransitions: 0 };
    await until('cp1 serves', async () => (await call('GET', `${base}/${name}`)).status === 404, 10_000);
    const created = await call('POST', base, { metadata: { name }, spec });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ kind: 'Lease', metadata: { name, namespace: 'kube-system' }, spec });
    expect((await call('POST', base, { metadata: { name }, spec })).status).toBe(409); // AlreadyExists
    const got = await call('GET', `${base}/${name}`);
    expect(got.status).toBe(200);
    const rv = got.json.metadata.resourceVersion as string;
    expect(rv).toBe(created.json.metadata.resourceVersion);
    const renewed = await call('PUT', `${base}/${name}`, { metadata: { name, resourceVersion: rv }, spec: { ...spec, renewTime: new Date().toISOString() } });
    expect(renewed.status).toBe(200);
    expect(Number(renewed.json.metadata.resourceVersion)).toBeGreaterThan(Number(rv));
    // a writer that read before the renewal loses: the API server's optimistic concurrency
    const stale = await call('PUT', `${base}/${name}`, { metadata: { name, resourceVersion: rv }, spec: { ...spec, holderIdentity: 'cp2' } });
    expect(stale.status).toBe(409);
    expect(stale.json.reason).toBe('Conflict');
    expect((await call('GET', `${base}/${name}`)).json.spec.holderIdentity).toBe('cp1');
    // the object is where the API server keeps Leases in etcd
    const r = await run('etcdctl', ['--endpoints', etcdUrl, 'get', `/registry/leases/kube-system/${name}`, '--print-value-only'], { env: { ETCDCTL_API: '3' } });
    expect(JSON.parse(r.stdout.trim())).toMatchObject({ holderIdentity: 'cp1' });
  }, 30_000);
});
