/**
 * The docker runtime's own network and access rules on a real Docker engine (root; dockerd is
 * used or started), without a lab run around them: smb's hosts as containers of the appliance
 * (DockerRuntime.build, the code `--provider docker --nodes emulated` runs), then
 *
 *  - routed paths (client → router → nodes and back) with the host's br_netfilter as it is, and
 *    what decides them under BOTH br_netfilter states: on the Docker bridges only VXLAN over IPv6
 *    between members of one network crosses — no IPv4 frame, no ARP — so moby's isolation rules
 *    for internal networks (IPv4 iptables, consulted for bridged frames only when br_netfilter is
 *    active) have nothing to drop. The test reads the host's state and rules; it changes neither
 *    (no sysctl, no module, no rule: the lab may not touch the host's root namespace, and a test
 *    that flipped a host-wide switch would change it for everything else running there);
 *  - a link flap as the drill does it (`docker network disconnect`, `connect` with the same
 *    address): whatever name Docker gives the new link, the lab's link keeps its name, index and
 *    address, the new Docker link becomes the underlay, the path is back, and a crash + boot
 *    after it (Docker finds its links by name at stop) still comes up;
 *  - the traffic agent of `--provider docker` (real Talos) started and called by a NON-ROOT user
 *    in the docker group, and refused to that user when it runs as root (why the lab starts it as
 *    the invoking user).
 *
 * Everything is recorded in a lab state and removed by the code `lab clean` runs; the test then
 * checks that no container or network with its id is left.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { loadLab, REPO_ROOT } from '../../src/model/load.js';
import type { Host, Topology } from '../../src/model/types.js';
import type { AgentSpec } from '../../src/emulation/agent/types.js';
import { LabState } from '../../src/state/state.js';
import { ensureApplianceImage } from '../../src/providers/runtimes/docker/appliance.js';
import { brNetfilter } from '../../src/providers/runtimes/docker/dockerd.js';
import { allHosts, containerName, networkName } from '../../src/providers/runtimes/docker/network.js';
import { overlayTopology, READY_ALIAS, VXLAN_PORT } from '../../src/providers/runtimes/docker/overlay.js';
import { DockerRuntime } from '../../src/providers/runtimes/docker/runtime.js';
import { launchAgent } from '../../src/providers/runtimes/docker/talos.js';
import { sleep } from '../../src/util/proc.js';
import { useDockerd } from '../helpers/dockerd.js';
import { useTempDirs } from '../helpers/tmp.js';

const TSX = pathToFileURL(createRequire(join(REPO_ROOT, 'package.json')).resolve('tsx')).href;
const engine = useDockerd();
const mkTemp = useTempDirs();
const ID = `dkrt-${(process.pid % 0x10000).toString(16).padStart(4, '0')}`;
const PREFIX = `tlab-${ID}`;
/** a user that is not root, with no home and no files of its own: `nobody` */
const NOBODY = 65534;

let image = '';
let t: Topology;
let rt: DockerRuntime;
let state: LabState;

const host = (name: string): Host => allHosts(t).find((h) => h.name === name)!;
const labIp = (name: string) => host(name).interfaces[0]!.ip;

async function ours(d: Docker): Promise<{ containers: string[]; networks: string[] }> {
  const filters = { label: [`tlab.id=${ID}`] };
  return {
    containers: (await d.listContainers({ all: true, filters })).map((c) => c.Names[0] ?? c.Id),
    networks: (await d.listNetworks({ filters })).map((n) => n.Name),
  };
}

/** `ping` from one lab host to an address: 0 when answered */
async function ping(from: string, ip: string): Promise<number> {
  return (await rt.exec(from, 'ping', ['-c', '2', '-i', '0.2', '-W', '2', ip], { reject: false })).exitCode;
}

interface Link {
  ifindex: number;
  ifname: string;
  ifalias?: string;
  addr_info: { family: string; local: string; prefixlen: number }[];
}
async function links(h: string): Promise<Link[]> {
  return JSON.parse((await rt.exec(h, 'ip', ['-j', '-d', 'addr', 'show'])).stdout) as Link[];
}

