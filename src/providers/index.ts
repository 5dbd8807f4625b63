/**
 * Provider registry. `auto` picks docker when Docker and talosctl are usable and the Talos image is
 * present, else sim — and says so loudly (DESIGN.md).
 */
import type { Provider, ProviderName } from './types.js';
import { UsageError } from '../util/errors.js';
import { loadPlugin } from '../util/plugin.js';

export const PROVIDERS = ['sim', 'docker', 'qemu', 'auto'] as const;
export type ProviderChoice = (typeof PROVIDERS)[number];

export async function loadProvider(name: ProviderName): Promise<Provider> {
  const where: Record<ProviderName, [string, string]> = {
    sim: ['./kinds/emulated/provider.js', 'simProvider'],
    docker: ['./runtimes/docker/talos.js', 'dockerProvider'],
    qemu: ['./runtimes/qemu/index.js', 'qemuProvider'],
  };
  if (name in where) return loadPlugin<Provider>('provider', name, import.meta.url, ...where[name]);
  throw new UsageError(`unknown provider '${name}'; valid: ${PROVIDERS.join(', ')}`);
}

export async function resolveProvider(
  choice: string,
  lab: Parameters<Provider['check']>[0],
  say: (msg: string) => void = () => {},
): Promise<Provider> {
  if (!(PROVIDERS as readonly string[]).includes(choice)) throw new UsageError(`unknown provider '${choice}'; valid: ${PROVIDERS.join(', ')}`);
  if (choice !== 'auto') return loadProvider(choice as ProviderName);
  const docker = await loadProvider('docker');
  try {
    await docker.check(lab);
    say('provider auto → docker (Docker, talosctl and the Talos image are usable): real Talos');
    return docker;
  } catch (e) {
    say(`provider auto → sim (docker not usable: ${(e as Error).message.split('\n')[0]}): EMULATED Talos control plane`);
    return loadProvider('sim');
  }
}
