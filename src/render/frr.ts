/**
 * FRR configuration renderers (pure: topology in, frr.conf text out), used by the sim provider
 * (one FRR instance per router / node speaker, `-N <instance>`) and by the docker provider's FRR
 * router container, and checked in the contract tests with FRR's own parser (`vtysh -C -f`).
 *
 * Router: `bgp listen range` over its node segments (dynamic neighbours: every node speaker may
 * connect, as MetalLB/Cilium speakers do), eBGP peers to the other routers (ToR ↔ edge),
 * `maximum-paths` for ECMP, `bestpath as-path multipath-relax` so routes from different ASNs
 * (three ToRs) share one ECMP group, `redistribute connected` so racks and the uplink are known
 * across the fabric, optional BFD on the node sessions.
 * Node speaker: one eBGP session to the node's gateway router, announcing what the mechanism adds
 * at run time (`network X/32`, with `no bgp network import-check`: the /32 is not in the node's
 * RIB, as with MetalLB's FRR mode, which announces service IPs the kernel does not route).
 */
import type { Node, Router, Topology } from '../model/types.js';

export interface BgpTimers {
  keepaliveS: number;
  holdS: number;
  connectRetryS: number;
}

export interface BfdOptions {
  transmitMs: number;
  receiveMs: number;
  detectMultiplier: number;
}

/** The BFD profile name every renderer uses. */
export const BFD_PROFILE = 'lab';

/**
 * The BFD profile block, with no `exit` lines: every daemon reads the whole file (`-f`), and a
 * daemon that does not know `bfd` (bgpd, zebra, staticd) stays at the config level while it skips
 * the block, so an `exit` there would leave configuration mode and every later line — `router bgp`
 * included — would fail in bgpd ("No such command", FRR 8.4: a speaker with BFD came up with no
 * neighbour at all). Without them bfdd leaves the profile on the next top-level command by itself
 * (FRR's file reader retries a failed line in the parent nodes), as vtysh does.
 */
function bfdProfile(b: BfdOptions): string[] {
  return ['bfd', ` profile ${BFD_PROFILE}`, `  receive-interval ${b.receiveMs}`, `  transmit-interval ${b.transmitMs}`, `  detect-multiplier ${b.detectMultiplier}`, '!'];
}

export interface RouterFrrOptions {
  /** timers of the router's side of node sessions (the negotiated hold time is the smaller of both) */
  timers?: BgpTimers;
  bfd?: BfdOptions | null;
  maximumPaths?: number;
}

export function renderRouterFrr(r: Router, t: Topology, o: RouterFrrOptions = {}): string {
  const timers = o.timers ?? t.timers.bgp;
  const bfd = o.bfd === undefined ? (t.timers.bfd.enabled ? t.timers.bfd : null) : o.bfd;
  const L: string[] = ['frr version 8.4', 'frr defaults datacenter', `hostname ${r.name}`, 'log stdout informational', 'service integrated-vtysh-config', '!'];
  if (bfd) L.push(...bfdProfile(bfd));
  L.push(`router bgp ${r.asn}`, ` bgp router-id ${r.routerId}`, ' no bgp ebgp-requires-policy', ' bgp bestpath as-path multipath-relax');
  const nodeSegs = t.segments.filter((s) => r.nodeSegments.includes(s.name));
  if (nodeSegs.length) {
    L.push(' neighbor NODES peer-group', ' neighbor NODES remote-as external');
    L.push(` neighbor NODES timers ${timers.keepaliveS} ${timers.holdS}`, ` neighbor NODES timers connect ${timers.connectRetryS}`);
    if (bfd) L.push(` neighbor NODES bfd profile ${BFD_PROFILE}`);
    for (const s of nodeSegs) L.push(` bgp listen range ${s.cidr} peer-group NODES`);
  }
  for (const p of r.peers) {
    L.push(` neighbor ${p.ip} remote-as ${p.asn}`, ` neighbor ${p.ip} timers ${timers.keepaliveS} ${timers.holdS}`, ` neighbor ${p.ip} timers connect 1`);
  }
  L.push(' address-family ipv4 unicast', '  redistribute connected', `  maximum-paths ${o.maximumPaths ?? 64}`, ' exit-address-family', 'exit', '!');
  return L.join('\n') + '\n';
}

/** The router a node's speaker peers with: the router that is the gateway of the node's LAN. */
export function nodeRouter(n: Node, t: Topology): Router {
  const r = t.routers.find((x) => x.interfaces.some((i) => i.ip === n.gateway));
  if (!r) throw new Error(`node ${n.name}: no router owns its gateway ${n.gateway}`);
  return r;
}

export interface SpeakerFrrOptions {
  timers: BgpTimers;
  bfd?: BfdOptions | null;
  /** prefixes announced from the start (e.g. kube-vip BGP mode's VIP) */
  prefixes?: string[];
  /** who owns this speaker (a comment: pitfall 3 says only one can) */
  owner: string;
}

export function renderSpeakerFrr(n: Node, t: Topology, o: SpeakerFrrOptions): string {
  const r = nodeRouter(n, t);
  const peer = r.interfaces.find((i) => i.segment === n.rack)!.ip;
  const L: string[] = [`! BGP speaker of ${o.owner} on ${n.name}`, 'frr version 8.4', 'frr defaults datacenter', `hostname ${n.name}`, 'log stdout informational', 'service integrated-vtysh-config', '!'];
  if (o.bfd) L.push(...bfdProfile(o.bfd));
  L.push(`router bgp ${n.asn}`, ` bgp router-id ${n.ip}`, ' no bgp ebgp-requires-policy', ' no bgp network import-check');
  L.push(` neighbor ${peer} remote-as ${r.asn}`, ` neighbor ${peer} timers ${o.timers.keepaliveS} ${o.timers.holdS}`, ` neighbor ${peer} timers connect ${o.timers.connectRetryS}`);
  if (o.bfd) L.push(` neighbor ${peer} bfd profile ${BFD_PROFILE}`);
  L.push(' address-family ipv4 unicast');
  for (const p of o.prefixes ?? []) L.push(`  network ${p}`);
  L.push(' exit-address-family', 'exit', '!');
  return L.join('\n') + '\n';
}
