/**
 * What the verbs share: flag parsers, loading + selecting a lab (always BEFORE any engine call:
 * nothing starts until the whole model validates), the abort/signal wiring, and output helpers.
 */
import { Option, InvalidArgumentError, type Command } from 'commander';
import { join } from 'node:path';
import { LabError, UsageError } from '../util/errors.js';
import { loadLab } from '../model/load.js';
import { selectLab, splitList } from '../model/select.js';
import type { Lab } from '../model/types.js';

export const PROVIDER_CHOICES = ['sim', 'docker', 'qemu', 'auto'] as const;

/** Ctrl-C / SIGTERM: the engine was aborted and finished its teardown. Exit code 130. */
export class Interrupted extends LabError {
  override readonly exitCode = 130;
  constructor(signal: string) {
    super(`interrupted by ${signal}: the engine stopped and tore the lab down`);
  }
}

export function out(line: string): void {
  process.stdout.write(line.endsWith('\n') ? line : line + '\n');
}

export function err(line: string): void {
  process.stderr.write(line.endsWith('\n') ? line : line + '\n');
}

export function printJson(value: unknown): void {
  out(JSON.stringify(value, null, 2));
}

// ---------------------------------------------------------------------------------------------
// flags

export function positiveInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^\d+$/.test(v.trim()) || !Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} expects a whole number ≥ 1, got '${v}'`);
    return n;
  };
}

export function positiveNumber(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} expects a number > 0, got '${v}'`);
    return n;
  };
}

export function providerOption(): Option {
  return new Option('--provider <name>', 'where the lab runs: sim (namespaces, emulated Talos control plane), docker / qemu (real Talos), auto')
    .choices([...PROVIDER_CHOICES])
    .default(process.env.LAB_PROVIDER && (PROVIDER_CHOICES as readonly string[]).includes(process.env.LAB_PROVIDER) ? process.env.LAB_PROVIDER : 'sim');
}

export interface RunFlags {
  provider: string;
  strategies?: string;
  drills?: string;
  quick?: boolean;
  repeat?: number;
  out?: string;
  keep?: boolean;
  json?: boolean;
  dryRun?: boolean;
  render?: string;
}

/** The flags of `run` (and, for the ones that make sense, `up` and `render`). */
export function addRunFlags(cmd: Command, which: 'run' | 'render' | 'up'): Command {
  cmd.addOption(providerOption());
  if (which !== 'up') {
    cmd
      .option('--strategies <list>', 'only these strategies of the lab, comma-separated (e.g. talos-vip+metallb-l2,haproxy+metallb-bgp)')
      .option('--drills <list>', 'only these drills of the lab, comma-separated (e.g. baseline,crash)')
      .option('--quick', "quick mode: 1 repeat, short pre/settle/observe windows, the lab's quick drills")
      .option('--repeat <n>', 'repeats per drill (overrides the lab)', positiveInt('--repeat'));
  }
  cmd.option('--out <dir>', 'output directory (default out/<lab>-<timestamp>)');
  if (which === 'run') {
    cmd
      .option('--keep', 'leave the lab running afterwards (remove it with `lab down <id>`)')
      .option('--dry-run', 'validate, print the plan and render every artifact; start nothing')
      .option('--render <dir>', 'with --dry-run: write the rendered artifacts here (implies --dry-run)');
  }
  if (which === 'render') cmd.option('--render <dir>', 'where to write the rendered artifacts (default <out>/render)');
  cmd.option('--json', 'print only a JSON summary on stdout (progress stays on stderr)');
  return cmd;
}

export function defaultOut(labName: string, now = new Date()): string {
  const ts = now.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
  return join('out', `${labName}-${ts}`);
}

/** Load, validate and select: throws LabInputError / UsageError (exit 2) before anything starts. */
export function loadSelected(labArg: string, f: Partial<RunFlags>): Lab {
  const lab = loadLab(labArg);
  return selectLab(lab, { strategies: splitList(f.strategies), drills: splitList(f.drills), quick: f.quick, repeat: f.repeat });
}

// ---------------------------------------------------------------------------------------------
// signals: Ctrl-C aborts the engine, waits for its teardown, exits 130; a second Ctrl-C exits now

export async function withAbort<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let received: string | null = null;
  const onSignal = (sig: NodeJS.Signals) => {
    if (received) {
      err(`\n${sig} again: exiting now without waiting for the teardown; \`npm run cli -- clean\` removes what is left`);
      process.exit(130);
    }
    received = sig;
    err(`\n${sig}: stopping and tearing the lab down (press Ctrl-C again to exit at once)`);
    controller.abort(new Interrupted(sig));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const r = await fn(controller.signal);
    if (received) throw new Interrupted(received);
    return r;
  } catch (e) {
    if (received) throw new Interrupted(received);
    throw e;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

export function requireArg(value: string | undefined, what: string): string {
  if (!value) throw new UsageError(`missing ${what}`);
  return value;
}
