/**
 * Agent component registry: one entry per emulated component kind, loaded lazily
 * so an agent only imports what its host runs. An unknown kind lists the valid ones.
 */
import type { ComponentFactory } from './types.js';
import { LabError } from '../../util/errors.js';

type Loader = () => Promise<ComponentFactory>;

const registry = new Map<string, Loader>();

export function registerComponent(kind: string, loader: Loader): void {
  if (registry.has(kind)) throw new LabError(`agent component '${kind}' registered twice`);
  registry.set(kind, loader);
}

export async function componentFactory(kind: string): Promise<ComponentFactory> {
  const loader = registry.get(kind);
  if (!loader) throw new LabError(`unknown agent component '${kind}'; valid: ${[...registry.keys()].sort().join(', ')}`);
  return loader();
}

export function componentKinds(): string[] {
  return [...registry.keys()].sort();
}
