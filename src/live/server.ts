/**
 * The live view's web server: one page that draws a run as it happens, fed by the run's event
 * stream over Server-Sent Events. Read-only (GET and HEAD only), no CDN, works offline.
 *
 *   GET /            the page (src/live/page/index.html)
 *   GET /assets/*    the page's own files, the reducer (./state.ts transpiled to JavaScript on
 *                    first request) and echarts from node_modules
 *   GET /events      text/event-stream: first `event: snapshot` (the reduced state so far, so a
 *                    browser that connects late — or reconnects — catches up at once), then the
 *                    run's events, each message a JSON array of RunEvents in order
 *   GET /report/*    the run's report files, once written
 *
 * Why plain node:http for SSE rather than a package: the protocol is three response headers and
 * `data: …\n\n` frames; what this server needs beyond that (a snapshot first, probe batching per
 * client, dropping a client that cannot keep up) is specific to it and would be written anyway.
 * EventSource in the browser does the reconnecting.
 *
 * Memory stays bounded whatever the run's length: the server keeps the reduced state (bounded by
 * design, see ./state.ts), never the event history; a client whose socket buffer grows past
 * MAX_BUFFERED is dropped (its EventSource reconnects and gets a fresh snapshot).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { RunEvent, RunEvents } from '../orchestrator/events.js';
import { UsageError } from '../util/errors.js';
import { initialState, reduce, type LiveState } from './state.js';

export interface LiveServerOptions {
  events: RunEvents;
  /** default 127.0.0.1; anything else is reachable by others (a warning is logged) */
  host?: string;
  /** 0 = any free port (default) */
  port?: number;
  /** events that happened before the server started (e.g. read back from live.jsonl) */
  replay?: RunEvent[];
  /** the directory /report/* serves; default: the directory of the files of the `report` event */
  reportDir?: () => string | undefined;
  log?: (m: string) => void;
  /** interval of the SSE heartbeat comments (default 15 s) */
  heartbeatMs?: number;
}

export interface LiveServer {
  url: string;
  close(): Promise<void>;
}

/** probe messages per second and client: at most one flush every FLUSH_MS */
const FLUSH_MS = 100;
/** a comment line keeps idle connections (and proxies in between) from timing out */
const HEARTBEAT_MS = 15_000;
/** EventSource's reconnect delay, sent to the browser */
const RETRY_MS = 2000;
/** bytes queued for one client before it is considered stuck and dropped */
const MAX_BUFFERED = 8 * 1024 * 1024;
/** events that separate one drill from the next: probes buffered before them go out first */
const BOUNDARY = new Set<RunEvent['type']>(['run-start', 'strategy', 'drill-start', 'inject', 'restore', 'drill-end', 'run-end']);

const HERE = dirname(fileURLToPath(import.meta.url));
const PAGE_DIR = join(HERE, 'page');
const STATE_TS = join(HERE, 'state.ts');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json; charset=utf-8',
  '.csv': 'text/csv; charset=utf-8',
  '.md': 'text/plain; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

// The page runs only its own scripts; echarts sets inline styles on its elements (tooltips,
// canvas wrappers), hence 'unsafe-inline' for styles only.
const PAGE_CSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
// report.html is self-contained (inline CSS and SVG, no script): let it run nothing
const REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox";

interface Asset {
  body: Buffer;
  gzip?: Buffer;
  type: string;
  etag: string;
}

interface Client {
  res: ServerResponse;
  /** probe events not sent yet, merged per strategy × target */
  probes: Map<string, Extract<RunEvent, { type: 'probe' }>>;
}

