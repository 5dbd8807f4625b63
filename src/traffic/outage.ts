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
 * Source ports: the probe stands for MANY clients, each opening one new connection — not for one
 * client hammering a Service. Left to the kernel, one client's connects to one ip:port walk the
 * ephemeral range (RFC 6056 algorithm 4, net/ipv4/inet_hashtables.c __inet_hash_connect: a
 * per-destination offset advanced by 2–16 ports per connect) and come back to a port after ≈ 3 100
 * connects — ≈ 30 s at 100 probes/s. An ingress node keeps a SYN_SENT conntrack entry for a SYN
 * that went unanswered (a dead pod) for nf_conntrack_tcp_timeout_syn_sent = 120 s from its
 * creation (net/netfilter/nf_conntrack_proto_tcp.c tcp_timeouts, and since commit e15d4cdf27cb
 * a retransmitted SYN no longer renews it), and a new SYN from the same 4-tuple joins that entry
 * with its old DNAT to the dead pod (nf_conntrack_tcp_packet: SYN in SYN_SENT = retransmission);
 * kube-proxy flushes only UDP entries. So one client above ≈ 26 new connections/s (3 100 / 120 s)
 * to one Service keeps failing after the endpoint is gone, up to 120 s after its last failed
 * SYN — real kernel behaviour, but a property of that client's connection rate, not of the
 * failover being measured. The probe therefore binds its source ports itself, cycling through
 * PROBE_PORTS (below the kernel's ephemeral range, so its own picks never collide) with one
 * cursor per process: at the default 100 probes/s a (port, destination) pair comes back after
 * ≈ 317 s, longer than the conntrack timeout. The default cursor belongs to this module's
 * instance, i.e. to one thread: the traffic agent runs all its probes in ONE worker thread
 * (probe-worker.ts) with one PortCycle that the next worker continues, so one cursor per process
 * still holds there. `probeReuseMs` gives the figure for
 * any interval; `sourcePorts: 'kernel'` restores the kernel's choice (and the tail).
 *
 * `computeOutage` turns samples into the client-seen outage; it is pure and documented below.
 */
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { OUTCOME_CANCELLED, OUTCOME_OK, OUTCOME_PENDING, OpenLoopEngine, type Executor, type Handle } from './engine.js';
import { MAX_PARSED_BODY, classifyError, httpStatusKind, parseTarget, servedBy, tlsConnectOptions, type ErrorKind, type ParsedTarget, type TlsOptions } from './target.js';
import { HttpExecutor, TcpExecutor } from './transport.js';

/** net/netfilter/nf_conntrack_proto_tcp.c tcp_timeouts[TCP_CONNTRACK_SYN_SENT] = 2 MINS (sysctl nf_conntrack_tcp_timeout_syn_sent) */
export const CONNTRACK_SYN_SENT_MS = 120_000;

/**
 * The probe's own source ports: 1024–32767, below Linux's default ip_local_port_range
 * (32768–60999, Documentation/networking/ip-sysctl.rst), so no socket the kernel binds for the
 * load generator or the streams ever takes one of them.
 */
export const PROBE_PORTS = { low: 1024, high: 32767, get count() { return this.high - this.low + 1; } };

/** ms before the probe reuses a (source port, destination) pair at this interval (one probe at a time per process) */
export function probeReuseMs(intervalMs: number, ports = PROBE_PORTS.count): number {
  return ports * intervalMs;
}

/** New connections per second from one source IP above which the kernel's own port choice revisits a port within the SYN_SENT timeout (≈ 3 100 connects per walk of the ephemeral range). */
export const KERNEL_PORT_WALK_CONNECTS = 3100;
export const kernelReuseRate = (synSentMs = CONNTRACK_SYN_SENT_MS) => KERNEL_PORT_WALK_CONNECTS / (synSentMs / 1000);

/**
 * The fidelity note for reports (results.json `notes`): what the probe's port pattern leaves out,
 * and who would see it.
 */
export function probeFidelityNote(intervalMs: number): string {
  const rate = Math.round(kernelReuseRate());
  return (
    `Outage probe: one new connection every ${intervalMs} ms from source ports it cycles itself (a port comes back after ${Math.round(probeReuseMs(intervalMs) / 1000)} s), ` +
    `standing for many clients. A single client opening more than ≈ ${rate} new connections/s to one Service lets its kernel reuse source ports within ` +
    `nf_conntrack_tcp_timeout_syn_sent (${CONNTRACK_SYN_SENT_MS / 1000} s): after a node with a pod dies (externalTrafficPolicy Cluster) it would also see ` +
    `partial failures after the endpoint is removed, up to ${CONNTRACK_SYN_SENT_MS / 1000} s after its last connection attempt to the dead pod ` +
    '(the ingress node keeps the SYN_SENT conntrack entry and its DNAT; kube-proxy flushes only UDP entries).'
  );
}

/** One cursor per process: consecutive probes (and drills) continue the cycle, never restart it. */
export class PortCycle {
  private cursor: number;
  constructor(
    readonly low = PROBE_PORTS.low,
    readonly high = PROBE_PORTS.high,
    start = low + Math.floor(Math.random() * (high - low + 1)),
  ) {
    this.cursor = start;
  }
  /** the port next() hands out next (to continue the cycle in another thread or worker) */
  get nextPort(): number {
    return this.cursor;
  }
  next(): number {
    const p = this.cursor;
    this.cursor = p >= this.high ? this.low : p + 1;
    return p;
  }
}

const processPorts = new PortCycle();

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
  /**
   * Who picks the source port: 'cycle' (default) = the probe's own cycle (see the header),
   * 'kernel' = the kernel's ephemeral choice, or a PortCycle of the caller's
   */
  sourcePorts?: 'cycle' | 'kernel' | PortCycle;
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
  /**
   * the longest run of successes between two failures at/after `since`: how long the probe has
   * already looked recovered and was not (a dead endpoint among many fails only now and then)
   */
  maxOkRun: number;
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
  /** how often, and how long in all, the probing process itself did not run (see engine.ts) */
  clientStalls(): { count: number; ms: number };
  /** resolves with every sample when the run ends */
  readonly done: Promise<ProbeSample[]>;
}

