/**
 * Agent entry point: `node --import tsx src/emulation/agent/main.ts <spec.json>`, run by the sim provider
 * inside a host's network namespace. Starts the spec's components in order, serves RPC on the
 * spec's unix socket, and on SIGTERM stops them gracefully in reverse order (that is what makes a
 * "graceful shutdown" drill graceful: the Talos VIP controller resigns, kube-vip releases its
 * lease, the MetalLB speaker leaves memberlist). SIGKILL (crash drill) gives them no chance.
 *
 * A strategy switch changes the list in place (RPC `trim` then `extend`, see ./diff.ts): the
 * components after the kept prefix stop gracefully, last first, as on SIGTERM; the new ones start
 * in order. Each component sees its own abort signal (aborted when it alone stops, or with the
 * agent), so stopping one tells it exactly what SIGTERM would.
 */
import { readFileSync, appendFileSync, rmSync } from 'node:fs';
import './components.js';
import { componentFactory } from './registry.js';
import { serve } from './rpc.js';
import { collectHeap } from './heap.js';
import type { AgentComponent, AgentContext, AgentSpec, ComponentSpec } from './types.js';
import { run, now } from '../../util/proc.js';

const spec = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as AgentSpec;
const abort = new AbortController();

const ctx: AgentContext = {
  host: spec.host,
  spec,
  topology: spec.topology,
  signal: abort.signal,
  emit(component, type, data = {}) {
    appendFileSync(spec.eventsFile, JSON.stringify({ t: now(), host: spec.host, component, type, ...data }) + '\n');
  },
  log(component, msg) {
    process.stdout.write(`${new Date().toISOString()} ${spec.host}/${component}: ${msg}\n`);
  },
  run: (cmd, args, opts) => run(cmd, args, opts),
};

const started: { name: string; c: AgentComponent; spec: ComponentSpec; abort: AbortController }[] = [];
let stopping: Promise<void> | null = null;
/** trim/extend one at a time, never during a shutdown */
let changing: Promise<unknown> = Promise.resolve();

async function stopOne(s: (typeof started)[number]): Promise<void> {
  s.abort.abort();
  try {
    await s.c.stop();
  } catch (e) {
    ctx.log(s.name, `stop failed: ${(e as Error).message}`);
  }
}

async function stopAll(): Promise<void> {
  abort.abort();
  for (const s of [...started].reverse()) await stopOne(s);
}

async function startOne(cs: ComponentSpec): Promise<void> {
  const name = cs.name ?? cs.kind;
  const factory = await componentFactory(cs.kind);
  const own = new AbortController();
  const c = factory({ ...ctx, signal: AbortSignal.any([abort.signal, own.signal]) }, cs.config);
  await c.start();
  started.push({ name, c, spec: cs, abort: own });
  ctx.emit(name, 'started');
}

/** stop every component after the first `keep`, last first (graceful, as on SIGTERM) */
async function trim(keep: number): Promise<string[]> {
  const gone: string[] = [];
  while (started.length > keep) {
    const s = started.pop()!;
    await stopOne(s);
    ctx.emit(s.name, 'stopped');
    gone.push(s.name);
  }
  spec.components = started.map((s) => s.spec);
  return gone;
}

async function extend(list: ComponentSpec[]): Promise<string[]> {
  // the whole list before the first start, as on a fresh start (a component may look at its neighbours)
  spec.components = [...started.map((s) => s.spec), ...list];
  for (const cs of list) await startOne(cs);
  ctx.log('agent', `ready: ${started.map((s) => s.name).join(', ')}`);
  return started.map((s) => s.name);
}

function serial<T>(fn: () => Promise<T>): Promise<T> {
  if (stopping) return Promise.reject(new Error(`${spec.host}: agent is stopping`));
  const p = changing.then(fn);
  changing = p.catch(() => undefined);
  return p;
}

function shutdown(code: number) {
  stopping ??= stopAll().finally(() => {
    rmSync(spec.socket, { force: true });
    process.exit(code);
  });
}

process.on('SIGTERM', () => shutdown(0));
process.on('SIGINT', () => shutdown(0));
process.on('uncaughtException', (e) => {
  ctx.log('agent', `uncaught: ${e.stack ?? e}`);
  ctx.emit('agent', 'error', { message: String(e) });
});
process.on('unhandledRejection', (e) => {
  ctx.log('agent', `unhandled rejection: ${(e as Error)?.stack ?? e}`);
});

async function main() {
  rmSync(spec.socket, { force: true });
  await serve(spec.socket, async (method, params) => {
    if (method === 'ping') return { host: spec.host, pid: process.pid, components: started.map((s) => s.name) };
    if (method === 'status') {
      const out: Record<string, unknown> = {};
      for (const { name, c } of started) out[name] = c.status ? await c.status() : {};
      return out;
    }
    if (method === 'unstick') {
      return serial(async () => {
        const done: string[] = [];
        for (const { name, c } of started) {
          const what = c.unstick ? await c.unstick() : null;
          if (what) done.push(`${name}: ${what}`);
        }
        return done;
      });
    }
    // between drills: a full GC now rather than a mark-compact inside the next window
    if (method === 'collect') return collectHeap(Number((params as { minGrowthBytes?: number } | null)?.minGrowthBytes ?? 0));
    if (method === 'stop') {
      setImmediate(() => shutdown(0));
      return { stopping: true };
    }
    // a strategy switch: keep the first `keep` components, then start the given ones after them
    if (method === 'trim') return { stopped: await serial(() => trim(Number((params as { keep: number }).keep))) };
    if (method === 'extend') return { components: await serial(() => extend((params as { components: ComponentSpec[] }).components)) };
    const dot = method.indexOf('.');
    const name = method.slice(0, dot);
    const comp = started.find((s) => s.name === name);
    if (!comp?.c.call) throw new Error(`no component '${name}' with RPC on ${spec.host} (have: ${started.map((s) => s.name).join(', ')})`);
    return comp.c.call(method.slice(dot + 1), params);
  });
  const initial = spec.components;
  await serial(async () => {
    for (const cs of initial) await startOne(cs);
  });
  ctx.emit('agent', 'ready', { components: started.map((s) => s.name) });
  ctx.log('agent', `ready: ${started.map((s) => s.name).join(', ')}`);
}

main().catch((e) => {
  ctx.log('agent', `failed to start: ${(e as Error).stack ?? e}`);
  ctx.emit('agent', 'failed', { message: (e as Error).message });
  shutdown(1);
});
