/**
 * The docker provider with REAL-Talos nodes, end to end against the fake Docker Engine and the
 * talosctl/kubectl/helm stubs (test/helpers/fake-docker/): bring-up, every strategy's apply and
 * unapply, every drill primitive's inject and restore, holders, sticky ARP, down — for the labs
 * the nightly runs (minecraft, smb) at the default Talos (v1.13.9), and smb at v1.11.6 (the legacy
 * machine.network VIP). No root, no Docker, no images.
 *
 * What is recorded — every Engine API request (method, path, query, body, status) and every
 * talosctl/kubectl/helm call — is compared with golden files under
 * test/fixtures/golden/docker-talos/<scenario>/, after normalising what legitimately varies
 * (temporary paths, ids, the appliance's content hash, timestamps in helper names). The golden
 * files were reviewed against upstream (see README.md there). They are NEVER rewritten by this
 * test: `npm run golden:docker` (TLAB_GOLDEN_UPDATE=1) regenerates them, to be reviewed in the diff.
 *
 * Besides the golden comparison, the invariants the defects were about are asserted directly.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { parse } from 'yaml';
import { loadLab, REPO_ROOT } from '../../src/model/index.js';
import type { Lab, StrategyRef } from '../../src/model/types.js';
import { LabState } from '../../src/state/state.js';
import { composeStrategy, renderStrategy } from '../../src/strategies/compose.js';
import { createDockerProvider, dockerImages, dockerPrimitive, TALOS_TMPFS, TALOS_VOLUMES } from '../../src/providers/runtimes/docker/talos.js';
import type { Primitive, RunningLab } from '../../src/providers/types.js';
import { PUBLIC_BASE } from '../../src/providers/runtimes/docker/appliance.js';
import { defaultStubRules, labExecHandler, withFakeDocker, type ExecHandler, type RecordedRequest, type StubCall, type StubRule } from '../helpers/fake-docker/index.js';

const GOLDEN = join(REPO_ROOT, 'test', 'fixtures', 'golden', 'docker-talos');
const UPDATE = process.env.TLAB_GOLDEN_UPDATE === '1';
const K8S: Record<string, string> = { 'v1.11.6': '1.34.1', 'v1.12.11': '1.35.4', 'v1.13.9': '1.36.3' };

// ---------------------------------------------------------------------------------------------
// the traffic agent: the provider starts it with a detached exec in the client container; here
// that command runs on the host (the fake runs nothing), and so does the exec that stops it

const agents: ChildProcess[] = [];
afterAll(() => {
  for (const a of agents) if (a.exitCode === null && a.pid) process.kill(-a.pid, 'SIGKILL');
});
const execHandler: ExecHandler = (c, cmd, ctx) => {
  const script = cmd[0] === 'sh' && cmd[1] === '-c' ? cmd[2]! : '';
  if (ctx.detach && script.includes('src/emulation/agent/main.ts')) {
    const child = spawn('sh', ['-c', script], { detached: true, stdio: 'ignore' });
    agents.push(child);
    return { exitCode: 0 };
  }
  if (script.startsWith('kill -TERM $(cat ') && script.includes('/agents/')) {
    execFileSync('sh', ['-c', script], { stdio: 'ignore' });
    return { exitCode: 0 };
  }
  return labExecHandler(c, cmd, ctx);
};

// ---------------------------------------------------------------------------------------------
// the run

interface Phase {
  name: string;
  requests: number;
  calls: number;
}

interface Recording {
  lab: Lab;
  requests: RecordedRequest[];
  calls: StubCall[];
  phases: Phase[];
  root: string;
  fakeDir: string;
}

function labAt(name: string, version: string): Lab {
  const lab = loadLab(name);
  return { ...lab, topology: { ...lab.topology, talos: { version, kubernetesVersion: K8S[version]! } } };
}

/** `kubectl get nodes -o json` as a cluster with every node registered answers it */
function nodesJson(lab: Lab): string {
  return JSON.stringify({ apiVersion: 'v1', kind: 'List', items: lab.topology.nodes.map((n) => ({ metadata: { name: n.name }, status: { addresses: [{ type: 'InternalIP', address: n.ip }, { type: 'Hostname', address: n.name }] } })) });
}

