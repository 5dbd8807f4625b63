/**
 * What the verbs share: flag parsers, loading + selecting a lab and the checks of a run (always
 * BEFORE any engine call: nothing starts until the whole model, every flag, the output directory
 * and the machine's capacity check out), the abort/signal wiring, and output helpers.
 */
import { Option, InvalidArgumentError, type Command } from 'commander';
import { join } from 'node:path';
import { LabError, LabInputError, UsageError } from '../util/errors.js';
import { display, lineOfField, loadLab } from '../model/load.js';
import { selectLab, splitList } from '../model/select.js';
import { checkCapacity, machineFacts, type MachineFacts } from '../model/capacity.js';
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

/** The lab schema's bound on `repeats` (src/model/schema.ts): --repeat takes the same range. */
export const MAX_REPEAT = 100;

export function positiveInt(name: string, max = Number.MAX_SAFE_INTEGER) {
  const range = max < Number.MAX_SAFE_INTEGER ? ` (at most ${max})` : '';
  return (v: string): number => {
    const n = Number(v);
    if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < 1 || n > max) throw new InvalidArgumentError(`${name} expects a whole number ≥ 1${range}, got '${v}'`);
    return n;
  };
}

export function positiveNumber(name: string, max = Number.MAX_VALUE) {
  const range = max < Number.MAX_VALUE ? ` (at most ${max})` : '';
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n <= 0 || n > max) throw new InvalidArgumentError(`${name} expects a number > 0${range}, got '${v}'`);
    return n;
  };
}

export function providerOption(): Option {
  return new Option('--provider <name>', 'where the lab runs: sim (namespaces, emulated Talos control plane), docker / qemu (real Talos), auto (default $LAB_PROVIDER, else sim)')
    .choices([...PROVIDER_CHOICES])
    .default(process.env.LAB_PROVIDER && (PROVIDER_CHOICES as readonly string[]).includes(process.env.LAB_PROVIDER) ? process.env.LAB_PROVIDER : 'sim');
}

export const NODES_CHOICES = ['talos', 'emulated'] as const;

export function nodesOption(): Option {
  return new Option('--nodes <kind>', "what runs on the nodes: talos (real Talos: docker's and qemu's default) or emulated (the lab's emulated nodes: sim's only kind; with --provider docker, the emulated nodes in containers)").choices([
    ...NODES_CHOICES,
  ]);
}

/**
 * `--provider P --nodes K` → the provider choice `P:K` the engine resolves (src/providers/index.ts);
 * a pair no provider runs is a usage error (exit 2) before anything starts.
 */
async function combineNodes(cmd: Command): Promise<void> {
  const o = cmd.opts<RunFlags>();
  if (o.nodes === undefined) return;
  const { parseProviderChoice } = await import('../providers/index.js');
  const choice = `${o.provider}:${o.nodes}`;
  parseProviderChoice(choice);
  cmd.setOptionValue('provider', choice);
}

/** A LAB_PROVIDER that is not a provider is a usage error when it decides (no --provider given), never a silent `sim`. */
function checkProviderEnv(cmd: Command): void {
  const env = process.env.LAB_PROVIDER;
  if (env === undefined || env === '' || (PROVIDER_CHOICES as readonly string[]).includes(env)) return;
  if (cmd.getOptionValueSource('provider') === 'cli') return;
  throw new UsageError(`LAB_PROVIDER=${env}: expected one of ${PROVIDER_CHOICES.join(', ')} (or pass --provider)`);
}

export interface RunFlags {
  provider: string;
  /** what runs on the nodes (talos | emulated); folded into `provider` as `<provider>:<nodes>` before the action */
  nodes?: string;
  strategies?: string;
  drills?: string;
  quick?: boolean;
  repeat?: number;
  out?: string;
  keep?: boolean;
  json?: boolean;
  dryRun?: boolean;
  render?: string;
  force?: boolean;
  parallel?: number;
  live?: boolean;
  port?: number;
  liveHost?: string;
  downtime?: number;
}

