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
import { loadPlugin } from '../util/plugin.js';
import { bringUp, runLabFlow, type Progress } from './run.js';

export interface EngineRunOptions {
  provider: string;
  out: string;
  keep?: boolean;
  dryRun?: boolean;
  renderDir?: string;
  signal?: AbortSignal;
  progress: Progress;
}

export async function engineRun(lab: Lab, o: EngineRunOptions): Promise<{ results?: Results; out: string; files: string[] }> {
  const provider: Provider = await resolveProvider(o.provider, lab, (m) => o.progress.log(m));
  const out = resolve(o.out);
  if (o.dryRun) return { out, files: await dryRun(lab, provider, o) };
  const results = await runLabFlow(lab, { provider, out, keep: Boolean(o.keep), signal: o.signal, progress: o.progress });
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'results.json'), JSON.stringify(results, null, 2) + '\n');
  const files = [join(out, 'results.json')];
  type Validate = (r: unknown) => { valid: boolean; errors: string[] };
  const validateResults = await loadPlugin<Validate>('results', 'validator', import.meta.url, '../results/validate.js', 'validateResults');
  const v = validateResults(results);
  if (!v.valid) o.progress.log(`results.json does not validate against results.schema.json:\n${v.errors.join('\n')}`);
  type Write = (r: Results, dir: string) => Promise<string[]>;
  const writeReports = await loadPlugin<Write>('report', 'writer', import.meta.url, '../report/writer.js', 'writeReports');
  files.push(...(await writeReports(results, out)));
  return { results, out, files };
}

async function dryRun(lab: Lab, provider: Provider, o: EngineRunOptions): Promise<string[]> {
  const { talosStrategyFiles } = await import('../providers/kinds/talos/files.js');
  const renderDir = resolve(o.renderDir ?? join(o.out, 'render'));
  const steps = await provider.plan(lab, { prefix: `tlab-${lab.name}-dryrun`, renderDir });
  for (const s of steps) o.progress.log(s.command ? `${s.what}\n    $ ${s.command}` : s.what);
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
  const { running, bringUpMs } = await bringUp(lab, { provider, out: o.out, keep: true, signal: o.signal, progress: o.progress });
  return { id: running.id, prefix: running.prefix, bringUpMs };
}

