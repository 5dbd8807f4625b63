/**
 * MetalLB, the family shared by the `metallb-l2` and `metallb-bgp` mechanisms: which Services it
 * serves, which nodes may announce, the pool manifest, and how a real cluster gets MetalLB itself
 * (installed with the strategy, removed with it). Sources (MetalLB v0.14–v0.16, metallb/metallb):
 * - Without `--lb-class` MetalLB serves only Services WITHOUT `spec.loadBalancerClass`
 *   (internal/k8s/controllers/service_controller.go filterByLoadBalancerClass; metallb.io
 *   "Installation → Setting the LoadBalancer Class"). The lab runs it without `--lb-class`.
 * - Nodes labelled `node.kubernetes.io/exclude-from-external-load-balancers` never announce
 *   (speaker ShouldAnnounce, both modes); Talos puts the label on control planes by default.
 */
import { stringify } from 'yaml';
import type { LbService, Node, Topology } from '../../model/types.js';
import type { RealContext, RealStep, RealSupport } from '../types.js';

export const METALLB_FAMILY = 'metallb';
export const METALLB_NAMESPACE = 'metallb-system';
export const EXCLUDE_LB_LABEL = 'node.kubernetes.io/exclude-from-external-load-balancers';

/** MetalLB as real clusters get it (the CRD schemas the contract tests check against are v0.16.1; FRR-K8s mode is the v0.16 default). */
export const METALLB_VERSION = 'v0.16.1';
export const METALLB_MANIFEST = `https://raw.githubusercontent.com/metallb/metallb/${METALLB_VERSION}/config/manifests/metallb-frr-k8s.yaml`;

export const METALLB_SOURCES = [
  'metallb/metallb speaker/layer2_controller.go ShouldAnnounce (v0.14/v0.15): usable speakers, exclude-from-external-load-balancers, ETP Local, sha256(node#ip) order',
  'metallb/metallb speaker/bgp_controller.go ShouldAnnounce (v0.14/v0.15): announce when Cluster and any ready endpoint, or Local and a local ready endpoint',
  'metallb.io Installation "Setting the LoadBalancer Class": --lb-class on controller and speaker; internal/k8s/controllers/service_controller.go filterByLoadBalancerClass (class-less Services only without --lb-class)',
];

/** MetalLB without `--lb-class` serves only class-less Services (filterByLoadBalancerClass). */
export function metallbServes(s: LbService, lbClass?: string): boolean {
  return lbClass === undefined ? s.loadBalancerClass === undefined : s.loadBalancerClass === lbClass;
}

export function servedServices(t: Topology): LbService[] {
  return t.services.filter((s) => metallbServes(s));
}

/** Talos labels control planes with the exclude label unless the lab removes it. */
export function excludedFromLb(n: Node, t: Topology): boolean {
  return n.role === 'controlplane' && !t.removeExcludeLbLabel;
}

/** `---`-joined YAML documents */
export function yamlDocs(docs: unknown[]): string {
  return docs.map((d) => stringify(d, { lineWidth: 0 })).join('---\n');
}

export const metallbMeta = (name: string) => ({ name, namespace: METALLB_NAMESPACE });

export function ipAddressPool(t: Topology): Record<string, unknown> {
  return {
    apiVersion: 'metallb.io/v1beta1',
    kind: 'IPAddressPool',
    metadata: metallbMeta(t.pool.name),
    // Services ask for their lab address with the `metallb.io/loadBalancerIPs` annotation
    spec: { addresses: [t.pool.cidr], autoAssign: true },
  };
}

/** nodeSelectors limiting an advertisement/peer to named nodes (kubernetes.io/hostname) */
export function hostSelector(nodes: string[]): Record<string, unknown>[] {
  return [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: nodes }] }];
}

const install = (): RealStep[] => [
  { what: `MetalLB ${METALLB_VERSION} (FRR-K8s mode)`, argv: ['kubectl', 'apply', '-f', METALLB_MANIFEST] },
  // the speakers need host networking and NET_RAW: Talos enforces the baseline Pod Security level
  { what: 'metallb-system may run privileged pods', argv: ['kubectl', 'label', '--overwrite', 'namespace', METALLB_NAMESPACE, 'pod-security.kubernetes.io/enforce=privileged'] },
  { what: 'MetalLB controller ready', argv: ['kubectl', '-n', METALLB_NAMESPACE, 'wait', '--for=condition=Available', 'deployment/controller', '--timeout=5m'] },
];

/** What both modes need on a real cluster (the rendered pool/advertisement/peers are applied after it). */
export const metallbReal: RealSupport = {
  install,
  uninstall: () => [{ what: 'remove MetalLB', argv: ['kubectl', 'delete', '--ignore-not-found', '-f', METALLB_MANIFEST] }],
  versions: { metallb: METALLB_VERSION },
  honoursExcludeLabel: true,
  addressAnnotation: 'metallb.io/loadBalancerIPs',
};

/** MetalLB ≥ 0.14 publishes the announcing node of an L2 Service as a ServiceL2Status. */
export async function metallbL2Holders(ctx: RealContext, s: LbService): Promise<string[]> {
  const r = await ctx.kubectl(['get', 'servicel2statuses.metallb.io', '-n', METALLB_NAMESPACE, '-o', 'json']);
  if (r.exitCode !== 0) return [];
  const j = JSON.parse(r.stdout || '{}') as { items?: { status?: { node?: string; serviceName?: string; serviceNamespace?: string } }[] };
  const nodes = (j.items ?? []).filter((i) => i.status?.serviceName === s.name && (i.status?.serviceNamespace ?? s.namespace) === s.namespace).map((i) => i.status!.node!);
  return ctx.topology.nodes.filter((n) => nodes.includes(n.name)).map((n) => n.name);
}
