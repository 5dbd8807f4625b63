/**
 * The lab's L2 segments inside the docker runtime's own containers, when the Docker networks are
 * `--internal`. Pure: topology in, names, addresses and the shell script each container runs.
 *
 * Why an overlay. On an internal network moby adds, in DOCKER-ISOLATION-STAGE-1,
 * `-i <bridge> ! -d <subnet> -j DROP` and `-o <bridge> ! -s <subnet> -j DROP` (libnetwork's bridge
 * driver, `setINC` for internal networks, Docker 20.10). With `br_netfilter` (built into many
 * kernels, loaded by Docker itself elsewhere; `bridge-nf-call-iptables=1`) frames bridged between
 * two containers of one network pass iptables' FORWARD too, so every ROUTED packet is dropped on
 * the bridge: the client's packet to the VIP crosses the uplink bridge with a destination outside
 * the uplink's subnet, a node's answer crosses the LAN bridge towards a client outside the LAN.
 * Without br_netfilter nothing is dropped. The lab must work either way and may not touch the
 * host's firewall, so the lab's segments do not ride on the Docker bridge as IPv4 at all:
 *
 *  - every container keeps Docker's link (the UNDERLAY) with the lab address Docker assigned
 *    (fixed, from the lab's addressing: `docker inspect` shows the lab's plan); the script moves
 *    that IPv4 address off it and gives it an IPv6 ULA of the segment instead;
 *  - the lab's link is a VXLAN device (the OVERLAY, one VNI per segment) over those ULAs, with
 *    the lab address, a fixed MAC and MTU 1500; broadcast (ARP, gratuitous ARP) is replicated to
 *    every other host of the segment (static all-zeros FDB entries), unicast learned as usual.
 *    On the Docker bridge only UDP/IPv6 between addresses of one network crosses: moby installs
 *    no ip6tables rule for networks without IPv6, so the frames pass with br_netfilter loaded or
 *    not. The underlay's MTU is 1570 (Docker network option) so the overlay keeps 1500: VXLAN
 *    over IPv6 adds 70 bytes (outer IPv6 40 + UDP 8 + VXLAN 8 + inner Ethernet 14; RFC 7348).
 *  - the overlay is named `tl<ifname>` (`tleth0`): Docker names its links `eth<N>` and finds them
 *    BY NAME when it disconnects or stops a container (libnetwork osl `nwIface.Remove`:
 *    LinkByName(DstName), then moves the link back to the host), so no lab device may take a name
 *    Docker gave. The docker provider hands the emulated kind a topology with these names.
 *
 * The script is idempotent: it runs at every container start (a fresh network namespace: a
 * crash and `docker start` are a reboot) and again after `docker network connect` (a link flap:
 * the overlay and its addresses survive the underlay's disconnect, exactly as a link that went
 * down keeps its addresses; Docker's new link, whatever its name, is found by the lab address it
 * carries and becomes the underlay). The last step marks the namespace ready (an alias on `lo`).
 */
import type { Host, Topology } from '../../../model/types.js';
import { LabError } from '../../../util/errors.js';
import { allHosts, ip2n } from './network.js';
import { hostSysctls } from '../netns/network.js';

/** the lab link's MTU (the sim's veths: 1500) */
export const OVERLAY_MTU = 1500;
/** Docker's link under it: + outer IPv6 (40) + UDP (8) + VXLAN (8) + inner Ethernet (14), RFC 7348 §5 */
export const UNDERLAY_MTU = OVERLAY_MTU + 70;
/** IANA's VXLAN port (RFC 7348 §5) */
export const VXLAN_PORT = 4789;
/** an IPv6 ULA /48 (RFC 4193) for the underlays: fd74:6c61:62 = "tlab" */
export const ULA_PREFIX = 'fd74:6c61:62';
export const READY_ALIAS = 'tlab-net-ready';
export const OVERLAY_PREFIX = 'tl';

/** the overlay's name for a lab ifname (≤ 15 chars, IFNAMSIZ) */
export function overlayName(ifname: string): string {
  const n = `${OVERLAY_PREFIX}${ifname}`;
  if (n.length > 15) throw new LabError(`interface name ${ifname}: ${n} is longer than 15 characters (IFNAMSIZ)`);
  return n;
}

/** The topology with every host's interfaces renamed to their overlay names (addresses unchanged). */
export function overlayTopology(t: Topology): Topology {
  const ren = <H extends Host>(h: H): H => ({ ...h, interfaces: h.interfaces.map((i) => ({ ...i, ifname: overlayName(i.ifname) })) });
  return {
    ...t,
    routers: t.routers.map(ren),
    nodes: t.nodes.map(ren),
    clients: t.clients.map(ren),
    ...(t.loadBalancer ? { loadBalancer: ren(t.loadBalancer) } : {}),
  };
}

const segIndex = (t: Topology, seg: string) => {
  const i = t.segments.findIndex((s) => s.name === seg);
  if (i < 0) throw new LabError(`no segment ${seg} in topology ${t.name}`);
  return i;
};

