/**
 * The docker provider's pure parts: Docker addressing (gateway off the router's `.1`, dynamic range
 * clear of every lab address), the exact ContainerCreateOptions of the Talos containers against
 * talosctl's docker provisioner (v1.11.6 node.go), the appliance containers, the Talos commands,
 * the per-strategy apply commands, the drill mapping, and `plan()` writing everything without
 * touching Docker. Nothing here needs Docker, root or network.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { loadLab, REPO_ROOT } from '../../src/model/index.js';
import type { Lab, Topology } from '../../src/model/types.js';
import type { RenderedFile } from '../../src/strategies/types.js';
import { PrerequisiteError } from '../../src/util/errors.js';
import { talosStrategyFiles as renderStrategyFiles } from '../../src/providers/kinds/talos/files.js';
import { toYamlDocs } from '../../src/providers/kinds/talos/machine-config.js';
import {
  TALOS_TMPFS,
  TALOS_VOLUMES,
  bootstrapCommands,
  buildDockerPlan,
  dockerCheck,
  dockerImages,
  dockerPaths,
  dockerPrimitive,
  dockerProvider,
  dockerSupports,
  hostModulesNeeded,
  loadedModules,
  nodeRoutePatchDocs,
  talosGenCommands,
  withUserdata,
} from '../../src/providers/runtimes/docker/talos.js';
import { allHosts, dockerCliEquivalent, dockerIpam } from '../../src/providers/runtimes/docker/network.js';
import { garpIgnoreNft, partitionNft } from '../../src/providers/runtimes/docker/faults.js';
import { APPLIANCE_IMAGE_PLACEHOLDER } from '../../src/providers/runtimes/docker/hosts.js';
import { deliveredByTalos, holdersFromAddressYaml, strategyApplyCommands, strategyUnapplyCommands } from '../../src/providers/kinds/talos/cluster.js';
import { useTempDirs } from '../helpers/tmp.js';

const tmp = useTempDirs();
const labFiles = [join(REPO_ROOT, 'labs'), join(REPO_ROOT, 'test', 'fixtures', 'labs')].flatMap((d) => readdirSync(d).filter((f) => f.endsWith('.yaml')).map((f) => join(d, f)));
const labs: Lab[] = labFiles.map((f) => loadLab(f));
const lab = (n: string) => labs.find((l) => l.name === n)!;
const paths = dockerPaths('/st/docker', '/st');
const plan = (l: Lab) => buildDockerPlan(l, { prefix: `tlab-${l.name}-beef`, paths, env: {} });
const ip2n = (ip: string) => ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
const inCidr = (ip: string, cidr: string) => {
  const [b, len] = cidr.split('/');
  const size = 2 ** (32 - Number(len));
  return ip2n(ip) >= ip2n(b!) && ip2n(ip) < ip2n(b!) + size;
};

describe('Docker addressing', () => {
  it('moves Docker’s gateway off the lab router and keeps its dynamic range clear of every lab address', () => {
    for (const l of labs) {
      const t = l.topology;
      for (const s of t.segments) {
        const { gateway, ipRange } = dockerIpam(t, s);
        const [rb, rl] = ipRange.split('/');
        const size = 2 ** (32 - Number(rl));
        const range = Array.from({ length: size }, (_, i) => ip2n(rb!) + i);
        const used = allHosts(t).flatMap((h) => h.interfaces.filter((i) => i.segment === s.name).map((i) => i.ip));
        const forbidden = [...used, t.vip, ...t.pool.addresses].map(ip2n);
        expect(inCidr(gateway, s.cidr), `${l.name}/${s.name} gateway`).toBe(true);
        expect(forbidden, `${l.name}/${s.name} gateway ${gateway}`).not.toContain(ip2n(gateway));
        expect(s.gateway ? gateway !== s.gateway.ip : true).toBe(true);
        expect(inCidr(rb!, s.cidr) && inCidr(`${range.at(-1)! >>> 24}.${(range.at(-1)! >>> 16) & 255}.${(range.at(-1)! >>> 8) & 255}.${range.at(-1)! & 255}`, s.cidr)).toBe(true);
        for (const n of range) {
          expect(forbidden, `${l.name}/${s.name} range ${ipRange}`).not.toContain(n);
          expect(n).not.toBe(ip2n(gateway));
        }
        const { base: nb } = { base: ip2n(s.cidr.split('/')[0]!) };
        expect(range).not.toContain(nb); // network address
        expect(range).not.toContain(nb + 2 ** (32 - s.prefixLen) - 1); // broadcast
      }
    }
  });

  it('fails with the segment’s name when no address is left for Docker', () => {
    const t = lab('smb').topology;
    const tiny: Topology = { ...t, segments: t.segments.map((s) => (s.name === 'uplink' ? { ...s, cidr: '10.32.100.8/30', prefixLen: 30 } : s)), clients: t.clients.map((c) => ({ ...c, interfaces: [{ ...c.interfaces[0]!, ip: '10.32.100.10' }] })), routers: t.routers.map((r) => ({ ...r, interfaces: r.interfaces.map((i) => (i.segment === 'uplink' ? { ...i, ip: '10.32.100.9' } : i)) })) };
    expect(() => dockerIpam(tiny, tiny.segments.find((s) => s.name === 'uplink')!)).toThrow(/uplink.*no free address/);
  });
});

describe('the Talos containers (as talosctl’s docker provisioner creates them)', () => {
  const smb = lab('smb');
  const p = plan(smb);
  const talos = p.containers.filter((c) => c.kind === 'talos');

  it('one container per node, named with the lab prefix, hostname = node name, fixed address on its LAN network', () => {
    expect(talos.map((c) => c.host)).toEqual(smb.topology.nodes.map((n) => n.name));
    for (const c of talos) {
      const n = smb.topology.nodes.find((x) => x.name === c.host)!;
      expect(c.name).toBe(`tlab-smb-beef-${n.name}`);
      expect(c.options.name).toBe(c.name);
      expect(c.options.Hostname).toBe(n.name);
      expect(c.options.HostConfig!.NetworkMode).toBe('tlab-smb-beef-lan');
      expect(c.options.NetworkingConfig!.EndpointsConfig).toEqual({ 'tlab-smb-beef-lan': { IPAMConfig: { IPv4Address: n.ip } } });
    }
  });

  it('env PLATFORM=container and USERDATA, privileged, seccomp unconfined, read-only root, the tmpfs and volumes of node.go', () => {
    for (const c of talos) {
      const o = c.options;
      expect(o.Image).toBe('ghcr.io/siderolabs/talos:v1.11.6');
      expect(o.Env).toContain('PLATFORM=container');
      expect(o.Env!.filter((e) => e.startsWith('USERDATA='))).toHaveLength(1);
      expect(o.HostConfig!.Privileged).toBe(true);
      expect(o.HostConfig!.SecurityOpt).toEqual(['seccomp:unconfined']);
      expect(o.HostConfig!.ReadonlyRootfs).toBe(true);
      // node.go sets it unless IPv6 is disabled (talosctl's default keeps it)
      expect(o.HostConfig!.Sysctls).toEqual({ 'net.ipv6.conf.all.disable_ipv6': '0' });
      expect(o.HostConfig!.NanoCpus).toBe(2e9);
      expect(o.HostConfig!.Memory).toBe(2048 * 1024 * 1024);
      expect(o.HostConfig!.RestartPolicy).toBeUndefined(); // as talosctl: a container that reboots stays stopped
      const mounts = o.HostConfig!.Mounts!;
      expect(mounts.filter((m) => m.Type === 'tmpfs').map((m) => m.Target)).toEqual(['/run', '/system', '/tmp']);
      expect(mounts.filter((m) => m.Type === 'volume').map((m) => m.Target)).toEqual(['/var', '/system/state', '/etc/cni', '/etc/kubernetes', '/usr/libexec/kubernetes', '/opt']);
      expect(mounts.every((m) => m.Source === '')).toBe(true); // anonymous volumes, removed with the container
      expect([...TALOS_TMPFS, ...TALOS_VOLUMES]).toHaveLength(9);
    }
  });

  it('labels talosctl uses plus the lab’s own id', () => {
    for (const c of talos) {
      const n = smb.topology.nodes.find((x) => x.name === c.host)!;
      expect(c.options.Labels).toMatchObject({ 'talos.owned': 'true', 'talos.cluster.name': 'tlab-smb-beef', 'talos.type': n.role, 'tlab.id': 'smb-beef' });
    }
    for (const c of p.containers) expect(c.options.Labels!['tlab.id']).toBe('smb-beef');
    for (const n of p.networks) expect(n.options.Labels!['tlab.id']).toBe('smb-beef');
  });

  it('USERDATA is filled in at up with the base64 of the generated machine config', () => {
    const c = talos[0]!;
    expect(c.options.Env!.find((e) => e.startsWith('USERDATA='))).toBe(`USERDATA=@@base64:talos/nodes/${p.talos.nodeGroup[c.host]}.yaml@@`);
    const filled = withUserdata(c.options, 'version: v1alpha1\nmachine: {}\n');
    const b64 = filled.Env!.find((e) => e.startsWith('USERDATA='))!.slice('USERDATA='.length);
    expect(Buffer.from(b64, 'base64').toString('utf8')).toBe('version: v1alpha1\nmachine: {}\n');
    expect(filled.Env).toContain('PLATFORM=container');
    expect(c.options.Env!.find((e) => e.startsWith('USERDATA='))).toContain('@@'); // the plan itself is unchanged
  });

  it('the images are pinned by version and overridable', () => {
    const t = smb.topology;
    expect(dockerImages(t, {}).talos).toBe('ghcr.io/siderolabs/talos:v1.11.6');
    expect(dockerImages(t, { TLAB_TALOS_IMAGE: 'mirror/talos:v1.11.6' }).talos).toBe('mirror/talos:v1.11.6');
    // the appliance's tag is its content hash, known once ensured at up (pinned Debian packages, ./appliance.ts)
    expect(dockerImages(t, {})).toMatchObject({ appliance: APPLIANCE_IMAGE_PLACEHOLDER, applianceBuilt: true });
    expect(dockerImages(t, { TLAB_APPLIANCE_IMAGE: 'x/appliance:1' })).toMatchObject({ appliance: 'x/appliance:1', applianceBuilt: false });
  });
});

describe('the lab’s networks and appliance containers', () => {
  it('one network per segment with a fixed subnet; none --internal (moby drops routed traffic there under br_netfilter); only LANs have NAT', () => {
    for (const l of labs) {
      const p = plan(l);
      expect(p.networks.map((n) => n.segment)).toEqual(l.topology.segments.map((s) => s.name));
      for (const n of p.networks) {
        const seg = l.topology.segments.find((s) => s.name === n.segment)!;
        expect(n.options.IPAM!.Config).toEqual([{ Subnet: seg.cidr, Gateway: n.gateway, IPRange: n.ipRange }]);
        // an internal network gets `-i br ! -d subnet -j DROP`: the client → router → VIP frames on the uplink bridge
        expect(n.options.Internal, `${l.name}/${seg.name}`).toBe(false);
        expect(n.options.Options!['com.docker.network.bridge.enable_ip_masquerade']).toBe(seg.kind === 'lan' ? undefined : 'false');
        expect(dockerCliEquivalent(n)).not.toContain('--internal');
        expect(n.name.startsWith(`tlab-${l.name}-beef-`)).toBe(true);
      }
    }
  });

  it('every host is a container; multi-homed hosts are connected to their other networks with their fixed addresses', () => {
    for (const l of labs) {
      const p = plan(l);
      expect(p.containers.map((c) => c.host).sort()).toEqual(allHosts(l.topology).map((h) => h.name).sort());
      for (const c of p.containers) {
        const h = allHosts(l.topology).find((x) => x.name === c.host)!;
        expect(c.connect.map((x) => [x.network, x.ip])).toEqual(h.interfaces.slice(1).map((i) => [`tlab-${l.name}-beef-${i.segment}`, i.ip]));
      }
    }
  });

  it('routers forward with L4 multipath hashing, run FRR only when they speak BGP, and get the topology’s ARP timers', () => {
    for (const l of labs) {
      for (const c of plan(l).containers.filter((x) => x.kind === 'router')) {
        const r = l.topology.routers.find((x) => x.name === c.host)!;
        const script = c.options.Cmd!.join(' ');
        expect(c.options.HostConfig!.Sysctls).toEqual({ 'net.ipv4.ip_forward': '1', 'net.ipv4.fib_multipath_hash_policy': '1' });
        expect(script.includes('frrinit.sh start')).toBe(r.bgp !== false);
        expect(Boolean(c.options.HostConfig!.Binds?.some((b) => b.endsWith(':/etc/frr/frr.conf')))).toBe(r.bgp !== false);
        expect(script).toContain(`echo ${l.topology.timers.arp.baseReachableS * 1000} > $d/base_reachable_time_ms`);
      }
    }
  });

  it('clients route through their router and see this checkout and the lab state at the same paths as the host', () => {
    const smb = lab('smb');
    const c = plan(smb).containers.find((x) => x.kind === 'client')!;
    expect(c.options.Cmd!.join(' ')).toContain(`ip route replace default via ${smb.topology.clients[0]!.gateway}`);
    expect(c.options.HostConfig!.Binds).toEqual([`${REPO_ROOT}:${REPO_ROOT}:ro`, '/st:/st']);
  });

  it('Talos nodes reach the other segments through their LAN router (Docker keeps the default route)', () => {
    const ent = lab('enterprise');
    const w = ent.topology.nodes.find((n) => n.rack === 'rack2')!;
    const legacy = nodeRoutePatchDocs(ent.topology, w) as any[];
    const routes = legacy[0].machine.network.interfaces[0].routes as { network: string; gateway: string }[];
    expect(routes.map((r) => r.network).sort()).toEqual(ent.topology.segments.filter((s) => s.name !== 'rack2').map((s) => s.cidr).sort());
    expect(new Set(routes.map((r) => r.gateway))).toEqual(new Set([w.gateway]));
    const v12 = nodeRoutePatchDocs({ ...ent.topology, talos: { ...ent.topology.talos, version: 'v1.12.0' } }, w) as any[];
    expect(v12[0]).toMatchObject({ apiVersion: 'v1alpha1', kind: 'LinkConfig', name: 'eth0' });
    expect(v12[0].routes[0]).toHaveProperty('destination');
    // one config per role and LAN
    expect(Object.keys(plan(ent).talos.nodePatches).sort()).toEqual(['controlplane-rack1', 'worker-rack1', 'worker-rack2', 'worker-rack3']);
  });
});

describe('commands', () => {
  it('talosctl gen config with the cluster-wide patches by scope; talosctl endpoints are node IPs, never the VIP', () => {
    const smb = lab('smb');
    const p = plan(smb);
    const cmds = talosGenCommands(p, smb, paths, smb.strategies[0]!);
    const gen = cmds.find((c) => c[1] === 'gen' && c[2] === 'config')!;
    expect(gen.slice(0, 5)).toEqual(['talosctl', 'gen', 'config', 'tlab-smb-beef', 'https://10.32.0.10:6443']);
    expect(gen).toContain('--with-secrets');
    const pairs = gen.flatMap((a, i) => (a.startsWith('--config-patch') ? [[a, gen[i + 1]!]] : []));
    expect(pairs).toContainEqual(['--config-patch', '@/st/docker/talos/patches/kubeprism.patch.yaml']);
    // the roles' own Talos patches (the native VIP) are applied live at apply, not baked into gen config
    expect(pairs.some(([, f]) => f!.includes('native-vip'))).toBe(false);
    expect(pairs).toContainEqual(['--config-patch', '@/st/docker/talos/patches/container-mode.patch.yaml']);
    const endpoint = cmds.find((c) => c.includes('endpoint'))!;
    expect(endpoint.slice(-3)).toEqual(['10.32.0.11', '10.32.0.12', '10.32.0.13']);
    expect(endpoint).not.toContain(smb.topology.vip);
  });

  it('a single-node cluster gets the label removal on its control-plane config only', () => {
    const mc = lab('minecraft');
    const gen = talosGenCommands(plan(mc), mc, paths, mc.strategies[0]!).find((c) => c[2] === 'config')!;
    const i = gen.indexOf('@/st/docker/talos/patches/remove-exclude-lb-label.patch.yaml');
    expect(gen[i - 1]).toBe('--config-patch-control-plane');
  });

  it('apply: strategy-specific Talos patches live, MetalLB installed, manifests applied; unapply takes the VIP away after talos-vip', () => {
    const smb = lab('smb');
    const tv = smb.strategies.find((s) => s.cp === 'talos-vip')!;
    const kv = smb.strategies.find((s) => s.id === 'kube-vip-arp+metallb-l2')!;
    const files = renderStrategyFiles(smb.topology, kv);
    const manifest: RenderedFile = { path: 'metallb/l2.yaml', kind: 'k8s-manifest', content: 'apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\n' };
    const cmds = strategyApplyCommands(smb, kv, paths, [...files, manifest], '/r/x').map((c) => c.join(' '));
    const undo = strategyUnapplyCommands(smb, tv, paths, renderStrategyFiles(smb.topology, tv), '/r/tv').map((c) => c.join(' '));
    expect(undo.some((c) => c.includes('talos/unapply/native-vip.patch.yaml'))).toBe(true);
    expect(cmds.some((c) => c.includes('native-vip'))).toBe(false);
    expect(strategyApplyCommands(smb, tv, paths, renderStrategyFiles(smb.topology, tv), '/r/tv').some((c) => c.join(' ').includes('talos/native-vip.patch.yaml'))).toBe(true);
    expect(cmds.some((c) => c.includes('cluster-endpoint.patch.yaml'))).toBe(true);
    expect(cmds.some((c) => c.includes('kubeprism.patch.yaml'))).toBe(false); // already in gen config
    expect(cmds.some((c) => c.includes('metallb-frr-k8s.yaml'))).toBe(true);
    expect(cmds.some((c) => c.includes('pod-security.kubernetes.io/enforce=privileged'))).toBe(true);
    expect(cmds.find((c) => c.includes('/r/x/metallb/l2.yaml'))).toContain('apply --server-side --force-conflicts -f /r/x/metallb/l2.yaml');
  });

  it('waits for EVERY node by IP (talosctl health), not `kubectl wait nodes --all` (passes on the nodes registered so far)', () => {
    const smb = lab('smb');
    const cmds = bootstrapCommands(smb, paths);
    expect(cmds.map((c) => c.join(' ')).join('\n')).not.toMatch(/wait .*nodes --all/);
    const health = cmds.find((c) => c.includes('health'))!;
    const all = [health[health.indexOf('--control-plane-nodes') + 1], health[health.indexOf('--worker-nodes') + 1]].join(',').split(',');
    expect(all.sort()).toEqual(smb.topology.nodes.map((n) => n.ip).sort());
    expect(cmds.filter((c) => c.includes('bootstrap'))).toHaveLength(1);
  });

  it('apply: Cilium installed with the chart Talos documents when Cilium BGP is the service mechanism', () => {
    const ent = lab('enterprise');
    const c = ent.strategies.find((s) => s.svc === 'cilium-bgp')!;
    const helm = strategyApplyCommands(ent, c, paths, renderStrategyFiles(ent.topology, c), '/r').find((x) => x[0] === 'helm')!;
    expect(helm).toContain('bgpControlPlane.enabled=true');
    expect(helm).toContain('cgroup.autoMount.enabled=false');
    expect(helm.join(' ')).not.toMatch(/SYS_MODULE/);
  });

  it('a static pod that Talos already runs (machine.pods) is not kubectl-applied; one that needs a kubeconfig file is refused (machine.files reboots)', () => {
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'kube-vip', namespace: 'kube-system' }, spec: { containers: [] } };
    const patch: RenderedFile = { path: 'talos/kv.patch.yaml', kind: 'talos-patch', content: toYamlDocs([{ machine: { pods: [pod] } }]), hosts: ['cp1'] };
    const manifest: RenderedFile = { path: 'kube-vip/pod.yaml', kind: 'k8s-manifest', content: toYamlDocs([pod]) };
    const other: RenderedFile = { path: 'kube-vip/ds.yaml', kind: 'k8s-manifest', content: toYamlDocs([{ apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'x' } }]) };
    expect(deliveredByTalos(manifest, [patch, manifest, other])).toBe(true);
    expect(deliveredByTalos(other, [patch, manifest, other])).toBe(false);
    expect(deliveredByTalos(manifest, [manifest])).toBe(false);
    const smb = lab('smb');
    const cmds = strategyApplyCommands(smb, smb.strategies[1]!, paths, [patch, manifest, other], '/r').map((c) => c.join(' '));
    expect(cmds.some((c) => c.includes('kube-vip/pod.yaml'))).toBe(false);
    expect(cmds.some((c) => c.includes('kube-vip/ds.yaml'))).toBe(true);
    expect(cmds.some((c) => c.includes('static-pod-kubeconfig'))).toBe(false);
    const withKc = { ...pod, spec: { volumes: [{ name: 'k', hostPath: { path: '/var/local/kube-vip/kubeconfig', type: 'File' } }] } };
    const bad: RenderedFile = { ...patch, content: toYamlDocs([{ machine: { pods: [withKc] } }]) };
    expect(() => strategyApplyCommands(smb, smb.strategies[1]!, paths, [bad], '/r')).toThrow(/machine\.files/);
  });
});

describe('drills on docker', () => {
  it('maps each primitive to a Docker operation, and says why leave/join need MetalLB BGP', () => {
    const smb = lab('smb');
    const bgp = smb.strategies.find((s) => s.svc === 'metallb-bgp')!;
    const l2 = smb.strategies.find((s) => s.svc === 'metallb-l2')!;
    for (const p of ['shutdown', 'crash', 'freeze', 'partition', 'link-flap'] as const) expect(dockerPrimitive(p, l2)).toHaveProperty('how');
    expect(dockerPrimitive('freeze', l2)).toMatchObject({ how: expect.stringMatching(/docker pause/) });
    expect(dockerPrimitive('crash', l2)).toMatchObject({ how: expect.stringMatching(/KILL/) });
    expect(dockerPrimitive('leave', bgp)).toHaveProperty('how');
    expect(dockerPrimitive('leave', l2)).toMatchObject({ unsupported: expect.stringMatching(/exclude-from-external-load-balancers/) });
    expect(dockerProvider.supportsDrill('join', l2)).toMatchObject({ supported: false });
    expect(dockerProvider.supportsDrill('join', bgp)).toEqual({ supported: true });
  });

  it('partition drops the LAN link both ways, ARP too; the GARP filter names every address that moves', () => {
    const nft = partitionNft('eth0');
    expect(nft).toMatch(/table inet tlab_partition/);
    expect(nft).toMatch(/table arp tlab_partition/);
    expect(nft.match(/"eth0" drop/g)!.length).toBe(6);
    const t = lab('smb').topology;
    const g = garpIgnoreNft(t);
    for (const ip of [t.vip, ...t.pool.addresses]) expect(g).toContain(ip);
    expect(g).toContain('arp saddr ip @moving arp daddr ip @moving drop');
  });

  it('reads the address holders from talosctl’s AddressStatus output', () => {
    const yaml = ['node: 10.32.0.12', 'metadata: {id: eth0/10.32.0.10/32}', 'spec: {address: 10.32.0.10/32, linkName: eth0}', '---', 'node: 10.32.0.11', 'spec: {address: 10.32.0.11/24, linkName: eth0}'].join('\n');
    expect(holdersFromAddressYaml(yaml, '10.32.0.10', [{ name: 'cp1', ip: '10.32.0.11' }, { name: 'cp2', ip: '10.32.0.12' }])).toEqual(['cp2']);
    expect(holdersFromAddressYaml('', '10.32.0.10', [{ name: 'cp1', ip: '10.32.0.11' }])).toEqual([]);
  });

  it('names the kernel modules a lab’s strategies need on the host (kube-vip lb_enable: IPVS), and reads which are loaded', async () => {
    const { kubeVipReal } = await import('../../src/strategies/kube-vip/manifests.js');
    const smb = lab('smb');
    const kv = smb.strategies.find((s) => s.options.kubeVipLbEnable === true)!;
    expect(kubeVipReal.hostModules!(kv)).toEqual(['ip_vs', 'ip_vs_rr']);
    expect(kubeVipReal.hostModules!({ ...kv, options: {} })).toEqual([]);
    // the roles are asked, never an id: a lab whose roles name no module needs none
    expect(hostModulesNeeded({ ...smb, strategies: smb.strategies.filter((s) => s.cp === 'haproxy') })).toEqual([]);
    const proc = 'ip_vs_rr 16384 1 - Live 0x0\nip_vs 180224 3 ip_vs_rr, Live 0x0\nbr_netfilter 32768 0 - Live 0x0\n';
    expect(loadedModules(['ip_vs', 'ip_vs_rr', 'nf_conntrack'], proc)).toEqual(['ip_vs', 'ip_vs_rr']);
    expect(loadedModules(['ip_vs'], 'ip_vs_rr 16384 0 - Live 0x0\n')).toEqual([]);
  });

  it('says resilient ECMP is not reproduced by the docker router', () => {
    const res = lab('ci-smb-resilient');
    expect(res.topology.resilientEcmp.enabled).toBe(true);
    expect(dockerSupports(res.strategies[0]!, res)).toMatchObject({ supported: false, reason: expect.stringMatching(/resilient/) });
    const smb = lab('smb');
    for (const s of smb.strategies) expect(dockerSupports(s, smb)).toEqual({ supported: true });
  });
});

describe('plan() and check()', () => {
  it('writes plan.json, the exact create options, the patches and the Dockerfile — without Docker', async () => {
    const dir = tmp('tlx-docker-plan-');
    const before = process.env.DOCKER_HOST;
    process.env.DOCKER_HOST = 'tcp://127.0.0.1:9'; // would fail at once if anything tried to connect
    try {
      const smb = lab('smb');
      const steps = await dockerProvider.plan(smb, { prefix: 'tlab-smb-dryrun', renderDir: dir });
      const planJson = JSON.parse(readFileSync(join(dir, 'docker', 'plan.json'), 'utf8'));
      expect(planJson.provider).toBe('docker');
      expect(planJson.containers).toHaveLength(allHosts(smb.topology).length);
      for (const c of planJson.containers as { name: string; file: string }[]) {
        const o = JSON.parse(readFileSync(join(dir, 'docker', c.file), 'utf8'));
        expect(o.name).toBe(c.name);
      }
      expect(readFileSync(join(dir, 'docker', 'appliance', 'Dockerfile'), 'utf8')).toMatch(/frr=8\.4\.4/); // pinned packages
      expect(existsSync(join(dir, 'docker', 'routers', 'rtr.frr.conf'))).toBe(true);
      for (const f of readdirSync(join(dir, 'docker', 'talos', 'patches'))) {
        for (const d of parseAllDocuments(readFileSync(join(dir, 'docker', 'talos', 'patches', f), 'utf8'))) expect(d.errors).toEqual([]);
      }
      const cmds = steps.filter((s) => s.command).map((s) => s.command!);
      expect(cmds.some((c) => c.startsWith('docker network create'))).toBe(true);
      expect(cmds.some((c) => c.startsWith('talosctl gen config'))).toBe(true);
      expect(cmds.some((c) => c.includes(' bootstrap '))).toBe(true);
      expect(steps.some((s) => s.what.startsWith('apply haproxy+metallb-bgp'))).toBe(true);
    } finally {
      if (before === undefined) delete process.env.DOCKER_HOST;
      else process.env.DOCKER_HOST = before;
    }
  });

  it('check() stops with exit 3 naming what is missing and the exact fix when Docker does not answer', async () => {
    const before = process.env.DOCKER_HOST;
    process.env.DOCKER_HOST = `unix://${join(tmp('tlx-nodocker-'), 'docker.sock')}`; // no daemon there
    try {
      const err = await dockerCheck(lab('smb')).then(
        () => null,
        (e: unknown) => e,
      );
      if (process.platform !== 'linux') {
        expect(err).toBeInstanceOf(PrerequisiteError);
        return;
      }
      expect(err).toBeInstanceOf(PrerequisiteError);
      const e = err as PrerequisiteError;
      expect(e.exitCode).toBe(3);
      expect(e.what).toMatch(/Docker daemon not reachable/);
      expect(e.fix).toContain('sudo systemctl start docker');
      expect(e.fix).toContain('sudo dockerd &');
    } finally {
      if (before === undefined) delete process.env.DOCKER_HOST;
      else process.env.DOCKER_HOST = before;
    }
  });
});
