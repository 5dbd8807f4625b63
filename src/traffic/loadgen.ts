/**
 * Open-loop, constant-rate HTTP/1.1 load generator (the wrk2 / fortio `-qps` model).
 *
 * - Requests are scheduled at `rate` whatever the replies do; latency counts from the INTENDED
 *   send time, so a stall shows up in every request that was due during it (no coordinated
 *   omission). `serviceLatencyMs` (from the actual send) is also reported: it is what a
 *   closed-loop tool would show, and the gap between the two is the queueing the target caused.
 * - Modes: `keepalive` (C persistent connections, one request in flight on each — HTTP/1.1
 *   without pipelining; requests due while all C are busy wait in the open-loop queue) and
 *   `new-connection` (a fresh TCP (+TLS) connection per request, up to `maxInFlight` at once).
 * - Timeouts (engine.ts): a request still queued at intended + timeoutMs fails as `timeout`
 *   without being sent (the backlog after an outage stays bounded); one in flight gets
 *   timeoutMs from its actual send.
 * - HTTP client: undici's low-level dispatch by default (faster than node:http on this box, see
 *   transport.ts and docs/benchmarks.md); `client: 'node'` uses node:http / node:https.
 * - Latency statistics cover successful replies (status < 400); failures are counted by kind.
 * - The lab's echo servers answer `{"node":"w1","clientIp":"10.0.0.1"}`, the API stand-in sends
 *   `x-served-by: cp1`: both feed `nodeShare` and `clientIps`.
 */
import { OpenLoopEngine, serialiseColumns, type EngineProgress, type SampleColumns } from './engine.js';
import { LatencyHistogram, type LatencyStats } from './histogram.js';
import { phaseStats, timeline, windowStats, type PhaseStats, type TimelineBucket, type WindowStats } from './stats.js';
import { parseTarget, type ErrorKind, type TlsOptions } from './target.js';
import { HttpExecutor, UndiciExecutor, type LoadMode } from './transport.js';

export type { LoadMode } from './transport.js';

export interface LoadOptions extends TlsOptions {
  /** http:// or https:// URL */
  url: string;
  /** target requests per second */
  rate: number;
  /** run length; omit to run until stop() */
  durationMs?: number;
  /** keep-alive connections (default 16) */
  connections?: number;
  mode?: LoadMode;
  /** per-request timeout in ms (default 2000; see engine.ts for how queued requests count it) */
  timeoutMs?: number;
  /** HTTP client implementation (default 'undici') */
  client?: 'undici' | 'node';
  /** new-connection mode: requests in flight at once (default 1024) */
  maxInFlight?: number;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  localAddress?: string;
  /** parse small JSON bodies for node / clientIp (default true) */
  parseBody?: boolean;
  /** abort = stop now without draining */
  signal?: AbortSignal;
  /** keep the raw per-request samples in the result (default true) */
  keepSamples?: boolean;
  /** delay before the first request (default 0) */
  startDelayMs?: number;
}

/** A run, with the field names of a results.json run (requests, errors, latencyMs…). */
export interface LoadResult {
  url: string;
  mode: LoadMode;
  connections: number;
  /** epoch ms of the first request's intended send time */
  startedAt: number;
  /** schedule window (planned duration, or until stop) */
  durationMs: number;
  targetRps: number;
  /** requests actually sent inside the window, per second */
  achievedRps: number;
  /** successful replies completed inside the window, per second of window (as wrk counts) */
  throughputRps: number;
  requests: number;
  errors: number;
  errorsByKind: Partial<Record<ErrorKind, number>>;
  /** successful replies, from the intended send time */
  latencyMs: LatencyStats;
  /** successful replies, from the actual send time (what a closed-loop tool would report) */
  serviceLatencyMs: LatencyStats;
  /** actual minus intended send time of sent requests (generator lag + queueing for a connection) */
  sendLagMs: { p50: number; p99: number; max: number };
  nodeShare: Record<string, number>;
  nodeCounts: Record<string, number>;
  clientIps: string[];
  /** per second */
  timeline: TimelineBucket[];
  /** per 100 ms, for charts */
  timeline100ms: TimelineBucket[];
  /** raw per-request samples (JSON-safe) when keepSamples */
  samples?: SampleColumns;
  /** stats of requests intended in [fromMs, toMs) (epoch ms). Not enumerable: it does not travel
   *  in JSON; after JSON use `windowStats(result.samples, from, to)` */
  readonly window: (fromMs: number, toMs: number) => WindowStats;
  /** before / during / after an injection (see stats.ts phaseStats); not enumerable */
  readonly phases: (injectAt: number, recoveredAt?: number | null, duringMs?: number) => PhaseStats;
}

