/**
 * Load a lab: `<lab>` is a name under `labs/` or a path to a lab file; the lab's `topology:` is a
 * name under `topologies/` or a path relative to the lab file. YAML syntax, schema and cross-field
 * problems of BOTH files are collected and thrown together as one LabInputError (exit 2), each
 * naming the file, the path inside it, what was expected and, where known, the line.
 *
 * Input is untrusted: a file larger than MAX_INPUT_BYTES, or nesting [ ]/{ } deeper than
 * MAX_FLOW_DEPTH, is refused before it is parsed; YAML aliases are capped (yaml's maxAliasCount:
 * a "billion laughs" file stops early instead of expanding into gigabytes); duplicate keys name
 * their key path and both lines; .inf/.nan are refused; a parser exception is an input problem,
 * not a crash; and a topology above the hard size caps (src/model/capacity.ts) is refused before
 * resolving builds one object per node. A problem repeated for many nodes is printed once with a
 * count (collapseIssues).
 */
import { closeSync, existsSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { basename, dirname, extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LineCounter, isMap, isPair, isScalar, isSeq, parseDocument, visit, type Document } from 'yaml';
import type { ZodIssue, ZodTypeAny } from 'zod';
import { LabInputError, UsageError, type InputIssue } from '../util/errors.js';
import type { Lab, Topology } from './types.js';
import { labSchema, topologySchema, type RawLab, type RawTopology } from './schema.js';
import { Issues, resolveLab, resolveTopology, type PathPart, type ResolvedTopology, type SourceFile } from './resolve.js';
import { HARD_MAX_NODES, HARD_MAX_RACKS } from './capacity.js';

export interface LoadOptions {
  /** the repository root holding labs/ and topologies/ (default: this checkout) */
  repoRoot?: string;
  /** base for relative lab paths (default process.cwd()) */
  cwd?: string;
}

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

const NAME = /^[a-z0-9][a-z0-9-]*$/i;

/**
 * Largest lab or topology file read. The shipped ones are < 4 KiB (a topology gives node counts,
 * not node lists). Parsing is the cost: yaml needs ~5 s and ~600 MiB for a 1 MiB file of 150,000
 * list items (and zod one issue per item), ~1 s at this size.
 */
export const MAX_INPUT_BYTES = 256 << 10;
/** Deepest flow nesting ([…] / {…}) accepted: the yaml parser recurses per level (300,000 levels: 10 s and 440 MiB, then a stack overflow). The shipped files nest 3 deep. */
export const MAX_FLOW_DEPTH = 64;
/** yaml's maxAliasCount when converting to JS (its default, stated): enough for anchors of timer blocks, far too few for an alias bomb. */
export const MAX_ALIAS_COUNT = 100;

/**
 * The CLI's verbs (src/cli/main.ts registers exactly these). `lab <word>` runs the verb when the
 * word is one, so a lab of that name could never be run as `lab <name>`: refused when it loads.
 */
export const RESERVED_LAB_NAMES = ['run', 'up', 'down', 'ls', 'clean', 'report', 'load', 'render', 'watch', 'help'] as const;
export function isReservedLabName(name: string): boolean {
  return (RESERVED_LAB_NAMES as readonly string[]).includes(name);
}

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
    const verb = isReservedLabName(nameOrPath) ? `; '${nameOrPath}' is a verb: run it as \`lab ${nameOrPath}\`` : '';
    throw new UsageError(`unknown lab '${nameOrPath}': expected one of ${labNames(repoRoot).join(', ') || '(no labs found)'} (labs/<name>.yaml) or a path to a lab file${verb}`);
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

  if (labDoc) {
    const named = isRecord(labDoc.data) && typeof labDoc.data.name === 'string' ? labDoc.data.name : null;
    const name = named ?? baseName(file);
    if (isReservedLabName(name)) {
      issues.add(
        labDoc.src,
        named !== null ? ['name'] : [],
        `the lab name '${name}' is a verb of the CLI (${RESERVED_LAB_NAMES.join(', ')}): \`lab ${name}\` runs the verb, never this lab; expected another ${named !== null ? 'name' : 'file name'}`,
      );
    }
  }

  let lab: Lab | null = null;
  if (labRaw && rt) lab = resolveLab(labRaw, labDoc!.src, rt, issues, baseName(file));
  if (issues.count || !lab) {
    if (!issues.count) issues.add(labDoc?.src ?? { file: display(file, repoRoot), abs: file }, [], 'could not be resolved');
    throw new LabInputError(collapseIssues(issues.list));
  }
  return lab;
}