export function startOutageProbe(o: OutageProbeOptions): OutageProbe {
  const target = parseTarget(o.target);
  const intervalMs = o.intervalMs ?? 10;
  const timeoutMs = o.timeoutMs ?? 1000;
  let exec: Executor;
  const ports = o.sourcePorts === 'kernel' ? null : o.sourcePorts instanceof PortCycle ? o.sourcePorts : processPorts;
  if (ports) {
    const probe = new BoundProbeExecutor(target, ports, o, o.localAddress);
    exec = o.okMin !== undefined || o.okMax !== undefined ? withStatusRange(probe, o.okMin ?? 200, o.okMax ?? 399) : probe;
  } else if (target.protocol === 'http' || target.protocol === 'https') {
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
    clientStalls: () => {
      const p = engine.progress();
      return { count: p.stalls, ms: Math.round(p.stalledMs) };
    },
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
  let run = 0;
  let maxOkRun = 0;
  for (let i = from; i < c.count; i++) {
    const o = c.outcome[i];
    if (o === OUTCOME_PENDING || o === OUTCOME_CANCELLED) continue;
    if (o === OUTCOME_OK) {
      if (firstFailAt !== null) run++;
      continue;
    }
    failed++;
    const t = round3(c.startedAt + i * c.intervalMs);
    firstFailAt ??= t;
    lastFailAt = t;
    if (run > maxOkRun) maxOkRun = run;
    run = 0;
  }
  let consecutiveOk = 0;
  for (let i = c.count - 1; i >= 0; i--) {
    const o = c.outcome[i];
    if (o === OUTCOME_PENDING || o === OUTCOME_CANCELLED) continue;
    if (o !== OUTCOME_OK) break;
    consecutiveOk++;
  }
  return { sent: engine.progress().sent, failed, consecutiveOk, maxOkRun, firstFailAt, lastFailAt };
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

/** errors of a bind to a port someone else holds (a listener, a socket not yet closed): try the next port */
const BIND_BUSY = new Set(['EADDRINUSE', 'EADDRNOTAVAIL']);
const BIND_TRIES = 8;

/**
 * The probe's own connection: one fresh TCP connection (+ TLS, no session reuse) per attempt from
 * the next port of the cycle, then one GET (http/https: `agent: false`, `Connection: close`) or
 * nothing more (tcp/tls). A port that cannot be bound is skipped (the next one is tried at once):
 * that is the probe's business, not a failure of the target.
 */
export class BoundProbeExecutor implements Executor {
  private readonly tlsOpts: ReturnType<typeof tlsConnectOptions> | null;

  constructor(
    private readonly target: ParsedTarget,
    private readonly ports: PortCycle,
    tlsOptions: TlsOptions | undefined,
    private readonly localAddress?: string,
  ) {
    const secure = target.protocol === 'https' || target.protocol === 'tls';
    this.tlsOpts = secure ? tlsConnectOptions(tlsOptions, target.host) : null;
  }

  start(idx: number, engine: OpenLoopEngine): Handle {
    let current: { destroy(err?: Error): unknown } | null = null;
    let cancelled = false;
    const attempt = (tries: number) => {
      const localPort = this.ports.next();
      const retry = (err: Error) => {
        const code = (err as { code?: string }).code ?? '';
        if (BIND_BUSY.has(code) && tries < BIND_TRIES && !cancelled) {
          attempt(tries + 1);
          return true;
        }
        return false;
      };
      current = this.target.protocol === 'http' || this.target.protocol === 'https' ? this.http(idx, engine, localPort, retry) : this.tcp(idx, engine, localPort, retry);
    };
    attempt(1);
    return {
      destroy: (err?: Error) => {
        cancelled = true;
        current?.destroy(err);
      },
    };
  }

  private http(idx: number, engine: OpenLoopEngine, localPort: number, retry: (e: Error) => boolean) {
    const t = this.target;
    const mod = t.protocol === 'https' ? https : http;
    const req = mod.request({
      host: t.host,
      port: t.port,
      path: t.path,
      method: 'GET',
      agent: false,
      localPort,
      ...(this.localAddress ? { localAddress: this.localAddress } : {}),
      ...(this.tlsOpts ?? {}),
    });
    req.on('error', (err) => {
      if (!retry(err)) engine.finish(idx, classifyError(err));
    });
    req.on('response', (res: IncomingMessage) => {
      const failKind = httpStatusKind(res.statusCode ?? 0);
      let body = '';
      let tooBig = false;
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (tooBig) return;
        body += chunk;
        if (body.length > MAX_PARSED_BODY) {
          tooBig = true;
          body = '';
        }
      });
      res.on('end', () => engine.finish(idx, failKind ?? 'ok', servedBy(res.headers, tooBig ? undefined : body)));
      res.on('error', (err) => engine.finish(idx, classifyError(err)));
      res.on('close', () => {
        if (!res.complete) engine.finish(idx, 'reset');
      });
    });
    req.end();
    return req;
  }

  private tcp(idx: number, engine: OpenLoopEngine, localPort: number, retry: (e: Error) => boolean) {
    const t = this.target;
    const opts = { host: t.host, port: t.port, localPort, ...(this.localAddress ? { localAddress: this.localAddress } : {}) };
    const s = this.tlsOpts ? tls.connect({ ...opts, ...this.tlsOpts }) : net.connect(opts);
    s.once(this.tlsOpts ? 'secureConnect' : 'connect', () => {
      engine.finish(idx, 'ok');
      s.destroy();
    });
    s.on('error', (err) => {
      if (!retry(err)) engine.finish(idx, classifyError(err));
    });
    return s;
  }
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
  /** ignore samples sent at or after this time, default: all */
  until?: number;
  /**
   * When a held fault was undone (epoch ms; null/absent: not during the observation). A burst
   * that starts at or after it is the heal's — the returning victim, e.g. a thawed VIP holder
   * announcing the address it still has — not the failover's: it is reported apart (`heal`) and
   * does not stretch `outageMs`. A burst open at the undo (the victim came back before anyone
   * took over) stays the failover's. A heal burst that never ends makes the run unrecovered,
   * with the outage running to the last sample — unless `settledAtUndo`.
   */
  healAt?: number | null;
  /**
   * The observation had judged the failover over (clean by its own rule) before the undo. A heal
   * burst still open when observation stopped is then the heal's alone: the failover's outage
   * stands as measured, and the heal says it had not recovered (`heal.recovered: false`) — a
   * returning victim that breaks the path again is its own event, not a longer failover.
   */
  settledAtUndo?: boolean;
}

