/**
 * Outage probe: a fresh connection at a fixed short interval (default 10 ms, the DESIGN's
 * "≤ 10 ms"), open loop like the load generator (engine.ts), so probes keep going out every
 * interval even while earlier ones hang. Each probe is
 *  - http(s)://: a new TCP connection (+ full TLS handshake, no session reuse) and one GET, ok when
 *    the status is in [okMin, okMax] (default 200–399), node from `x-served-by` / JSON body;
 *  - tcp:// / tls://: a bare connect (+ handshake), ok when it completes.
 * Raw samples `{t, ok, latencyMs, kind?, node?}` are kept, `t` = intended send time in epoch ms
 * (clock.ts: the same clock the orchestrator stamps `injectAt` with).
 *
 * `computeOutage` turns samples into the client-seen outage; it is pure and documented below.
 */
import { OUTCOME_CANCELLED, OUTCOME_OK, OUTCOME_PENDING, OpenLoopEngine, type Executor, type Handle } from './engine.js';
import { parseTarget, type ErrorKind, type TlsOptions } from './target.js';
import { HttpExecutor, TcpExecutor } from './transport.js';

export interface ProbeSample {
  /** intended send time, epoch ms */
  t: number;
  ok: boolean;
  /** from intended send time to success or failure */
  latencyMs: number;
  kind?: ErrorKind;
  node?: string;
}

/** What computeOutage reads from a sample (ProbeSample, or the same shape after JSON/RPC). */
export interface OutageSample {
  t: number;
  ok: boolean;
  kind?: string;
  node?: string;
}

export interface OutageProbeOptions extends TlsOptions {
  /** http(s)://host[:port]/path, tcp://host:port or tls://host:port */
  target: string;
  /** default 10 */
  intervalMs?: number;
  /** per-probe timeout (default 1000) */
  timeoutMs?: number;
  /** omit to run until stop() */
  durationMs?: number;
  localAddress?: string;
  /** status range that counts as up (default 200–399) */
  okMin?: number;
  okMax?: number;
  /** abort = stop without waiting for probes in flight */
  signal?: AbortSignal;
  startDelayMs?: number;
}

/** Live view for the orchestrator's "recovered yet?" polling. */
export interface ProbeStatus {
  /** probes sent so far */
  sent: number;
  /** failed probes sent at/after `since` */
  failed: number;
  /** successful probes at the tail (probes still in flight are skipped) */
  consecutiveOk: number;
  /** first / last failed probe sent at/after `since` (epoch ms) */
  firstFailAt: number | null;
  lastFailAt: number | null;
}

export interface OutageProbe {
  readonly target: string;
  /** epoch ms of the first probe */
  readonly startedAt: number;
  readonly intervalMs: number;
  /** samples so far (completed probes only) */
  samples(): ProbeSample[];
  /** cheap summary of the samples so far; `since` = epoch ms (default: start) */
  status(since?: number): ProbeStatus;
  /** stop probing; waits for probes in flight (bounded by timeoutMs) and returns every sample */
  stop(): Promise<ProbeSample[]>;
  /** resolves with every sample when the run ends */
  readonly done: Promise<ProbeSample[]>;
}

export function startOutageProbe(o: OutageProbeOptions): OutageProbe {
  const target = parseTarget(o.target);
  const intervalMs = o.intervalMs ?? 10;
  const timeoutMs = o.timeoutMs ?? 1000;
  let exec: Executor;
  if (target.protocol === 'http' || target.protocol === 'https') {
    const http = new HttpExecutor({ target, mode: 'new-connection', connections: 1, tls: o, localAddress: o.localAddress });
    exec = o.okMin !== undefined || o.okMax !== undefined ? withStatusRange(http, o.okMin ?? 200, o.okMax ?? 399) : http;
  } else {
    exec = new TcpExecutor({ target, tls: o, localAddress: o.localAddress });
  }
  const engine = new OpenLoopEngine(exec, {
    rate: 1000 / intervalMs,
    durationMs: o.durationMs,
    timeoutMs,
    // every probe may hang for the whole timeout; never let the cap delay a probe
    maxInFlight: Math.ceil(timeoutMs / intervalMs) + 16,
    signal: o.signal,
    startDelayMs: o.startDelayMs,
  });
  const read = () => toSamples(engine);
  const done = engine.done.then(read);
  return {
    target: o.target,
    startedAt: engine.startedAt,
    intervalMs,
    samples: read,
    status: (since) => probeStatus(engine, since ?? engine.startedAt),
    stop() {
      engine.stop(true);
      return done;
    },
    done,
  };
}

