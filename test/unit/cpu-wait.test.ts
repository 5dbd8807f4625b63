/**
 * How long the lab's processes waited for a CPU during an outage: the run-queue wait the kernel
 * counts per thread, sampled while the drill runs and charged to an interval only between two
 * samples inside it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { CpuWaitTracker } from '../../src/orchestrator/cpu-wait.js';
import { runQueueWaitMs } from '../../src/util/proc.js';

describe('CpuWaitTracker', () => {
  /** a fake kernel: each process's cumulative wait at each sample, a fake clock stepping 100 ms */
  const tracker = (waits: Record<number, (number | null)[]>, names: Record<number, string>) => {
    let i = -1;
    const t = () => 1000 + i * 100;
    const tr = new CpuWaitTracker(
      () => Object.keys(names).map((pid) => ({ pid: Number(pid), name: names[Number(pid)]! })),
      (pid) => waits[pid]![i] ?? null,
      t,
    );
    const sampleAll = (n: number) => {
      for (let k = 0; k < n; k++) {
        i++;
        tr.sample();
      }
    };
    return { tr, sampleAll };
  };

  it('returns the process that waited longest between the samples inside the interval', () => {
    // samples at t = 1000, 1100, …, 1500
    const { tr, sampleAll } = tracker({ 10: [0, 5, 10, 15, 20, 25], 11: [100, 100, 400, 700, 700, 700] }, { 10: 'cp1/agent', 11: 'w2/agent' });
    sampleAll(6);
    expect(tr.longest(1000, 1500)).toEqual({ ms: 600, process: 'w2/agent' });
    // from 1250: first sample inside is 1300 (700), last at or before 1500 is 1500 (700): w2 waited
    // nothing in there, cp1 waited 10 ms
    expect(tr.longest(1250, 1500)).toEqual({ ms: 10, process: 'cp1/agent' });
  });

  it('never charges a wait that happened outside the interval', () => {
    const { tr, sampleAll } = tracker({ 10: [0, 900, 900, 900, 950, 2000] }, { 10: 'cp1/etcd' });
    sampleAll(6);
    // the 900 ms before 1100 and the 1050 ms after 1400 lie outside [1100, 1400]
    expect(tr.longest(1100, 1400)).toEqual({ ms: 50, process: 'cp1/etcd' });
  });

  it('has nothing to say about an interval holding fewer than two samples of any process', () => {
    const { tr, sampleAll } = tracker({ 10: [0, 10, 20] }, { 10: 'cp1/agent' });
    sampleAll(3);
    expect(tr.longest(1150, 1199)).toBeNull();
    expect(tr.longest(1150, 1250)).toBeNull();
  });

  it('keeps a respawned process (same name, new pid) apart and skips one that is gone', () => {
    // pid 10 crashed after the second sample; pid 12 is its restart, read from the third on
    const { tr, sampleAll } = tracker({ 10: [0, 300, null, null], 12: [null, null, 0, 40] }, { 10: 'cp2/agent', 12: 'cp2/agent' });
    sampleAll(4);
    // across the crash no series spans it: pid 10's 300 ms lie in [1000, 1100], pid 12's 40 ms in [1200, 1300]
    expect(tr.longest(1000, 1300)).toEqual({ ms: 300, process: 'cp2/agent' });
    expect(tr.longest(1150, 1300)).toEqual({ ms: 40, process: 'cp2/agent' });
  });
});

describe('runQueueWaitMs (the kernel)', () => {
  const children: ChildProcess[] = [];
  afterEach(() => {
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });
  const busy = () => {
    // two busy loops pinned to one CPU: each is runnable all the time and gets about half of it
    const c = spawn('taskset', ['-c', '0', 'sh', '-c', 'while :; do :; done'], { stdio: 'ignore' });
    children.push(c);
    return c;
  };

  it('is null for a pid that does not exist', () => {
    expect(runQueueWaitMs(2 ** 22 + 1)).toBeNull();
  });

  it('grows, in milliseconds, while a process is runnable and another has its CPU; not while it sleeps', async () => {
    const sleeper = spawn('sleep', ['5'], { stdio: 'ignore' });
    children.push(sleeper);
    const [a] = [busy(), busy()];
    await new Promise((r) => setTimeout(r, 100));
    const a0 = runQueueWaitMs(a.pid!);
    const s0 = runQueueWaitMs(sleeper.pid!);
    expect(a0).not.toBeNull();
    expect(s0).not.toBeNull();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, 600));
    const elapsed = performance.now() - t0;
    const waited = runQueueWaitMs(a.pid!)! - a0!;
    // sharing one CPU with the other loop, it waits about half the time: well over a tenth of it,
    // and never longer than the time that passed (ns read as ns would be 10^6 × too large)
    expect(waited).toBeGreaterThan(elapsed / 10);
    expect(waited).toBeLessThanOrEqual(elapsed + 5);
    // a sleeping process is not runnable: it waits for nothing
    expect(runQueueWaitMs(sleeper.pid!)! - s0!).toBeLessThan(5);
  });
});
