/**
 * Cilium L2 announcements (mechanism `cilium-l2`, "L2 Aware LB", beta in Cilium 1.18).
 *
 * What is emulated (the announcer, ./agent.ts), with its sources. The Cilium 1.18 tag could not be
 * mirrored (the repository is over the size limit); the files were read as single copies from the
 * Cilium source index (1.17/1.18 line: hive/statedb as separate modules, the leader-election
 * loop of PR #30340) and against what cilium-cli v0.18.6 vendors of Cilium at 2025-07-30
 * (v1.18.0-pre.3+, commit ccb662c179a6: the CRD types and flag names):
 * - Which Services: pkg/l2announcer/l2announcer.go upsertSvc ignores a Service whose
 *   spec.loadBalancerClass is set to anything but `io.cilium/l2-announcer`
 *   (pkg/k8s/apis/cilium.io/v2alpha1/l2announcement_types.go L2AnnounceLoadBalancerClass), and one
 *   without an IP in status.loadBalancer.ingress (LB IPAM, CiliumLoadBalancerIPPool, assigns it);
 *   a CiliumL2AnnouncementPolicy selects the Services (serviceSelector, none = all), the nodes
 *   (nodeSelector, none = all), the interfaces (regexes, none = all of Cilium's devices) and the
 *   IP types (loadBalancerIPs / externalIPs, both false by default).
 * - One election per selected Service, on every selected node: client-go leaderelection.RunOrDie
 *   on the Lease `<cilium namespace>/cilium-l2announce-<svc namespace>-<svc name>` (leasePrefix,
 *   newLeaseLock; identity = the node name), ReleaseOnCancel: true, LeaseDuration / RenewDeadline /
 *   RetryPeriod = --l2-announcements-lease-duration / -renew-deadline / -retry-period
 *   (`timers.ciliumL2`, 15 s / 5 s / 2 s), run again in a loop after a lost leadership
 *   (selectedService.serviceLeaderElection). "First come, first serve": different Services may
 *   land on different nodes (Documentation/network/l2-announcements.rst "Leader Election").
 * - externalTrafficPolicy is NOT looked at: every selected node contends, also one without a local
 *   endpoint, and a Local Service held there drops its traffic (the doc's "Limitations";
 *   cilium/cilium issue #27800 — no local-backend check in upsertSvc up to the 1.18 line).
 * - The holder answers ARP for the IP from eBPF (bpf_host handle_l2_announcement, map
 *   cilium_l2_responder_v4 keyed by IP and ingress ifindex) — the address is NOT put on the link —
 *   and sends ONE gratuitous ARP when the (IP, interface) entry is new
 *   (pkg/datapath/l2responder/l2responder.go garpOnNewEntry). The sim adds the address to the LAN
 *   interface instead (src/emulation/net.ts, as for the lab's other L2 mechanisms): the kernel
 *   answers ARP for it and the client-visible effect is the same.
 * - The datapath stops answering when the agent has not refreshed its liveness for longer than the
 *   lease duration (the datapath's L2_ANNOUNCEMENTS_MAX_LIVENESS / l2_announcements_max_liveness =
 *   L2AnnouncerLeaseDuration, set where the agent configures bpf_host): a frozen agent goes silent
 *   after about one lease. The sim's kernel keeps answering
 *   for a frozen node until the new holder's gratuitous ARP — what a client with a cached entry
 *   sees either way.
 * - Requirements (Documentation/network/l2-announcements.rst "Configuration", "Prerequisites",
 *   "Sizing client rate limit"): kube-proxy replacement, l2announcements.enabled, the client rate
 *   limit sized as QPS = #services / leaseRenewDeadline (default 5 QPS, burst 10); on Talos
 *   without kube-proxy: cluster.proxy.disabled and k8sServiceHost=localhost:7445 (KubePrism) —
 *   Talos docs "Deploying Cilium CNI" (Cilium 1.18.0).
 * The datapath behind the address stays the cluster's kube-proxy emulation (nftables), not
 * Cilium's eBPF service load balancer.
 */
import type { DrillKind, LbService, Node, Topology } from '../../model/types.js';
import type { Band, FidelityNote, Mechanism, MechanismContext, RealContext, RealStep, RealSupport, RenderedFile } from '../types.js';
import type { ComponentSpec } from '../../emulation/agent/types.js';
import { toYamlDocs } from '../../providers/kinds/talos/machine-config.js';
import { JITTER_FACTOR } from '../kube-vip/agent.js';
import { l2DrillIssue, l2ElectionBand, noPeerReason, secs, VIP_MARGIN_MS } from '../bands.js';
import { CILIUM_FAMILY, ciliumNodeSelector, ciliumNodes, ciliumPool, ciliumReal, ciliumServes, yamlDocs } from '../cilium/common.js';
import { ciliumL2Timers } from './timers.js';

