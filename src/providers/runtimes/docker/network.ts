/**
 * The lab's segments as Docker networks — generic: whatever kind of node runs on them (real Talos
 * containers, emulated nodes in appliance containers). One bridge network per topology segment,
 * with the topology's subnet; Docker's gateway (the host's address on the bridge) moved off the
 * router's `.1`, and Docker's dynamic allocation (`IPRange`) confined to a small block holding no
 * host, VIP or Service-pool address, so nothing Docker does collides with an address the lab
 * moves around. Every container gets its fixed address from the plan.
 *
 * No segment is `--internal`. On an internal network moby adds, in DOCKER-ISOLATION-STAGE-1,
 * `-o <bridge> ! -s <subnet> -j DROP` and `-i <bridge> ! -d <subnet> -j DROP`
 * (moby integration/network/bridge/iptablesdoc/generated/usernet-internal.md; libnetwork's bridge
 * driver `setINC` in Docker 20.10). With `br_netfilter` loaded (Docker loads it; Kubernetes hosts
 * have it) frames bridged between two containers of one network go through iptables' FORWARD too,
 * so a client's packet to the VIP — on the uplink bridge its destination is NOT in the uplink's
 * subnet, it is routed by the lab router — is dropped there. A plain bridge network instead has
 * `-i <bridge> -o <bridge> -j ACCEPT` (inter-container communication, the default), which passes
 * the routed path. The segments that carry only lab traffic (uplink, fabric) keep Docker's NAT off
 * (`com.docker.network.bridge.enable_ip_masquerade=false`); the LANs keep it (Talos pulls its
 * images through it).
 */
import type Docker from 'dockerode';
import type { Host, Segment, Topology } from '../../../model/types.js';
import { LabError } from '../../../util/errors.js';

/** the Docker network MTU talosctl sets (`--mtu`, default 1500; pkg/provision/providers/docker/network.go `com.docker.network.driver.mtu`) */
export const DOCKER_MTU = 1500;
export const OPT_MTU = 'com.docker.network.driver.mtu';
export const OPT_MASQUERADE = 'com.docker.network.bridge.enable_ip_masquerade';

export const ip2n = (ip: string) => ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
export const n2ip = (n: number) => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
export function cidrRange(cidr: string): { base: number; size: number } {
  const [ip, len] = cidr.split('/');
  const size = 2 ** (32 - Number(len));
  return { base: Math.floor(ip2n(ip!) / size) * size, size };
}
export const inCidr = (ip: string, cidr: string) => {
  const r = cidrRange(cidr);
  const n = ip2n(ip);
  return n >= r.base && n < r.base + r.size;
};

/** Every host of the topology (routers, nodes, clients, the load balancer). */
export function allHosts(t: Topology): Host[] {
  return [...t.routers, ...t.nodes, ...t.clients, ...(t.loadBalancer ? [t.loadBalancer] : [])];
}

export function networkName(prefix: string, segment: string): string {
  return `${prefix}-${segment}`;
}
export function containerName(prefix: string, host: string): string {
  return `${prefix}-${host}`;
}
/** `tlab-smb-3f2a` → `smb-3f2a` (the lab id; src/orchestrator/ids.ts) */
export function idOfPrefix(prefix: string): string {
  return prefix.replace(/^tlab-/, '');
}

/**
 * Docker's side of one segment: its gateway (the host's bridge address — Docker would take `.1`,
 * which is the lab router's) and the block Docker may allocate dynamically (`IPRange`). Both avoid
 * every host address, the network and broadcast addresses, the VIP and the Service pool.
 */
export function dockerIpam(t: Topology, seg: Segment): { gateway: string; ipRange: string } {
  const { base, size } = cidrRange(seg.cidr);
  const taken = new Set<number>();
  for (const h of allHosts(t)) for (const i of h.interfaces) if (i.segment === seg.name) taken.add(ip2n(i.ip));
  if (inCidr(t.vip, seg.cidr)) taken.add(ip2n(t.vip));
  const pool = cidrRange(t.pool.cidr);
  const reserved = (n: number) => n === base || n === base + size - 1 || taken.has(n) || (n >= pool.base && n < pool.base + pool.size);
  let gw = -1;
  for (let n = base + size - 2; n > base; n--) {
    if (!reserved(n)) {
      gw = n;
      break;
    }
  }
  if (gw < 0) throw new LabError(`segment ${seg.name} (${seg.cidr}): no free address for Docker's bridge gateway`);
  for (const bs of [8, 4, 2, 1]) {
    for (let start = base + size - bs; start >= base; start -= bs) {
      let ok = true;
      for (let n = start; n < start + bs && ok; n++) ok = !reserved(n) && n !== gw;
      if (ok) return { gateway: n2ip(gw), ipRange: `${n2ip(start)}/${32 - Math.log2(bs)}` };
    }
  }
  throw new LabError(`segment ${seg.name} (${seg.cidr}): no free address block for Docker's dynamic allocation (IPRange)`);
}

export interface DockerNetworkPlan {
  segment: string;
  name: string;
  gateway: string;
  ipRange: string;
  /** Docker's NAT for the segment (LANs only: the nodes pull images through it) */
  masquerade: boolean;
  options: Docker.NetworkCreateOptions;
}

/** One network per segment, labelled with the lab id (`tlab.id`, `tlab.segment`) and any extra labels. */
export function buildNetworkPlans(t: Topology, o: { prefix: string; labels?: Record<string, string> }): DockerNetworkPlan[] {
  const labId = idOfPrefix(o.prefix);
  return t.segments.map((s) => {
    const { gateway, ipRange } = dockerIpam(t, s);
    const masquerade = s.kind === 'lan';
    const name = networkName(o.prefix, s.name);
    return {
      segment: s.name,
      name,
      gateway,
      ipRange,
      masquerade,
      options: {
        Name: name,
        CheckDuplicate: true,
        Driver: 'bridge',
        Internal: false,
        Attachable: true,
        EnableIPv6: false,
        IPAM: { Driver: 'default', Config: [{ Subnet: s.cidr, Gateway: gateway, IPRange: ipRange }] },
        Options: { [OPT_MTU]: String(DOCKER_MTU), ...(masquerade ? {} : { [OPT_MASQUERADE]: 'false' }) },
        Labels: { ...o.labels, 'tlab.id': labId, 'tlab.segment': s.name },
      },
    };
  });
}

/** The `docker network create` line of a plan (what `--dry-run` prints). */
export function dockerCliEquivalent(n: DockerNetworkPlan): string[] {
  return [
    'docker', 'network', 'create', '--driver', 'bridge', '--subnet', n.options.IPAM!.Config![0]!.Subnet!, '--gateway', n.gateway, '--ip-range', n.ipRange,
    ...Object.entries(n.options.Options ?? {}).flatMap(([k, v]) => ['--opt', `${k}=${v}`]),
    ...Object.entries(n.options.Labels ?? {}).flatMap(([k, v]) => ['--label', `${k}=${v}`]),
    n.name,
  ];
}
