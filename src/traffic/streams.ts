/**
 * Long-lived connection probe: N connections held open, each expected to carry data every
 * ~tickMs; a connection that dies (RST, EPIPE, FIN) is a `reset`, one that goes silent for more
 * than stallMs is a `stall`. This is what exposes ECMP re-hashing (a flow moved to a node that
 * does not know it gets a RST) and VIP moves (pitfall 5: long-lived connections through the VIP
 * break on failover and need a client-side reconnect). Broken streams are not reopened: the
 * outcome per stream is the measurement.
 *
 * Two kinds of target (the lab's echo pods offer both):
 * - `http(s)://host:port/stream`: GET returning a chunked response with a tick every ~50 ms; the
 *   first line of the body is JSON naming the pod: `{"node":"w1","clientIp":"10.0.0.1"}`.
 * - `tcp://host:port` (or `tls://`): a raw echo port. The client writes a small line
 *   (`{"seq":N}\n`) every tickMs and expects it back. If the server greets with a JSON line
 *   `{"node":"w1","clientIp":"…"}` on connect, the stream learns its node from it; otherwise
 *   `node` stays null.
 *
 * One interval timer drives every stream (writes and stall checks), not one timer per stream.
 */
import http, { type ClientRequest, type IncomingMessage } from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { epochNow } from './clock.js';
import { classifyError, parseTarget, tlsConnectOptions, type ParsedTarget, type TlsOptions } from './target.js';

export type StreamBreak = 'reset' | 'stall';

export interface StreamOutcome {
  id: number;
  /** pod that served the stream, from its first JSON line (null if it never said) */
  node: string | null;
  /** source address the pod saw (ingress node's IP under ETP Cluster, the client's under Local) */
  clientIp: string | null;
  opened: boolean;
  openedAt: number | null;
  /** first way the stream broke, null if it was fine until stop() */
  broken: StreamBreak | null;
  /** reset: when the error/close arrived; stall: when data was last seen (silence began) */
  brokenAt: number | null;
  /** why: errno (ECONNRESET, EPIPE…), 'closed' (FIN), 'stall', or why it never opened */
  reason: string | null;
  /** a stalled stream that later carried data again (e.g. a frozen node thawed) */
  resumedAt: number | null;
  /** when the connection ended before stop() (after a stall too), else null */
  closedAt: number | null;
  /** data events received */
  messages: number;
  lastDataAt: number | null;
}

export interface StreamsResult {
  target: string;
  startedAt: number;
  stoppedAt: number | null;
  streams: StreamOutcome[];
  opened: number;
  resets: number;
  stalls: number;
  failedToOpen: number;
  /** node -> streams it served, and how many of those broke */
  byNode: Record<string, { streams: number; resets: number; stalls: number }>;
}

export interface StreamProbeOptions extends TlsOptions {
  /** http(s)://host:port/stream or tcp://host:port / tls://host:port */
  target: string;
  /** connections to hold open */
  streams: number;
  /** tcp: write interval; also the stall-check period (default 50) */
  tickMs?: number;
  /** silence longer than this is a stall (default 1000) */
  stallMs?: number;
  /** give up opening after this long (default 2000) */
  connectTimeoutMs?: number;
  localAddress?: string;
  /** abort = stop() */
  signal?: AbortSignal;
}

export interface StreamProbe {
  readonly target: string;
  readonly startedAt: number;
  /** resolves when every stream has opened or failed to */
  readonly ready: Promise<void>;
  status(): StreamsResult;
  /** close every stream and return the outcomes */
  stop(): Promise<StreamsResult>;
}

const MAX_GREETING = 4096;

class Stream {
  readonly o: StreamOutcome;
  socket: net.Socket | null = null;
  req: ClientRequest | null = null;
  private seq = 0;
  private head = '';
  private headDone = false;
  private settleOpen!: () => void;
  readonly openSettled = new Promise<void>((r) => (this.settleOpen = r));
  private connectTimer: NodeJS.Timeout | undefined;
  stopping = false;

