/**
 * The `lab` CLI (scripts/lab.mjs re-execs `node --import tsx src/cli/main.ts`). One file per verb
 * in ./commands/ binds flags and calls the engine (src/orchestrator/api.ts). ONE top-level catch
 * maps errors to exit codes:
 *   0 ok · 2 bad input or usage (LabInputError, UsageError: every `file: path: expected …` line)
 *   3 missing prerequisite (PrerequisiteError: message + the exact fix command)
 *   130 interrupted (Ctrl-C / SIGTERM: the engine tore the lab down first) · 1 anything else
 * Verbs: `lab <verb> …` runs the verb; `run` is the default only when the first word is NOT a verb
 * (`lab smb --quick` = `lab run smb --quick`, `lab --quick` = `lab run --quick`). The verbs are
 * RESERVED_LAB_NAMES (src/model/load.ts): a lab named like one would be unreachable, so the model
 * refuses it.
 */
import { Command, CommanderError } from 'commander';
import { pathToFileURL } from 'node:url';
import { realpathSync } from 'node:fs';
import { LabError, LabInputError, PrerequisiteError, UsageError } from '../util/errors.js';
import { registerRun, DEFAULT_LAB } from './commands/run.js';
import { registerUp } from './commands/up.js';
import { registerDown } from './commands/down.js';
import { registerLs } from './commands/ls.js';
import { registerClean } from './commands/clean.js';
import { registerReport } from './commands/report.js';
import { registerLoad } from './commands/load.js';
import { registerRender } from './commands/render.js';
import { registerWatch } from './commands/watch.js';
import { err, Interrupted } from './shared.js';
import { RESERVED_LAB_NAMES } from '../model/load.js';

/** The verbs: every registered command plus commander's implicit `help`. */
export const VERBS: readonly string[] = RESERVED_LAB_NAMES;
/** flags the program itself answers (everything else belongs to a verb) */
const PROGRAM_FLAGS = ['-h', '--help', '-V', '--version'];

/** `lab smb` → `lab run smb`; `lab ls` stays; `lab --quick smb` → `lab run --quick smb`; `lab` → `lab run`. */
export function normalizeArgv(argv: string[]): string[] {
  const first = argv[0];
  if (first === undefined) return ['run'];
  if (VERBS.includes(first) || PROGRAM_FLAGS.includes(first)) return argv;
  return ['run', ...argv];
}

export function buildProgram(): Command {
  const program = new Command('lab')
    .description(
      'Measure, don\'t assert: HA strategies for the Kubernetes API endpoint and LoadBalancer Services on Talos Linux, compared under failover drills.\n' +
        `Default verb: run, when the first word is not a verb (\`lab smb\` = \`lab run smb\`; no lab = ${DEFAULT_LAB}).`,
    )
    .version('0.1.0')
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s), writeOut: (s) => process.stdout.write(s) })
    .addHelpText(
      'after',
      '\nExit codes: 0 ok, 1 failure, 2 bad lab input or usage, 3 missing prerequisite (the message gives the fix), 130 interrupted.\n' +
        'Examples:\n  npm run lab -- smb --quick\n  npm run lab -- run enterprise --strategies haproxy+metallb-bgp --drills baseline,crash\n  npm run lab -- render smb --render out/smb-render\n  npm run lab -- ls && npm run lab -- down smb && npm run lab -- clean',
    );
  registerRun(program);
  registerUp(program);
  registerDown(program);
  registerLs(program);
  registerClean(program);
  registerReport(program);
  registerLoad(program);
  registerRender(program);
  registerWatch(program);
  for (const c of program.commands) c.exitOverride().showSuggestionAfterError(true);
  const registered = program.commands.map((c) => c.name());
  const missing = VERBS.filter((v) => v !== 'help' && !registered.includes(v));
  const extra = registered.filter((v) => !VERBS.includes(v));
  // the reserved lab names must be exactly the verbs, or a lab could shadow one
  if (missing.length || extra.length) throw new Error(`the verbs (${registered.join(', ')}) differ from RESERVED_LAB_NAMES (${VERBS.join(', ')})`);
  return program;
}

export function exitCodeOf(e: unknown): number {
  if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
  if (e instanceof Interrupted) return 130;
  if (e instanceof LabError) return e.exitCode;
  return 1;
}

function report(e: unknown, json: boolean): void {
  const code = exitCodeOf(e);
  if (e instanceof CommanderError) {
    // commander already printed its message (unknown option, missing argument…) or the help
    if (json && code !== 0) process.stdout.write(JSON.stringify({ ok: false, exitCode: code, error: e.message }) + '\n');
    return;
  }
  if (json) {
    const issues = e instanceof LabInputError ? e.issues : undefined;
    process.stdout.write(JSON.stringify({ ok: false, exitCode: code, error: (e as Error)?.message ?? String(e), ...(issues ? { issues } : {}) }) + '\n');
  }
  if (e instanceof LabInputError) {
    err(`lab: invalid lab input (${e.issues.length} problem${e.issues.length === 1 ? '' : 's'}); nothing was started:`);
    err(e.message);
  } else if (e instanceof UsageError) {
    err(`lab: ${e.message}`);
  } else if (e instanceof PrerequisiteError) {
    err(`lab: missing prerequisite: ${e.message}`);
  } else if (e instanceof Interrupted) {
    err(`lab: ${e.message}`);
  } else if (e instanceof Error) {
    err(`lab: error: ${e.message}`);
    if (process.env.LAB_DEBUG) err(e.stack ?? '');
  } else {
    err(`lab: error: ${String(e)}`);
  }
}

/** Parse and run; resolves with the exit code (never throws). */
export async function main(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  try {
    await buildProgram().parseAsync(normalizeArgv(argv), { from: 'user' });
    return 0;
  } catch (e) {
    report(e, json);
    return exitCodeOf(e);
  }
}

function isEntry(): boolean {
  try {
    return !!process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href;
  } catch {
    return false;
  }
}

if (isEntry()) {
  // a reader that goes away (`lab ls | head -1`) is not a failure of the lab, and must not crash a
  // run mid-way (its teardown still has to happen): writes to a closed pipe are dropped
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') throw e;
    });
  }
  const code = await main(process.argv.slice(2));
  process.exitCode = code;
  // do not let a stray handle (a socket, a timer) keep a finished CLI alive
  setTimeout(() => process.exit(code), 500).unref();
}
