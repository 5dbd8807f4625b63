/**
 * The open-loop engine shared by the load generator and the outage probe.
 *
 * Attempt i is INTENDED at `t0 + i * intervalMs`, whatever happened to earlier attempts (open
 * loop, as wrk2 and fortio's `-qps` do). One timer per engine wakes up when the next attempt is
 * due (or a deadline passes) and handles every attempt that is due at once, so a 5,000 req/s run
 * costs ~1,000 timer wake-ups per second, not 5,000 timers. Because intended times are implicit,
 * the queue of due-but-unsent attempts is just the index range `[nextSend, scheduled)`: O(1)
 * memory however far the target falls behind.
 *
 * Latency is measured from the intended send time (no coordinated omission): an attempt that
 * waits for a free connection, or for a late timer, carries that wait in its latency.
 * Timeouts: an attempt still QUEUED at `intended + timeoutMs` fails as `timeout` without being
 * sent (this bounds the backlog after an outage); an attempt IN FLIGHT gets `timeoutMs` from its
 * actual send, like a real client's timer, and is then destroyed and counted as `timeout` (its
 * latency from the intended time can thus reach 2 × timeoutMs). Measuring the in-flight deadline
 * from the intended time instead would, under overload, destroy keep-alive connections carrying
 * requests that had just been sent — connection churn that collapses throughput (measured:
 * 6.8k instead of 20k+ req/s on loopback). Attempts are sent in index order at non-decreasing
 * times, so in-flight deadlines are ordered and one sweep of the oldest finds every late one.
 *
 * A stalled client is not an outage of what it measures. When the timer fires more than
 * STALL_MS late, this process did not run for that long (descheduled on a loaded host, a long
 * GC): replies that arrived meanwhile wait unread in their sockets, and Node reads them in the
 * poll phase that FOLLOWS the timer phase. Judging deadlines first would fail attempts whose
 * answers had come in time. So a late tick only sends what is due (attempts that fell due while
 * the client slept go out now, carrying the stall in their latency, instead of expiring unsent)
 * and judges deadlines in a tick after the poll phase. The stalls are counted (`stalls`,
 * `stalledMs`) so a report can say when its client was not running.
 */
import { DeadlineError, type ErrorKind, type ServedBy } from './target.js';

export const OUTCOME_OK = 0;
export const OUTCOME_CANCELLED = 254;
export const OUTCOME_PENDING = 255;

/** a timer this much later than armed means the client itself did not run meanwhile */
export const STALL_MS = 30;

/** Columnar raw samples, one row per attempt (typed arrays inside, number[] once serialised). */
export interface SampleColumns {
  /** epoch ms of attempt 0's intended send time */
  startedAt: number;
  intervalMs: number;
  /** attempts 0..count-1 */
  count: number;
  /** ms from intended send time to the reply's end (or to the failure) */
  latencyMs: ArrayLike<number>;
  /** ms from intended to actual send time (scheduler lag + queueing); NaN when never sent */
  sentMs: ArrayLike<number>;
  /** 0 = ok; otherwise an index into `kinds`; 254 = cancelled by abort (not counted) */
  outcome: ArrayLike<number>;
  kinds: string[];
  /** index into `nodes`, 0 = reply named no node */
  node: ArrayLike<number>;
  nodes: string[];
  /** index into `clientIps`, 0 = reply named no client IP */
  clientIp: ArrayLike<number>;
  clientIps: string[];
}

class Interner {
  readonly list: string[] = [''];
  private readonly map = new Map<string, number>();
  code(s: string | undefined): number {
    if (!s) return 0;
    let c = this.map.get(s);
    if (c === undefined) {
      c = this.list.length;
      this.list.push(s);
      this.map.set(s, c);
    }
    return c;
  }
}

export class SampleStore {
  latencyMs = new Float32Array(1024);
  sentMs = new Float32Array(1024);
  outcome = new Uint8Array(1024).fill(OUTCOME_PENDING);
  node = new Uint16Array(1024);
  clientIp = new Uint16Array(1024);
  count = 0;
  readonly kinds: string[] = ['ok'];
  private readonly kindCodes = new Map<string, number>([['ok', 0]]);
  readonly nodes = new Interner();
  readonly clientIps = new Interner();

