/**
 * `lab watch [id]` — the live page of a run started elsewhere (another terminal, CI): it follows
 * the run's event log (`<out>/live.jsonl`, where the lab's state says the run writes) from its
 * start, so the page catches up, then shows what happens as it happens. Read-only.
 */
import type { Command } from 'commander';
import { join, resolve } from 'node:path';
import { existsSync } from 'node:fs';
import { UsageError } from '../../util/errors.js';
import { resolveLabRef, listLabStates } from '../../state/clean.js';
import { LabState } from '../../state/state.js';
import { err, out, positiveInt, withAbort } from '../shared.js';

export function registerWatch(program: Command): void {
  program
    .command('watch [id]')
    .description('serve the live page of a running lab (its id, or its lab name when only one runs; default: the only running lab)')
    .option('--port <n>', 'the port (default: any free one)', positiveInt('--port', 65535))
    .option('--live-host <addr>', 'the address to listen on (default 127.0.0.1; another address lets the room watch)')
    .option('--out <dir>', "follow this run's output directory instead (its live.jsonl)")
    .action(async (id: string | undefined, f: { port?: number; liveHost?: string; out?: string }) => {
      const dir = f.out ? resolve(f.out) : outOf(id);
      const file = join(dir, 'live.jsonl');
      if (!existsSync(file)) throw new UsageError(`${file}: no event log (a run writes it to its output directory while it runs)`);
      const { RunEvents } = await import('../../orchestrator/events.js');
      const { startLiveServer } = await import('../../live/server.js');
      const { followFile } = await import('../../live/follow.js');
      const bus = new RunEvents();
      const live = await startLiveServer({ events: bus, host: f.liveHost, port: f.port ?? 0, reportDir: () => dir, log: (m) => err(m) });
      out(`live view of ${dir}: ${live.url}   (Ctrl-C to stop watching; the run goes on)`);
      try {
        await withAbort((signal) => followFile(file, (e) => bus.emit(e), signal).catch((e) => (signal.aborted ? undefined : Promise.reject(e))));
      } catch (e) {
        if ((e as { exitCode?: number }).exitCode !== 130) throw e;
      } finally {
        await live.close();
      }
    });
}

/** the output directory the lab's run writes to, from its state */
function outOf(ref: string | undefined): string {
  const labs = listLabStates().filter((l) => !l.stale);
  let id = ref;
  if (!id) {
    if (labs.length !== 1) throw new UsageError(`expected a lab id: ${labs.length ? `running labs: ${labs.map((l) => l.id).join(', ')}` : 'no lab is running'}`);
    id = labs[0]!.id;
  }
  const resolved = resolveLabRef(id, 'watch');
  if (!resolved) throw new UsageError(`no lab '${id}'; running labs: ${labs.map((l) => l.id).join(', ') || 'none'}`);
  const meta = LabState.list().find((s) => s.id === resolved)?.meta();
  if (!meta?.out) throw new UsageError(`lab ${resolved} records no output directory (labs brought up with \`lab up\` run no drills: there is nothing to watch)`);
  return resolve(meta.out);
}
