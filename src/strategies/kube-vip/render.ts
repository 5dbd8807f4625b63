/**
 * kube-vip, the family shared by the `kube-vip-arp` and `kube-vip-bgp` mechanisms: kube-vip as a
 * static pod on every control plane for the API, ARP mode, leader election on the Lease
 * `kube-system/plndr-cp-lock` (client-go semantics, timers `timers.kubeVip`) through the node's
 * own API server: the leader adds the VIP and gratuitous ARP goes out as the release in
 * `settings.kubeVip.version` sends it (./versions.ts). With `lb_enable` (StrategyRef.options.kubeVipLbEnable) the holder spreads API
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
 *   ≤ (1+J)·R (+ G) + margin, G = the wait for the first GARP: 0 when it goes out at once (≤ v0.8),
 *   ≤ vip_arpRate with the process-wide ARP loop (≥ v0.9; ./versions.ts).
 * - crash / freeze / partition: the leader's last renew was ≤ R before the fault; a follower
 *   observed it up to one retry later and takes the lease at its first retry once D has passed
 *   since that observation: [D − R, D + 2·(1+J)·R + G + margin] (+ the etcd re-election time beyond
 *   D − R if the victim was also the etcd leader). lb_enable adds nothing for this victim: the
 *   new holder checks each backend (GET /version, 10 s timeout) before adding it, and until one
 *   is added its own API server answers.
 */
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
import { bfdFor, l2ElectionBand, MCAST_SOLICIT, VIP_MARGIN_MS } from '../bands.js';
import { releaseOf } from './settings.js';
import { cpFiles, svcFiles } from './manifests.js';

/** the family name of both kube-vip mechanisms: one process per node serves both roles */
export const KUBE_VIP_FAMILY = 'kube-vip';

/** kube-vip's default LoadBalancerClassName (pkg/kubevip/config_environment.go, lb_class_name) */
export const KUBE_VIP_CLASS = 'kube-vip.io/kube-vip-class';

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
      frrConf: renderSpeakerFrr(n, t, { timers: t.timers.kubeVipBgp, bfd: bfdFor(t, ref), owner: KUBE_VIP_FAMILY, prefixes: [] }),
      staticPrefixes: [],
    };
  }
  return out;
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
  // ≥ v0.9.0 the new leader's first GARP waits for the process-wide ARP loop: 0…arpRate after the
  // takeover, during which the router still sends to the old holder's MAC (./versions.ts garp)
  const rel = releaseOf(t);
  const garp = rel.garp === 'arp-loop' ? rel.cpArpRepeatMs(k.arpRateMs) : 0;
  const garpText = garp ? `, then the first GARP when the ARP loop next fires (every vip_arpRate, ≤ ${s(garp)} later, kube-vip ${rel.version})` : ', then GARP at once';
  return {
    graceful: {
      min: 0,
      max: Math.round(maxRetry + garp + VIP_MARGIN_MS),
      basis: `the holder releases ${lease} (ReleaseOnCancel: empty holder) and drops the address; a follower takes it at its next retry, every retryPeriod ${s(R)} × (1 + rand × ${JITTER_FACTOR}) ≤ ${s(maxRetry)}${garpText}; + ${s(VIP_MARGIN_MS)} margin`,
    },
    crash: {
      min: D - R,
      max: Math.round(D + 2 * maxRetry + etcdStall + garp + VIP_MARGIN_MS),
      basis:
        `followers take ${lease} once leaseDuration ${s(D)} has passed since they last saw it renewed (the holder renews every retryPeriod ${s(R)}, so ≥ ${s(D - R)} after the fault); ` +
        `they see the last renewal and then the expiry each at a retry ≤ ${s(maxRetry)} apart (JitterFactor ${JITTER_FACTOR}) → ≤ leaseDuration + 2 × ${s(maxRetry)}` +
        (etcdStall ? ` + ${s(etcdStall)} etcd re-election` : '') +
        garpText +
        ` + ${s(VIP_MARGIN_MS)} margin for the address and GARP`,
    },
  };
}

