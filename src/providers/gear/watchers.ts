/**
 * What the lab itself observes on the wire and in the routers, for the phase breakdown
 * (src/orchestrator/analysis.ts) and the live view: every gratuitous ARP on a LAN, captured on the
 * LAN's router (tcpdump on its LAN link, kernel capture timestamps — the router sees every
 * broadcast of its LAN, before its own nftables, so also the GARPs a sticky-ARP drill makes it
 * ignore), and every change of a /32 route in a BGP router's kernel table (`ip monitor route`).
 * Both run on the router host through the runtime, so they work the same on namespaces and
 * containers. Written to `<state>/events/_wire.jsonl` in the agents' event format.
 */
import { appendFileSync } from 'node:fs';
import type { HostProc, HostRuntime } from '../runtimes/types.js';

export interface WireEvent {
  t: number;
  host: string;
  component: 'wire' | 'router';
  type: string;
  [k: string]: unknown;
}

/**
 * `tcpdump -tt -n -e -l arp` lines, e.g.
 * `1764057600.123456 02:aa:… > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: Request who-has 10.32.0.10 tell 10.32.0.10, length 28`
 * (an `arping -U` GARP), or `… Reply 10.32.0.10 is-at 02:aa:…, length 28` sent to broadcast.
 */
export function parseArpLine(line: string, segment: string): WireEvent | null {
  const m = /^(\d+\.\d+)\s+([0-9a-f:]{17})\s+>\s+([0-9a-f:]{17}).*?(Request who-has (\S+)(?: \([^)]*\))? tell (\S+?),|Reply (\S+) is-at ([0-9a-f:]{17}))/.exec(line);
  if (!m) return null;
  const t = Number(m[1]) * 1000;
  if (m[5] && m[6]) {
    if (m[5] !== m[6]) return null; // an ordinary who-has
    return { t, host: 'wire', component: 'wire', type: 'garp', ip: m[5], mac: m[2], segment };
  }
  if (m[7] && m[3] === 'ff:ff:ff:ff:ff:ff') return { t, host: 'wire', component: 'wire', type: 'garp', ip: m[7], mac: m[8], segment };
  return null;
}

/** `ip -4 monitor route` lines: `[Deleted ]10.32.0.200 nhid 20 proto bgp metric 20` (first line of a route). */
export function parseRouteLine(line: string, router: string): WireEvent | null {
  const m = /^(Deleted )?(\d+\.\d+\.\d+\.\d+)(\/32)?\s+(.*)$/.exec(line);
  if (!m) return null;
  if (!/proto (bgp|static)/.test(m[4]!)) return null;
  return { t: 0, host: router, component: 'router', type: 'route', prefix: `${m[2]}/32`, deleted: Boolean(m[1]), detail: m[4]!.trim() };
}

export class Watchers {
  private readonly list: HostProc[] = [];
  constructor(
    private readonly rt: HostRuntime,
    private readonly file: string,
  ) {}

  private write(e: WireEvent) {
    appendFileSync(this.file, JSON.stringify(e) + '\n');
  }

  /** gratuitous ARP on `segment`, seen from `router`'s link `ifname` on it */
  async arp(router: string, ifname: string, segment: string): Promise<void> {
    const p = await this.rt.start(router, {
      role: 'watcher',
      name: `tcpdump-${ifname}`,
      cmd: 'tcpdump',
      args: ['-tt', '-n', '-e', '-l', '-i', ifname, 'arp'],
      onLine: (line) => {
        const e = parseArpLine(line, segment);
        if (e) this.write(e);
      },
    });
    this.list.push(p);
  }

  async routes(router: string, onChange?: (e: WireEvent) => void, onNexthop?: () => void): Promise<void> {
    const p = await this.rt.start(router, {
      role: 'watcher',
      name: 'ip-monitor',
      cmd: 'ip',
      args: ['monitor', 'route', 'nexthop'],
      onLine: (line, t) => {
        // zebra's nexthop objects change in place too (`id N group …`, `Deleted id N …`)
        if (/^(Deleted )?id \d+ .*proto zebra/.test(line)) return onNexthop?.();
        const e = parseRouteLine(line, router);
        if (!e) return;
        e.t = t;
        this.write(e);
        onChange?.(e);
      },
    });
    this.list.push(p);
  }

  async stop(): Promise<void> {
    await Promise.all(this.list.splice(0).map((p) => this.rt.stop(p)));
  }
}
