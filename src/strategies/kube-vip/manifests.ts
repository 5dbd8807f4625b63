/**
 * kube-vip's real-cluster manifests (both modes, both roles): DaemonSets with RBAC — for the API
 * VIP on the control planes, for Services on the workload nodes — and the env the real kube-vip
 * reads (pkg/kubevip/config_envvar.go). Pure: topology in, files out. The emulated process is
 * ./agent.ts, rendered by ./render.ts from the same rules.
 *
 * Why the API VIP is a DaemonSet on Talos and not a static pod: kube-vip needs API access. It uses
 * an explicit `k8s_config_file`, else /etc/kubernetes/admin.conf, else ~/.kube/config, else the
 * in-cluster config (kube-vip pkg/manager/manager.go@v1.2.3 → pkg/k8s/client.go NewRestConfig →
 * client-go rest.InClusterConfig). A static pod has no service-account token, and Talos writes no
 * admin kubeconfig on the host (only kubeconfig-kubelet and bootstrap-kubeconfig under
 * /etc/kubernetes: siderolabs/talos pkg/machinery/constants/constants.go@v1.12.11), so a static
 * pod's kubeconfig would have to come through `machine.files` — which Talos cannot apply to a
 * running node without a reboot (runtime CanApplyImmediate, v1.11.6 … v1.13.9). A DaemonSet gets
 * its service-account token, and its in-cluster config is pointed at KubePrism — the API load
 * balancer Talos runs on every node at localhost:7445 (on by default since Talos 1.6;
 * constants.go DefaultKubePrismPort) — through KUBERNETES_SERVICE_HOST/PORT, the variables
 * rest.InClusterConfig reads; a container's own env wins over the kubelet's service variables. The
 * Talos Cilium guide points its host-network agent at the same endpoint (k8sServicePort=7445,
 * website/content/v1.11/kubernetes-guides/network/deploying-cilium.md). kube-vip documents the
 * DaemonSet mode for clusters that come up without the VIP (kube-vip.io/docs/installation/
 * daemonset), which is how the lab brings clusters up (talosctl and kubectl use node IPs).
 */
import { stringify } from 'yaml';
import type { Node, StrategyRef, Topology } from '../../model/types.js';
import type { RealSupport, RenderedFile } from '../types.js';
import { controlPlanes } from '../../emulation/net.js';
import { nodeRouter } from '../../render/frr.js';
import { CP_LEASE, LEASE_NAMESPACE, SVC_LEASE } from './agent.js';
import { KUBE_VIP_CLASS, cpKubeVipServices, serviceNodes, svcKubeVipServices } from './render.js';
import { bfdFor } from '../bands.js';
import { releaseOf } from './settings.js';
/** KubePrism on every Talos node: the in-cluster config of kube-vip's pods goes there (rest.InClusterConfig reads these two) */
function kubePrismEnv(t: Topology): EnvVar[] {
  return [env('KUBERNETES_SERVICE_HOST', '127.0.0.1'), env('KUBERNETES_SERVICE_PORT', t.kubePrismPort)];
}

type Mode = 'arp' | 'bgp';

type EnvVar = { name: string; value?: string; valueFrom?: unknown };
const env = (name: string, value: string | number | boolean): EnvVar => ({ name, value: String(value) });

