/**
 * The fake Docker Engine (test/helpers/fake-docker) answers the real dockerode 4 client the way
 * the docker provider and `lab clean` use it, and the talosctl/kubectl/helm stubs record their
 * arguments and answer from their rules. No Docker daemon, no root.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { join, resolve } from 'node:path';
import { Readable, Writable } from 'node:stream';
import Docker from 'dockerode';
import { execa } from 'execa';
import { parse } from 'yaml';
import Ajv2020Mod from 'ajv/dist/2020.js';
import addFormatsMod from 'ajv-formats';
import { useTempDirs } from '../helpers/tmp.js';
import {
  STUBS_DIR,
  defaultStubRules,
  isSocket,
  readStubCalls,
  startFakeEngine,
  withFakeDocker,
  type ExecContext,
  type ExecHandler,
  type FakeEngine,
  type StubRule,
} from '../helpers/fake-docker/index.js';

const tmp = useTempDirs();

type DockerErr = Error & { statusCode?: number; json?: { message?: string } };
async function status(p: Promise<unknown>): Promise<number | 'ok'> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return (e as DockerErr).statusCode ?? -1;
  }
}

/** the provider's own exec helper, in miniature: hijacked start, demuxed by dockerode, then inspect */
async function dockerExec(d: Docker, container: string, cmd: string[], env: string[] = []) {
  const ex = await d.getContainer(container).exec({ Cmd: cmd, Env: env, AttachStdout: true, AttachStderr: true });
  const stream = await ex.start({ hijack: true, stdin: false });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const sink = (into: Buffer[]) => new Writable({ write: (chunk, _e, cb) => (into.push(Buffer.from(chunk)), cb()) });
  d.modem.demuxStream(stream, sink(out), sink(err));
  await new Promise<void>((res, rej) => {
    stream.on('end', () => res());
    stream.on('close', () => res());
    stream.on('error', rej);
  });
  const info = await ex.inspect();
  return { stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), exitCode: info.ExitCode, running: info.Running };
}

const IMAGE = 'ghcr.io/siderolabs/talos:v1.11.6';

function follow<T = unknown>(d: Docker, stream: NodeJS.ReadableStream): Promise<T[]> {
  return new Promise((res, rej) => d.modem.followProgress(stream, (e: Error | null, r: unknown[]) => (e ? rej(e) : res(r as T[]))));
}

