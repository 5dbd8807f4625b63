/**
 * The outage probe in a worker thread. The probe's verdicts are its timers: a probe that did not
 * answer within timeoutMs failed. On the client agent's main thread the load generator and the
 * stream probes share one event loop with the probe, and on a loaded 2-core host a busy loop
 * fires the probe's timers late — the probe then measures its own event-loop stalls (failed
 * samples finishing in batches, "successes" slower than the timeout). A worker thread has its own
 * event loop (and OS thread), so nothing the main thread does delays it.
 *
 * One worker per process hosts every probe of the process (ProbeWorker.shared): the probes' source
 * ports come from one PortCycle (outage.ts) inside it, so two probes of one process never pick
 * the same port. The worker runs while a probe runs or someone holds it (`retain()`: the traffic
 * agent does from its start to its stop, so every drill finds it booted and warm); a later worker
 * continues the cycle where the last one stopped (the port is handed back with every `stop`), so
 * consecutive drills never restart the cycle.
 *
 * Everything crosses the thread boundary as messages: start / status / samples / stop, each
 * answered asynchronously; RemoteProbe mirrors OutageProbe with promises.
 */
import { Worker } from 'node:worker_threads';
import type { OutageProbeOptions, ProbeSample, ProbeStatus } from './outage.js';

/** What a worker probe accepts: OutageProbeOptions minus what cannot cross threads (AbortSignal, a PortCycle object). */
export interface WorkerProbeOptions extends Omit<OutageProbeOptions, 'signal' | 'sourcePorts'> {
  /** 'cycle' (default): the worker's shared cycle; 'kernel': the kernel's ephemeral choice */
  sourcePorts?: 'cycle' | 'kernel';
}

/** ProbeStatus plus, when asked with a cursor, the samples completed since it and the next cursor. */
export interface RemoteProbeStatus extends ProbeStatus {
  samples?: { t: number; ok: boolean; latencyMs: number }[];
  cursor?: number;
}

export interface RemoteProbe {
  readonly target: string;
  /** epoch ms of the first probe */
  readonly startedAt: number;
  readonly intervalMs: number;
  status(since?: number, cursor?: number): Promise<RemoteProbeStatus>;
  samples(): Promise<ProbeSample[]>;
  /** stop probing; waits for probes in flight (bounded by timeoutMs) and returns every sample */
  stop(): Promise<ProbeSample[]>;
}

/** workerData of the worker thread */
export interface ProbeWorkerData {
  /** first port of the worker's cycle: where the process's previous worker stopped */
  portStart?: number;
}

/** host → worker; req 0 is reserved for the worker's "ready" */
export type WorkerRequest =
  | { req: number; op: 'start'; id: number; options: WorkerProbeOptions }
  | { req: number; op: 'status'; id: number; since?: number; cursor?: number }
  | { req: number; op: 'samples'; id: number }
  | { req: number; op: 'stop'; id: number };

/** worker → host */
export type WorkerReply = { req: number; ok: true; value: unknown } | { req: number; ok: false; error: string };

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

const BOOT = new URL('./probe-worker-boot.mjs', import.meta.url);

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
}

class WorkerHandle {
  readonly worker: Worker;
  readonly pending = new Map<number, Pending>();
  /** probe ids started and not yet stopped */
  readonly live = new Set<number>();
  /** retain() holders */
  holders = 0;
  /** resolves when the worker has loaded its modules */
  readonly ready: Promise<void>;
  /** set once the worker exited or failed: every later request fails with it */
  dead: Error | null = null;
  private nextReq = 1;
  readonly exited: Promise<number>;

  constructor(data: ProbeWorkerData) {
    this.worker = new Worker(BOOT, { workerData: data, execArgv: [] });
    this.ready = new Promise<void>((resolve, reject) => this.pending.set(0, { resolve: () => resolve(), reject }));
    this.ready.catch(() => undefined); // observed through request()/retain()
    this.worker.on('message', (m: WorkerReply) => {
      const p = this.pending.get(m.req);
      if (!p) return;
      this.pending.delete(m.req);
      if (m.ok) p.resolve(m.value);
      else p.reject(new Error(m.error));
    });
    this.worker.on('error', (e) => this.fail(new Error(`outage probe worker failed: ${e.message}`)));
    this.exited = new Promise((resolve) => {
      this.worker.once('exit', (code) => {
        this.fail(new Error(`outage probe worker exited (code ${code})`));
        resolve(code);
      });
    });
  }

