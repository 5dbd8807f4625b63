/**
 * The control-plane side every strategy runs (pure): a kube-apiserver stand-in on every control
 * plane, KubePrism and a kubelet-like API client on every node (Talos enables KubePrism by default
 * since v1.6 — Talos docs kubernetes-guides/configuration/kubeprism.md). Order per host matters
 * (the agent starts components in order and stops them in reverse): apiserver, kubeprism,
 * kubelet-client — so on a graceful shutdown the client stops first and the API server last.
 *
 * A strategy may add `{kind: 'kubeprism', config: {clusterEndpoint: 'ip:port'}}` for its hosts: the
 * strategy composer merges configs of one kind (src/strategies/index.ts mergeComponents), which puts
 * the external endpoint into KubePrism's upstream list as Talos does.
 */
import type { ComponentSpec } from '../agent/types.js';
import type { Topology } from '../model/types.js';

export function cpBaseComponents(t: Topology): Record<string, ComponentSpec[]> {
  const out: Record<string, ComponentSpec[]> = {};
  for (const n of t.nodes) {
    const specs: ComponentSpec[] = [];
    if (n.role === 'controlplane') specs.push({ kind: 'apiserver', config: { port: t.apiPort } });
    specs.push({ kind: 'kubeprism', config: { port: t.kubePrismPort } });
    specs.push({ kind: 'kubelet-client', config: { intervalMs: 100 } });
    out[n.name] = specs;
  }
  return out;
}