/**
 * tcpdump on Docker's link (the underlay) inside each of the given containers for `ms`: every
 * frame a lab bridge carries was sent or received by one of them. Captured where the frames
 * leave and enter the containers, so the host's bridges are neither touched nor put in
 * promiscuous mode.
 */
async function captureUnderlays(hosts: string[], ms: number, during: () => Promise<void>): Promise<string[]> {
  const script = [
    `u=$(ip -o link show | awk '$0 ~ /alias tlab-u0$/ { n = $2; sub(/@.*/, "", n); sub(/:$/, "", n); print n; exit }')`,
    '[ -n "$u" ] || { echo "no underlay" >&2; exit 1; }',
    `timeout ${Math.ceil(ms / 1000)} tcpdump -i "$u" -nn -e -l -p 2>/dev/null; true`,
  ].join('\n');
  const caps = hosts.map((h) => rt.exec(h, 'sh', ['-c', script], { timeoutMs: ms + 10_000 }).then((r) => r.stdout.split('\n').filter(Boolean).map((l) => `${h} ${l}`)));
  await sleep(1000); // tcpdump is listening
  await during();
  return (await Promise.all(caps)).flat();
}

beforeAll(async () => {
  expect(process.getuid?.()).toBe(0); // the e2e project needs root, as CI has
  const d = engine.docker();
  image = (await ensureApplianceImage(d, { offline: true, log: (m) => console.log(m) })).image;
  for (const c of (await ours(d)).containers) await d.getContainer(c.replace(/^\//, '')).remove({ force: true }).catch(() => null);
  for (const n of (await ours(d)).networks) await d.getNetwork(n).remove().catch(() => null);
  t = overlayTopology(loadLab('smb', { repoRoot: REPO_ROOT }).topology);
  state = LabState.create({ id: ID, prefix: PREFIX, lab: 'smb', labFile: 'smb', provider: 'docker', createdAt: new Date().toISOString(), ownerPid: process.pid, status: 'starting' }, mkTemp('dkrt-state-'));
  rt = new DockerRuntime(t, { prefix: PREFIX, state }, { docker: d, image: () => image, apiVersion: (await d.version()).ApiVersion });
  await rt.build();
}, 30 * 60_000);

// registered after useDockerd(): runs before a dockerd this file started is stopped
afterAll(async () => {
  await rt?.down();
  expect(await ours(engine.docker())).toEqual({ containers: [], networks: [] });
}, 120_000);

describe('docker runtime (emulated nodes): paths, link flap, agent access', () => {
  it('routed paths work, and only VXLAN over IPv6 crosses the Docker bridges: moby’s internal-network rules see nothing to drop with br_netfilter on or off', async () => {
    const d = engine.docker();
    const br = await brNetfilter();
    console.log(`br_netfilter: ${JSON.stringify(br)}`);
    const segs = t.segments.map((s) => s.name);
    const bridges: Record<string, string> = {};
    for (const s of segs) bridges[s] = `br-${(await d.getNetwork(networkName(PREFIX, s)).inspect()).Id.slice(0, 12)}`;

    const client = t.clients[0]!.name;
    const nodes = t.nodes.map((n) => n.name);
    const frames = await captureUnderlays(allHosts(t).map((h) => h.name), 6000, async () => {
      // client (uplink) → router → every node (LAN), and every node back to the client
      await Promise.all(nodes.map(async (n) => expect(await ping(client, labIp(n)), `${client} → ${n} (${labIp(n)}) through the router`).toBe(0)));
      await Promise.all(nodes.map(async (n) => expect(await ping(n, labIp(client)), `${n} → ${client} through the router`).toBe(0)));
    });

    // tcpdump prints a VXLAN frame's inner frame on a line of its own, without a timestamp:
    // the frames on Docker's link are the timestamped lines
    const outer = frames.filter((l) => /^\S+ \d\d:\d\d:\d\d\.\d+ /.test(l));
    const vxlan = outer.filter((l) => /ethertype IPv6/.test(l) && new RegExp(`\\.${VXLAN_PORT}: VXLAN`).test(l));
    const v4 = outer.filter((l) => /ethertype (IPv4|ARP)/.test(l));
    expect(frames.length - outer.length, 'the pings, decapsulated, are inside those frames').toBeGreaterThan(0);
    expect(vxlan.length, `the pings crossed Docker's links as VXLAN over IPv6; captured ${frames.length} frames:\n${frames.slice(0, 10).join('\n')}`).toBeGreaterThan(4 * nodes.length);
    expect(v4, 'no IPv4 frame and no ARP on Docker’s links').toEqual([]);

    // moby's isolation rules exist for the lab's internal networks and match IPv4 only: with
    // br_netfilter active they would drop every routed IPv4 frame bridged there (client → VIP,
    // node → client); the overlay keeps every such frame off the bridge, so the paths above do
    // not depend on br_netfilter's state
    const rules = execFileSync('iptables', ['-S'], { encoding: 'utf8' });
    for (const [s, b] of Object.entries(bridges)) {
      const subnet = t.segments.find((x) => x.name === s)!.cidr;
      expect(rules, `moby's internal-network DROP for ${s} (${b})`).toMatch(new RegExp(`(-i ${b} ! -d ${subnet.replace(/\./g, '\\.')}|! -d ${subnet.replace(/\./g, '\\.')} -i ${b}).*-j DROP`));
    }
    // and nothing in ip6tables' FORWARD chain stops the overlay (what `check` refuses to run on)
    const v6 = execFileSync('ip6tables', ['-S', 'FORWARD'], { encoding: 'utf8' });
    expect(/^-P FORWARD (DROP|REJECT)/m.test(v6) && !v6.includes(`--dport ${VXLAN_PORT}`), `ip6tables FORWARD lets the overlay pass:\n${v6}`).toBe(false);
  });

  it('a link flap: the lab link keeps its name and address, Docker’s new link becomes the underlay, the path returns; a crash and boot after it come up', async () => {
    const victim = t.nodes.find((n) => n.role === 'worker')!.name;
    const client = t.clients[0]!.name;
    const lab = host(victim).interfaces[0]!;
    const before = await links(victim);
    const overlay = before.find((l) => l.ifname === lab.ifname)!;
    expect(overlay, `${victim} has its lab link ${lab.ifname}`).toBeTruthy();
    const under0 = before.find((l) => l.ifalias === 'tlab-u0')!;
    expect(under0.ifname, 'Docker’s own link keeps Docker’s name').toMatch(/^eth\d+$/);

    await rt.linkFlap(victim, 500);
    const after = await links(victim);
    const overlay2 = after.find((l) => l.ifname === lab.ifname)!;
    expect(overlay2.ifindex, 'the lab link survived the flap (same device)').toBe(overlay.ifindex);
    expect(overlay2.addr_info.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`)).toEqual([`${lab.ip}/${lab.prefixLen}`]);
    const under = after.filter((l) => l.ifalias === 'tlab-u0');
    expect(under.length, 'exactly one underlay').toBe(1);
    expect(under[0]!.ifindex, 'the underlay is the NEW Docker link').not.toBe(under0.ifindex);
    expect(under[0]!.ifname, 'named by Docker (eth<N>), never the lab’s name').toMatch(/^eth\d+$/);
    expect(under[0]!.addr_info.filter((a) => a.family === 'inet'), 'the underlay carries no IPv4').toEqual([]);
    expect(under[0]!.addr_info.some((a) => a.family === 'inet6' && a.local.startsWith('fd74:')), 'the underlay has its ULA').toBe(true);
    const ep = (await engine.docker().getContainer(containerName(PREFIX, victim)).inspect()).NetworkSettings.Networks[networkName(PREFIX, lab.segment)];
    expect(ep?.IPAMConfig?.IPv4Address ?? ep?.IPAddress, 'Docker reconnected it with the same address').toBe(lab.ip);
    expect(await ping(client, lab.ip), `${client} → ${victim} after the flap`).toBe(0);

    // the crash drill after a flap: `docker kill`, `docker start` (Docker tears its links down by name)
    await rt.crash(victim);
    await rt.boot(victim);
    const lo = (await rt.exec(victim, 'ip', ['-o', 'link', 'show', 'dev', 'lo'])).stdout;
    expect(lo).toContain(`alias ${READY_ALIAS}`);
    expect(await ping(client, lab.ip), `${client} → ${victim} after crash + boot`).toBe(0);
  });

  it('the traffic agent of --provider docker: a non-root user of the docker group starts and calls it; a root agent’s socket refuses that user', async () => {
    const d = engine.docker();
    const dockerGid = Number(execFileSync('getent', ['group', 'docker'], { encoding: 'utf8' }).split(':')[2]);
    expect(Number.isInteger(dockerGid), 'the docker group exists (Debian’s docker.io creates it)').toBe(true);
    // a directory of the user's own, bind-mounted at the same path (the lab state of a user's run)
    const dir = mkTemp('dkrt-user-');
    chownSync(dir, NOBODY, NOBODY);
    const name = containerName(PREFIX, 'agent-user');
    state.record({ kind: 'container', name });
    const c = await d.createContainer({
      name,
      Image: image,
      Cmd: ['sleep', 'infinity'],
      Labels: { 'tlab.id': ID },
      HostConfig: { Init: true, NetworkMode: 'none', Binds: [`${REPO_ROOT}:${REPO_ROOT}:ro`, `${dir}:${dir}`] },
    });
    await c.start();
    const spec = (sub: string, owner: number): string => {
      const p = join(dir, sub);
      mkdirSync(p);
      chownSync(p, owner, owner);
      const s: AgentSpec = { host: 'c1', ns: '', stateDir: p, socket: join(p, 'agent.sock'), eventsFile: join(p, 'events.jsonl'), topology: t, components: [{ kind: 'traffic', config: {} }] };
      writeFileSync(join(p, 'spec.json'), JSON.stringify(s));
      chownSync(join(p, 'spec.json'), owner, owner);
      return join(p, 'spec.json');
    };
    const asUser = (specFile: string, mode: 'launch' | 'call') =>
      JSON.parse(
        execFileSync('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, `--groups=${dockerGid}`, '--reset-env', process.execPath, '--import', TSX, join(REPO_ROOT, 'test', 'helpers', 'agent-as-user.ts'), name, specFile, mode], {
          cwd: REPO_ROOT,
          encoding: 'utf8',
          timeout: 180_000,
        })
          .trim()
          .split('\n')
          .pop()!,
      ) as { uid: number; groups: number[]; docker?: string; user?: string; ping?: { host: string }; error?: string };

    const mine = asUser(spec('user', NOBODY), 'launch');
    console.log(`as uid ${NOBODY}: ${JSON.stringify(mine)}`);
    expect(mine.uid).toBe(NOBODY);
    expect(mine.docker, 'the docker group reaches the engine').toMatch(/^\d+\.\d+/);
    expect(mine.user, 'the agent runs as the invoking user').toBe(`${NOBODY}:${NOBODY}`);
    expect(mine.error).toBeUndefined();
    expect(mine.ping?.host).toBe('c1');

    // the same agent started as root: its socket is root's (0755) and connect(2) needs write
    const rootSpec = spec('root', 0);
    await launchAgent(d, name, rootSpec, { pidFile: join(dir, 'root', 'agent.pid'), logFile: join(dir, 'root', 'agent.log'), user: '0:0' });
    for (let i = 0; i < 600 && !existsSync(join(dir, 'root', 'agent.sock')); i++) await sleep(100);
    const refused = asUser(rootSpec, 'call');
    console.log(`as uid ${NOBODY} against a root agent: ${JSON.stringify(refused)}`);
    expect(refused.ping).toBeUndefined();
    expect(refused.error).toMatch(/EACCES/);
  }, 6 * 60_000);
});