/** The drills a strategy's run can ask of the provider (what dockerPrimitive supports), each on a victim it makes sense for. */
function drillsFor(lab: Lab, ref: StrategyRef): { p: Primitive; host: string }[] {
  const t = lab.topology;
  const cp1 = t.nodes.find((n) => n.role === 'controlplane')!.name;
  const w = t.nodes.find((n) => n.role === 'worker')?.name ?? cp1;
  const out: { p: Primitive; host: string }[] = [];
  for (const p of ['shutdown', 'crash', 'freeze', 'partition', 'link-flap'] as const) out.push({ p, host: cp1 });
  if (t.loadBalancer) out.push({ p: 'crash', host: t.loadBalancer.name });
  if (!('unsupported' in dockerPrimitive('leave', ref))) out.push({ p: 'leave', host: w }, { p: 'join', host: w });
  return out;
}

async function drive(lab: Lab, o: { extraRules?: StubRule[] } = {}): Promise<Recording> {
  const root = mkdtempSync(join(tmpdir(), 'tlx-dtf-'));
  const fakeDir = join(root, 'fake');
  mkdirSync(fakeDir);
  const images = [dockerImages(lab.topology, {}).talos, PUBLIC_BASE];
  const rules: StubRule[] = [
    ...(o.extraRules ?? []),
    { cmd: 'kubectl', match: '(^| )get nodes -o json( |$)', stdout: nodesJson(lab) },
    ...defaultStubRules({ talosVersion: lab.topology.talos.version, kubernetesVersion: lab.topology.talos.kubernetesVersion }),
  ];
  return withFakeDocker(
    async (fx) => {
      const phases: Phase[] = [];
      let last = Date.now();
      const mark = (name: string) => {
        if (process.env.TLAB_E2E_TIMING) console.log(`${Date.now() - last} ms before ${name}`);
        last = Date.now();
        phases.push({ name, requests: fx.engine.requests().length, calls: fx.stubCalls().length });
      };
      const id = `${lab.name}-e2e0`;
      const prefix = `tlab-${id}`;
      const state = LabState.create({ id, prefix, lab: lab.name, labFile: lab.file, provider: 'docker', createdAt: new Date(0).toISOString(), ownerPid: process.pid, status: 'starting' }, join(root, 'state'));
      const provider = createDockerProvider({ shutdownExitWaitMs: 300, retryIntervalMs: 20, readyTimeoutMs: 30_000, agentReadyTimeoutMs: 240_000 });
      mark('up');
      let running: RunningLab | undefined;
      try {
        running = await provider.up(lab, { id, prefix, state, progress: () => {} });
        for (const ref of lab.strategies) {
          if (!provider.supports(ref, lab).supported) continue;
          mark(`apply ${ref.id}`);
          await running.apply(ref, renderStrategy(lab.topology, composeStrategy(ref)));
          mark(`holders ${ref.id}`);
          await running.holders('api');
          await running.holders('service');
          for (const d of drillsFor(lab, ref)) {
            mark(`drill ${ref.id} ${d.p} ${d.host}`);
            await running.inject(d.p, d.host, { downMs: 10 });
            await running.restore(d.host);
          }
          mark(`garp-ignored ${ref.id}`);
          await running.setGarpIgnored(true);
          await running.setGarpIgnored(false);
          mark(`unapply ${ref.id}`);
          await running.unapply(ref);
        }
        mark('down');
        await running.down();
        running = undefined;
        mark('end');
      } finally {
        await running?.down().catch(() => null);
      }
      return { lab, requests: fx.engine.requests(), calls: fx.stubCalls(), phases, root, fakeDir };
    },
    { dir: fakeDir, images, rules, nodes: lab.topology.nodes.map((n) => n.name), onExec: execHandler },
  );
}

// ---------------------------------------------------------------------------------------------
// normalising

function normaliser(r: Recording): (s: string) => string {
  return (s) =>
    s
      .split(r.root)
      .join('<TMP>')
      .split(REPO_ROOT)
      .join('<REPO>')
      .replace(/(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])/g, '<id>')
      .replace(/tlab-appliance(:|%3A)[0-9a-f]{16}/g, 'tlab-appliance$1<hash>')
      .replace(/tlab-bookworm-base:[0-9a-f]{16}/g, 'tlab-bookworm-base:<hash>')
      .replace(/-(nft|helper)-[0-9a-z]{6,12}\b/g, '-$1-<t>')
      .replace(/"uid:gid"|"\d+:\d+"(?=[,}])/g, (m) => (m.includes('uid') ? m : '"<uid>:<gid>"'));
}