const ID = 'cilium-l2';

/** v2alpha1 L2AnnounceLoadBalancerClass */
export const CILIUM_L2_CLASS = 'io.cilium/l2-announcer';
/** the namespace Cilium is installed in (the lab's helm install: kube-system) = where its Leases live */
export const CILIUM_NAMESPACE = 'kube-system';
/** l2announcer.go leasePrefix */
export const LEASE_PREFIX = 'cilium-l2announce';
export const leaseName = (s: Pick<LbService, 'namespace' | 'name'>) => `${LEASE_PREFIX}-${s.namespace}-${s.name}`;
/** the agent component kind (./agent.ts) */
export const COMPONENT_KIND = ID;
export const L2_FILE = 'cilium/l2.yaml';
export const KUBE_PROXY_PATCH = 'talos/cilium-no-kube-proxy.patch.yaml';
export const KUBE_PROXY_UNAPPLY_PATCH = 'talos/unapply/cilium-no-kube-proxy.patch.yaml';
/** Cilium's default client rate limit (the doc's "Sizing client rate limit"): 5 QPS, bursts of 10 */
const DEFAULT_QPS = 5;
const DEFAULT_BURST = 10;

// ---------------------------------------------------------------------------------------------
// which Services, which nodes

export function ciliumL2Serves(s: LbService): boolean {
  return ciliumServes(s, CILIUM_L2_CLASS);
}

export function servedServices(t: Topology): LbService[] {
  return t.services.filter(ciliumL2Serves);
}

/** Nodes on the pool's LAN: only there does an ARP answer reach the clients' router. */
function onPoolLan(t: Topology): Node[] {
  return t.pool.segment ? t.nodes.filter((n) => n.rack === t.pool.segment) : [];
}

/**
 * Nodes contending for a Service's Lease: the policy's nodeSelector (the nodes that run workloads,
 * on the pool's LAN). The same for every Service — externalTrafficPolicy is not looked at.
 */
export function ciliumL2Candidates(t: Topology): string[] {
  const selected = new Set(ciliumNodes(t));
  return onPoolLan(t).filter((n) => selected.has(n.name)).map((n) => n.name);
}

// ---------------------------------------------------------------------------------------------
// the agent's config

export interface CiliumL2Config {
  /** the node's identity in the Leases (the node name) */
  identity: string;
  leaseNamespace: string;
  /** the interface the policy announces on (the node's LAN on the pool's segment) */
  link: string;
  /** "the API server": etcd client URLs through KubePrism — own member first on a control plane, then the others */
  endpoints: string[];
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  services: { namespace: string; name: string; ip: string; lease: string }[];
}

export function ciliumL2Config(t: Topology, n: Node): CiliumL2Config {
  const c = t.timers.ciliumL2;
  const cps = t.nodes.filter((x) => x.role === 'controlplane');
  const ordered = n.role === 'controlplane' ? [n, ...cps.filter((x) => x !== n)] : cps;
  return {
    identity: n.name,
    leaseNamespace: CILIUM_NAMESPACE,
    link: n.interfaces[0]!.ifname,
    endpoints: ordered.map((x) => `http://${x.ip}:2379`),
    leaseDurationMs: c.leaseDurationS * 1000,
    renewDeadlineMs: c.renewDeadlineS * 1000,
    retryPeriodMs: c.retryPeriodS * 1000,
    services: servedServices(t).map((s) => ({ namespace: s.namespace, name: s.name, ip: s.ip, lease: leaseName(s) })),
  };
}

// ---------------------------------------------------------------------------------------------
// real-cluster files and install

export function l2Policy(t: Topology): Record<string, unknown> {
  const lan = onPoolLan(t);
  const limited = lan.length < t.nodes.length;
  const selector = ciliumNodeSelector(t, limited ? (t.pool.segment ?? null) : null);
  const ifnames = [...new Set(lan.map((n) => n.interfaces[0]!.ifname))].sort();
  return {
    apiVersion: 'cilium.io/v2alpha1',
    kind: 'CiliumL2AnnouncementPolicy',
    metadata: { name: `${t.pool.name}-l2` },
    spec: {
      ...(Object.keys(selector).length ? { nodeSelector: selector } : {}),
      // regexes (golang syntax), OR-ed; anchored so eth1 does not match eth10
      interfaces: ifnames.map((i) => `^${i}$`),
      loadBalancerIPs: true,
    },
  };
}

