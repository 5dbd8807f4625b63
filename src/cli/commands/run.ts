/** `lab run [lab]` — the default verb: up → strategies × drills → report → down. */
import type { Command } from 'commander';
import type { Lab } from '../../model/types.js';
import { runLab, type RunSummary } from '../../orchestrator/api.js';
import { withProgress } from '../progress.js';
import { addRunFlags, checkLabCapacity, defaultOut, loadSelected, out, printJson, withAbort, type RunFlags } from '../shared.js';
import { splitList } from '../../model/select.js';
import { checkOutDir, lockOutDir } from '../../state/out-lock.js';

export const DEFAULT_LAB = 'minecraft';

export function registerRun(program: Command): void {
  const cmd = program
    .command('run [lab]', { isDefault: true })
    .description(`bring a lab up, run every strategy × drill, write results.json + reports, tear down (lab: a name under labs/ or a lab file; default ${DEFAULT_LAB})`);
  addRunFlags(cmd, 'run').action(async (labArg: string | undefined, f: RunFlags) => {
    await runCommand(labArg ?? DEFAULT_LAB, { ...f, dryRun: Boolean(f.dryRun || f.render) }, 'run');
  });
}

/**
 * shared by `run` and `render`. Everything about the run is checked before the engine is called
 * (nothing exists yet when one of these throws, exit 2): the output directories (not a file,
 * creatable or writable, not another live run's), the lab and every flag, the machine's capacity
 * (not for a dry run: it starts nothing); then the output directory is created and locked.
 */
export async function runCommand(labArg: string, f: RunFlags, verb: 'run' | 'render' = f.dryRun ? 'render' : 'run'): Promise<void> {
  if (f.out !== undefined) checkOutDir(f.out, '--out');
  if (f.render !== undefined) checkOutDir(f.render, '--render');
  const lab = loadSelected(labArg, f);
  const outDir = f.out ?? defaultOut(lab.name);
  if (f.out === undefined) checkOutDir(outDir, 'the default output directory');
  if (!f.dryRun) checkLabCapacity(lab, f.provider, Boolean(f.force));
  const lock = lockOutDir(outDir, { lab: lab.name, verb }, f.out === undefined ? 'the default output directory' : '--out');
  try {
    await runLocked(lab, outDir, f);
  } finally {
    lock.release();
  }
}

async function runLocked(lab: Lab, outDir: string, f: RunFlags): Promise<void> {
  const title = `${f.dryRun ? 'dry run' : 'run'} ${lab.name} on ${f.provider}`;
  const summary: RunSummary = await withAbort((signal) =>
    withProgress(title, (progress) =>
      runLab(lab, {
        provider: f.provider,
        strategies: splitList(f.strategies),
        drills: splitList(f.drills),
        quick: Boolean(f.quick),
        repeat: f.repeat,
        out: outDir,
        keep: Boolean(f.keep),
        json: Boolean(f.json),
        dryRun: Boolean(f.dryRun),
        renderDir: f.render,
        parallel: f.parallel,
        live: f.live || f.port !== undefined || f.liveHost !== undefined ? { host: f.liveHost, port: f.port } : undefined,
        downtimeMs: f.downtime !== undefined ? Math.round(f.downtime * 1000) : undefined,
        signal,
        progress,
      }),
    ),
  );
  if (f.json) return printJson(summary);
  out(`${summary.dryRun ? 'dry run of' : 'lab'} ${summary.lab} on ${summary.provider}: ${summary.files.length} file(s) in ${summary.out}`);
  for (const file of summary.files) out(`  ${file}`);
  if (summary.id && f.keep) out(`lab ${summary.id} is still running; remove it with: npm run lab -- down ${summary.id}`);
  if (!summary.dryRun) {
    // the comparison at a glance, ending with the path of report.html (loaded only here: --help stays fast)
    const { summaryForDir } = await import('../../report/summary.js');
    const table = summaryForDir(summary.out);
    if (table) out(`\n${table}`);
  }
}
