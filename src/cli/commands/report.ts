/** `lab report <dir>` — regenerate report.md / report.html (+ charts, CSV) from DIR/results.json. */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { regenerateReport } from '../../orchestrator/api.js';
import { LabInputError, UsageError } from '../../util/errors.js';
import { outDirOwner } from '../../state/out-lock.js';
import { out, printJson } from '../shared.js';

export function registerReport(program: Command): void {
  program
    .command('report <dir>')
    .description('rewrite the reports of a run from its results.json (no lab needed)')
    .option('--json', 'print the written files as JSON')
    .action(async (dir: string, f: { json?: boolean }) => {
      const results = join(resolve(dir), 'results.json');
      if (!existsSync(results)) throw LabInputError.one(results, '', 'no such file: expected the output directory of a run (it holds results.json)');
      const owner = outDirOwner(dir);
      if (owner) throw new UsageError(`report ${dir}: a run is still writing there (pid ${owner.pid}, \`lab ${owner.verb} ${owner.lab}\`); expected the directory of a finished run`);
      const files = await regenerateReport(resolve(dir));
      if (f.json) return printJson({ dir: resolve(dir), files });
      for (const file of files) out(file);
      const { summaryForDir } = await import('../../report/summary.js');
      const table = summaryForDir(resolve(dir));
      if (table) out(`\n${table}`);
    });
}
