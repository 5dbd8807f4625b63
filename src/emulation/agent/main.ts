/**
 * Agent entry point: `node --import tsx src/emulation/agent/main.ts <spec.json>`, run by the sim provider
 * inside a host's network namespace. Starts the spec's components in order, serves RPC on the
 * spec's unix socket, and on SIGTERM stops them gracefully in reverse order (that is what makes a
 * "graceful shutdown" drill graceful: the Talos VIP controller resigns, kube-vip releases its
 * lease, the MetalLB speaker leaves memberlist). SIGKILL (crash drill) gives them no chance.
 */
import { readFileSync, appendFileSync, rmSync } from 'node:fs';
import './components.js';
import { componentFactory } from './registry.js';
import { serve } from './rpc.js';
import type { AgentComponent, AgentContext, AgentSpec } from './types.js';
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

const started: { name: string; c: AgentComponent }[] = [];
let stopping: Promise<void> | null = null;

async function stopAll(): Promise<void> {
  abort.abort();
  for (const { name, c } of [...started].reverse()) {
    try {
      await c.stop();
    } catch (e) {
      ctx.log(name, `stop failed: ${(e as Error).message}`);
    }
  }
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
    if (method === 'stop') {
      setImmediate(() => shutdown(0));
      return { stopping: true };
    }
    const dot = method.indexOf('.');
    const name = method.slice(0, dot);
    const comp = started.find((s) => s.name === name);
    if (!comp?.c.call) throw new Error(`no component '${name}' with RPC on ${spec.host} (have: ${started.map((s) => s.name).join(', ')})`);
    return comp.c.call(method.slice(dot + 1), params);
  });
  for (const cs of spec.components) {
    const name = cs.name ?? cs.kind;
    const factory = await componentFactory(cs.kind);
    const c = factory(ctx, cs.config);
    await c.start();
    started.push({ name, c });
    ctx.emit(name, 'started');
  }
  ctx.emit('agent', 'ready', { components: started.map((s) => s.name) });
  ctx.log('agent', `ready: ${started.map((s) => s.name).join(', ')}`);
}

main().catch((e) => {
  ctx.log('agent', `failed to start: ${(e as Error).stack ?? e}`);
  ctx.emit('agent', 'failed', { message: (e as Error).message });
  shutdown(1);
});
