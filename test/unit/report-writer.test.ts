/**
 * The writer: what a run writes (writeReports) and what `lab report DIR` rewrites from
 * DIR/results.json (regenerateReports) are byte-identical; nothing of "now" gets in; an invalid
 * results.json is a LabInputError (exit 2) naming the file and the field.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../../src/model/load.js';
import type { Results } from '../../src/results/types.js';
import { LabInputError } from '../../src/util/errors.js';
import { pointerToPath, regenerateReports, renderReports, writeReports } from '../../src/report/writer.js';
import { useTempDirs } from '../helpers/tmp.js';

const mkTemp = useTempDirs();
const fixture = (name: string): Results => JSON.parse(readFileSync(join(REPO_ROOT, 'test/fixtures/results', `${name}.results.json`), 'utf8')) as Results;
const read = (files: string[]) => Object.fromEntries(files.map((f) => [f, readFileSync(f)]));

afterEach(() => {
  vi.useRealTimers();
});

describe('writeReports / regenerateReports', () => {
  for (const name of ['minecraft', 'smb']) {
    it(`${name}: lab report DIR rewrites exactly the bytes the run wrote`, async () => {
      const dir = mkTemp(`tlx-report-${name}-`);
      const results = fixture(name);
      // what the engine holds in memory: fields set to undefined are dropped by results.json
      (results.runs[0] as unknown as Record<string, unknown>).expectedBasis = undefined;
      // and what engine.ts writes
      writeFileSync(join(dir, 'results.json'), JSON.stringify(results, null, 2) + '\n');
      const files = await writeReports(results, dir);
      expect(files).toEqual([join(dir, 'report.md'), join(dir, 'report.html'), join(dir, 'runs.csv')]);
      for (const f of files) expect(existsSync(f)).toBe(true);
      const first = read(files);
      for (const f of files) writeFileSync(f, 'stale'); // so the comparison sees a rewrite
      const again = await regenerateReports(dir);
      expect(again).toEqual(files);
      const second = read(again);
      for (const f of files) expect(second[f]!.equals(first[f]!), f).toBe(true);
    });
  }

  it('nothing of "now": the same results rendered at two different times are identical', () => {
    const r = fixture('minecraft');
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2001-02-03T04:05:06Z'));
    const a = renderReports(r);
    vi.setSystemTime(new Date('2039-12-31T23:59:59Z'));
    const b = renderReports(r);
    expect(b).toEqual(a);
    for (const text of Object.values(a)) {
      expect(text).not.toContain('2001-02-03');
      expect(text).not.toContain('2039-12-31');
    }
    // the run's own start time is data, and is shown
    expect(a['report.md']).toContain(r.startedAt);
  });

  it('an invalid results.json → LabInputError (exit 2) naming the file and each field path', async () => {
    const dir = mkTemp('tlx-report-bad-');
    const bad = fixture('minecraft') as unknown as { runs: Record<string, unknown>[]; provider: Record<string, unknown> };
    delete bad.runs[2]!.outageMs;
    bad.runs[4]!.target = 'apiserver';
    bad.provider.name = 'vmware';
    const file = join(dir, 'results.json');
    writeFileSync(file, JSON.stringify(bad));
    const err = await regenerateReports(dir).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(LabInputError);
    const e = err as LabInputError;
    expect(e.exitCode).toBe(2);
    expect(e.issues.map((i) => [i.file, i.path])).toEqual(
      expect.arrayContaining([
        [file, 'runs[2].outageMs'],
        [file, 'runs[4].target'],
        [file, 'provider.name'],
      ]),
    );
    expect(e.message).toContain(`${file}: runs[2].outageMs: `);
    expect(existsSync(join(dir, 'report.html'))).toBe(false);
  });

  it('a missing or unparsable results.json is a LabInputError too', async () => {
    const dir = mkTemp('tlx-report-none-');
    await expect(regenerateReports(dir)).rejects.toThrow(/results\.json: no such file/);
    writeFileSync(join(dir, 'results.json'), '{"lab": ');
    await expect(regenerateReports(dir)).rejects.toBeInstanceOf(LabInputError);
    await expect(regenerateReports(dir)).rejects.toThrow(/not valid JSON/);
  });

  it('results with only the required fields (or no runs at all) still render', () => {
    const minimal: Results = {
      lab: 'tiny',
      topology: { name: 'tiny', controlPlanes: 1, workers: 0 },
      provider: { name: 'qemu', emulated: false, components: {} },
      startedAt: '2026-01-01T00:00:00Z',
      bringUpMs: 1,
      runs: [{ strategy: 'talos-vip+metallb-l2', target: 'api', drill: 'crash', outageMs: 1500, errors: 2, requests: 10, latencyMs: { p50: 1, p99: 2 }, throughputRps: 5 }],
    };
    const out = renderReports(minimal);
    expect(out['report.md']).toContain('| crash | talos-vip+metallb-l2 | — | 1 | 1.5 s | — | — | 2 |');
    expect(out['report.html']).toContain('real Talos');
    expect(renderReports({ ...minimal, runs: [] })['report.md']).toContain('# HA strategies compared: lab tiny');
  });

  it('JSON pointers become the dotted paths LabInputError uses', () => {
    expect(pointerToPath('/runs/3/outageMs')).toBe('runs[3].outageMs');
    expect(pointerToPath('/provider/components/a~1b')).toBe('provider.components.a/b');
    expect(pointerToPath('')).toBe('');
  });
});