function l2Files(t: Topology): RenderedFile[] {
  const claimed = servedServices(t);
  const all = t.nodes.map((n) => n.name);
  const talosHeader = ['Cilium L2 announcements need kube-proxy replacement: Talos must not run kube-proxy', '(Talos docs "Deploying Cilium CNI", without kube-proxy: cluster.proxy.disabled).'];
  return [
    {
      path: L2_FILE,
      kind: 'k8s-manifest',
      delivery: 'kubectl',
      hosts: ciliumL2Candidates(t),
      content:
        `# Cilium L2 announcements (cilium.io/v2alpha1, Cilium 1.18; helm: l2announcements.enabled=true, kubeProxyReplacement=true) and the LB IPAM pool.\n` +
        `# One Lease ${CILIUM_NAMESPACE}/${LEASE_PREFIX}-<namespace>-<service> per Service; its holder answers ARP for the Service IP.\n` +
        `# Takes class-less Services and those of class ${CILIUM_L2_CLASS}: ${claimed.map((s) => `${s.namespace}/${s.name} ${s.ip}`).join(', ') || 'none in this topology'}.\n` +
        yamlDocs([ciliumPool(t), l2Policy(t)]),
    },
    { path: KUBE_PROXY_PATCH, kind: 'talos-patch', delivery: 'talos', hosts: all, content: toYamlDocs([{ cluster: { proxy: { disabled: true } } }], talosHeader) },
    {
      path: KUBE_PROXY_UNAPPLY_PATCH,
      kind: 'talos-patch',
      delivery: 'talos',
      hosts: all,
      content: toYamlDocs([{ cluster: { proxy: { disabled: false } } }], ['kube-proxy back when a strategy without Cilium L2 announcements replaces this one on a running cluster.']),
    },
  ];
}

/** a Go duration for helm (`15s`, `200ms`) */
const goDuration = (s: number) => (Number.isInteger(s) ? `${s}s` : `${Math.round(s * 1000)}ms`);

/** The Cilium helm values this mechanism needs on a topology (the doc's "Configuration" + Talos's KubePrism). */
export function ciliumL2HelmValues(t: Topology): string[] {
  const c = t.timers.ciliumL2;
  // "Sizing client rate limit": QPS = #services × (1 / leaseRenewDeadline), never below the default;
  // the burst keeps the default's 2:1 ratio
  const qps = Math.max(DEFAULT_QPS, Math.ceil(servedServices(t).length / c.renewDeadlineS));
  const burst = Math.max(DEFAULT_BURST, 2 * qps);
  return [
    'kubeProxyReplacement=true',
    // without kube-proxy the agent cannot reach the API through the Service IP: KubePrism on every node
    'k8sServiceHost=localhost',
    `k8sServicePort=${t.kubePrismPort}`,
    'l2announcements.enabled=true',
    `l2announcements.leaseDuration=${goDuration(c.leaseDurationS)}`,
    `l2announcements.leaseRenewDeadline=${goDuration(c.renewDeadlineS)}`,
    `l2announcements.leaseRetryPeriod=${goDuration(c.retryPeriodS)}`,
    `k8sClientRateLimit.qps=${qps}`,
    `k8sClientRateLimit.burst=${burst}`,
  ];
}

/** The nodes holding the Leases of `s` (Cilium does not put the IP on a link: `address` finds nothing on a real node). */
export async function ciliumL2Holders(ctx: RealContext, s: LbService): Promise<string[]> {
  const r = await ctx.kubectl(['-n', CILIUM_NAMESPACE, 'get', 'lease', leaseName(s), '-o', 'json']);
  if (r.exitCode !== 0) return [];
  const holder = (JSON.parse(r.stdout || '{}') as { spec?: { holderIdentity?: string } }).spec?.holderIdentity ?? '';
  return ctx.topology.nodes.filter((n) => n.name === holder).map((n) => n.name);
}

// Cilium as the CNI (family); the install's values depend on the topology (timers, KubePrism port, Services)
const real: RealSupport = {
  ...ciliumReal([]),
  install: (ctx): RealStep[] => ciliumReal(ciliumL2HelmValues(ctx.topology)).install!(ctx),
  holders: ciliumL2Holders,
};

// ---------------------------------------------------------------------------------------------
// bands

/**
 * Expected client-seen outage when the holder of a Service's Lease is the victim, from
 * `timers.ciliumL2` (D = leaseDuration, R = retryPeriod, J = client-go JitterFactor 1.2: a
 * candidate retries every R·(1 + rand·J), the holder renews every R):
 * - graceful: ReleaseOnCancel writes the Lease back with an empty holder; the next retry of a
 *   candidate takes it: ≤ (1+J)·R + margin;
 * - crash / freeze / partition: the last renewal was ≤ R before the fault; a candidate observes it
 *   at a retry, and takes the Lease at its first retry once D has passed since: [D − R,
 *   D + 2·(1+J)·R + margin] (+ the etcd re-election beyond D − R when the victim was etcd's leader).
 */
