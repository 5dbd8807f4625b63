/**
 * Temp dirs for a test file, removed after its tests (call useTempDirs() at the top level) —
 * unless a test of the file failed: then they stay and their paths are printed, because a lab
 * run's results.json, samples and logs are what explains a timing failure after the fact.
 */
import { afterAll, afterEach } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function useTempDirs(): (prefix: string) => string {
  const temps: string[] = [];
  let failed = false;
  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail') failed = true;
  });
  afterAll(() => {
    if (failed) {
      if (temps.length) console.error(`a test failed: its temp dirs are kept for inspection:\n${temps.map((d) => `  ${d}`).join('\n')}`);
      return;
    }
    for (const d of temps) rmSync(d, { recursive: true, force: true });
  });
  return (prefix: string) => {
    const d = mkdtempSync(join(tmpdir(), prefix));
    temps.push(d);
    return d;
  };
}
