/**
 * Emulated nodes on docker, the pure parts: which provider a `--provider`/`--nodes` pair names
 * (bad pairs are usage errors, exit 2), the provider descriptors, the internal networks, and the
 * overlay each container builds (names, VNIs, broadcast peers) derived from the topology here.
 */
import { describe, expect, it } from 'vitest';
import { loadLab } from '../../src/model/load.js';
import { UsageError } from '../../src/util/errors.js';
import { loadProvider, parseProviderChoice } from '../../src/providers/index.js';
import { overlayLinks, overlayScript, overlayTopology, UNDERLAY_MTU } from '../../src/providers/runtimes/docker/overlay.js';
import { dockerEmulatedContainer, dockerEmulatedNetworkPlans } from '../../src/providers/runtimes/docker/runtime.js';

describe('--provider × --nodes', () => {
  it('names the pairs that exist and refuses the others with a usage error', () => {
    expect(parseProviderChoice('docker:emulated')).toEqual({ provider: 'docker', nodes: 'emulated' });
    expect(parseProviderChoice('docker:talos')).toEqual({ provider: 'docker', nodes: 'talos' });
    expect(parseProviderChoice('sim')).toEqual({ provider: 'sim' });
    for (const bad of ['sim:talos', 'qemu:emulated', 'auto:emulated', 'docker:vm', 'nope', 'docker:emulated:x']) {
      expect(() => parseProviderChoice(bad), bad).toThrow(UsageError);
    }
    try {
      parseProviderChoice('sim:talos');
    } catch (e) {
      expect((e as UsageError).exitCode).toBe(2);
      expect((e as Error).message).toContain('--provider docker --nodes emulated');
    }
  });

  it('docker with talos nodes and docker with emulated nodes are one instance at a time', async () => {
    const talos = await loadProvider('docker');
    expect(talos).toMatchObject({ name: 'docker', emulated: false, nodes: 'talos', maxInstances: 1 });
    const emu = await loadProvider('docker', 'emulated');
    expect(emu).toMatchObject({ name: 'docker', emulated: true, nodes: 'emulated', maxInstances: 1 });
  });
});

describe('the overlay of the smb lab', () => {
  const t = loadLab('smb').topology;
  const o = overlayTopology(t);
  const hosts = [...o.routers, ...o.nodes, ...o.clients, ...(o.loadBalancer ? [o.loadBalancer] : [])];

  it('keeps every address, renames every link away from Docker’s eth<N>', () => {
    const orig = [...t.routers, ...t.nodes, ...t.clients, ...(t.loadBalancer ? [t.loadBalancer] : [])];
    expect(hosts.map((h) => h.interfaces.map((i) => i.ip))).toEqual(orig.map((h) => h.interfaces.map((i) => i.ip)));
    for (const h of hosts) for (const i of h.interfaces) expect(i.ifname).toMatch(/^tleth\d+$/);
  });

  it('one internal network per segment, MTU room for VXLAN over IPv6', () => {
    const nets = dockerEmulatedNetworkPlans(o, 'tlab-smb-0000');
    expect(nets.map((n) => n.segment)).toEqual(t.segments.map((s) => s.name));
    for (const n of nets) {
      expect(n.options.Internal).toBe(true);
      expect(n.options.Options?.['com.docker.network.driver.mtu']).toBe(String(1500 + 40 + 8 + 8 + 14));
      expect(n.options.Labels?.['tlab.id']).toBe('smb-0000');
    }
    expect(UNDERLAY_MTU).toBe(1570);
  });

  it('each host replicates broadcast to every other host of its segment, one VNI per segment', () => {
    for (const h of hosts) {
      const links = overlayLinks(o, h);
      for (const l of links) {
        const others = hosts.filter((x) => x !== h && x.interfaces.some((i) => i.segment === l.segment)).length;
        expect(l.peers.length, `${h.name} on ${l.segment}`).toBe(others);
        expect(new Set(l.peers).size).toBe(others);
      }
      expect(new Set(links.map((l) => l.vni)).size).toBe(links.length);
      const script = overlayScript(o, h);
      for (const i of h.interfaces) expect(script).toContain(`ip addr add ${i.ip}/${i.prefixLen} dev '${i.ifname}'`);
      if (h.gateway) expect(script).toContain(`ip route replace default via ${h.gateway}`);
      expect(script.trimEnd().split('\n').at(-1)).toContain('tlab-net-ready');
    }
    // the same segment has the same VNI on every host
    const vnis = new Map<string, number>();
    for (const h of hosts) for (const l of overlayLinks(o, h)) expect(vnis.get(l.segment) ?? vnis.set(l.segment, l.vni).get(l.segment)).toBe(l.vni);
  });

  it('containers: the lab state and the read-only checkout at their own paths, the first segment’s address', () => {
    const cp1 = o.nodes.find((n) => n.name === 'cp1')!;
    const c = dockerEmulatedContainer(o, cp1, { prefix: 'tlab-smb-0000', image: 'img', stateDir: '/state/x' });
    expect(c.name).toBe('tlab-smb-0000-cp1');
    expect(c.HostConfig?.Binds).toContain('/state/x:/state/x');
    expect(c.HostConfig?.Binds?.some((b) => b.endsWith(':ro'))).toBe(true);
    expect(c.NetworkingConfig?.EndpointsConfig?.['tlab-smb-0000-lan']?.IPAMConfig?.IPv4Address).toBe(cp1.ip);
    expect(c.Labels?.['tlab.id']).toBe('smb-0000');
  });
});