function commonEnv(t: Topology): EnvVar[] {
  const k = t.timers.kubeVip;
  return [
    { name: 'vip_nodename', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
    env('vip_leaseduration', k.leaseDurationS),
    env('vip_renewdeadline', k.renewDeadlineS),
    env('vip_retryperiod', k.retryPeriodS),
    env('vip_arpRate', k.arpRateMs),
  ];
}

/**
 * bgp_peers entry `<address>:<AS>:<password>:<multihop>:<port>:<mp-bgp>:<bfd>` (pkg/kubevip/
 * config_bgp.go@v1.2.3; an empty port is 179); the BFD field `enable;rx;tx;multiplier` exists from
 * v1.2.2 — an older release asked for BFD is refused when the lab loads (the roles' strategyIssue).
 */
export function bgpPeer(t: Topology, ref: StrategyRef, n: Node): string {
  const r = nodeRouter(n, t);
  const peer = r.interfaces.find((i) => i.segment === n.rack)!.ip;
  const bfd = bfdFor(t, ref);
  return bfd ? `${peer}:${r.asn}::false:::true;${bfd.receiveMs};${bfd.transmitMs};${bfd.detectMultiplier}` : `${peer}:${r.asn}::false`;
}

/** kube-vip's own BGP timers (`timers.kubeVipBgp`, not MetalLB's `timers.bgp`) */
function bgpEnv(t: Topology, ref: StrategyRef, n: Node): EnvVar[] {
  return [
    env('bgp_enable', true),
    env('bgp_routerinterface', n.interfaces[0]!.ifname),
    env('bgp_as', n.asn),
    env('bgp_peers', bgpPeer(t, ref, n)),
    env('bgp_hold_time', t.timers.kubeVipBgp.holdS),
    env('bgp_keepalive_interval', t.timers.kubeVipBgp.keepaliveS),
  ];
}

export function cpEnv(t: Topology, ref: StrategyRef, mode: Mode, n: Node, svcFamily: string): EnvVar[] {
  const svcs = cpKubeVipServices(t, ref, svcFamily);
  const lb = ref.options.kubeVipLbEnable === true;
  const e: EnvVar[] = [
    env('address', t.vip),
    env('port', t.apiPort),
    env('vip_interface', mode === 'arp' ? n.interfaces[0]!.ifname : 'lo'),
    env('vip_subnet', 32),
    env('cp_enable', true),
    env('cp_namespace', LEASE_NAMESPACE),
    env('vip_arp', mode === 'arp'),
    env('vip_leaderelection', mode === 'arp'),
    env('vip_leasename', CP_LEASE),
    env('svc_enable', svcs !== null),
    ...commonEnv(t),
    ...kubePrismEnv(t),
  ];
  if (svcs) e.push(env('svc_leasename', SVC_LEASE), env('lb_class_only', svcs.lbClassOnly));
  if (lb) e.push(env('lb_enable', true), env('lb_port', t.apiPort), env('lb_fwdmethod', 'masquerade'), env('backend_health_check_interval', 5));
  if (mode === 'bgp') e.push(...bgpEnv(t, ref, n));
  return e;
}

const securityContext = { capabilities: { add: ['NET_ADMIN', 'NET_RAW'] } };

const yamlDocs = (docs: unknown[], header: string[]) =>
  header.map((l) => `# ${l}`.trimEnd()).join('\n') + '\n' + docs.map((d) => stringify(d, { lineWidth: 0 })).join('---\n');

/** One DaemonSet of kube-vip for the API on `nodes` (hostNetwork, the control planes' taints tolerated). */
export function cpDaemonSet(t: Topology, ref: StrategyRef, mode: Mode, nodes: Node[], svcFamily: string, name: string): Record<string, unknown> {
  const labels = { 'app.kubernetes.io/name': name };
  return {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: { name, namespace: 'kube-system', labels },
    spec: {
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          serviceAccountName: 'kube-vip',
          hostNetwork: true,
          priorityClassName: 'system-node-critical',
          nodeSelector: { 'node-role.kubernetes.io/control-plane': '' },
          // BGP: router id / AS / peer differ per node, one DaemonSet each
          ...(mode === 'bgp' ? { affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: nodes.map((x) => x.name) }] }] } } } } : {}),
          tolerations: [{ effect: 'NoSchedule', operator: 'Exists' }, { effect: 'NoExecute', operator: 'Exists' }],
          containers: [{ name: 'kube-vip', image: releaseOf(t).image, imagePullPolicy: 'IfNotPresent', args: ['manager'], env: cpEnv(t, ref, mode, nodes[0]!, svcFamily), securityContext }],
        },
      },
    },
  };
}

/** The API VIP: kube-vip as DaemonSet(s) on the control planes, with its RBAC, in-cluster config through KubePrism. */
export function cpFiles(t: Topology, ref: StrategyRef, mode: Mode, svcFamily: string): RenderedFile[] {
  const cps = controlPlanes(t);
  const groups: Node[][] = mode === 'arp' ? [cps] : cps.map((n) => [n]);
  const ds = groups.map((g) => cpDaemonSet(t, ref, mode, g, svcFamily, mode === 'arp' ? 'kube-vip-cp' : `kube-vip-cp-${g[0]!.name}`));
  return [
    {
      path: 'kube-vip/kube-vip-cp.daemonset.yaml',
      kind: 'k8s-manifest',
      delivery: 'kubectl',
      hosts: cps.map((n) => n.name),
      content: yamlDocs(
        [...rbac(), ...ds],
        [
          `kube-vip ${releaseOf(t).version} for the API VIP ${t.vip} (${mode.toUpperCase()} mode${ref.options.kubeVipLbEnable ? ', lb_enable: API connections spread over every control plane (IPVS: the nodes’ kernel needs ip_vs)' : ''}) on ${cps.map((n) => n.name).join(', ')}.`,
          `A DaemonSet on the control planes, its in-cluster config pointed at KubePrism (127.0.0.1:${t.kubePrismPort}): no kubeconfig file on the host, nothing Talos must reboot for.`,
        ],
      ),
    },
  ];
}

