/** `lab down [id]` — tear a running lab down (the only one when no id is given; a lab name when exactly one lab has it). */
import type { Command } from 'commander';
import { downLab, listLabs } from '../../orchestrator/api.js';
import { resolveLabRef } from '../../state/clean.js';
import { UsageError } from '../../util/errors.js';
import { out, printJson } from '../shared.js';

export function registerDown(program: Command): void {
  program
    .command('down [id]')
    .description('tear a lab down by id (see `lab ls`) or by lab name when only one lab has it; without an id, the only lab there is')
    .option('--json', 'print a JSON result')
    .action(async (id: string | undefined, f: { json?: boolean }) => {
      // a lab name (`lab down smb`) stands for its id when exactly one lab has it
      let target = id ? (resolveLabRef(id, 'down') ?? id) : undefined;
      if (!target) {
        const labs = await listLabs();
        if (labs.length === 0) throw new UsageError('no labs to take down (`lab ls` lists none)');
        if (labs.length > 1) throw new UsageError(`several labs exist; say which: lab down <id> (ids: ${labs.map((l) => l.id).join(', ')})`);
        target = labs[0]!.id;
      }
      await downLab(target);
      if (f.json) return printJson({ id: target, down: true });
      out(`lab ${target} is down`);
    });
}
