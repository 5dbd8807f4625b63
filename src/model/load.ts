/**
 * Load a lab: `<lab>` is a name under `labs/` or a path to a lab file; the lab's `topology:` is a
 * name under `topologies/` or a path relative to the lab file. YAML syntax, schema and cross-field
 * problems of BOTH files are collected and thrown together as one LabInputError (exit 2), each
 * naming the file, the path inside it, what was expected and, where known, the line.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LineCounter, parseDocument, type Document } from 'yaml';
import type { ZodIssue, ZodTypeAny } from 'zod';
import { LabInputError, UsageError } from '../util/errors.js';
import type { Lab, Topology } from './types.js';
import { labSchema, topologySchema, type RawLab, type RawTopology } from './schema.js';
import { Issues, resolveLab, resolveTopology, type PathPart, type ResolvedTopology, type SourceFile } from './resolve.js';

export interface LoadOptions {
  /** the repository root holding labs/ and topologies/ (default: this checkout) */
  repoRoot?: string;
  /** base for relative lab paths (default process.cwd()) */
  cwd?: string;
}

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

const NAME = /^[a-z0-9][a-z0-9-]*$/i;

export function listNames(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .map((f) => f.replace(/\.ya?ml$/, ''))
    .sort();
}

export function labNames(repoRoot = REPO_ROOT): string[] {
  return listNames(join(repoRoot, 'labs'));
}

function findYaml(dir: string, name: string): string | null {
  for (const ext of ['.yaml', '.yml']) {
    const p = join(dir, name + ext);
    if (existsSync(p)) return p;
  }
  return null;
}

/** The lab file a CLI argument names. Unknown name → UsageError listing the labs. */
export function labFile(nameOrPath: string, opts: LoadOptions = {}): string {
  const repoRoot = opts.repoRoot ?? REPO_ROOT;
  const cwd = opts.cwd ?? process.cwd();
  if (NAME.test(nameOrPath)) {
    const p = findYaml(join(repoRoot, 'labs'), nameOrPath);
    if (p) return p;
    const asPath = resolve(cwd, nameOrPath);
    if (existsSync(asPath) && statSync(asPath).isFile()) return asPath;
    throw new UsageError(`unknown lab '${nameOrPath}': expected one of ${labNames(repoRoot).join(', ') || '(no labs found)'} (labs/<name>.yaml) or a path to a lab file`);
  }
  const p = resolve(cwd, nameOrPath);
  if (!existsSync(p)) throw LabInputError.one(display(p, repoRoot), '', 'no such file: expected a lab file (YAML) or a lab name under labs/');
  if (!statSync(p).isFile()) throw LabInputError.one(display(p, repoRoot), '', 'is not a file: expected a lab file (YAML)');
  return p;
}

export function display(abs: string, repoRoot = REPO_ROOT): string {
  const rel = relative(repoRoot, abs);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel.split(sep).join('/') : abs;
}

export function loadLab(nameOrPath: string, opts: LoadOptions = {}): Lab {
  const repoRoot = opts.repoRoot ?? REPO_ROOT;
  const file = labFile(nameOrPath, opts);
  const issues = new Issues();

  const labDoc = readYaml(file, repoRoot, issues);
  const labRaw = labDoc ? parseWith<RawLab>(labSchema, labDoc, issues) : null;

  // the topology is loaded even when the lab itself has schema problems, to report everything at once
  const ref = labDoc && isRecord(labDoc.data) && typeof labDoc.data.topology === 'string' ? labDoc.data.topology : null;
  let rt: ResolvedTopology | null = null;
  if (ref !== null && labDoc) {
    const topoFile = topologyFile(ref, file, repoRoot, labDoc.src, issues);
    if (topoFile) rt = loadTopologyFile(topoFile, repoRoot, issues);
  }

  let lab: Lab | null = null;
  if (labRaw && rt) lab = resolveLab(labRaw, labDoc!.src, rt, issues, baseName(file));
  if (issues.count || !lab) {
    if (!issues.count) issues.add(labDoc?.src ?? { file: display(file, repoRoot), abs: file }, [], 'could not be resolved');
    throw new LabInputError(issues.list);
  }
  return lab;
}

/** Load one topology file on its own (tests, `lab render` of a topology). */
export function loadTopology(path: string, opts: LoadOptions = {}): Topology {
  const repoRoot = opts.repoRoot ?? REPO_ROOT;
  const issues = new Issues();
  const rt = loadTopologyFile(resolve(opts.cwd ?? process.cwd(), path), repoRoot, issues);
  if (issues.count || !rt) throw new LabInputError(issues.list);
  return rt.topology;
}

function topologyFile(ref: string, labPath: string, repoRoot: string, labSrc: SourceFile, issues: Issues): string | null {
  if (NAME.test(ref)) {
    const p = findYaml(join(repoRoot, 'topologies'), ref);
    if (p) return p;
    const local = findYaml(dirname(labPath), ref);
    if (local) return local;
    issues.add(labSrc, ['topology'], `no topology '${ref}' under topologies/ (available: ${listNames(join(repoRoot, 'topologies')).join(', ') || 'none'}); expected a topology name or a path relative to the lab file`);
    return null;
  }
  const p = resolve(dirname(labPath), ref);
  if (!existsSync(p) || !statSync(p).isFile()) {
    issues.add(labSrc, ['topology'], `no such file ${display(p, repoRoot)} (paths are relative to the lab file); expected a topology name under topologies/ or a path to a topology file`);
    return null;
  }
  return p;
}

