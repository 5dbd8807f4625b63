/**
 * Fidelity notes of the emulation kit and of the lab's own client: what every strategy's runs
 * share, whatever its mechanisms (the mechanisms' own notes sit on their roles, `Role.fidelity`).
 * Each note says the difference and its effect on the measured outage; docs/fidelity.md has the
 * long form under the note's id. The selection per run is src/strategies/fidelity.ts.
 */
import type { DrillKind } from '../model/types.js';
import type { FidelityNote } from '../strategies/types.js';

/** drills after which a node is silent to its peers (its pods' endpoints stay until the node is declared dead) */
const SILENT: ReadonlySet<DrillKind> = new Set(['crash', 'freeze', 'partition', 'vip-loss-internal', 'garp-ignored']);
const injected = (k: DrillKind) => k !== 'baseline';

export const KIT_NOTES: readonly FidelityNote[] = [
  {
    id: 'kit-echo-event-loop',
    // the echo "pod" is a component of the node agent (src/emulation/echo.ts), one Node.js process per node
    text:
      'The echo "pod" runs in its node agent\'s Node.js process, sharing one event loop with the emulated speaker, kube-proxy, KubePrism and kubelet client; ' +
      'a real pod has its own process and CPU share. On a loaded host the sim answers late: latency and outages read longer than in reality (up to seconds at load average > 10), never shorter. ' +
      'How long the lab\'s processes waited for a CPU during the outage is recorded (cpuWait); a run over its band by no more than that is marked host load.',
    applies: (d) => d.target === 'service',
  },
  {
    id: 'kit-client-event-loop',
    scope: 'always',
    // src/traffic/agent.ts: probe, load generator and streams are one process on the client host
    text:
      'The client\'s outage probe, load generator and streams share one Node.js event loop: when the host is CPU-starved, failed probes finish in batches and ' +
      'successful ones past their timeout, so the measured outage can be longer than the mechanism\'s (by up to seconds on a busy 2-core host), never shorter.',
    applies: (d) => injected(d.kind),
  },
  {
    id: 'kit-probe-source-ports',
    scope: 'always',
    // src/traffic/outage.ts PortCycle: one (source port, destination) pair every 317 s at 10 ms
    text:
      'The probe binds its own source ports (1024–32767, a port comes back after ≈ 317 s at 10 ms) and so stands for many clients. A single client opening more than ≈ 26 new ' +
      'connections/s to one Service reuses ports within the 120 s SYN_SENT conntrack timeout and would see partial failures up to ≈ 120 s after the dead endpoint is removed: such a client sees longer outages than measured here.',
    applies: (d) => d.target === 'service' && SILENT.has(d.kind),
  },
  {
    id: 'kit-veth-latency',
    text:
      'Every link is a veth pair on one host: a round trip takes microseconds, not the 0.1–1 ms of a real LAN, so latency figures are lower than on hardware; KubePrism\'s ' +
      'latency tier of an upstream is taken from locality (own node = tier 0) instead of the measured dial. Outage figures are not affected beyond the round trips.',
  },
  {
    id: 'kit-node-lifecycle',
    // src/emulation/kube-proxy.ts NodeLifecycle, src/emulation/endpoints.ts
    text:
      'Node death → endpoint removal is emulated from its parts (kubelet Lease every 10–10.4 s, node lifecycle pass every 5 s, grace 50 s, kube-proxy minSyncPeriod 1 s) by every node on one shared grid, ' +
      'not by the kube-controller-manager leader: when the victim hosts that leader a real cluster removes the endpoints ≈ 15–20 s later (the sim is shorter by that much); kube-proxy\'s periodic resync is not emulated (≤ 1 s, sim earlier).',
    applies: (d) => d.target === 'service' && SILENT.has(d.kind),
  },
];

/** Roles whose Services are announced by the kit's `bgp-services` component (./bgp-announcer.ts) list this one. */
export const BGP_ANNOUNCER_NOTE: FidelityNote = {
  id: 'bgp-static-announcements',
  text:
    'Each node\'s speaker announces the Service /32s decided when the strategy is applied (selected, not excluded, ETP Local only with a local pod) and withdraws them only when it stops; ' +
    'MetalLB and Cilium also withdraw when the local endpoint stops serving. No shipped drill stops a pod without its node: no effect on them.',
  applies: (d) => d.target === 'service' && d.kind !== 'baseline',
};