export async function startLiveServer(opts: LiveServerOptions): Promise<LiveServer> {
  const host = opts.host ?? '127.0.0.1';
  const log = opts.log ?? (() => undefined);
  let state: LiveState = initialState();
  for (const e of opts.replay ?? []) state = reduce(state, e);
  const clients = new Set<Client>();
  const assets = new AssetCache();

  const onEvent = (e: RunEvent) => {
    try {
      state = reduce(state, e);
    } catch (err) {
      // a malformed event must not end the live view (nor, through RunEvents, the run)
      log(`live view: event ${e?.type} ignored: ${(err as Error).message}`);
      return;
    }
    for (const c of clients) {
      try {
        deliver(c, e);
      } catch {
        clients.delete(c); // a broken socket: its browser reconnects
      }
    }
  };
  const off = opts.events.on(onEvent);

  const flushTimer = setInterval(() => {
    for (const c of clients) if (c.probes.size) send(c, takeProbes(c));
  }, FLUSH_MS);
  const heartbeat = setInterval(() => {
    for (const c of clients) write(c, `: ${Date.now()}\n\n`);
  }, opts.heartbeatMs ?? HEARTBEAT_MS);
  flushTimer.unref();
  heartbeat.unref();

  function deliver(c: Client, e: RunEvent) {
    if (e.type === 'probe') {
      const k = `${e.strategy}\u0000${e.target}`;
      const prev = c.probes.get(k);
      c.probes.set(k, prev ? { ...prev, t: Math.max(prev.t, e.t), samples: prev.samples.concat(e.samples) } : e);
      return;
    }
    send(c, BOUNDARY.has(e.type) ? [...takeProbes(c), e] : [e]);
  }

  function takeProbes(c: Client): RunEvent[] {
    const out = [...c.probes.values()];
    c.probes.clear();
    return out;
  }

  function send(c: Client, events: RunEvent[]) {
    if (events.length) write(c, `data: ${JSON.stringify(events)}\n\n`);
  }

  function write(c: Client, chunk: string) {
    if (c.res.writableLength > MAX_BUFFERED) {
      clients.delete(c);
      c.res.destroy();
      return;
    }
    c.res.write(chunk);
  }

  function events(req: IncomingMessage, res: ServerResponse) {
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      Connection: 'keep-alive',
      // nginx and friends would otherwise hold the stream back in their buffers
      'X-Accel-Buffering': 'no',
      'X-Content-Type-Options': 'nosniff',
    });
    if (req.method === 'HEAD') return res.end();
    res.socket?.setNoDelay(true);
    const c: Client = { res, probes: new Map() };
    res.write(`retry: ${RETRY_MS}\n\nevent: snapshot\ndata: ${JSON.stringify(state)}\n\n`);
    clients.add(c);
    const gone = () => clients.delete(c);
    req.on('close', gone);
    res.on('error', gone);
  }

  function report(req: IncomingMessage, res: ServerResponse, rel: string) {
    const fromEvent = state.report?.files[0] ? dirname(state.report.files[0]) : undefined;
    const root = opts.reportDir?.() ?? fromEvent;
    if (!root || !existsSync(root)) return plain(res, 404, 'no report yet: it is written when the run ends\n');
    const file = inside(root, rel || 'report.html');
    if (!file) return plain(res, 404, 'not found\n');
    const body = readFileSync(file);
    const headers: Record<string, string> = { 'Cache-Control': 'no-cache', 'Content-Security-Policy': REPORT_CSP };
    return asset(req, res, { body, type: TYPES[extname(file)] ?? 'application/octet-stream', etag: etagOf(body) }, headers);
  }

  const server = createServer((req, res) => {
    try {
      route(req, res);
    } catch (err) {
      log(`live view: ${req.method} ${req.url}: ${(err as Error).message}`);
      if (!res.headersSent) plain(res, 500, 'internal error\n');
      else res.destroy();
    }
  });

  function route(req: IncomingMessage, res: ServerResponse) {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return plain(res, 405, 'read-only: GET and HEAD only\n');
    }
    let path: string;
    try {
      path = decodeURIComponent(new URL(req.url ?? '/', 'http://live').pathname);
    } catch {
      return plain(res, 400, 'bad path\n');
    }
    if (path === '/' || path === '/index.html') return asset(req, res, assets.page('index.html')!, { 'Content-Security-Policy': PAGE_CSP });
    if (path === '/events') return events(req, res);
    if (path === '/favicon.ico') return asset(req, res, assets.page('favicon.svg')!);
    if (path.startsWith('/assets/')) {
      const a = assets.get(path.slice('/assets/'.length));
      return a ? asset(req, res, a) : plain(res, 404, 'not found\n');
    }
    if (path === '/report' || path.startsWith('/report/')) return report(req, res, path.slice('/report/'.length));
    return plain(res, 404, 'not found\n');
  }

  try {
    await listen();
  } catch (err) {
    off();
    clearInterval(flushTimer);
    clearInterval(heartbeat);
    throw err;
  }
  function listen() {
    return new Promise<void>((ok, fail) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        const why =
          err.code === 'EADDRINUSE'
            ? `port ${opts.port} is in use: choose another with --port N (0 = any free port)`
            : err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND'
              ? `${host} is not an address of this machine (--live-host)`
              : err.code === 'EACCES'
                ? `port ${opts.port} needs privileges: choose one above 1023 with --port N`
                : err.message;
        fail(new UsageError(`live view: cannot listen on ${host}:${opts.port ?? 0}: ${why}`, { cause: err }));
      });
      server.listen(opts.port ?? 0, host, () => ok());
    });
  }
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : (opts.port ?? 0);
  const url = `http://${urlHost(host)}:${port}/`;
  if (!isLoopback(host)) {
    log(
      `WARNING: the live view listens on ${host}:${port} — anyone who can reach this machine on that network can watch this run ` +
        `(topology, addresses, results; read-only). Use --live-host 127.0.0.1 to keep it to this machine.`,
    );
  }
  log(`live view: ${url}`);

  return {
    url,
    async close() {
      off();
      clearInterval(flushTimer);
      clearInterval(heartbeat);
      for (const c of clients) c.res.end();
      clients.clear();
      await new Promise<void>((ok) => {
        server.close(() => ok());
        server.closeAllConnections();
      });
    },
  };
}

