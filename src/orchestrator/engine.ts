/**
 * Engine entry points behind the CLI verbs (the CLI only parses flags and calls these).
 * run: up → strategies × drills → results.json + reports → down. up/down/ls/clean work from the
 * lab's state directory, so `down` and `clean` work after the orchestrator was SIGKILLed.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Lab } from '../model/types.js';
import type { Provider } from '../providers/types.js';
import type { Results } from '../results/types.js';
import { resolveProvider } from '../providers/index.js';
import { bringUp, planLine, runLabFlow, schedule, type Progress } from './run.js';
import { RunEvents } from './events.js';

export interface EngineRunOptions {
  provider: string;
  out: string;
  keep?: boolean;
  dryRun?: boolean;
  renderDir?: string;
  signal?: AbortSignal;
  progress: Progress;
  /** lab instances at once (strategies in parallel); default: what the machine holds */
  parallel?: number;
  /** serve the live page while the run goes */
  live?: { host?: string; port?: number; onUrl?(url: string): void };
  /** a crash nobody can take over: the node's downtime (ms) */
  downtimeMs?: number;
}

export async function engineRun(lab: Lab, o: EngineRunOptions): Promise<{ results?: Results; out: string; files: string[]; keptId?: string }> {
  const provider: Provider = await resolveProvider(o.provider, lab, (m) => o.progress.log(m));
  const out = resolve(o.out);
  if (o.dryRun) return { out, files: await dryRun(lab, provider, o) };
  mkdirSync(out, { recursive: true });
  // the run's events: to <out>/live.jsonl (followed by `lab watch`) and to the live page
  const events = new RunEvents();
  const { writeEventLog } = await import('../live/follow.js');
  const log = writeEventLog(join(out, 'live.jsonl'));
  events.on(log.write);
  let live: { url: string; close(): Promise<void> } | undefined;
  if (o.live) {
    const { startLiveServer } = await import('../live/server.js');
    live = await startLiveServer({ events, host: o.live.host, port: o.live.port ?? 0, reportDir: () => out, log: (m) => o.progress.log(m) });
    o.live.onUrl?.(live.url);
  }
  try {
    const r = await runLabFlow(lab, { provider, out, keep: Boolean(o.keep), signal: o.signal, progress: o.progress, parallel: o.parallel, events, observe: Boolean(o.live), downtimeMs: o.downtimeMs });
    events.emit({ type: 'run-end', t: Date.now(), status: 'ok' });
    return { results: r.results ?? undefined, out, files: r.files, keptId: r.keptId };
  } catch (e) {
    events.emit({ type: 'run-end', t: Date.now(), status: o.signal?.aborted ? 'interrupted' : 'failed', error: (e as Error).message });
    throw e;
  } finally {
    await live?.close();
    await log.close();
  }
}

async function dryRun(lab: Lab, provider: Provider, o: EngineRunOptions): Promise<string[]> {
  const { talosStrategyFiles } = await import('../providers/kinds/talos/files.js');
  const renderDir = resolve(o.renderDir ?? join(o.out, 'render'));
  const steps = await provider.plan(lab, { prefix: `tlab-${lab.name}-dryrun`, renderDir });
  for (const s of steps) o.progress.log(s.command ? `${s.what}\n    $ ${s.command}` : s.what);
  // what the run would measure and how long it would take, as the run itself prints it
  const plan = schedule(lab, provider, { parallel: o.parallel, observe: Boolean(o.live), downtimeMs: o.downtimeMs });
  for (const [id, reason] of plan.refused) o.progress.log(`${id}: unsupported — ${reason}`);
  for (const [i, lane] of plan.laneList.entries()) {
    for (const ref of lane) {
      const n = plan.todo.filter((r) => r.strategy === ref.id).length;
      const where = plan.laneList.length > 1 ? ` (instance ${i + 1})` : '';
      o.progress.log(`${ref.id}${where}: ${n} run${n === 1 ? '' : 's'}, about ${Math.round(plan.costOf(ref) / 1000)} s`);
    }
  }
  o.progress.log(planLine(plan));
  const written: string[] = [];
  for (const ref of lab.strategies) {
    // what a real cluster gets for the strategy: the roles' manifests and Talos patches, the Talos
    // kind's patches, the routers' frr.conf; the sim runs the same roles emulated
    for (const f of talosStrategyFiles(lab.topology, ref)) {
      const p = join(renderDir, ref.id, f.path);
      mkdirSync(join(p, '..'), { recursive: true });
      writeFileSync(p, f.content);
      written.push(p);
    }
  }
  return written;
}

export async function engineUp(lab: Lab, o: EngineRunOptions): Promise<{ id: string; prefix: string; bringUpMs: number }> {
  const provider = await resolveProvider(o.provider, lab, (m) => o.progress.log(m));
  await provider.check(lab);
  const { running, bringUpMs } = await bringUp(lab, { provider, out: o.out, signal: o.signal, progress: o.progress });
  return { id: running.id, prefix: running.prefix, bringUpMs };
}

