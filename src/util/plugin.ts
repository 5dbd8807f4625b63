/**
 * Lazy plug-in loading by module path (relative to the registry that names it). Registries list
 * their plug-ins as paths so a verb only loads what it uses (the CLI's --help loads no renderer,
 * an agent loads only its host's components); a plug-in that is missing fails with its name and
 * path, not at import time of the whole engine.
 */
import { LabError } from './errors.js';

export async function loadPlugin<T>(family: string, name: string, base: string, path: string, exportName = 'default'): Promise<T> {
  const url = new URL(path, base).href;
  let mod: Record<string, unknown>;
  try {
    mod = (await import(url)) as Record<string, unknown>;
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
