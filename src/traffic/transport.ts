/**
 * Executors: how one attempt talks to the target.
 * - UndiciExecutor (load generator default): undici's low-level `Client.dispatch`, one Client per
 *   connection, HTTP/1.1 without pipelining. Measured on this project's 2-core box against one
 *   node:http target, closed loop over 64 connections: undici dispatch 25–40k req/s, node:http
 *   15–24k (undici's promise API `request()` was no faster than node:http: 21.7k). The generator
 *   must reach half of wrk's rate (docs/benchmarks.md), which node:http could not reliably do.
 * - HttpExecutor: node:http / node:https, used by the outage probe (one fresh connection per
 *   probe, `agent: false`: no pooling, no TLS session reuse) and selectable for load (`client:
 *   'node'`).
 * - TcpExecutor: a bare TCP (or TLS) connect for tcp:// and tls:// targets.
 */
import http, { type ClientRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { Client, type Dispatcher } from 'undici';
import type { Executor, Handle, OpenLoopEngine } from './engine.js';
import {
  MAX_PARSED_BODY,
  classifyError,
  httpStatusKind,
  servedBy,
  tlsConnectOptions,
  type ErrorKind,
  type ParsedTarget,
  type TlsOptions,
} from './target.js';

export type LoadMode = 'keepalive' | 'new-connection';

/**
 * FIFO free-list of connection slots: successive requests rotate over every connection (a slot
 * freed last is used again last), so C keep-alive connections all carry traffic even at a low
 * rate. Pools reuse the first idle connection instead (node's Agent even with `scheduling:
 * 'fifo'` only opens a second socket when the first is busy), and behind an ECMP router or IPVS
 * each connection may reach a different node: nodeShare needs every connection used.
 */
export class SlotRing {
  private readonly free: Int32Array;
  private head = 0;
  private count: number;
  constructor(readonly size: number) {
    this.free = new Int32Array(size);
    for (let i = 0; i < size; i++) this.free[i] = i;
    this.count = size;
  }
  take(): number {
    if (this.count === 0) throw new Error('no free connection slot (engine maxInFlight must equal the slot count)');
    const slot = this.free[this.head];
    this.head = (this.head + 1) % this.size;
    this.count--;
    return slot;
  }
  give(slot: number): void {
    this.free[(this.head + this.count) % this.size] = slot;
    this.count++;
  }
}

export interface HttpExecutorOptions {
  target: ParsedTarget;
  mode: LoadMode;
  /** keep-alive: the number of connections (HTTP/1.1: one request in flight per connection) */
  connections: number;
  tls?: TlsOptions;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  /** bind the client side to this source address */
  localAddress?: string;
  /** read small JSON bodies for `{"node","clientIp"}` (default true) */
  parseBody?: boolean;
}

interface LabRequest extends ClientRequest {
  labIdx: number;
  labEng: OpenLoopEngine;
  labExec: HttpExecutor;
  /** keep-alive slot, -1 for a fresh connection */
  labSlot: number;
  labDone: boolean;
}

/**
 * node:http / node:https. keepalive: C agents of one socket each, rotated through a SlotRing;
 * new-connection: `agent: false` = a fresh connection per request, `Connection: close`, no TLS
 * session reuse.
 */
export class HttpExecutor implements Executor {
  private readonly mod: typeof http | typeof https;
  /** per slot: request options bound to that slot's agent */
  private readonly slotOpts: (RequestOptions & https.RequestOptions)[] = [];
  private readonly agents: http.Agent[] = [];
  private readonly ring: SlotRing | undefined;
  private readonly freshOpts: RequestOptions & https.RequestOptions;
  private readonly body: string | undefined;
  readonly parseBody: boolean;

  constructor(o: HttpExecutorOptions) {
    const t = o.target;
    if (t.protocol !== 'http' && t.protocol !== 'https') throw new TypeError(`HTTP executor needs an http(s) target, got ${t.url}`);
    const secure = t.protocol === 'https';
    this.mod = secure ? https : http;
    const tlsOpts = secure ? tlsConnectOptions(o.tls, t.host) : {};
    this.body = o.body;
    this.parseBody = o.parseBody ?? true;
    this.freshOpts = {
      host: t.host,
      port: t.port,
      path: t.path,
      method: o.method ?? 'GET',
      headers: { ...(o.body !== undefined ? { 'content-length': String(Buffer.byteLength(o.body)) } : {}), ...o.headers },
      agent: false,
      ...(o.localAddress ? { localAddress: o.localAddress } : {}),
      ...tlsOpts,
    };
    if (o.mode === 'keepalive') {
      const Agent = secure ? https.Agent : http.Agent;
      this.ring = new SlotRing(Math.max(1, o.connections));
      for (let i = 0; i < this.ring.size; i++) {
        const agent = new Agent({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1, ...tlsOpts });
        this.agents.push(agent);
        this.slotOpts.push({ ...this.freshOpts, agent });
      }
    }
  }

  start(idx: number, engine: OpenLoopEngine): Handle {
    const slot = this.ring ? this.ring.take() : -1;
    // node:http copies the options object, so one shared object per slot serves every request
    const req = this.mod.request(slot >= 0 ? this.slotOpts[slot] : this.freshOpts) as LabRequest;
    req.labIdx = idx;
    req.labEng = engine;
    req.labExec = this;
    req.labSlot = slot;
    req.labDone = false;
    req.on('response', onResponse);
    req.on('error', onRequestError);
    req.on('close', onRequestClose);
    req.end(this.body);
    if (slot < 0) return req;
    // the engine frees its in-flight count as soon as it cuts a request short and may start the
    // next one at once: the slot must be free synchronously, not on the later 'close' event
    return {
      destroy: (err?: Error) => {
        this.release(req);
        req.destroy(err);
      },
    };
  }

  /** the request is over (any way): its slot can carry the next one (idempotent) */
  release(req: LabRequest): void {
    if (req.labDone) return;
    req.labDone = true;
    if (req.labSlot >= 0) this.ring!.give(req.labSlot);
  }

  close(): void {
    for (const a of this.agents) a.destroy();
  }
}

// Slots are released BEFORE finish(): finish() lets the engine start the next request at once,
// and that request needs a free slot. Its agent (maxSockets 1) queues it for the microseconds
// until the old socket is back in the agent's free list.
function onRequestError(this: LabRequest, err: Error): void {
  this.labExec.release(this);
  this.labEng.finish(this.labIdx, classifyError(err));
}

function onRequestClose(this: LabRequest): void {
  this.labExec.release(this);
}

function onResponse(this: LabRequest, res: IncomingMessage): void {
  const req = this;
  const status = res.statusCode ?? 0;
  const failKind = httpStatusKind(status);
  const len = Number(res.headers['content-length'] ?? NaN);
  const wantBody = req.labExec.parseBody && !(len > MAX_PARSED_BODY);
  let body = '';
  let tooBig = false;
  if (wantBody) {
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      if (tooBig) return;
      body += chunk;
      if (body.length > MAX_PARSED_BODY) {
        tooBig = true;
        body = '';
      }
    });
  } else res.resume();
  res.on('end', () => {
    req.labExec.release(req);
    req.labEng.finish(req.labIdx, failKind ?? 'ok', servedBy(res.headers, tooBig ? undefined : body));
  });
  res.on('error', (err) => {
    req.labExec.release(req);
    req.labEng.finish(req.labIdx, classifyError(err));
  });
  res.on('close', () => {
    // closed before 'end': the connection broke mid-body
    if (res.complete) return;
    req.labExec.release(req);
    req.labEng.finish(req.labIdx, 'reset');
  });
}