function toSamples(engine: OpenLoopEngine): ProbeSample[] {
  const c = engine.columns();
  const out: ProbeSample[] = [];
  for (let i = 0; i < c.count; i++) {
    const o = c.outcome[i];
    if (o === OUTCOME_PENDING || o === OUTCOME_CANCELLED) continue;
    const s: ProbeSample = { t: round3(c.startedAt + i * c.intervalMs), ok: o === OUTCOME_OK, latencyMs: round3(c.latencyMs[i]) };
    if (o !== OUTCOME_OK) s.kind = c.kinds[o] as ErrorKind;
    if (c.node[i]) s.node = c.nodes[c.node[i]];
    out.push(s);
  }
  return out;
}

function probeStatus(engine: OpenLoopEngine, since: number): ProbeStatus {
  const c = engine.columns();
  const from = Math.max(0, Math.ceil((since - c.startedAt) / c.intervalMs - 1e-9));
  let failed = 0;
  let firstFailAt: number | null = null;
  let lastFailAt: number | null = null;
  for (let i = from; i < c.count; i++) {
    const o = c.outcome[i];
    if (o === OUTCOME_OK || o === OUTCOME_PENDING || o === OUTCOME_CANCELLED) continue;
    failed++;
    const t = round3(c.startedAt + i * c.intervalMs);
    firstFailAt ??= t;
    lastFailAt = t;
  }
  let consecutiveOk = 0;
  for (let i = c.count - 1; i >= 0; i--) {
    const o = c.outcome[i];
    if (o === OUTCOME_PENDING || o === OUTCOME_CANCELLED) continue;
    if (o !== OUTCOME_OK) break;
    consecutiveOk++;
  }
  return { sent: engine.progress().sent, failed, consecutiveOk, firstFailAt, lastFailAt };
}

/** Re-judge http statuses: the engine sees `http-<status>` kinds; map an ok range onto them. */
function withStatusRange(inner: Executor, okMin: number, okMax: number): Executor {
  return {
    start(idx, engine) {
      const proxy = Object.create(engine) as OpenLoopEngine;
      proxy.finish = (i, kind, served) => {
        let k = kind;
        const m = /^http-(\d+)$/.exec(kind);
        const status = m ? Number(m[1]) : kind === 'ok' ? 200 : NaN;
        if (!Number.isNaN(status)) k = status >= okMin && status <= okMax ? 'ok' : (`http-${status}` as ErrorKind);
        engine.finish(i, k, served);
      };
      return inner.start(idx, proxy) as Handle;
    },
    close: () => inner.close?.(),
  };
}

// ---------------------------------------------------------------------------------------------
// computeOutage

export interface OutageOptions {
  /** epoch ms the fault was injected (same clock as the samples) */
  injectAt: number;
  /** consecutive successful probes that end an outage (default 3) */
  recoverSuccesses?: number;
  /**
   * A probe sent up to this long before injectAt may fail BECAUSE of the injection (it was in
   * flight); failures of probes sent earlier are pre-existing and only counted in
   * `preInjectFailures` (default 20 ms: two 10 ms probe periods).
   */
  toleranceMs?: number;
  /** ignore samples sent at or after this time (e.g. the restore), default: all */
  until?: number;
}

export interface OutageBurst {
  /** t of the burst's first failed probe */
  start: number;
  /** t of the first probe of the recovering run; null if it never recovered */
  end: number | null;
  failed: number;
}