export function ciliumL2LeaseBands(t: Topology, lease: string): { graceful: Band; crash: Band } {
  const c = t.timers.ciliumL2;
  const D = c.leaseDurationS * 1000;
  const R = c.retryPeriodS * 1000;
  const maxRetry = (1 + JITTER_FACTOR) * R;
  // while the survivors re-elect an etcd leader (≤ 2 election timeouts) they cannot read the Lease
  const etcdStall = Math.max(0, 2 * t.timers.etcd.electionMs - (D - R));
  return {
    graceful: {
      min: 0,
      max: Math.round(maxRetry + VIP_MARGIN_MS),
      basis: `the holder releases ${lease} (ReleaseOnCancel: empty holder); a candidate takes it at its next retry, every retryPeriod ${secs(R)} × (1 + rand × ${JITTER_FACTOR}) ≤ ${secs(maxRetry)}, then answers ARP and sends one gratuitous ARP; + ${secs(VIP_MARGIN_MS)} margin`,
    },
    crash: {
      min: D - R,
      max: Math.round(D + 2 * maxRetry + etcdStall + VIP_MARGIN_MS),
      basis:
        `candidates take ${lease} once leaseDuration ${secs(D)} has passed since they last saw it renewed (renewed every retryPeriod ${secs(R)}, so ≥ ${secs(D - R)} after the fault); ` +
        `they see the last renewal and then the expiry each at a retry ≤ ${secs(maxRetry)} apart (JitterFactor ${JITTER_FACTOR}) → ≤ leaseDuration + 2 × ${secs(maxRetry)}` +
        (etcdStall ? ` + ${secs(etcdStall)} etcd re-election` : '') +
        ` + ${secs(VIP_MARGIN_MS)} margin for the address and the gratuitous ARP`,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// the mechanism

/** Where the emulated announcer (./agent.ts) and the lab around it differ from Cilium (docs/fidelity.md). */
const FIDELITY: FidelityNote[] = [
  {
    id: 'cilium-l2-kernel-arp',
    text:
      'The holder puts the Service IP on its LAN link and the kernel answers ARP; Cilium answers from eBPF without an address and stops answering once the agent\'s liveness is older than the lease duration. ' +
      'Freeze: the sim\'s frozen holder keeps answering until the new holder\'s gratuitous ARP, a real one goes silent after ≈ one lease duration, about when the takeover happens: small effect, sim ≤ real.',
    applies: (d) => d.target === 'service' && d.kind === 'freeze',
  },
  {
    id: 'cilium-l2-lease-etcd',
    text:
      'The per-Service Leases are read and written straight in etcd with the API server\'s compare-and-swap, without the API server, informers or the agent\'s client rate limit (default 5 QPS, burst 10). ' +
      'Lease traffic is never throttled here: real agents over their rate limit renew late and can lose Leases; takeovers are equal or later in reality.',
    applies: (d) => d.target === 'service' && d.kind !== 'baseline',
  },
  {
    id: 'cilium-l2-kube-proxy-datapath',
    text:
      'Cilium L2 announcements need kube-proxy replacement; the sim routes the Service with the lab\'s kube-proxy (nftables) instead of Cilium\'s eBPF load balancer. ' +
      'Conntrack, SNAT and a dead endpoint\'s SYN_SENT entries behave as kube-proxy\'s; with the eBPF datapath a single high-rate client\'s tail after the endpoint removal is probably absent (not verified).',
    applies: (d) => d.target === 'service' && d.kind !== 'baseline',
  },
];

const SOURCES = [
  'cilium/cilium pkg/l2announcer/l2announcer.go (Cilium 1.17/1.18 line, index copy 21d690e1): upsertSvc (loadBalancerClass io.cilium/l2-announcer or none; an ingress IP needed; no externalTrafficPolicy check), leaseTimings() (lease ≥ 1 s, renew < lease else lease/2, renew > 1.2 × retry else renew/2), newLeaseLock (cilium-l2announce-<ns>-<svc>, identity = node name), serviceLeaderElection (RunOrDie with ReleaseOnCancel in a loop, cilium PR #30340)',
  'cilium/cilium daemon/cmd/daemon_main.go: --l2-announcements-lease-duration 15s, --l2-announcements-renew-deadline 5s, --l2-announcements-retry-period 2s',
  'cilium/cilium pkg/k8s/apis/cilium.io/v2alpha1/l2announcement_types.go (as vendored by cilium-cli v0.18.6: Cilium v1.18.0-pre.3+ccb662c179a6): CiliumL2AnnouncementPolicy spec (nodeSelector, serviceSelector, loadBalancerIPs, externalIPs, interfaces — all optional), L2AnnounceLoadBalancerClass; lbipam_types.go CiliumLoadBalancerIPPool spec.blocks[].cidr',
  'cilium/cilium pkg/datapath/l2responder/l2responder.go garpOnNewEntry: one gratuitous ARP when an (IP, ifindex) entry is new; bpf handle_l2_announcement: ARP answered from the cilium_l2_responder_v4 map, silent once the agent liveness is older than the lease duration',
  'docs.cilium.io L2 Announcements / L2 Aware LB (Beta) (Documentation/network/l2-announcements.rst): kube-proxy replacement required, client rate limit QPS = #services / leaseRenewDeadline (default 5 / burst 10), incompatible with externalTrafficPolicy Local, failover between leaseDuration − leaseRenewDeadline and leaseDuration + leaseRenewDeadline',
  'k8s.io/client-go tools/leaderelection/leaderelection.go (v0.33, Cilium 1.18): tryAcquireOrRenew (observedTime rule), JitterFactor 1.2, renew every RetryPeriod within RenewDeadline, release() with an empty holder and leaseDurationSeconds 1',
  'Talos docs "Deploying Cilium CNI" (Cilium 1.18.0): without kube-proxy = cluster.proxy.disabled + kubeProxyReplacement=true, k8sServiceHost=localhost, k8sServicePort=7445 (KubePrism)',
];

export const ciliumL2: Mechanism = {
  id: ID,
  family: CILIUM_FAMILY,
  timers: [ciliumL2Timers],
  components: { [COMPONENT_KIND]: new URL('./agent.js', import.meta.url).href },
  svc: {
    id: ID,
    kind: 'svc',
    family: CILIUM_FAMILY,
    title: 'Cilium L2',
    summary:
      'Cilium L2 announcements: a CiliumL2AnnouncementPolicy selects the Services, the nodes (here the nodes that run workloads) and the interfaces; for each Service IP the Cilium agents of those nodes contend for a Kubernetes Lease (cilium-l2announce-<namespace>-<service>, client-go leader election: lease 15 s, renew deadline 5 s, retry 2 s by default). ' +
      'The holder answers ARP for the IP from its eBPF datapath and sends one gratuitous ARP when it takes over, so all traffic of a Service enters through one node — first come, first served, different Services may land on different nodes. ' +
      'A graceful stop releases the Lease (another node takes it within about one retry period); a crash costs the lease duration (≈ 13–25 s with the defaults). externalTrafficPolicy is ignored: a Local Service may be held by a node without a local pod, which drops its traffic. ' +
      'Needs kube-proxy replacement (and, on Talos, kube-proxy disabled) and a client rate limit sized for the Leases; Services of another loadBalancerClass than io.cilium/l2-announcer are ignored. ' +
      'Sim: emulated announcer with client-go election semantics on an etcd-backed Lease; the kernel answers ARP for the held address; kube-proxy (nftables) stands in for the eBPF service datapath.',
    sources: SOURCES,
    traits: { l2: true, bgp: false, spread: 'active-passive' },
    holders: 'address',
    claimsClasslessServices: () => true,
    articleClaims: ['l2-single-entry'],
    fidelity: FIDELITY,
    real,
    render(ctx: MechanismContext) {
      const t = ctx.topology;
      const components: Record<string, ComponentSpec[]> = {};
      if (servedServices(t).length) {
        for (const name of ciliumL2Candidates(t)) {
          const n = t.nodes.find((x) => x.name === name)!;
          components[name] = [{ kind: COMPONENT_KIND, name: CILIUM_FAMILY, config: ciliumL2Config(t, n) as unknown as Record<string, unknown> }];
        }
      }
      return { files: l2Files(t), sim: { components } };
    },
    expectedOutage(drill: DrillKind, ctx: MechanismContext): Band | null {
      if (drill === 'baseline') return null;
      const t = ctx.topology;
      const svc = t.services[0];
      if (!svc || !ciliumL2Serves(svc)) return null;
      if (noPeerReason(ciliumL2Candidates(t).length, ID)) return null;
      return l2ElectionBand(drill, ciliumL2LeaseBands(t, `${CILIUM_NAMESPACE}/${leaseName(svc)}`), t.timers.arp);
    },
    drillIssue: l2DrillIssue(ID, 'svc'),
  },
};