export interface TcpExecutorOptions {
  target: ParsedTarget;
  tls?: TlsOptions;
  localAddress?: string;
}

interface LabSocket extends net.Socket {
  labIdx: number;
  labEng: OpenLoopEngine;
}

/** One attempt = one fresh TCP connect (plus a TLS handshake for tls://), then close. */
export class TcpExecutor implements Executor {
  private readonly secure: boolean;
  private readonly opts: net.NetConnectOpts & tls.ConnectionOptions;

  constructor(o: TcpExecutorOptions) {
    const t = o.target;
    this.secure = t.protocol === 'tls' || t.protocol === 'https';
    this.opts = {
      host: t.host,
      port: t.port,
      ...(o.localAddress ? { localAddress: o.localAddress } : {}),
      ...(this.secure ? tlsConnectOptions(o.tls, t.host) : {}),
    };
  }

  start(idx: number, engine: OpenLoopEngine): Handle {
    const s = (this.secure ? tls.connect(this.opts) : net.connect(this.opts)) as LabSocket;
    s.labIdx = idx;
    s.labEng = engine;
    s.once(this.secure ? 'secureConnect' : 'connect', onConnected);
    s.on('error', onSocketError);
    return s;
  }
}

function onConnected(this: LabSocket): void {
  this.labEng.finish(this.labIdx, 'ok');
  this.destroy();
}