  constructor(
    id: number,
    private readonly t: ParsedTarget,
    private readonly opts: StreamProbeOptions,
  ) {
    this.o = {
      id,
      node: null,
      clientIp: null,
      opened: false,
      openedAt: null,
      broken: null,
      brokenAt: null,
      reason: null,
      resumedAt: null,
      closedAt: null,
      messages: 0,
      lastDataAt: null,
    };
  }

  open(): void {
    const t = this.t;
    const timeout = this.opts.connectTimeoutMs ?? 2000;
    this.connectTimer = setTimeout(() => this.failOpen('connect-timeout'), timeout);
    if (t.protocol === 'http' || t.protocol === 'https') {
      const mod = t.protocol === 'https' ? https : http;
      const req = mod.request({
        host: t.host,
        port: t.port,
        path: t.path,
        method: 'GET',
        agent: false,
        ...(this.opts.localAddress ? { localAddress: this.opts.localAddress } : {}),
        ...(t.protocol === 'https' ? tlsConnectOptions(this.opts, t.host) : {}),
      });
      this.req = req;
      req.on('response', (res: IncomingMessage) => {
        if ((res.statusCode ?? 0) >= 300) {
          res.resume();
          this.failOpen(`http-${res.statusCode}`);
          return;
        }
        this.opened();
        res.on('data', (chunk: Buffer) => this.onData(chunk));
        res.on('end', () => this.onClosed('closed'));
        res.on('error', (e) => this.onClosed(errName(e)));
        res.on('close', () => this.onClosed(res.complete ? 'closed' : 'ECONNRESET'));
      });
      req.on('error', (e) => (this.o.opened ? this.onClosed(errName(e)) : this.failOpen(classifyError(e))));
      req.end();
      return;
    }
    const secure = t.protocol === 'tls';
    const s = secure
      ? tls.connect({ host: t.host, port: t.port, ...(this.opts.localAddress ? { localAddress: this.opts.localAddress } : {}), ...tlsConnectOptions(this.opts, t.host) })
      : net.connect({ host: t.host, port: t.port, ...(this.opts.localAddress ? { localAddress: this.opts.localAddress } : {}) });
    this.socket = s;
    s.setNoDelay(true);
    s.once(secure ? 'secureConnect' : 'connect', () => {
      this.opened();
      this.write();
    });
    s.on('data', (chunk: Buffer) => this.onData(chunk));
    s.on('error', (e) => (this.o.opened ? this.onClosed(errName(e)) : this.failOpen(classifyError(e))));
    s.on('close', () => (this.o.opened ? this.onClosed('closed') : this.failOpen('closed')));
  }

  /** tcp echo: one small line per tick (skipped while the kernel buffer is backed up) */
  write(): void {
    const s = this.socket;
    if (!s || !this.o.opened || s.destroyed || s.writableLength > 65536) return;
    s.write(`{"seq":${this.seq++}}\n`);
  }

  check(now: number, stallMs: number): void {
    const o = this.o;
    if (!o.opened || o.broken || o.closedAt !== null || o.lastDataAt === null) return;
    if (now - o.lastDataAt > stallMs) {
      o.broken = 'stall';
      o.brokenAt = o.lastDataAt;
      o.reason = 'stall';
    }
  }

  close(): void {
    this.stopping = true;
    clearTimeout(this.connectTimer);
    this.socket?.destroy();
    this.req?.destroy();
    this.settleOpen();
  }

  private opened(): void {
    clearTimeout(this.connectTimer);
    const now = epochNow();
    this.o.opened = true;
    this.o.openedAt = now;
    this.o.lastDataAt = now; // the stall clock starts at open
    this.settleOpen();
  }

  private failOpen(reason: string): void {
    if (this.o.opened || this.o.reason !== null || this.stopping) return;
    clearTimeout(this.connectTimer);
    this.o.reason = reason;
    this.socket?.destroy();
    this.req?.destroy();
    this.settleOpen();
  }

  private onData(chunk: Buffer): void {
    const o = this.o;
    const now = epochNow();
    o.messages++;
    if (o.broken === 'stall' && o.resumedAt === null) o.resumedAt = now;
    o.lastDataAt = now;
    if (!this.headDone) this.readGreeting(chunk.toString('utf8'));
  }

