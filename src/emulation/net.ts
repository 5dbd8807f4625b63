/**
 * What an emulated component does to the network of its own node (it runs inside the node's
 * namespace, see src/emulation/agent/main.ts): hold or release an address, send gratuitous ARP, announce or
 * withdraw a prefix through the node's FRR speaker. One place for these so Talos VIP, kube-vip,
 * MetalLB and Cilium all move addresses the same, observable way.
 *
 * - An address held by a node is added as /32 on its LAN interface: the kernel then answers ARP
 *   for it (as Talos' VIP controller and kube-vip ARP mode do by adding it to the link).
 * - An address held FROM USER SPACE (`UserSpaceArp`), as MetalLB's L2 speaker holds it: the
 *   speaker never adds the IP to an interface and answers ARP for it itself on a raw socket
 *   (metallb internal/layer2/arp.go@v0.16.1, mdlayher/arp). The kernel must not answer: the LAN
 *   link gets `arp_ignore=1` (reply only for addresses configured on the incoming interface) and
 *   `arp_announce=2` (never use such an address as the source of our own requests) — Linux
 *   Documentation/networking/ip-sysctl.rst, conf/<if>/arp_ignore and arp_announce — and the
 *   address goes on `lo`, where the node accepts it (kube-proxy's DNAT at prerouting takes the
 *   Service ports first; the holder stays observable as "the node with the address on a link").
 *   The answers come from ./arp-responder.pl, a child of the agent in the agent's process group:
 *   a frozen (SIGSTOPped) agent stops answering — a frozen speaker is silent — and a killed agent
 *   takes it along.
 * - Gratuitous ARP: iputils `arping -U` (unsolicited: ARP request with sender = target = the IP),
 *   what Talos' vip.go and kube-vip's arp package send after taking an address.
 * - BGP: `vtysh -N <instance>` against the node's FRR speaker (src/render/frr.ts renders it with
 *   `no bgp network import-check`, so a /32 the node does not route can be announced).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
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

/** The user-space ARP responder (perl-base's raw sockets; see the file's header). */
export const ARP_RESPONDER = fileURLToPath(new URL('./arp-responder.pl', import.meta.url));

/** The sysctls that keep the kernel from answering ARP for addresses a user-space responder holds (ip-sysctl.rst). */
export function userSpaceArpSysctls(dev: string): string[] {
  return [`net.ipv4.conf.${dev}.arp_ignore=1`, `net.ipv4.conf.${dev}.arp_announce=2`];
}

/**
 * Addresses a component holds from user space on one link (see the header): `hold` puts the
 * address on `lo` and starts answering ARP requests for it on the link, `release` stops both,
 * `garp` sends MetalLB's gratuitous pair (request + reply, broadcast). One per component; `stop`
 * releases everything and ends the responder. Events (under `component`): `garp-sent` {ip}.
 * Usable by any mechanism that answers ARP from user space (kube-vip's ARP mode in the versions
 * that do): `const arp = await UserSpaceArp.start(ctx, 'kube-vip')`.
 */
export class UserSpaceArp {
  private readonly held = new Set<string>();
  private exited = false;

  private constructor(
    private readonly ctx: AgentContext,
    private readonly component: string,
    readonly dev: string,
    private readonly child: ChildProcess,
    /** the link's MAC, as the responder read it */
    readonly mac: string,
  ) {
    child.on('exit', (code, sig) => {
      this.exited = true;
      if (!this.stopping) ctx.log(component, `ARP responder on ${dev} exited (${sig ?? code}); the held addresses are no longer answered`);
    });
  }

  private stopping = false;

  static async start(ctx: AgentContext, component: string, dev = lanIf(ctx)): Promise<UserSpaceArp> {
    await ctx.run('sysctl', ['-qw', ...userSpaceArpSysctls(dev)]);
    // not detached: the responder lives and stops with the agent's process group
    const child = spawn('perl', [ARP_RESPONDER, dev], { stdio: ['pipe', 'pipe', 'pipe'] });
    child.stderr!.setEncoding('utf8');
    let stderr = '';
    child.stderr!.on('data', (d: string) => (stderr += d));
    const lines = createInterface({ input: child.stdout! });
    const mac = await new Promise<string>((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`${component}: ARP responder on ${dev} failed to start (exit ${code}): ${stderr.trim()}`));
      child.once('exit', onExit);
      child.once('error', reject);
      lines.once('line', (l) => {
        child.off('exit', onExit);
        const m = /^ready (\S+)/.exec(l);
        if (m) resolve(m[1]!);
        else reject(new Error(`${component}: ARP responder said '${l}'`));
      });
    });
    const arp = new UserSpaceArp(ctx, component, dev, child, mac);
    lines.on('line', (l) => arp.onLine(l));
    return arp;
  }

  private onLine(l: string): void {
    const [kind, ip, ...rest] = l.split(' ');
    if (kind === 'garp' && ip) this.ctx.emit(this.component, 'garp-sent', { ip });
    else if (kind === 'reply') this.ctx.log(this.component, `ARP reply: ${ip} is-at ${this.mac} (asked by ${rest.join(' ')})`);
    else if (kind === 'error') this.ctx.log(this.component, `ARP responder: ${l}`);
  }

  private send(line: string): void {
    if (this.exited || !this.child.stdin || this.child.stdin.destroyed) throw new Error(`${this.component}: the ARP responder on ${this.dev} is not running`);
    this.child.stdin.write(line + '\n');
  }

  holding(): string[] {
    return [...this.held];
  }

  /** accept `ip` on this node and answer ARP for it on the link */
  async hold(ip: string): Promise<void> {
    await this.ctx.run('ip', ['addr', 'replace', `${ip}/32`, 'dev', 'lo']);
    this.send(`add ${ip}`);
    this.held.add(ip);
  }

  /** stop answering for `ip` and drop it from the node */
  async release(ip: string): Promise<void> {
    if (!this.exited) this.send(`del ${ip}`);
    this.held.delete(ip);
    await this.ctx.run('ip', ['addr', 'del', `${ip}/32`, 'dev', 'lo'], { reject: false });
  }

  /** one gratuitous pair for `ip` (request + reply, broadcast); `garp-sent` is emitted when it went out */
  garp(ip: string): void {
    this.send(`garp ${ip}`);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const ip of [...this.held]) await this.release(ip);
    if (this.exited) return;
    const gone = new Promise<void>((r) => this.child.once('exit', () => r()));
    this.child.stdin?.end();
    const t = setTimeout(() => this.child.kill('SIGKILL'), 2000);
    await gone;
    clearTimeout(t);
  }
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
