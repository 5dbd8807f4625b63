/**
 * Control-plane mechanism `talos-vip`: Talos' native shared IP (machine.network.interfaces[].vip,
 * Talos ≤ 1.11; the Layer2VIPConfig document from 1.12). All control planes campaign in an etcd
 * election (session lease, key `talos:v1:vip:election:<ip>`); the winner adds the VIP to its link
 * and sends a gratuitous ARP. The sim runs the emulated operator (./agent.ts) on every control
 * plane against the lab's real etcd cluster; a real cluster gets the machine-config patch of
 * ./talos-patch.ts (both schema generations), and its removal when the strategy changes.
 *
 * Expected client-seen outage (API target), from `timers.talosVip` (session TTL T, campaign retry
 * C), `timers.etcd.electionMs` (E) and `timers.arp` — every term from the sources in
 * ./agent.ts:
 * - graceful shutdown: the holder removes the VIP and resigns (deletes its key) before its etcd
 *   stops; the next candidate is already blocked in Campaign watching that key, wins at once and
 *   adds the VIP + GARP → ~0.1 s. Max: C (a candidate whose campaign had just failed) + 1 s margin
 *   for the etcd round trips, `ip addr` and the GARP.
 * - crash / freeze / partition (and vip-loss-internal, a partition): nobody says goodbye; the
 *   holder's key goes when etcd expires its session lease: at last keepalive + T. Keepalives go
 *   out every T/3, so the last one was 0…T/3 before the fault → expiry T−T/3 … T after it. If the
 *   victim was also the etcd raft leader, the survivors first elect a new leader (up to 2E: the
 *   randomized election timeout) and the new leader's lessor extends every lease by E on
 *   promotion (etcd server lessor.Promote(electionTimeout)), so up to T + 3E. etcd's lessor checks
 *   expiry every 500 ms. Band [T − T/3, T + 3E + 0.5 s + C + 1 s margin].
 * - garp-ignored: the crash band, and the router keeps the dead holder's MAC until its neighbour
 *   entry fails: REACHABLE ≤ 1.5 × base_reachable_time, DELAY delay_first_probe_time, PROBE
 *   ucast_solicit × retrans_time, then a broadcast resolution the new holder answers.
 * Steps of the real operator that these bands need not carry, and why:
 * - the etcd health gate (a cached Healthy flag, first check 5 s after etcd starts, then every
 *   20 s): read only BEFORE campaigning. When the holder fails, the candidates that take over are
 *   already queued in Campaign; the gate delays only a node that (re)starts its campaign — a
 *   restored victim, or one whose session ended — which is not who restores the client's VIP.
 * - release on kube-apiserver loss: only when the kubelet stops listing the static pod (15 s
 *   refresh), which none of the drills does to a running node.
 * - the v1.11.x / ≤ v1.12.10 / ≤ v1.13.7 session cleanup after a cancelled campaign (a queued key
 *   left ≤ TTL): a graceful shutdown ends the campaign through the KubeletLifecycle teardown with
 *   the context live, so every release revokes; only removing the VIP operator from a running
 *   node cancels the context first (agent RPC `remove`), which no drill does.
 */
import type { DrillKind, Topology } from '../../model/types.js';
import type { ComponentSpec } from '../../emulation/agent/types.js';
import type { Band, Mechanism, MechanismContext } from '../types.js';
import { controlPlanes } from '../../emulation/net.js';
import { l2DrillIssue, l2ElectionBand, noPeerReason, secs as s, VIP_MARGIN_MS } from '../bands.js';
import type { FidelityNote } from '../types.js';
import type { TalosVipConfig } from './agent.js';
import { talosVipTimers } from './timers.js';
import { vipFiles } from './talos-patch.js';

/** etcd lessor: expired leases are looked for every 500 ms (server/lease/lessor.go runLoop). */
export const ETCD_LESSOR_TICK_MS = 500;

export function talosVipBands(t: Topology): { graceful: Band; crash: Band } {
  const { sessionTtlS, campaignRetryS } = t.timers.talosVip;
  const T = sessionTtlS * 1000;
  const C = campaignRetryS * 1000;
  const E = t.timers.etcd.electionMs;
  return {
    graceful: {
      min: 0,
      max: C + VIP_MARGIN_MS,
      basis: `the holder removes the VIP and resigns its etcd key; the next candidate, already waiting in the election, adds the VIP and sends a GARP at once; ≤ campaign retry ${s(C)} + ${s(VIP_MARGIN_MS)} margin`,
    },
    crash: {
      min: Math.round(T - T / 3),
      max: T + 3 * E + ETCD_LESSOR_TICK_MS + C + VIP_MARGIN_MS,
      basis:
        `the others wait for the holder's etcd session lease to expire: TTL ${s(T)} after its last keepalive (sent every TTL/3 = ${s(T / 3)}, so ${s(T - T / 3)}–${s(T)} after the fault); ` +
        `+ up to 3 × election timeout ${E} ms when the victim was also the etcd leader (re-election, then the new leader extends leases by one election timeout) ` +
        `+ lessor check ${ETCD_LESSOR_TICK_MS} ms + campaign retry ${s(C)} + ${s(VIP_MARGIN_MS)} margin`,
    },
  };
}

const ID = 'talos-vip';

