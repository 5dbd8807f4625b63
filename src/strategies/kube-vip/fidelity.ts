/**
 * Fidelity notes of the emulated kube-vip (./agent.ts), shared by its ARP and BGP mechanisms and
 * both roles. Each says where the stand-in differs from the pinned release and what that does to
 * the measured outage; docs/fidelity.md has the long form under the id.
 */
import type { DrillKind } from '../../model/types.js';
import type { FidelityNote } from '../types.js';
import { bfdFor } from '../bands.js';
import { releaseOf } from './settings.js';

/** faults after which the holder is silent but may still run (it loses its lease while alive: freeze, partition) */
const HELD: ReadonlySet<DrillKind> = new Set(['freeze', 'partition', 'vip-loss-internal']);
const SILENT: ReadonlySet<DrillKind> = new Set(['crash', 'freeze', 'partition', 'vip-loss-internal']);

/** kube-vip alternates request and reply gratuitous ARP (pkg/vip/arp.go); the sim sends arping's request form */
export const KUBE_VIP_GARP_FORM: FidelityNote = {
  id: 'kube-vip-garp-form',
  text:
    'Gratuitous ARP is sent as iputils arping\'s request form only; kube-vip alternates a request and a reply (target MAC = its own). ' +
    'Routers that accept gratuitous ARP take either form: no effect, except on gear that ignores requests but accepts replies (not emulated; such gear would heal sooner than the garp-ignored band).',
  applies: (d) => d.kind === 'garp-ignored' || d.kind === 'graceful-shutdown' || SILENT.has(d.kind),
};

/** lb_enable: IPVS upstream, nftables numgen DNAT in the sim */
export const KUBE_VIP_IPVS: FidelityNote = {
  id: 'kube-vip-ipvs',
  text:
    'With lb_enable the holder spreads API connections with nftables numgen DNAT + masquerade (the lab kernel has no IPVS); kube-vip uses IPVS, which keeps its own connection table and timeouts. ' +
    'How soon a dead control plane stops getting new connections can differ: direction and size not established.',
  applies: (d, c) => d.target === 'api' && d.kind !== 'baseline' && c.ref.options.kubeVipLbEnable === true,
};

/** v1.2.0–v1.2.3 hang after losing the global Services lease (./versions.ts onLostServicesLease 'hang') */
export const KUBE_VIP_SERVICES_HANG: FidelityNote = {
  id: 'kube-vip-services-hang',
  text:
    'kube-vip v1.2.0–v1.2.3 stop but never exit after losing the global Services lease (reproduced by its reporters on v1.2.3; the stalling statement is not pinned in source). ' +
    'A held fault makes the holder lose the lease while running: it does not come back by itself; with a single eligible node the Service stays down until the pod is deleted. The lab reports a hung process with the drill that left it (`leftStuck`, a run note) and deletes its pod before the next drill, checking again once the next drill has picked its victim (a thawed holder loses the lease only when its renewal round\'s RenewDeadline runs out, after its own drill was checked), so a later drill is never measured against a node that can no longer take over.',
  applies: (d, c) => d.target === 'service' && HELD.has(d.kind) && releaseOf(c.topology).onLostServicesLease === 'hang',
};

/** the Lease through the emulated API server (./agent.ts ApiLeaseLock) */
export const KUBE_VIP_LEASE_TRANSPORT: FidelityNote = {
  id: 'kube-vip-lease-transport',
  text:
    'Lease reads and writes go to the API-server stand-in as JSON over HTTP/1.1 keep-alive (kube-vip: protobuf over one HTTP/2 connection), through the node\'s KubePrism for the API VIP; the Services Lease sticks to one randomly picked API server. ' +
    'A failed request re-dials, so KubePrism re-picks as it would for a real client: no effect on the shipped drills.',
  applies: (d) => SILENT.has(d.kind) || d.kind === 'graceful-shutdown',
};

/** BGP mode: GoBGP in kube-vip, FRR bgpd/bfdd as the node's speaker in the sim */
export const KUBE_VIP_BGP_SPEAKER: FidelityNote = {
  id: 'kube-vip-bgp-speaker',
  text:
    'kube-vip\'s GoBGP speaker is stood in for by the node\'s FRR bgpd with kube-vip\'s timers (hold 30 s, keepalive 10 s, connect retry 10 s by default): the router\'s hold-time rule is RFC 4271\'s either way and a graceful stop closes the session. No effect expected.',
  applies: (d) => d.kind !== 'baseline',
};

/** BFD intervals handed to GoBGP unchanged (pkg/bgp/peers.go@v1.2.3): unit not verified */
export const KUBE_VIP_BFD_UNIT: FidelityNote = {
  id: 'kube-vip-bfd-unit',
  text:
    'kube-vip (v1.2.2+) passes its BFD intervals to GoBGP unchanged; whether GoBGP reads them as milliseconds or microseconds was not verified. The sim runs FRR bfdd in milliseconds, so detection is multiplier × interval as configured; on a real cluster the effect is unknown.',
  applies: (d, c) => SILENT.has(d.kind) && bfdFor(c.topology, c.ref) !== null,
};
