/** `lab render <lab> --render DIR` — `run --dry-run`: validate, plan, render every artifact, start nothing. */
import type { Command } from 'commander';
import { addRunFlags, type RunFlags } from '../shared.js';
import { runCommand } from './run.js';

export function registerRender(program: Command): void {
  const cmd = program.command('render <lab>').description('validate the lab, print the plan and write every rendered artifact (Talos patches, manifests, frr.conf, haproxy.cfg); starts nothing');
  addRunFlags(cmd, 'render').action(async (labArg: string, f: RunFlags) => {
    await runCommand(labArg, { ...f, dryRun: true }, 'render');
  });
}