describe('fake Docker Engine with the real dockerode client', () => {
  let engine: FakeEngine;
  let d: Docker;
  const execCalls: { container: string; cmd: string[]; ctx: ExecContext }[] = [];
  const handler: ExecHandler = (c, cmd, ctx) => {
    execCalls.push({ container: c.name, cmd, ctx });
    if (cmd[0] === 'echo') return { stdout: `${cmd.slice(1).join(' ')}\n`, stderr: 'warn: from stderr\n', exitCode: 3 };
    if (cmd[0] === 'big') return { stdout: 'x'.repeat(200_000) };
    return undefined;
  };

  beforeAll(async () => {
    engine = await startFakeEngine({
      dir: tmp('fxd-'),
      images: [IMAGE, { ref: 'tlab-netbox:test', labels: { 'tlab.image': 'netbox' } }],
      onExec: handler,
      onStart: (c) => (c.labels['tlab.kind'] === 'helper' ? { exitCode: 7, afterMs: 20 } : undefined),
    });
    d = new Docker({ socketPath: engine.socketPath });
  });
  afterAll(async () => {
    await engine.stop();
  });

  it('answers ping, version and info', async () => {
    expect(String(await d.ping())).toBe('OK');
    const v = await d.version();
    expect(v.ApiVersion).toBe('1.41');
    const info = (await d.info()) as { Images: number; OSType: string };
    expect(info.OSType).toBe('linux');
    expect(info.Images).toBe(2);
  });

  it('creates networks with IPAM and labels, lists them by label, refuses duplicates and overlaps', async () => {
    const net = await d.createNetwork({
      Name: 'tlab-t-lan',
      CheckDuplicate: true,
      Driver: 'bridge',
      Internal: false,
      Attachable: true,
      IPAM: { Driver: 'default', Config: [{ Subnet: '10.10.0.0/24', Gateway: '10.10.0.254', IPRange: '10.10.0.248/30' }] },
      Options: { 'com.docker.network.driver.mtu': '1500' },
      Labels: { 'tlab.id': 't-1', 'tlab.segment': 'lan' },
    });
    await d.createNetwork({ Name: 'tlab-t-uplink', Internal: true, IPAM: { Config: [{ Subnet: '10.20.0.0/24', Gateway: '10.20.0.254' }] }, Labels: { 'tlab.id': 't-1' } });
    await d.createNetwork({ Name: 'other-net', Labels: { 'tlab.id': 'someone-else' } });
    const info = await net.inspect();
    expect(info.IPAM?.Config).toEqual([{ Subnet: '10.10.0.0/24', Gateway: '10.10.0.254', IPRange: '10.10.0.248/30' }]);
    expect(info.Labels?.['tlab.segment']).toBe('lan');
    expect(info.Options?.['com.docker.network.driver.mtu']).toBe('1500');

    const mine = await d.listNetworks({ filters: { label: ['tlab.id=t-1'] } });
    expect(mine.map((n) => n.Name).sort()).toEqual(['tlab-t-lan', 'tlab-t-uplink']);
    expect((await d.listNetworks({ filters: { label: ['tlab.segment'] } })).map((n) => n.Name)).toEqual(['tlab-t-lan']);
    // the pre-defined networks are there, as on a real engine
    expect((await d.listNetworks()).map((n) => n.Name)).toEqual(expect.arrayContaining(['bridge', 'host', 'none', 'other-net']));

    expect(await status(d.createNetwork({ Name: 'tlab-t-lan', CheckDuplicate: true }))).toBe(409);
    expect(await status(d.createNetwork({ Name: 'overlap', IPAM: { Config: [{ Subnet: '10.10.0.128/25' }] } }))).toBe(403);
    expect(await status(d.getNetwork('bridge').remove())).toBe(403);
    expect(await status(d.getNetwork('nope').inspect())).toBe(404);
  });

  it('creates and starts a container with fixed addresses on two networks', async () => {
    const c = await d.createContainer({
      name: 'tlab-t-cp1',
      Hostname: 'cp1',
      Image: IMAGE,
      Env: ['PLATFORM=container'],
      Labels: { 'tlab.id': 't-1', 'tlab.host': 'cp1', 'talos.type': 'controlplane' },
      HostConfig: {
        Privileged: true,
        NetworkMode: 'tlab-t-lan',
        Mounts: [
          { Type: 'tmpfs', Target: '/run', Source: '' },
          { Type: 'volume', Target: '/var', Source: '' },
        ],
      },
      NetworkingConfig: { EndpointsConfig: { 'tlab-t-lan': { IPAMConfig: { IPv4Address: '10.10.0.11' } } } },
    });
    await d.getNetwork('tlab-t-uplink').connect({ Container: c.id, EndpointConfig: { IPAMConfig: { IPv4Address: '10.20.0.11' } } });
    let info = await c.inspect();
    expect(info.State.Status).toBe('created');
    expect(info.NetworkSettings.Networks['tlab-t-lan']!.IPAMConfig).toEqual({ IPv4Address: '10.10.0.11' });
    expect(info.NetworkSettings.Networks['tlab-t-lan']!.IPAddress).toBe(''); // no sandbox before start

    await c.start();
    info = await c.inspect();
    expect(info.State).toMatchObject({ Status: 'running', Running: true, Paused: false, ExitCode: 0 });
    expect(info.State.Pid).toBeGreaterThan(0);
    expect(info.Name).toBe('/tlab-t-cp1');
    expect(info.Config.Hostname).toBe('cp1');
    expect(info.NetworkSettings.Networks['tlab-t-lan']).toMatchObject({ IPAddress: '10.10.0.11', IPPrefixLen: 24, Gateway: '10.10.0.254', MacAddress: '02:42:0a:0a:00:0b' });
    expect(info.NetworkSettings.Networks['tlab-t-uplink']!.IPAddress).toBe('10.20.0.11');
    expect(info.Mounts.filter((m) => m.Type === 'volume').map((m) => m.Destination)).toEqual(['/var']);
    const lan = await d.getNetwork('tlab-t-lan').inspect();
    expect(Object.values(lan.Containers ?? {}).map((x) => (x as { IPv4Address: string }).IPv4Address)).toEqual(['10.10.0.11/24']);
    // the whole create body is kept
    expect(engine.containers().find((x) => x.name === 'tlab-t-cp1')!.create.HostConfig.Privileged).toBe(true);

    // a dynamic address comes from IPRange, never the gateway or a taken address
    const dyn = await d.createContainer({ name: 'tlab-t-dyn', Image: IMAGE, Labels: { 'tlab.id': 't-1', 'tlab.host': 'dyn' }, HostConfig: { NetworkMode: 'tlab-t-lan' } });
    expect(engine.containers().find((x) => x.id === dyn.id)!.networks['tlab-t-lan']).toBe('10.10.0.248');

    // conflicts and unknowns, with the engine's status codes
    expect(await status(c.start())).toBe(304);
    expect(await status(d.createContainer({ name: 'tlab-t-cp1', Image: IMAGE }))).toBe(409);
    expect(await status(d.createContainer({ name: 'tlab-t-x', Image: 'nope:1' }))).toBe(404);
    expect(await status(d.createContainer({ name: 'tlab-t-y', Image: IMAGE, HostConfig: { NetworkMode: 'tlab-t-lan' }, NetworkingConfig: { EndpointsConfig: { 'tlab-t-lan': { IPAMConfig: { IPv4Address: '10.10.0.11' } } } } }))).toBe(403);
    expect(await status(d.getNetwork('tlab-t-lan').connect({ Container: 'tlab-t-cp1' }))).toBe(403);
    expect(await status(d.getNetwork('tlab-t-lan').remove())).toBe(403); // active endpoints
    expect(await status(d.getContainer('nope').inspect())).toBe(404);
  });

  it('runs an attached exec through dockerode’s demux: the handler’s stdout, stderr and exit code', async () => {
    const r = await dockerExec(d, 'tlab-t-cp1', ['echo', 'hello', 'fake'], ['A=1']);
    expect(r).toEqual({ stdout: 'hello fake\n', stderr: 'warn: from stderr\n', exitCode: 3, running: false });
    const call = execCalls.at(-1)!;
    expect(call).toMatchObject({ container: 'tlab-t-cp1', cmd: ['echo', 'hello', 'fake'] });
    expect(call.ctx.env).toEqual(['A=1']);
    expect(call.ctx.detach).toBe(false);
    // large output spans many socket reads; the default answer is exit 0 with no output
    expect((await dockerExec(d, 'tlab-t-cp1', ['big'])).stdout.length).toBe(200_000);
    expect(await dockerExec(d, 'tlab-t-cp1', ['true'])).toEqual({ stdout: '', stderr: '', exitCode: 0, running: false });
    // detached (the provider's agent start): no stream; running for execDurationMs, then its exit code on inspect
    const ex = await d.getContainer('tlab-t-cp1').exec({ Cmd: ['echo', 'bg'], AttachStdout: false, AttachStderr: false });
    await ex.start({ Detach: true });
    expect(await ex.inspect()).toMatchObject({ Running: true, ExitCode: null });
    expect(execCalls.at(-1)!.ctx.detach).toBe(true);
    await new Promise((r) => setTimeout(r, 120));
    expect(await ex.inspect()).toMatchObject({ Running: false, ExitCode: 3 });
  });

  it('keeps an attached exec stream open while the exec runs, as a real process does', async () => {
    // a reader that attaches its listeners after an await still sees the end of an empty stream
    const ex = await d.getContainer('tlab-t-cp1').exec({ Cmd: ['true'], AttachStdout: true, AttachStderr: true });
    const stream = await ex.start({ hijack: true, stdin: false });
    await new Promise((r) => setTimeout(r, 5));
    expect((await ex.inspect()).Running).toBe(true);
    const t0 = Date.now();
    const ended = new Promise<void>((res) => {
      stream.on('end', () => res());
      stream.on('close', () => res());
    });
    d.modem.demuxStream(stream, new Writable({ write: (_c, _e, cb) => cb() }), new Writable({ write: (_c, _e, cb) => cb() }));
    await ended;
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(await ex.inspect()).toMatchObject({ Running: false, ExitCode: 0 });
    // the duration is the handler's to choose; exec state follows
    engine.setExecHandler(() => ({ stdout: 'slow\n', durationMs: 150 }));
    const t1 = Date.now();
    expect((await dockerExec(d, 'tlab-t-cp1', ['sleep'])).stdout).toBe('slow\n');
    expect(Date.now() - t1).toBeGreaterThanOrEqual(140);
    engine.setExecHandler(handler);
  });

  it('moves containers through pause/unpause/kill/start/stop/restart like the engine', async () => {
    const c = d.getContainer('tlab-t-cp1');
    await c.pause();
    expect((await c.inspect()).State).toMatchObject({ Status: 'paused', Running: true, Paused: true });
    expect(await status(c.pause())).toBe(409);
    expect(await status(c.start())).toBe(409); // "cannot start a paused container, try unpause instead"
    expect(await status(c.exec({ Cmd: ['true'] }))).toBe(409);
    expect((await d.listContainers()).map((x) => x.Names[0])).toContain('/tlab-t-cp1'); // paused counts as up
    await c.unpause();
    expect((await c.inspect()).State).toMatchObject({ Status: 'running', Paused: false });
    expect(await status(c.unpause())).toBe(409);

    await c.kill({ signal: 'SIGUSR1' }); // not fatal: keeps running
    expect((await c.inspect()).State.Status).toBe('running');
    await c.kill({ signal: 'SIGKILL' });
    let st = (await c.inspect()).State;
    expect(st).toMatchObject({ Status: 'exited', Running: false, ExitCode: 137, Pid: 0 });
    expect(st.FinishedAt).not.toBe('0001-01-01T00:00:00Z');
    expect((await c.inspect()).NetworkSettings.Networks['tlab-t-lan']!.IPAddress).toBe('');
    expect(await status(c.kill({ signal: 'SIGKILL' }))).toBe(409);
    expect(await status(c.stop())).toBe(304);
    expect(await c.wait()).toEqual({ StatusCode: 137 });
    expect((await d.listContainers()).map((x) => x.Names[0])).not.toContain('/tlab-t-cp1');
    expect((await d.listContainers({ all: true, filters: { status: ['exited'] } })).map((x) => x.Names[0])).toEqual(['/tlab-t-cp1']);

    await c.start();
    st = (await c.inspect()).State;
    expect(st).toMatchObject({ Status: 'running', ExitCode: 0 });
    // the same fixed address again after the restart
    expect((await c.inspect()).NetworkSettings.Networks['tlab-t-lan']!.IPAddress).toBe('10.10.0.11');
    const waiting = c.wait({ condition: 'next-exit' });
    await c.stop({ t: 30 });
    expect(await waiting).toEqual({ StatusCode: 143 });
    await c.restart();
    expect((await c.inspect()).State.Status).toBe('running');
  });

  it('lets a one-shot container exit by itself (onStart) so wait() returns its code', async () => {
    const h = await d.createContainer({
      name: 'tlab-t-cp1-nft-1',
      Image: 'tlab-netbox:test',
      Cmd: ['sh', '-c', 'nft -f -'],
      Labels: { 'tlab.id': 't-1', 'tlab.kind': 'helper' },
      HostConfig: { NetworkMode: 'container:tlab-t-cp1', CapAdd: ['NET_ADMIN'] },
    });
    await h.start();
    expect(await h.wait()).toEqual({ StatusCode: 7 });
    expect((await h.inspect()).State.Status).toBe('exited');
    await h.remove({ force: true });
    expect(await status(h.inspect())).toBe(404);
    // joining the namespace of a container that is not running is refused at start
    await d.getContainer('tlab-t-dyn').start();
    await d.getContainer('tlab-t-dyn').kill();
    const j = await d.createContainer({ name: 'tlab-t-join', Image: IMAGE, HostConfig: { NetworkMode: 'container:tlab-t-dyn' } });
    expect(await status(j.start())).toBe(409);
    await j.remove();
  });

  it('lists containers by label and name filters', async () => {
    await d.createContainer({ name: 'other-lab-c', Image: IMAGE, Labels: { 'tlab.id': 'someone-else' } });
    const mine = await d.listContainers({ all: true, filters: { label: ['tlab.id=t-1'] } });
    expect(mine.map((c) => c.Names[0]).sort()).toEqual(['/tlab-t-cp1', '/tlab-t-dyn']);
    expect((await d.listContainers({ all: true, filters: { label: ['tlab.id=t-1', 'tlab.host=cp1'] } })).map((c) => c.Names[0])).toEqual(['/tlab-t-cp1']);
    expect((await d.listContainers({ all: true, filters: { name: ['other-lab'] } })).map((c) => c.Names[0])).toEqual(['/other-lab-c']);
    // the older map form of filters, as a JSON string
    expect((await d.listContainers({ all: true, filters: JSON.stringify({ label: { 'tlab.id=someone-else': true } }) })).length).toBe(1);
    const cp1 = mine.find((c) => c.Names[0] === '/tlab-t-cp1')!;
    expect(cp1).toMatchObject({ State: 'running', Image: IMAGE, Labels: { 'tlab.host': 'cp1' } });
    expect(cp1.Status).toMatch(/^Up /);
  });

  it('refuses to remove a running container without force (409), removes it and its anonymous volumes with force', async () => {
    const c = d.getContainer('tlab-t-cp1');
    const anon = engine.containers().find((x) => x.name === 'tlab-t-cp1')!;
    expect(anon.status).toBe('running');
    const before = engine.volumes().filter((v) => v.anonymous).length;
    expect(before).toBeGreaterThanOrEqual(1);
    const err = await c.remove().catch((e: DockerErr) => e);
    expect((err as DockerErr).statusCode).toBe(409);
    expect((err as DockerErr).json?.message).toMatch(/You cannot remove a running container .* force remove/);
    expect((await d.listVolumes({ filters: { dangling: ['false'] } })).Volumes.length).toBe(before);
    await c.remove({ force: true, v: true });
    expect(await status(c.inspect())).toBe(404);
    expect(engine.volumes().filter((v) => v.anonymous).length).toBe(before - 1);
    expect(await status(c.remove({ force: true }))).toBe(404);
    // with its containers gone (or stopped), the networks go
    await d.getContainer('tlab-t-dyn').remove();
    await d.getNetwork('tlab-t-lan').remove();
    await d.getNetwork('tlab-t-uplink').remove();
    expect((await d.listNetworks({ filters: { label: ['tlab.id=t-1'] } })).length).toBe(0);
  });

  it('builds an image from a context directory (buildImage + followProgress) and registers tag and labels', async () => {
    const ctxDir = tmp('fxd-ctx-');
    writeFileSync(join(ctxDir, 'Dockerfile'), 'FROM node:20-bookworm-slim\nRUN true\n');
    expect(await status(d.getImage('tlab-netbox:built').inspect())).toBe(404);
    const stream = await d.buildImage({ context: ctxDir, src: ['Dockerfile'] }, { t: 'tlab-netbox:built', labels: { 'tlab.image': 'netbox' } });
    const out = await follow<{ stream?: string; aux?: { ID: string }; error?: string }>(d, stream);
    expect(out.some((x) => x.error)).toBe(false);
    const id = out.find((x) => x.aux)!.aux!.ID;
    expect(id).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(out.map((x) => x.stream ?? '').join('')).toContain('Successfully tagged tlab-netbox:built');
    const img = await d.getImage('tlab-netbox:built').inspect();
    expect(img.Id).toBe(id);
    expect(img.Config.Labels).toEqual({ 'tlab.image': 'netbox' });
    // the (gzipped) tar body was consumed and counted, not parsed
    const build = engine.requests().find((r) => r.path === '/build')!;
    expect(build.query.t).toBe('tlab-netbox:built');
    expect(typeof build.body).toBe('number');
    expect(build.body as number).toBeGreaterThan(20);
    expect((await d.listImages({ filters: { label: ['tlab.image=netbox'] } })).flatMap((i) => i.RepoTags).sort()).toEqual(['tlab-netbox:built', 'tlab-netbox:test']);

    // a failing build is reported the engine's way: 200, an error line in the progress stream
    engine.setBuildHandler(() => ({ error: 'E: Unable to locate package frr' }));
    const bad = await d.buildImage({ context: ctxDir, src: ['Dockerfile'] }, { t: 'tlab-netbox:bad' });
    const badOut = await follow<{ error?: string }>(d, bad);
    expect(badOut.find((x) => x.error)?.error).toBe('E: Unable to locate package frr');
    expect(await status(d.getImage('tlab-netbox:bad').inspect())).toBe(404);
    engine.setBuildHandler(undefined);

    // tag, import, remove
    await d.getImage('tlab-netbox:built').tag({ repo: 'tlab-netbox', tag: 'again' });
    expect((await d.getImage('tlab-netbox:again').inspect()).Id).toBe(id);
    // docker import (the appliance's local base): the tar is counted, --change instructions make its config
    const imp = await d.importImage(Readable.from([Buffer.alloc(4096)]), {
      repo: 'tlab-bookworm-base',
      tag: 'abc',
      changes: ['LABEL tlab.image=appliance tlab.appliance.role=base "tlab.note"="two words"', 'ENV NODE_VERSION=20.20.2', 'ENV PATH=/usr/local/bin:/usr/bin:/bin', 'CMD ["bash"]'],
    });
    const impOut = await follow<{ status?: string }>(d, imp);
    const based = await d.getImage('tlab-bookworm-base:abc').inspect();
    expect(impOut.at(-1)!.status).toBe(based.Id);
    expect(based.Config.Labels).toEqual({ 'tlab.image': 'appliance', 'tlab.appliance.role': 'base', 'tlab.note': 'two words' });
    expect(based.Config.Env).toEqual(['NODE_VERSION=20.20.2', 'PATH=/usr/local/bin:/usr/bin:/bin']);
    expect(based.Config.Cmd).toEqual(['bash']);
    expect(engine.requests().at(-2)!.body).toBe(4096);
    const badChange = await d.importImage(Readable.from([Buffer.alloc(10)]), { repo: 'x', changes: ['RUN true'] }).catch((e: DockerErr) => e);
    expect((badChange as DockerErr).statusCode).toBe(400);
    // a build inherits what onBuild says its base has; the build's own labels win
    engine.setBuildHandler(() => ({ env: ['NODE_VERSION=20.20.2'], labels: { 'tlab.image': 'base-label', 'from.base': 'yes' } }));
    await follow(d, await d.buildImage(Readable.from([Buffer.alloc(1024)]), { t: 'tlab-appliance:1', labels: { 'tlab.image': 'appliance' }, buildargs: { http_proxy: 'x' }, networkmode: 'host' }));
    const app = await d.getImage('tlab-appliance:1').inspect();
    expect(app.Config.Labels).toEqual({ 'tlab.image': 'appliance', 'from.base': 'yes' });
    expect(app.Config.Env).toEqual(['NODE_VERSION=20.20.2']);
    engine.setBuildHandler(undefined);
    // no registry: a pull of an unknown image fails, of a known one is "up to date"
    expect(await status(d.pull('node:20-bookworm-slim'))).toBe(404);
    expect((await follow<{ status?: string }>(d, await d.pull(IMAGE))).at(-1)!.status).toBe(`Status: Image is up to date for ${IMAGE}`);
    expect(await d.getImage('tlab-netbox:again').remove()).toEqual([{ Untagged: 'tlab-netbox:again' }]);
    const rm = (await d.getImage('tlab-netbox:built').remove()) as { Deleted?: string }[];
    expect(rm.at(-1)).toEqual({ Deleted: id });
    expect(await status(d.getImage('tlab-netbox:built').remove())).toBe(404);
  });

  it('records every request in order, without the version prefix, in memory and in requests.jsonl', async () => {
    const versioned = new Docker({ socketPath: engine.socketPath, version: 'v1.41' });
    const n0 = engine.requests().length;
    await versioned.createNetwork({ Name: 'tlab-log', Labels: { 'tlab.id': 'log' } });
    const c = await versioned.createContainer({ name: 'tlab-log-c', Image: IMAGE, HostConfig: { NetworkMode: 'tlab-log' } });
    await c.start();
    await c.kill({ signal: 'SIGKILL' });
    await c.remove({ force: true, v: true });
    await versioned.getNetwork('tlab-log').remove();
    const mine = engine.requests().slice(n0);
    expect(mine.map((r) => `${r.method} ${r.path}`)).toEqual([
      'POST /networks/create',
      'POST /containers/create',
      `POST /containers/${c.id}/start`,
      `POST /containers/${c.id}/kill`,
      `DELETE /containers/${c.id}`,
      'DELETE /networks/tlab-log',
    ]);
    expect(mine.every((r) => r.version === '1.41')).toBe(true);
    expect(mine.map((r) => r.status)).toEqual([201, 201, 204, 204, 204, 204]);
    expect(mine[0]!.body).toMatchObject({ Name: 'tlab-log', Labels: { 'tlab.id': 'log' } });
    expect(mine[1]!.query.name).toBe('tlab-log-c');
    expect(mine[3]!.query.signal).toBe('SIGKILL');
    expect(mine[4]!.query).toMatchObject({ force: 'true', v: 'true' });
    const seqs = engine.requests().map((r) => r.seq);
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    const lines = readFileSync(engine.requestsFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { seq: number; path: string });
    expect(lines.slice(-6).map((l) => l.path)).toEqual(mine.map((r) => r.path));
    expect(await status(versioned.getContainer(c.id).inspect())).toBe(404);
  });
});

