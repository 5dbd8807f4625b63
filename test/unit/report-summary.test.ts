/**
 * The terminal summary: the short table at the end of `npm run lab` (human mode; --json keeps
 * stdout JSON) and of `lab report DIR`, ending with the path of report.html.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { REPO_ROOT } from '../../src/model/load.js';
import type { Results } from '../../src/results/types.js';
import { buildModel } from '../../src/report/model.js';
import { renderSummary, summaryForDir } from '../../src/report/summary.js';
import { useTempDirs } from '../helpers/tmp.js';

const mkTemp = useTempDirs();
const fixture = (name: string): Results => JSON.parse(readFileSync(join(REPO_ROOT, 'test/fixtures/results', `${name}.results.json`), 'utf8')) as Results;

// runLab is the engine (root, namespaces): replaced by one that "ran" into the test's directory
const engine = vi.hoisted(() => ({ out: '' }));
vi.mock('../../src/orchestrator/api.js', () => ({
  runLab: async (lab: { name: string }, o: { out: string }) => ({ lab: lab.name, provider: 'sim', out: engine.out || o.out, files: [join(engine.out, 'results.json')], dryRun: false }),
}));

function captureStdout(): { text(): string; restore(): void } {
  let buf = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    buf += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
    return true;
  });
  return { text: () => buf, restore: () => spy.mockRestore() };
}

afterEach(() => vi.restoreAllMocks());

describe('renderSummary', () => {
  it('one line per strategy × target × drill: outage, band, check, p99, errors; unsupported; report path last', () => {
    const r = fixture('smb');
    const m = buildModel(r);
    const text = renderSummary(m, '/x/out/smb/report.html');
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toBe('lab smb on sim (emulated Talos control plane): 93 runs measured, 11 unsupported; medians over repeats');
    expect(lines[1]).toMatch(/^strategy\s+target\s+drill\s+outage\s+band\s+check\s+p99 ms\s+errors$/);
    expect(lines.filter((l) => /^(talos|kube|haproxy)/.test(l)).length).toBe(m.groups.length);
    const kv = lines.find((l) => /^kube-vip-arp\+kube-vip-arp\s+api\s+crash\s/.test(l))!;
    expect(kv.split(/\s{2,}/)).toEqual(['kube-vip-arp+kube-vip-arp', 'api', 'crash', '6.1 s', '3.0–7.0 s', 'OUTSIDE 1/3', expect.stringMatching(/^\d/), '1026']);
    expect(lines.find((l) => /^talos-vip\+metallb-l2\s+service:web-local\s+baseline/.test(l))).toBeTruthy();
    expect(lines).toContain('unsupported: kube-vip-bgp+metallb-bgp — pitfall 3: kube-vip-bgp and metallb-bgp both run a BGP speaker on every node and both want TCP port 179');
    expect(lines.at(-1)).toBe('report: /x/out/smb/report.html');
    // columns line up: every row is as wide as its header up to the last column
    const errorsCol = lines[1]!.indexOf('errors');
    for (const l of lines.slice(2, 2 + m.groups.length)) expect([...l].length).toBeGreaterThanOrEqual(errorsCol + 1);
  });

  it('a baseline is clean, or NOT CLEAN when more than 1 % of what the client sent failed', () => {
    const r = fixture('smb');
    const line = (text: string, strategy: string) => text.split('\n').find((l) => l.startsWith(`${strategy} `) && /\sapi\s+baseline\s/.test(l))!.split(/\s{2,}/);
    expect(line(renderSummary(buildModel(r), '/x'), 'haproxy+metallb-bgp')[5]).toBe('clean');
    const base = r.runs.find((x) => x.strategy === 'haproxy+metallb-bgp' && x.target === 'api' && x.drill === 'baseline')!;
    const attempts = base.requests + (base.timeline ?? []).reduce((n, b) => n + b.ok + b.failed, 0);
    // exactly 1 % is still clean; one more failure is not
    base.errors = Math.floor(attempts / 100);
    expect(line(renderSummary(buildModel(r), '/x'), 'haproxy+metallb-bgp')[5]).toBe('clean');
    base.errors = Math.floor(attempts / 100) + Math.ceil(attempts / 100);
    expect(line(renderSummary(buildModel(r), '/x'), 'haproxy+metallb-bgp')[5]).toMatch(/^NOT CLEAN 1\/1 \(\d(\.\d)? % failed\)$/);
    expect(line(renderSummary(buildModel(r), '/x'), 'talos-vip+metallb-l2')[5]).toBe('clean');
  });

  it('a fault injected on a path already failing is named beside ok as beside OUTSIDE', () => {
    const r = fixture('smb');
    for (const x of r.runs) if (x.target === 'api' && x.drill === 'crash' && x.repeat === 0) x.cleanBeforeFault = false;
    const lines = renderSummary(buildModel(r), '/x/report.html').split('\n');
    const cell = (strategy: string) => lines.find((l) => l.startsWith(`${strategy} `) && /\sapi\s+crash\s/.test(l))!.split(/\s{2,}/)[5];
    expect(cell('talos-vip+metallb-l2')).toBe('ok (1 unclean before)');
    expect(cell('kube-vip-arp+kube-vip-arp')).toBe('OUTSIDE 1/3 (1 unclean before)');
  });

  it('a path failing again after the undo, still failing when observation stopped, is named beside the verdict', () => {
    const r = fixture('smb');
    for (const x of r.runs) if (x.target === 'api' && x.drill === 'crash' && x.repeat === 1) x.healOutage = { outageMs: 2900, bursts: 2, failedProbes: 27, recovered: false };
    const lines = renderSummary(buildModel(r), '/x/report.html').split('\n');
    const cell = (strategy: string) => lines.find((l) => l.startsWith(`${strategy} `) && /\sapi\s+crash\s/.test(l))!.split(/\s{2,}/)[5];
    expect(cell('talos-vip+metallb-l2')).toBe('ok (1 heal open)');
    // a heal that ended is not a flag
    for (const x of r.runs) if (x.healOutage) x.healOutage.recovered = true;
    const again = renderSummary(buildModel(r), '/x/report.html').split('\n');
    expect(again.find((l) => l.startsWith('talos-vip+metallb-l2 ') && /\sapi\s+crash\s/.test(l))!.split(/\s{2,}/)[5]).toBe('ok');
  });

  it('summaryForDir reads DIR/results.json, null when there is none', () => {
    const dir = mkTemp('tlx-summary-');
    expect(summaryForDir(dir)).toBeNull();
    writeFileSync(join(dir, 'results.json'), JSON.stringify(fixture('minecraft')));
    expect(summaryForDir(dir)!.trimEnd().split('\n').at(-1)).toBe(`report: ${join(resolve(dir), 'report.html')}`);
  });
});

describe('`npm run lab` prints the summary at the end (human mode only)', () => {
  it('human mode: files, then the table, then the report path as the last line', async () => {
    engine.out = mkTemp('tlx-run-out-');
    writeFileSync(join(engine.out, 'results.json'), JSON.stringify(fixture('minecraft')));
    const { runCommand } = await import('../../src/cli/commands/run.js');
    const cap = captureStdout();
    try {
      await runCommand('minecraft', { provider: 'sim', out: engine.out });
    } finally {
      cap.restore();
    }
    const lines = cap.text().trimEnd().split('\n');
    expect(lines[0]).toMatch(/^lab minecraft on sim: 1 file\(s\) in /);
    expect(lines).toContain('lab minecraft on sim (emulated Talos control plane): 24 runs measured, 5 unsupported; medians over repeats');
    expect(lines.some((l) => /^talos-vip\+metallb-l2\s+api\s+vip-loss-internal\s+8\.1 s\s+7\.5–9\.0 s\s+OUTSIDE 1\/3/.test(l))).toBe(true);
    expect(lines.at(-1)).toBe(`report: ${join(engine.out, 'report.html')}`);
  });

  it('--json: stdout is only the JSON summary', async () => {
    engine.out = mkTemp('tlx-run-json-');
    writeFileSync(join(engine.out, 'results.json'), JSON.stringify(fixture('minecraft')));
    const { runCommand } = await import('../../src/cli/commands/run.js');
    const cap = captureStdout();
    try {
      await runCommand('minecraft', { provider: 'sim', out: engine.out, json: true });
    } finally {
      cap.restore();
    }
    const parsed = JSON.parse(cap.text()) as { lab: string; out: string };
    expect(parsed).toMatchObject({ lab: 'minecraft', out: engine.out });
  });
});

describe('`lab report DIR` (the CLI as a user runs it)', { timeout: 60_000 }, () => {
  const lab = (args: string[]) => {
    const r = spawnSync(process.execPath, [resolve(REPO_ROOT, 'scripts/lab.mjs'), ...args], { env: { ...process.env, CI: 'true' }, encoding: 'utf8', timeout: 45_000 });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  it('rewrites the reports, prints them and the summary; --json prints only JSON; a bad results.json exits 2 with the field', () => {
    const dir = mkTemp('tlx-cli-report-');
    writeFileSync(join(dir, 'results.json'), JSON.stringify(fixture('minecraft'), null, 2));
    const ok = lab(['report', dir]);
    expect(ok.code, ok.stderr).toBe(0);
    const lines = ok.stdout.trimEnd().split('\n');
    expect(lines.slice(0, 3)).toEqual([join(dir, 'report.md'), join(dir, 'report.html'), join(dir, 'runs.csv')]);
    expect(lines.at(-1)).toBe(`report: ${join(dir, 'report.html')}`);
    expect(readFileSync(join(dir, 'report.html'), 'utf8')).toContain('<strong>emulated Talos control plane</strong>');

    const js = lab(['report', dir, '--json']);
    expect(js.code).toBe(0);
    expect(JSON.parse(js.stdout)).toEqual({ dir, files: [join(dir, 'report.md'), join(dir, 'report.html'), join(dir, 'runs.csv')] });

    const bad = fixture('minecraft') as unknown as { runs: Record<string, unknown>[] };
    bad.runs[1]!.errors = -3;
    writeFileSync(join(dir, 'results.json'), JSON.stringify(bad));
    const no = lab(['report', dir]);
    expect(no.code).toBe(2);
    expect(no.stderr).toContain(`${join(dir, 'results.json')}: runs[1].errors: `);
  });
});