export interface OutageResult {
  /** client-seen outage: first failure → final recovery; 0 when no probe failed. If it never
   *  recovered, a lower bound (to the last sample) and `recovered: false` */
  outageMs: number;
  firstFailAt: number | null;
  recoveredAt: number | null;
  recovered: boolean;
  /** failed probes from injection (minus tolerance) on */
  failedProbes: number;
  /** probes considered (from injection minus tolerance, before `until`) */
  probes: number;
  /** failure bursts: > 1 means the endpoint flapped */
  burstCount: number;
  bursts: OutageBurst[];
  failuresByKind: Record<string, number>;
  /** failures of probes sent before injectAt - toleranceMs */
  preInjectFailures: number;
  /** node that answered the last successful probe before the injection */
  nodeBefore: string | null;
  /** node that answered the first probe of the final recovery; when nothing failed, the node of
   *  the last successful probe (a graceful move without a failed probe still shows) */
  nodeAfter: string | null;
}

/**
 * Client-seen outage from probe samples (pure).
 * - Only probes sent at/after `injectAt - toleranceMs` (and before `until`) are considered.
 * - An outage burst starts at a failed probe and ends at the first probe of a run of
 *   `recoverSuccesses` consecutive successes; fewer successes between failures (flapping) keep
 *   the burst open. Failures after a completed recovery start a new burst.
 * - outageMs spans the first burst's first failure to the last burst's recovery; `burstCount`
 *   says how many bursts (flaps) there were.
 * - No failure → outageMs 0. Never recovered (samples end mid-burst, or fewer than
 *   `recoverSuccesses` successes follow the last failure) → recovered=false, recoveredAt null,
 *   outageMs = last considered sample − first failure (a lower bound).
 */
export function computeOutage(samples: readonly OutageSample[], opts: OutageOptions): OutageResult {
  const k = Math.max(1, Math.floor(opts.recoverSuccesses ?? 3));
  const tol = opts.toleranceMs ?? 20;
  const from = opts.injectAt - tol;
  const until = opts.until ?? Infinity;
  const sorted = isSorted(samples) ? samples : [...samples].sort((a, b) => a.t - b.t);

  let preInjectFailures = 0;
  let nodeBefore: string | null = null;
  const considered: OutageSample[] = [];
  for (const s of sorted) {
    if (s.t < from) {
      if (!s.ok) preInjectFailures++;
      else if (s.node && s.t < opts.injectAt) nodeBefore = s.node;
      continue;
    }
    if (s.t >= until) break;
    if (s.ok && s.node && s.t < opts.injectAt) nodeBefore = s.node;
    considered.push(s);
  }

  const bursts: OutageBurst[] = [];
  const failuresByKind: Record<string, number> = {};
  let failedProbes = 0;
  let open: OutageBurst | null = null;
  let run = 0; // consecutive successes while a burst is open
  let runStart = -1;
  let nodeAfter: string | null = null;
  let lastOkNode: string | null = null;
  for (let i = 0; i < considered.length; i++) {
    const s = considered[i];
    if (!s.ok) {
      failedProbes++;
      const kind = s.kind ?? 'other';
      failuresByKind[kind] = (failuresByKind[kind] ?? 0) + 1;
      if (!open) {
        open = { start: s.t, end: null, failed: 0 };
        bursts.push(open);
      }
      open.failed++;
      run = 0;
      continue;
    }
    if (s.node) lastOkNode = s.node;
    if (!open) continue;
    if (run === 0) runStart = i;
    run++;
    if (run >= k) {
      open.end = considered[runStart].t;
      nodeAfter = considered[runStart].node ?? nodeAfter;
      open = null;
      run = 0;
    }
  }

  const last = considered.length ? considered[considered.length - 1].t : opts.injectAt;
  const firstFailAt = bursts.length ? bursts[0].start : null;
  const final = bursts.length ? bursts[bursts.length - 1] : null;
  const recovered = !final || final.end !== null;
  const recoveredAt = final && final.end !== null ? final.end : null;
  const outageMs = firstFailAt === null ? 0 : round3((recoveredAt ?? last) - firstFailAt);
  return {
    outageMs: Math.max(0, outageMs),
    firstFailAt,
    recoveredAt,
    recovered,
    failedProbes,
    probes: considered.length,
    burstCount: bursts.length,
    bursts,
    failuresByKind,
    preInjectFailures,
    nodeBefore,
    nodeAfter: bursts.length ? nodeAfter : lastOkNode,
  };
}

function isSorted(s: readonly OutageSample[]): boolean {
  for (let i = 1; i < s.length; i++) if (s[i].t < s[i - 1].t) return false;
  return true;
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
