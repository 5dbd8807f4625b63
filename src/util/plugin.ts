/**
 * Lazy plug-in loading by module path (relative to the registry that names it). Registries list
 * their plug-ins as paths so a verb only loads what it uses (the CLI's --help loads no renderer,
 * an agent loads only its host's components); a plug-in that is missing fails with its name and
 * path, not at import time of the whole engine.
 */
import { LabError } from './errors.js';

/**
 * Plug-ins compiled into the running file (the node agent's bundle, src/providers/gear/agent-bundle.ts),
 * by the URL their registry names them with: loaded from there, never from the source tree.
 */
const bundled = new Map<string, () => Promise<unknown>>();

export function registerBundled(modules: Record<string, () => Promise<unknown>>): void {
  for (const [url, load] of Object.entries(modules)) bundled.set(url, load);
}

export async function loadPlugin<T>(family: string, name: string, base: string, path: string, exportName = 'default'): Promise<T> {
  const url = new URL(path, base).href;
  let mod: Record<string, unknown>;
  try {
    const inBundle = bundled.get(url);
    mod = (await (inBundle ? inBundle() : import(url))) as Record<string, unknown>;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes(path.replace(/^\.\.?\//, '').replace(/\.js$/, ''))) {
      throw new LabError(`${family} '${name}' is not available in this build (${path} is missing)`);
    }
    throw e;
  }
  const v = mod[exportName];
  if (v === undefined) throw new LabError(`${family} '${name}': ${path} has no export '${exportName}'`);
  return v as T;
}