  private readGreeting(text: string): void {
    this.head += text;
    let nl: number;
    while ((nl = this.head.indexOf('\n')) >= 0) {
      const line = this.head.slice(0, nl).trim();
      this.head = this.head.slice(nl + 1);
      if (line.startsWith('{')) {
        try {
          const j = JSON.parse(line) as { node?: unknown; clientIp?: unknown };
          if (typeof j.node === 'string') this.o.node = j.node;
          if (typeof j.clientIp === 'string') this.o.clientIp = j.clientIp;
        } catch {
          /* not JSON */
        }
      }
      // the greeting is the first line; an echo of our own line means the server sends none
      this.headDone = true;
      this.head = '';
      return;
    }
    if (this.head.length > MAX_GREETING) {
      this.headDone = true;
      this.head = '';
    }
  }

  private onClosed(reason: string): void {
    const o = this.o;
    if (this.stopping || o.closedAt !== null) return;
    const now = epochNow();
    o.closedAt = now;
    if (!o.broken) {
      o.broken = 'reset';
      o.brokenAt = now;
      o.reason = reason;
    }
    this.socket?.destroy();
    this.req?.destroy();
  }
}

function errName(e: unknown): string {
  const err = e as { code?: string; message?: string };
  if (err?.code) return err.code;
  return /aborted|hang up/i.test(err?.message ?? '') ? 'ECONNRESET' : 'error';
}

export function startStreamProbe(opts: StreamProbeOptions): StreamProbe {
  const t = parseTarget(opts.target);
  const n = Math.floor(opts.streams);
  if (!(n >= 1)) throw new RangeError(`streams must be >= 1, got ${opts.streams}`);
  const tickMs = opts.tickMs ?? 50;
  const stallMs = opts.stallMs ?? 1000;
  const tcp = t.protocol === 'tcp' || t.protocol === 'tls';
  const startedAt = epochNow();
  let stoppedAt: number | null = null;
  const streams = Array.from({ length: n }, (_, i) => new Stream(i, t, opts));
  for (const s of streams) s.open();
  const timer = setInterval(
    () => {
      const now = epochNow();
      for (const s of streams) {
        if (tcp) s.write();
        s.check(now, stallMs);
      }
    },
    Math.max(5, Math.min(tickMs, stallMs / 4)),
  );

  const status = (): StreamsResult => summarise(opts.target, startedAt, stoppedAt, streams.map((s) => ({ ...s.o })));
  let stopped: Promise<StreamsResult> | undefined;
  const stop = (): Promise<StreamsResult> => {
    stopped ??= (async () => {
      clearInterval(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      // a last stall check, so silence right before stop is not lost
      const now = epochNow();
      for (const s of streams) s.check(now, stallMs);
      stoppedAt = now;
      for (const s of streams) s.close();
      return status();
    })();
    return stopped;
  };
  const onAbort = () => void stop();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  return {
    target: opts.target,
    startedAt,
    ready: Promise.all(streams.map((s) => s.openSettled)).then(() => undefined),
    status,
    stop,
  };
}

export function summarise(target: string, startedAt: number, stoppedAt: number | null, outcomes: StreamOutcome[]): StreamsResult {
  const byNode: StreamsResult['byNode'] = {};
  for (const o of outcomes) {
    if (!o.opened) continue;
    const k = o.node ?? '(unknown)';
    const b = (byNode[k] ??= { streams: 0, resets: 0, stalls: 0 });
    b.streams++;
    if (o.broken === 'reset') b.resets++;
    if (o.broken === 'stall') b.stalls++;
  }
  return {
    target,
    startedAt,
    stoppedAt,
    streams: outcomes,
    opened: outcomes.filter((o) => o.opened).length,
    resets: outcomes.filter((o) => o.broken === 'reset').length,
    stalls: outcomes.filter((o) => o.broken === 'stall').length,
    failedToOpen: outcomes.filter((o) => !o.opened).length,
    byNode,
  };
}
