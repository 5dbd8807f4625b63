/**
 * The rendered HAProxy config, run for real (HAProxy 2.6 in the foreground) in front of three
 * kube-apiserver stand-ins, each hosted by the real agent (`src/emulation/agent/main.ts`, one process per
 * control plane, as the sim runs them) on loopback addresses, with one real etcd. The outage probe
 * of src/traffic (20 ms, fresh TLS connection each, lab CA) measures what a client sees when
 *  - a control plane shuts down gracefully (SIGTERM → the API server closes its listener): the
 *    refused connects are re-dispatched (`retries 3`, `option redispatch 1`) → no outage;
 *  - a control plane freezes (SIGSTOP: the kernel still completes TCP handshakes): the outage lasts
 *    until HAProxy marks it DOWN, inside the band this test computes from the rendered config's
 *    inter / fall / timeout connect and HAProxy 2.6's check rules.
 * No root needed: everything binds to 127.0.0.x.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadLab, REPO_ROOT } from '../../src/model/load.js';
import type { Topology } from '../../src/model/types.js';
import type { AgentSpec } from '../../src/emulation/agent/types.js';
import { makePki, pkiPaths } from '../../src/emulation/pki.js';
import { HAPROXY_CONNECT_TIMEOUT_MS, renderHaproxyCfg } from '../../src/strategies/haproxy/config.js';
import { startOutageProbe, computeOutage } from '../../src/traffic/outage.js';
import { isAlive, now, run, sleep, spawnDaemon, stopProcess, type Daemon } from '../../src/util/proc.js';
import { useTempDirs } from '../helpers/tmp.js';

const mkTemp = useTempDirs();
const dir = mkTemp('tlx-haproxy-run-');
const daemons: Daemon[] = [];
const agents = new Map<string, Daemon>();
let topo: Topology;
let etcdUrl = '';

async function freePort(hosts: string[]): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const p = 20000 + Math.floor(Math.random() * 30000);
    const ok = await Promise.all(
      hosts.map(
        (h) =>
          new Promise<boolean>((resolve) => {
            const s = net.createServer();
            s.once('error', () => resolve(false));
            s.listen(p, h, () => s.close(() => resolve(true)));
          }),
      ),
    );
    if (ok.every(Boolean)) return p;
  }
  throw new Error('no free port');
}

async function until(what: string, fn: () => Promise<boolean>, timeoutMs: number, everyMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await fn().catch(() => false)) return;
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

function startAgent(host: string): Daemon {
  const n = topo.nodes.find((x) => x.name === host)!;
  const spec: AgentSpec = {
    host,
    ns: '',
    stateDir: dir,
    socket: join(dir, `${host}.sock`),
    eventsFile: join(dir, `${host}.events.jsonl`),
    topology: topo,
    components: [{ kind: 'apiserver', config: { host: n.ip, port: topo.apiPort, etcdEndpoints: [etcdUrl], pollMs: 100 } }],
  };
  const file = join(dir, `${host}.spec.json`);
  writeFileSync(file, JSON.stringify(spec));
  const d = spawnDaemon({ name: `${host}/agent`, cmd: process.execPath, args: ['--import', 'tsx', join(REPO_ROOT, 'src/emulation/agent/main.ts'), file], logFile: join(dir, `${host}.log`), cwd: REPO_ROOT });
  agents.set(host, d);
  daemons.push(d);
  return d;
}

const haproxyLog = () => readFileSync(daemons.find((d) => d.name === 'haproxy')!.logFile, 'utf8');

/** the probe's interval in measure() — the resolution every band below carries */
const PROBE_MS = 20;
/** each failed check's own duration is held to d ± 100 ms by the log check of the freeze test */
const CHECK_DURATION_TOLERANCE_MS = 100;

