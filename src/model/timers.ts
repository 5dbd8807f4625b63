/**
 * The timers of the lab's own network and of Kubernetes itself (etcd, BGP/BFD on the routers,
 * KubePrism, node lifecycle, neighbour caches), with their documented upstream defaults and where
 * each number comes from. Each mechanism defines its own group in its folder (src/strategies/<id>/
 * timers.ts); ./timer-groups.ts puts them together. A lab's effective timers = these defaults ⊕ the topology's `timers:` ⊕ the lab's `timers:`
 * (later wins, field by field). `timerIssues` rejects combinations the real component would reject
 * or silently change, so a lab never measures a configuration that cannot exist.
 */
import type { CoreTimers, Timers } from './types.js';

/** pkg/kubelet/kubelet.go nodeLeaseRenewIntervalFraction: the kubelet renews its Lease every 0.25 × nodeLeaseDurationSeconds */
export const LEASE_RENEW_FRACTION = 0.25;
/** component-helpers lease controller: wait.JitterUntilWithContext(…, renewInterval, 0.04, true) */
export const LEASE_RENEW_JITTER = 0.04;

export type TimerGroup = keyof Timers;
/** A partial override as written in a lab or topology file. */
export type TimersOverride = { [G in TimerGroup]?: Partial<Timers[G]> };

export const CORE_TIMERS: CoreTimers = {
  bgp: {
    // MetalLB BGPPeer.spec.holdTime default 90 s, keepalive = hold/3 = 30 s (metallb.io BGPPeer CRD
    // docs, v0.14). FRR's own neighbor defaults are 60/180 s; MetalLB always renders its values.
    // The BGP labs override to keepalive 3 s / hold 9 s (labs/smb.yaml, labs/enterprise.yaml).
    keepaliveS: 30,
    holdS: 90,
    // FRR `neighbor X timers connect` default 120 s (FRR docs bgp.rst, "timers connect"; FRR 8.4).
    connectRetryS: 120,
  },
  bfd: {
    // FRR bfdd defaults (FRR docs bfd.rst, FRR 8.4): receive-interval 300 ms, transmit-interval
    // 300 ms, detect-multiplier 3 → ~900 ms detection. Off unless a strategy or lab turns it on.
    enabled: false,
    transmitMs: 300,
    receiveMs: 300,
    detectMultiplier: 3,
  },
  kubePrism: {
    // siderolabs/talos pkg/machinery/constants/constants.go (v1.11): KubePrismHealthCheckInterval
    // = 20 s, KubePrismHealthCheckTimeout = 15 s (go-loadbalancer upstream.WithHealthcheck*).
    healthIntervalS: 20,
    healthTimeoutS: 15,
  },
  etcd: {
    // etcd defaults --heartbeat-interval 100 ms, --election-timeout 1000 ms (etcd docs, tuning.md,
    // v3.4/v3.5); Talos does not change them.
    heartbeatMs: 100,
    electionMs: 1000,
  },
  kubernetes: {
    // kube-controller-manager --node-monitor-grace-period: 50 s since Kubernetes 1.32 (kubernetes/
    // kubernetes PR #126287; 40 s before). A node silent for this long is marked NotReady and its
    // pods' endpoints stop being ready: until then kube-proxy keeps sending new connections of an
    // `externalTrafficPolicy: Cluster` Service to the dead node's pods (src/emulation/kube-proxy.ts).
    nodeMonitorGraceS: 50,
    // kube-controller-manager --node-monitor-period: 5 s (SetDefaults_NodeLifecycleControllerConfiguration,
    // pkg/controller/nodelifecycle/config/v1alpha1/defaults.go): how often the node lifecycle
    // controller looks at every node's Lease (monitorNodeHealth under wait.UntilWithContext).
    nodeMonitorPeriodS: 5,
    // kubelet nodeLeaseDurationSeconds: 40 s (KubeletConfiguration default, staging/src/k8s.io/kubelet/
    // config/v1beta1/types.go); the kubelet renews its Lease every 40 × nodeLeaseRenewIntervalFraction
    // 0.25 = 10 s (pkg/kubelet/kubelet.go), stretched by the lease controller's 0.04 jitter.
    nodeLeaseDurationS: 40,
    // kube-proxy minSyncPeriod: 1 s (pkg/proxy/apis/config/v1alpha1/defaults.go, iptables and nftables):
    // the proxier's BoundedFrequencyRunner applies an endpoint change at once if a sync token is free
    // (burst 2), else at most this long after the previous sync (pkg/proxy/nftables/proxier.go).
    proxyMinSyncS: 1,
  },
  arp: {
    // Linux neighbour table defaults (Documentation/networking/ip-sysctl.rst, neigh/default/*):
    // base_reachable_time 30 s, delay_first_probe_time 5 s, ucast_solicit 3, retrans_time 1 s,
    // gc_stale_time 60 s.
    baseReachableS: 30,
    delayFirstProbeS: 5,
    ucastSolicit: 3,
    retransMs: 1000,
    gcStaleS: 60,
  },
};

/** defaults ⊕ overrides…, field by field (later layers win). */
export function mergeTimers(base: Timers, ...layers: (TimersOverride | undefined)[]): Timers {
  const out = structuredClone(base) as unknown as Record<string, Record<string, unknown>>;
  for (const layer of layers) {
    for (const [group, fields] of Object.entries(layer ?? {})) {
      if (!fields || !(group in out)) continue;
      for (const [k, v] of Object.entries(fields)) if (v !== undefined) out[group]![k] = v;
    }
  }
  return out as unknown as Timers;
}

