/**
 * The GitHub Actions workflows (.github/workflows/ci.yml, nightly.yml) parse, run when they should,
 * and call only things that exist: scripts in this checkout, `npm run` scripts of package.json,
 * Makefile targets, nightly.mjs phases, lab names; the nightly uploads results.json and
 * report.html. And the nightly's verdict on a results.json (scripts/nightly.mjs failedRuns).
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { REPO_ROOT, loadLab } from '../../src/model/index.js';
// @ts-expect-error plain ESM script without types
import { LABS, NIGHTLY_PHASES, failedRuns } from '../../scripts/nightly.mjs';

type Step = { name?: string; run?: string; uses?: string; with?: Record<string, unknown>; 'working-directory'?: string };
type Workflow = { name: string; on: Record<string, unknown> | string[]; jobs: Record<string, { 'runs-on': string; steps: Step[] }> };
const wf = (f: string) => parse(readFileSync(join(REPO_ROOT, '.github', 'workflows', f), 'utf8')) as Workflow;
const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
const makeTargets = new Set([...readFileSync(join(REPO_ROOT, 'Makefile'), 'utf8').matchAll(/^([a-z][\w-]*):/gm)].map((m) => m[1]!));

/** Everything a `run:` block calls that must exist here. */
function checkRun(run: string, where: string): void {
  for (const m of run.matchAll(/\b(scripts\/[\w./-]+)/g)) expect(existsSync(join(REPO_ROOT, m[1]!)), `${where}: ${m[1]} exists`).toBe(true);
  for (const m of run.matchAll(/\bnpm run ([\w:-]+)/g)) expect(pkg.scripts[m[1]!], `${where}: npm run ${m[1]}`).toBeDefined();
  for (const m of run.matchAll(/\bmake ([\w-]+)/g)) expect(makeTargets.has(m[1]!), `${where}: make ${m[1]}`).toBe(true);
  for (const m of run.matchAll(/scripts\/nightly\.mjs(?: (\w+))?/g)) expect(NIGHTLY_PHASES, `${where}: nightly phase`).toContain(m[1] ?? 'all');
}

describe('ci.yml', () => {
  const w = wf('ci.yml');
  it('runs `make test` on every push, on ubuntu-latest', () => {
    expect(Object.keys(w.on as object)).toContain('push');
    const steps = Object.values(w.jobs).flatMap((j) => j.steps);
    expect(Object.values(w.jobs).map((j) => j['runs-on'])).toEqual(['ubuntu-latest']);
    expect(steps.some((s) => /\bmake test\b/.test(s.run ?? ''))).toBe(true);
    for (const s of steps) if (s.run) checkRun(s.run, `ci.yml ${s.name ?? ''}`);
  });
});

describe('nightly.yml', () => {
  const w = wf('nightly.yml');
  const steps = Object.values(w.jobs).flatMap((j) => j.steps);
  it('is scheduled and can be started by hand', () => {
    const on = w.on as Record<string, unknown>;
    expect((on.schedule as { cron: string }[])[0]!.cron).toMatch(/^\S+ \S+ \S+ \S+ \S+$/);
    expect(on).toHaveProperty('workflow_dispatch');
    expect(Object.values(w.jobs).map((j) => j['runs-on'])).toEqual(['ubuntu-latest']);
  });

  it('installs the tools, pulls the images, loads the modules and runs the labs through nightly.mjs — every call exists', () => {
    const runs = steps.map((s) => s.run ?? '').join('\n');
    for (const phase of ['modules', 'install', 'pull', 'run']) expect(runs).toMatch(new RegExp(`scripts/nightly\\.mjs ${phase}\\b`));
    for (const s of steps) if (s.run) checkRun(s.run, `nightly.yml ${s.name ?? ''}`);
    // the labs it runs are the shipped ones, each with the docker provider in quick mode
    expect(LABS).toEqual(['minecraft', 'smb']);
    for (const l of LABS) expect(loadLab(l).name).toBe(l);
    expect(readFileSync(join(REPO_ROOT, 'scripts', 'nightly.mjs'), 'utf8')).toContain('npm run lab -- ${lab} --provider docker --quick --out ${out}');
  });

  it('uploads results.json and report.html, also when a lab failed', () => {
    const up = steps.find((s) => s.uses?.startsWith('actions/upload-artifact@'))!;
    expect(up).toBeDefined();
    expect((up as { if?: string }).if).toBe('always()');
    expect(String(up.with!.path)).toMatch(/results\.json/);
    expect(String(up.with!.path)).toMatch(/report\.html/);
  });
});

describe('the nightly’s verdict on a results.json', () => {
  const run = (o: Record<string, unknown>) => ({ strategy: 's', target: 'service', drill: 'baseline', repeat: 0, requests: 100, errors: 0, ...o });
  it('a supported run whose requests all failed (or that sent none) fails the night; unsupported runs do not', () => {
    expect(failedRuns({ runs: [run({})] })).toEqual([]);
    expect(failedRuns({ runs: [run({ errors: 100 })] })).toHaveLength(1);
    expect(failedRuns({ runs: [run({ requests: 0 })] })).toHaveLength(1);
    expect(failedRuns({ runs: [run({ requests: 0, supported: false, reason: 'x' })] })).toEqual([]);
    expect(failedRuns({ runs: [run({ errors: 60 })] })).toEqual([]); // an outage, measured: not an error of the run
  });
});
