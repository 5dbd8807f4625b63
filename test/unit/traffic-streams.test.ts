/**
 * Stream probe against loopback servers: resets (socket destroyed / RST) and stalls (server goes
 * quiet), for the HTTP chunked-stream target and the raw TCP echo target.
 */
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { startStreamProbe } from '../../src/traffic/streams.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

describe('stream probe', () => {
  it('http /stream: a destroyed socket is a reset, a server that stops sending is a stall', async () => {
    const conns: { socket: net.Socket; timer: NodeJS.Timeout }[] = [];
    const server = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.write(JSON.stringify({ node: 'w1', clientIp: req.socket.remoteAddress }) + '\n');
      const timer = setInterval(() => res.write(`{"tick":${Date.now()}}\n`), 50);
      conns.push({ socket: req.socket, timer });
      req.on('close', () => clearInterval(timer));
    });
    const port = await listen(server);
    const probe = startStreamProbe({ target: `http://127.0.0.1:${port}/stream`, streams: 4, stallMs: 300 });
    await probe.ready;
    await sleep(200);
    expect(conns).toHaveLength(4);
    conns[0].socket.resetAndDestroy(); // RST
    conns[1].socket.destroy(); // FIN mid-stream
    clearInterval(conns[2].timer); // silence, connection kept open
    await sleep(600);
    const r = await probe.stop();
    server.closeAllConnections();
    server.close();
    const byId = r.streams;
    expect(byId.every((s) => s.opened && s.node === 'w1' && s.clientIp === '127.0.0.1')).toBe(true);
    // a RST is a reset; whether node reports it as ECONNRESET or as an incomplete close of the
    // chunked response depends on which event wins the race on a loaded machine
    expect(byId[0]!.broken).toBe('reset');
    expect(['ECONNRESET', 'closed']).toContain(byId[0]!.reason);
    expect(byId[1].broken).toBe('reset');
    expect(byId[2]).toMatchObject({ broken: 'stall', reason: 'stall', closedAt: null });
    expect(byId[3]).toMatchObject({ broken: null, brokenAt: null });
    expect(byId[3].messages).toBeGreaterThan(10);
    expect(r).toMatchObject({ opened: 4, resets: 2, stalls: 1, failedToOpen: 0 });
    expect(r.byNode).toEqual({ w1: { streams: 4, resets: 2, stalls: 1 } });
    // a stall is dated when the data stopped, before it was detected
    expect(byId[2].brokenAt!).toBeLessThan(byId[0].brokenAt! + 100);
  });

  it('tcp echo: greeting names the node; RST is a reset; a paused reader is a stall that can resume', async () => {
    const sockets: net.Socket[] = [];
    const server = net.createServer((s) => {
      sockets.push(s);
      s.write(JSON.stringify({ node: 'w2', clientIp: s.remoteAddress }) + '\n');
      s.pipe(s);
      s.on('error', () => {});
    });
    const port = await listen(server);
    const probe = startStreamProbe({ target: `tcp://127.0.0.1:${port}`, streams: 3, tickMs: 50, stallMs: 300 });
    await probe.ready;
    await sleep(200);
    sockets[0].resetAndDestroy();
    sockets[1].pause(); // stop reading → no echo
    await sleep(500);
    sockets[1].resume(); // the echo comes back: a stall that resumed
    await sleep(200);
    const r = await probe.stop();
    for (const s of sockets) s.destroy();
    server.close();
    expect(r.streams.every((s) => s.node === 'w2' && s.clientIp === '127.0.0.1')).toBe(true);
    // RST → reset; the errno vs close-event race (see above) decides only the reason's wording
    expect(r.streams[0]!.broken).toBe('reset');
    expect(['ECONNRESET', 'closed']).toContain(r.streams[0]!.reason);
    expect(r.streams[1].broken).toBe('stall');
    expect(r.streams[1].resumedAt).not.toBeNull();
    expect(r.streams[2]).toMatchObject({ broken: null });
    expect(r.streams[2].messages).toBeGreaterThan(10);
  });

  it('a target that refuses: streams never open, nothing counted as broken', async () => {
    const server = net.createServer();
    const port = await listen(server);
    await new Promise<void>((r) => server.close(() => r()));
    const probe = startStreamProbe({ target: `tcp://127.0.0.1:${port}`, streams: 2 });
    await probe.ready;
    const r = await probe.stop();
    expect(r).toMatchObject({ opened: 0, resets: 0, stalls: 0, failedToOpen: 2 });
    expect(r.streams.map((s) => s.reason)).toEqual(['refused', 'refused']);
  });
});
