/**
 * Every timer a mechanism uses, with its documented upstream default and where that number comes
 * from. A lab's effective timers = these defaults ⊕ the topology's `timers:` ⊕ the lab's `timers:`
 * (later wins, field by field). `timerIssues` rejects combinations the real component would reject
 * or silently change, so a lab never measures a configuration that cannot exist.
 */
import type { Timers } from './types.js';

export type TimerGroup = keyof Timers;
/** A partial override as written in a lab or topology file. */
export type TimersOverride = { [G in TimerGroup]?: Partial<Timers[G]> };

export const DEFAULT_TIMERS: Timers = {
  talosVip: {
    // Talos creates its election session with concurrency.NewSession(client) and no WithTTL, so the
    // etcd client default applies: defaultSessionTTL = 60 s (go.etcd.io/etcd/client/v3/concurrency/
    // session.go, etcd v3.5). Used by siderolabs/talos internal/app/machined/pkg/controllers/network/
    // operator/vip.go (Talos v1.11): a crashed holder keeps the VIP key until this lease expires.
    sessionTtlS: 60,
    // campaignRetryInterval = time.Second in the same vip.go: pause before re-campaigning after a failure.
    campaignRetryS: 1,
  },
  kubeVip: {
    // The manifests kube-vip generates (`kube-vip manifest pod|daemonset`, kube-vip.io/docs/
    // installation/static/, kube-vip v0.8/v0.9) set vip_leaseduration=5, vip_renewdeadline=3,
    // vip_retryperiod=1. (client-go's own leader-election defaults are 15/10/2 s,
    // k8s.io/client-go/tools/leaderelection; kube-vip overrides them with the values above.)
    leaseDurationS: 5,
    renewDeadlineS: 3,
    retryPeriodS: 1,
    // vip_arpRate default 3000 ms (kube-vip pkg/kubevip/config_environment.go); pkg/arp/manager.go
    // resets any rate below 500 ms to 3000 ms.
    arpRateMs: 3000,
  },
  metallb: {
    // MetalLB's speaker builds its memberlist from memberlist.DefaultLANConfig() (metallb
    // internal/speakerlist, v0.14/v0.15); hashicorp/memberlist config.go DefaultLANConfig:
    // ProbeInterval 1 s, ProbeTimeout 500 ms, SuspicionMult 4, GossipInterval 200 ms.
    probeIntervalMs: 1000,
    probeTimeoutMs: 500,
    suspicionMult: 4,
    gossipMs: 200,
  },
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
  cilium: {
    // cilium pkg/k8s/apis/cilium.io/v2alpha1 (bgp peer types, Cilium 1.14+): DefaultBGPKeepAliveTimeSeconds
    // = 30, DefaultBGPHoldTimeSeconds = 90, DefaultBGPConnectRetryTimeSeconds = 120.
    keepaliveS: 30,
    holdS: 90,
    connectRetryS: 120,
  },
  haproxy: {
    // HAProxy 2.6 configuration manual, section 5.2 server options: `inter` default 2000 ms,
    // `fall` default 3, `rise` default 2; without `timeout check`, `inter` bounds the whole check.
    checkIntervalMs: 2000,
    fall: 3,
    rise: 2,
    checkTimeoutMs: 2000,
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
    // `externalTrafficPolicy: Cluster` Service to the dead node's pods (src/cluster/kube-proxy.ts).
    nodeMonitorGraceS: 50,
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

export const TIMER_GROUPS = Object.keys(DEFAULT_TIMERS) as TimerGroup[];

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

/**
 * Combinations the real components reject or silently rewrite. Each rule names its source.
 * Structural checks (non-negative numbers, integers) are the schema's job; this is cross-field.
 */
export function timerIssues(t: Timers): TimerIssue[] {
  const issues: TimerIssue[] = [];
  const add = (fields: string[], message: string) => issues.push({ fields, message });

  // etcd refuses an election timeout shorter than 5 heartbeats (etcd server/config: "election-timeout
  // should be at least as 5 times as heartbeat-interval").
  if (t.etcd.electionMs < 5 * t.etcd.heartbeatMs) {
    add(['etcd.electionMs', 'etcd.heartbeatMs'], `expected etcd.electionMs (${t.etcd.electionMs} ms) ≥ 5 × etcd.heartbeatMs (${t.etcd.heartbeatMs} ms); etcd refuses to start otherwise`);
  }
  // etcd raises any lease TTL below minTTL = 1.5 × election timeout (etcd server.go: minTTL =
  // (3*ElectionTicks)/2 heartbeats): a shorter Talos session TTL would not be what is measured.
  const minTtlS = Math.ceil((1.5 * t.etcd.electionMs) / 1000);
  if (t.talosVip.sessionTtlS < minTtlS) {
    add(['talosVip.sessionTtlS', 'etcd.electionMs'], `expected talosVip.sessionTtlS ≥ ${minTtlS} s (etcd raises any lease TTL below 1.5 × etcd.electionMs = ${t.etcd.electionMs} ms), got ${t.talosVip.sessionTtlS} s`);
  }
  if (t.talosVip.campaignRetryS >= t.talosVip.sessionTtlS) {
    add(['talosVip.campaignRetryS', 'talosVip.sessionTtlS'], `expected talosVip.campaignRetryS (${t.talosVip.campaignRetryS} s) < talosVip.sessionTtlS (${t.talosVip.sessionTtlS} s)`);
  }

  // client-go NewLeaderElector (k8s.io/client-go/tools/leaderelection/leaderelection.go):
  // leaseDuration > renewDeadline, renewDeadline > JitterFactor(1.2) × retryPeriod.
  const kv = t.kubeVip;
  if (!(kv.renewDeadlineS < kv.leaseDurationS)) {
    add(['kubeVip.renewDeadlineS', 'kubeVip.leaseDurationS'], `expected kubeVip.renewDeadlineS (${kv.renewDeadlineS} s) < kubeVip.leaseDurationS (${kv.leaseDurationS} s); client-go's leader election refuses it otherwise`);
  }
  if (!(kv.renewDeadlineS > 1.2 * kv.retryPeriodS)) {
    add(['kubeVip.retryPeriodS', 'kubeVip.renewDeadlineS'], `expected 1.2 × kubeVip.retryPeriodS (${kv.retryPeriodS} s) < kubeVip.renewDeadlineS (${kv.renewDeadlineS} s); client-go's leader election refuses it otherwise`);
  }
  if (kv.retryPeriodS <= 0) add(['kubeVip.retryPeriodS'], `expected > 0, got ${kv.retryPeriodS}`);
  if (kv.arpRateMs < 500) {
    add(['kubeVip.arpRateMs'], `expected ≥ 500 ms (kube-vip pkg/arp resets lower rates to 3000 ms), got ${kv.arpRateMs} ms`);
  }

  // memberlist: a probe must time out before the next one is due (memberlist state.go probeNode).
  const ml = t.metallb;
  if (ml.probeTimeoutMs >= ml.probeIntervalMs) {
    add(['metallb.probeTimeoutMs', 'metallb.probeIntervalMs'], `expected metallb.probeTimeoutMs (${ml.probeTimeoutMs} ms) < metallb.probeIntervalMs (${ml.probeIntervalMs} ms)`);
  }
  if (ml.suspicionMult < 1) add(['metallb.suspicionMult'], `expected ≥ 1, got ${ml.suspicionMult}`);

  // RFC 4271 §4.2/§10: hold time 0 or ≥ 3 s; keepalive one third of the hold time.
  for (const g of ['bgp', 'cilium'] as const) {
    const b = t[g];
    if (b.holdS !== 0 && b.holdS < 3) add([`${g}.holdS`], `expected 0 or ≥ 3 s (RFC 4271 §4.2), got ${b.holdS} s`);
    if (b.holdS !== 0 && b.holdS < 3 * b.keepaliveS) {
      add([`${g}.holdS`, `${g}.keepaliveS`], `expected ${g}.holdS (${b.holdS} s) = 0 or ≥ 3 × ${g}.keepaliveS (${b.keepaliveS} s)`);
    }
    if (b.connectRetryS < 1) add([`${g}.connectRetryS`], `expected ≥ 1 s, got ${b.connectRetryS} s`);
  }

  // FRR bfdd accepts intervals 10–60000 ms and a detect multiplier 2–255 (FRR docs bfd.rst).
  for (const k of ['transmitMs', 'receiveMs'] as const) {
    const v = t.bfd[k];
    if (v < 10 || v > 60000) add([`bfd.${k}`], `expected 10–60000 ms (FRR bfdd range), got ${v}`);
  }
  if (t.bfd.detectMultiplier < 2 || t.bfd.detectMultiplier > 255) {
    add(['bfd.detectMultiplier'], `expected 2–255 (FRR bfdd range), got ${t.bfd.detectMultiplier}`);
  }

  const h = t.haproxy;
  if (h.checkIntervalMs < 1) add(['haproxy.checkIntervalMs'], `expected ≥ 1 ms, got ${h.checkIntervalMs}`);
  if (h.fall < 1) add(['haproxy.fall'], `expected ≥ 1, got ${h.fall}`);
  if (h.rise < 1) add(['haproxy.rise'], `expected ≥ 1, got ${h.rise}`);
  if (h.checkTimeoutMs > h.checkIntervalMs) {
    add(['haproxy.checkTimeoutMs', 'haproxy.checkIntervalMs'], `expected haproxy.checkTimeoutMs (${h.checkTimeoutMs} ms) ≤ haproxy.checkIntervalMs (${h.checkIntervalMs} ms): a check must end before the next starts`);
  }

  const kp = t.kubePrism;
  if (kp.healthTimeoutS > kp.healthIntervalS) {
    add(['kubePrism.healthTimeoutS', 'kubePrism.healthIntervalS'], `expected kubePrism.healthTimeoutS (${kp.healthTimeoutS} s) ≤ kubePrism.healthIntervalS (${kp.healthIntervalS} s)`);
  }

  if (t.kubernetes.nodeMonitorGraceS < 1) add(['kubernetes.nodeMonitorGraceS'], `expected ≥ 1 s, got ${t.kubernetes.nodeMonitorGraceS}`);

  const a = t.arp;
  if (a.baseReachableS < 1) add(['arp.baseReachableS'], `expected ≥ 1 s, got ${a.baseReachableS}`);
  if (a.ucastSolicit < 1) add(['arp.ucastSolicit'], `expected ≥ 1, got ${a.ucastSolicit}`);
  if (a.retransMs < 10) add(['arp.retransMs'], `expected ≥ 10 ms, got ${a.retransMs}`);
  return issues;
}