  ensure(n: number): void {
    if (n > this.latencyMs.length) {
      let cap = this.latencyMs.length;
      while (cap < n) cap *= 2;
      const grow = <T extends Float32Array | Uint8Array | Uint16Array>(a: T, fill?: number): T => {
        const b = new (a.constructor as { new (n: number): T })(cap);
        if (fill !== undefined) b.fill(fill);
        b.set(a);
        return b;
      };
      this.latencyMs = grow(this.latencyMs);
      this.sentMs = grow(this.sentMs);
      this.outcome = grow(this.outcome, OUTCOME_PENDING);
      this.node = grow(this.node);
      this.clientIp = grow(this.clientIp);
    }
    if (n > this.count) {
      this.sentMs.fill(NaN, this.count, n);
      this.count = n;
    }
  }

  kindCode(kind: string): number {
    let c = this.kindCodes.get(kind);
    if (c === undefined) {
      c = this.kinds.length;
      if (c >= OUTCOME_CANCELLED) c = this.kindCode('other'); // > 250 distinct kinds: fold
      else {
        this.kinds.push(kind);
        this.kindCodes.set(kind, c);
      }
    }
    return c;
  }

  columns(startedAt: number, intervalMs: number): SampleColumns {
    const n = this.count;
    return {
      startedAt,
      intervalMs,
      count: n,
      latencyMs: this.latencyMs.subarray(0, n),
      sentMs: this.sentMs.subarray(0, n),
      outcome: this.outcome.subarray(0, n),
      kinds: this.kinds,
      node: this.node.subarray(0, n),
      nodes: this.nodes.list,
      clientIp: this.clientIp.subarray(0, n),
      clientIps: this.clientIps.list,
    };
  }
}

/** JSON-safe copy of the columns (plain arrays, latencies rounded to µs). */
export function serialiseColumns(c: SampleColumns): SampleColumns {
  const r = (x: number) => (Number.isNaN(x) ? -1 : Math.round(x * 1000) / 1000);
  return {
    startedAt: c.startedAt,
    intervalMs: c.intervalMs,
    count: c.count,
    latencyMs: Array.from(c.latencyMs, r),
    // -1 = never sent (NaN does not survive JSON)
    sentMs: Array.from(c.sentMs, r),
    outcome: Array.from(c.outcome),
    kinds: [...c.kinds],
    node: Array.from(c.node),
    nodes: [...c.nodes],
    clientIp: Array.from(c.clientIp),
    clientIps: [...c.clientIps],
  };
}

/** Something in flight that the engine can cut short (ClientRequest, Socket). */
export interface Handle {
  destroy(err?: Error): unknown;
}

/** Starts one attempt; must end with `engine.finish(idx, …)` (extra calls are ignored). */
export interface Executor {
  start(idx: number, engine: OpenLoopEngine): Handle;
  close?(): void;
}

export interface EngineOptions {
  /** attempts per second */
  rate: number;
  /** schedule length; undefined = until stop() */
  durationMs?: number;
  /** per-attempt deadline: queued = intended + timeoutMs, in flight = actual send + timeoutMs */
  timeoutMs: number;
  /** attempts in flight at once (keep-alive: the connection count) */
  maxInFlight: number;
  /** abort = stop at once without draining (in-flight attempts are cancelled, not counted) */
  signal?: AbortSignal;
  /** delay before attempt 0, so set-up work does not count as scheduler lag (default 0) */
  startDelayMs?: number;
}

export interface EngineProgress {
  startedAt: number;
  elapsedMs: number;
  /** attempts due so far */
  scheduled: number;
  /** attempts that went on the wire (queued ones that expired unsent are not counted) */
  sent: number;
  completed: number;
  ok: number;
  failed: number;
  inFlight: number;
  queued: number;
  /** times the client did not run for more than STALL_MS, and for how long in all */
  stalls: number;
  stalledMs: number;
}

export class OpenLoopEngine {
  readonly store = new SampleStore();
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly maxInFlight: number;
  /** performance.now() of attempt 0's intended time */
  readonly t0: number;
  /** epoch ms of attempt 0's intended time */
  readonly startedAt: number;
  /** resolves when every attempt has an outcome (after the schedule ended) */
  readonly done: Promise<void>;

  private endIdx: number;
  private windowEnd: number;
  private scheduled = 0;
  private nextSend = 0;
  private inFlight = 0;
  private sentInWindow = 0;
  private sentCount = 0;
  private okCount = 0;
  private failCount = 0;
  private readonly flights = new Map<number, Handle>();
  private timer: NodeJS.Timeout | undefined;
  /** performance.now() the pending timer is due at */
  private timerDue = 0;
  /** a late tick handed its deadline checks to the tick after the poll phase */
  private judging: NodeJS.Immediate | undefined;
  private stallCount = 0;
  private stallTotal = 0;
  private inTick = false;
  private finished = false;
  private resolveDone!: () => void;
  private readonly onAbort = () => this.stop(false);