/** The failures that began once a held fault was undone: first failure → last recovery. */
export interface HealOutage {
  /** to the last recovery, or to the last sample when the heal had not recovered (a lower bound) */
  outageMs: number;
  bursts: number;
  failedProbes: number;
  /** false: still failing when observation stopped */
  recovered: boolean;
}

export interface OutageBurst {
  /** t of the burst's first failed probe */
  start: number;
  /** t of the first probe of the recovering run; null if it never recovered */
  end: number | null;
  failed: number;
  /** the node that answered the first probe of the recovering run */
  node?: string | null;
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
  /** failure bursts of the outage (the heal's apart): > 1 means the endpoint flapped */
  burstCount: number;
  bursts: OutageBurst[];
  /** bursts that began after `healAt`; null when none (or no healAt) */
  heal: HealOutage | null;
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
      open.node = considered[runStart].node ?? null;
      open = null;
      run = 0;
    }
  }

  const last = considered.length ? considered[considered.length - 1].t : opts.injectAt;
  // the heal's bursts apart when the failover's had ended; a heal that never ended makes the whole
  // stretch a lower bound, unless the failover had been judged over before the undo
  const healAt = opts.healAt ?? null;
  const healStarts = healAt === null ? -1 : bursts.findIndex((b) => b.start >= healAt);
  const ended = (bs: OutageBurst[]) => bs.every((b) => b.end !== null);
  const split = healStarts >= 0 && ended(bursts.slice(0, healStarts)) && (ended(bursts.slice(healStarts)) || opts.settledAtUndo === true);
  const main = split ? bursts.slice(0, healStarts) : bursts;
  const healBursts = split ? bursts.slice(healStarts) : [];
  const healLast = healBursts.at(-1);
  const heal: HealOutage | null =
    healBursts.length && healLast
      ? {
          outageMs: round3((healLast.end ?? last) - healBursts[0]!.start),
          bursts: healBursts.length,
          failedProbes: considered.filter((x) => !x.ok && x.t >= healBursts[0]!.start).length,
          recovered: healLast.end !== null,
        }
      : null;
  const firstFailAt = main.length ? main[0].start : null;
  const final = main.length ? main[main.length - 1] : null;
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
    burstCount: main.length,
    bursts: main,
    heal,
    failuresByKind,
    preInjectFailures,
    nodeBefore,
    nodeAfter: main.length ? (main.findLast((b) => b.node)?.node ?? null) : lastOkNode,
  };
}

function isSorted(s: readonly OutageSample[]): boolean {
  for (let i = 1; i < s.length; i++) if (s[i].t < s[i - 1].t) return false;
  return true;
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