function userdata(b64: string): string {
  const cfg = parse(Buffer.from(b64, 'base64').toString('utf8')) as { machine?: { type?: string }; cluster?: { controlPlane?: { endpoint?: string } } };
  const sha = createHash('sha256').update(b64).digest('hex').slice(0, 12);
  return `USERDATA=<base64 machine config: type ${cfg.machine?.type}, endpoint ${cfg.cluster?.controlPlane?.endpoint}, sha256 ${sha}>`;
}

function requestLine(q: RecordedRequest, norm: (s: string) => string): string {
  let body = q.body;
  if (q.path === '/build' || q.path === '/images/create') body = body === undefined ? undefined : '<tar bytes>';
  if (body && typeof body === 'object' && Array.isArray((body as { Env?: unknown }).Env)) {
    body = { ...(body as object), Env: ((body as { Env: string[] }).Env).map((e) => (e.startsWith('USERDATA=') && !e.includes('@@') ? userdata(e.slice(9)) : e)) };
  }
  // dockerode sends create options both as the JSON body and as the query string: the body is what the engine reads
  let qs: Record<string, string> = { ...q.query };
  if ((q.path === '/containers/create' || q.path === '/networks/create') && body && typeof body === 'object') qs = Object.fromEntries(Object.entries(qs).filter(([k]) => k === 'name' || !(k in (body as object))));
  if (q.path === '/build') qs = { t: qs.t ?? '', labels: Object.keys(JSON.parse(qs.labels ?? '{}')).join(',') };
  const query = Object.keys(qs).length ? `?${new URLSearchParams(qs).toString()}` : '';
  return norm(`${q.method} ${q.path}${query}${body !== undefined ? ` ${JSON.stringify(body)}` : ''} → ${q.status}`);
}

/** Requests the provider sends concurrently (down's and a rebuild's graceful stops): sorted within each run. */
function stableOrder(lines: string[]): string[] {
  const out: string[] = [];
  let run: string[] = [];
  const flush = () => {
    out.push(...run.sort());
    run = [];
  };
  for (const l of lines) {
    if (/^POST \/containers\/[^ ]+\/stop\?t=/.test(l)) run.push(l);
    else {
      flush();
      out.push(l);
    }
  }
  flush();
  return out;
}