function rbac(): Record<string, unknown>[] {
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'kube-vip', namespace: 'kube-system' } },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'system:kube-vip-role' },
      rules: [
        { apiGroups: [''], resources: ['services/status'], verbs: ['update'] },
        { apiGroups: [''], resources: ['services', 'endpoints'], verbs: ['list', 'get', 'watch', 'update'] },
        { apiGroups: [''], resources: ['nodes'], verbs: ['list', 'get', 'watch', 'update', 'patch'] },
        { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['list', 'get', 'watch', 'update', 'create'] },
        { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'get', 'watch', 'update'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'system:kube-vip-binding' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:kube-vip-role' },
      subjects: [{ kind: 'ServiceAccount', name: 'kube-vip', namespace: 'kube-system' }],
    },
  ];
}

/** DaemonSet(s) for Services on the workload nodes (one per BGP peer group) + RBAC. */
export function svcFiles(t: Topology, ref: StrategyRef, mode: Mode): RenderedFile[] {
  const nodes = serviceNodes(t);
  const groups = new Map<string, Node[]>();
  for (const n of nodes) {
    const key = mode === 'arp' ? 'all' : `${n.asn}/${nodeRouter(n, t).name}`;
    groups.set(key, [...(groups.get(key) ?? []), n]);
  }
  const perService = ref.options.kubeVipServicesElection === true;
  const docs: unknown[] = [...rbac()];
  let i = 0;
  for (const g of groups.values()) {
    const n = g[0]!;
    const name = groups.size === 1 ? 'kube-vip-services' : `kube-vip-services-${++i}`;
    const e: EnvVar[] = [
      env('vip_interface', n.interfaces[0]!.ifname),
      env('vip_subnet', 32),
      env('cp_enable', false),
      env('svc_enable', true),
      env('vip_arp', mode === 'arp'),
      // ARP: one leader for all Services (plndr-svcs-lock) or one lease per Service (svc_election);
      // BGP: no election, every node announces
      env('vip_leaderelection', mode === 'arp' && !perService),
      env('svc_election', mode === 'arp' && perService),
      env('svc_leasename', SVC_LEASE),
      ...commonEnv(t),
      ...(mode === 'bgp' ? bgpEnv(t, ref, n) : []),
    ];
    docs.push({
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: { name, namespace: 'kube-system', labels: { 'app.kubernetes.io/name': name } },
      spec: {
        selector: { matchLabels: { 'app.kubernetes.io/name': name } },
        template: {
          metadata: { labels: { 'app.kubernetes.io/name': name } },
          spec: {
            serviceAccountName: 'kube-vip',
            hostNetwork: true,
            affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: g.map((x) => x.name) }] }] } } },
            tolerations: [{ effect: 'NoSchedule', operator: 'Exists' }],
            containers: [{ name: 'kube-vip', image: releaseOf(t).image, imagePullPolicy: 'IfNotPresent', args: ['manager'], env: e, securityContext }],
          },
        },
      },
    });
  }
  const claimed = svcKubeVipServices(t);
  return [
    {
      path: 'kube-vip/kube-vip-services.daemonset.yaml',
      kind: 'k8s-manifest',
      hosts: nodes.map((n) => n.name),
      content: yamlDocs(docs, [
        `kube-vip ${releaseOf(t).version} for LoadBalancer Services (${mode.toUpperCase()} mode${mode === 'arp' ? (perService ? ', one election per Service' : ', one leader for every Service') : ', every node announces'}) on the workload nodes.`,
        `Takes class-less Services and those of class ${KUBE_VIP_CLASS}: ${claimed.map((x) => `${x.namespace}/${x.name} ${x.ip}`).join(', ') || 'none in this topology'}.`,
        'kube-vip only announces addresses: each Service needs its IP (annotation kube-vip.io/loadbalancerIPs, or kube-vip-cloud-provider).',
      ]),
    },
  ];
}


/**
 * What a real cluster needs for kube-vip (either role): the Service annotation kube-vip reads a
 * requested address from (`kube-vip.io/loadbalancerIPs`, pkg/kubevip/annotations.go@v1.2.3
 * LoadbalancerIPAnnotation; spec.loadBalancerIP is its deprecated fallback, pkg/utils/ip.go), and
 * the kernel modules `lb_enable` needs: IPVS (pkg/loadbalancer/ipvs.go@v1.2.3 programs it over
 * netlink; round robin) — the node's kernel, which under the docker runtime is the host's.
 */
export const kubeVipReal: RealSupport = {
  addressAnnotation: 'kube-vip.io/loadbalancerIPs',
  hostModules: (ref) => (ref.options.kubeVipLbEnable === true ? ['ip_vs', 'ip_vs_rr'] : []),
};
