/**
 * The docker runtime's engine layer (src/providers/runtimes/docker/engine.ts) against the fake
 * Docker Engine: exec output and exit codes when the exec ends at once (the stream used to end
 * before anyone listened: about half of 100 output-less execs never returned), graceful stop and
 * wait, the interface name a reconnected link must get back, helper containers in a netns.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Docker from 'dockerode';
import { startFakeEngine, type FakeEngine } from '../helpers/fake-docker/engine.js';
import {
  dockerExec,
  renameLinkScript,
  runInNetns,
  startContainer,
  stopContainer,
  supportsIfnameOpt,
  waitNotRunning,
} from '../../src/providers/runtimes/docker/engine.js';

let engine: FakeEngine;
let d: Docker;
beforeAll(async () => {
  // execDurationMs 0: the exec's stream ends right after its output, as on a fast engine
  engine = await startFakeEngine({
    images: ['img'],
    execDurationMs: 0,
    onExec: (_c, cmd) => (cmd[0] === 'silent' ? { exitCode: Number(cmd[1]) } : { stdout: `${cmd.slice(1).join(' ')}\n`, stderr: cmd[0] === 'both' ? 'warn\n' : '', exitCode: 0 }),
    onStart: (c) => (c.labels.role === 'helper' ? { exitCode: c.create.Cmd?.[2]?.includes('fail') ? 1 : 0 } : undefined),
  });
  d = new Docker({ socketPath: engine.socketPath });
  await (await d.createContainer({ name: 'box', Image: 'img' })).start();
});
afterAll(async () => {
  await engine?.stop();
});

const bounded = <T>(p: Promise<T>, what: string) => Promise.race([p, new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`${what} never returned`)), 5000))]);

describe('dockerExec', () => {
  it('returns for every exec that ends at once, output-less ones included (100 of 100)', async () => {
    for (let i = 0; i < 100; i++) {
      const r = await bounded(dockerExec(d, 'box', ['silent', String(i % 7)]), `exec #${i}`);
      expect(r).toEqual({ stdout: '', stderr: '', exitCode: i % 7 });
    }
  });

  it('keeps stdout and stderr apart, for 100 quick execs with output', async () => {
    for (let i = 0; i < 100; i++) {
      const r = await bounded(dockerExec(d, 'box', ['both', String(i)]), `exec #${i}`);
      expect(r).toEqual({ stdout: `${i}\n`, stderr: 'warn\n', exitCode: 0 });
    }
  });

  it('runs as the given user (the traffic agent as the invoking user)', async () => {
    await dockerExec(d, 'box', ['echo', 'x'], { user: '1000:1000' });
    const create = engine.requests().filter((r) => r.method === 'POST' && /\/containers\/[^/]+\/exec$/.test(r.path)).at(-1)!;
    expect(create.body).toMatchObject({ User: '1000:1000', Cmd: ['echo', 'x'] });
  });
});

describe('containers and links', () => {
  it('stop is graceful (a grace time, then the engine kills), start after stop; 304s are fine', async () => {
    await stopContainer(d, 'box', 7);
    const stop = engine.requests().filter((r) => r.path.endsWith('/stop')).at(-1)!;
    expect(stop.query.t).toBe('7');
    await stopContainer(d, 'box', 7); // already stopped: 304
    expect(await waitNotRunning(d, 'box', 1000)).toBe(true);
    await startContainer(d, 'box');
    await startContainer(d, 'box'); // already running: 304
    expect(engine.containers().find((c) => c.name === 'box')!.status).toBe('running');
    expect(await waitNotRunning(d, 'box', 200)).toBe(false); // still running after the wait
  });

  it('a reconnected link is named by the engine from Docker 28 (API 1.48), renamed by MAC before', () => {
    expect(supportsIfnameOpt('1.41')).toBe(false);
    expect(supportsIfnameOpt('1.47')).toBe(false);
    expect(supportsIfnameOpt('1.48')).toBe(true);
    expect(supportsIfnameOpt('1.51')).toBe(true);
    const s = renameLinkScript('02:42:0A:20:00:0B', 'eth0');
    expect(s).toContain("mac='02:42:0a:20:00:0b'");
    expect(s).toContain(`ip link set dev "$cur" name 'eth0'`);
    expect(s).toContain(`[ "$cur" = 'eth0' ] && exit 0`);
  });

  it('a helper container joins the target’s network namespace, is recorded before it exists, and is removed', async () => {
    const recorded: string[] = [];
    await runInNetns(d, 'box', 'img', 'nft list ruleset', { name: 'box-helper-1', labels: { role: 'helper' }, record: (n) => recorded.push(n) });
    expect(recorded).toEqual(['box-helper-1']);
    const create = engine.requests().find((r) => r.path === '/containers/create' && r.query.name === 'box-helper-1')!;
    expect(create.body).toMatchObject({ HostConfig: { NetworkMode: 'container:box', CapAdd: ['NET_ADMIN'] } });
    expect(engine.containers().some((c) => c.name === 'box-helper-1')).toBe(false);
    await expect(runInNetns(d, 'box', 'img', 'fail', { name: 'box-helper-2', labels: { role: 'helper' } })).rejects.toThrow(/exit 1/);
  });
});