/** the underlay ULA of a lab address on its segment: fd74:6c61:62:<segment #>::<ipv4 as two hex groups> */
export function underlayAddress(t: Topology, seg: string, ip: string): string {
  const n = ip2n(ip);
  return `${ULA_PREFIX}:${segIndex(t, seg).toString(16)}::${Math.floor(n / 65536).toString(16)}:${(n % 65536).toString(16)}`;
}

/** the VXLAN network identifier of a segment (distinct per segment: a router holds several on one UDP port) */
export function vniOf(t: Topology, seg: string): number {
  return 100 + segIndex(t, seg);
}

/** the overlay's MAC: locally administered (02:…), from the lab address, stable across restarts */
export function overlayMac(ip: string): string {
  return ['02', '74', ...ip.split('.').map((o) => Number(o).toString(16).padStart(2, '0'))].join(':');
}

/** Docker's link's MAC for a fixed address (02:42 + the IPv4 bytes) */
export function underlayMac(ip: string): string {
  return ['02', '42', ...ip.split('.').map((o) => Number(o).toString(16).padStart(2, '0'))].join(':');
}

export interface OverlayLink {
  /** the lab's (overlay) interface name */
  ifname: string;
  segment: string;
  /** lab address/prefix: on Docker's link at start, moved to the overlay */
  address: string;
  ula: string;
  vni: number;
  mac: string;
  /** the ULAs of every other host on the segment (broadcast replication) */
  peers: string[];
}

/** `h` must come from the overlay topology (its ifnames are the overlay names). */
export function overlayLinks(t: Topology, h: Host): OverlayLink[] {
  return h.interfaces.map((i) => ({
    ifname: i.ifname,
    segment: i.segment,
    address: `${i.ip}/${i.prefixLen}`,
    ula: underlayAddress(t, i.segment, i.ip),
    vni: vniOf(t, i.segment),
    mac: overlayMac(i.ip),
    peers: allHosts(t)
      .flatMap((o) => o.interfaces.filter((x) => x.segment === i.segment && x.ip !== i.ip))
      .map((x) => underlayAddress(t, x.segment, x.ip)),
  }));
}

// the sysctls of a host: the sim's rule (one rule for every runtime)
export { hostSysctls };

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** The idempotent network script of one host (`h` from the overlay topology). */
export function overlayScript(t: Topology, h: Host): string {
  const lines = [
    'set -eu',
    'w() { echo "$2" > "/proc/sys/$1"; }',
    `ip link set dev lo alias ${q('booting')}`,
    'ip link set dev lo up',
    'w net/ipv6/conf/all/disable_ipv6 0',
    'w net/ipv6/conf/default/disable_ipv6 0',
  ];
  overlayLinks(t, h).forEach((l, k) => {
    const tag = `tlab-u${k}`;
    lines.push(
      `# ${l.ifname} on ${l.segment}: Docker's link holding ${l.address} (not the overlay) is the underlay`,
      `u=$(ip -o -4 addr show | awk -v a=${q(l.address)} -v o=${q(l.ifname)} '{ n = $2; sub(/@.*/, "", n) } $4 == a && n != o { print n; exit }')`,
      `[ -n "$u" ] || u=$(ip -o link show | awk -v t=${q(tag)} '$0 ~ ("alias " t "$") { n = $2; sub(/@.*/, "", n); sub(/:$/, "", n); print n; exit }')`,
      `[ -n "$u" ] || { echo ${q(`tlab-net: no Docker link holds ${l.address}`)} >&2; exit 1; }`,
      'ip -4 addr flush dev "$u"',
      // the underlay's MAC from the lab address, as Docker 20.10 derives it (libnetwork
      // GenerateMACFromIP: 02:42 + the IPv4 bytes): a re-created link keeps the MAC its peers'
      // IPv6 neighbour entries name, whatever the engine did
      `[ "$(cat /sys/class/net/$u/address)" = ${underlayMac(l.address.split('/')[0]!)} ] || { ip link set dev "$u" down; ip link set dev "$u" address ${underlayMac(l.address.split('/')[0]!)}; }`,
      `ip link set dev "$u" alias ${q(tag)}`,
      'w "net/ipv6/conf/$u/disable_ipv6" 0',
      `ip link set dev "$u" mtu ${UNDERLAY_MTU} up`,
      `ip -6 addr replace ${l.ula}/64 dev "$u" nodad`,
      `if ! ip link show dev ${q(l.ifname)} >/dev/null 2>&1; then`,
      `  ip link add ${q(l.ifname)} address ${l.mac} mtu ${OVERLAY_MTU} type vxlan id ${l.vni} local ${l.ula} dstport ${VXLAN_PORT}`,
      ...l.peers.map((p) => `  bridge fdb append 00:00:00:00:00:00 dev ${q(l.ifname)} dst ${p}`),
      `  ip addr add ${l.address} dev ${q(l.ifname)}`,
      'fi',
      `ip link set dev ${q(l.ifname)} up`,
    );
  });
  if (h.gateway) lines.push(`ip route replace default via ${h.gateway}`);
  for (const [k, v] of Object.entries(hostSysctls(t, h))) lines.push(`w ${k} ${v}`);
  lines.push(`ip link set dev lo alias ${READY_ALIAS}`);
  return lines.join('\n') + '\n';
}
