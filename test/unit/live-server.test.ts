/**
 * The live server on loopback (port 0), fed through a RunEvents bus, read back with fetch (undici)
 * as a browser's EventSource would: snapshot first, events in order, probes batched, read-only,
 * assets (echarts from node_modules, the reducer transpiled for the browser), the report once
 * written, the non-loopback warning. And the `lab watch` path: events written to a JSONL file by
 * the run and followed from another reader.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { appendFileSync, mkdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../../src/model/load.js';
import { RunEvents, type RunEvent } from '../../src/orchestrator/events.js';
import { isLoopback, startLiveServer, type LiveServer } from '../../src/live/server.js';
import { followFile, writeEventLog } from '../../src/live/follow.js';
import { reduceAll, type LiveState } from '../../src/live/state.js';
import { UsageError } from '../../src/util/errors.js';
import { useTempDirs } from '../helpers/tmp.js';

const fixture: RunEvent[] = readFileSync(join(REPO_ROOT, 'test/fixtures/live/smb-quick.jsonl'), 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((l) => JSON.parse(l) as RunEvent);
const start = fixture[0] as Extract<RunEvent, { type: 'run-start' }>;
const S = 'kube-vip-arp+kube-vip-arp';
const tmpDir = useTempDirs();

const servers: LiveServer[] = [];
const streams: SseStream[] = [];
afterEach(async () => {
  for (const s of streams.splice(0)) s.close();
  for (const s of servers.splice(0)) await s.close();
});

async function serve(opts: Partial<Parameters<typeof startLiveServer>[0]> = {}) {
  const events = opts.events ?? new RunEvents();
  const logs: string[] = [];
  const server = await startLiveServer({ events, log: (m) => logs.push(m), ...opts });
  servers.push(server);
  return { events, server, logs };
}

interface Frame {
  event: string;
  data: string;
  comment?: string;
}

/** a minimal EventSource: frames as they come, over fetch's body stream */
class SseStream {
  private buf = '';
  private readonly frames: Frame[] = [];
  private waiters: (() => void)[] = [];
  ended = false;
  private constructor(
    readonly res: Response,
    private readonly ac: AbortController,
  ) {
    void this.pump();
  }

  static async open(url: string): Promise<SseStream> {
    const ac = new AbortController();
    const res = await fetch(new URL('events', url), { signal: ac.signal, headers: { accept: 'text/event-stream' } });
    const s = new SseStream(res, ac);
    streams.push(s);
    return s;
  }

  private async pump() {
    const reader = this.res.body!.getReader();
    const dec = new TextDecoder();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        this.buf += dec.decode(value, { stream: true });
        let i: number;
        while ((i = this.buf.indexOf('\n\n')) >= 0) {
          const block = this.buf.slice(0, i);
          this.buf = this.buf.slice(i + 2);
          const f: Frame = { event: 'message', data: '' };
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) f.comment = line.slice(1).trim();
            else if (line.startsWith('event: ')) f.event = line.slice(7);
            else if (line.startsWith('data: ')) data.push(line.slice(6));
            else if (line.startsWith('retry: ')) f.event = 'retry';
          }
          f.data = data.join('\n');
          this.frames.push(f);
        }
        this.wake();
      }
    } catch {
      // aborted
    }
    this.ended = true;
    this.wake();
  }

  private wake() {
    for (const w of this.waiters.splice(0)) w();
  }

  /** wait until `pred` holds over the frames received so far */
  async until(pred: (frames: Frame[]) => boolean, timeoutMs = 5000): Promise<Frame[]> {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this.frames)) {
      if (this.ended) throw new Error(`stream ended; frames: ${this.frames.map((f) => f.event).join(',')}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; frames: ${this.frames.map((f) => f.event).join(',')}`);
      await new Promise<void>((ok) => {
        const t = setTimeout(ok, left);
        this.waiters.push(() => {
          clearTimeout(t);
          ok();
        });
      });
    }
    return this.frames;
  }

  snapshot(): LiveState {
    const f = this.frames.find((x) => x.event === 'snapshot');
    if (!f) throw new Error('no snapshot');
    return JSON.parse(f.data) as LiveState;
  }

  /** every RunEvent received after the snapshot, in order, with the message it came in */
  events(): { e: RunEvent; msg: number }[] {
    const out: { e: RunEvent; msg: number }[] = [];
    this.frames.forEach((f, msg) => {
      if (f.event === 'message' && f.data) for (const e of JSON.parse(f.data) as RunEvent[]) out.push({ e, msg });
    });
    return out;
  }

  close() {
    this.ac.abort();
  }
}

