/**
 * Emulated nodes on the docker runtime (`--provider docker --nodes emulated`) through the CLI a
 * user runs, on a real Docker engine (root: dockerd is used or started). The appliance image is
 * built offline or reused first and handed to the CLI (TLAB_APPLIANCE_IMAGE), so no registry is
 * probed. The lab (test/fixtures/labs/ci-docker-emulated.yaml: smb's quick drills, two
 * strategies, short timers) runs every drill through the docker runtime's own code — containers on
 * internal networks, processes through docker exec, crash = docker kill — and each measured outage
 * must fall inside the band THIS test computes from the run's timers and the mechanism's rule
 * (as test/e2e/lab-runs.test.ts does for the sim), widened only by the probe's resolution.
 * Afterwards no container, network or volume carries the lab's id; a `kill -9` of the CLI in the
 * middle of a run followed by `lab clean` leaves nothing either.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import type Docker from 'dockerode';
import { validateResults } from '../../src/results/validate.js';
import { loadLab, REPO_ROOT } from '../../src/model/load.js';
import { ensureApplianceImage } from '../../src/providers/runtimes/docker/appliance.js';
import { dockerVersion } from '../../src/providers/runtimes/docker/dockerd.js';
import { isAlive, sleep } from '../../src/util/proc.js';
import { useDockerd } from '../helpers/dockerd.js';
import { runLabCli, runLabCliRaw } from '../helpers/lab-run.js';
import { useTempDirs } from '../helpers/tmp.js';
import { expectSmbQuickBands } from '../helpers/bands.js';

const TSX = pathToFileURL(createRequire(join(REPO_ROOT, 'package.json')).resolve('tsx')).href;
const engine = useDockerd();
const mkTemp = useTempDirs();
const FIXTURE = join(REPO_ROOT, 'test', 'fixtures', 'labs', 'ci-docker-emulated.yaml');
const ARGS = ['--provider', 'docker', '--nodes', 'emulated'];
/** the lab id's first part (src/orchestrator/ids.ts: the lab name, letters and digits, 8 at most) */
const SHORT = 'cidocker';

let image = '';

/** every container, network and volume whose `tlab.id` is one of this lab's ids */
async function ours(d: Docker): Promise<{ containers: string[]; networks: string[]; volumes: string[] }> {
  const mine = (labels: Record<string, string> | undefined | null) => (labels?.['tlab.id'] ?? '').startsWith(`${SHORT}-`);
  const containers = (await d.listContainers({ all: true, filters: { label: ['tlab.id'] } })).filter((c) => mine(c.Labels)).map((c) => c.Names[0] ?? c.Id);
  const networks = (await d.listNetworks({ filters: { label: ['tlab.id'] } })).filter((n) => mine(n.Labels)).map((n) => n.Name);
  const volumes = ((await d.listVolumes({ filters: { label: ['tlab.id'] } })).Volumes ?? []).filter((v) => mine(v.Labels)).map((v) => v.Name);
  return { containers, networks, volumes };
}