export interface LoadGenerator {
  readonly url: string;
  /** epoch ms of the first request's intended send time */
  readonly startedAt: number;
  /** resolves with the result when the run ends (duration elapsed, stop(), or abort) */
  readonly done: Promise<LoadResult>;
  /** end the schedule now; drain (default) lets queued/in-flight requests finish */
  stop(drain?: boolean): Promise<LoadResult>;
  progress(): EngineProgress;
  /** stats of requests intended in [fromMs, toMs) (epoch ms), available while running too */
  window(fromMs: number, toMs: number): WindowStats;
  phases(injectAt: number, recoveredAt?: number | null, duringMs?: number): PhaseStats;
  /** live view of the raw samples (typed arrays; serialise before sending elsewhere) */
  columns(): SampleColumns;
}

export function startLoad(o: LoadOptions): LoadGenerator {
  const target = parseTarget(o.url);
  if (target.protocol !== 'http' && target.protocol !== 'https') throw new TypeError(`load needs an http(s) URL, got ${o.url}`);
  const mode = o.mode ?? 'keepalive';
  if (mode !== 'keepalive' && mode !== 'new-connection') throw new TypeError(`mode must be keepalive or new-connection, got ${String(mode)}`);
  const connections = Math.max(1, Math.floor(o.connections ?? 16));
  const timeoutMs = o.timeoutMs ?? 2000;
  const maxInFlight = mode === 'keepalive' ? connections : Math.max(1, Math.floor(o.maxInFlight ?? 1024));
  const common = {
    target,
    mode,
    connections,
    tls: o,
    method: o.method,
    headers: o.headers,
    body: o.body,
    localAddress: o.localAddress,
    parseBody: o.parseBody,
  };
  const exec = (o.client ?? 'undici') === 'node' ? new HttpExecutor(common) : new UndiciExecutor({ ...common, slots: maxInFlight, timeoutMs });
  const engine = new OpenLoopEngine(exec, {
    rate: o.rate,
    durationMs: o.durationMs,
    timeoutMs,
    maxInFlight,
    signal: o.signal,
    startDelayMs: o.startDelayMs,
  });
  const done = engine.done.then(() => buildResult(engine, o.url, mode, connections, o.rate, o.keepSamples ?? true));
  return {
    url: o.url,
    startedAt: engine.startedAt,
    done,
    stop(drain = true) {
      engine.stop(drain);
      return done;
    },
    progress: () => engine.progress(),
    window: (from, to) => windowStats(engine.columns(), from, to),
    phases: (injectAt, recoveredAt, duringMs) => phaseStats(engine.columns(), injectAt, recoveredAt, duringMs),
    columns: () => engine.columns(),
  };
}

/** Run for `durationMs` (or until the signal aborts) and return the result. */
export function runLoad(o: LoadOptions & { durationMs: number }): Promise<LoadResult> {
  return startLoad(o).done;
}

function buildResult(engine: OpenLoopEngine, url: string, mode: LoadMode, connections: number, rate: number, keepSamples: boolean): LoadResult {
  const c = engine.columns();
  const whole = windowStats(c);
  const service = new LatencyHistogram();
  const lag = new LatencyHistogram();
  const windowMs = engine.windowMs;
  let okInWindow = 0;
  for (let i = 0; i < c.count; i++) {
    const sent = c.sentMs[i];
    if (Number.isNaN(sent)) continue;
    lag.record(sent);
    if (c.outcome[i] === 0) {
      service.record(c.latencyMs[i] - sent);
      if (i * c.intervalMs + c.latencyMs[i] <= windowMs) okInWindow++;
    }
  }
  const lagStats = lag.stats();
  const r3 = (x: number) => Math.round(x * 1000) / 1000;
  const result = {
    url,
    mode,
    connections,
    startedAt: engine.startedAt,
    durationMs: r3(windowMs),
    targetRps: rate,
    achievedRps: windowMs > 0 ? r3((engine.sentInsideWindow * 1000) / windowMs) : 0,
    throughputRps: windowMs > 0 ? r3((okInWindow * 1000) / windowMs) : 0,
    requests: whole.requests,
    errors: whole.errors,
    errorsByKind: whole.errorsByKind,
    latencyMs: whole.latencyMs,
    serviceLatencyMs: service.stats(),
    sendLagMs: { p50: lagStats.p50, p99: lagStats.p99, max: lagStats.max },
    nodeShare: whole.nodeShare,
    nodeCounts: whole.nodeCounts,
    clientIps: whole.clientIps,
    timeline: timeline(c, 1000),
    timeline100ms: timeline(c, 100),
    ...(keepSamples ? { samples: serialiseColumns(c) } : {}),
  };
  Object.defineProperties(result, {
    window: { value: (from: number, to: number) => windowStats(c, from, to), enumerable: false },
    phases: { value: (injectAt: number, recoveredAt?: number | null, duringMs?: number) => phaseStats(c, injectAt, recoveredAt, duringMs), enumerable: false },
  });
  return result as LoadResult;
}
