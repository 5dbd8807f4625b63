/**
 * The node agent's bundle (src/providers/gear/agent-bundle.ts) is the agent's own source in one
 * file: every component the agent loads lazily by URL is compiled in under that URL, every file
 * keeps the `import.meta.url` of its source (so paths derived from it — the ARP responder script,
 * the repository root — point into the source tree), and the file runs under plain node.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { AGENT_NODE_FLAGS, BUNDLE_KEEP_MS, agentEntry, buildAgentBundle, pruneBundles } from '../../src/providers/gear/agent-bundle.js';
import { useTempDirs } from '../helpers/tmp.js';
import { componentModules } from '../../src/emulation/agent/components.js';
import { REPO_ROOT } from '../../src/model/load.js';
import { run } from '../../src/util/proc.js';

const mkTemp = useTempDirs();

describe('node agent bundle', () => {
  it('compiles in every component under the URL its registry names it with, with source-file import.meta.url', async () => {
    const file = await buildAgentBundle();
    expect(file.startsWith(join(REPO_ROOT, 'node_modules', '.cache', 'talos-ha-lab'))).toBe(true);
    const text = readFileSync(file, 'utf8');
    const mods = componentModules();
    expect(mods.map((m) => m.kind)).toEqual(expect.arrayContaining(['apiserver', 'kubeprism', 'kube-proxy', 'echo', 'traffic', 'kubelet-client']));
    for (const { url } of mods) expect(text, url).toContain(JSON.stringify(url));
    // no file of ours reads the bundle's own URL: each carries its source's
    expect(text).not.toMatch(/import\.meta\.url/);
    expect(text).toContain(JSON.stringify(pathToFileURL(join(REPO_ROOT, 'src', 'emulation', 'net.ts')).href));
    // the same content gives the same file (named by its hash)
    expect(await buildAgentBundle()).toBe(file);
    expect((await agentEntry()).args).toEqual([...AGENT_NODE_FLAGS, file]);
  }, 60_000);

  it('runs under plain node: the agent reads its spec (and names it when it is missing)', async () => {
    const file = await buildAgentBundle();
    const missing = join(REPO_ROOT, 'test-output', 'no-such-agent-spec.json');
    const r = await run(process.execPath, [file, missing], { reject: false, timeoutMs: 30_000 });
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain(missing);
    expect(r.stderr).toMatch(/ENOENT/);
  }, 60_000);

  it('prunes the bundles no run used for a day, never the one in use nor other files', () => {
    const dir = mkTemp('bundles-');
    const at = (name: string, ageMs: number) => {
      const f = join(dir, name);
      writeFileSync(f, '//');
      const t = new Date(Date.now() - ageMs);
      utimesSync(f, t, t);
      return f;
    };
    const day = BUNDLE_KEEP_MS;
    const inUse = at('agent-00000000000000aa.mjs', 3 * day);
    const stale = at('agent-00000000000000bb.mjs', day + 60_000);
    const staleTmp = at('agent-00000000000000cc.mjs.4242.tmp', 2 * day);
    at('agent-00000000000000dd.mjs', day - 60_000); // a lab started from it may still run
    at('tsx-cache.json', 5 * day); // not ours
    expect(pruneBundles(inUse, dir).sort()).toEqual([stale, staleTmp].sort());
    expect(readdirSync(dir).sort()).toEqual(['agent-00000000000000aa.mjs', 'agent-00000000000000dd.mjs', 'tsx-cache.json']);
    expect(existsSync(inUse)).toBe(true);
  });
});
