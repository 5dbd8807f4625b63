/**
 * kube-vip, the family shared by the `kube-vip-arp` and `kube-vip-bgp` mechanisms: kube-vip as a
 * static pod on every control plane for the API, ARP mode, leader election on the Lease `kube-system/plndr-cp-lock` (client-go semantics, timers
 * `timers.kubeVip`): the leader adds the VIP, sends a gratuitous ARP and repeats it every
 * vip_arpRate. With `lb_enable` (StrategyRef.options.kubeVipLbEnable) the holder spreads API
 * connections round robin over every healthy control plane (active-active): IPVS upstream,
 * nftables `numgen inc` DNAT + masquerade in the sim (the lab kernel has no IPVS) — see
 * ./agent.ts for the emulated process.
 *
 * This module is the shared kube-vip RENDERER of both mechanisms (their folders hold the roles):
 * the component config (api / services keys, merged into ONE
 * kube-vip process per node by src/strategies/compose.ts), the real-cluster manifests (static pod
 * for the API with its Talos `machine.pods` patch; DaemonSet + RBAC for Services), the BGP
 * speakers, the Service class rule, and the lease-based outage bands.
 *
 * Which Services kube-vip takes (pkg/manager/watch_services.go lbClassFilterLegacy, the default
 * `lb_class_legacy_handling`; kube-vip docs "lb_class_only"; kube-vip PR #855): a Service with
 * spec.loadBalancerClass is taken only when the class is `kube-vip.io/kube-vip-class`; a
 * class-less Service is taken unless `lb_class_only=true`. So:
 *  - kube-vip is the service mechanism → class-less and kube-vip-class Services;
 *  - kube-vip (API) beside another controller with `useLoadBalancerClass: true` → lb_class_only:
 *    only kube-vip-class Services (MetalLB keeps the class-less ones: pitfall 2 avoided);
 *  - … with `useLoadBalancerClass: false` → svc_enable without lb_class_only: kube-vip also claims
 *    the class-less Services MetalLB serves (pitfall 2, the class-conflict drill);
 *  - … with the option unset → the API-only static pod (`kube-vip manifest pod --controlplane`,
 *    svc_enable off): no Service handling.
 *
 * Expected client-seen outage (lease holder as victim), with D = leaseDuration, R = retryPeriod,
 * J = client-go JitterFactor 1.2 (followers retry every R·(1 + rand·J)):
 * - graceful shutdown: ReleaseOnCancel writes an empty holder; the next follower retry takes it:
 *   ≤ (1+J)·R + margin.
 * - crash / freeze / partition: the leader's last renew was ≤ R before the fault; a follower
 *   observed it up to one retry later and takes the lease at its first retry once D has passed
 *   since that observation: [D − R, D + 2·(1+J)·R + margin] (+ the etcd re-election time beyond
 *   D − R if the victim was also the etcd leader). lb_enable adds nothing for this victim: the
 *   new holder checks each backend (GET /version, 10 s timeout) before adding it, and until one
 *   is added its own API server answers.
 */
import { stringify } from 'yaml';
import type { DrillKind, LbService, Node, StrategyRef, Topology } from '../../model/types.js';
import type { ComponentSpec } from '../../emulation/agent/types.js';
import type { Band, MechanismContext, RenderedFile, SimPlan, SpeakerSpec } from '../types.js';
import { controlPlanes } from '../../emulation/net.js';
import { nodeRouter, renderSpeakerFrr } from '../../render/frr.js';
import {
  CP_LEASE,
  JITTER_FACTOR,
  LEASE_NAMESPACE,
  SVC_LEASE,
  type KubeVipApiConfig,
  type KubeVipConfig,
  type KubeVipServiceItem,
  type KubeVipServicesConfig,
} from './agent.js';
import { bfdFor, l2ElectionBand, VIP_MARGIN_MS } from '../bands.js';

/** the family name of both kube-vip mechanisms: one process per node serves both roles */
export const KUBE_VIP_FAMILY = 'kube-vip';

export const KUBE_VIP_VERSION = 'v0.8.9';
export const KUBE_VIP_IMAGE = `ghcr.io/kube-vip/kube-vip:${KUBE_VIP_VERSION}`;
/** kube-vip's default LoadBalancerClassName (pkg/kubevip/config_environment.go, lb_class_name) */
export const KUBE_VIP_CLASS = 'kube-vip.io/kube-vip-class';
/** where the static pod finds an admin kubeconfig that points at https://localhost:<apiPort> */
export const KUBE_VIP_KUBECONFIG = '/var/local/kube-vip/kubeconfig';

type Mode = 'arp' | 'bgp';
const s = (ms: number) => `${Math.round(ms) / 1000} s`;