describe('withFakeDocker', () => {
  it('points DOCKER_HOST and PATH at the fake, restores the environment and removes the socket', async () => {
    const before = { PATH: process.env.PATH, DOCKER_HOST: process.env.DOCKER_HOST, TLAB_STUB_LOG: process.env.TLAB_STUB_LOG };
    let socket = '';
    await withFakeDocker(
      async (fx) => {
        socket = fx.engine.socketPath;
        expect(isSocket(socket)).toBe(true);
        expect(process.env.DOCKER_HOST).toBe(`unix://${socket}`);
        expect(process.env.PATH!.split(':')[0]).toBe(STUBS_DIR);
        // a dockerode client built the way the provider builds it (no options: DOCKER_HOST)
        const d = new Docker();
        expect(String(await d.ping())).toBe('OK');
        expect((await d.getImage(IMAGE).inspect()).RepoTags).toEqual([IMAGE]);
        // the stubs resolve through PATH, as src/util/proc.ts run() finds talosctl
        const r = await execa('talosctl', ['version', '--client'], { reject: false });
        expect(r.exitCode).toBe(0);
        expect(r.stdout).toContain('v1.11.6');
        const k = await execa('kubectl', ['--kubeconfig', '/x', '--server', 'https://10.0.0.1:6443', '--request-timeout=15s', 'get', 'nodes', '-o', 'name']);
        expect(k.stdout.split('\n')).toEqual(['node/cp1', 'node/cp2', 'node/w1']);
        expect(fx.stubCalls().map((c) => c.cmd)).toEqual(['talosctl', 'kubectl']);
        // the lab profile answers the provider's readiness probe and runs its nft helpers to completion
        await fx.docker.createNetwork({ Name: 'n', IPAM: { Config: [{ Subnet: '10.9.0.0/24' }] } });
        const client = await fx.docker.createContainer({ name: 'tlab-w-client', Image: IMAGE, HostConfig: { NetworkMode: 'n' } });
        await client.start();
        expect((await dockerExec(fx.docker, 'tlab-w-client', ['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}', 'https://10.9.0.10:6443/readyz'])).stdout).toBe('200');
        const helper = await fx.docker.createContainer({ name: 'tlab-w-nft', Image: IMAGE, Labels: { 'tlab.kind': 'helper' }, HostConfig: { NetworkMode: 'container:tlab-w-client' } });
        await helper.start();
        expect(await helper.wait()).toEqual({ StatusCode: 0 });
      },
      { images: [IMAGE], nodes: ['cp1', 'cp2', 'w1'] },
    );
    expect(process.env.PATH).toBe(before.PATH);
    expect(process.env.DOCKER_HOST).toBe(before.DOCKER_HOST);
    expect(process.env.TLAB_STUB_LOG).toBe(before.TLAB_STUB_LOG);
    expect(existsSync(socket)).toBe(false);
  });

  it('restores the environment when the callback throws', async () => {
    const path = process.env.PATH;
    await expect(withFakeDocker(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(process.env.PATH).toBe(path);
    expect(process.env.TLAB_STUB_RULES).toBeUndefined();
  });
});

describe('talosctl / kubectl / helm stubs', () => {
  const dir = tmp('fxd-stubs-');
  const log = join(dir, 'calls.jsonl');
  const rulesFile = join(dir, 'rules.json');
  const stub = (cmd: string, args: string[], extra: Record<string, string> = {}) =>
    execa(join(STUBS_DIR, cmd), args, { reject: false, cwd: dir, env: { TLAB_STUB_LOG: log, TLAB_STUB_RULES: rulesFile, KUBECONFIG: '/k', ...extra } });
  const setRules = (r: StubRule[]) => writeFileSync(rulesFile, JSON.stringify(r));

  it('record cmd, args, cwd and the relevant environment as JSON lines; default exit 0, no output', async () => {
    setRules([]);
    const r = await stub('helm', ['upgrade', '--install', 'cilium', 'cilium', '--set', 'a={B,C}']);
    expect(r).toMatchObject({ exitCode: 0, stdout: '', stderr: '' });
    const calls = readStubCalls(log);
    expect(calls.at(-1)).toMatchObject({ cmd: 'helm', args: ['upgrade', '--install', 'cilium', 'cilium', '--set', 'a={B,C}'], cwd: dir, rule: null, exitCode: 0 });
    expect(calls.at(-1)!.env).toMatchObject({ KUBECONFIG: '/k', TLAB_STUB_RULES: rulesFile });
    expect(calls.at(-1)!.env.PATH).toBeUndefined();
  });

  it('answer from the first matching rule (cmd + regex over the joined args), with stdout, stderr and exit code', async () => {
    setRules([
      { cmd: 'kubectl', match: '(^| )apply .*metallb', stdout: 'no webhook yet', stderr: 'Error from server (InternalError)\n', exitCode: 1 },
      { cmd: 'kubectl', match: '(^| )apply( |$)', stdout: 'configured\n' },
      { cmd: ['talosctl', 'helm'], match: 'never' },
      { cmd: '*', match: '^boom$', exitCode: 42 },
      { match: '--x', stdout: 'after: {{after:--x}} 2nd: {{after:--x:2}} env: {{env:KUBECONFIG}}' },
    ]);
    const [a, b, c, e, f, g] = await Promise.all([
      stub('kubectl', ['apply', '--server-side', '-f', 'https://x/metallb-frr-k8s.yaml']),
      stub('kubectl', ['apply', '-f', 'svc.yaml']),
      stub('talosctl', ['boom']),
      stub('kubectl', ['boom', 'not-alone']), // the regex is over all the args: no match
      stub('helm', ['--x', 'v', 'w']),
      stub('helm', ['--x=v']),
    ]);
    expect(a).toMatchObject({ exitCode: 1, stdout: 'no webhook yet', stderr: 'Error from server (InternalError)' });
    expect(b.stdout).toBe('configured');
    expect(c.exitCode).toBe(42);
    expect(e).toMatchObject({ exitCode: 0, stdout: '' });
    expect(f.stdout).toBe('after: v 2nd: w env: /k');
    expect(g.stdout).toBe('after: v 2nd:  env: /k');
    const byArgs = new Map(readStubCalls(log).map((x) => [x.args.join(' '), x.rule]));
    expect(['apply --server-side -f https://x/metallb-frr-k8s.yaml', 'apply -f svc.yaml', 'boom', 'boom not-alone', '--x v w', '--x=v'].map((k) => byArgs.get(k))).toEqual([0, 1, 3, null, 4, 4]);
  });

  it('the default rules produce what the provider reads: secrets, Talos configs, patched copies, a kubeconfig with a real CA', async () => {
    setRules(defaultStubRules());
    const talos = join(dir, 'docker', 'talos');
    const nodes = join(talos, 'nodes');
    mkdirSync(nodes, { recursive: true });
    const secrets = join(talos, 'secrets.yaml');
    const only = join(dir, 'only-cp');
    const kubeconfig = join(dir, 'docker', 'kubeconfig');
    const tc = join(talos, 'talosconfig');
    // the provider's exact argument shapes (talosGenCommands / bootstrapCommands); independent calls at once
    const [sec, gen, genOnly, kcr] = await Promise.all([
      stub('talosctl', ['gen', 'secrets', '--output-file', secrets, '--force']),
      stub('talosctl', [
        'gen', 'config', 'tlab-smb-3f2a', 'https://10.0.1.10:6443', '--with-secrets', secrets, '--talos-version', 'v1.11.6', '--kubernetes-version', '1.34.1',
        '--with-docs=false', '--with-examples=false', '--config-patch', `@${join(talos, 'patches', 'x.yaml')}`,
        '--output-types', 'controlplane,worker,talosconfig', '--output', talos, '--force',
      ]),
      stub('talosctl', ['gen', 'config', 'c', 'https://1.2.3.4:6443', '--output-types', 'controlplane', '--output', only]),
      stub('talosctl', ['--talosconfig', tc, 'kubeconfig', kubeconfig, '--nodes', '10.0.1.11', '--endpoints', '10.0.1.11', '--force']),
    ]);
    expect([sec.exitCode, gen.exitCode, genOnly.exitCode, kcr.exitCode]).toEqual([0, 0, 0, 0]);
    expect(parse(readFileSync(secrets, 'utf8'))).toMatchObject({ cluster: { id: expect.any(String) }, certs: { os: { crt: expect.any(String) } } });
    const cp = parse(readFileSync(join(talos, 'controlplane.yaml'), 'utf8'));
    expect(cp).toMatchObject({ version: 'v1alpha1', machine: { type: 'controlplane' }, cluster: { clusterName: 'tlab-smb-3f2a', controlPlane: { endpoint: 'https://10.0.1.10:6443' } } });
    expect(parse(readFileSync(join(talos, 'worker.yaml'), 'utf8')).machine.type).toBe('worker');
    expect(parse(readFileSync(tc, 'utf8')).context).toBe('tlab-smb-3f2a');
    // --output-types limits what is written
    expect([existsSync(join(only, 'controlplane.yaml')), existsSync(join(only, 'worker.yaml')), existsSync(join(only, 'talosconfig'))]).toEqual([true, false, false]);
    const kc = readFileSync(kubeconfig, 'utf8');
    expect(parse(kc).clusters[0].cluster.server).toBe('https://10.0.1.11:6443');
    // what the provider's writeCa does with it
    const ca = Buffer.from(/certificate-authority-data:\s*(\S+)/.exec(kc)![1]!, 'base64');
    expect(new X509Certificate(ca).ca).toBe(true);

    const out = join(nodes, 'controlplane-lan.yaml');
    const [patch, addrs, wait, apply, nodesOut, helm, bad] = await Promise.all([
      stub('talosctl', ['machineconfig', 'patch', join(talos, 'controlplane.yaml'), '--patch', `@${join(nodes, 'controlplane-lan.patch.yaml')}`, '--output', out]),
      stub('talosctl', ['--talosconfig', tc, '--nodes', '10.0.1.11,10.0.1.12', 'get', 'addresses', '-o', 'yaml']),
      stub('kubectl', ['--kubeconfig', kubeconfig, '--server', 'https://10.0.1.11:6443', 'wait', '--for=condition=Ready', 'nodes', '--all', '--timeout=15m']),
      stub('kubectl', ['--kubeconfig', kubeconfig, 'apply', '--server-side', '-f', 'x.yaml']),
      stub('kubectl', ['--kubeconfig', kubeconfig, '--server', 'https://10.0.1.11:6443', '--request-timeout=15s', 'get', 'nodes', '-o', 'name'], { TLAB_STUB_NODES: '4' }),
      stub('helm', ['upgrade', '--install', 'cilium', 'cilium', '--wait']),
      // a changed argument shape fails loudly instead of silently writing nothing
      stub('talosctl', ['gen', 'secrets']),
    ]);
    expect(patch.exitCode).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe(readFileSync(join(talos, 'controlplane.yaml'), 'utf8'));
    expect(addrs).toMatchObject({ exitCode: 0, stdout: '' });
    expect([wait.exitCode, apply.exitCode, helm.exitCode]).toEqual([0, 0, 0]);
    expect(nodesOut.stdout.split('\n')).toEqual(['node/node-1', 'node/node-2', 'node/node-3', 'node/node-4']);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(/writes a file after --output-file\/-o but the arguments have none/);
  });

  it('the generated Talos machine configs validate against the real Talos v1.11.6 schema', async () => {
    const schemaFile = resolve(process.cwd(), '..', 'shared', 'schemas', 'talos', 'config-v1.11.6.schema.json');
    expect(existsSync(schemaFile), `${schemaFile} is missing`).toBe(true);
    setRules(defaultStubRules({ talosVersion: 'v1.11.6' }));
    const out = join(dir, 'schema-check');
    await stub('talosctl', ['gen', 'config', 'tlab-x', 'https://10.0.1.10:6443', '--output', out]);
    type Ajv2020Class = typeof Ajv2020Mod.default;
    const Ajv2020 = ((Ajv2020Mod as unknown as { default?: Ajv2020Class }).default ?? Ajv2020Mod) as Ajv2020Class;
    const addFormats = ((addFormatsMod as unknown as { default?: unknown }).default ?? addFormatsMod) as typeof addFormatsMod.default;
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats(ajv);
    const schema = JSON.parse(readFileSync(schemaFile, 'utf8')) as { $id: string };
    ajv.compile(schema);
    const config = ajv.getSchema(`${schema.$id}#/$defs/v1alpha1.Config`)!;
    for (const f of ['controlplane.yaml', 'worker.yaml']) {
      const ok = config(parse(readFileSync(join(out, f), 'utf8')));
      expect(ok, `${f}: ${JSON.stringify(config.errors?.slice(0, 3))}`).toBe(true);
    }
    // and the validator is not vacuous: a misspelt field fails
    expect(config({ ...parse(readFileSync(join(out, 'worker.yaml'), 'utf8')), machine: { type: 'worker', kubelett: {} } })).toBe(false);
  });
});
