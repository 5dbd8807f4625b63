/**
 * Types of results.json: the required fields of schemas/results.schema.json (the results contract) plus the fields
 * this toolkit adds (the schema allows additions; required names never change).
 */
export interface LatencyStats {
  p50: number;
  p90?: number;
  p99: number;
  p999?: number;
  max?: number;
}

/** One fidelity note as results.json carries it: `id` is the anchor in docs/fidelity.md. */
export interface FidelityRecord {
  id: string;
  text: string;
}

export interface RunRecord {
  strategy: string;
  target: 'api' | 'service';
  drill: string;
  victim?: string | null;
  repeat?: number;
  outageMs: number | null;
  expectedOutageMs?: { min: number; max: number } | null;
  phases?: { detectMs?: number | null; announceMs?: number | null; convergeMs?: number | null };
  errors: number;
  resets?: number;
  requests: number;
  latencyMs: LatencyStats;
  throughputRps: number;
  nodeShare?: Record<string, number>;
  clientIpPreserved?: boolean | null;
  supported?: boolean;
  reason?: string;
  // additions
  service?: string;
  externalTrafficPolicy?: 'Cluster' | 'Local';
  expectedBasis?: string;
  withinBand?: boolean | null;
  /** the probe's resolution allowed around the band when judging withinBand */
  bandSlackMs?: number;
  errorsByKind?: Record<string, number>;
  probeFailures?: number;
  outageBursts?: number;
  /**
   * A held fault's undo seen by the client: failure bursts that began after the victim was
   * restored (e.g. a thawed VIP holder announcing the address it still had). Reported apart, not
   * in outageMs: the outage is the failover's. Absent when the client saw nothing then.
   */
  healOutage?: { outageMs: number; bursts: number; failedProbes: number; recovered?: boolean };
  resetsOnVictim?: number;
  resetsOnSurvivors?: number;
  streams?: number;
  latencyByPhaseMs?: { before?: LatencyStats; during?: LatencyStats; after?: LatencyStats };
  internalOutageMs?: number | null;
  timeline?: { tMs: number; ok: number; failed: number; p99Ms: number | null }[];
  samples?: string;
  notes?: string[];
  /** what the drill left stuck that the real component never leaves by itself (`host: what`), restarted by the lab before the next drill */
  leftStuck?: string[];
  /** class-conflict: every node seen holding the Service address during the window */
  holdersObserved?: string[];
  /**
   * why an outage outside its band cannot be judged: 'host-load' = over the band's maximum by no
   * more than the probing client stood still or a lab process waited for a CPU during the outage
   * (hostLoadCovers)
   */
  outsideReason?: 'host-load';
  /**
   * the longest any process the lab supervises (agents, FRR, etcd, HAProxy) sat runnable without
   * a CPU between the outage's first failure and its recovery (run-queue wait, /proc/<pid>/schedstat),
   * and which; absent when nothing failed or the runtime names no pid on this machine
   */
  cpuWait?: { ms: number; process: string };
  /**
   * false: the probe kept failing through the pre window and the bounded wait after it, so the
   * fault was injected on a path that was not clean (absent: the pre window was clean, at once or
   * after a wait the run's notes give)
   */
  cleanBeforeFault?: false;
  /** false: the outage had not ended when observation stopped; outageMs is then a lower bound, never a figure */
  recovered?: boolean;
  /** how long the fault was held before it was undone (held faults; a crash nobody could take over) */
  holdMs?: number;
  /** why this run's figure may differ from the real component's: the known differences that apply (docs/fidelity.md#<id>) */
  fidelity?: FidelityRecord[];
}

export interface StrategySummary {
  id: string;
  cp: string;
  svc: string;
  description?: string;
  supported: boolean;
  reason?: string;
  conflicts?: string[];
}

export interface Results {
  lab: string;
  topology: { name: string; controlPlanes: number; workers: number; racks?: number };
  provider: { name: 'sim' | 'docker' | 'qemu' | 'existing'; emulated: boolean; components: Record<string, string>; nodes?: 'talos' | 'emulated' };
  startedAt: string;
  bringUpMs: number;
  durationMs?: number;
  runs: RunRecord[];
  strategies?: StrategySummary[];
  network?: { l2: boolean; bgp: boolean };
  timers?: Record<string, unknown>;
  notes?: string[];
  /** stopped (Ctrl-C, SIGINT, SIGTERM) before the end: `runs` holds every run that completed */
  interrupted?: boolean;
  /** lab instances the strategies ran on at once */
  parallel?: number;
  /** what the plan expected the run to take (ms), for the benchmark */
  estimateMs?: number;
}

/**
 * How every report and summary names the two run flags above, in one place so the terminal, the
 * summary line, report.md and report.html say the same thing.
 */
export const RUN_FLAG_TEXT = {
  hostLoad: "within the host's CPU stalls: host load",
  uncleanBefore: 'probe already failing before the fault',
  healOpen: 'failing again after the undo when observation stopped',
} as const;

/**
 * A baseline has no fault: every request or probe that failed in it failed because of the host or
 * the lab, not the mechanism. Above this share of the attempts the window's latencies describe the
 * host, and every report says so beside them. A lab choice: the share the e2e tests hold a clean
 * baseline to; a few probes lost to a 200 ms deadline on a busy 2-core host stay under it.
 */
export const BASELINE_MAX_FAILED_SHARE = 0.01;

/** failed share of what the client sent in a window: load requests and probes (RunRecord.errors counts both) */
export function failedShare(r: RunRecord): number | null {
  const probes = (r.timeline ?? []).reduce((n, b) => n + b.ok + b.failed, 0);
  const attempts = r.requests + probes;
  return attempts > 0 ? r.errors / attempts : null;
}
