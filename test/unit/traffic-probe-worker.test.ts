/**
 * The outage probe's worker thread (src/traffic/probe-worker.ts): its lifecycle (start → samples
 * arrive over messages → stop ends the thread), and the one source-port cycle shared by every
 * probe of the worker and continued by the next worker. Loopback only; no timing assertions.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { PROBE_PORTS } from '../../src/traffic/outage.js';
import { ProbeWorker, type RemoteProbe } from '../../src/traffic/probe-worker.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** poll until `ok()` or the bound passes (the bound only limits a broken run, it asserts nothing; the
 *  60 s test timeouts leave room for a worker that boots slowly on a loaded machine) */
async function until(ok: () => Promise<boolean> | boolean, boundMs = 15_000): Promise<void> {
  const end = Date.now() + boundMs;
  while (!(await ok()) && Date.now() < end) await sleep(50);
}

/** modular distance from `from` forward to `to` inside the probe's port range */
const ahead = (from: number, to: number) => (to - from + PROBE_PORTS.count) % PROBE_PORTS.count;

let server: http.Server | null = null;
const workers: ProbeWorker[] = [];

afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.terminate()));
  server?.closeAllConnections();
  server?.close();
  server = null;
});

async function echo(): Promise<{ url: string; ports: number[] }> {
  const ports: number[] = [];
  server = http.createServer((req, res) => {
    ports.push(req.socket.remotePort!);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"node":"w1"}');
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, ports };
}

describe('outage probe worker', () => {
  it('start → samples arrive → stop returns them and ends the worker thread', async () => {
    const { url } = await echo();
    const pw = new ProbeWorker();
    workers.push(pw);
    expect(pw.worker).toBeNull();
    const probe = await pw.start({ target: url, intervalMs: 10, timeoutMs: 5000 });
    const thread = pw.worker!;
    expect(thread).not.toBeNull();
    expect(thread.threadId).toBeGreaterThan(0);
    expect(pw.probes).toBe(1);
    const exited = new Promise<number>((r) => thread.once('exit', r));

    // samples come over messages, with the live-view cursor of the traffic RPC
    let cursor = 0;
    const live: { t: number; ok: boolean }[] = [];
    await until(async () => {
      const st = await probe.status(undefined, cursor);
      live.push(...(st.samples ?? []));
      cursor = st.cursor ?? cursor;
      return live.length >= 5;
    });
    expect(live.length).toBeGreaterThanOrEqual(5);
    expect(live.every((s) => s.ok)).toBe(true);
    // the worker stamps samples with its own clock (its performance.timeOrigin, read when the
    // thread started) and the main thread stamped startedAt with its own: on one kernel they agree
    // to well under a millisecond (src/traffic/clock.ts), not to the last float digit
    expect(live[0].t).toBeGreaterThanOrEqual(probe.startedAt - 1);
    const st = await probe.status();
    expect(st.sent).toBeGreaterThanOrEqual(5);
    expect(st.failed).toBe(0);

    const samples = await probe.stop();
    expect(samples.length).toBeGreaterThanOrEqual(live.length);
    expect(samples.slice(0, live.length).map((s) => s.t)).toEqual(live.map((s) => s.t));
    expect(samples.every((s) => s.ok && s.node === 'w1')).toBe(true);
    // stopping twice is the same stop
    expect(await probe.stop()).toBe(samples);
    // the last probe stopped: the thread ended, later calls say so
    expect(await exited).toBeTypeOf('number');
    expect(thread.threadId).toBe(-1);
    expect(pw.worker).toBeNull();
    expect(pw.probes).toBe(0);
    await expect(probe.status()).rejects.toThrow(/worker/);
  }, 60_000);

  it('two probes of one worker never share a source port; the next worker continues the cycle', async () => {
    const { url, ports } = await echo();
    const pw = new ProbeWorker();
    workers.push(pw);
    const a = await pw.start({ target: url, intervalMs: 10, timeoutMs: 5000 });
    const b = await pw.start({ target: url, intervalMs: 10, timeoutMs: 5000 });
    const thread = pw.worker!;
    expect(pw.probes).toBe(2);
    const both = async (p: RemoteProbe) => (await p.status()).sent;
    await until(async () => (await both(a)) >= 10 && (await both(b)) >= 10);
    const first = [...(await a.stop()), ...(await b.stop())];
    expect(first.length).toBeGreaterThanOrEqual(20);
    await until(() => thread.threadId === -1);
    expect(thread.threadId).toBe(-1);
    // one cycle for both probes: every connection the server saw came from its own port
    const run1 = [...ports];
    expect(run1.length).toBeGreaterThanOrEqual(20);
    expect(new Set(run1).size).toBe(run1.length);
    expect(run1.every((p) => p >= PROBE_PORTS.low && p <= PROBE_PORTS.high)).toBe(true);

    // a new worker starts where the last one stopped (a port someone holds is skipped, at most a few)
    const handedBack = pw.nextPort!;
    expect(handedBack).toBeGreaterThanOrEqual(PROBE_PORTS.low);
    ports.length = 0;
    const c = await pw.start({ target: url, intervalMs: 10, timeoutMs: 5000 });
    expect(pw.worker).not.toBe(thread);
    await until(async () => (await c.status()).sent >= 5);
    await c.stop();
    const run2 = [...ports];
    expect(run2.length).toBeGreaterThanOrEqual(5);
    expect(run2.filter((p) => run1.includes(p))).toEqual([]);
    expect(Math.min(...run2.map((p) => ahead(handedBack, p)))).toBeLessThan(8);
  }, 60_000);

  it('retain() boots the worker before any probe and keeps it between probes until released', async () => {
    const { url } = await echo();
    const pw = new ProbeWorker();
    workers.push(pw);
    const release = await pw.retain();
    const thread = pw.worker!;
    expect(thread).not.toBeNull();
    const p = await pw.start({ target: url, intervalMs: 10, timeoutMs: 5000 });
    await until(async () => (await p.status()).sent >= 3);
    await p.stop();
    expect(pw.worker).toBe(thread); // still held
    const exited = new Promise<number>((r) => thread.once('exit', r));
    await release();
    await exited;
    expect(pw.worker).toBeNull();
  }, 60_000);
});