  constructor(
    private readonly executor: Executor,
    private readonly opts: EngineOptions,
  ) {
    if (!(opts.rate > 0) || !Number.isFinite(opts.rate)) throw new RangeError(`rate must be > 0, got ${opts.rate}`);
    if (!(opts.timeoutMs > 0)) throw new RangeError(`timeoutMs must be > 0, got ${opts.timeoutMs}`);
    if (!(opts.maxInFlight >= 1)) throw new RangeError(`maxInFlight must be >= 1, got ${opts.maxInFlight}`);
    if (opts.durationMs !== undefined && !(opts.durationMs > 0)) throw new RangeError(`durationMs must be > 0, got ${opts.durationMs}`);
    this.intervalMs = 1000 / opts.rate;
    this.timeoutMs = opts.timeoutMs;
    this.maxInFlight = Math.floor(opts.maxInFlight);
    this.t0 = performance.now() + (opts.startDelayMs ?? 0);
    this.startedAt = performance.timeOrigin + this.t0;
    // attempts intended strictly before t0 + duration (epsilon: 2 s × 500/s is exactly 1000)
    this.endIdx = opts.durationMs === undefined ? Infinity : Math.max(1, Math.ceil((opts.durationMs * opts.rate) / 1000 - 1e-9));
    this.windowEnd = opts.durationMs === undefined ? Infinity : this.t0 + opts.durationMs;
    this.done = new Promise((r) => (this.resolveDone = r));
    if (opts.signal?.aborted) {
      this.stop(false);
      return;
    }
    opts.signal?.addEventListener('abort', this.onAbort, { once: true });
    this.arm(this.t0);
  }

  intended(idx: number): number {
    return this.t0 + idx * this.intervalMs;
  }

  /** deadline of an attempt in flight (performance.now() scale) */
  private flightDeadline(idx: number): number {
    return this.t0 + idx * this.intervalMs + this.store.sentMs[idx] + this.timeoutMs;
  }

  /** Record an attempt's outcome (called by executors; the first call wins). */
  finish(idx: number, kind: ErrorKind | 'ok', served?: ServedBy): void {
    const s = this.store;
    if (s.outcome[idx] !== OUTCOME_PENDING) return;
    const now = performance.now();
    s.latencyMs[idx] = now - this.intended(idx);
    if (kind === 'ok') {
      s.outcome[idx] = OUTCOME_OK;
      this.okCount++;
    } else {
      s.outcome[idx] = s.kindCode(kind);
      this.failCount++;
    }
    if (served) {
      if (served.node) s.node[idx] = s.nodes.code(served.node);
      if (served.clientIp) s.clientIp[idx] = s.clientIps.code(served.clientIp);
    }
    if (this.flights.delete(idx)) this.inFlight--;
    if (!this.inTick && !this.finished) {
      this.pump(now);
      this.checkDone();
    }
  }

  /**
   * End the schedule now. drain=true: queued attempts still go out and in-flight ones complete
   * (bounded by their deadlines); drain=false: in-flight attempts are destroyed and, like queued
   * ones, not counted.
   */
  stop(drain = true): void {
    if (this.finished) return;
    const now = performance.now();
    if (this.endIdx > this.scheduled || this.windowEnd > now) {
      this.advance(now);
      this.endIdx = this.scheduled;
      this.windowEnd = Math.min(this.windowEnd, Math.max(now, this.t0));
    }
    if (!drain) {
      const s = this.store;
      for (const [idx, h] of this.flights) {
        s.outcome[idx] = OUTCOME_CANCELLED;
        h.destroy();
      }
      this.flights.clear();
      this.inFlight = 0;
      // queued, never sent: drop them from the run
      for (let i = this.nextSend; i < this.scheduled; i++) s.outcome[i] = OUTCOME_CANCELLED;
      this.nextSend = this.scheduled;
    }
    this.tick();
  }

  progress(): EngineProgress {
    const now = performance.now();
    return {
      startedAt: this.startedAt,
      elapsedMs: Math.max(0, Math.min(now, this.windowEnd) - this.t0),
      scheduled: this.scheduled,
      sent: this.sentCount,
      completed: this.okCount + this.failCount,
      ok: this.okCount,
      failed: this.failCount,
      inFlight: this.inFlight,
      queued: this.scheduled - this.nextSend,
      stalls: this.stallCount,
      stalledMs: this.stallTotal,
    };
  }