/** The flags of `run` (and, for the ones that make sense, `up` and `render`). */
export function addRunFlags(cmd: Command, which: 'run' | 'render' | 'up'): Command {
  cmd.addOption(providerOption());
  cmd.addOption(nodesOption());
  if (which !== 'up') {
    cmd
      .option('--strategies <list>', 'only these strategies of the lab, comma-separated (e.g. talos-vip+metallb-l2,haproxy+metallb-bgp)')
      .option('--drills <list>', 'only these drills of the lab, comma-separated (e.g. baseline,crash)')
      .option('--quick', "quick mode: 1 repeat, short pre/settle/observe windows, the lab's quick drills")
      .option('--repeat <n>', `repeats per drill, 1–${MAX_REPEAT} (overrides the lab)`, positiveInt('--repeat', MAX_REPEAT));
  }
  if (which === 'run') {
    cmd
      .option('--parallel <n>', 'lab instances at once, each strategy on its own (default: what this machine holds, 1 with --live; 1 = one after the other)', positiveInt('--parallel', 64))
      .option('--downtime <s>', 'a crash nobody can take over (one control plane): seconds the node stays down before it comes back (default 10)', positiveNumber('--downtime', 3600))
      .option('--live', 'serve a live view of the run (http://127.0.0.1:<port>/): topology, holders, probe strip charts, results as they come')
      .option('--port <n>', 'with --live: the port (default: any free one)', positiveInt('--port', 65535))
      .option('--live-host <addr>', 'with --live: the address to listen on (default 127.0.0.1; another address lets the room watch)');
  }
  cmd.option('--out <dir>', 'output directory (default out/<lab>-<timestamp>); a directory no other run is using');
  if (which !== 'render') cmd.option('--force', "start even when the lab looks too big for this machine (the capacity check's soft limits; never its hard ones)");
  if (which === 'run') {
    cmd
      .option('--keep', 'leave the lab running afterwards (remove it with `lab down <id>`)')
      .option('--dry-run', 'validate, print the plan and render every artifact; start nothing')
      .option('--render <dir>', 'with --dry-run: write the rendered artifacts here (implies --dry-run)');
  }
  if (which === 'render') cmd.option('--render <dir>', 'where to write the rendered artifacts (default <out>/render)');
  cmd.option('--json', 'print only a JSON summary on stdout (progress stays on stderr)');
  cmd.hook('preAction', async (_program, action) => {
    checkRunFlags(action);
    await combineNodes(action);
  });
  return cmd;
}

/** Flag values commander's parsers cannot judge alone: lists that name nothing, the provider from the environment. */
function checkRunFlags(cmd: Command): void {
  checkProviderEnv(cmd);
  const o = cmd.opts<RunFlags>();
  for (const [flag, v, what] of [
    ['--strategies', o.strategies, 'strategy ids such as talos-vip+metallb-l2'],
    ['--drills', o.drills, 'drill kinds such as baseline,crash'],
  ] as const) {
    if (v !== undefined && !splitList(v)) throw new UsageError(`${flag}: expected a comma-separated list of ${what}, got '${v}'`);
  }
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

/**
 * The capacity check before bring-up (src/model/capacity.ts): above a soft limit → LabInputError
 * naming the topology field (exit 2) unless --force; above a hard limit → always.
 */
export function checkLabCapacity(lab: Lab, provider: string, force: boolean, machine: MachineFacts = machineFacts()): void {
  const r = checkCapacity(lab, provider, machine, { force, show: (abs) => display(abs), lineOf: lineOfField });
  if (r.issues.length) throw new LabInputError(r.issues);
}

// ---------------------------------------------------------------------------------------------
// signals: Ctrl-C aborts the engine, waits for its teardown, exits 130; a second Ctrl-C exits now

export async function withAbort<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let received: string | null = null;
  const onSignal = (sig: NodeJS.Signals) => {
    if (received) {
      err(`\n${sig} again: exiting now without waiting for the teardown; \`npm run lab -- clean\` removes what is left`);
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