// ---------------------------------------------------------------------------------------------

class AssetCache {
  private readonly cache = new Map<string, Asset>();
  private readonly pageFiles = new Set(readdirSync(PAGE_DIR).filter((f) => TYPES[extname(f)] && statSync(join(PAGE_DIR, f)).isFile()));

  /** a file of the page directory (no sub-directories, known types only) */
  page(name: string): Asset | undefined {
    if (!this.pageFiles.has(name)) return undefined;
    return this.load(`page:${name}`, () => readFileSync(join(PAGE_DIR, name)), TYPES[extname(name)]!);
  }

  get(name: string): Asset | undefined {
    if (name === 'echarts.min.js') return this.load(name, () => readFileSync(echartsFile()), TYPES['.js']!);
    if (name === 'state.js') return this.load(name, () => transpileState(), TYPES['.js']!);
    if (name === 'index.html') return undefined;
    return this.page(name);
  }

  private load(key: string, read: () => Buffer, type: string): Asset {
    let a = this.cache.get(key);
    if (!a) {
      const body = read();
      a = { body, type, etag: etagOf(body), ...(body.length > 1024 ? { gzip: gzipSync(body) } : {}) };
      this.cache.set(key, a);
    }
    return a;
  }
}

/** echarts' browser bundle, found through the package the project depends on */
function echartsFile(): string {
  const req = createRequire(import.meta.url);
  return join(dirname(req.resolve('echarts/package.json')), 'dist', 'echarts.min.js');
}

interface EsbuildBuild {
  buildSync(options: Record<string, unknown>): { outputFiles: { text: string }[] };
}

/**
 * ./state.ts as one browser module. esbuild is the transpiler tsx (a dependency of this project)
 * runs on every .ts file already; it is resolved from tsx's own package so that whatever version
 * tsx ships is the one used, and no second transpiler enters the dependencies. The reducer's own
 * imports (the reports' verdict rules and flag wording in ../results/types.ts, so the page says
 * what report.md says) are bundled in; none may be left for the browser to resolve (checked here).
 */
function transpileState(): Buffer {
  const fromTsx = createRequire(createRequire(import.meta.url).resolve('tsx/package.json'));
  const esbuild = fromTsx('esbuild') as EsbuildBuild;
  const out = esbuild.buildSync({ entryPoints: [STATE_TS], bundle: true, write: false, format: 'esm', target: 'es2020', platform: 'neutral', logLevel: 'silent' });
  const code = out.outputFiles[0]!.text;
  if (/^\s*import\s/m.test(code)) throw new Error('src/live/state.ts must import only what bundles for the browser: the page loads it as is');
  return Buffer.from(`// src/live/state.ts and what it imports, bundled for the browser by the live server\n${code}`);
}

function asset(req: IncomingMessage, res: ServerResponse, a: Asset, extra: Record<string, string> = {}) {
  const headers: Record<string, string | number> = {
    'Content-Type': a.type,
    'Cache-Control': 'no-cache',
    ETag: a.etag,
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    Vary: 'Accept-Encoding',
    ...extra,
  };
  if (req.headers['if-none-match'] === a.etag) {
    res.writeHead(304, headers);
    return res.end();
  }
  const gzip = a.gzip && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
  const body = gzip ? a.gzip! : a.body;
  if (gzip) headers['Content-Encoding'] = 'gzip';
  headers['Content-Length'] = body.length;
  res.writeHead(200, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
}

function plain(res: ServerResponse, code: number, text: string) {
  res.writeHead(code, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff', 'Cache-Control': 'no-cache' });
  res.end(text);
}

/** `rel` below `root`, as a regular file that really lies there (no `..`, no symlink out) */
function inside(root: string, rel: string): string | null {
  try {
    const base = realpathSync(root);
    const file = realpathSync(resolve(base, rel));
    if (!file.startsWith(base + sep)) return null;
    return statSync(file).isFile() ? file : null;
  } catch {
    return null;
  }
}

function etagOf(b: Buffer): string {
  return `"${createHash('sha1').update(b).digest('base64url').slice(0, 20)}"`;
}

export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || /^::ffff:127\.\d+\.\d+\.\d+$/.test(h);
}

/** what a person types to reach the server: for a wildcard bind, this machine's first LAN address */
function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::' || host === '') {
    const lan = Object.values(networkInterfaces())
      .flat()
      .find((i) => i && i.family === 'IPv4' && !i.internal);
    return lan?.address ?? '127.0.0.1';
  }
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}
