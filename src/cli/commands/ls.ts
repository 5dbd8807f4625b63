/** `lab ls` — the labs recorded in the state directory, running or left behind. */
import type { Command } from 'commander';
import { listLabs } from '../../orchestrator/api.js';
import { out, printJson } from '../shared.js';

export function registerLs(program: Command): void {
  program
    .command('ls')
    .description('list labs (running, up, or stale leftovers that `lab clean` removes)')
    .option('--json', 'print JSON')
    .action(async (f: { json?: boolean }) => {
      const labs = await listLabs();
      if (f.json) return printJson(labs);
      if (!labs.length) return out('no labs');
      const rows = [
        ['ID', 'LAB', 'PROVIDER', 'STATUS', 'OWNER', 'CREATED', 'RESOURCES'],
        ...labs.map((l) => [
          l.id,
          l.lab,
          l.provider,
          l.stale ? `${l.status} (stale)` : l.status,
          l.ownerPid ? `${l.ownerPid}${l.ownerAlive ? '' : ' (dead)'}` : '-',
          l.createdAt,
          String(l.resources),
        ]),
      ];
      const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
      for (const r of rows) out(r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
    });
}
