/**
 * The appliance image on a real Docker engine (root): dockerd is used or started, the appliance
 * is built offline (debootstrap base + pinned Debian packages) or reused, two containers from it
 * run on an `--internal` network with fixed addresses and everything the emulated agents call is
 * there and works — FRR, HAProxy, etcd, nftables, conntrack, ping, and our TypeScript through
 * `node --import tsx` from the read-only repository. A second ensure is a cache hit. Everything
 * the test creates carries `tlab.id=<test id>` and is removed by that label.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type Docker from 'dockerode';
import {
  APPLIANCE_PACKAGES,
  LABEL_BASE_HASH,
  LABEL_HASH,
  LABEL_IMAGE,
  LABEL_ROLE,
  PUBLIC_BASE,
  PULL_PROBE_MS,
  applianceVersions,
  ensureApplianceImage,
  resolveApplianceBase,
  type ApplianceImage,
} from '../../src/providers/runtimes/docker/appliance.js';
import { brNetfilter, dockerVersion } from '../../src/providers/runtimes/docker/dockerd.js';
import { useDockerd } from '../helpers/dockerd.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const TEST_ID = `tlx-appliance-${process.pid}`;
const LABELS = { 'tlab.id': TEST_ID };
// a /24 of its own, away from the shipped labs' 10.31–10.33/16 and Docker's default pools
const NET = `10.250.${process.pid % 250}`;
const IP_A = `${NET}.11`;
const IP_B = `${NET}.12`;

const engine = useDockerd();

async function removeOurs(d: Docker): Promise<{ containers: number; networks: number }> {
  const filters = { label: [`tlab.id=${TEST_ID}`] };
  const cs = await d.listContainers({ all: true, filters });
  for (const c of cs) await d.getContainer(c.Id).remove({ force: true });
  const ns = await d.listNetworks({ filters });
  for (const n of ns) await d.getNetwork(n.Id).remove();
  return { containers: cs.length, networks: ns.length };
}
// registered after useDockerd(): runs before a dockerd we started is stopped
afterAll(async () => {
  await removeOurs(engine.docker()).catch((e) => console.error(`cleanup: ${e}`));
}, 120_000);

/** `docker exec` with separated stdout/stderr and the exit code. */
async function exec(c: Docker.Container, cmd: string[], workdir?: string): Promise<{ code: number; out: string; err: string }> {
  const x = await c.exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true, WorkingDir: workdir });
  const stream = await x.start({ hijack: true, stdin: false });
  const out = new PassThrough();
  const err = new PassThrough();
  let o = '';
  let e = '';
  out.on('data', (b: Buffer) => (o += b.toString()));
  err.on('data', (b: Buffer) => (e += b.toString()));
  engine.docker().modem.demuxStream(stream, out, err);
  await new Promise<void>((res, rej) => {
    const t = setTimeout(() => rej(new Error(`exec timed out: ${cmd.join(' ')}`)), 60_000);
    stream.on('end', () => (clearTimeout(t), res()));
    stream.on('error', (er: Error) => (clearTimeout(t), rej(er)));
  });
  const info = await x.inspect();
  return { code: info.ExitCode ?? -1, out: o, err: e };
}

const upstream = (v: string) => v.replace(/^\d+:/, '').split('-')[0]!; // '1:1.4.7-1+b2' → '1.4.7'

let first: ApplianceImage;
let firstMs = 0;

beforeAll(async () => {
  expect(process.getuid?.()).toBe(0); // the e2e project needs root, as CI has
  const t0 = performance.now();
  first = await ensureApplianceImage(engine.docker(), { offline: true, log: (m) => console.log(m) });
  firstMs = performance.now() - t0;
  console.log(`appliance: ${first.image} (${first.id.slice(7, 19)}) FROM ${first.base}; ${first.built ? 'built' : 'reused'} in ${(firstMs / 1000).toFixed(1)} s`);
}, 30 * 60_000);