/**
 * The client-seen outage bands, computed here from the rendered config (never by the haproxy
 * role's expectedOutage: that would only check the band function against itself). HAProxy 2.6
 * rules (src/check.c process_chk_conn; manual "inter", "fall", "timeout connect", "retries",
 * "option redispatch"): a check runs `inter` I after the previous one ENDED; a server is DOWN after
 * `fall` F failed checks; with check-ssl the TLS handshake is part of the connect phase, so a check
 * of a server that never answers it fails after d = min(timeout connect K, I).
 * - graceful shutdown: connects are refused; `retries 3` + `option redispatch 1` send each one to
 *   another server at once → no failed probe. Bounded anyway by DOWN after F refused checks: F × I.
 * - freeze: the kernel completes the TCP handshake, the TLS one never ends; round robin over the N
 *   servers sends every N-th new connection to the frozen one until it is DOWN: from F×d + (F−1)×I
 *   (the fault hit as a check began) to F×(I + d) (just after a check passed). The probe (every
 *   PROBE_MS) sees the first failure up to (N−1) probes late and the last one up to (N−1) probes
 *   early, and the recovery up to one probe late.
 */
function haproxyExpected(cfg: string, servers: number) {
  const num = (re: RegExp) => Number(re.exec(cfg)![1]);
  const I = num(/ inter (\d+)ms/);
  const F = num(/ fall (\d+)/);
  const K = num(/timeout connect (\d+)ms/);
  const d = Math.min(K, I);
  const tol = F * CHECK_DURATION_TOLERANCE_MS;
  return {
    graceful: { min: 0, max: F * I },
    freeze: {
      min: F * d + (F - 1) * I - tol - 2 * (servers - 1) * PROBE_MS,
      max: F * (I + d) + tol + PROBE_MS,
    },
  };
}

/** One probe run: `inject` at preMs, probes for totalMs; the client-seen outage after the injection. */
async function measure(inject: () => void, preMs: number, totalMs: number) {
  // 20 ms / 300 ms instead of the labs' 10 ms / 200 ms: this box also runs HAProxy, etcd and three agents
  const probe = startOutageProbe({ target: `https://${topo.loadBalancer!.ip}:${topo.apiPort}/readyz`, intervalMs: PROBE_MS, timeoutMs: 300, caFile: pkiPaths(dir).caCert });
  await sleep(preMs);
  const injectAt = now();
  inject();
  await sleep(totalMs - preMs);
  const samples = await probe.stop();
  const pre = samples.filter((s) => s.t < injectAt - 20);
  return { samples, pre, injectAt, outage: computeOutage(samples, { injectAt, recoverSuccesses: 5 }) };
}

beforeAll(async () => {
  const t = structuredClone(loadLab('smb', { repoRoot: REPO_ROOT }).topology);
  const cps = t.nodes.filter((n) => n.role === 'controlplane');
  cps.forEach((n, i) => {
    n.ip = `127.0.0.${11 + i}`;
    n.interfaces[0]!.ip = n.ip;
  });
  t.nodes = cps;
  t.loadBalancer!.ip = '127.0.0.10';
  t.loadBalancer!.interfaces[0]!.ip = '127.0.0.10';
  t.apiPort = await freePort(['127.0.0.10', ...cps.map((n) => n.ip)]);
  // faster checks than the labs' 1 s so the test stays short; the band scales with them
  t.timers.haproxy = { checkIntervalMs: 400, fall: 2, rise: 2, checkTimeoutMs: 400 };
  topo = t;

  const [client, peer] = [await freePort(['127.0.0.1']), await freePort(['127.0.0.1'])];
  etcdUrl = `http://127.0.0.1:${client}`;
  daemons.push(
    spawnDaemon({
      name: 'etcd',
      cmd: 'etcd',
      args: [
        '--name', 'tlx-hx', '--data-dir', join(dir, 'etcd'),
        '--listen-client-urls', etcdUrl, '--advertise-client-urls', etcdUrl,
        '--listen-peer-urls', `http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
        '--initial-cluster', `tlx-hx=http://127.0.0.1:${peer}`, '--logger', 'zap', '--log-level', 'warn',
      ],
      logFile: join(dir, 'etcd.log'),
    }),
  );
  await makePki(dir, topo);
  await until('etcd', async () => (await run('etcdctl', ['--endpoints', etcdUrl, '--command-timeout=1s', 'endpoint', 'health'], { reject: false, env: { ETCDCTL_API: '3' } })).exitCode === 0, 45_000, 100);
  for (const n of cps) startAgent(n.name);
  const cfg = join(dir, 'haproxy.cfg');
  writeFileSync(cfg, renderHaproxyCfg(topo));
  daemons.push(spawnDaemon({ name: 'haproxy', cmd: 'haproxy', args: ['-db', '-f', cfg], logFile: join(dir, 'haproxy.log') }));
  // every API server answers through HAProxy
  const seen = new Set<string>();
  try {
    await until('all three API servers behind HAProxy', async () => {
      const m = await measure(() => undefined, 0, 300);
      for (const s of m.samples) if (s.ok && s.node) seen.add(s.node);
      return seen.size === 3;
    }, 30_000, 100);
  } catch (e) {
    const logs = daemons.map((d) => `--- ${d.name}\n${d.logTail(15)}`).join('\n');
    throw new Error(`${(e as Error).message}; seen: ${[...seen].join(', ') || 'none'}\n${logs}`);
  }
}, 120_000);

