/**
 * The lab's own boxes as containers of the appliance image (./appliance.ts): the FRR routers, the
 * HAProxy load balancer and the clients — the same whatever kind of node the lab runs (real Talos
 * containers, emulated nodes). Pure: topology in, exact create options out; the image tag is known
 * only once the appliance is ensured at `up` (`withImage`).
 */
import type Docker from 'dockerode';
import type { Host, Topology } from '../../../model/types.js';
import type { ContainerPlan } from './engine.js';
import { containerName, idOfPrefix, networkName } from './network.js';

/** Stands for the appliance's tag in a plan (`tlab-appliance:<hash>`, known after ensureApplianceImage). */
export const APPLIANCE_IMAGE_PLACEHOLDER = 'tlab-appliance:@@ensured-at-up@@';

export type ApplianceKind = 'router' | 'lb' | 'client';

export interface ApplianceContainerPlan extends ContainerPlan {
  kind: ApplianceKind;
}

/**
 * The neighbour (ARP) cache timers of the topology on every interface, as the sim sets them
 * (src/providers/runtimes/netns/network.ts; Linux defaults documented in src/model/timers.ts).
 */
export function neighScript(t: Topology): string {
  const a = t.timers.arp;
  return [
    'for d in /proc/sys/net/ipv4/neigh/eth*; do',
    `  echo ${a.baseReachableS * 1000} > $d/base_reachable_time_ms; echo ${a.delayFirstProbeS} > $d/delay_first_probe_time;`,
    `  echo ${a.ucastSolicit} > $d/ucast_solicit; echo ${a.retransMs} > $d/retrans_time_ms; echo ${a.gcStaleS} > $d/gc_stale_time;`,
    'done',
  ].join('\n');
}

export interface ApplianceHostOptions {
  prefix: string;
  /** the appliance image (a placeholder in plans) */
  image: string;
  /** the lab state directory, bind-mounted at the same path into clients and the load balancer */
  stateDir: string;
  /** this checkout, bind-mounted read-only at the same path into clients (the traffic agent runs from it) */
  repoRoot: string;
  /** where a BGP router's frr.conf is on the host (bind-mounted at /etc/frr/frr.conf) */
  routerConf(router: string): string;
}

function applianceContainer(h: Host, kind: ApplianceKind, o: ApplianceHostOptions, script: string[], extra: Partial<Docker.HostConfig> = {}, sysctls: Record<string, string> = {}): ApplianceContainerPlan {
  const [firstIf, ...rest] = h.interfaces;
  const net = networkName(o.prefix, firstIf!.segment);
  const name = containerName(o.prefix, h.name);
  return {
    host: h.name,
    name,
    kind,
    connect: rest.map((i) => ({ network: networkName(o.prefix, i.segment), ip: i.ip, ifname: i.ifname })),
    options: {
      name,
      Hostname: h.name,
      Image: o.image,
      Cmd: ['/bin/sh', '-c', [...script, 'exec sleep infinity'].join('\n')],
      Labels: { 'tlab.id': idOfPrefix(o.prefix), 'tlab.host': h.name, 'tlab.kind': kind },
      // SIGTERM ends `sleep infinity` under the init at once: a graceful stop is quick
      StopTimeout: 10,
      HostConfig: {
        // privileged: the drills change per-device neighbour sysctls and nftables at run time
        // (/proc/sys is read-only in an unprivileged container)
        Privileged: true,
        Init: true,
        NetworkMode: net,
        Sysctls: sysctls,
        ...extra,
      },
      NetworkingConfig: { EndpointsConfig: { [net]: { IPAMConfig: { IPv4Address: firstIf!.ip } } } },
    },
  };
}

/** Routers (forwarding, L4 multipath hashing, FRR when they speak BGP), the load balancer and the clients. */
export function applianceHostPlans(t: Topology, o: ApplianceHostOptions): ApplianceContainerPlan[] {
  const out: ApplianceContainerPlan[] = [];
  for (const r of t.routers) {
    const script = ['set -e', neighScript(t)];
    if (r.gateway) script.push(`ip route replace default via ${r.gateway}`);
    if (r.bgp !== false) script.push("sed -i -e 's/^bgpd=no/bgpd=yes/' -e 's/^bfdd=no/bfdd=yes/' /etc/frr/daemons", '/usr/lib/frr/frrinit.sh start');
    out.push(
      applianceContainer(
        r,
        'router',
        o,
        script,
        r.bgp !== false ? { Binds: [`${o.routerConf(r.name)}:/etc/frr/frr.conf`] } : {},
        // forward, and hash multipath by L4 (one flow stays on one ECMP path) as the sim's routers
        { 'net.ipv4.ip_forward': '1', 'net.ipv4.fib_multipath_hash_policy': '1' },
      ),
    );
  }
  if (t.loadBalancer) {
    const lb = t.loadBalancer;
    out.push(applianceContainer(lb, 'lb', o, ['set -e', ...(lb.gateway ? [`ip route replace default via ${lb.gateway}`] : [])], { Binds: [`${o.stateDir}:${o.stateDir}`] }));
  }
  for (const c of t.clients) {
    out.push(
      applianceContainer(c, 'client', o, ['set -e', neighScript(t), ...(c.gateway ? [`ip route replace default via ${c.gateway}`] : [])], {
        Binds: [`${o.repoRoot}:${o.repoRoot}:ro`, `${o.stateDir}:${o.stateDir}`],
      }),
    );
  }
  return out;
}

/** The same plan with the appliance's real tag. */
export function withImage<T extends ContainerPlan>(c: T, image: string): T {
  return { ...c, options: { ...c.options, Image: image } };
}