/** Where the emulated operator (./agent.ts) and the lab around it differ from a Talos node (docs/fidelity.md). */
const FIDELITY: FidelityNote[] = [
  {
    id: 'talos-vip-shutdown-order',
    // v1alpha1_sequencer.go@v1.11.6 Shutdown: cordon + drain, then StopAllPods (KubeletLifecycle teardown → VIP release)
    text:
      'A Talos node shutting down cordons and drains before StopAllPods tears down the kubelet lifecycle, which releases the VIP; the sim releases it when the agent gets SIGTERM. ' +
      'The VIP moves earlier in wall-clock time after the shutdown starts; the client-seen outage is the same.',
    applies: (d) => d.target === 'api' && d.kind === 'graceful-shutdown',
  },
  {
    id: 'talos-vip-etcd-version',
    // lease/lessor.go@v3.4.30 and server/lease/lessor.go@v3.6.5: the same Promote/refresh and 500 ms expiry loop
    text:
      'The lab runs etcd 3.4 (Debian) where Talos 1.11.6 ships etcd 3.6.5 and client v3.6.4; the lease rules the crash band rests on (TTL, keepalive every TTL/3, Promote refresh on a leader change, 500 ms expiry loop) are the same in both. No effect expected.',
    applies: (d) => d.target === 'api' && ['crash', 'freeze', 'partition', 'vip-loss-internal', 'garp-ignored'].includes(d.kind),
  },
];

export const talosVip: Mechanism = {
  id: ID,
  family: 'talos',
  timers: [talosVipTimers],
  components: { 'talos-vip': new URL('./agent.js', import.meta.url).href },
  cp: {
    id: ID,
    kind: 'cp',
    family: 'talos',
    title: 'Talos VIP',
    summary:
      'Every control plane campaigns for the VIP in an etcd election (Go concurrency.Election, key talos:v1:vip:election:<ip>) while its etcd is healthy, ' +
      'on a session lease with a 60 s TTL (kept alive every 20 s). The winner adds the VIP to its link and sends one gratuitous ARP: one node takes all API ' +
      'traffic (active-passive). On a graceful shutdown the holder releases the address and resigns, so the next candidate takes over within a fraction of a ' +
      'second; after a crash, freeze or partition the others must wait for the holder\'s lease to expire (40–60 s after the fault, by design, to avoid two ' +
      'holders). The VIP exists only once etcd is up. Sim: emulated operator with the upstream election semantics, against the lab\'s real etcd.',
    sources: [
      'siderolabs/talos internal/app/machined/pkg/controllers/network/operator/vip.go @v1.11.6 and @v1.13.9: preconditions, election key, campaign retry 1 s, release on teardown/etcd/kube-apiserver static pod loss; sess.Close (@v1.11.6) vs RevokeSession on a detached context (@v1.12.11, @v1.13.8+, @v1.14.0-beta.1)',
      'siderolabs/talos internal/app/machined/pkg/system/services/etcd.go HealthSettings (5 s / 20 s / 15 s) + system/health/check.go Run @v1.11.6/@v1.13.9: the cached etcd Healthy flag the campaign waits for',
      'siderolabs/talos internal/app/machined/pkg/controllers/k8s/kubelet_static_pod.go @v1.11.6/@v1.13.9: static pod statuses refreshed every 15 s, destroyed only when the kubelet stops listing the pod',
      'siderolabs/talos internal/app/machined/pkg/runtime/v1alpha1/v1alpha1_sequencer.go @v1.11.6 Shutdown: StopAllPods (KubeletLifecycle teardown, VIP finalizer) before the services (etcd) stop',
      'go.etcd.io/etcd/client/v3/concurrency session.go (default TTL 60 s), election.go (Campaign/Resign), key.go (waitDeletes) — etcd v3.5',
      'go.etcd.io/etcd/client/v3 lease.go: keepalive every TTL/3, keepalive channel closed when no response for a TTL',
      'etcd server lease/lessor.go (v3.4/v3.5): expiry checked every 500 ms, Promote(electionTimeout) extends leases on leader change',
      'Talos docs talos-guides/network/vip.md: VIP available only after etcd bootstrap; failover near-instant on graceful shutdown, up to a minute on crash',
      'Linux Documentation/networking/ip-sysctl.rst neigh/default/* (garp-ignored band)',
    ],
    traits: { l2: true, bgp: false, spread: 'active-passive', endpoint: 'vip' },
    holders: 'address',
    articleClaims: ['graceful-near-instant', 'crash-about-a-minute', 'api-active-passive'],
    fidelity: FIDELITY,

    render(ctx: MechanismContext) {
      const t = ctx.topology;
      const components: Record<string, ComponentSpec[]> = {};
      for (const n of controlPlanes(t)) {
        const config: TalosVipConfig = { vip: t.vip, link: n.interfaces[0]!.ifname };
        components[n.name] = [{ kind: 'talos-vip', config: config as unknown as Record<string, unknown> }];
      }
      // Talos puts the cluster endpoint (here the VIP) among KubePrism's upstreams
      for (const n of t.nodes) (components[n.name] ??= []).push({ kind: 'kubeprism', config: { clusterEndpoint: `${t.vip}:${t.apiPort}` } });
      return { files: vipFiles(t), sim: { components } };
    },

    expectedOutage(drill: DrillKind, ctx: MechanismContext): Band | null {
      if (drill === 'baseline') return null;
      if (noPeerReason(controlPlanes(ctx.topology).length, ID)) return null;
      return l2ElectionBand(drill, talosVipBands(ctx.topology), ctx.topology.timers.arp);
    },

    drillIssue: l2DrillIssue(ID, 'cp'),
  },
};
