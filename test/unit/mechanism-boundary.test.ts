/**
 * A mechanism owns everything about itself: outside its folder (src/strategies/<id>/) and the
 * registry, no source file names it. The engine, the providers and the report ask the mechanism
 * through its interface (traits, holders, render, bands, real-cluster steps); a literal id
 * elsewhere is a switch on its name that the next mechanism would have to extend.
 *
 * Checked on string literals: an id itself ('metallb-l2'), or a prefix of one used to match ids
 * ('metallb-', startsWith('kube-vip')). Family folders (src/strategies/kube-vip/, metallb/,
 * cilium/) hold what two mechanisms of one product share; they may name their family but not an
 * id of it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../src/model/load.js';
import { MECHANISMS } from '../../src/strategies/registry.js';

const SRC = join(REPO_ROOT, 'src');
const ids = [...MECHANISMS.keys()];

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

/** every string literal of a TypeScript source, comments removed first */
export function literals(source: string): { text: string; line: number; before: string }[] {
  const out: { text: string; line: number; before: string }[] = [];
  const noComments = source.replace(/\/\*[\s\S]*?\*\//g, (m) => m.replace(/[^\n]/g, ' ')).replace(/(^|[^:'"`\\])\/\/.*$/gm, (m, p: string) => p + ' '.repeat(m.length - p.length));
  const re = /(['"`])((?:\\.|(?!\1)[^\\\n])*)\1/g;
  for (let m = re.exec(noComments); m; m = re.exec(noComments)) {
    out.push({ text: m[2]!, line: noComments.slice(0, m.index).split('\n').length, before: noComments.slice(Math.max(0, m.index - 12), m.index) });
  }
  return out;
}

/** a literal that names a mechanism: an id, or an id's prefix used to match ids */
export function namesMechanism(lit: { text: string; before: string }, known: string[]): string | null {
  const t = lit.text;
  if (known.includes(t)) return t;
  const prefixMatch = /startsWith\($|endsWith\($/.test(lit.before);
  for (const id of known) {
    if (t.length >= 3 && id.startsWith(t) && (t.endsWith('-') || prefixMatch)) return id;
    if (t.length >= 3 && prefixMatch && id.endsWith(t) && t.startsWith('-')) return id;
  }
  return null;
}

function allowed(file: string, id: string): boolean {
  const rel = relative(SRC, file).split(sep).join('/');
  return rel === 'strategies/registry.ts' || rel.startsWith(`strategies/${id}/`);
}

describe('mechanism ids stay inside their folders', () => {
  it('the scanner finds an id, an id prefix used to match, and ignores comments and other words', () => {
    const src = `// talos-vip in a comment\n/* metallb-l2 */\nconst a = 'metallb-l2';\nif (x.startsWith('kube-vip')) y();\nconst b = "metallb-";\nconst c = 'kube-proxy';\n`;
    const found = literals(src).map((l) => namesMechanism(l, ['talos-vip', 'metallb-l2', 'kube-vip-arp'])).filter(Boolean);
    expect(found).toEqual(['metallb-l2', 'kube-vip-arp', 'metallb-l2']);
  });

  it('no source file outside src/strategies/<id>/ and the registry names a mechanism', () => {
    const bad: string[] = [];
    for (const f of walk(SRC)) {
      for (const lit of literals(readFileSync(f, 'utf8'))) {
        const id = namesMechanism(lit, ids);
        if (id && !allowed(f, id)) bad.push(`${relative(REPO_ROOT, f)}:${lit.line}: '${lit.text}' names mechanism ${id}`);
      }
    }
    expect(bad).toEqual([]);
  });
});
