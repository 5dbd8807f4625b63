/**
 * The emulated components an agent can host: the cluster's own (API server, KubePrism, kubelet
 * client, echo pods, kube-proxy, the BGP Service announcer), the client's traffic tools, and every
 * mechanism's agent components, which each mechanism declares in its folder (Mechanism.components)
 * and the registry hands over here. Each maps a kind to a module whose default export is a
 * ComponentFactory, loaded only when a host runs it.
 */
import { registerComponent } from './registry.js';
import { loadPlugin } from '../../util/plugin.js';
import { MECHANISMS } from '../../strategies/registry.js';
import type { ComponentFactory } from './types.js';

/** every component kind with its module, as a URL resolved against this file (what loadPlugin imports) */
export function componentModules(): { kind: string; url: string }[] {
  const out: { kind: string; url: string }[] = [];
  const at = (kind: string, path: string) => out.push({ kind, url: new URL(path, import.meta.url).href });
  at('apiserver', '../apiserver.js');
  at('kubeprism', '../kubeprism.js');
  at('kubelet-client', '../kubelet-client.js');
  at('echo', '../echo.js');
  at('kube-proxy', '../kube-proxy.js');
  at('bgp-services', '../bgp-announcer.js');
  at('traffic', '../../traffic/agent.js');
  const seen = new Set<string>();
  for (const m of MECHANISMS.values()) {
    for (const [kind, path] of Object.entries(m.components ?? {})) {
      // kube-vip's ARP and BGP mechanisms share one component: register it once
      if (seen.has(kind)) continue;
      seen.add(kind);
      at(kind, path);
    }
  }
  return out;
}

for (const { kind, url } of componentModules()) registerComponent(kind, () => loadPlugin<ComponentFactory>('agent component', kind, url, url));