afterAll(async () => {
  for (const d of daemons.reverse()) {
    try {
      process.kill(d.pid, 'SIGCONT');
    } catch {
      /* gone */
    }
    await stopProcess(d.pid, 2000);
  }
}, 30_000);

describe('HAProxy in front of the API server stand-ins', () => {
  it('graceful shutdown of a control plane: refused connects are re-dispatched, the client sees no outage', async () => {
    const victim = agents.get('cp1')!;
    const m = await measure(() => process.kill(victim.pid, 'SIGTERM'), 500, 2500);
    expect(m.pre.length).toBeGreaterThan(15);
    expect(m.pre.every((s) => s.ok)).toBe(true);
    await until('cp1 agent gone', async () => !isAlive(victim.pid), 5000);
    const band = haproxyExpected(readFileSync(join(dir, 'haproxy.cfg'), 'utf8'), topo.nodes.length).graceful;
    expect(m.outage.outageMs).toBeGreaterThanOrEqual(band.min);
    expect(m.outage.outageMs).toBeLessThanOrEqual(band.max);
    expect(m.outage.outageMs).toBeLessThanOrEqual(50); // re-dispatched: in practice no failed probe at all
    expect(haproxyLog()).toMatch(/server kube-apiservers\/cp1 failed, reason: Layer4 connection problem, info: "Connection refused"[^\n]*\n(.*\n)*.*Server kube-apiservers\/cp1 is DOWN/);
    // after the stop, only cp2 and cp3 answer
    const late = m.samples.filter((s) => s.t > m.injectAt + 1500);
    expect(late.length).toBeGreaterThan(15);
    expect(late.every((s) => s.ok && s.node !== 'cp1')).toBe(true);
  }, 30_000);

  it('freeze of a control plane: outage until HAProxy marks it DOWN, inside the expected band', async () => {
    const victim = agents.get('cp2')!;
    const band = haproxyExpected(readFileSync(join(dir, 'haproxy.cfg'), 'utf8'), topo.nodes.length).freeze;
    let m: Awaited<ReturnType<typeof measure>>;
    try {
      m = await measure(() => process.kill(victim.pid, 'SIGSTOP'), 500, 500 + band.max + 1500);
    } finally {
      process.kill(victim.pid, 'SIGCONT');
    }
    expect(m.outage.failedProbes).toBeGreaterThan(0);
    expect(m.outage.recovered).toBe(true);
    const seen = `outage ${m.outage.outageMs} ms, band ${band.min}–${band.max} ms`;
    expect(m.outage.outageMs, seen).toBeGreaterThanOrEqual(band.min);
    expect(m.outage.outageMs, seen).toBeLessThanOrEqual(band.max);
    // HAProxy's own account: the TLS handshake of the check is cut by min(timeout connect, inter)
    // (not by `timeout check`), then the server is DOWN
    const log = haproxyLog();
    const durations = [...log.matchAll(/server kube-apiservers\/cp2 failed, reason: Layer6 timeout, check duration: (\d+)ms/g)].map((x) => Number(x[1]));
    expect(durations.length).toBeGreaterThanOrEqual(topo.timers.haproxy.fall);
    for (const d of durations) expect(Math.abs(d - Math.min(HAPROXY_CONNECT_TIMEOUT_MS, topo.timers.haproxy.checkIntervalMs))).toBeLessThan(100);
    expect(log).toMatch(/Server kube-apiservers\/cp2 is DOWN/);
    // failed probes are the ones round robin sent to the frozen server: timeouts
    expect(m.samples.filter((s) => !s.ok && s.t >= m.injectAt).every((s) => s.kind === 'timeout')).toBe(true);
  }, 30_000);
});
