/**
 * `withFakeDocker(fn)`: run `fn` against the fake Docker Engine and the talosctl/kubectl/helm stubs,
 * the way the docker provider finds them — DOCKER_HOST (dockerode's default connection), the
 * stubs first on PATH (src/util/proc.ts `run` resolves commands through PATH), and the stubs'
 * TLAB_STUB_LOG / TLAB_STUB_RULES / TLAB_STUB_NODES. Restores the environment and stops the
 * engine afterwards, also when `fn` throws.
 *
 * It changes process.env: not for tests that run concurrently in one worker.
 *
 *   await withFakeDocker(async (fx) => {
 *     const lab = await dockerProvider.up(lab, ctx);          // talks to the fake
 *     expect(fx.stubCalls().map((c) => c.args.slice(0, 2))).toContainEqual(['gen', 'secrets']);
 *     expect(fx.engine.requests().some((r) => r.path === '/networks/create')).toBe(true);
 *   }, { images: ['ghcr.io/siderolabs/talos:v1.11.6'], nodes: ['cp1', 'cp2', 'cp3'] });
 */
import { accessSync, chmodSync, constants, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Docker from 'dockerode';
import { startFakeEngine, type FakeEngine, type FakeEngineOptions } from './engine.js';
import { defaultStubRules, labExecHandler, labStartHandler, type StubCall, type StubRule } from './default-rules.js';

export * from './engine.js';
export * from './default-rules.js';

/** The directory of the executable stubs (talosctl, kubectl, helm). */
export const STUBS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'stubs');
export const STUB_COMMANDS = ['talosctl', 'kubectl', 'helm'] as const;

export interface FakeDockerOptions extends FakeEngineOptions {
  /** stub rules (default: defaultStubRules()) */
  rules?: StubRule[];
  /** the nodes `kubectl get nodes -o name` lists: a count or names (TLAB_STUB_NODES) */
  nodes?: number | string[];
}

export interface FakeDocker {
  engine: FakeEngine;
  /** a dockerode client on the fake's socket */
  docker: Docker;
  dir: string;
  stubsDir: string;
  stubLog: string;
  rulesFile: string;
  /** the stub calls so far, in order */
  stubCalls(): StubCall[];
  /** replace the stub rules (takes effect on the next call) */
  setRules(rules: StubRule[]): void;
}

export function readStubCalls(file: string): StubCall[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as StubCall);
}

/** Make sure the stubs are executable (a checkout or copy may have lost the mode bits). */
export function ensureStubsExecutable(): void {
  for (const c of STUB_COMMANDS) {
    const f = join(STUBS_DIR, c);
    try {
      accessSync(f, constants.X_OK);
    } catch {
      chmodSync(f, 0o755);
    }
  }
}

const ENV_KEYS = ['PATH', 'DOCKER_HOST', 'TLAB_STUB_LOG', 'TLAB_STUB_RULES', 'TLAB_STUB_NODES'] as const;

export async function withFakeDocker<T>(fn: (fx: FakeDocker) => Promise<T> | T, opts: FakeDockerOptions = {}): Promise<T> {
  ensureStubsExecutable();
  const ownDir = !opts.dir;
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'tlab-fxd-'));
  const stubLog = join(dir, 'stub-calls.jsonl');
  const rulesFile = join(dir, 'stub-rules.json');
  const setRules = (rules: StubRule[]) => writeFileSync(rulesFile, JSON.stringify(rules, null, 2));
  setRules(opts.rules ?? defaultStubRules());

  const saved = Object.fromEntries(ENV_KEYS.map((k) => [k, process.env[k]])) as Record<(typeof ENV_KEYS)[number], string | undefined>;
  let engine: FakeEngine | undefined;
  try {
    engine = await startFakeEngine({ ...opts, dir, onExec: opts.onExec ?? labExecHandler, onStart: opts.onStart ?? labStartHandler });
    process.env.PATH = [STUBS_DIR, saved.PATH].filter(Boolean).join(delimiter);
    process.env.DOCKER_HOST = engine.dockerHost;
    process.env.TLAB_STUB_LOG = stubLog;
    process.env.TLAB_STUB_RULES = rulesFile;
    if (opts.nodes !== undefined) process.env.TLAB_STUB_NODES = Array.isArray(opts.nodes) ? opts.nodes.join(',') : String(opts.nodes);
    else delete process.env.TLAB_STUB_NODES;
    const docker = new Docker({ socketPath: engine.socketPath });
    return await fn({ engine, docker, dir, stubsDir: STUBS_DIR, stubLog, rulesFile, stubCalls: () => readStubCalls(stubLog), setRules });
  } finally {
    for (const k of ENV_KEYS) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
    await engine?.stop();
    if (ownDir) rmSync(dir, { recursive: true, force: true });
  }
}
