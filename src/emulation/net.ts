/**
 * What an emulated component does to the network of its own node (it runs inside the node's
 * namespace, see src/emulation/agent/main.ts): hold or release an address, send gratuitous ARP, announce or
 * withdraw a prefix through the node's FRR speaker. One place for these so Talos VIP, kube-vip,
 * MetalLB and Cilium all move addresses the same, observable way.
 *
 * - An address held by a node is added as /32 on its LAN interface: the kernel then answers ARP
 *   for it (as Talos' VIP controller and kube-vip ARP mode do by adding it to the link; MetalLB's
 *   L2 speaker answers ARP from user space instead — the client-visible effect is the same).
 * - Gratuitous ARP: iputils `arping -U` (unsolicited: ARP request with sender = target = the IP),
 *   what Talos' vip.go and kube-vip's arp package send after taking an address.
 * - BGP: `vtysh -N <instance>` against the node's FRR speaker (src/render/frr.ts renders it with
 *   `no bgp network import-check`, so a /32 the node does not route can be announced).
 */
import type { AgentContext } from './agent/types.js';
import type { Node, Topology } from '../model/types.js';

/** The FRR instance name (`-N`) of a host: its namespace name (unique per lab, ≤ 40 chars). */
export function frrInstance(ns: string): string {
  return ns;
}

export function thisNode(ctx: AgentContext): Node {
  const n = ctx.topology.nodes.find((x) => x.name === ctx.host);
  if (!n) throw new Error(`${ctx.host} is not a node of topology ${ctx.topology.name}`);
  return n;
}

/** The node's LAN interface (the one on its rack segment). */
export function lanIf(ctx: AgentContext): string {
  return thisNode(ctx).interfaces[0]!.ifname;
}

export async function addAddress(ctx: AgentContext, ip: string, dev = lanIf(ctx)): Promise<void> {
  await ctx.run('ip', ['addr', 'replace', `${ip}/32`, 'dev', dev]);
}

export async function delAddress(ctx: AgentContext, ip: string, dev = lanIf(ctx)): Promise<void> {
  await ctx.run('ip', ['addr', 'del', `${ip}/32`, 'dev', dev], { reject: false });
}

export async function hasAddress(ctx: AgentContext, ip: string, dev = lanIf(ctx)): Promise<boolean> {
  const r = await ctx.run('ip', ['-o', '-4', 'addr', 'show', 'dev', dev], { reject: false });
  return r.stdout.includes(` ${ip}/32 `);
}

/** One (or `count`) gratuitous ARP for `ip` from this node's LAN interface; emits `garp-sent`. */
export async function sendGarp(ctx: AgentContext, component: string, ip: string, count = 1, dev = lanIf(ctx)): Promise<void> {
  await ctx.run('arping', ['-U', '-c', String(count), '-w', String(Math.max(1, count)), '-I', dev, ip], { reject: false, timeoutMs: 5000 + count * 1000 });
  ctx.emit(component, 'garp-sent', { ip });
}

function vtysh(ctx: AgentContext, lines: string[]) {
  const args = ['-N', frrInstance(ctx.spec.ns)];
  for (const l of lines) args.push('-c', l);
  return ctx.run('vtysh', args, { timeoutMs: 10_000 });
}

/** Announce /32 prefixes through this node's speaker; emits `bgp-announce`. */
export async function bgpAnnounce(ctx: AgentContext, component: string, prefixes: string[]): Promise<void> {
  if (!prefixes.length) return;
  const n = thisNode(ctx);
  await vtysh(ctx, ['configure terminal', `router bgp ${n.asn}`, 'address-family ipv4 unicast', ...prefixes.map((p) => `network ${withLen(p)}`)]);
  ctx.emit(component, 'bgp-announce', { prefixes: prefixes.map(withLen) });
}

/** Withdraw /32 prefixes from this node's speaker; emits `bgp-withdraw`. */
export async function bgpWithdraw(ctx: AgentContext, component: string, prefixes: string[]): Promise<void> {
  if (!prefixes.length) return;
  const n = thisNode(ctx);
  await vtysh(ctx, ['configure terminal', `router bgp ${n.asn}`, 'address-family ipv4 unicast', ...prefixes.map((p) => `no network ${withLen(p)}`)]).catch(() => undefined);
  ctx.emit(component, 'bgp-withdraw', { prefixes: prefixes.map(withLen) });
}

const withLen = (p: string) => (p.includes('/') ? p : `${p}/32`);

/** etcd client URLs of the control planes (the real etcd cluster the sim runs on them). */
export function etcdEndpoints(t: Topology): string[] {
  return t.nodes.filter((n) => n.role === 'controlplane').map((n) => `http://${n.ip}:2379`);
}

export function controlPlanes(t: Topology): Node[] {
  return t.nodes.filter((n) => n.role === 'controlplane');
}
