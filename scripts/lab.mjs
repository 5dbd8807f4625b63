#!/usr/bin/env node
/**
 * The `lab` bin: re-execs `node --import tsx src/cli/main.ts …` with tsx resolved from THIS repo's
 * node_modules, so it works from any working directory (no build step). Ctrl-C reaches both
 * processes (same terminal process group); this wrapper ignores it and waits for the CLI, which
 * aborts the engine, tears the lab down and exits 130. A SIGTERM sent to this wrapper alone is
 * forwarded. The exit code is the CLI's (128 + n when it died of signal n).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { constants } from 'node:os';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const main = join(root, 'src', 'cli', 'main.ts');

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
});

process.on('SIGINT', () => {
  /* the child got it too (same process group); wait for its teardown */
});
process.on('SIGTERM', () => child.kill('SIGTERM'));
process.on('SIGHUP', () => child.kill('SIGHUP'));

child.on('error', (e) => {
  process.stderr.write(`lab: cannot start node: ${e.message}\n`);
  process.exit(1);
});
child.on('exit', (code, signal) => {
  if (signal) process.exit(128 + (constants.signals[signal] ?? 1));
  process.exit(code ?? 1);
});