/** Load one topology file on its own (tests, `lab render` of a topology). */
export function loadTopology(path: string, opts: LoadOptions = {}): Topology {
  const repoRoot = opts.repoRoot ?? REPO_ROOT;
  const issues = new Issues();
  const rt = loadTopologyFile(resolve(opts.cwd ?? process.cwd(), path), repoRoot, issues);
  if (issues.count || !rt) throw new LabInputError(collapseIssues(issues.list));
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
  if (!withinHardSize(raw, doc.src, issues)) return null;
  return resolveTopology(raw, doc.src, issues, baseName(file));
}

const count = (x: number) => x.toLocaleString('en-US');

/**
 * The hard size caps (src/model/capacity.ts), on the raw file: resolving allocates an address and
 * an object per node, which for `workers: 100000` is the problem itself.
 */
function withinHardSize(raw: RawTopology, src: SourceFile, issues: Issues): boolean {
  const why = `no machine runs a lab this large, and --force does not lift this limit`;
  let ok = true;
  const racks = raw.network.racks;
  if (racks && racks.length > HARD_MAX_RACKS) {
    issues.add(src, ['network', 'racks'], `${count(racks.length)} racks; expected at most ${count(HARD_MAX_RACKS)} racks in one lab (${why})`);
    ok = false;
  }
  const cps = racks ? racks.reduce((a, r) => a + r.controlPlanes, 0) : (raw.cluster.controlPlanes ?? 0);
  const workers = racks ? racks.reduce((a, r) => a + r.workers, 0) : (raw.cluster.workers ?? 0);
  if (cps + workers > HARD_MAX_NODES) {
    let path: PathPart[];
    if (racks) {
      const big = racks.reduce((bi, r, i) => (r.controlPlanes + r.workers > racks[bi]!.controlPlanes + racks[bi]!.workers ? i : bi), 0);
      path = racks.length === 1 || racks[big]!.controlPlanes + racks[big]!.workers > HARD_MAX_NODES ? ['network', 'racks', big, racks[big]!.workers >= racks[big]!.controlPlanes ? 'workers' : 'controlPlanes'] : ['network', 'racks'];
    } else {
      path = ['cluster', workers >= cps ? 'workers' : 'controlPlanes'];
    }
    issues.add(src, path, `${count(cps + workers)} nodes (${count(cps)} control planes + ${count(workers)} workers); expected at most ${count(HARD_MAX_NODES)} nodes in one lab (${why})`);
    ok = false;
  }
  return ok;
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

function mib(bytes: number): string {
  return bytes < 2 ** 20 ? `${Math.round(bytes / 1024)} KiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/** The file's text, or an issue: not a regular file, larger than MAX_INPUT_BYTES (read at most that much + 1 byte), unreadable. */
function readBounded(abs: string, shown: string, issues: Issues): string | null {
  const src = { file: shown, abs };
  let fd: number | null = null;
  try {
    const st = statSync(abs);
    if (!st.isFile()) {
      issues.add(src, [], 'is not a regular file: expected a YAML file');
      return null;
    }
    if (st.size > MAX_INPUT_BYTES) {
      issues.add(src, [], `is ${mib(st.size)} (${count(st.size)} bytes); expected a lab or topology file of at most ${mib(MAX_INPUT_BYTES)}`);
      return null;
    }
    fd = openSync(abs, 'r');
    const buf = Buffer.alloc(MAX_INPUT_BYTES + 1);
    let got = 0;
    for (;;) {
      const n = readSync(fd, buf, got, buf.length - got, null);
      if (n === 0) break;
      got += n;
      if (got === buf.length) break;
    }
    if (got > MAX_INPUT_BYTES) {
      // it grew after the size check
      issues.add(src, [], `is larger than ${mib(MAX_INPUT_BYTES)}; expected a lab or topology file of at most ${mib(MAX_INPUT_BYTES)}`);
      return null;
    }
    return buf.subarray(0, got).toString('utf8');
  } catch (e) {
    issues.add(src, [], `cannot read: ${(e as Error).message}`);
    return null;
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

/** The key path of a node from its ancestors (as yaml's `visit` gives them). */
function nodePath(ancestors: readonly unknown[], self: unknown): PathPart[] {
  const chain = [...ancestors, self];
  const out: PathPart[] = [];
  chain.forEach((a, i) => {
    if (isPair(a)) out.push(isScalar(a.key) ? (a.key.value as PathPart) : String(a.key));
    else if (isSeq(a) && i + 1 < chain.length) out.push(a.items.indexOf(chain[i + 1] as never));
  });
  return out;
}

/**
 * Keys that appear twice in one mapping: the path of the repeated key, its line and the line of
 * its first occurrence. yaml's own `uniqueKeys` check compares each key with every earlier one
 * (60,000 keys: a minute); a Set per mapping is linear.
 */
function duplicateKeys(doc: Document, lc: LineCounter): { path: PathPart[]; line?: number; first?: number }[] {
  const out: { path: PathPart[]; line?: number; first?: number }[] = [];
  const lineAt = (n: unknown) => {
    const r = (n as { range?: [number, number, number] } | null)?.range;
    return r ? lc.linePos(r[0]).line : undefined;
  };
  const walk = (node: unknown, path: PathPart[]) => {
    if (isMap(node)) {
      const seen = new Map<string, unknown>();
      for (const p of node.items) {
        const k = isScalar(p.key) ? p.key.value : p.key;
        const id = isScalar(p.key) ? `s:${String(k)}` : `n:${String(p.key)}`;
        const kp = [...path, (isScalar(p.key) ? k : String(p.key)) as PathPart];
        if (seen.has(id)) out.push({ path: kp, line: lineAt(p.key), first: lineAt(seen.get(id)) });
        else seen.set(id, p.key);
        walk(p.value, kp);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => walk(item, [...path, i]));
    }
  };
  walk(doc.contents, []);
  return out;
}

/** The first alias node: where an alias bomb starts. */
function firstAlias(doc: Document, lc: LineCounter): { path: PathPart[]; line?: number } | null {
  let found: { path: PathPart[]; line?: number } | null = null;
  visit(doc, {
    Alias(_, node, ancestors) {
      found = { path: nodePath(ancestors, node), line: node.range ? lc.linePos(node.range[0]).line : undefined };
      return visit.BREAK;
    },
  });
  return found;
}

/** Deepest flow-collection nesting and its line (quotes and comments skipped; a rough scan, exact for what it guards). */
function flowDepth(text: string): { depth: number; line: number } {
  let depth = 0;
  let max = 0;
  let line = 1;
  let maxLine = 1;
  let quote: string | null = null;
  let comment = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\n') {
      line++;
      comment = false;
      continue;
    }
    if (comment) continue;
    if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = null;
      continue;
    }
    if (c === '"' || c === "'") quote = c;
    else if (c === '#' && (i === 0 || /\s/.test(text[i - 1]!))) comment = true;
    else if (c === '[' || c === '{') {
      if (++depth > max) {
        max = depth;
        maxLine = line;
      }
    } else if ((c === ']' || c === '}') && depth > 0) depth--;
  }
  return { depth: max, line: maxLine };
}

function readYaml(abs: string, repoRoot: string, issues: Issues): YamlFile | null {
  const shown = display(abs, repoRoot);
  const text = readBounded(abs, shown, issues);
  if (text === null) return null;
  const nest = flowDepth(text);
  if (nest.depth > MAX_FLOW_DEPTH) {
    issues.add({ file: shown, abs }, [], `nests [ ] / { } ${count(nest.depth)} levels deep (line ${nest.line}); expected at most ${MAX_FLOW_DEPTH} levels`);
    return null;
  }
  const lc = new LineCounter();
  let doc: Document;
  try {
    // duplicate keys: checked below in linear time (duplicateKeys), not by yaml's quadratic uniqueKeys
    doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: false });
  } catch (e) {
    issues.add({ file: shown, abs }, [], `cannot be parsed as YAML (${(e as Error).message}); expected a plain YAML mapping`);
    return null;
  }
  const src: SourceFile = { file: shown, abs, lineOf: (path) => lineOf(doc, lc, path) };
  if (doc.errors.length) {
    for (const e of doc.errors) {
      const pos = lc.linePos(e.pos[0]);
      issues.add({ file: shown, abs }, [], `YAML syntax error at line ${pos.line}, column ${pos.col}: ${e.message.split('\n')[0]}`);
    }
    return null;
  }
  const dups = duplicateKeys(doc, lc);
  for (const d of dups) {
    const key = d.path[d.path.length - 1];
    issues.add({ file: shown, abs }, d.path, `duplicate key '${key}'${d.first ? ` (first at line ${d.first})` : ''}; expected each key once in a mapping${d.line ? ` (line ${d.line})` : ''}`);
  }
  if (dups.length) return null;
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (e) {
    const at = firstAlias(doc, lc);
    issues.add(
      { file: shown, abs },
      at?.path ?? [],
      `YAML aliases expand too far (the yaml library: ${(e as Error).message}; maxAliasCount ${MAX_ALIAS_COUNT}); expected plain values — lab and topology files need at most a few aliases${at?.line ? ` (first alias at line ${at.line})` : ''}`,
    );
    return null;
  }
  const infinite = nonFinite(data);
  for (const path of infinite) issues.add(src, path, `expected a finite number, got ${String(valueAt(data, path)).replace('Infinity', '.inf').replace('NaN', '.nan')}`);
  if (infinite.length) return null;
  return { src, data };
}

/** Paths of YAML's .inf / -.inf / .nan: zod's number() takes Infinity, and no timer or count of a lab may be endless. */
function nonFinite(data: unknown, path: PathPart[] = [], out: PathPart[][] = []): PathPart[][] {
  if (typeof data === 'number' && !Number.isFinite(data)) out.push(path);
  else if (Array.isArray(data)) data.forEach((v, i) => nonFinite(v, [...path, i], out));
  else if (isRecord(data)) for (const [k, v] of Object.entries(data)) nonFinite(v, [...path, k], out);
  return out;
}

/** 1-based line of `path` in a YAML file (for messages about resolved values, e.g. the capacity check). */
export function lineOfField(abs: string, path: PathPart[]): number | undefined {
  const text = readBounded(abs, abs, new Issues());
  if (text === null) return undefined;
  try {
    const lc = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
    return lineOf(doc, lc, path);
  } catch {
    return undefined;
  }
}

/** path → line of the value there, built once per document (a lookup per problem: 60,000 unknown keys stay linear) */
const lineIndexes = new WeakMap<Document, Map<string, number>>();

function lineIndex(doc: Document, lc: LineCounter): Map<string, number> {
  let m = lineIndexes.get(doc);
  if (m) return m;
  const index = new Map<string, number>();
  const put = (path: PathPart[], node: unknown) => {
    const range = (node as { range?: [number, number, number] } | null)?.range;
    const k = path.join('\u0000');
    if (range && !index.has(k)) index.set(k, lc.linePos(range[0]).line);
  };
  const walk = (node: unknown, path: PathPart[]) => {
    if (isMap(node)) {
      for (const p of node.items) {
        const kp = [...path, (isScalar(p.key) ? p.key.value : p.key) as PathPart];
        put(kp, p.value);
        walk(p.value, kp);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => {
        put([...path, i], item);
        walk(item, [...path, i]);
      });
    }
  };
  walk(doc.contents, []);
  lineIndexes.set(doc, (m = index));
  return m;
}

function lineOf(doc: Document, lc: LineCounter, path: PathPart[]): number | undefined {
  const index = lineIndex(doc, lc);
  for (let n = path.length; n > 0; n--) {
    const line = index.get(path.slice(0, n).join('\u0000'));
    if (line !== undefined) return line;
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

// ---------------------------------------------------------------------------------------------
// one line per kind of problem

/** What may differ between two problems of the same kind: addresses, host names (cp3, w12), numbers. */
const VARIABLE = /\b\d{1,3}(?:\.\d{1,3}){3}(?:\/\d{1,2})?\b|\b[a-z][a-z-]*\d+\b|\d[\d,]*(?:\.\d+)?/gi;
const HOST_LIKE = /^[a-z][a-z-]*\d+$/i;
/** labels listed after the count */
const SHOWN_LABELS = 6;

/**
 * Problems of the same file whose path and message differ only in node names, numbers and
 * addresses (e.g. one "too few addresses for node w245" per node of a 100,000-node topology) →
 * the first of them, followed by "(and N more like it: w246, w247, …)". Order of first
 * occurrence is kept; problems that are alone in their kind are unchanged.
 */
export function collapseIssues(list: InputIssue[]): InputIssue[] {
  const groups = new Map<string, InputIssue[]>();
  for (const i of list) {
    const key = `${i.file}\u0000${i.path.replace(VARIABLE, '#')}\u0000${i.message.replace(VARIABLE, '#')}`;
    const g = groups.get(key);
    if (g) g.push(i);
    else groups.set(key, [i]);
  }
  const out: InputIssue[] = [];
  for (const g of groups.values()) {
    const first = g[0]!;
    if (g.length === 1) {
      out.push(first);
      continue;
    }
    const t0 = first.message.match(VARIABLE) ?? [];
    const labels: string[] = [];
    const seen = new Set<string>();
    for (const other of g.slice(1)) {
      if (labels.length > SHOWN_LABELS) break;
      const t = other.message.match(VARIABLE) ?? [];
      const diff = t.filter((tok, k) => tok !== t0[k]);
      const label = diff.find((tok) => HOST_LIKE.test(tok)) ?? (other.path !== first.path ? other.path : diff[0]);
      if (label && !seen.has(label)) {
        seen.add(label);
        labels.push(label);
      }
    }
    const more = g.length - 1;
    const shown = labels.slice(0, SHOWN_LABELS).join(', ') + (more > Math.min(labels.length, SHOWN_LABELS) ? ', …' : '');
    out.push({ ...first, message: `${first.message} (and ${count(more)} more like it${labels.length ? `: ${shown}` : ''})` });
  }
  return out;
}
