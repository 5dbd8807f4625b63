/** `lab up <lab>` — bring the lab's topology up and leave it running (`lab down <id>` removes it). */
import type { Command } from 'commander';
import { upLab } from '../../orchestrator/api.js';
import { withProgress } from '../progress.js';
import { addRunFlags, checkLabCapacity, defaultOut, loadSelected, out, printJson, withAbort, type RunFlags } from '../shared.js';
import { checkOutDir } from '../../state/out-lock.js';

export function registerUp(program: Command): void {
  const cmd = program.command('up <lab>').description('bring a lab up and leave it running (no strategy applied); prints its id');
  addRunFlags(cmd, 'up').action(async (labArg: string, f: RunFlags) => {
    // everything checked before bring-up (exit 2, nothing created): --out, the lab, the capacity
    if (f.out !== undefined) checkOutDir(f.out, '--out');
    const lab = loadSelected(labArg, {});
    checkLabCapacity(lab, f.provider, Boolean(f.force));
    const r = await withAbort((signal) =>
      withProgress(`up ${lab.name} on ${f.provider}`, (progress) => upLab(lab, { provider: f.provider, out: f.out ?? defaultOut(lab.name), signal, progress })),
    );
    if (f.json) return printJson({ lab: lab.name, provider: f.provider, ...r });
    out(`lab ${r.id} is up (prefix ${r.prefix}); remove it with: npm run lab -- down ${r.id}`);
  });
}
