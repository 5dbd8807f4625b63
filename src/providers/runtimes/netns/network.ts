/**
 * The sim's network: one namespace per host (`<prefix>-<host>`) and a switch namespace
 * (`<prefix>-sw`) holding one Linux bridge per segment. Every veth pair is created directly
 * between two lab namespaces (`ip -n A link add … peer … netns B`), so nothing is ever created in
 * the host's root namespace. `renderNetworkPlan` is pure (topology in, command batches out);
 * `buildNetwork` applies it, recording every namespace in the lab state before creating it.
 */
import type { Topology, Host } from '../../../model/types.js';
import type { LabState } from '../../../state/state.js';
import { run } from '../../../util/proc.js';
import { settleAll } from '../../../util/errors.js';

export interface NetworkPlan {
  switchNs: string;
  /** host name → namespace */
  hostNs: Record<string, string>;
  /** every namespace, switch first */
  namespaces: string[];
  /** `ip -batch` lines run in the switch namespace before the hosts (bridges) */
  switchBridges: string[];
  /** per host namespace: `ip -batch` lines (veth creation with the peer in the switch ns, addresses, routes) */
  hostBatches: Record<string, string[]>;
  /** `ip -batch` lines run in the switch namespace after the hosts (attach veth peers to bridges) */
  switchPorts: string[];
  /** per host namespace: sysctl settings (path under /proc/sys → value) */
  sysctls: Record<string, Record<string, string>>;
}

export function allHosts(t: Topology): Host[] {
  return [...t.routers, ...t.nodes, ...t.clients, ...(t.loadBalancer ? [t.loadBalancer] : [])];
}

/** veth peer name in the switch namespace: ≤ 15 chars (IFNAMSIZ), unique per host interface */
export function peerName(hostIndex: number, ifIndex: number): string {
  return `p${hostIndex}x${ifIndex}`;
}

export function renderNetworkPlan(t: Topology, prefix: string): NetworkPlan {
  const switchNs = `${prefix}-sw`;
  const hosts = allHosts(t);
  const hostNs = Object.fromEntries(hosts.map((h) => [h.name, `${prefix}-${h.name}`]));
  const switchBridges = t.segments.flatMap((s) => [`link add ${s.name} type bridge`, `link set ${s.name} up`]);
  const hostBatches: Record<string, string[]> = {};
  const switchPorts: string[] = [];
  const sysctls: Record<string, Record<string, string>> = {};
  hosts.forEach((h, hi) => {
    const lines = ['link set lo up'];
    h.interfaces.forEach((i, ii) => {
      const peer = peerName(hi, ii);
      lines.push(`link add ${i.ifname} type veth peer name ${peer} netns ${switchNs}`);
      lines.push(`addr add ${i.ip}/${i.prefixLen} dev ${i.ifname}`);
      lines.push(`link set ${i.ifname} up`);
      switchPorts.push(`link set ${peer} master ${i.segment}`, `link set ${peer} up`);
    });
    if (h.gateway) lines.push(`route add default via ${h.gateway}`);
    hostBatches[h.name] = lines;
    const sc = hostSysctls(t, h);
    sysctls[h.name] = sc;
  });
  return { switchNs, hostNs, namespaces: [switchNs, ...Object.values(hostNs)], switchBridges, hostBatches, switchPorts, sysctls };
}

/**
 * The sysctls of a lab host, whatever runtime holds it: forwarding on routers and nodes (nodes
 * route Service traffic as kube-proxy does), L4 multipath hashing on routers (one flow stays on
 * one ECMP path), and the topology's neighbour (ARP) cache timers on routers and clients, per
 * device (a non-initial namespace has no neigh/default on this kernel).
 */
export function hostSysctls(t: Topology, h: Host): Record<string, string> {
  const sc: Record<string, string> = {};
  if (h.kind === 'router' || h.kind === 'node') sc['net/ipv4/ip_forward'] = '1';
  if (h.kind === 'router') sc['net/ipv4/fib_multipath_hash_policy'] = '1';
  if (h.kind === 'router' || h.kind === 'client') {
    // Linux defaults unless the topology sets them (src/model/timers.ts)
    const a = t.timers.arp;
    for (const dev of h.interfaces.map((i) => i.ifname)) {
      sc[`net/ipv4/neigh/${dev}/base_reachable_time_ms`] = String(a.baseReachableS * 1000);
      sc[`net/ipv4/neigh/${dev}/delay_first_probe_time`] = String(a.delayFirstProbeS);
      sc[`net/ipv4/neigh/${dev}/ucast_solicit`] = String(a.ucastSolicit);
      sc[`net/ipv4/neigh/${dev}/retrans_time_ms`] = String(a.retransMs);
      sc[`net/ipv4/neigh/${dev}/gc_stale_time`] = String(a.gcStaleS);
    }
  }
  return sc;
}

async function ipBatch(ns: string, lines: string[]): Promise<void> {
  if (lines.length) await run('ip', ['-n', ns, '-batch', '-'], { input: lines.join('\n') + '\n' });
}

/** sysctls of one namespace in one process (writing /proc/sys from inside the namespace) */
async function applySysctls(ns: string, values: Record<string, string>): Promise<void> {
  const entries = Object.entries(values);
  if (!entries.length) return;
  const script = entries.map(([k, v]) => `echo ${v} > /proc/sys/${k}`).join('\n');
  await run('sh', ['-ec', script], { ns });
}

export async function buildNetwork(plan: NetworkPlan, state: LabState): Promise<void> {
  for (const ns of plan.namespaces) {
    state.record({ kind: 'netns', name: ns });
    await run('ip', ['netns', 'add', ns]);
  }
  await ipBatch(plan.switchNs, ['link set lo up', ...plan.switchBridges]);
  await settleAll(Object.entries(plan.hostBatches).map(([h, lines]) => ipBatch(plan.hostNs[h]!, lines)));
  await ipBatch(plan.switchNs, plan.switchPorts);
  await settleAll(Object.entries(plan.sysctls).map(([h, sc]) => applySysctls(plan.hostNs[h]!, sc)));
}

export async function destroyNetwork(plan: NetworkPlan): Promise<void> {
  const existing = new Set((await run('ip', ['netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0]));
  for (const ns of [...plan.namespaces].reverse()) {
    if (existing.has(ns)) await run('ip', ['netns', 'del', ns], { reject: false });
  }
}