function loadTopologyFile(file: string, repoRoot: string, issues: Issues): ResolvedTopology | null {
  const doc = readYaml(file, repoRoot, issues);
  if (!doc) return null;
  const raw = parseWith<RawTopology>(topologySchema, doc, issues);
  if (!raw) return null;
  return resolveTopology(raw, doc.src, issues, baseName(file));
}

function baseName(file: string): string {
  return basename(file, extname(file));
}

// ---------------------------------------------------------------------------------------------
// YAML with line numbers

interface YamlFile {
  src: SourceFile;
  data: unknown;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function readYaml(abs: string, repoRoot: string, issues: Issues): YamlFile | null {
  const shown = display(abs, repoRoot);
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (e) {
    issues.add({ file: shown, abs }, [], `cannot read: ${(e as Error).message}`);
    return null;
  }
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const src: SourceFile = { file: shown, abs, lineOf: (path) => lineOf(doc, lc, path) };
  if (doc.errors.length) {
    for (const e of doc.errors) {
      const pos = lc.linePos(e.pos[0]);
      issues.add({ file: shown, abs }, [], `YAML syntax error at line ${pos.line}, column ${pos.col}: ${e.message.split('\n')[0]}`);
    }
    return null;
  }
  return { src, data: doc.toJS() };
}

function lineOf(doc: Document, lc: LineCounter, path: PathPart[]): number | undefined {
  for (let n = path.length; n > 0; n--) {
    const node = doc.getIn(path.slice(0, n), true) as { range?: [number, number, number] } | undefined;
    if (node && typeof node === 'object' && node.range) return lc.linePos(node.range[0]).line;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// zod issues → file: path: expected …

function parseWith<T>(schema: ZodTypeAny, y: YamlFile, issues: Issues): T | null {
  const r = schema.safeParse(y.data);
  if (r.success) return r.data as T;
  for (const i of r.error.issues) {
    for (const { path, message } of describeIssue(i, y.data)) issues.add(y.src, path, message);
  }
  return null;
}

function valueAt(data: unknown, path: PathPart[]): unknown {
  let v: unknown = data;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string | number, unknown>)[p];
  }
  return v;
}

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v);
  return s && s.length > 60 ? s.slice(0, 57) + '…' : String(s);
}

const lower = (s: string) => s.charAt(0).toLowerCase() + s.slice(1);

/** One zod issue → one or more `{path, message}` in the words of this project. */
export function describeIssue(i: ZodIssue, data: unknown): { path: PathPart[]; message: string }[] {
  const path = i.path as PathPart[];
  const got = valueAt(data, path);
  switch (i.code) {
    case 'unrecognized_keys':
      return i.keys.map((k) => ({ path: [...path, k], message: `unknown key '${k}'; ${i.message}` }));
    case 'invalid_type':
      if (i.received === 'undefined') return [{ path, message: `missing; expected ${i.expected === 'object' ? 'a mapping' : i.expected}` }];
      if (i.expected === 'object') return [{ path, message: `expected a mapping (key: value lines), got ${i.received === 'null' ? 'an empty document' : i.received}` }];
      return [{ path, message: `expected ${i.expected}, got ${i.received}${i.received === 'string' || i.received === 'number' ? ` ${show(got)}` : ''}` }];
    case 'invalid_enum_value':
      return [{ path, message: `expected one of ${i.options.join(', ')}, got ${show(i.received)}` }];
    case 'too_small':
    case 'too_big': {
      const word = i.code === 'too_small' ? (i.inclusive ? '≥' : '>') : i.inclusive ? '≤' : '<';
      const bound = i.code === 'too_small' ? i.minimum : i.maximum;
      const custom = !/^(Number|Array|String) must /.test(i.message);
      if (custom) return [{ path, message: `${lower(i.message)}, got ${show(got)}` }];
      if (i.type === 'array') return [{ path, message: `expected ${word} ${bound} entries, got ${Array.isArray(got) ? got.length : show(got)}` }];
      if (i.type === 'string') return [{ path, message: `expected a string of length ${word} ${bound}, got ${show(got)}` }];
      return [{ path, message: `expected a number ${word} ${bound}, got ${show(got)}` }];
    }
    case 'not_multiple_of':
      return [{ path, message: `expected a multiple of ${i.multipleOf}, got ${show(got)}` }];
    case 'invalid_union':
      return [{ path, message: `${i.message === 'Invalid input' ? 'invalid value' : lower(i.message)}, got ${show(got)}` }];
    default: {
      const m = i.message === 'Invalid' || i.message === 'Invalid input' ? 'invalid value' : lower(i.message);
      return [{ path, message: got === undefined || /\bgot\b/.test(m) ? m : `${m}, got ${show(got)}` }];
    }
  }
}