async function removeOurs(d: Docker): Promise<void> {
  const left = await ours(d);
  for (const c of left.containers) await d.getContainer(c.replace(/^\//, '')).remove({ force: true }).catch(() => null);
  for (const n of left.networks) await d.getNetwork(n).remove().catch(() => null);
}

beforeAll(async () => {
  expect(process.getuid?.()).toBe(0); // the e2e project needs root, as CI has
  image = (await ensureApplianceImage(engine.docker(), { offline: true, log: (m) => console.log(m) })).image;
  await removeOurs(engine.docker()); // a previous aborted run of this file
}, 30 * 60_000);
// registered after useDockerd(): runs before a dockerd this file started is stopped
afterAll(async () => {
  await removeOurs(engine.docker()).catch((e) => console.error(`cleanup: ${e}`));
}, 120_000);

describe('emulated nodes on docker (--provider docker --nodes emulated)', () => {
  it('runs every quick drill through the docker runtime, measured at the client, and leaves nothing', async () => {
    const t0 = performance.now();
    const stateDir = mkTemp('dkemu-state-');
    const { code, stderr, results: r } = await runLabCli(FIXTURE, mkTemp('dkemu-out-'), ARGS, { LAB_STATE_DIR: stateDir, TLAB_APPLIANCE_IMAGE: image });
    console.log(`lab run on docker emulated nodes: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    for (const x of r.runs) {
      const band = x.expectedOutageMs ? ` (band ${x.expectedOutageMs.min}–${x.expectedOutageMs.max} ms, ${x.withinBand ? 'inside' : 'OUTSIDE'})` : '';
      console.log(`${x.strategy} ${x.target}${x.service ? `:${x.service}` : ''} ${x.drill}: outage ${x.outageMs ?? '-'} ms${band}, ${x.requests} requests, ${x.errors} errors, p99 ${x.latencyMs.p99} ms`);
    }
    expect(code, stderr.slice(-4000)).toBe(0);
    expect(validateResults(r).errors).toEqual([]);
    expect(r.provider).toMatchObject({ name: 'docker', emulated: true, nodes: 'emulated' });
    expect(r.provider.components.docker).toBe((await dockerVersion(engine.docker())).version);
    expect(r.provider.components.runtime).toBe('docker');
    expect(r.provider.components.appliance).toBe(image);
    expect(r.provider.components.frr).toMatch(/^\d+\.\d+/);
    expect(r.provider.components.etcd).toMatch(/^\d+\.\d+/);
    expect(r.provider.components.haproxy).toMatch(/^\d+\.\d+/);
    expect(r.runs.every((x) => x.supported !== false)).toBe(true);

    // Every drill of the fixture ran through the docker runtime's own operations and was measured
    // at the client: baselines carried traffic, every fault produced an outage that ended.
    for (const x of r.runs) {
      const what = `${x.strategy} ${x.target}${x.service ? `:${x.service}` : ''} ${x.drill}`;
      expect(x.requests, `${what}: traffic reached the lab`).toBeGreaterThan(0);
      if (x.drill === 'baseline') {
        expect(x.outageMs, `${what}: a baseline has no outage figure`).toBeNull();
        expect(x.requests, `${what}: baseline requests`).toBeGreaterThan(50);
      } else {
        expect(x.victim, `${what}: the fault had a victim`).toBeTruthy();
        expect(x.outageMs !== null || x.recovered === false, `${what}: an outage figure or a not-recovered lower bound`).toBe(true);
        expect(x.expectedOutageMs, `${what}: judged against a band`).not.toBeNull();
        expect(x.recovered, `${what}: recovered`).toBe(true);
      }
    }
    // the containers' processes have pids on this machine: how long they waited for a CPU during
    // each outage of a second or more is read there too (one thread never waits longer than that,
    // give or take the milliseconds a sampling pass takes)
    const long = r.runs.filter((x) => x.drill !== 'baseline' && (x.outageMs ?? 0) >= 1000);
    expect(long.length, 'outages of a second or more').toBeGreaterThan(0);
    for (const x of long) {
      expect(x.cpuWait, `${x.strategy} ${x.target} ${x.drill}: cpuWait`).toBeDefined();
      expect(x.cpuWait!.process).toMatch(/^[\w-]+\/[\w-]+$/);
      expect(x.cpuWait!.ms).toBeLessThanOrEqual(x.outageMs! + 100);
    }
    // and inside the band THIS test derives from the timers the run recorded (the same rules as
    // the sim's ci-smb, the same fixture timers), not the band the lab computed for itself
    expectSmbQuickBands(r);
    const drills = new Set(r.runs.map((x) => `${x.strategy}/${x.target}/${x.drill}`));
    for (const s of ['talos-vip+metallb-l2', 'haproxy+metallb-bgp'])
      for (const t of ['api', 'service'])
        for (const d of ['baseline', 'graceful-shutdown', 'crash']) expect(drills.has(`${s}/${t}/${d}`), `${s} ${t} ${d} ran`).toBe(true);

    expect(await ours(engine.docker())).toEqual({ containers: [], networks: [], volumes: [] });
    expect(readdirSync(stateDir)).toEqual([]);
  }, 10 * 60_000);

  it('SIGINT after the first measured run: exit 130, what was measured is kept, no container, network, volume or process is left', async () => {
    const stateDir = mkTemp('dkemu-int-');
    const out = join(mkTemp('dkemu-iout-'), 'run');
    const env = { ...process.env, CI: 'true', LAB_STATE_DIR: stateDir, TLAB_APPLIANCE_IMAGE: image };
    const child = spawn(process.execPath, [join(REPO_ROOT, 'scripts', 'lab.mjs'), 'run', FIXTURE, ...ARGS, '--out', out], { cwd: REPO_ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
    const resultsFile = join(out, 'results.json');
    const measured = () => (existsSync(resultsFile) ? (JSON.parse(readFileSync(resultsFile, 'utf8')) as { runs: unknown[] }).runs.length : 0);
    for (let i = 0; i < 3000 && measured() === 0; i++) {
      expect(child.exitCode, `the run ended before its first measured run:\n${stderr.slice(-3000)}`).toBeNull();
      await sleep(100);
    }
    expect(measured()).toBeGreaterThan(0);
    expect((await ours(engine.docker())).containers.length, 'the lab runs in containers').toBeGreaterThan(0);
    const pids = (readdirSync(stateDir).flatMap((id) => {
      const f = join(stateDir, id, 'resources.jsonl');
      return existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { kind: string; pid?: number }) : [];
    })).filter((x) => x.kind === 'pid' && x.pid).map((x) => x.pid!);
    expect(pids.length).toBeGreaterThan(0);
    process.kill(child.pid!, 'SIGINT');
    const code = await Promise.race([exited, sleep(90_000).then(() => 'timeout' as const)]);
    expect(code, `exit after SIGINT:\n${stderr.slice(-3000)}`).toBe(130);
    expect(measured(), 'what was measured before the interrupt is kept').toBeGreaterThan(0);
    expect(await ours(engine.docker())).toEqual({ containers: [], networks: [], volumes: [] });
    expect(pids.filter(isAlive)).toEqual([]);
    expect(readdirSync(stateDir)).toEqual([]);
  }, 10 * 60_000);

  it('a failure during bring-up (a Docker network the lab cannot create) ends the run with the engine’s reason and removes what was made', async () => {
    // an address conflict Docker refuses: a network of the test's own on the lab's uplink subnet,
    // so the lab's first network is created and its second one fails
    const d = engine.docker();
    const uplink = loadLab(FIXTURE, { repoRoot: REPO_ROOT }).topology.segments.find((x) => x.kind === 'uplink')!.cidr;
    const blocker = await d.createNetwork({ Name: `tlx-${SHORT}-blocker`, Internal: true, Labels: { 'tlab.test': SHORT }, IPAM: { Config: [{ Subnet: uplink }] } });
    try {
      const stateDir = mkTemp('dkemu-fail-');
      const { code, stderr } = await runLabCliRaw(FIXTURE, mkTemp('dkemu-fout-'), ARGS, { LAB_STATE_DIR: stateDir, TLAB_APPLIANCE_IMAGE: image });
      expect(code, stderr.slice(-3000)).toBe(1);
      expect(stderr, 'the engine’s reason reaches the user').toMatch(/overlap|Pool overlaps|address/i);
      expect(await ours(d)).toEqual({ containers: [], networks: [], volumes: [] });
      expect(readdirSync(stateDir)).toEqual([]);
    } finally {
      await blocker.remove();
    }
  }, 5 * 60_000);

  it('kill -9 of the CLI in the middle of a run, then `lab clean`: no container, network, volume or process is left', async () => {
    const stateDir = mkTemp('dkemu-kill-');
    const env = { ...process.env, CI: 'true', LAB_STATE_DIR: stateDir, TLAB_APPLIANCE_IMAGE: image };
    // the CLI process itself (scripts/lab.mjs would re-exec it as a child that outlives a kill -9 of the wrapper)
    const child = spawn(process.execPath, ['--import', TSX, join(REPO_ROOT, 'src', 'cli', 'main.ts'), 'run', FIXTURE, ...ARGS, '--out', mkTemp('dkemu-kout-'), '--json'], { cwd: REPO_ROOT, env, stdio: 'ignore' });
    // until the lab is up and the first strategy's node agents run (processes inside the containers)
    let id = '';
    let pids: number[] = [];
    for (let i = 0; i < 1200; i++) {
      await sleep(100);
      const labs = existsSync(stateDir) ? readdirSync(stateDir) : [];
      if (!labs.length) continue;
      id = labs[0]!;
      const res = join(stateDir, id, 'resources.jsonl');
      if (!existsSync(res)) continue;
      const recs = readFileSync(res, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { kind: string; name: string; pid?: number });
      pids = recs.filter((x) => x.kind === 'pid' && x.pid).map((x) => x.pid!);
      if (recs.some((x) => x.kind === 'pid' && /^cp1\/agent$/.test(x.name))) break;
    }
    expect(id, 'the lab recorded its resources').not.toBe('');
    child.kill('SIGKILL');
    await new Promise((res) => child.once('exit', res));
    const before = await ours(engine.docker());
    expect(before.containers.length, 'the killed run left containers (what clean must remove)').toBeGreaterThan(0);
    expect(before.networks.length).toBeGreaterThan(0);
    expect(pids.filter(isAlive).length, 'processes inside the containers outlived the CLI').toBeGreaterThan(0);

    const cleaned = execFileSync(process.execPath, [join(REPO_ROOT, 'scripts', 'lab.mjs'), 'clean'], { cwd: REPO_ROOT, env, encoding: 'utf8' });
    expect(cleaned).toContain(id);
    expect(await ours(engine.docker())).toEqual({ containers: [], networks: [], volumes: [] });
    expect(pids.filter(isAlive)).toEqual([]);
    expect(readdirSync(stateDir)).toEqual([]);
  }, 10 * 60_000);
});
