/**
 * Kernel-side faults of a sim host, all inside the host's own namespace (never the root one):
 * - `isolate`: drop every packet the host receives, sends or forwards on its non-loopback links,
 *   ARP included (an `inet` table at the earliest hooks, before conntrack and NAT, plus an `arp`
 *   table) — the host is gone for its peers, who can only notice by timeouts; its processes keep
 *   running (partition) unless the drill also kills them (crash).
 * - `resetKernelState`: what a reboot forgets — addresses the host's components added (VIPs,
 *   service IPs), nftables tables they installed, and the transient state below — so a crashed
 *   node does not come back answering ARP for an address that has moved on meanwhile.
 * - `flushTransientState`: connection tracking (the `conntrack` tool, conntrack-tools: `-F`
 *   empties the table) and the dynamic neighbour cache (`ip neigh flush all` leaves permanent
 *   entries). A drill leaves both behind: SYN_SENT entries DNATed to a pod that was dead live
 *   120 s (nf_conntrack_tcp_timeout_syn_sent) and catch the next drill's SYNs from the same
 *   4-tuple; a router's or client's neighbour entry for an address that moved during the drill
 *   steers the next drill's first packets. Nothing a drill did may leak into the next one: the
 *   lab runs this on every host between drills (and resetKernelState runs it on a node).
 * - `garpIgnore`: a router or client whose ARP cache ignores gratuitous ARP (`arp_accept=0`
 *   does not stop Linux from *updating* an existing entry from a GARP, so the table drops ARP
 *   requests whose sender IP = target IP and unsolicited replies that are not for us; see below).
 */
import type { HostBase } from '../../../model/types.js';
import { run, type RunResult } from '../../../util/proc.js';

const FAULT_TABLE = 'tlab_fault';

export function isolateRules(h: HostBase): string {
  const devs = h.interfaces.map((i) => i.ifname).join(', ');
  return [
    // the device layer first: frames a raw (AF_PACKET) socket sends or receives — a user-space
    // ARP responder such as MetalLB's (src/emulation/net.ts UserSpaceArp) — pass no IP or ARP
    // hook, only the netdev ingress/egress hooks of the link (nftables netdev family, Linux ≥ 5.16 for egress)
    ...(devs
      ? [
          `table netdev ${FAULT_TABLE} {`,
          `  chain in { type filter hook ingress devices = { ${devs} } priority -500; policy drop; }`,
          `  chain out { type filter hook egress devices = { ${devs} } priority -500; policy drop; }`,
          '}',
        ]
      : []),
    `table inet ${FAULT_TABLE} {`,
    '  chain pre { type filter hook prerouting priority -400; policy accept; iifname != "lo" drop; }',
    '  chain out { type filter hook output priority -400; policy accept; oifname != "lo" drop; }',
    '}',
    `table arp ${FAULT_TABLE} {`,
    '  chain in { type filter hook input priority -400; policy accept; drop; }',
    '  chain out { type filter hook output priority -400; policy accept; drop; }',
    '}',
    `# ${h.name}: isolated`,
  ].join('\n');
}

export async function isolate(h: HostBase, ns: string): Promise<void> {
  await run('nft', ['-f', '-'], { ns, input: isolateRules(h) + '\n' });
}

export async function unisolate(ns: string): Promise<void> {
  await run('nft', ['delete', 'table', 'netdev', FAULT_TABLE], { ns, reject: false });
  await run('nft', ['delete', 'table', 'inet', FAULT_TABLE], { ns, reject: false });
  await run('nft', ['delete', 'table', 'arp', FAULT_TABLE], { ns, reject: false });
}

/** runs a command in one host's network namespace (netns: `ip netns exec`; docker: `docker exec`) */
export type HostExec = (cmd: string, args: string[], o?: { input?: string; reject?: boolean }) => Promise<RunResult>;

/**
 * Connection tracking and dynamic neighbour entries of one host's namespace (see the header).
 * `conntrack -F` fails only when the tool is missing (or the namespace has no conntrack table
 * yet, exit 0 then): a missing tool is an error, not a silent leak.
 */
