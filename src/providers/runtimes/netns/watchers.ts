/**
 * What the sim provider itself observes on the wire and in the routers, for the phase breakdown
 * (src/orchestrator/analysis.ts): every gratuitous ARP on a LAN bridge (tcpdump in the switch
 * namespace, kernel capture timestamps) and every change of a /32 route in a BGP router's kernel
 * table (`ip monitor route`). Written to `<state>/events/_wire.jsonl` in the agents' event format.
 */
import { appendFileSync } from 'node:fs';
import { spawnLines, type LineWatcher } from '../../../util/proc.js';

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
  private readonly list: LineWatcher[] = [];
  constructor(private readonly file: string) {}

  private write(e: WireEvent) {
    appendFileSync(this.file, JSON.stringify(e) + '\n');
  }

  arp(switchNs: string, bridge: string, onPid: (pid: number) => void): void {
    const w = spawnLines('tcpdump', ['-tt', '-n', '-e', '-l', '-i', bridge, 'arp'], {
      ns: switchNs,
      onLine: (line) => {
        const e = parseArpLine(line, bridge);
        if (e) this.write(e);
      },
    });
    onPid(w.pid);
    this.list.push(w);
  }

  routes(router: string, ns: string, onPid: (pid: number) => void, onChange?: (e: WireEvent) => void, onNexthop?: () => void): void {
    const w = spawnLines('ip', ['monitor', 'route', 'nexthop'], {
      ns,
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
    onPid(w.pid);
    this.list.push(w);
  }

  async stop(): Promise<void> {
    await Promise.all(this.list.splice(0).map((w) => w.stop()));
  }
}
