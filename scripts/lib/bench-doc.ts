/**
 * docs/bench-labs.md is written by two scripts (scripts/bench-labs.ts: bring-up;
 * scripts/bench-whole-labs.ts: whole-lab runs). Each owns one section between its own HTML
 * comment markers and replaces only that section, so running one never erases the other's
 * figures. Pure: the document text in, the new text out.
 */

export const BENCH_DOC_TITLE = '# Sim benchmarks';

const BENCH_DOC_INTRO =
  'Each section below is written by its own script between its `<!-- bench:<name>:start/end -->` markers;\n' +
  'a script replaces only its own section. Text outside the markers is kept as it is.';

export function sectionMarkers(id: string): { start: string; end: string } {
  if (!/^[a-z0-9-]+$/.test(id)) throw new Error(`section id '${id}': expected lower-case letters, digits and '-'`);
  return { start: `<!-- bench:${id}:start -->`, end: `<!-- bench:${id}:end -->` };
}

/** The body of section `id` (between its markers, trimmed), or null when the document has none. */
export function readSection(doc: string, id: string): string | null {
  const { start, end } = sectionMarkers(id);
  const a = doc.indexOf(start);
  if (a < 0) return null;
  const b = doc.indexOf(end, a + start.length);
  if (b < 0) return null;
  return doc.slice(a + start.length, b).trim();
}

/**
 * `doc` with section `id` replaced by `body` (markers included). A section the document lacks is
 * appended at its end; no document (null or blank) starts with the title and a line on how the
 * file is written. A start marker without its end marker is an error: guessing where the section
 * ends could delete the other script's figures.
 */
export function replaceSection(doc: string | null, id: string, body: string): string {
  const { start, end } = sectionMarkers(id);
  const block = `${start}\n${body.trim()}\n${end}`;
  if (doc === null || !doc.trim()) return `${BENCH_DOC_TITLE}\n\n${BENCH_DOC_INTRO}\n\n${block}\n`;
  const a = doc.indexOf(start);
  if (a < 0) return `${doc.replace(/\s*$/, '')}\n\n${block}\n`;
  const b = doc.indexOf(end, a + start.length);
  if (b < 0) throw new Error(`${start} has no ${end}: fix the document by hand before writing it again`);
  return doc.slice(0, a) + block + doc.slice(b + end.length);
}
