/**
 * The control-plane side every strategy runs (pure): a kube-apiserver stand-in on every control
 * plane, KubePrism and a kubelet-like API client on every node (Talos enables KubePrism by default
 * since v1.6 — Talos docs kubernetes-guides/configuration/kubeprism.md). Order per host matters
 * (the agent starts components in order and stops them in reverse): apiserver, kubeprism,
 * kubelet-client — so on a graceful shutdown the client stops first and the API server last.
 *
 * A strategy may add `{kind: 'kubeprism', config: {clusterEndpoint: 'ip:port'}}` for its hosts: the
 * strategy composer merges configs of one kind (src/strategies/compose.ts mergeComponents), which puts
 * the external endpoint into KubePrism's upstream list as Talos does.
 *
 * The kubelet-like client (one TLS connection every 100 ms, through KubePrism) runs on a few
 * OBSERVER nodes only — up to OBSERVERS workers spread over the racks (or the control planes when
 * there are no workers): on a 35-node lab, one per node costs hundreds of TLS handshakes a second
 * on 2 cores and disturbs what is measured. Every node still runs KubePrism.
 */
import type { ComponentSpec } from './agent/types.js';
import type { Topology } from '../model/types.js';

export const OBSERVERS = 3;

/** the nodes that run the kubelet-like client: workers round-robin over racks, else control planes */
export function observerNodes(t: Topology): string[] {
  const workers = t.nodes.filter((n) => n.role === 'worker');
  const pool = workers.length ? workers : t.nodes;
  const racks = [...new Set(pool.map((n) => n.rack))];
  const byRack = racks.map((r) => pool.filter((n) => n.rack === r));
  const out: string[] = [];
  for (let i = 0; out.length < Math.min(OBSERVERS, pool.length); i++) for (const r of byRack) if (r[i] && out.length < OBSERVERS) out.push(r[i]!.name);
  return out;
}

export function cpBaseComponents(t: Topology): Record<string, ComponentSpec[]> {
  const out: Record<string, ComponentSpec[]> = {};
  const observers = new Set(observerNodes(t));
  for (const n of t.nodes) {
    const specs: ComponentSpec[] = [];
    if (n.role === 'controlplane') specs.push({ kind: 'apiserver', config: { port: t.apiPort } });
    specs.push({ kind: 'kubeprism', config: { port: t.kubePrismPort } });
    if (observers.has(n.name)) specs.push({ kind: 'kubelet-client', config: { intervalMs: 100, gated: true } });
    out[n.name] = specs;
  }
  return out;
}
