/**
 * The service side of the cluster that every strategy runs (pure: topology in, component specs
 * out): one `echo` pod on every node that runs workloads (workers; control planes too when
 * `allowSchedulingOnControlPlanes`), and `kube-proxy` on every node (a DaemonSet in a real
 * cluster: every node routes Service traffic, whether or not it runs a pod).
 *
 * Services sharing a targetPort/streamPort share one echo server (the two default Services, `web`
 * with externalTrafficPolicy Cluster and `web-local` with Local, select the same pods).
 */
import type { ComponentSpec } from './agent/types.js';
import type { Topology } from '../model/types.js';
import { kubeProxyService, type KubeProxyConfig } from './kube-proxy.js';
import type { EchoConfig } from './echo.js';
import { nodeLifecycleTimers } from './endpoints.js';

/** One echo server per distinct (targetPort, streamPort) of the topology's Services. */
export function echoConfigs(t: Topology): EchoConfig[] {
  const seen = new Map<string, EchoConfig>();
  for (const s of t.services) {
    const key = `${s.targetPort}/${s.streamPort}`;
    if (!seen.has(key)) seen.set(key, { port: s.targetPort, streamPort: s.streamPort });
  }
  return [...seen.values()];
}

export function kubeProxyConfig(t: Topology): KubeProxyConfig {
  return {
    services: t.services.map(kubeProxyService),
    endpoints: t.nodes.filter((n) => n.runsWorkloads).map((n) => ({ node: n.name, ip: n.ip })),
    peers: t.nodes.map((n) => n.ip),
    heartbeatMs: 1000,
    // kubelet Lease renewals, node lifecycle controller passes and grace, kube-proxy minSyncPeriod
    // (topology timers, Kubernetes defaults: src/model/timers.ts; the chain: ./endpoints.ts)
    lifecycle: nodeLifecycleTimers(t.timers.kubernetes),
  };
}

export function svcBaseComponents(t: Topology): Record<string, ComponentSpec[]> {
  const out: Record<string, ComponentSpec[]> = {};
  const echoes = echoConfigs(t);
  const kp = kubeProxyConfig(t);
  for (const n of t.nodes) {
    const specs: ComponentSpec[] = [];
    if (n.runsWorkloads) {
      echoes.forEach((cfg, i) => specs.push({ kind: 'echo', ...(i > 0 ? { name: `echo-${cfg.port}` } : {}), config: { ...cfg } }));
    }
    specs.push({ kind: 'kube-proxy', config: structuredClone(kp) as unknown as Record<string, unknown> });
    out[n.name] = specs;
  }
  return out;
}