function onSocketError(this: LabSocket, err: Error): void {
  this.labEng.finish(this.labIdx, classifyError(err));
}

/**
 * undici executor. Connections are SlotRing slots (one Client each, pipelining 1), so successive
 * requests rotate over all C connections (undici's own Pool would keep reusing the first idle
 * client). A request cut short (deadline, cancel) destroys its
 * slot's Client (HTTP/1.1 cannot cancel a request on a live connection) and the slot gets a fresh
 * one on next use. new-connection mode sends `connection: close` (undici `reset: true`) and
 * disables TLS session reuse, so every request pays a full TCP (+TLS) handshake.
 */
export class UndiciExecutor implements Executor {
  private readonly origin: string;
  private readonly clientOpts: Client.Options;
  private readonly dispatchOpts: Dispatcher.DispatchOptions;
  readonly parseBody: boolean;
  private readonly slots: (Client | undefined)[];
  private readonly ring: SlotRing;

  constructor(o: HttpExecutorOptions & { slots: number; timeoutMs: number }) {
    const t = o.target;
    if (t.protocol !== 'http' && t.protocol !== 'https') throw new TypeError(`HTTP executor needs an http(s) target, got ${t.url}`);
    const secure = t.protocol === 'https';
    const host = t.host.includes(':') ? `[${t.host}]` : t.host;
    this.origin = `${t.protocol}://${host}:${t.port}`;
    const fresh = o.mode === 'new-connection';
    this.clientOpts = {
      pipelining: 1,
      // the engine owns every deadline; undici's own timers would only race it
      headersTimeout: 0,
      bodyTimeout: 0,
      connect: {
        timeout: o.timeoutMs,
        ...(o.localAddress ? { localAddress: o.localAddress } : {}),
        ...(secure ? tlsConnectOptions(o.tls, t.host) : {}),
        ...(fresh ? { maxCachedSessions: 0 } : {}),
      },
    };
    this.dispatchOpts = {
      path: t.path,
      method: (o.method ?? 'GET') as Dispatcher.HttpMethod,
      headers: o.headers ?? {},
      body: o.body ?? null,
      reset: fresh,
    };
    this.parseBody = o.parseBody ?? true;
    this.ring = new SlotRing(Math.max(1, o.slots));
    this.slots = new Array(this.ring.size).fill(undefined);
  }

  start(idx: number, engine: OpenLoopEngine): Handle {
    const slot = this.ring.take();
    let client = this.slots[slot];
    if (!client) client = this.slots[slot] = new Client(this.origin, this.clientOpts);
    const req = new UndiciRequest(idx, engine, this, slot);
    client.dispatch(this.dispatchOpts, req);
    return req;
  }

