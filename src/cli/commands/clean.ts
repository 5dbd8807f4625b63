/** `lab clean [id] [--all]` — remove what a lab created, from its state alone (works after SIGKILL). */
import type { Command } from 'commander';
import { cleanLabs } from '../../orchestrator/api.js';
import { LabError } from '../../util/errors.js';
import { out, printJson } from '../shared.js';

export function registerClean(program: Command): void {
  program
    .command('clean [id]')
    .description('remove a lab by id (or by lab name when only one lab has it); without an id, every stale lab (owner gone, not `up`); --all: every lab and any orphan tlab-* namespace')
    .option('--all', 'every lab in the state directory, running or not, and orphan tlab-* namespaces')
    .option('--json', 'print the JSON report')
    .action(async (id: string | undefined, f: { all?: boolean; json?: boolean }) => {
      const report = await cleanLabs({ id, all: f.all });
      const errors = [...report.errors, ...report.labs.flatMap((l) => l.errors.map((e) => `${l.id}: ${e}`))];
      if (f.json) printJson(report);
      else {
        if (!report.labs.length && !report.orphans.length) out(id ? `lab ${id}: nothing to remove` : 'nothing to clean');
        for (const l of report.labs) {
          out(`${l.id} (${l.prefix}): removed ${l.removed.length}, left ${l.skipped.length}${l.errors.length ? `, ${l.errors.length} error(s)` : ''}${l.forgotten ? '' : ' — state kept, run `lab clean` again'}`);
          for (const r of l.removed) out(`  - ${r}`);
          for (const s of l.skipped) out(`  ~ ${s}`);
        }
        for (const o of report.orphans) out(`orphan namespace ${o}: removed`);
      }
      if (errors.length) throw new LabError(`clean left errors:\n${errors.join('\n')}`);
    });
}