  request<T>(m: DistributiveOmit<WorkerRequest, 'req'>): Promise<T> {
    if (this.dead) return Promise.reject(this.dead);
    const req = this.nextReq++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(req, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ ...m, req } as WorkerRequest);
    });
  }

  private fail(e: Error): void {
    this.dead ??= e;
    for (const p of this.pending.values()) p.reject(this.dead);
    this.pending.clear();
  }
}

export class ProbeWorker {
  /** the process's probe worker: every probe of the agent goes through it */
  static readonly shared = new ProbeWorker();

  private handle: WorkerHandle | null = null;
  private nextId = 1;
  /** where the next worker's port cycle starts (undefined: a random port, as in-process) */
  private portStart: number | undefined;

  /** the running worker thread, if any (for tests and diagnostics) */
  get worker(): Worker | null {
    return this.handle && !this.handle.dead ? this.handle.worker : null;
  }

  /** where the next worker's port cycle will start (undefined until a probe stopped) */
  get nextPort(): number | undefined {
    return this.portStart;
  }

  /** probes started and not stopped */
  get probes(): number {
    return this.handle?.live.size ?? 0;
  }

  /**
   * Keep the worker running (booted now) until the returned release is called, so probes started
   * meanwhile find it warm; it ends when nothing holds it and no probe runs.
   */
  async retain(): Promise<() => Promise<void>> {
    const h = this.current();
    h.holders++;
    let released = false;
    const release = async () => {
      if (released) return;
      released = true;
      h.holders--;
      if (this.idle(h)) await this.retire(h);
    };
    try {
      await h.ready;
    } catch (e) {
      await release();
      throw e;
    }
    return release;
  }

  async start(options: WorkerProbeOptions): Promise<RemoteProbe> {
    const h = this.current();
    const id = this.nextId++;
    h.live.add(id);
    let started: { startedAt: number; intervalMs: number };
    try {
      started = await h.request({ op: 'start', id, options });
    } catch (e) {
      h.live.delete(id);
      if (this.idle(h)) await this.retire(h);
      throw e;
    }
    let stopped: Promise<ProbeSample[]> | null = null;
    return {
      target: options.target,
      startedAt: started.startedAt,
      intervalMs: started.intervalMs,
      status: (since, cursor) => h.request<RemoteProbeStatus>({ op: 'status', id, since, cursor }),
      samples: () => h.request<ProbeSample[]>({ op: 'samples', id }),
      stop: () => (stopped ??= this.stopProbe(h, id)),
    };
  }

  /** end the worker now, whoever holds it (probes still running are lost) */
  async terminate(): Promise<void> {
    const h = this.handle;
    if (h) await this.retire(h);
  }

  private async stopProbe(h: WorkerHandle, id: number): Promise<ProbeSample[]> {
    try {
      const r = await h.request<{ samples: ProbeSample[]; nextPort: number }>({ op: 'stop', id });
      this.portStart = r.nextPort;
      return r.samples;
    } finally {
      h.live.delete(id);
      if (this.idle(h)) await this.retire(h);
    }
  }

  private current(): WorkerHandle {
    if (!this.handle || this.handle.dead) this.handle = new WorkerHandle({ portStart: this.portStart });
    return this.handle;
  }

  private idle(h: WorkerHandle): boolean {
    return h.live.size === 0 && h.holders === 0;
  }

  private async retire(h: WorkerHandle): Promise<void> {
    if (this.handle === h) this.handle = null;
    if (!h.dead) {
      h.dead = new Error('outage probe worker was stopped');
      await h.worker.terminate();
    }
    await h.exited;
  }
}

/** Start an outage probe in the process's probe worker. */
export function startWorkerProbe(options: WorkerProbeOptions): Promise<RemoteProbe> {
  return ProbeWorker.shared.start(options);
}