/**
 * The only control plane is back (a crash with no peer): kube-vip's first tries to take
 * plndr-cp-lock go through KubePrism (the DaemonSet's in-cluster config, ./manifests.ts), whose
 * upstream list starts with the cluster endpoint — the VIP this very election has yet to bring up.
 * Every upstream starts usable (score +1, go-loadbalancer upstream.go); a dial to the unheld VIP
 * fails once the kernel's broadcast resolution gives up (mcast_solicit × retrans_time) and KubePrism
 * closes the client connection; the second such failure scores the VIP out (−1). So at most two of
 * kube-vip's tries hit it, each followed by client-go's retry wait ≤ (1 + 1.2) × retryPeriod;
 * then the lease is its own (same identity: client-go's IsLeader fast path) and the address goes up.
 */
export function kubeVipCpRejoin(t: Topology): { ms: number; basis: string } {
  const R = t.timers.kubeVip.retryPeriodS * 1000;
  const maxRetry = (1 + JITTER_FACTOR) * R;
  const dialFail = MCAST_SOLICIT * t.timers.arp.retransMs;
  return {
    ms: Math.round(2 * (dialFail + maxRetry) + VIP_MARGIN_MS),
    basis:
      `kube-vip reaches its API server through KubePrism, whose first upstream is the VIP it has yet to bring up: ≤ 2 tries hit it ` +
      `(a failed dial after mcast_solicit ${MCAST_SOLICIT} × retrans ${t.timers.arp.retransMs} ms, then a retry ≤ ${s(maxRetry)}) before KubePrism scores it out; + ${s(VIP_MARGIN_MS)} margin`,
  };
}

export function l2LeaseBand(drill: DrillKind, t: Topology, lease: string): Band | null {
  return l2ElectionBand(drill, kubeVipLeaseBands(t, lease), t.timers.arp);
}

export const KUBE_VIP_SOURCES = [
  'kube-vip/kube-vip cmd/kube-vip.go @v0.8.9 (lease 5/3/1 s) and @v1.1.0…@v1.2.3 (15/10/2 s, commit 7caf5f6): the lease defaults of the release in settings.kubeVip.version',
  'kube-vip pkg/cluster/clusterLeaderElection.go + pkg/election/election.go @v1.2.3: client-go RunOrDie on a coordination.k8s.io Lease through the API server the kubeconfig names, ReleaseOnCancel; VIP deleted on leadership loss',
  'kube-vip pkg/cluster/service.go @v0.8.9 (per-VIP GARP loop: at once, then every 3 s) vs @v0.9.2/@v1.2.3 layer2Update → pkg/arp/arp.go (one ARP loop per process, every vip_arpRate: the first GARP 0…arpRate after the takeover)',
  'kube-vip lost-lease handling: log.Fatal @v0.8.9, panic @v0.9.2/@v1.0.4, killFunc → graceful exit @v1.1.0+ (pkg/cluster/service.go StartVipService, pkg/manager/manager.go Kill); global Services lease @v1.2.0…@v1.2.3: shutdown starts but the process never exits (pkg/manager/worker/common.go runGlobalElection)',
  'k8s.io/client-go tools/leaderelection/leaderelection.go @v0.36.3: tryAcquireOrRenew (observedTime rule, fast path), JitterFactor 1.2, renew = PollUntilContextTimeout(RetryPeriod, RenewDeadline), release() with empty holder and leaseDurationSeconds 1',
  'kube-vip pkg/kubevip/config_envvar.go + config_environment.go: env names and defaults (plndr-cp-lock, plndr-svcs-lock, vip_arpRate 3000 ms)',
  'kube-vip pkg/loadbalancer/ipvs.go + pkg/backend/backend.go: lb_enable = IPVS round robin over Ready control planes, masquerade mode checks GET /version every backend_health_check_interval (5 s); emulated with nftables numgen DNAT + masquerade (no IPVS in the lab kernel)',
  'kube-vip pkg/manager/watch_services.go lbClassFilterLegacy + kube-vip PR #855: Service class rule (kube-vip.io/kube-vip-class, lb_class_only); ETP Local → only nodes with a local endpoint (svc_election, BGP)',
  'kube-vip pkg/manager/servicesLeader.go: per-Service lease kubevip-<service> with svc_election',
  'kubelet pkg/kubelet/kuberuntime/kuberuntime_manager.go doBackOff + client-go flowcontrol.Backoff: a container that exits is restarted at once the first time, then after 10 s doubling to 300 s',
];
