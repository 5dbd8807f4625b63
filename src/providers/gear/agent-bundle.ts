/**
 * The node agent as one JavaScript file, built once per CLI process with esbuild and started as
 * `node <bundle> <spec.json>` instead of `node --import tsx src/emulation/agent/main.ts`.
 *
 * Why: every emulated node runs an agent, and under tsx each one resolves, transforms and loads
 * some hundred TypeScript modules when it starts — 1.3 CPU-seconds and 107 MB peak for the
 * agent's static imports alone on the 2-core machine, before its components load. The bundle
 * loads in 0.35 CPU-seconds and 60 MB. An enterprise strategy starts 35 agents (and a crash
 * drill's restore starts one again, on the drill's busiest seconds), so on 2 cores that cost was
 * the better part of a minute per strategy switch, and CPU taken from the probes measured beside
 * it. Measurements in docs/bench-labs.md.
 *
 * What stays as it was: the agent runs the same source (the bundle is rebuilt from it by every
 * CLI run, so it is never stale), packages stay in node_modules (the bundle sits under
 * node_modules/.cache so Node resolves them from the repository as before), and every file keeps
 * its own `import.meta.url` (rewritten to its source file's URL at build time), so the paths
 * derived from it — the ARP responder script, the repository root — point where they did. The
 * components the agent loads lazily by URL (./emulation/agent/components.ts) are compiled in and
 * registered under those URLs (registerBundled in src/util/plugin.ts). If esbuild is missing or
 * the build fails, agents start under tsx as before and the lab says so once.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { REPO_ROOT } from '../../model/load.js';

export const AGENT_MAIN = join(REPO_ROOT, 'src', 'emulation', 'agent', 'main.ts');
const CACHE_DIR = join(REPO_ROOT, 'node_modules', '.cache', 'talos-ha-lab');

/**
 * Node flags of every agent. `--expose-gc`: agents collect their heap between drills (the client
 * before each session), so no major GC of theirs falls inside a drill's window
 * (src/emulation/agent/heap.ts says why).
 */
export const AGENT_NODE_FLAGS: readonly string[] = ['--expose-gc'];

export interface AgentEntry {
  /** node's arguments before the spec file */
  args: string[];
  /** why the agents run under tsx (the bundle could not be built), else null */
  fallback: string | null;
}

let entry: Promise<AgentEntry> | null = null;

/** How to start a node agent: the bundle when it builds, tsx otherwise (memoized per process). */
export function agentEntry(): Promise<AgentEntry> {
  entry ??= buildAgentBundle().then(
    (file) => ({ args: [...AGENT_NODE_FLAGS, file], fallback: null }),
    (e: unknown) => ({ args: [...AGENT_NODE_FLAGS, '--import', 'tsx', AGENT_MAIN], fallback: `agent bundle not built (${(e as Error).message.split('\n')[0]}): agents start under tsx` }),
  );
  return entry;
}

/** Build the bundle; its file is named by its content's hash, written atomically, reused when present. */
export async function buildAgentBundle(): Promise<string> {
  const { build } = await import('esbuild');
  const { componentModules } = await import('../../emulation/agent/components.js');
  const src = join(REPO_ROOT, 'src');
  const plugin = join(src, 'util', 'plugin.ts');
  const toPath = (url: string) => fileURLToPath(url).replace(/\.js$/, '.ts');
  const lines = [
    `import { registerBundled } from ${JSON.stringify(plugin)};`,
    'registerBundled({',
    ...componentModules().map(({ url }) => `  ${JSON.stringify(url)}: () => import(${JSON.stringify(toPath(url))}),`),
    '});',
    // dynamic: the registrations above run before the agent's first component loads
    `await import(${JSON.stringify(AGENT_MAIN)});`,
  ];
  const out = await build({
    stdin: { contents: lines.join('\n'), resolveDir: src, sourcefile: 'agent-entry.mjs', loader: 'js' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: `node${process.versions.node.split('.')[0]}`,
    packages: 'external',
    write: false,
    logLevel: 'silent',
    plugins: [
      {
        name: 'source-import-meta-url',
        setup(b) {
          b.onLoad({ filter: /\.ts$/ }, (args) => {
            if (!args.path.startsWith(src)) return undefined;
            const text = readFileSync(args.path, 'utf8').replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href));
            return { contents: text, loader: 'ts' };
          });
        },
      },
    ],
  });
  const code = out.outputFiles[0]!.contents;
  const file = join(CACHE_DIR, `agent-${createHash('sha256').update(code).digest('hex').slice(0, 16)}.mjs`);
  if (!existsSync(file)) {
    mkdirSync(CACHE_DIR, { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, code);
    renameSync(tmp, file);
  } else {
    const t = new Date();
    utimesSync(file, t, t);
  }
  pruneBundles(file);
  return file;
}

/**
 * Every edit of the agent's source makes a new bundle (≈ 340 KB); the ones no run has used for
 * BUNDLE_KEEP_MS go. Not sooner: a lab started from an older source may still be running, and
 * restoring a crashed node starts that lab's agent again from its bundle. A run marks the bundle
 * it uses by touching it.
 */
export const BUNDLE_KEEP_MS = 24 * 3600_000;

export function pruneBundles(keep: string, dir = CACHE_DIR, nowMs = Date.now()): string[] {
  const removed: string[] = [];
  for (const name of existsSync(dir) ? readdirSync(dir) : []) {
    const f = join(dir, name);
    if (f === keep || !/^agent-[0-9a-f]{16}\.mjs(\.\d+\.tmp)?$/.test(name)) continue;
    try {
      if (nowMs - statSync(f).mtimeMs < BUNDLE_KEEP_MS) continue;
      rmSync(f, { force: true });
      removed.push(f);
    } catch {
      // gone meanwhile (another run pruned it)
    }
  }
  return removed;
}