export async function flushTransientState(ns: string): Promise<void> {
  return flushTransientStateWith((cmd, args, o) => run(cmd, args, { ns, ...o }), ns);
}

export async function flushTransientStateWith(exec: HostExec, where: string): Promise<void> {
  const r = await exec('conntrack', ['-F'], { reject: false });
  if (r.exitCode !== 0 && !/0 flow entries|table is empty/i.test(r.stderr + r.stdout)) {
    throw new Error(`conntrack -F in ${where} failed (exit ${r.exitCode}): ${(r.stderr || r.stdout).trim()} — is conntrack (Debian package conntrack) installed?`);
  }
  await exec('ip', ['neigh', 'flush', 'all'], { reject: false });
}

/** Tables other than the fault table, every address beyond the host's own ones, and the transient state. */
export async function resetKernelState(h: HostBase, ns: string): Promise<void> {
  return resetKernelStateWith(h, (cmd, args, o) => run(cmd, args, { ns, ...o }), ns);
}

export async function resetKernelStateWith(h: HostBase, exec: HostExec, where: string): Promise<void> {
  const tables = (await exec('nft', ['list', 'tables'], { reject: false })).stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f[0] === 'table' && f[2] && f[2] !== FAULT_TABLE && f[2] !== GARP_TABLE);
  if (tables.length) await exec('nft', ['-f', '-'], { reject: false, input: tables.map((f) => `delete table ${f[1]} ${f[2]}`).join('\n') + '\n' });
  const own = new Set(h.interfaces.map((i) => `${i.ip}/${i.prefixLen}`));
  const addrs = JSON.parse((await exec('ip', ['-j', '-4', 'addr', 'show'])).stdout || '[]') as { ifname: string; addr_info: { local: string; prefixlen: number }[] }[];
  const lines: string[] = [];
  own.add('127.0.0.1/8');
  // kube-vip BGP mode puts the VIP on `lo`: every link counts, loopback included
  for (const a of addrs) {
    for (const i of a.addr_info) if (!own.has(`${i.local}/${i.prefixlen}`)) lines.push(`addr del ${i.local}/${i.prefixlen} dev ${a.ifname}`);
  }
  if (lines.length) await exec('ip', ['-batch', '-'], { reject: false, input: lines.join('\n') + '\n' });
  await flushTransientStateWith(exec, where);
}

export const GARP_TABLE = 'tlab_garp_ignore';

/**
 * Sticky-ARP gear: ignore gratuitous ARP. Linux updates an existing neighbour entry from any ARP
 * packet naming the IP (arp_accept only governs *creating* entries), so the only way to make a
 * Linux box ignore GARP is to drop it: for each address that can move (the VIP, the pool), ARP
 * requests whose sender IP and target IP are both that address (the gratuitous form iputils
 * `arping -U`, Talos and kube-vip send), and replies to it nobody asked for (target hardware
 * address broadcast). nftables compares a field with constants only, hence one rule per address.
 * The cache then heals only through its own timers: REACHABLE → STALE after base_reachable_time,
 * DELAY, PROBE (unicast to the OLD MAC, ucast_solicit times), FAILED → a new broadcast resolution
 * that the new holder answers.
 */
export function garpIgnoreRules(movable: string[]): string {
  return [
    `table arp ${GARP_TABLE} {`,
    '  chain in {',
    '    type filter hook input priority -300; policy accept;',
    ...movable.flatMap((ip) => [`    arp operation request arp saddr ip ${ip} arp daddr ip ${ip} drop`, `    arp operation reply arp saddr ip ${ip} arp daddr ether ff:ff:ff:ff:ff:ff drop`]),
    '  }',
    '}',
  ].join('\n');
}

export async function setGarpIgnore(ns: string, on: boolean, movable: string[]): Promise<void> {
  if (on) await run('nft', ['-f', '-'], { ns, input: garpIgnoreRules(movable) + '\n' });
  else await run('nft', ['delete', 'table', 'arp', GARP_TABLE], { ns, reject: false });
}
