/** Pure analysis of what probes and watchers observed: timelines, phase breakdown, internal outage. */
import type { AgentEvent } from '../emulation/agent/types.js';
import type { RunningLab } from '../providers/types.js';
import type { ProbeSample } from '../traffic/rpc.js';
import { computeOutage } from '../traffic/outage.js';
import { observerNodes } from '../emulation/base-cp.js';

export interface TimelineBucket {
  tMs: number;
  ok: number;
  failed: number;
  p99Ms: number | null;
}

/**
 * Which node served the client's requests, as fractions: every answered request the client sent
 * to the endpoint in the window, the outage probe's and the load generator's together. Counting
 * the load alone misreads a balancer that deals connections in turn: HAProxy's round robin hands
 * out one counter to both streams, and with the probe at 100/s and the load at 50/s in lockstep
 * the load kept landing on the same one or two servers (measured on ci-smb: 0.70/0.28/0.02 for
 * the load, while the balancer's turns over everything were even). Hashing (ECMP) and single
 * holders (L2) read the same either way.
 */
export function servedShare(samples: readonly ProbeSample[], loadCounts: Readonly<Record<string, number>> = {}): Record<string, number> | undefined {
  const counts = new Map<string, number>(Object.entries(loadCounts));
  for (const s of samples) if (s.ok && s.node) counts.set(s.node, (counts.get(s.node) ?? 0) + 1);
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  if (!total) return undefined;
  return Object.fromEntries([...counts.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([n, c]) => [n, Math.round((c / total) * 1e4) / 1e4]));
}

/** Probe samples into fixed buckets relative to t0 (the injection), for the report's timeline chart. */
export function bucketTimeline(samples: ProbeSample[], t0: number, bucketMs: number): TimelineBucket[] {
  const buckets = new Map<number, { ok: number; failed: number; lat: number[] }>();
  for (const s of samples) {
    const k = Math.floor((s.t - t0) / bucketMs) * bucketMs;
    const b = buckets.get(k) ?? { ok: 0, failed: 0, lat: [] };
    if (s.ok) {
      b.ok++;
      b.lat.push(s.latencyMs);
    } else b.failed++;
    buckets.set(k, b);
  }
  return [...buckets.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([tMs, b]) => {
      const lat = b.lat.sort((x, y) => x - y);
      // nearest-rank p99 of the bucket's ~10 samples
      const p99 = lat.length ? lat[Math.min(lat.length - 1, Math.ceil(0.99 * lat.length) - 1)]! : null;
      return { tMs, ok: b.ok, failed: b.failed, p99Ms: p99 === null ? null : Math.round(p99 * 100) / 100 };
    });
}

const NOT_MECHANISM = new Set(['wire', 'router', 'agent', 'traffic', 'kubelet-client', 'echo', 'apiserver', 'kubeprism']);

/**
 * detect   = first event of the mechanism on a surviving host after the injection (it noticed);
 * announce = first gratuitous ARP for the address seen on the wire, or the router's route for it
 *            changing (BGP update installed), after the injection;
 * converge = the client's path is back: the end of the client-seen outage.
 */
export function phaseBreakdown(
  events: AgentEvent[],
  injectAt: number,
  ip: string,
  victim: string | null,
  recoveredAt: number | null,
): { detectMs: number | null; announceMs: number | null; convergeMs: number | null } {
  const after = events.filter((e) => e.t >= injectAt).sort((a, b) => a.t - b.t);
  const detect = after.find((e) => !NOT_MECHANISM.has(e.component) && e.host !== victim);
  const announce = after.find(
    (e) =>
      (e.component === 'wire' && e.type === 'garp' && e.ip === ip) ||
      (e.component === 'router' && e.type === 'route' && typeof e.prefix === 'string' && e.prefix.split('/')[0] === ip),
  );
  const r = (t: number | undefined | null) => (t == null ? null : Math.round((t - injectAt) * 10) / 10);
  return { detectMs: r(detect?.t), announceMs: r(announce?.t), convergeMs: r(recoveredAt) };
}

/** What in-cluster clients (kubelet through KubePrism) saw: the worst outage over all nodes running one. */
export async function internalOutage(
  lab: RunningLab,
  from: number,
  to: number,
  injectAt: number | null,
  recoverSuccesses: number,
  healAt: number | null = null,
): Promise<{ outageMs: number | null; samples: Record<string, unknown[]> }> {
  const hosts = observerNodes(lab.lab.topology);
  const samples: Record<string, unknown[]> = {};
  let worst: number | null = null;
  for (const h of hosts) {
    try {
      const s = await lab.call<ProbeSample[]>(h, 'kubelet-client.samples', { since: from, until: to });
      samples[h] = s;
      if (injectAt !== null && s.length) {
        const o = computeOutage(s, { injectAt, recoverSuccesses, healAt });
        worst = Math.max(worst ?? 0, o.outageMs);
      }
    } catch {
      // the host is the victim (crashed/partitioned) or runs no kubelet-client: not an observer
    }
  }
  return { outageMs: worst, samples };
}