  /** Length of the schedule window in ms (planned duration, or until stop()). */
  get windowMs(): number {
    const end = Number.isFinite(this.windowEnd) ? this.windowEnd : performance.now();
    return Math.max(0, end - this.t0);
  }

  /** Attempts that actually went on the wire inside the schedule window. */
  get sentInsideWindow(): number {
    return this.sentInWindow;
  }

  columns(): SampleColumns {
    return this.store.columns(this.startedAt, this.intervalMs);
  }

  // --- internals ---

  private advance(now: number): void {
    if (this.scheduled >= this.endIdx || now < this.t0) return;
    const due = Math.min(this.endIdx, Math.floor((now - this.t0) / this.intervalMs) + 1);
    if (due > this.scheduled) {
      this.store.ensure(due);
      this.scheduled = due;
    }
  }

  private readonly tick = (): void => {
    const lateBy = this.timer ? performance.now() - this.timerDue : 0;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.judging) {
      clearImmediate(this.judging);
      this.judging = undefined;
    }
    if (this.finished) return;
    const stalled = lateBy > STALL_MS;
    if (stalled) {
      this.stallCount++;
      this.stallTotal += lateBy;
    }
    this.inTick = true;
    try {
      const now = performance.now();
      this.advance(now);
      if (!stalled) this.sweep(now);
      this.pump(now, !stalled);
    } finally {
      this.inTick = false;
    }
    if (this.checkDone()) return;
    if (stalled) {
      // check → the next loop iteration's poll phase reads what arrived → its check phase judges
      this.judging = setImmediate(() => (this.judging = setImmediate(this.tick)));
      return;
    }
    // next wake-up: the next intended send, the oldest queued or in-flight deadline
    let next = Infinity;
    if (this.scheduled < this.endIdx) next = this.intended(this.scheduled);
    if (this.nextSend < this.scheduled) next = Math.min(next, this.intended(this.nextSend) + this.timeoutMs);
    const oldest = this.flights.keys().next();
    if (!oldest.done) next = Math.min(next, this.flightDeadline(oldest.value));
    if (next < Infinity) this.arm(next);
  };

  private arm(atPerf: number): void {
    // setTimeout has 1 ms granularity; attempts due in between go out in the same batch
    const delay = Math.max(0, atPerf - performance.now());
    // setTimeout fires after ≥ 1 ms, whatever the delay: due at no earlier than now + 1
    this.timerDue = Math.max(atPerf, performance.now() + 1);
    this.timer = setTimeout(this.tick, delay);
  }

  /** Fail in-flight attempts whose deadline has passed (oldest first: deadlines are ordered). */
  private sweep(now: number): void {
    for (const [idx, h] of this.flights) {
      if (this.flightDeadline(idx) > now) break;
      this.flights.delete(idx);
      this.inFlight--;
      this.finish(idx, 'timeout');
      h.destroy(new DeadlineError());
    }
  }

  private pump(now: number, expire = true): void {
    const s = this.store;
    // queued attempts already past their deadline fail without being sent (not right after the
    // client itself stalled: they fell due while it did not run, they go out now)
    while (expire && this.nextSend < this.scheduled && this.intended(this.nextSend) + this.timeoutMs <= now) {
      const idx = this.nextSend++;
      s.latencyMs[idx] = now - this.intended(idx);
      s.outcome[idx] = s.kindCode('timeout');
      this.failCount++;
    }
    while (this.nextSend < this.scheduled && this.inFlight < this.maxInFlight) {
      const idx = this.nextSend++;
      const t = performance.now();
      s.sentMs[idx] = t - this.intended(idx);
      this.sentCount++;
      if (t <= this.windowEnd) this.sentInWindow++;
      this.inFlight++;
      let h: Handle;
      try {
        h = this.executor.start(idx, this);
      } catch {
        this.inFlight--;
        this.finish(idx, 'other');
        continue;
      }
      if (s.outcome[idx] === OUTCOME_PENDING) this.flights.set(idx, h);
      else this.inFlight--; // finished synchronously (inFlight was not decremented by finish)
    }
  }

  private checkDone(): boolean {
    if (this.finished) return true;
    if (this.scheduled >= this.endIdx && this.nextSend >= this.scheduled && this.inFlight === 0) {
      this.finished = true;
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
      if (this.judging) clearImmediate(this.judging);
      this.judging = undefined;
      this.opts.signal?.removeEventListener('abort', this.onAbort);
      this.executor.close?.();
      this.resolveDone();
      return true;
    }
    return false;
  }
}
