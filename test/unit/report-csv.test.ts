/** runs.csv: one row per run record, fixed columns, RFC 4180 quoting that round-trips. */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../../src/model/load.js';
import type { Results, RunRecord } from '../../src/results/types.js';
import { CSV_COLUMNS, csvField, renderCsv } from '../../src/report/csv.js';

const fixture = (name: string): Results => JSON.parse(readFileSync(join(REPO_ROOT, 'test/fixtures/results', `${name}.results.json`), 'utf8')) as Results;

/** A strict RFC 4180 reader (the test's own, independent of the writer). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') {
      if (field !== '') throw new Error(`quote inside an unquoted field at ${i}`);
      quoted = true;
    } else if (ch === ',') {
      row.push(field);
      field = '';
    } else if (ch === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i++;
    } else if (ch === '\n' || ch === '\r') throw new Error(`bare line break outside quotes at ${i}`);
    else field += ch;
  }
  if (quoted) throw new Error('unterminated quoted field');
  if (field !== '' || row.length) throw new Error('last record not terminated by CRLF');
  return rows;
}

describe('CSV quoting', () => {
  it('quotes fields with comma, quote, CR or LF; doubles quotes; empty for no value', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
    expect(csvField('cr\rhere')).toBe('"cr\rhere"');
    expect(csvField(null)).toBe('');
    expect(csvField(undefined)).toBe('');
    expect(csvField(0)).toBe('0');
    expect(csvField(52.31)).toBe('52.31');
    expect(csvField(Number.NaN)).toBe('');
    expect(csvField(false)).toBe('false');
  });
});

describe('runs.csv', () => {
  for (const name of ['smb', 'minecraft']) {
    it(`${name}: a header in CSV_COLUMNS order, then one row per run, every field round-trips`, () => {
      const r = fixture(name);
      const rows = parseCsv(renderCsv(r));
      expect(rows[0]).toEqual(CSV_COLUMNS.map(([c]) => c));
      expect(rows.length).toBe(r.runs.length + 1);
      for (const row of rows) expect(row.length).toBe(CSV_COLUMNS.length);
      const col = (c: string) => CSV_COLUMNS.findIndex(([n]) => n === c);
      r.runs.forEach((run, i) => {
        const row = rows[i + 1]!;
        expect(row[col('strategy')]).toBe(run.strategy);
        expect(row[col('drill')]).toBe(run.drill);
        expect(row[col('outageMs')]).toBe(run.outageMs === null ? '' : String(run.outageMs));
        expect(row[col('latency_p99')]).toBe(String(run.latencyMs.p99));
        expect(row[col('reason')]).toBe(run.reason ?? '');
        expect(row[col('notes')]).toBe((run.notes ?? []).join(' | '));
      });
    });
  }

  it('a reason with quotes and a comma, and a note with a line break, survive intact', () => {
    const r = fixture('minecraft');
    const text = renderCsv(r);
    const reason = r.runs.find((x) => x.supported === false)!.reason!;
    expect(reason).toMatch(/"bgp: false"/);
    expect(reason).toContain(',');
    expect(text).toContain(`"${reason.replace(/"/g, '""')}"`);
    const smb = fixture('smb');
    const noted = smb.runs.find((x) => x.notes?.length)!;
    expect(noted.notes!.join('')).toContain('\n');
    const rows = parseCsv(renderCsv(smb));
    expect(rows.map((row) => row[CSV_COLUMNS.length - 1])).toContain(noted.notes!.join(' | '));
  });

  it("maps are flattened sorted by key; the band check is the run's own, with the probe's resolution", () => {
    const r = fixture('smb');
    const rows = parseCsv(renderCsv(r));
    const col = (c: string) => CSV_COLUMNS.findIndex(([n]) => n === c);
    const i = r.runs.findIndex((x) => x.strategy === 'kube-vip-arp+kube-vip-arp' && x.drill === 'crash' && x.target === 'api' && (x.outageMs ?? 0) > 7000);
    expect(i).toBeGreaterThanOrEqual(0);
    expect(rows[i + 1]![col('withinBand')]).toBe('false');
    expect(rows[i + 1]![col('nodeShare')]).toMatch(/^cp1=[\d.]+;cp2=[\d.]+;cp3=[\d.]+$/);

    // over the band's maximum by less than the probe's resolution: inside, as results.json and the
    // reports judge it; an outage that had not ended is never inside; host load and the CPU wait
    // come along
    const runs = r.runs.filter((x) => x.expectedOutageMs && x.outageMs !== null).slice(0, 3);
    expect(runs).toHaveLength(3);
    const [byResolution, open, loaded] = runs as [RunRecord, RunRecord, RunRecord];
    Object.assign(byResolution, { outageMs: byResolution.expectedOutageMs!.max + 100, bandSlackMs: 210, withinBand: true, recovered: true });
    Object.assign(open, { withinBand: true, recovered: false });
    Object.assign(loaded, { outageMs: loaded.expectedOutageMs!.max + 900, bandSlackMs: 210, withinBand: false, outsideReason: 'host-load', cpuWait: { ms: 1200, process: 'w1/agent' } });
    const again = parseCsv(renderCsv(r));
    const row = (x: RunRecord) => again[r.runs.indexOf(x) + 1]!;
    expect(row(byResolution)[col('withinBand')]).toBe('true');
    expect(row(byResolution)[col('bandSlackMs')]).toBe('210');
    expect(row(open)[col('withinBand')]).toBe('false');
    expect([row(loaded)[col('withinBand')], row(loaded)[col('outsideReason')], row(loaded)[col('cpuWaitMs')], row(loaded)[col('cpuWaitProcess')]]).toEqual(['false', 'host-load', '1200', 'w1/agent']);
  });
});
