/**
 * The one clock of the measurement: epoch milliseconds with sub-millisecond fractions, built from
 * `performance.timeOrigin + performance.now()`. `performance.now()` is monotonic inside a process;
 * `timeOrigin` is the wall-clock instant the process started, so two processes on one host (the
 * orchestrator that injects a fault and the client agent that probes) agree to within the
 * wall-clock read at start-up (well under a millisecond on one kernel), and an NTP step during a
 * run cannot make samples go backwards.
 */

/** Now, as epoch ms (fractions allowed). */
export function epochNow(): number {
  return performance.timeOrigin + performance.now();
}

/** Convert a `performance.now()` reading of this process to epoch ms. */
export function perfToEpoch(perfMs: number): number {
  return performance.timeOrigin + perfMs;
}

/** Convert epoch ms to this process's `performance.now()` scale. */
export function epochToPerf(epochMs: number): number {
  return epochMs - performance.timeOrigin;
}
