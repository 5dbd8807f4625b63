/**
 * Cilium, the family of the Cilium mechanisms: Cilium as the cluster's CNI on a real Talos
 * cluster (installed by helm the way Talos documents it — "Deploying Cilium CNI": Cilium 1.18,
 * SYS_MODULE dropped from the agent's capabilities, cgroup v2 mounted by Talos, not by Cilium),
 * its LB IPAM pool and which Services it takes. Each Cilium mechanism adds the helm values of the
 * feature it uses (BGP control plane, L2 announcements).
 */
import { stringify } from 'yaml';
import type { LbService, Topology } from '../../model/types.js';
import type { RealStep, RealSupport } from '../types.js';

export const CILIUM_FAMILY = 'cilium';
export const CILIUM_VERSION = '1.18.0';

/** `---`-joined YAML documents */
export function yamlDocs(docs: unknown[]): string {
  return docs.map((d) => stringify(d, { lineWidth: 0 })).join('---\n');
}

/** LB IPAM: the lab's pool as a CiliumLoadBalancerIPPool (docs.cilium.io "LoadBalancer IP Address Management"). */
export function ciliumPool(t: Topology): Record<string, unknown> {
  return { apiVersion: 'cilium.io/v2alpha1', kind: 'CiliumLoadBalancerIPPool', metadata: { name: t.pool.name }, spec: { blocks: [{ cidr: t.pool.cidr }] } };
}

/** Cilium takes Services of its own class or none (docs.cilium.io, loadBalancerClass). */
export function ciliumServes(s: LbService, lbClass: string): boolean {
  return s.loadBalancerClass === undefined || s.loadBalancerClass === lbClass;
}

/** Nodes running the Cilium agent feature: the nodes that run workloads (workers, or all when control planes schedule pods). */
export function ciliumNodes(t: Topology): string[] {
  return t.nodes.filter((n) => n.runsWorkloads).map((n) => n.name);
}

/** nodeSelector for Cilium resources: workers only unless control planes run workloads, optionally one rack. */
export function ciliumNodeSelector(t: Topology, rack: string | null = null): Record<string, unknown> {
  const expr: Record<string, unknown>[] = [];
  if (!t.allowSchedulingOnControlPlanes) expr.push({ key: 'node-role.kubernetes.io/control-plane', operator: 'DoesNotExist' });
  if (rack) {
    const names = t.nodes.filter((n) => n.rack === rack).map((n) => n.name);
    expr.push({ key: 'kubernetes.io/hostname', operator: 'In', values: names });
  }
  return expr.length ? { matchExpressions: expr } : {};
}

/** Cilium as the CNI, with the values of the feature a mechanism uses (`--set k=v` pairs). */
export function ciliumReal(featureValues: string[]): RealSupport {
  const install = (): RealStep[] => [
    {
      what: `Cilium ${CILIUM_VERSION} as the CNI (${featureValues.join(', ')})`,
      argv: [
        'helm', 'upgrade', '--install', 'cilium', 'cilium', '--repo', 'https://helm.cilium.io/', '--version', CILIUM_VERSION, '--namespace', 'kube-system',
        '--set', 'ipam.mode=kubernetes',
        '--set', 'securityContext.capabilities.ciliumAgent={CHOWN,KILL,NET_ADMIN,NET_RAW,IPC_LOCK,SYS_ADMIN,SYS_RESOURCE,DAC_OVERRIDE,FOWNER,SETGID,SETUID}',
        '--set', 'securityContext.capabilities.cleanCiliumState={NET_ADMIN,SYS_ADMIN,SYS_RESOURCE}',
        '--set', 'cgroup.autoMount.enabled=false', '--set', 'cgroup.hostRoot=/sys/fs/cgroup',
        ...featureValues.flatMap((v) => ['--set', v]),
        '--wait',
      ],
    },
  ];
  // the CNI stays: a cluster cannot drop its CNI in place (the provider rebuilds when the next strategy needs another)
  return { cni: 'cilium', install, versions: { cilium: CILIUM_VERSION }, addressAnnotation: 'lbipam.cilium.io/ips' };
}