/** One timer problem; `fields` are the timer paths (group.field) involved, the first is blamed. */
export interface TimerIssue {
  fields: string[];
  message: string;
}

/** RFC 4271 §4.2/§10: hold time 0 or ≥ 3 s; keepalive one third of the hold time. For any BGP timer group. */
export function bgpTimerIssues(g: string, b: { holdS: number; keepaliveS: number; connectRetryS: number }): TimerIssue[] {
  const issues: TimerIssue[] = [];
  if (b.holdS !== 0 && b.holdS < 3) issues.push({ fields: [`${g}.holdS`], message: `expected 0 or ≥ 3 s (RFC 4271 §4.2), got ${b.holdS} s` });
  if (b.holdS !== 0 && b.holdS < 3 * b.keepaliveS) {
    issues.push({ fields: [`${g}.holdS`, `${g}.keepaliveS`], message: `expected ${g}.holdS (${b.holdS} s) = 0 or ≥ 3 × ${g}.keepaliveS (${b.keepaliveS} s)` });
  }
  if (b.connectRetryS < 1) issues.push({ fields: [`${g}.connectRetryS`], message: `expected ≥ 1 s, got ${b.connectRetryS} s` });
  return issues;
}

/**
 * Combinations the real components reject or silently rewrite, for the core groups. Each rule
 * names its source. Structural checks (non-negative numbers, integers) are the schema's job.
 */
export function coreTimerIssues(t: Timers): TimerIssue[] {
  const issues: TimerIssue[] = [];
  const add = (fields: string[], message: string) => issues.push({ fields, message });

  // etcd refuses an election timeout shorter than 5 heartbeats (etcd server/config: "election-timeout
  // should be at least as 5 times as heartbeat-interval").
  if (t.etcd.electionMs < 5 * t.etcd.heartbeatMs) {
    add(['etcd.electionMs', 'etcd.heartbeatMs'], `expected etcd.electionMs (${t.etcd.electionMs} ms) ≥ 5 × etcd.heartbeatMs (${t.etcd.heartbeatMs} ms); etcd refuses to start otherwise`);
  }

  issues.push(...bgpTimerIssues('bgp', t.bgp));

  // FRR bfdd accepts intervals 10–60000 ms and a detect multiplier 2–255 (FRR docs bfd.rst).
  for (const k of ['transmitMs', 'receiveMs'] as const) {
    const v = t.bfd[k];
    if (v < 10 || v > 60000) add([`bfd.${k}`], `expected 10–60000 ms (FRR bfdd range), got ${v}`);
  }
  if (t.bfd.detectMultiplier < 2 || t.bfd.detectMultiplier > 255) {
    add(['bfd.detectMultiplier'], `expected 2–255 (FRR bfdd range), got ${t.bfd.detectMultiplier}`);
  }

  const kp = t.kubePrism;
  if (kp.healthTimeoutS > kp.healthIntervalS) {
    add(['kubePrism.healthTimeoutS', 'kubePrism.healthIntervalS'], `expected kubePrism.healthTimeoutS (${kp.healthTimeoutS} s) ≤ kubePrism.healthIntervalS (${kp.healthIntervalS} s)`);
  }

  if (t.kubernetes.nodeMonitorGraceS < 1) add(['kubernetes.nodeMonitorGraceS'], `expected ≥ 1 s, got ${t.kubernetes.nodeMonitorGraceS}`);
  const k = t.kubernetes;
  if (k.nodeMonitorPeriodS <= 0) add(['kubernetes.nodeMonitorPeriodS'], `expected > 0 s, got ${k.nodeMonitorPeriodS}`);
  if (k.nodeLeaseDurationS < 1) add(['kubernetes.nodeLeaseDurationS'], `expected ≥ 1 s, got ${k.nodeLeaseDurationS}`);
  // A healthy node's renewals are seen up to 1.04 × renew interval apart plus one monitor period
  // late; a grace period shorter than that marks every healthy node NotReady between two renewals,
  // and its pods' endpoints flap out of every Service. Nothing in Kubernetes refuses it (the
  // kubelet and the controller manager are configured apart), so the lab does.
  const seenEvery = k.nodeLeaseDurationS * LEASE_RENEW_FRACTION * (1 + LEASE_RENEW_JITTER) + k.nodeMonitorPeriodS;
  if (k.nodeMonitorGraceS >= 1 && k.nodeLeaseDurationS >= 1 && k.nodeMonitorPeriodS > 0 && k.nodeMonitorGraceS <= seenEvery) {
    add(
      ['kubernetes.nodeMonitorGraceS', 'kubernetes.nodeLeaseDurationS', 'kubernetes.nodeMonitorPeriodS'],
      `expected kubernetes.nodeMonitorGraceS (${k.nodeMonitorGraceS} s) > nodeLeaseDurationS × 0.25 × 1.04 + nodeMonitorPeriodS = ${+seenEvery.toFixed(2)} s: the kubelet renews its Lease every 0.25 × nodeLeaseDurationS (${k.nodeLeaseDurationS * LEASE_RENEW_FRACTION} s), so a shorter grace marks healthy nodes NotReady between renewals (shorten nodeLeaseDurationS with it)`,
    );
  }

  const a = t.arp;
  if (a.baseReachableS < 1) add(['arp.baseReachableS'], `expected ≥ 1 s, got ${a.baseReachableS}`);
  if (a.ucastSolicit < 1) add(['arp.ucastSolicit'], `expected ≥ 1, got ${a.ucastSolicit}`);
  if (a.retransMs < 10) add(['arp.retransMs'], `expected ≥ 10 ms, got ${a.retransMs}`);
  return issues;
}
