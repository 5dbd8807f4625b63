/**
 * Resilient ECMP on a lab router (topology `network.resilientEcmp`). zebra (FRR 8.4) installs each
 * BGP multipath route with a plain nexthop group (hash-threshold: when a member leaves, the hash
 * space is re-cut and flows on SURVIVING members move too). Linux also has resilient nexthop
 * groups (`ip nexthop … type resilient`, kernel ≥ 5.13): a fixed table of buckets; when a member
 * leaves only its buckets are reassigned, and a new member gets buckets only from idle ones
 * (`idle_timer`), so established flows stay where they are.
 *
 * zebra cannot be told to use them, and it rewrites the routes it owns. So the shim leaves
 * zebra's route alone (main table, proto bgp) and installs ITS OWN route for the same prefix in a
 * separate table (RESILIENT_TABLE) that an `ip rule` consults before the main table, over a
 * resilient group whose members it keeps equal to the gateways of zebra's route, re-synced on
 * every change `ip monitor route` reports. Why a separate table: zebra imports any other route it
 * sees in the main table as a kernel route (distance 0), which beats its BGP route, so it
 * uninstalls its own route — a same-table shim fights zebra in a loop (seen here with FRR 8.4).
 * zebra ignores tables it was not told about. A lookup that finds nothing in the shim's table
 * falls through to the main table. When zebra's route goes away, the shim's goes too. Group
 * membership changes are `ip nexthop replace` on the same group id: that keeps surviving buckets.
 */
import type { ExecOptions } from '../runtimes/types.js';
import type { RunResult } from '../../util/proc.js';

/** runs a command on the router (its namespace or container) */
export type Exec = (cmd: string, args: string[], opts?: ExecOptions) => Promise<RunResult>;

export const RESILIENT_TABLE = 100;

/**
 * First kernel nexthop id the shim uses. zebra shares the netns's nexthop id space and learns
 * every nexthop object it sees over netlink: for an id below ZEBRA_NHG_PROTO_LOWER it raises its
 * own allocation counter past it (zebra/zebra_nhg.c `zebra_nhg_kernel_find`, frr-8.4.4), so ids
 * the shim picks there are soon also picked by zebra, and one side's `nexthop replace` rewrites
 * the other's object (seen: zebra's route on the shim's id, a resilient group gone, the new
 * member holding no buckets). Ids from ZEBRA_NHG_PROTO_LOWER to ZEBRA_NHG_PROTO_UPPER
 * (250,000,000) belong to the routing daemons, and ids with any of the top 4 bits set to L2
 * nexthop groups (lib/zclient.h, frr-8.4.4); the range between is nobody's.
 */
export const SHIM_NEXTHOP_IDS = { first: 260_000_000, last: 268_435_455 } as const;

interface RouteJson {
  dst: string;
  protocol?: string;
  metric?: number;
  nhid?: number;
  gateway?: string;
  nexthops?: { gateway?: string }[];
}

export class ResilientEcmp {
  private readonly groupIds = new Map<string, number>(); // prefix → group id
  private readonly members = new Map<string, string>(); // prefix → gateways last installed
  private readonly memberIds = new Map<string, number>(); // gateway → nexthop id
  private nextId: number = SHIM_NEXTHOP_IDS.first;
  private ruled = false;
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly exec: Exec,
    private readonly buckets: number,
    private readonly idleTimerS: number,
    private readonly dev: (gateway: string) => string,
  ) {}

  /** serialise syncs: route events arrive in bursts */
  sync(prefix: string): Promise<void> {
    this.chain = this.chain.then(() => this.syncNow(prefix)).catch(() => undefined);
    return this.chain;
  }

  /** zebra may change a route's nexthop group in place (a nexthop event, no route event) */
  syncAll(): Promise<void> {
    for (const p of this.groupIds.keys()) void this.sync(p);
    return this.chain;
  }

  private allocate(): number {
    if (this.nextId > SHIM_NEXTHOP_IDS.last) throw new Error(`resilient ECMP shim: nexthop ids ${SHIM_NEXTHOP_IDS.first}–${SHIM_NEXTHOP_IDS.last} used up`);
    return this.nextId++;
  }

  private async syncNow(prefix: string): Promise<void> {
    const gws = await routeGateways(this.exec, prefix);
    const gid = this.groupIds.get(prefix);
    // nothing changed (also what stops our own nexthop updates from echoing back here)
    if (gid !== undefined && this.members.get(prefix) === gws.join(',')) return;
    this.members.set(prefix, gws.join(','));
    if (!gws.length) {
      if (gid !== undefined) {
        await this.exec('ip', ['route', 'del', prefix, 'table', String(RESILIENT_TABLE)], { reject: false });
        await this.exec('ip', ['nexthop', 'del', 'id', String(gid)], { reject: false });
        this.groupIds.delete(prefix);
      }
      this.members.delete(prefix);
      return;
    }
    const lines: string[] = [];
    if (!this.ruled) {
      lines.push(`rule add pref ${RESILIENT_TABLE} lookup ${RESILIENT_TABLE}`);
      this.ruled = true;
    }
    const ids = gws.map((g) => {
      let id = this.memberIds.get(g);
      if (id === undefined) {
        id = this.allocate();
        this.memberIds.set(g, id);
        lines.push(`nexthop replace id ${id} via ${g} dev ${this.dev(g)}`);
      }
      return id;
    });
    const id = gid ?? this.allocate();
    this.groupIds.set(prefix, id);
    lines.push(`nexthop replace id ${id} group ${ids.join('/')} type resilient buckets ${this.buckets} idle_timer ${this.idleTimerS}`);
    if (gid === undefined) lines.push(`route replace ${prefix} nhid ${id} table ${RESILIENT_TABLE}`);
    await this.exec('ip', ['-batch', '-'], { input: lines.join('\n') + '\n' });
  }
}

/** The gateways of the BGP route(s) for a prefix on a router (zebra's nexthop groups resolved). */
export async function routeGateways(exec: Exec, prefix: string): Promise<string[]> {
  const r = await exec('ip', ['-j', '-4', 'route', 'show', prefix, 'proto', 'bgp'], { reject: false });
  const routes = JSON.parse(r.stdout || '[]') as RouteJson[];
  const gws = new Set<string>();
  for (const rt of routes) {
    if (rt.gateway) gws.add(rt.gateway);
    for (const n of rt.nexthops ?? []) if (n.gateway) gws.add(n.gateway);
    if (rt.nhid !== undefined && !rt.gateway && !rt.nexthops) for (const g of await nexthopGateways(exec, rt.nhid)) gws.add(g);
  }
  return [...gws].sort();
}

export async function nexthopGateways(exec: Exec, id: number): Promise<string[]> {
  const r = await exec('ip', ['-j', 'nexthop', 'show', 'id', String(id)], { reject: false });
  const nh = (JSON.parse(r.stdout || '[]') as { gateway?: string; group?: { id: number }[] }[])[0];
  if (!nh) return [];
  if (nh.gateway) return [nh.gateway];
  const out: string[] = [];
  for (const m of nh.group ?? []) out.push(...(await nexthopGateways(exec, m.id)));
  return out;
}
