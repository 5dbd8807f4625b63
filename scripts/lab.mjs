#!/usr/bin/env node
/**
 * The `lab` bin: re-execs `node --import tsx src/cli/main.ts …` with tsx resolved from THIS repo's
 * node_modules, so it works from any working directory (no build step). The exit code is the
 * CLI's (128 + n when it died of signal n).
 *
 * Signals: the CLI runs in its own process group, so this wrapper is the one process that gets
 * what a terminal sends its foreground group (Ctrl-C), what `kill -INT <pid>` sends it alone (CI
 * systems, scripts) and what npm forwards to it (`npm run lab` re-sends SIGINT/SIGTERM to its
 * child). Each SIGINT/SIGTERM/SIGHUP is forwarded to the CLI once: the first makes the CLI abort
 * the engine, tear the lab down and exit 130; a second one exits at once. Copies of one signal
 * that arrive together (the terminal's and npm's forwarded one, within COALESCE_MS) count as one,
 * so a single Ctrl-C under npm never skips the teardown.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { constants } from 'node:os';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const main = join(root, 'src', 'cli', 'main.ts');
/** copies of one signal closer together than this are one event (a person's second Ctrl-C is slower) */
const COALESCE_MS = 200;

let tsx;
try {
  // tsx's package "exports" maps "." to its ESM loader (dist/loader.mjs)
  tsx = pathToFileURL(createRequire(join(root, 'package.json')).resolve('tsx')).href;
} catch {
  tsx = null;
}
if (!tsx || !existsSync(main)) {
  process.stderr.write(
    'lab: the npm dependencies are not installed (tsx missing)\n' + `  fix: cd ${root} && npm ci   (or: make deps)\n`,
  );
  process.exit(3);
}

const child = spawn(process.execPath, ['--import', tsx, main, ...process.argv.slice(2)], {
  stdio: 'inherit',
  // its own process group: a terminal's Ctrl-C reaches it only through this wrapper (once)
  detached: true,
});

const last = new Map();
function forward(signal) {
  const t = Date.now();
  if (t - (last.get(signal) ?? -Infinity) < COALESCE_MS) return;
  last.set(signal, t);
  if (child.exitCode === null && child.signalCode === null) {
    try {
      child.kill(signal);
    } catch {
      /* already gone */
    }
  }
}
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => forward(signal));

child.on('error', (e) => {
  process.stderr.write(`lab: cannot start node: ${e.message}\n`);
  process.exit(1);
});
child.on('exit', (code, signal) => {
  if (signal) process.exit(128 + (constants.signals[signal] ?? 1));
  process.exit(code ?? 1);
});