// ---------------------------------------------------------------------------------------------
// which Services, where

/** lbClassFilterLegacy: does a kube-vip instance take this Service? */
export function claimsService(svc: LbService, lbClassOnly: boolean): boolean {
  if (svc.loadBalancerClass !== undefined) return svc.loadBalancerClass === KUBE_VIP_CLASS;
  return !lbClassOnly;
}

/** Services the control-plane kube-vip takes beside another Service controller; null = svc_enable off. */
export function cpKubeVipServices(t: Topology, ref: StrategyRef, svcFamily: string): { lbClassOnly: boolean; services: LbService[] } | null {
  if (svcFamily === KUBE_VIP_FAMILY) return null; // kube-vip is the service mechanism: that role configures them
  const o = ref.options.useLoadBalancerClass;
  if (o === undefined) return null;
  return { lbClassOnly: o, services: t.services.filter((x) => claimsService(x, o)) };
}

/** Services kube-vip takes when it IS the service mechanism. */
export function svcKubeVipServices(t: Topology): LbService[] {
  return t.services.filter((x) => claimsService(x, false));
}

/** Nodes running kube-vip for Services: a DaemonSet on the nodes that run workloads. */
export function serviceNodes(t: Topology): Node[] {
  return t.nodes.filter((n) => n.runsWorkloads);
}

export function serviceItems(services: LbService[], n: Node): KubeVipServiceItem[] {
  // the echo pods run on every workload node (src/emulation/base-svc.ts), so a node has a local
  // endpoint exactly when it runs workloads
  return services.map((x) => ({ name: x.name, namespace: x.namespace, ip: x.ip, externalTrafficPolicy: x.externalTrafficPolicy, localEndpoint: n.runsWorkloads }));
}

export function servicesConfig(mode: Mode, ref: StrategyRef, services: LbService[], n: Node): KubeVipServicesConfig {
  return { mode, election: ref.options.kubeVipServicesElection ? 'per-service' : 'global', leaseName: SVC_LEASE, items: serviceItems(services, n) };
}

