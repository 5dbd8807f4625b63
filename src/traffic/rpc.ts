/**
 * The RPC contract between the orchestrator and the `traffic` component of a client host's agent
 * (src/traffic/agent.ts). The client host sits behind the router, so everything measured here
 * crossed a router as in real life.
 */
export interface ProbeSpec {
  /** http(s)://ip:port/path or tcp://ip:port */
  url: string;
  intervalMs: number;
  timeoutMs: number;
}

export interface LoadSpec {
  url: string;
  rate: number;
  connections: number;
  mode: 'keepalive' | 'new-connection';
  timeoutMs: number;
}

export interface StreamSpec {
  /** tcp://ip:port (raw TCP echo) or http://ip:port/stream */
  url: string;
  count: number;
  stallMs: number;
}

export interface TrafficStart {
  id: string;
  probe: ProbeSpec;
  load?: LoadSpec;
  streams?: StreamSpec;
}

export interface TrafficStatus {
  sent: number;
  failed: number;
  /** consecutive successes at the tail */
  consecutiveOk: number;
  /** the longest run of successes between two failures at/after `since` */
  maxOkRun: number;
  /** first failure at/after `since` (epoch ms) */
  firstFailAt: number | null;
  lastFailAt: number | null;
  /** with a `cursor` in the request: the probe samples completed since it, and the next cursor */
  samples?: { t: number; ok: boolean; latencyMs: number }[];
  cursor?: number;
}

import type { LatencyStats } from './histogram.js';
import type { HealOutage } from './outage.js';

export interface ProbeSample {
  t: number;
  ok: boolean;
  latencyMs: number;
  kind?: string;
  node?: string;
}

export interface StreamOutcome {
  /** node that served the stream (pod) */
  node: string | null;
  /** the source address the pod saw: the ingress node's IP under ETP Cluster, the client's under Local */
  clientIp: string | null;
  opened: boolean;
  broken: 'reset' | 'stall' | null;
  brokenAt: number | null;
}

export interface TrafficResult {
  probe: {
    samples: ProbeSample[];
    outage: { outageMs: number; firstFailAt: number | null; recoveredAt: number | null; failedProbes: number; bursts: number; heal?: HealOutage | null };
    /** the probing process did not run this often / this long in all (a loaded host); replies that came meanwhile counted on time */
    clientStalls?: { count: number; ms: number };
  };
  load?: {
    requests: number;
    errors: number;
    errorsByKind: Record<string, number>;
    throughputRps: number;
    targetRps: number;
    latencyMs: LatencyStats;
    latencyByPhaseMs: { before?: LatencyStats; during?: LatencyStats; after?: LatencyStats };
    nodeShare: Record<string, number>;
    /** answered requests per node (the run's node share adds the probe's: src/orchestrator/analysis.ts servedShare) */
    nodeCounts: Record<string, number>;
    clientIps: string[];
    timeline: { tMs: number; ok: number; failed: number; p99Ms: number | null }[];
  };
  streams?: StreamOutcome[];
}

export interface TrafficStop {
  id: string;
  /** injection time (epoch ms); null for baseline */
  injectAt: number | null;
  recoverSuccesses: number;
  /** a held fault undone while the probe ran (epoch ms): later failure bursts are the heal's (src/traffic/outage.ts) */
  healAt?: number | null;
  /** the failover had been judged over before the undo: a heal still failing at the end is the heal's alone (src/traffic/outage.ts) */
  settledAtUndo?: boolean;
}

/** The stop of a session nobody measures (readiness, warm-up): no fault, any success recovers. */
export function unmeasuredStop(id: string): TrafficStop {
  return { id, injectAt: null, recoverSuccesses: 1 };
}