  /** give a slot back (FIFO: it is used again after every other free slot) */
  release(slot: number): void {
    this.ring.give(slot);
  }

  /** drop a slot's connection */
  discard(slot: number, err?: Error): void {
    const c = this.slots[slot];
    this.slots[slot] = undefined;
    c?.destroy(err ?? null).catch(() => {});
  }

  close(): void {
    for (let i = 0; i < this.slots.length; i++) this.discard(i);
  }
}

const NAME_SERVED_BY = 'x-served-by';
const NAME_CLIENT_IP = 'x-client-ip';
const NAME_CONTENT_LENGTH = 'content-length';

class UndiciRequest implements Dispatcher.DispatchHandlers, Handle {
  private settled = false;
  private status = 0;
  private body = '';
  private tooBig = false;
  private node: string | undefined;
  private clientIp: string | undefined;

  constructor(
    private readonly idx: number,
    private readonly engine: OpenLoopEngine,
    private readonly exec: UndiciExecutor,
    private readonly slot: number,
  ) {}

  onConnect(): void {}

  onHeaders(statusCode: number, raw: Buffer[]): boolean {
    if (statusCode < 200) return true; // 1xx interim
    this.status = statusCode;
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const len = raw[i].length;
      if (len !== 11 && len !== 14) continue;
      const name = raw[i].toString('latin1').toLowerCase();
      if (name === NAME_SERVED_BY) this.node = raw[i + 1].toString('utf8');
      else if (name === NAME_CLIENT_IP) this.clientIp = raw[i + 1].toString('latin1');
      else if (name === NAME_CONTENT_LENGTH && Number(raw[i + 1].toString('latin1')) > MAX_PARSED_BODY) this.tooBig = true;
    }
    if (!this.exec.parseBody) this.tooBig = true;
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (!this.tooBig) {
      this.body += chunk.toString('utf8');
      if (this.body.length > MAX_PARSED_BODY) {
        this.tooBig = true;
        this.body = '';
      }
    }
    return true;
  }

  onComplete(): void {
    if (this.settle()) return;
    const served = servedBy(this.node ? { 'x-served-by': this.node } : {}, this.tooBig ? undefined : this.body);
    if (this.clientIp && !served.clientIp) served.clientIp = this.clientIp;
    this.engine.finish(this.idx, (httpStatusKind(this.status) ?? 'ok') as ErrorKind | 'ok', served);
  }

  onError(err: Error): void {
    if (this.settled) return;
    this.settled = true;
    // a failed connection is not reused: undici can leave a Client whose connect failed (e.g. a
    // TLS name mismatch) with later requests parked until our deadline; a fresh Client is cheap
    this.exec.discard(this.slot);
    this.exec.release(this.slot);
    this.engine.finish(this.idx, classifyUndiciError(err));
  }

  /** engine: deadline passed or run cancelled */
  destroy(err?: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.exec.discard(this.slot, err);
    this.exec.release(this.slot);
  }

  /** true when already settled; otherwise settles and frees the slot */
  private settle(): boolean {
    if (this.settled) return true;
    this.settled = true;
    this.exec.release(this.slot);
    return false;
  }
}

/** undici wraps socket errors: `UND_ERR_SOCKET` (other side closed / reset), connect timeouts… */
export function classifyUndiciError(err: unknown): ErrorKind {
  const e = err as { code?: string; cause?: { code?: string } };
  switch (e?.code) {
    case 'UND_ERR_SOCKET':
      return e.cause?.code ? classifyError(e.cause) : 'reset';
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
      return 'timeout';
    case 'UND_ERR_CLOSED':
    case 'UND_ERR_DESTROYED':
    case 'UND_ERR_ABORTED':
      return 'reset';
  }
  const k = classifyError(err);
  return k === 'other' && e?.cause ? classifyError(e.cause) : k;
}
