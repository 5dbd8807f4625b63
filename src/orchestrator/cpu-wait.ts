/**
 * How long the lab's own processes waited for a CPU while an outage lasted.
 *
 * On the sim every emulated node, router and client shares the host's cores. When the host is
 * saturated, the process that should answer a probe (an API server, a Service's pod, HAProxy,
 * bgpd) sits runnable on a run queue and its reply comes late: the probe times out, the outage
 * grows, and nothing about the mechanism caused it. The probing client's own stalls are seen by
 * its timers (the engine's `stalls`); the answering side's are not, so an overshoot could only be
 * named host load when the client happened to be the process that starved. The kernel counts that
 * wait per thread (/proc/<pid>/schedstat: run-queue wait), so sampling it for every process the
 * lab supervises gives, for any interval, the longest any of them wanted a CPU and did not get it.
 *
 * Counted only between two samples inside the interval (the first at or after its start, the last
 * at or before its end): a wait outside the outage is never charged to it, at the cost of
 * undercounting up to one sampling period at each end. The main thread only: it runs each agent's
 * event loop (the emulated API server, the Service's pod, the mechanism's agent); worker threads
 * and the client's probe worker are not read (the probe's stalls are the engine's).
 */
import type { LabProcess } from '../providers/types.js';
import { now, runQueueWaitMs } from '../util/proc.js';

/** the longest run-queue wait of one lab process over an interval */
export interface CpuWait {
  ms: number;
  process: string;
}

interface Sample {
  t: number;
  waitMs: number;
}

export class CpuWaitTracker {
  /** per process (pid and name: a respawned process is a new series), its samples in time order */
  private readonly series = new Map<string, { name: string; samples: Sample[] }>();

  constructor(
    private readonly processes: () => readonly LabProcess[],
    private readonly read: (pid: number) => number | null = runQueueWaitMs,
    private readonly clock: () => number = now,
  ) {}

  /** read every lab process's cumulative run-queue wait now; a process gone meanwhile is skipped */
  sample(): void {
    const t = this.clock();
    for (const p of this.processes()) {
      const waitMs = this.read(p.pid);
      if (waitMs === null) continue;
      const key = `${p.pid} ${p.name}`;
      let s = this.series.get(key);
      if (!s) this.series.set(key, (s = { name: p.name, samples: [] }));
      s.samples.push({ t, waitMs });
    }
  }

  /**
   * The longest any one process waited for a CPU within [from, to] (epoch ms), as far as two of
   * its samples inside the interval show; null when no process has two samples in it.
   */
  longest(from: number, to: number): CpuWait | null {
    let best: CpuWait | null = null;
    for (const { name, samples } of this.series.values()) {
      const first = samples.find((s) => s.t >= from);
      const last = samples.findLast((s) => s.t <= to);
      if (!first || !last || last.t <= first.t) continue;
      const ms = Math.max(0, last.waitMs - first.waitMs);
      if (!best || ms > best.ms) best = { ms: Math.round(ms), process: name };
    }
    return best;
  }
}
