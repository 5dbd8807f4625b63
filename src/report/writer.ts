/**
 * The one place that writes report files (renderers are pure, one writer
 * applies them). `writeReports` is what a run calls; `regenerateReports` is `lab report DIR`: it
 * reads DIR/results.json, validates it against the contract and writes the same bytes a run wrote
 * (the results go through a JSON round trip first in both cases, and nothing of "now" is used).
 */
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import type { Results } from '../results/types.js';
import { validateResults } from '../results/validate.js';
import { LabInputError, type InputIssue } from '../util/errors.js';
import { buildModel } from './model.js';
import { recommend } from './recommend.js';
import { renderMarkdown } from './markdown.js';
import { renderHtml } from './html.js';
import { renderCsv } from './csv.js';
import { REPO_ROOT } from '../model/load.js';
import { DEFAULT_FIDELITY_DOC, type ReportOptions } from './tables.js';

export const REPORT_FILES = { markdown: 'report.md', html: 'report.html', csv: 'runs.csv' } as const;

/** The report files' contents, by file name. Pure. */
export function renderReports(results: Results, opts: ReportOptions = {}): Record<string, string> {
  // what results.json holds (undefined fields dropped, -0 → 0, NaN → null): a run and
  // `lab report` then render from identical data
  const r = JSON.parse(JSON.stringify(results)) as Results;
  const model = buildModel(r);
  const rec = recommend(model);
  return {
    [REPORT_FILES.markdown]: renderMarkdown(model, rec, opts),
    [REPORT_FILES.html]: renderHtml(model, rec, opts),
    [REPORT_FILES.csv]: renderCsv(r),
  };
}

/** docs/fidelity.md of this checkout as a relative link from the report directory (the reports link their notes to it) */
export function fidelityDocFrom(dir: string): string {
  return relative(resolve(dir), join(REPO_ROOT, DEFAULT_FIDELITY_DOC)).split(sep).join('/');
}

export async function writeReports(r: Results, dir: string): Promise<string[]> {
  const files = renderReports(r, { fidelityDoc: fidelityDocFrom(dir) });
  mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  for (const name of [REPORT_FILES.markdown, REPORT_FILES.html, REPORT_FILES.csv]) {
    const p = join(dir, name);
    writeFileSync(p, files[name]!);
    written.push(p);
  }
  return written;
}

/** `/runs/3/outageMs` → `runs[3].outageMs` (the path style of LabInputError) */
export function pointerToPath(pointer: string): string {
  const parts = pointer.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  return parts.reduce((acc, p) => (/^\d+$/.test(p) ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), '');
}

/** validateResults' `<pointer>: <message>` lines → issues naming the field */
export function resultIssues(file: string, errors: string[]): InputIssue[] {
  return errors.map((line) => {
    const i = line.indexOf(': ');
    const pointer = i < 0 ? '' : line.slice(0, i);
    let message = i < 0 ? line : line.slice(i + 2);
    let path = pointer === '/' ? '' : pointerToPath(pointer);
    // "must have required property 'x'" names the field one level down
    const req = /^must have required property '([^']+)'$/.exec(message);
    if (req) {
      path = path ? `${path}.${req[1]}` : req[1]!;
      message = 'required field is missing';
    }
    return { file, path, message: `expected results.json per results.schema.json: ${message}` };
  });
}

export function readResults(dir: string): Results {
  const file = join(resolve(dir), 'results.json');
  if (!existsSync(file)) throw LabInputError.one(file, '', 'no such file: expected the output directory of a run (it holds results.json)');
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw LabInputError.one(file, '', `not valid JSON: ${(e as Error).message}`);
  }
  const v = validateResults(data);
  if (!v.valid) throw new LabInputError(resultIssues(file, v.errors));
  return data as Results;
}

export async function regenerateReports(dir: string): Promise<string[]> {
  return writeReports(readResults(dir), dir);
}