function render(r: Recording): { engine: string; cli: string; containers: string } {
  const norm = normaliser(r);
  const engine: string[] = [];
  const cli: string[] = [];
  const phases = [...r.phases];
  for (let i = 0; i < phases.length; i++) {
    const p = phases[i]!;
    const next = phases[i + 1];
    engine.push(`# ${p.name}`, ...stableOrder(r.requests.slice(p.requests, next?.requests).map((q) => requestLine(q, norm))));
    cli.push(`# ${p.name}`, ...r.calls.slice(p.calls, next?.calls).map((c) => norm([c.cmd, ...c.args].map((a) => (/[\s"'$]/.test(a) ? JSON.stringify(a) : a)).join(' '))));
  }
  const containers: Record<string, unknown> = {};
  for (const q of r.requests.filter((x) => x.path === '/containers/create' && !/-(nft|helper)-/.test(x.query.name ?? ''))) {
    const b = q.body as { Env?: string[] };
    containers[q.query.name!] ??= JSON.parse(norm(JSON.stringify({ ...b, Env: b.Env?.map((e) => (e.startsWith('USERDATA=') ? userdata(e.slice(9)) : e)) })));
  }
  return { engine: engine.join('\n') + '\n', cli: cli.join('\n') + '\n', containers: JSON.stringify(containers, null, 2) + '\n' };
}

function compareGolden(scenario: string, got: ReturnType<typeof render>): void {
  const dir = join(GOLDEN, scenario);
  const files = { 'engine.txt': got.engine, 'cli.txt': got.cli, 'containers.json': got.containers };
  if (UPDATE) {
    mkdirSync(dir, { recursive: true });
    for (const [f, c] of Object.entries(files)) writeFileSync(join(dir, f), c);
    return;
  }
  for (const [f, c] of Object.entries(files)) {
    const path = join(dir, f);
    expect(existsSync(path), `${path} is missing: run \`npm run golden:docker\` and review the diff`).toBe(true);
    const want = readFileSync(path, 'utf8');
    if (want !== c) {
      // the first differing line makes the failure readable; the whole file is in the repo
      const a = want.split('\n');
      const b = c.split('\n');
      const i = a.findIndex((l, k) => l !== b[k]);
      expect(`${f}:${i + 1}: ${b[i] ?? '<end>'}`, `${scenario}/${f} differs from the golden file (npm run golden:docker regenerates it; review the diff)`).toBe(`${f}:${i + 1}: ${a[i] ?? '<end>'}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// the invariants

const argsOf = (r: Recording, cmd: string) => r.calls.filter((c) => c.cmd === cmd).map((c) => c.args);
const idx = (r: Recording, f: (c: StubCall) => boolean) => r.calls.findIndex(f);
const hasWord = (c: StubCall, ...w: string[]) => w.every((x) => c.args.includes(x));

function checkInvariants(r: Recording): void {
  const t = r.lab.topology;
  const talos = (c: StubCall) => c.cmd === 'talosctl';
  // order: gen secrets → gen config → containers → bootstrap once → kubeconfig → every node waited for
  const secrets = idx(r, (c) => talos(c) && hasWord(c, 'gen', 'secrets'));
  const gen = idx(r, (c) => talos(c) && hasWord(c, 'gen', 'config'));
  const boots = r.calls.filter((c) => talos(c) && c.args.includes('bootstrap'));
  const bootstrap = r.calls.indexOf(boots[0]!);
  const kubeconfig = idx(r, (c) => talos(c) && c.args.includes('kubeconfig'));
  const health = idx(r, (c) => talos(c) && c.args.includes('health'));
  const registered = idx(r, (c) => c.cmd === 'kubectl' && hasWord(c, 'get', 'nodes', 'json'));
  expect(secrets).toBeGreaterThanOrEqual(0);
  expect(gen).toBeGreaterThan(secrets);
  expect(bootstrap).toBeGreaterThan(gen);
  expect(kubeconfig).toBeGreaterThan(bootstrap);
  expect(registered).toBeGreaterThan(kubeconfig);
  const rebuilds = r.calls.filter((c) => talos(c) && hasWord(c, 'gen', 'secrets')).length;
  expect(boots).toHaveLength(rebuilds); // once per cluster built, always the same node
  for (const b of boots) expect(b.args[b.args.indexOf('--nodes') + 1]).toBe(t.nodes.find((n) => n.role === 'controlplane')!.ip);
  if (health >= 0) {
    const h = r.calls[health]!.args;
    const listed = [h[h.indexOf('--control-plane-nodes') + 1], ...(h.includes('--worker-nodes') ? [h[h.indexOf('--worker-nodes') + 1]] : [])].join(',').split(',');
    expect(listed.sort()).toEqual(t.nodes.map((n) => n.ip).sort());
  }
  expect(r.calls.some((c) => c.cmd === 'kubectl' && c.args.includes('wait') && c.args.includes('--all'))).toBe(false);
  // every live patch: no reboot, and never machine.files
  const livePatches = argsOf(r, 'talosctl').filter((x) => x.some((a, i) => a === 'patch' && x[i + 1] === 'machineconfig'));
  expect(livePatches.length).toBeGreaterThan(0);
  for (const a of livePatches) expect(a).toContain('--mode=no-reboot');
  // container creates: the Talos ones as talosctl's docker provisioner, the request order create → start
  const creates = r.requests.filter((q) => q.path === '/containers/create');
  const talosCreates = creates.filter((q) => (q.body as { Labels?: Record<string, string> }).Labels?.['talos.owned'] === 'true');
  expect(talosCreates.length).toBeGreaterThanOrEqual(t.nodes.length);
  for (const q of talosCreates) {
    const b = q.body as { Env: string[]; HostConfig: { Privileged: boolean; ReadonlyRootfs: boolean; SecurityOpt: string[]; Mounts: { Type: string; Target: string }[]; RestartPolicy?: unknown } };
    expect(b.Env.filter((e) => e === 'PLATFORM=container' || e.startsWith('USERDATA=') || e.startsWith('TALOSSKU='))).toHaveLength(3);
    expect(b.HostConfig).toMatchObject({ Privileged: true, ReadonlyRootfs: true, SecurityOpt: ['seccomp:unconfined'] });
    expect(b.HostConfig.Mounts.map((m) => m.Target)).toEqual([...TALOS_TMPFS, ...TALOS_VOLUMES]);
    expect(b.HostConfig.RestartPolicy).toBeUndefined();
  }
  // networks: none internal
  for (const q of r.requests.filter((x) => x.path === '/networks/create')) expect((q.body as { Internal: boolean }).Internal).toBe(false);
  // the traffic agent runs as the invoking user
  const agentExec = r.requests.find((q) => /\/exec$/.test(q.path) && JSON.stringify(q.body).includes('agent/main.ts'))!;
  expect((agentExec.body as { User: string }).User).toBe(`${process.getuid?.() ?? 0}:${process.getgid?.() ?? 0}`);
  // down: every container stopped gracefully before it is removed
  const down = r.phases.find((p) => p.name === 'down')!;
  const tail = r.requests.slice(down.requests);
  for (const q of tail.filter((x) => x.method === 'DELETE' && x.path.startsWith('/containers/'))) {
    const name = q.path.split('/')[2]!;
    if (/-(nft|helper)-/.test(name)) continue;
    const stop = tail.findIndex((x) => x.path === `/containers/${name}/stop`);
    expect(stop, `${name} stopped before removal`).toBeGreaterThanOrEqual(0);
    expect(stop).toBeLessThan(tail.indexOf(q));
  }
  // a graceful shutdown's restore waits for the container to exit before starting it
  for (const ph of r.phases.filter((p) => / shutdown /.test(p.name))) {
    const seg = r.requests.slice(ph.requests, r.phases[r.phases.indexOf(ph) + 1]!.requests).map((q) => `${q.method} ${q.path}`);
    const host = ph.name.split(' ').at(-1)!;
    const name = `tlab-${r.lab.name}-e2e0-${host}`;
    const wait = seg.indexOf(`POST /containers/${name}/wait`);
    expect(wait, `${ph.name}: wait`).toBeGreaterThanOrEqual(0);
    expect(seg.indexOf(`POST /containers/${name}/start`)).toBeGreaterThan(wait);
  }
  // every Service of the topology is rendered and applied for every strategy
  for (const ref of r.lab.strategies) {
    const applied = r.calls.filter((c) => c.cmd === 'kubectl' && c.args.includes('apply') && c.args.some((a) => a.endsWith(`/strategies/${ref.id}/workload/services.yaml`)));
    expect(applied.length, `${ref.id}: Services applied`).toBe(1);
  }
  // link-flap on an engine without interface names (API 1.41): the link is renamed back by MAC
  const flap = r.phases.find((p) => / link-flap /.test(p.name));
  if (flap) {
    const seg = r.requests.slice(flap.requests, r.phases[r.phases.indexOf(flap) + 1]!.requests);
    expect(seg.map((q) => `${q.method} ${q.path}`).filter((x) => /\/networks\/[^/]+\/(dis)?connect$/.test(x)).map((x) => x.split('/').at(-1))).toEqual(['disconnect', 'connect']);
    expect(seg.some((q) => q.path === '/containers/create' && JSON.stringify(q.body).includes('ip link set dev'))).toBe(true);
  }
}

// ---------------------------------------------------------------------------------------------

const scenarios: { name: string; lab: string; version: string }[] = [
  { name: 'minecraft-v1.13.9', lab: 'minecraft', version: 'v1.13.9' },
  { name: 'smb-v1.13.9', lab: 'smb', version: 'v1.13.9' },
  { name: 'smb-v1.11.6', lab: 'smb', version: 'v1.11.6' },
];

describe('docker provider, real-Talos nodes, against the fake engine and CLI stubs', () => {
  for (const s of scenarios) {
    it(`${s.name}: bring-up, every strategy applied and taken away, every drill injected and restored, down — as the golden files say`, async () => {
      const r = await drive(labAt(s.lab, s.version));
      try {
        checkInvariants(r);
        compareGolden(s.name, render(r));
      } finally {
        rmSync(r.root, { recursive: true, force: true });
      }
    });
  }

  it('a bootstrap whose reply was lost (AlreadyExists on the retry) is a bootstrapped cluster, not a failed bring-up', async () => {
    const lab = labAt('minecraft', 'v1.13.9');
    const r = await drive(lab, { extraRules: [{ cmd: 'talosctl', match: '(^| )bootstrap( |$)', exitCode: 1, stderr: 'error executing bootstrap: rpc error: code = AlreadyExists desc = etcd data directory is not empty\n' }] });
    try {
      const boots = r.calls.filter((c) => c.cmd === 'talosctl' && c.args.includes('bootstrap'));
      expect(boots).toHaveLength(1);
      expect(r.phases.at(-1)!.name).toBe('end');
      expect(r.calls.some((c) => c.cmd === 'talosctl' && c.args.includes('kubeconfig'))).toBe(true);
    } finally {
      rmSync(r.root, { recursive: true, force: true });
    }
  });
});