describe('docker appliance image', () => {
  it('the engine: dockerd answers, its version and br_netfilter are readable', async () => {
    const d = engine.docker();
    const h = engine.handle();
    if (h.started) expect(h.pid).toBeGreaterThan(0);
    const v = await dockerVersion(d);
    expect(v.version).toMatch(/^\d+\.\d+/);
    expect(v.apiVersion).toMatch(/^1\.\d+$/);
    const br = await brNetfilter();
    if (br.loaded) expect(['0', '1']).toContain(br.bridgeNfCallIptables);
    console.log(`docker ${v.version} (API ${v.apiVersion}, containerd ${v.containerd ?? '?'}), br_netfilter ${JSON.stringify(br)}`);
  });

  it('is built once, offline, labelled with its hash and pinned packages; a second ensure reuses it', async () => {
    const d = engine.docker();
    expect(first.baseKind).toBe('local');
    expect(first.image).toMatch(/^tlab-appliance:[0-9a-f]{16}$/);
    expect(first.hash.startsWith(first.image.split(':')[1]!)).toBe(true);

    const v = await applianceVersions(d, first.image);
    expect(v.hash).toBe(first.hash);
    expect(v.id).toBe(first.id);
    expect(v.packages).toEqual(APPLIANCE_PACKAGES);
    expect(Number(v.node?.split('.')[0])).toBeGreaterThanOrEqual(20);
    // offline the base carries this host's node binary
    expect(v.node).toBe(process.versions.node);

    const img = await d.getImage(first.image).inspect();
    expect(img.Config.Labels?.[LABEL_IMAGE]).toBe('appliance');
    const base = await d.getImage(first.base).inspect();
    expect(base.Config.Labels?.[LABEL_IMAGE]).toBe('appliance');
    expect(base.Config.Labels?.[LABEL_ROLE]).toBe('base');
    expect(base.Config.Labels?.[LABEL_BASE_HASH]).toMatch(/^[0-9a-f]{64}$/);
    // no build container survives (rm + forcerm)
    expect(await d.listContainers({ all: true, filters: { label: [`${LABEL_IMAGE}=appliance`] } })).toEqual([]);

    const t0 = performance.now();
    const again = await ensureApplianceImage(d, { offline: true });
    const cachedMs = performance.now() - t0;
    console.log(`appliance: cached ensure in ${cachedMs.toFixed(0)} ms (first: ${(firstMs / 1000).toFixed(1)} s, ${first.built ? 'built' : 'reused'})`);
    expect(again.built).toBe(false);
    expect(again.id).toBe(first.id);
    expect(again.image).toBe(first.image);
    expect(again.hash).toBe(first.hash);
    expect(cachedMs).toBeLessThan(10_000);
    // the base resolves to the base, not to the appliance that inherited its labels
    expect((await resolveApplianceBase(d, { offline: true })).id).toBe(base.Id);
    expect((await d.listImages({ filters: { label: [`${LABEL_HASH}=${first.hash}`] } })).length).toBe(1);
  });

  it('without `offline`, the registry probe is bounded and the choice matches what the engine has', async () => {
    const d = engine.docker();
    const t0 = performance.now();
    const base = await resolveApplianceBase(d, {});
    const ms = performance.now() - t0;
    expect(ms).toBeLessThan(PULL_PROBE_MS + 5_000);
    const havePublic = await d
      .getImage(PUBLIC_BASE)
      .inspect()
      .then(() => true)
      .catch(() => false);
    // public only when the engine really has it (local or just pulled); else the same local base
    expect(base.kind).toBe(havePublic ? 'public' : 'local');
    if (!havePublic) expect(base.name).toBe(first.base);
  });

  it('two containers on an internal network: the tools, the read-only repo, node + tsx, ping', async () => {
    const d = engine.docker();
    const net = await d.createNetwork({
      Name: TEST_ID,
      Driver: 'bridge',
      Internal: true,
      Labels: LABELS,
      IPAM: { Driver: 'default', Config: [{ Subnet: `${NET}.0/24` }] },
    });
    const mk = async (name: string, ip: string) => {
      const c = await d.createContainer({
        name: `${TEST_ID}-${name}`,
        Image: first.image,
        Cmd: ['sleep', 'infinity'],
        Labels: LABELS,
        WorkingDir: REPO,
        HostConfig: { NetworkMode: TEST_ID, Binds: [`${REPO}:${REPO}:ro`], CapAdd: ['NET_ADMIN', 'NET_RAW'] },
        NetworkingConfig: { EndpointsConfig: { [TEST_ID]: { IPAMConfig: { IPv4Address: ip } } } },
      });
      await c.start();
      return c;
    };
    const t0 = performance.now();
    const [a, b] = await Promise.all([mk('a', IP_A), mk('b', IP_B)]);
    const startMs = performance.now() - t0;
    expect((await net.inspect()).Internal).toBe(true);

    // FRR 8.4's vtysh has no --version (it exits 1: "unrecognized option"): -h proves it runs,
    // the daemons print the version
    const vtysh = await exec(a, ['vtysh', '-h']);
    expect(vtysh.code, vtysh.err).toBe(0);
    const bgpd = await exec(a, ['/usr/lib/frr/bgpd', '--version']);
    expect(bgpd.out).toContain(`bgpd version ${upstream(APPLIANCE_PACKAGES.frr!)}`);
    const haproxy = await exec(a, ['haproxy', '-v']);
    expect(haproxy.out).toContain(`HAProxy version ${upstream(APPLIANCE_PACKAGES.haproxy!)}`);
    const etcd = await exec(a, ['etcd', '--version']);
    expect(etcd.out).toContain(`etcd Version: ${upstream(APPLIANCE_PACKAGES['etcd-server']!)}`);
    const nft = await exec(a, ['nft', 'list', 'ruleset']);
    expect(nft.code, nft.err).toBe(0);
    const conntrack = await exec(a, ['conntrack', '--version']);
    expect(conntrack.out + conntrack.err).toContain(`v${upstream(APPLIANCE_PACKAGES.conntrack!)}`);
    // every pin is what dpkg installed
    const dpkg = await exec(a, ['dpkg-query', '-W', '-f=${Package}=${Version}\\n', ...Object.keys(APPLIANCE_PACKAGES)]);
    expect(dpkg.code, dpkg.err).toBe(0);
    expect(Object.fromEntries(dpkg.out.trim().split('\n').map((l) => l.split('=') as [string, string]))).toEqual(APPLIANCE_PACKAGES);

    // the repository at the same path, read-only
    expect((await exec(a, ['test', '-f', `${REPO}/package.json`])).code).toBe(0);
    const write = await exec(a, ['touch', `${REPO}/.tlab-ro-probe`]);
    expect(write.code).not.toBe(0);
    expect(write.err).toMatch(/Read-only file system/);

    // our TypeScript through tsx: the project's process runner calls `ip` inside the container
    const script = "const { run } = await import('./src/util/proc.ts'); const r = await run('ip', ['-4', '-o', 'addr', 'show']); console.log(JSON.stringify({ node: process.versions.node, ip: r.stdout }));";
    const t1 = performance.now();
    const node = await exec(a, ['node', '--import', 'tsx', '--input-type=module', '-e', script], REPO);
    const nodeMs = performance.now() - t1;
    expect(node.code, node.err).toBe(0);
    const got = JSON.parse(node.out.trim().split('\n').pop()!) as { node: string; ip: string };
    expect(Number(got.node.split('.')[0])).toBeGreaterThanOrEqual(20);
    expect(got.node).toBe((await applianceVersions(d, first.image)).node);
    expect(got.ip).toContain(`${IP_A}/24`);

    // L3 between the two on the internal bridge, both ways
    const ab = await exec(a, ['ping', '-c', '1', '-W', '2', IP_B]);
    expect(ab.code, ab.out + ab.err).toBe(0);
    const ba = await exec(b, ['ping', '-c', '1', '-W', '2', IP_A]);
    expect(ba.code, ba.out + ba.err).toBe(0);
    console.log(`containers started in ${startMs.toFixed(0)} ms; node+tsx in the container: ${nodeMs.toFixed(0)} ms`);
  });

  it('removes every container and network it made (by label)', async () => {
    const d = engine.docker();
    const removed = await removeOurs(d);
    expect(removed).toEqual({ containers: 2, networks: 1 });
    expect(await removeOurs(d)).toEqual({ containers: 0, networks: 0 });
  });
});