describe('live server: /events', () => {
  it('sends a snapshot first, then the run’s events in order; probes merged, never ahead of their drill', async () => {
    const { events, server } = await serve();
    const sse = await SseStream.open(server.url);
    expect(sse.res.status).toBe(200);
    expect(sse.res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(sse.res.headers.get('cache-control')).toContain('no-cache');
    await sse.until((f) => f.some((x) => x.event === 'snapshot'));
    expect(sse.snapshot().status).toBe('waiting');

    const first = fixture.slice(0, fixture.findIndex((e) => e.type === 'inject') + 1);
    for (const e of first) events.emit(e);
    const probe = (t: number, ok: boolean): RunEvent => ({ type: 'probe', t, strategy: S, target: 'api', samples: [{ t: t - 5, ok, latencyMs: ok ? 4 : 200 }] });
    const holders: RunEvent = { type: 'holders', t: start.t + 50_020, strategy: S, target: 'api', address: '10.32.0.10', holders: ['cp2'] };
    const restoreEv: RunEvent = { type: 'restore', t: start.t + 50_040, strategy: S, target: 'api', drill: 'crash', victim: 'cp1' };
    events.emit(probe(start.t + 50_000, true));
    events.emit(probe(start.t + 50_010, false));
    events.emit(holders);
    events.emit(probe(start.t + 50_030, false));
    events.emit(restoreEv);

    const sent = [...first, probe(start.t + 50_000, true), probe(start.t + 50_010, false), probe(start.t + 50_030, false)];
    const wantSamples = sent.filter((e) => e.type === 'probe').reduce((n, e) => n + (e.type === 'probe' ? e.samples.length : 0), 0);
    await sse.until(() => sse.events().some(({ e }) => e.type === 'restore'));
    const got = sse.events();
    // everything but probes: the same events, in the order they were emitted
    expect(got.filter(({ e }) => e.type !== 'probe').map(({ e }) => e)).toEqual([...first.filter((e) => e.type !== 'probe'), holders, restoreEv]);
    // probes: every sample arrived, merged per strategy × target, in fewer messages than events
    const probes = got.filter(({ e }) => e.type === 'probe');
    expect(probes.reduce((n, { e }) => n + (e.type === 'probe' ? e.samples.length : 0), 0)).toBe(wantSamples);
    expect(new Set(probes.map((p) => p.msg)).size).toBeLessThan(sent.filter((e) => e.type === 'probe').length);
    // the probes buffered before the restore went out with it, ahead of it
    const restore = got.find(({ e }) => e.type === 'restore')!;
    expect(got.filter(({ e }) => e.type === 'probe').every((p) => p.msg <= restore.msg)).toBe(true);
    const last = got.filter(({ e }) => e.type === 'probe').at(-1)!;
    expect(last.e.type === 'probe' && last.e.samples.some((s) => s.t === start.t + 50_025)).toBe(true);
  });

  it('batches probe events to at most 10 messages per second per client', async () => {
    const { events, server } = await serve();
    const sse = await SseStream.open(server.url);
    await sse.until((f) => f.some((x) => x.event === 'snapshot'));
    events.emit(start);
    // 200 probe events over ~1 s (one every 5 ms)
    const t0 = Date.now();
    for (let i = 0; i < 200; i++) {
      events.emit({ type: 'probe', t: start.t + i * 5, strategy: S, target: 'api', samples: [{ t: start.t + i * 5, ok: true, latencyMs: 3 }] });
      await new Promise((r) => setTimeout(r, 5));
    }
    const elapsed = Date.now() - t0;
    await sse.until(() => sse.events().reduce((n, { e }) => n + (e.type === 'probe' ? e.samples.length : 0), 0) === 200);
    const msgs = new Set(sse.events().filter(({ e }) => e.type === 'probe').map((p) => p.msg)).size;
    // one flush every 100 ms (+1 for the partial windows at both ends)
    expect(msgs).toBeLessThanOrEqual(Math.ceil(elapsed / 100) + 2);
    expect(msgs).toBeGreaterThan(1);
  });

  it('a late client gets the state so far as its snapshot; a replay seeds that state', async () => {
    const { events, server } = await serve();
    const half = fixture.slice(0, fixture.findIndex((e) => e.type === 'drill-end') + 1);
    for (const e of half) events.emit(e);
    const late = await SseStream.open(server.url);
    await late.until((f) => f.some((x) => x.event === 'snapshot'));
    const snap = late.snapshot();
    expect(snap).toEqual(JSON.parse(JSON.stringify(reduceAll(half))));
    expect(snap.lab).toBe('smb');
    expect(snap.addresses.find((a) => a.key === 'api')!.holders).toEqual(['cp2']);
    expect(snap.results).toHaveLength(1);
    // and then the live events
    events.emit({ type: 'log', t: start.t + 99_000, message: 'after the snapshot' });
    await late.until(() => late.events().some(({ e }) => e.type === 'log'));

    const { server: replayed } = await serve({ replay: fixture });
    const r = await SseStream.open(replayed.url);
    await r.until((f) => f.some((x) => x.event === 'snapshot'));
    expect(r.snapshot()).toEqual(JSON.parse(JSON.stringify(reduceAll(fixture))));
    expect(r.snapshot().status).toBe('ok');
  });

  it('sends heartbeat comments, and close() ends the streams', async () => {
    const { server } = await serve({ heartbeatMs: 50 });
    const sse = await SseStream.open(server.url);
    await sse.until((f) => f.filter((x) => x.comment !== undefined).length >= 2, 3000);
    await server.close();
    servers.splice(servers.indexOf(server), 1);
    await sse.until(() => sse.ended, 3000).catch(() => undefined);
    expect(sse.ended).toBe(true);
  });
});

describe('live server: HTTP', () => {
  it('is read-only: anything but GET and HEAD is 405', async () => {
    const { server } = await serve();
    for (const [method, path] of [
      ['POST', '/'],
      ['POST', '/events'],
      ['PUT', '/assets/app.js'],
      ['DELETE', '/report/report.html'],
      ['PATCH', '/'],
    ] as const) {
      const res = await fetch(new URL(path, server.url), { method });
      expect(res.status, `${method} ${path}`).toBe(405);
      expect(res.headers.get('allow')).toBe('GET, HEAD');
      await res.text();
    }
    const head = await fetch(server.url, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-type')).toContain('text/html');
    expect(await head.text()).toBe('');
  });

  it('serves the page, its modules, echarts from node_modules and the reducer as browser JavaScript', async () => {
    const { server } = await serve();
    const page = await fetch(server.url);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    const html = await page.text();
    expect(html).toContain('/assets/echarts.min.js');
    expect(html).toContain('/assets/app.js');
    expect(html).not.toMatch(/https?:\/\//); // no CDN

    const echarts = await fetch(new URL('/assets/echarts.min.js', server.url));
    expect(echarts.status).toBe(200);
    expect(echarts.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    const body = await echarts.text();
    expect(body).toBe(readFileSync(join(REPO_ROOT, 'node_modules/echarts/dist/echarts.min.js'), 'utf8'));
    // served gzipped to browsers that ask, and revalidated by ETag
    const etag = echarts.headers.get('etag')!;
    expect((await fetch(new URL('/assets/echarts.min.js', server.url), { headers: { 'if-none-match': etag } })).status).toBe(304);

    for (const f of ['app.js', 'topology.js', 'strips.js', 'style.css', 'favicon.svg']) {
      const res = await fetch(new URL(`/assets/${f}`, server.url));
      expect(res.status, f).toBe(200);
      await res.arrayBuffer();
    }

    const state = await fetch(new URL('/assets/state.js', server.url));
    expect(state.status).toBe(200);
    const code = await state.text();
    expect(code).not.toMatch(/^\s*import\s/m);
    // the browser build reduces the fixture exactly like the TypeScript module
    const mod = (await import(`data:text/javascript;base64,${Buffer.from(code).toString('base64')}`)) as { reduce: typeof import('../../src/live/state.js').reduce; initialState: () => LiveState };
    let s = mod.initialState();
    for (const e of fixture) s = mod.reduce(s, e);
    expect(s).toEqual(reduceAll(fixture));
  });

  it('404 for anything else, including paths out of the page directory', async () => {
    const { server } = await serve();
    for (const p of ['/nope', '/assets/nope.js', '/assets/../server.ts', '/assets/%2e%2e/server.ts', '/assets/..%2fserver.ts', '/src/live/state.ts']) {
      const res = await fetch(new URL(p, server.url));
      expect(res.status, p).toBe(404);
      await res.text();
    }
  });

  it('serves the report files once the run wrote them, and nothing outside their directory', async () => {
    const dir = tmpDir('live-report');
    const out = join(dir, 'out');
    mkdirSync(out);
    writeFileSync(join(dir, 'secret.txt'), 'not for the room');
    const { events, server } = await serve();
    expect((await fetch(new URL('/report/report.html', server.url))).status).toBe(404);
    writeFileSync(join(out, 'report.html'), '<!doctype html><title>report</title><h1>HA strategies compared</h1>');
    writeFileSync(join(out, 'results.json'), '{}');
    events.emit({ type: 'report', t: Date.now(), files: [join(out, 'results.json'), join(out, 'report.html')] });
    const res = await fetch(new URL('/report/report.html', server.url));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/html');
    expect(res.headers.get('content-security-policy')).toContain('sandbox');
    expect(await res.text()).toContain('HA strategies compared');
    expect((await fetch(new URL('/report/results.json', server.url))).status).toBe(200);
    for (const p of ['/report/../secret.txt', '/report/%2e%2e/secret.txt', '/report/..%2fsecret.txt']) {
      const r = await fetch(new URL(p, server.url));
      expect(r.status, p).toBe(404);
      await r.text();
    }
    // an explicit directory wins
    const other = tmpDir('live-report-other');
    writeFileSync(join(other, 'report.html'), 'other');
    const { server: s2 } = await serve({ reportDir: () => other });
    expect(await (await fetch(new URL('/report/report.html', s2.url))).text()).toBe('other');
  });
});

describe('live server: where it listens', () => {
  it('loopback by default, silently; a non-loopback address logs who can watch', async () => {
    const { server, logs } = await serve();
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(logs.some((l) => /WARNING/.test(l))).toBe(false);

    const { server: open, logs: openLogs } = await serve({ host: '0.0.0.0' });
    const warning = openLogs.find((l) => /WARNING/.test(l));
    expect(warning).toBeDefined();
    expect(warning).toContain('anyone who can reach this machine on that network can watch');
    expect(warning).toContain('--live-host 127.0.0.1');
    const port = new URL(open.url).port;
    const res = await fetch(`http://127.0.0.1:${port}/`);
    expect(res.status).toBe(200);
    await res.text();

    expect(isLoopback('127.0.0.1')).toBe(true);
    expect(isLoopback('127.3.2.1')).toBe(true);
    expect(isLoopback('::1')).toBe(true);
    expect(isLoopback('localhost')).toBe(true);
    expect(isLoopback('0.0.0.0')).toBe(false);
    expect(isLoopback('::')).toBe(false);
    expect(isLoopback('10.0.0.5')).toBe(false);
  });

  it('a port in use is a usage error that says what to do', async () => {
    const { server } = await serve();
    const port = Number(new URL(server.url).port);
    const err = await startLiveServer({ events: new RunEvents(), port }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toContain(`port ${port} is in use`);
    expect((err as Error).message).toContain('--port');
  });

  it('does not break the run when a client goes away mid-stream', async () => {
    const { events, server } = await serve();
    const sse = await SseStream.open(server.url);
    await sse.until((f) => f.some((x) => x.event === 'snapshot'));
    sse.close();
    await new Promise((r) => setTimeout(r, 50));
    let other = 0;
    events.on(() => other++);
    for (const e of fixture) events.emit(e);
    expect(other).toBe(fixture.length); // the bus still delivers to everyone
    const again = await SseStream.open(server.url);
    await again.until((f) => f.some((x) => x.event === 'snapshot'));
    expect(again.snapshot().status).toBe('ok');
  });
});

describe('live.jsonl: the run writes, `lab watch` follows', () => {
  it('follows the file from its start, waits for lines being written, and starts over on a new run', async () => {
    const dir = tmpDir('live-follow');
    const file = join(dir, 'live.jsonl');
    const got: RunEvent[] = [];
    const bad: string[] = [];
    const ac = new AbortController();
    const following = followFile(file, (e) => got.push(e), ac.signal, { pollMs: 20, onBadLine: (l) => bad.push(l) });

    // the file appears after the watcher started
    await new Promise((r) => setTimeout(r, 60));
    const log = writeEventLog(file);
    const head = fixture.slice(0, 40);
    for (const e of head) log.write(e);
    await log.close();
    await waitFor(() => got.length === head.length);
    expect(got).toEqual(head);

    // half a line, then the rest, then a line that is not an event
    const next = fixture[40]!;
    const line = JSON.stringify(next);
    appendFileSync(file, line.slice(0, 25));
    await new Promise((r) => setTimeout(r, 80));
    expect(got).toHaveLength(head.length);
    appendFileSync(file, `${line.slice(25)}\nnot json\n`);
    await waitFor(() => got.length === head.length + 1 && bad.length === 1);
    expect(got.at(-1)).toEqual(next);
    expect(bad).toEqual(['not json']);

    // a new run truncates the file: read again from its start
    truncateSync(file, 0);
    appendFileSync(file, JSON.stringify(start) + '\n');
    await waitFor(() => got.length === head.length + 2);
    expect(got.at(-1)).toEqual(start);

    ac.abort();
    await following;
  });

  it('a whole run through the file reaches a live server the way `lab watch` wires it: file → bus → server', async () => {
    const dir = tmpDir('live-follow-run');
    const file = join(dir, 'live.jsonl');
    const log = writeEventLog(file);
    for (const e of fixture) log.write(e);
    await log.close();
    const bus = new RunEvents();
    const { server } = await serve({ events: bus });
    const ac = new AbortController();
    const following = followFile(file, (e) => bus.emit(e), ac.signal, { pollMs: 20 });
    await waitFor(async () => {
      const again = await SseStream.open(server.url);
      await again.until((f) => f.some((x) => x.event === 'snapshot'));
      const done = again.snapshot().status === 'ok';
      again.close();
      return done;
    });
    ac.abort();
    await following;
  });
});

async function waitFor(pred: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}
