/**
 * Provider registry: node KINDS × RUNTIMES, named as pairs. `sim` = emulated nodes on netns,
 * `docker` = real Talos on docker, `docker` with `--nodes emulated` = the emulated nodes on docker,
 * `qemu` = real Talos on qemu. A choice is `<provider>` or `<provider>:<nodes>` (what the CLI's
 * `--provider` and `--nodes` make). `auto` picks docker when Docker and talosctl are usable and the
 * Talos image is present, else sim — and says so loudly.
 */
import type { Provider, ProviderName } from './types.js';
import { UsageError } from '../util/errors.js';
import { loadPlugin } from '../util/plugin.js';

export const PROVIDERS = ['sim', 'docker', 'qemu', 'auto'] as const;
export type ProviderChoice = (typeof PROVIDERS)[number];
export const NODE_KINDS = ['talos', 'emulated'] as const;
export type NodeKind = (typeof NODE_KINDS)[number];

/** what runs on the nodes of each provider: the first is its default */
export const PROVIDER_NODES: Record<ProviderName, readonly NodeKind[]> = {
  sim: ['emulated'],
  docker: ['talos', 'emulated'],
  qemu: ['talos'],
};

/**
 * `<provider>[:<nodes>]` → its parts; a pair no provider runs is a UsageError (exit 2) naming the
 * pairs that exist.
 */
export function parseProviderChoice(choice: string): { provider: string; nodes?: NodeKind } {
  const [provider, nodes, extra] = choice.split(':');
  if (extra !== undefined || provider === undefined) throw new UsageError(`provider '${choice}': expected <provider> or <provider>:<nodes>`);
  if (!(PROVIDERS as readonly string[]).includes(provider)) throw new UsageError(`unknown provider '${provider}'; valid: ${PROVIDERS.join(', ')}`);
  if (nodes === undefined) return { provider };
  if (!(NODE_KINDS as readonly string[]).includes(nodes)) throw new UsageError(`unknown node kind '${nodes}'; valid: ${NODE_KINDS.join(', ')}`);
  if (provider === 'auto') throw new UsageError(`--nodes ${nodes} needs an explicit --provider (auto picks the provider, and with it what runs on the nodes); pairs: ${providerPairs()}`);
  if (!PROVIDER_NODES[provider as ProviderName].includes(nodes as NodeKind)) {
    throw new UsageError(`--provider ${provider} runs ${PROVIDER_NODES[provider as ProviderName].join(' or ')} nodes, not ${nodes}; pairs: ${providerPairs()}`);
  }
  return { provider, nodes: nodes as NodeKind };
}

export function providerPairs(): string {
  return Object.entries(PROVIDER_NODES)
    .flatMap(([p, ks]) => ks.map((k) => `--provider ${p} --nodes ${k}`))
    .join(', ');
}

export async function loadProvider(name: ProviderName, nodes?: NodeKind): Promise<Provider> {
  const where: Record<ProviderName, [string, string]> = {
    sim: ['./kinds/emulated/provider.js', 'simProvider'],
    docker: nodes === 'emulated' ? ['./runtimes/docker/emulated.js', 'dockerEmulatedProvider'] : ['./runtimes/docker/talos.js', 'dockerProvider'],
    qemu: ['./runtimes/qemu/index.js', 'qemuProvider'],
  };
  if (name in where) return loadPlugin<Provider>('provider', nodes ? `${name} --nodes ${nodes}` : name, import.meta.url, ...where[name]);
  throw new UsageError(`unknown provider '${name}'; valid: ${PROVIDERS.join(', ')}`);
}

export async function resolveProvider(
  choice: string,
  lab: Parameters<Provider['check']>[0],
  say: (msg: string) => void = () => {},
): Promise<Provider> {
  const { provider, nodes } = parseProviderChoice(choice);
  if (provider !== 'auto') return loadProvider(provider as ProviderName, nodes);
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
