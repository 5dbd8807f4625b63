/**
 * kube-vip's real-cluster manifests (both modes, both roles): the control-plane pod for the API
 * VIP with its Talos delivery, the DaemonSet for Services with RBAC, and the env the real
 * kube-vip reads (pkg/kubevip/config_envvar.go). Pure: topology in, files out. The emulated
 * process is ./agent.ts, rendered by ./render.ts from the same rules.
 */
import { stringify } from 'yaml';
import type { Node, StrategyRef, Topology } from '../../model/types.js';
import type { RenderedFile } from '../types.js';
import { controlPlanes } from '../../emulation/net.js';
import { nodeRouter } from '../../render/frr.js';
import { CP_LEASE, LEASE_NAMESPACE, SVC_LEASE } from './agent.js';
import { KUBE_VIP_CLASS, cpKubeVipServices, serviceNodes, svcKubeVipServices } from './render.js';

export const KUBE_VIP_VERSION = 'v0.8.9';
export const KUBE_VIP_IMAGE = `ghcr.io/kube-vip/kube-vip:${KUBE_VIP_VERSION}`;
/** where the static pod finds an admin kubeconfig that points at https://localhost:<apiPort> */
export const KUBE_VIP_KUBECONFIG = '/var/local/kube-vip/kubeconfig';

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

function bgpEnv(t: Topology, n: Node): EnvVar[] {
  const r = nodeRouter(n, t);
  const peer = r.interfaces.find((i) => i.segment === n.rack)!.ip;
  return [
    env('bgp_enable', true),
    env('bgp_routerinterface', n.interfaces[0]!.ifname),
    env('bgp_as', n.asn),
    env('bgp_peers', `${peer}:${r.asn}::false`),
    env('bgp_hold_time', t.timers.bgp.holdS),
    env('bgp_keepalive_interval', t.timers.bgp.keepaliveS),
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
    env('k8s_config_file', KUBE_VIP_KUBECONFIG),
  ];
  if (svcs) e.push(env('svc_leasename', SVC_LEASE), env('lb_class_only', svcs.lbClassOnly));
  if (lb) e.push(env('lb_enable', true), env('lb_port', t.apiPort), env('lb_fwdmethod', 'masquerade'), env('backend_health_check_interval', 5));
  if (mode === 'bgp') e.push(...bgpEnv(t, n));
  return e;
}

const securityContext = { capabilities: { add: ['NET_ADMIN', 'NET_RAW'] } };

export function staticPod(t: Topology, ref: StrategyRef, mode: Mode, n: Node, svcFamily: string): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'kube-vip', namespace: 'kube-system', labels: { 'app.kubernetes.io/name': 'kube-vip' } },
    spec: {
      hostNetwork: true,
      containers: [
        {
          name: 'kube-vip',
          image: KUBE_VIP_IMAGE,
          imagePullPolicy: 'IfNotPresent',
          args: ['manager'],
          env: cpEnv(t, ref, mode, n, svcFamily),
          securityContext,
          volumeMounts: [{ name: 'kubeconfig', mountPath: KUBE_VIP_KUBECONFIG, readOnly: true }],
        },
      ],
      volumes: [{ name: 'kubeconfig', hostPath: { path: KUBE_VIP_KUBECONFIG, type: 'File' } }],
    },
  };
}

const yamlDocs = (docs: unknown[], header: string[]) =>
  header.map((l) => `# ${l}`.trimEnd()).join('\n') + '\n' + docs.map((d) => stringify(d, { lineWidth: 0 })).join('---\n');

/** Static pod manifest(s) + the Talos patch that installs them (machine.pods). */
export function cpFiles(t: Topology, ref: StrategyRef, mode: Mode, svcFamily: string): RenderedFile[] {
  const cps = controlPlanes(t);
  // ARP: one manifest fits every control plane; BGP: router id / AS / peer differ per node
  const groups: Node[][] = mode === 'arp' ? [cps] : cps.map((n) => [n]);
  const files: RenderedFile[] = [];
  for (const g of groups) {
    const n = g[0]!;
    const suffix = mode === 'arp' ? '' : `-${n.name}`;
    const pod = staticPod(t, ref, mode, n, svcFamily);
    const hosts = g.map((x) => x.name);
    const why = [
      `kube-vip ${KUBE_VIP_VERSION} for the API VIP ${t.vip} (${mode.toUpperCase()} mode${ref.options.kubeVipLbEnable ? ', lb_enable: API connections spread over every control plane' : ''}) on ${hosts.join(', ')}.`,
      'A static pod, so the VIP exists before the API server is reachable. It needs an admin kubeconfig that points at',
      `https://localhost:${t.apiPort} at ${KUBE_VIP_KUBECONFIG} (e.g. a machine.files entry with the output of \`talosctl kubeconfig\`, server rewritten).`,
    ];
    files.push({ path: `kube-vip/kube-vip.static-pod${suffix}.yaml`, kind: 'k8s-manifest', hosts, content: yamlDocs([pod], why) });
    files.push({
      path: `talos/kube-vip-static-pod${suffix}.patch.yaml`,
      kind: 'talos-patch',
      hosts,
      content: yamlDocs([{ machine: { pods: [pod] } }], ['Talos machine.pods: the kubelet runs kube-vip as a static pod (Talos docs "Static Pods").', ...why.slice(1)]),
    });
  }
  return files;
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
      ...(mode === 'bgp' ? bgpEnv(t, n) : []),
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
            containers: [{ name: 'kube-vip', image: KUBE_VIP_IMAGE, imagePullPolicy: 'IfNotPresent', args: ['manager'], env: e, securityContext }],
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
        `kube-vip ${KUBE_VIP_VERSION} for LoadBalancer Services (${mode.toUpperCase()} mode${mode === 'arp' ? (perService ? ', one election per Service' : ', one leader for every Service') : ', every node announces'}) on the workload nodes.`,
        `Takes class-less Services and those of class ${KUBE_VIP_CLASS}: ${claimed.map((x) => `${x.namespace}/${x.name} ${x.ip}`).join(', ') || 'none in this topology'}.`,
        'kube-vip only announces addresses: each Service needs its IP (annotation kube-vip.io/loadbalancerIPs, or kube-vip-cloud-provider).',
      ]),
    },
  ];
}