export function apiConfig(t: Topology, ref: StrategyRef, mode: Mode, n: Node): KubeVipApiConfig {
  const lb = ref.options.kubeVipLbEnable === true;
  return {
    mode,
    vip: t.vip,
    port: t.apiPort,
    ...(mode === 'arp' ? { link: n.interfaces[0]!.ifname } : {}),
    leaseName: CP_LEASE,
    leaseNamespace: LEASE_NAMESPACE,
    lbEnable: lb,
    ...(lb ? { backends: controlPlanes(t).map((c) => ({ name: c.name, ip: c.ip })) } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// BGP speakers (kube-vip's own GoBGP upstream; the node's FRR in the sim)

export function kubeVipSpeakers(t: Topology, ref: StrategyRef, nodes: Node[]): Record<string, SpeakerSpec> {
  const out: Record<string, SpeakerSpec> = {};
  for (const n of nodes) {
    out[n.name] = {
      owner: KUBE_VIP_FAMILY,
      asn: n.asn,
      // prefixes are announced at run time by the agent, so a graceful stop withdraws them
      frrConf: renderSpeakerFrr(n, t, { timers: t.timers.bgp, bfd: bfdFor(t, ref), owner: KUBE_VIP_FAMILY, prefixes: [] }),
      staticPrefixes: [],
    };
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// real-cluster manifests

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

// ---------------------------------------------------------------------------------------------
// sim plan

/** The control-plane side: kube-vip `api` (+ `services` beside another controller) on every control plane. */
export function renderKubeVipCp(ctx: MechanismContext, mode: Mode): { files: RenderedFile[]; sim: Partial<SimPlan> } {
  const t = ctx.topology;
  const svcs = cpKubeVipServices(t, ctx.strategy, ctx.roles.svc.family);
  const components: Record<string, ComponentSpec[]> = {};
  for (const n of controlPlanes(t)) {
    const config: KubeVipConfig = { api: apiConfig(t, ctx.strategy, mode, n) };
    if (svcs) config.services = servicesConfig(mode, ctx.strategy, svcs.services, n);
    components[n.name] = [{ kind: 'kube-vip', config: config as unknown as Record<string, unknown> }];
  }
  // the cluster endpoint (the VIP) is one of KubePrism's upstreams, as Talos configures it
  for (const n of t.nodes) (components[n.name] ??= []).push({ kind: 'kubeprism', config: { clusterEndpoint: `${t.vip}:${t.apiPort}` } });
  const sim: Partial<SimPlan> = { components };
  if (mode === 'bgp') sim.speakers = kubeVipSpeakers(t, ctx.strategy, controlPlanes(t));
  return { files: cpFiles(t, ctx.strategy, mode, ctx.roles.svc.family), sim };
}

/** The service side: kube-vip `services` on every workload node. */
export function renderKubeVipSvc(ctx: MechanismContext, mode: Mode): { files: RenderedFile[]; sim: Partial<SimPlan> } {
  const t = ctx.topology;
  const services = svcKubeVipServices(t);
  const nodes = serviceNodes(t);
  const components: Record<string, ComponentSpec[]> = {};
  for (const n of nodes) {
    const config: KubeVipConfig = { services: servicesConfig(mode, ctx.strategy, services, n) };
    components[n.name] = [{ kind: 'kube-vip', config: config as unknown as Record<string, unknown> }];
  }
  const sim: Partial<SimPlan> = { components };
  if (mode === 'bgp') sim.speakers = kubeVipSpeakers(t, ctx.strategy, nodes);
  return { files: svcFiles(t, ctx.strategy, mode), sim };
}

// ---------------------------------------------------------------------------------------------
// bands

export function kubeVipLeaseBands(t: Topology, lease: string): { graceful: Band; crash: Band } {
  const k = t.timers.kubeVip;
  const D = k.leaseDurationS * 1000;
  const R = k.retryPeriodS * 1000;
  const maxRetry = (1 + JITTER_FACTOR) * R;
  // while the survivors re-elect an etcd leader (≤ 2 election timeouts) they cannot read the lease
  const etcdStall = Math.max(0, 2 * t.timers.etcd.electionMs - (D - R));
  return {
    graceful: {
      min: 0,
      max: Math.round(maxRetry + VIP_MARGIN_MS),
      basis: `the holder releases ${lease} (ReleaseOnCancel: empty holder) and drops the address; a follower takes it at its next retry, every retryPeriod ${s(R)} × (1 + rand × ${JITTER_FACTOR}) ≤ ${s(maxRetry)}, then GARP; + ${s(VIP_MARGIN_MS)} margin`,
    },
    crash: {
      min: D - R,
      max: Math.round(D + 2 * maxRetry + etcdStall + VIP_MARGIN_MS),
      basis:
        `followers take ${lease} once leaseDuration ${s(D)} has passed since they last saw it renewed (the holder renews every retryPeriod ${s(R)}, so ≥ ${s(D - R)} after the fault); ` +
        `they see the last renewal and then the expiry each at a retry ≤ ${s(maxRetry)} apart (JitterFactor ${JITTER_FACTOR}) → ≤ leaseDuration + 2 × ${s(maxRetry)}` +
        (etcdStall ? ` + ${s(etcdStall)} etcd re-election` : '') +
        ` + ${s(VIP_MARGIN_MS)} margin for the address and GARP`,
    },
  };
}

export function l2LeaseBand(drill: DrillKind, t: Topology, lease: string): Band | null {
  return l2ElectionBand(drill, kubeVipLeaseBands(t, lease), t.timers.arp);
}

export const KUBE_VIP_SOURCES = [
  'kube-vip/kube-vip pkg/cluster/clusterLeaderElection.go (v0.8/v0.9): RunOrDie on a Lease with ReleaseOnCancel, LeaseDuration/RenewDeadline/RetryPeriod from vip_leaseduration/vip_renewdeadline/vip_retryperiod; VIP deleted on leadership loss, then panic (restart)',
  'k8s.io/client-go tools/leaderelection/leaderelection.go: tryAcquireOrRenew (observedTime rule, fast path), JitterFactor 1.2, renew within RenewDeadline, release() with empty holder and leaseDurationSeconds 1',
  'kube-vip pkg/kubevip/config_envvar.go + config_environment.go: env names and defaults (plndr-cp-lock, plndr-svcs-lock, vip_arpRate 3000 ms)',
  'kube-vip.io/docs/installation/static (v0.8/v0.9): generated manifests use vip_leaseduration 5, vip_renewdeadline 3, vip_retryperiod 1',
  'kube-vip pkg/loadbalancer/ipvs.go + pkg/backend/backend.go: lb_enable = IPVS round robin over Ready control planes, masquerade mode checks GET /version every backend_health_check_interval (5 s); emulated with nftables numgen DNAT + masquerade (no IPVS in the lab kernel)',
  'kube-vip pkg/manager/watch_services.go lbClassFilterLegacy + kube-vip PR #855: Service class rule (kube-vip.io/kube-vip-class, lb_class_only); ETP Local → only nodes with a local endpoint (svc_election, BGP)',
  'kube-vip pkg/manager/servicesLeader.go: per-Service lease kubevip-<service> with svc_election',
  'Kubernetes docs "Pod Lifecycle": container restart back-off starts at 10 s',
];
