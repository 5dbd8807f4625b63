/**
 * The `traffic` agent component speaks the orchestrator's contract (src/traffic/rpc.ts):
 * start → status → stop, against loopback servers, with a stand-in AgentContext.
 */
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { AgentContext } from '../../src/emulation/agent/types.js';
import type { TrafficResult, TrafficStatus } from '../../src/traffic/rpc.js';
import factory from '../../src/traffic/agent.js';
import { epochNow } from '../../src/traffic/clock.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const listen = (s: net.Server) => new Promise<number>((r) => s.listen(0, '127.0.0.1', () => r((s.address() as AddressInfo).port)));

describe('traffic agent component', () => {
  it('start / status / stop returns probe outage, load with phases, streams', async () => {
    let down = false;
    const web = http.createServer((req, res) => {
      if (down) {
        res.writeHead(503);
        res.end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ node: 'w1', clientIp: req.socket.remoteAddress }));
    });
    const webPort = await listen(web);
    const echo = net.createServer((s) => {
      s.write('{"node":"w1"}\n');
      s.pipe(s);
      s.on('error', () => {});
    });
    const echoPort = await listen(echo);
    const events: string[] = [];
    const ac = new AbortController();
    const ctx = {
      host: 'client1',
      emit: (component: string, type: string) => events.push(`${component}:${type}`),
      log: () => {},
      signal: ac.signal,
    } as unknown as AgentContext;
    const comp = factory(ctx, {});
    await comp.start();
    const id = 'run-1';
    await comp.call!('start', {
      id,
      probe: { url: `http://127.0.0.1:${webPort}/`, intervalMs: 10, timeoutMs: 500 },
      load: { url: `http://127.0.0.1:${webPort}/`, rate: 100, connections: 4, mode: 'keepalive', timeoutMs: 1000 },
      streams: { url: `tcp://127.0.0.1:${echoPort}`, count: 2, stallMs: 500 },
    });
    await expect(comp.call!('start', { id, probe: { url: 'http://127.0.0.1:1/', intervalMs: 10, timeoutMs: 100 } })).rejects.toThrow(/already running/);
    await sleep(300);
    const injectAt = epochNow();
    down = true;
    await sleep(200);
    down = false;
    await sleep(300);
    const st = (await comp.call!('status', { id, since: injectAt })) as TrafficStatus;
    expect(st.firstFailAt).not.toBeNull();
    expect(st.consecutiveOk).toBeGreaterThanOrEqual(3);
    expect(st.sent).toBeGreaterThan(70);
    const r = (await comp.call!('stop', { id, injectAt, recoverSuccesses: 3 })) as TrafficResult;
    await comp.stop();
    web.closeAllConnections();
    web.close();
    echo.close();

    expect(r.probe.samples.length).toBeGreaterThan(70);
    expect(r.probe.outage.outageMs).toBeGreaterThan(150);
    expect(r.probe.outage.outageMs).toBeLessThan(280);
    expect(r.probe.outage.bursts).toBe(1);
    const load = r.load!;
    expect(load.requests).toBeGreaterThan(70);
    expect(load.errorsByKind['http-503']).toBeGreaterThan(10);
    expect(load.nodeShare).toEqual({ w1: 1 });
    expect(load.clientIps).toEqual(['127.0.0.1']);
    expect(load.latencyByPhaseMs.before!.p50).toBeGreaterThan(0);
    expect(load.latencyByPhaseMs.after!.p50).toBeGreaterThan(0);
    expect(load.timeline.length).toBeGreaterThanOrEqual(1);
    expect('samples' in load).toBe(false);
    expect(r.streams).toHaveLength(2);
    expect(r.streams!.every((s) => s.opened && s.node === 'w1' && s.broken === null)).toBe(true);
    expect(events).toEqual(['traffic:started', 'traffic:stopped']);
    await expect(comp.call!('status', { id })).rejects.toThrow(/no session/);
    // results travel over JSON RPC
    expect(JSON.parse(JSON.stringify(r)).probe.outage.outageMs).toBe(r.probe.outage.outageMs);
  });
});
