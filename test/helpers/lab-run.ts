/** Run a lab through the CLI a user runs (`scripts/lab.mjs run … --json`) and read what it wrote. */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../../src/model/load.js';
import type { Results, RunRecord } from '../../src/results/types.js';

export interface LabRun {
  code: number;
  stdout: string;
  stderr: string;
  out: string;
  results: Results;
}

/** The CLI call itself: exit code and output, whether or not the run wrote results.json. */
export function runLabCliRaw(labFile: string, out: string, args: string[] = [], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(REPO_ROOT, 'scripts', 'lab.mjs'), 'run', labFile, '--out', out, '--json', ...args], { cwd: REPO_ROOT, env: { ...process.env, CI: 'true', ...env }, maxBuffer: 64 << 20, timeout: 15 * 60_000 }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number }).code ?? 1) : 0;
      resolve({ code: typeof code === 'number' ? code : 1, stdout, stderr });
    });
  });
}

/** A run that must write results.json: the call and what it wrote. */
export async function runLabCli(labFile: string, out: string, args: string[] = [], env: Record<string, string> = {}): Promise<LabRun> {
  const r = await runLabCliRaw(labFile, out, args, env);
  let results: Results;
  try {
    results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as Results;
  } catch (e) {
    throw new Error(`lab run ${labFile} exited ${r.code} without results.json: ${(e as Error).message}\n--- stderr ---\n${r.stderr.slice(-6000)}`);
  }
  return { ...r, out, results };
}

/** the one run of a strategy × target × drill (× service) */
export function pick(r: Results, strategy: string, target: 'api' | 'service', drill: string, service?: string): RunRecord {
  const runs = r.runs.filter((x) => x.strategy === strategy && x.target === target && x.drill === drill && (!service || x.service === service));
  if (runs.length !== 1) throw new Error(`expected one run ${strategy} ${target} ${drill}${service ? ` ${service}` : ''}, found ${runs.length}: ${r.runs.map((x) => `${x.strategy}/${x.target}/${x.drill}/${x.service ?? ''}`).join(', ')}`);
  return runs[0]!;
}

