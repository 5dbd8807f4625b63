/**
 * docker provider — REAL Talos in containers, created through dockerode the way talosctl's docker
 * provisioner creates them (siderolabs/talos v1.11.6 pkg/provision/providers/docker/node.go and
 * network.go), with three differences that are the point of this provider:
 *
 *  1. several control planes (from Talos 1.12 `talosctl cluster create docker` makes exactly one);
 *  2. eth0 is NOT marked ignored. talosctl's docker provisioner adds
 *     `v1alpha1.WithNetworkInterfaceIgnore("eth0")` for configs of Talos ≤ 1.11
 *     (pkg/provision/providers/docker/docker.go GenOptions), and Talos' VIP controller skips ignored
 *     links, so a talosctl docker cluster never gets the native VIP. Nothing else in container mode
 *     disables the VIP (link/address/VIP controllers run; GARP is a raw socket, fine in a
 *     privileged container), so the native VIP runs here. Upstream never tests this combination:
 *     the nightly run is what proves it;
 *  3. the lab's own network around the cluster: one Docker bridge network per topology segment with
 *     fixed subnets, fixed container addresses, Docker's gateway moved off the router's `.1` and
 *     Docker's dynamic allocation confined to a small free block (`IPRange`) so it can never hand
 *     out the VIP or a pool address; the FRR router(s), the external HAProxy and the client(s) as
 *     containers of one local image built from Debian packages (`tlab-netbox`).
 *
 * `plan()` renders everything (networks, the exact ContainerCreateOptions, the talosctl/kubectl
 * commands) without touching Docker; `up()` performs it, recording every network and container
 * in the lab state BEFORE creating it, labelled `tlab.id`, and tears down on failure.
 *
 * Not verifiable on the offline CI machines (no images, no Docker engine): the pure builders are
 * unit-tested (test/unit/docker-plan.test.ts), the rendered Talos patches are schema-checked
 * (test/contract/talos-schema.test.ts); the rest is proven by the nightly docker run.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type Docker from 'dockerode';
import { parseAllDocuments } from 'yaml';
import type { Host, Lab, Node, Router, Segment, StrategyRef, Target, Topology } from '../../../model/types.js';
import type { Artifacts, DaemonSpec, RenderedFile } from '../../../strategies/types.js';
import { MECHANISMS } from '../../../strategies/registry.js';
import type { AgentEvent, AgentSpec, ComponentSpec } from '../../../emulation/agent/types.js';
import type { PlanStep, Primitive, Provider, RunningLab, Support, UpContext } from '../../types.js';
import type { LabState } from '../../../state/state.js';
import { stateRoot } from '../../../state/state.js';
import { REPO_ROOT } from '../../../model/load.js';
import { LabError, PrerequisiteError, ReadinessError } from '../../../util/errors.js';
import { now, quote, run, sleep, type RunResult } from '../../../util/proc.js';
import { readEvents } from '../../../emulation/agent/events.js';
import { STRATEGY_SPECIFIC_PATCHES, TALOS_PATCH, renderTalosFiles, routerFrrPath, talosStrategyFiles } from '../../kinds/talos/files.js';
import { patchScope, toYamlDocs, usesNetworkDocuments } from '../../kinds/talos/machine-config.js';
import { apiEndpoint, apiEndpointUrl, clusterCni, composeStrategy, renderStrategy } from '../../../strategies/compose.js';
import type { RealContext, Role, Strategy } from '../../../strategies/types.js';

// ---------------------------------------------------------------------------------------------
// what talosctl's docker provisioner does (siderolabs/talos v1.11.6, node.go / network.go)

/** tmpfs mounts of a Talos container (node.go: `for _, path := range []string{"/run", "/system", "/tmp"}`) */
export const TALOS_TMPFS = ['/run', '/system', '/tmp'] as const;
/**
 * Anonymous volumes (node.go: EphemeralMountPoint, StateMountPoint, then constants.Overlays):
 * /var, /system/state, /etc/cni, /etc/kubernetes, /usr/libexec/kubernetes, /opt.
 */
export const TALOS_VOLUMES = ['/var', '/system/state', '/etc/cni', '/etc/kubernetes', '/usr/libexec/kubernetes', '/opt'] as const;
/** talosctl cluster create defaults `--cpus 2.0 --memory 2048` (also for workers); node.go sets TALOSSKU from them */
export const TALOS_NODE_CPUS = 2;
export const TALOS_NODE_MEMORY_MIB = 2048;
/** the Docker network MTU talosctl sets (`--mtu`, default 1500; network.go `com.docker.network.driver.mtu`) */
export const DOCKER_MTU = 1500;

// ---------------------------------------------------------------------------------------------
// images

/**
 * The lab's own appliance image for routers, the load balancer and clients: Debian's frr 8.4 and
 * haproxy 2.6 (the same packages the sim uses), nftables and iproute2 for drills, and Node 20 for
 * the traffic agent (Debian bookworm's own nodejs is 18, below the project's engines). Built
 * locally by `up()` when absent (needs the Debian mirrors once); override with TLAB_NETBOX_IMAGE.
 */
export function netboxDockerfile(base: string): string {
  return [
    `FROM ${base}`,
    'RUN apt-get update \\',
    ' && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\',
    '      frr haproxy iproute2 nftables iputils-arping iputils-ping curl ca-certificates procps tcpdump \\',
    ' && rm -rf /var/lib/apt/lists/*',
    '',
  ].join('\n');
}

export interface DockerImages {
  talos: string;
  netbox: string;
  netboxBase: string;
  /** true when `netbox` is the locally built image (built by up() when absent) */
  netboxBuilt: boolean;
}

export function dockerImages(t: Topology, env: NodeJS.ProcessEnv = process.env): DockerImages {
  const netboxBase = env.TLAB_NETBOX_BASE || 'node:20-bookworm-slim';
  const tag = createHash('sha256').update(netboxDockerfile(netboxBase)).digest('hex').slice(0, 12);
  return {
    // the image talosctl uses for the version (`--image`, default ghcr.io/siderolabs/talos:<version>)
    talos: env.TLAB_TALOS_IMAGE || `ghcr.io/siderolabs/talos:${t.talos.version}`,
    netbox: env.TLAB_NETBOX_IMAGE || `tlab-netbox:bookworm-${tag}`,
    netboxBase,
    netboxBuilt: !env.TLAB_NETBOX_IMAGE,
  };
}

// ---------------------------------------------------------------------------------------------
// addresses

const ip2n = (ip: string) => ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
const n2ip = (n: number) => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
function cidrRange(cidr: string): { base: number; size: number } {
  const [ip, len] = cidr.split('/');
  const size = 2 ** (32 - Number(len));
  return { base: Math.floor(ip2n(ip!) / size) * size, size };
}
const inCidr = (ip: string, cidr: string) => {
  const r = cidrRange(cidr);
  const n = ip2n(ip);
  return n >= r.base && n < r.base + r.size;
};

export function allHosts(t: Topology): Host[] {
  return [...t.routers, ...t.nodes, ...t.clients, ...(t.loadBalancer ? [t.loadBalancer] : [])];
}

/**
 * Docker's side of one segment: its gateway (the host's bridge address — Docker would take `.1`,
 * which is the lab router's) and the block Docker may allocate dynamically (`IPRange`). Both avoid
 * every host address, the network and broadcast addresses, the VIP and the Service pool, so
 * nothing Docker does can collide with an address the lab moves around.
 */
export function dockerIpam(t: Topology, seg: Segment): { gateway: string; ipRange: string } {
  const { base, size } = cidrRange(seg.cidr);
  const taken = new Set<number>();
  for (const h of allHosts(t)) for (const i of h.interfaces) if (i.segment === seg.name) taken.add(ip2n(i.ip));
  if (inCidr(t.vip, seg.cidr)) taken.add(ip2n(t.vip));
  const pool = cidrRange(t.pool.cidr);
  const reserved = (n: number) => n === base || n === base + size - 1 || taken.has(n) || (n >= pool.base && n < pool.base + pool.size);
  let gw = -1;
  for (let n = base + size - 2; n > base; n--) {
    if (!reserved(n)) {
      gw = n;
      break;
    }
  }
  if (gw < 0) throw new LabError(`segment ${seg.name} (${seg.cidr}): no free address for Docker's bridge gateway`);
  for (const bs of [8, 4, 2, 1]) {
    for (let start = base + size - bs; start >= base; start -= bs) {
      let ok = true;
      for (let n = start; n < start + bs && ok; n++) ok = !reserved(n) && n !== gw;
      if (ok) return { gateway: n2ip(gw), ipRange: `${n2ip(start)}/${32 - Math.log2(bs)}` };
    }
  }
  throw new LabError(`segment ${seg.name} (${seg.cidr}): no free address block for Docker's dynamic allocation (IPRange)`);
}

// ---------------------------------------------------------------------------------------------
// names and labels

export function containerName(prefix: string, host: string): string {
  return `${prefix}-${host}`;
}
export function networkName(prefix: string, segment: string): string {
  return `${prefix}-${segment}`;
}
/** `tlab-smb-3f2a` → `smb-3f2a` (the lab id; src/orchestrator/ids.ts) */
export function idOfPrefix(prefix: string): string {
  return prefix.replace(/^tlab-/, '');
}

const USERDATA_PLACEHOLDER = (path: string) => `USERDATA=@@base64:${path}@@`;
/** Put the base64 machine config into a planned Talos container's options (the one value known only at `up`). */
export function withUserdata(o: Docker.ContainerCreateOptions, machineConfig: string): Docker.ContainerCreateOptions {
  const b64 = Buffer.from(machineConfig, 'utf8').toString('base64');
  return { ...o, Env: (o.Env ?? []).map((e) => (e.startsWith('USERDATA=') ? `USERDATA=${b64}` : e)) };
}

// ---------------------------------------------------------------------------------------------
// per-node docker patch: routes to the lab's other segments through the lab router

/**
 * A Talos container keeps Docker's default route (through the host's bridge: Talos pulls its
 * images through it). The lab's other segments (uplink with the clients, fabric, other racks) are
 * reached through the node's LAN router, as on real gear, with more specific routes:
 * Talos ≤ 1.11 `machine.network.interfaces[].routes`, ≥ 1.12 a `LinkConfig` document (the legacy
 * interfaces are gone from the 1.12 schema).
 */
export function nodeRoutePatchDocs(t: Topology, n: Node): Record<string, unknown>[] {
  const link = n.interfaces[0]!.ifname;
  const gw = n.gateway;
  const dests = t.segments.filter((s) => s.name !== n.rack).map((s) => s.cidr);
  if (!gw || !dests.length) return [];
  if (usesNetworkDocuments(t.talos.version)) {
    return [{ apiVersion: 'v1alpha1', kind: 'LinkConfig', name: link, routes: dests.map((d) => ({ destination: d, gateway: gw })) }];
  }
  return [{ machine: { network: { interfaces: [{ interface: link, routes: dests.map((d) => ({ network: d, gateway: gw })) }] } } }];
}

// ---------------------------------------------------------------------------------------------
// the plan (pure)

export interface DockerNetworkPlan {
  segment: string;
  name: string;
  gateway: string;
  ipRange: string;
  internal: boolean;
  options: Docker.NetworkCreateOptions;
}

export interface DockerContainerPlan {
  host: string;
  name: string;
  kind: 'talos' | 'router' | 'lb' | 'client';
  /** the exact dockerode create options (Talos containers: USERDATA filled in at up()) */
  options: Docker.ContainerCreateOptions;
  /** further networks, connected after create and before start, with fixed addresses */
  connect: { network: string; ip: string; ifname: string }[];
}

export interface TalosPatchPlan {
  /** file name under talos/patches/ */
  file: string;
  scope: 'all' | 'controlplane' | 'worker';
  content: string;
}

export interface DockerPlan {
  labId: string;
  prefix: string;
  clusterName: string;
  talosVersion: string;
  kubernetesVersion: string;
  images: DockerImages;
  /** the strategy the cluster is generated for (later strategies patch endpoint/VIP at apply) */
  initialStrategy: string;
  cni: 'flannel' | 'cilium';
  networks: DockerNetworkPlan[];
  containers: DockerContainerPlan[];
  talos: {
    /** cluster-wide patches given to `talosctl gen config` */
    patches: TalosPatchPlan[];
    /** docker patch (routes) per node group `<role>-<rack>` → YAML ('' when none) */
    nodePatches: Record<string, string>;
    /** node → its group (its machine config is talos/nodes/<group>.yaml) */
    nodeGroup: Record<string, string>;
  };
  /** router → its first frr.conf (bind-mounted at /etc/frr/frr.conf, rewritten in place by apply) */
  routers: Record<string, string>;
  notes: string[];
}

export interface DockerPaths {
  /** where talos/ (configs, patches) and the other generated files live */
  base: string;
  /** lab state directory (bind-mounted into clients and the LB at the same path) */
  stateDir: string;
}

export function dockerPaths(base: string, stateDir: string) {
  const talos = join(base, 'talos');
  return {
    base,
    stateDir,
    talos,
    secrets: join(talos, 'secrets.yaml'),
    talosconfig: join(talos, 'talosconfig'),
    patches: join(talos, 'patches'),
    nodes: join(talos, 'nodes'),
    kubeconfig: join(base, 'kubeconfig'),
    routerConf: (r: string) => join(base, 'routers', `${r}.frr.conf`),
    haproxyCfg: join(base, 'lb', 'haproxy.cfg'),
    netboxDir: join(base, 'netbox'),
    agents: join(stateDir, 'agents'),
    events: join(stateDir, 'events'),
    caFile: join(stateDir, 'pki', 'ca.crt'),
  };
}
export type DockerPathSet = ReturnType<typeof dockerPaths>;

const neighScript = (t: Topology) => {
  // the neighbour (ARP) cache timers of the topology on every interface, as the sim sets them
  // (src/providers/runtimes/netns/network.ts; Linux defaults documented in src/model/timers.ts)
  const a = t.timers.arp;
  return [
    'for d in /proc/sys/net/ipv4/neigh/eth*; do',
    `  echo ${a.baseReachableS * 1000} > $d/base_reachable_time_ms; echo ${a.delayFirstProbeS} > $d/delay_first_probe_time;`,
    `  echo ${a.ucastSolicit} > $d/ucast_solicit; echo ${a.retransMs} > $d/retrans_time_ms; echo ${a.gcStaleS} > $d/gc_stale_time;`,
    'done',
  ].join('\n');
};

export function buildDockerPlan(lab: Lab, o: { prefix: string; paths: DockerPathSet; env?: NodeJS.ProcessEnv }): DockerPlan {
  const t = lab.topology;
  const labId = idOfPrefix(o.prefix);
  const clusterName = o.prefix;
  const images = dockerImages(t, o.env);
  const first = lab.strategies[0];
  if (!first) throw new LabError(`lab ${lab.name}: no strategies`);
  const notes: string[] = [];

  const networks: DockerNetworkPlan[] = t.segments.map((s) => {
    const { gateway, ipRange } = dockerIpam(t, s);
    // LANs reach the internet through Docker's NAT (Talos pulls kubelet/etcd/… images); the
    // uplink and fabric carry only lab traffic, so they are internal (no route out of the lab)
    const internal = s.kind !== 'lan';
    const name = networkName(o.prefix, s.name);
    return {
      segment: s.name,
      name,
      gateway,
      ipRange,
      internal,
      options: {
        Name: name,
        CheckDuplicate: true,
        Driver: 'bridge',
        Internal: internal,
        Attachable: true,
        EnableIPv6: false,
        IPAM: { Driver: 'default', Config: [{ Subnet: s.cidr, Gateway: gateway, IPRange: ipRange }] },
        Options: { 'com.docker.network.driver.mtu': String(DOCKER_MTU) },
        Labels: { 'talos.owned': 'true', 'talos.cluster.name': clusterName, 'tlab.id': labId, 'tlab.segment': s.name },
      },
    };
  });
  const netOf = (segment: string) => networkName(o.prefix, segment);

  // cluster-wide Talos patches of the first strategy (talosctl gen config); the roles' own Talos
  // patches are applied live at apply and taken back at unapply
  const firstStrategy = composeStrategy(first);
  const kindFiles = renderTalosFiles(t, firstStrategy);
  const files = kindFiles.filter((f) => f.kind === 'talos-patch');
  const patches: TalosPatchPlan[] = files.map((f) => ({
    file: basename(f.path),
    scope: patchScope(t, f),
    content: f.content,
  }));
  // nodes of one role on one LAN get the same config (talosctl gen config + the same routes)
  const nodePatches: Record<string, string> = {};
  const nodeGroup: Record<string, string> = {};
  for (const n of t.nodes) {
    const group = `${n.role}-${n.rack}`;
    nodeGroup[n.name] = group;
    const docs = nodeRoutePatchDocs(t, n);
    nodePatches[group] ??= docs.length ? toYamlDocs(docs, [`docker provider, ${n.role}s on ${n.rack}: the lab's other segments through ${n.gateway} (Docker keeps the default route)`]) : '';
  }

  const containers: DockerContainerPlan[] = [];
  for (const n of t.nodes) {
    const type = n.role === 'controlplane' ? 'controlplane' : 'worker';
    const net = netOf(n.interfaces[0]!.segment);
    const name = containerName(o.prefix, n.name);
    const mounts: Docker.MountSettings[] = [
      ...TALOS_TMPFS.map((target) => ({ Type: 'tmpfs' as const, Target: target, Source: '' })),
      ...TALOS_VOLUMES.map((target) => ({ Type: 'volume' as const, Target: target, Source: '' })),
    ];
    containers.push({
      host: n.name,
      name,
      kind: 'talos',
      connect: [],
      options: {
        name,
        Hostname: n.name,
        Image: images.talos,
        Env: ['PLATFORM=container', `TALOSSKU=${TALOS_NODE_CPUS}CPU-${TALOS_NODE_MEMORY_MIB}RAM`, USERDATA_PLACEHOLDER(`talos/nodes/${nodeGroup[n.name]}.yaml`)],
        Labels: { 'talos.owned': 'true', 'talos.cluster.name': clusterName, 'talos.type': type, 'tlab.id': labId, 'tlab.host': n.name },
        HostConfig: {
          Privileged: true,
          SecurityOpt: ['seccomp:unconfined'],
          ReadonlyRootfs: true,
          Mounts: mounts,
          NanoCpus: TALOS_NODE_CPUS * 1e9,
          Memory: TALOS_NODE_MEMORY_MIB * 1024 * 1024,
          NetworkMode: net,
        },
        NetworkingConfig: { EndpointsConfig: { [net]: { IPAMConfig: { IPv4Address: n.ip } } } },
      },
    });
  }

  const netbox = (h: Host, kind: 'router' | 'lb' | 'client', script: string[], extra: Partial<Docker.HostConfig> = {}, sysctls: Record<string, string> = {}): DockerContainerPlan => {
    const [firstIf, ...rest] = h.interfaces;
    const net = netOf(firstIf!.segment);
    const name = containerName(o.prefix, h.name);
    return {
      host: h.name,
      name,
      kind,
      connect: rest.map((i) => ({ network: netOf(i.segment), ip: i.ip, ifname: i.ifname })),
      options: {
        name,
        Hostname: h.name,
        Image: images.netbox,
        Cmd: ['/bin/sh', '-c', [...script, 'exec sleep infinity'].join('\n')],
        Labels: { 'tlab.id': labId, 'tlab.host': h.name, 'tlab.kind': kind },
        HostConfig: {
          // privileged: the drills change per-device neighbour sysctls and nftables at run time
          // (/proc/sys is read-only in an unprivileged container)
          Privileged: true,
          Init: true,
          NetworkMode: net,
          Sysctls: sysctls,
          ...extra,
        },
        NetworkingConfig: { EndpointsConfig: { [net]: { IPAMConfig: { IPv4Address: firstIf!.ip } } } },
      },
    };
  };
  const p = o.paths;
  for (const r of t.routers) {
    const script = ['set -e', neighScript(t)];
    if (r.gateway) script.push(`ip route replace default via ${r.gateway}`);
    if (r.bgp !== false) {
      script.push(
        "sed -i -e 's/^bgpd=no/bgpd=yes/' -e 's/^bfdd=no/bfdd=yes/' /etc/frr/daemons",
        '/usr/lib/frr/frrinit.sh start',
      );
    }
    containers.push(
      netbox(
        r,
        'router',
        script,
        r.bgp !== false ? { Binds: [`${p.routerConf(r.name)}:/etc/frr/frr.conf`] } : {},
        // forward, and hash multipath by L4 (one flow stays on one ECMP path) as the sim's routers
        { 'net.ipv4.ip_forward': '1', 'net.ipv4.fib_multipath_hash_policy': '1' },
      ),
    );
  }
  if (t.loadBalancer) {
    const lb = t.loadBalancer;
    containers.push(netbox(lb, 'lb', ['set -e', ...(lb.gateway ? [`ip route replace default via ${lb.gateway}`] : [])], { Binds: [`${p.stateDir}:${p.stateDir}`] }));
  }
  for (const c of t.clients) {
    containers.push(
      netbox(c, 'client', ['set -e', neighScript(t), ...(c.gateway ? [`ip route replace default via ${c.gateway}`] : [])], {
        // the traffic agent runs from this checkout; state (sockets, events, CA) at the same path as on the host
        Binds: [`${REPO_ROOT}:${REPO_ROOT}:ro`, `${p.stateDir}:${p.stateDir}`],
      }),
    );
  }

  notes.push(
    `Talos ${t.talos.version} from ${images.talos}, created like talosctl's docker provisioner (PLATFORM=container, USERDATA, privileged, seccomp unconfined, read-only root, tmpfs ${TALOS_TMPFS.join(' ')}, volumes ${TALOS_VOLUMES.join(' ')}), ${t.nodes.filter((n) => n.role === 'controlplane').length} control plane(s).`,
    'eth0 is not marked ignored (talosctl ≤ 1.11 does that for docker clusters, which keeps the native VIP from ever running there): the native VIP runs on these containers. Upstream does not test this combination; the nightly docker run proves it.',
    'From Talos 1.12, `talosctl cluster create docker` makes one control plane only; this provider creates the containers itself and keeps several.',
    `USERDATA is the base64 of talos/nodes/<role>-<lan>.yaml, generated at up by talosctl with fresh cluster secrets: the plan shows its file, not its value.`,
    'The docker provider needs Linux: the host reaches the containers on their bridge addresses (Docker Desktop hides them in its VM; Talos documents that VIPs do not work on Docker for Mac).',
  );
  return {
    labId,
    prefix: o.prefix,
    clusterName,
    talosVersion: t.talos.version,
    kubernetesVersion: t.talos.kubernetesVersion,
    images,
    initialStrategy: first.id,
    cni: clusterCni(firstStrategy),
    networks,
    containers,
    talos: { patches, nodePatches, nodeGroup },
    routers: Object.fromEntries(kindFiles.filter((f) => f.kind === 'frr').map((f) => [f.hosts![0]!, f.content])),
    notes,
  };
}

// ---------------------------------------------------------------------------------------------
// commands (exact argv; PlanStep.command is their shell quoting)

export function talosGenCommands(plan: DockerPlan, lab: Lab, p: DockerPathSet, ref: StrategyRef): string[][] {
  const t = lab.topology;
  const cps = t.nodes.filter((n) => n.role === 'controlplane');
  const gen = [
    'talosctl', 'gen', 'config', plan.clusterName, apiEndpointUrl(t, composeStrategy(ref).cp),
    '--with-secrets', p.secrets,
    '--talos-version', t.talos.version,
    '--kubernetes-version', t.talos.kubernetesVersion,
    '--with-docs=false', '--with-examples=false',
    ...plan.talos.patches.flatMap((x) => [{ all: '--config-patch', controlplane: '--config-patch-control-plane', worker: '--config-patch-worker' }[x.scope], `@${join(p.patches, x.file)}`]),
    '--output-types', 'controlplane,worker,talosconfig',
    '--output', p.talos, '--force',
  ];
  const perNode = Object.entries(plan.talos.nodePatches).map(([group, patch]) => {
    const base = join(p.talos, group.startsWith('controlplane-') ? 'controlplane.yaml' : 'worker.yaml');
    return patch
      ? ['talosctl', 'machineconfig', 'patch', base, '--patch', `@${join(p.nodes, `${group}.patch.yaml`)}`, '--output', join(p.nodes, `${group}.yaml`)]
      : ['cp', base, join(p.nodes, `${group}.yaml`)];
  });
  return [
    ['talosctl', 'gen', 'secrets', '--output-file', p.secrets, '--force'],
    gen,
    ...perNode,
    // pitfall 1: talosctl talks to the node IPs, never to the VIP
    ['talosctl', '--talosconfig', p.talosconfig, 'config', 'endpoint', ...cps.map((n) => n.ip)],
    ['talosctl', '--talosconfig', p.talosconfig, 'config', 'node', cps[0]!.ip],
  ];
}

export function bootstrapCommands(lab: Lab, p: DockerPathSet): string[][] {
  const cp1 = lab.topology.nodes.find((n) => n.role === 'controlplane')!;
  return [
    // etcd is bootstrapped once, through a node IP (the VIP only exists after etcd)
    ['talosctl', '--talosconfig', p.talosconfig, 'bootstrap', '--nodes', cp1.ip, '--endpoints', cp1.ip],
    ['talosctl', '--talosconfig', p.talosconfig, 'kubeconfig', p.kubeconfig, '--nodes', cp1.ip, '--endpoints', cp1.ip, '--force'],
    ['kubectl', '--kubeconfig', p.kubeconfig, '--server', `https://${cp1.ip}:${lab.topology.apiPort}`, 'wait', '--for=condition=Ready', 'nodes', '--all', '--timeout=15m'],
  ];
}

/** kubectl/helm of a role's real steps get the lab's kubeconfig and a control plane's address */
function realArgv(argv: string[], kubectl: string[], helm: string[]): string[] {
  if (argv[0] === 'kubectl') return [...kubectl, ...argv.slice(1)];
  if (argv[0] === 'helm') return [...helm, ...argv.slice(1)];
  return argv;
}

/** The strategy's two roles, once per family for what a family installs once (kube-vip for the API and Services). */
function realRoles(s: Strategy): Role[] {
  return s.cp.family === s.svc.family && s.cp.real === s.svc.real ? [s.cp] : [s.cp, s.svc];
}

/** What `apply(strategy)` runs, in order (also printed by `--dry-run` for every strategy). */
export function strategyApplyCommands(lab: Lab, ref: StrategyRef, p: DockerPathSet, files: RenderedFile[], dir: string): string[][] {
  const t = lab.topology;
  const s = composeStrategy(ref);
  const cps = t.nodes.filter((n) => n.role === 'controlplane').map((n) => n.ip);
  const all = t.nodes.map((n) => n.ip);
  const cp1 = cps[0]!;
  const kubectl = ['kubectl', '--kubeconfig', p.kubeconfig, '--server', `https://${cp1}:${t.apiPort}`];
  const helm = ['helm', '--kubeconfig', p.kubeconfig, '--kube-apiserver', `https://${cp1}:${t.apiPort}`];
  const cmds: string[][] = [];
  const kubeconfigs = staticPodKubeconfigPaths(files);
  if (kubeconfigs.length) {
    // written at apply from the cluster's admin kubeconfig (credentials stay in the lab state)
    cmds.push(['talosctl', '--talosconfig', p.talosconfig, 'patch', 'machineconfig', '--nodes', cps.join(','), '--patch', `@${join(p.base, 'static-pod-kubeconfig.patch.yaml')}`]);
  }
  const mine = new Set<string>(Object.values(TALOS_PATCH));
  for (const f of files.filter((x) => x.kind === 'talos-patch' && !x.path.includes('/unapply/'))) {
    // the cluster-wide patches went into gen config; strategy-specific and the roles' patches are applied live
    if (mine.has(f.path) && !STRATEGY_SPECIFIC_PATCHES.includes(f.path)) continue;
    const ips = (f.hosts ?? t.nodes.map((n) => n.name)).map((h) => t.nodes.find((n) => n.name === h)?.ip).filter(Boolean) as string[];
    cmds.push(['talosctl', '--talosconfig', p.talosconfig, 'patch', 'machineconfig', '--nodes', (ips.length ? ips : all).join(','), '--patch', `@${join(dir, f.path)}`]);
  }
  const ctx = realContext(t, ref, dir);
  for (const role of realRoles(s)) for (const step of role.real?.install?.(ctx) ?? []) cmds.push(realArgv(step.argv, kubectl, helm));
  for (const f of files.filter((x) => x.kind === 'k8s-manifest' && !deliveredByTalos(x, files))) cmds.push([...kubectl, 'apply', '--server-side', '--force-conflicts', '-f', join(dir, f.path)]);
  return cmds;
}

/** What `unapply(strategy)` runs: the roles' manifests deleted, their controllers removed, their Talos patches taken back. */
export function strategyUnapplyCommands(lab: Lab, ref: StrategyRef, p: DockerPathSet, files: RenderedFile[], dir: string): string[][] {
  const t = lab.topology;
  const s = composeStrategy(ref);
  const cp1 = t.nodes.find((n) => n.role === 'controlplane')!.ip;
  const kubectl = ['kubectl', '--kubeconfig', p.kubeconfig, '--server', `https://${cp1}:${t.apiPort}`];
  const helm = ['helm', '--kubeconfig', p.kubeconfig, '--kube-apiserver', `https://${cp1}:${t.apiPort}`];
  const cmds: string[][] = [];
  for (const f of files.filter((x) => x.kind === 'k8s-manifest' && !deliveredByTalos(x, files)).reverse()) {
    cmds.push([...kubectl, 'delete', '--ignore-not-found', '--wait=true', '--timeout=2m', '-f', join(dir, f.path)]);
  }
  const ctx = realContext(t, ref, dir);
  for (const role of realRoles(s)) for (const step of role.real?.uninstall?.(ctx) ?? []) cmds.push(realArgv(step.argv, kubectl, helm));
  for (const f of files.filter((x) => x.kind === 'talos-patch' && x.path.includes('/unapply/'))) {
    const ips = (f.hosts ?? t.nodes.map((n) => n.name)).map((h) => t.nodes.find((n) => n.name === h)?.ip).filter(Boolean) as string[];
    cmds.push(['talosctl', '--talosconfig', p.talosconfig, 'patch', 'machineconfig', '--nodes', ips.join(','), '--patch', `@${join(dir, f.path)}`]);
  }
  return cmds;
}

/** The context a role's real-cluster steps and holder queries see (kubectl runs through the first control plane). */
export function realContext(t: Topology, ref: StrategyRef, dir: string, kubectlRun?: (args: string[]) => Promise<{ stdout: string; exitCode: number }>): RealContext {
  return {
    topology: t,
    strategy: ref,
    fileOf: (path) => join(dir, path),
    kubectl: kubectlRun ?? (async () => ({ stdout: '', exitCode: 1 })),
  };
}

/** The container-side steps of `apply` (done through dockerode; shown as their docker CLI equivalents). */
export function strategyContainerSteps(lab: Lab, ref: StrategyRef, files: RenderedFile[], plan: DockerPlan, p: DockerPathSet): PlanStep[] {
  const t = lab.topology;
  const steps: PlanStep[] = [];
  for (const f of files.filter((x) => x.kind === 'frr' && t.routers.some((r) => x.path === routerFrrPath(r)))) {
    const r = f.hosts![0]!;
    steps.push({ what: `${ref.id}: router ${r} gets ${f.path} (written over ${p.routerConf(r)}), FRR restarted`, command: quote(['docker', 'exec', containerName(plan.prefix, r), '/usr/lib/frr/frrinit.sh', 'restart']) });
  }
  for (const d of renderStrategy(t, composeStrategy(ref)).sim.daemons) {
    steps.push({ what: `${ref.id}: ${d.name} on ${d.host} (${d.cmd} ${d.args.join(' ')}, files: ${Object.keys(d.files ?? {}).join(', ') || 'none'})`, command: quote(['docker', 'exec', '-d', containerName(plan.prefix, d.host), d.cmd, ...d.args]) });
  }
  const client = t.clients[0];
  if (client) {
    // one client is enough to know the endpoints answer
    const c = containerName(plan.prefix, client.name);
    steps.push({ what: `${ref.id}: wait until the API endpoint answers through the router`, command: quote(['docker', 'exec', c, 'curl', '-sS', '--cacert', p.caFile, `${apiEndpointUrl(t, composeStrategy(ref).cp)}/readyz`]) });
    const services = new Set(
      files
        .filter((f) => f.kind === 'k8s-manifest')
        .flatMap((f) => parseAllDocuments(f.content).map((d) => d.toJS() as { kind?: string; metadata?: { name?: string } } | null))
        .filter((o) => o?.kind === 'Service')
        .map((o) => o!.metadata?.name),
    );
    for (const s of t.services) {
      steps.push(
        services.has(s.name)
          ? { what: `${ref.id}: wait until Service ${s.name} answers`, command: quote(['docker', 'exec', c, 'curl', '-sS', `http://${s.ip}:${s.port}/`]) }
          : { what: `${ref.id}: no Service '${s.name}' among the rendered manifests — its target cannot be measured on docker` },
      );
    }
  }
  return steps;
}

// ---------------------------------------------------------------------------------------------
// static pods delivered by Talos (machine.pods)

interface PodLike {
  kind?: string;
  metadata?: { name?: string; namespace?: string };
  spec?: { volumes?: { hostPath?: { path?: string; type?: string } }[] };
}

function talosPods(files: RenderedFile[]): PodLike[] {
  const pods: PodLike[] = [];
  for (const f of files.filter((x) => x.kind === 'talos-patch')) {
    for (const doc of parseAllDocuments(f.content)) {
      const o = doc.toJS() as { machine?: { pods?: PodLike[] } } | null;
      pods.push(...(o?.machine?.pods ?? []));
    }
  }
  return pods;
}

/**
 * A manifest whose documents are all Pods that a Talos patch already runs as static pods
 * (`machine.pods`): kubelet starts those; `kubectl apply` would add a second, scheduled copy.
 */
export function deliveredByTalos(f: RenderedFile, files: RenderedFile[]): boolean {
  if (f.kind !== 'k8s-manifest') return false;
  const docs = parseAllDocuments(f.content).map((d) => d.toJS() as PodLike | null).filter((d): d is PodLike => !!d);
  if (!docs.length || docs.some((d) => d.kind !== 'Pod')) return false;
  const pods = talosPods(files);
  return docs.every((d) => pods.some((p) => p.metadata?.name === d.metadata?.name && (p.metadata?.namespace ?? 'default') === (d.metadata?.namespace ?? 'default')));
}

/**
 * What undoes a mechanism's Talos patches when its strategy is unapplied: the `machine.pods` and
 * `machine.files` keys deleted (`$patch: delete` on a map key, Talos docs "Configuration
 * Patches"); the lab's base configs have neither, so nothing else is lost.
 */
export function reversePatchDocs(files: RenderedFile[]): Record<string, unknown>[] {
  const keys = new Set<string>();
  for (const f of files.filter((x) => x.kind === 'talos-patch')) {
    for (const doc of parseAllDocuments(f.content)) {
      const m = (doc.toJS() as { machine?: Record<string, unknown> } | null)?.machine;
      if (m?.pods) keys.add('pods');
    }
  }
  if (keys.has('pods') && staticPodKubeconfigPaths(files).length) keys.add('files');
  return keys.size ? [{ machine: Object.fromEntries([...keys].map((k) => [k, { $patch: 'delete' }])) }] : [];
}

/** Host files (under /var, the only writable place on Talos) that Talos static pods mount as a kubeconfig. */
export function staticPodKubeconfigPaths(files: RenderedFile[]): string[] {
  const paths = new Set<string>();
  for (const p of talosPods(files)) {
    for (const v of p.spec?.volumes ?? []) {
      const hp = v.hostPath;
      if (hp?.path && hp.type === 'File' && /kubeconfig/i.test(hp.path) && hp.path.startsWith('/var/')) paths.add(hp.path);
    }
  }
  return [...paths];
}

/**
 * The `machine.files` patch that puts an admin kubeconfig for the local API server
 * (`https://localhost:<port>` — each control plane's own kube-apiserver) at those paths: Talos
 * writes no kubeconfig a static pod could use. Contains credentials: written to the lab state only.
 */
export function kubeconfigFilesPatch(paths: string[], kubeconfig: string, apiPort: number): string {
  const local = kubeconfig.replace(/server:\s*\S+/g, `server: https://localhost:${apiPort}`);
  return toYamlDocs([{ machine: { files: paths.map((path) => ({ content: local, permissions: 0o600, path, op: 'create' })) } }], ['docker/qemu provider: a kubeconfig for static pods (machine.files; Talos only writes under /var)']);
}

function stepsFromCommands(what: string, cmds: string[][]): PlanStep[] {
  return cmds.map((c, i) => ({ what: `${what}${cmds.length > 1 ? ` (${i + 1}/${cmds.length})` : ''}`, command: quote(c) }));
}

export function dockerCliEquivalent(n: DockerNetworkPlan): string[] {
  return [
    'docker', 'network', 'create', '--driver', 'bridge', '--subnet', n.options.IPAM!.Config![0]!.Subnet!, '--gateway', n.gateway, '--ip-range', n.ipRange,
    ...(n.internal ? ['--internal'] : []),
    '--opt', `com.docker.network.driver.mtu=${DOCKER_MTU}`,
    ...Object.entries(n.options.Labels ?? {}).flatMap(([k, v]) => ['--label', `${k}=${v}`]),
    n.name,
  ];
}

export function planSteps(lab: Lab, plan: DockerPlan, p: DockerPathSet): PlanStep[] {
  const first = lab.strategies[0]!;
  const steps: PlanStep[] = [
    { what: `check: Docker answers, talosctl and kubectl are installed, ${plan.images.talos} is present` },
    plan.images.netboxBuilt
      ? { what: `build the lab appliance image (routers, load balancer, clients) from Debian packages if absent`, command: `docker build -t ${plan.images.netbox} - < ${join(p.netboxDir, 'Dockerfile')}` }
      : { what: `use the appliance image ${plan.images.netbox} (TLAB_NETBOX_IMAGE)` },
    ...plan.networks.map((n) => ({ what: `network ${n.name} (${n.segment}${n.internal ? ', internal' : ''}; Docker gateway ${n.gateway}, dynamic range ${n.ipRange})`, command: quote(dockerCliEquivalent(n)) })),
    ...stepsFromCommands(`Talos configs for ${plan.initialStrategy}`, talosGenCommands(plan, lab, p, first)),
    ...plan.containers.map((c) => ({
      what: `container ${c.name} (${c.kind}${c.kind === 'talos' ? ` ${c.options.Labels?.['talos.type']}` : ''}, ${[Object.keys(c.options.NetworkingConfig?.EndpointsConfig ?? {})[0], ...c.connect.map((x) => x.network)].join(' + ')}): create options in docker/containers/${c.name}.json`,
    })),
    ...stepsFromCommands('bootstrap etcd through a node IP, fetch the kubeconfig, wait for the nodes', bootstrapCommands(lab, p)),
    ...lab.topology.clients.map((c) => ({
      what: `traffic agent on ${c.name} for the whole run (API probes verify the cluster CA, written to ${p.caFile} from the kubeconfig)`,
      command: quote(['docker', 'exec', '-d', containerName(plan.prefix, c.name), 'node', '--import', 'tsx', `${REPO_ROOT}/src/emulation/agent/main.ts`, join(p.agents, `${c.name}.json`)]),
    })),
  ];
  return steps;
}

/** Write plan.json, containers/<name>.json, the Talos patches and the appliance Dockerfile below `<renderDir>/docker/`. */
export function writeDockerPlan(plan: DockerPlan, steps: PlanStep[], renderDir: string, extra: Record<string, unknown> = {}): string[] {
  const dir = join(renderDir, 'docker');
  const written: string[] = [];
  const put = (rel: string, content: string) => {
    const f = join(dir, rel);
    mkdirSync(dirname(f), { recursive: true });
    writeFileSync(f, content);
    written.push(f);
  };
  for (const c of plan.containers) put(`containers/${c.name}.json`, JSON.stringify(c.options, null, 2) + '\n');
  for (const x of plan.talos.patches) put(`talos/patches/${x.file}`, x.content);
  for (const [n, y] of Object.entries(plan.talos.nodePatches)) if (y) put(`talos/nodes/${n}.patch.yaml`, y);
  for (const [r, conf] of Object.entries(plan.routers)) put(`routers/${r}.frr.conf`, conf);
  put('netbox/Dockerfile', netboxDockerfile(plan.images.netboxBase));
  put(
    'plan.json',
    JSON.stringify(
      {
        provider: 'docker',
        ...plan,
        containers: plan.containers.map((c) => ({ name: c.name, host: c.host, kind: c.kind, file: `containers/${c.name}.json`, connect: c.connect })),
        steps,
        ...extra,
      },
      null,
      2,
    ) + '\n',
  );
  return written;
}

// ---------------------------------------------------------------------------------------------
// drills: primitives mapped to Docker, and what cannot be done honestly

/** nftables, in the node's own network namespace: drop everything on the LAN link, both ways, ARP too; processes run on. */
export function partitionNft(ifname: string): string {
  return [
    'table inet tlab_partition {',
    `  chain c_input { type filter hook input priority -300; policy accept; iifname "${ifname}" drop; }`,
    `  chain c_forward { type filter hook forward priority -300; policy accept; iifname "${ifname}" drop; oifname "${ifname}" drop; }`,
    `  chain c_output { type filter hook output priority -300; policy accept; oifname "${ifname}" drop; }`,
    '}',
    'table arp tlab_partition {',
    `  chain c_input { type filter hook input priority -300; policy accept; iifname "${ifname}" drop; }`,
    `  chain c_output { type filter hook output priority -300; policy accept; oifname "${ifname}" drop; }`,
    '}',
    '',
  ].join('\n');
}
export const PARTITION_UNDO = 'delete table inet tlab_partition\ndelete table arp tlab_partition\n';

/**
 * Sticky-ARP gear on the router: drop gratuitous ARP (sender IP = target IP) for the addresses the
 * lab moves (VIP, Service pool). Requests and replies addressed to the router still pass, so the
 * path heals when the router's own neighbour entry expires and it asks again — Linux behaviour.
 */
export function garpIgnoreNft(t: Topology): string {
  const moving = [...new Set([t.vip, ...t.pool.addresses])];
  return [
    'table arp tlab_garp {',
    `  set moving { type ipv4_addr; elements = { ${moving.join(', ')} } }`,
    '  chain c_input { type filter hook input priority -300; policy accept; arp saddr ip @moving arp daddr ip @moving drop; }',
    '}',
    '',
  ].join('\n');
}
export const GARP_UNDO = 'delete table arp tlab_garp\n';

export interface PrimitiveMapping {
  how: string;
  restore: string;
}

/** How each primitive is done on a Talos container, or why it cannot be. */
export function dockerPrimitive(p: Primitive, ref: StrategyRef | undefined): PrimitiveMapping | { unsupported: string } {
  switch (p) {
    case 'shutdown':
      return { how: 'talosctl shutdown (Talos’ own graceful sequence: services stopped, the VIP holder resigns); the container exits', restore: 'docker start' };
    case 'crash':
      return { how: 'docker kill -s KILL: every process dies at once and the network namespace goes with it (peers notice by timeouts)', restore: 'docker start (same volumes: /var and /system/state persist)' };
    case 'freeze':
      return { how: 'docker pause (cgroup freezer): processes stop, the kernel still answers ARP and completes TCP handshakes', restore: 'docker unpause' };
    case 'partition':
      return { how: 'nftables in the node’s network namespace (helper container on `--network container:<node>`): all traffic on eth0 dropped both ways, ARP too; the link stays up and processes run on', restore: 'delete the nft tables' };
    case 'link-flap':
      return { how: 'docker network disconnect (the link disappears), reconnect after the hold time with the same address', restore: 'docker network connect' };
    case 'leave':
    case 'join':
      if (ref && composeStrategy(ref).svc.real?.honoursExcludeLabel && composeStrategy(ref).svc.traits.bgp) {
        return {
          how: 'kubectl label node <n> node.kubernetes.io/exclude-from-external-load-balancers= — MetalLB (≥ 0.13.4) withdraws the node’s announcements gracefully (join: remove the label)',
          restore: 'remove the label',
        };
      }
      return { unsupported: `${p} on docker needs a BGP Service mechanism whose speakers honour node.kubernetes.io/exclude-from-external-load-balancers (a per-node graceful withdraw the lab can trigger from outside); ${ref?.svc ?? 'this strategy'} has none` };
  }
}

// ---------------------------------------------------------------------------------------------
// prerequisites

function arch(): string {
  return process.arch === 'arm64' ? 'arm64' : 'amd64';
}

export function talosctlInstall(version: string): string {
  return `sudo curl -fsSLo /usr/local/bin/talosctl https://github.com/siderolabs/talos/releases/download/${version}/talosctl-linux-${arch()} && sudo chmod +x /usr/local/bin/talosctl`;
}
export function kubectlInstall(k8sVersion: string): string {
  const v = k8sVersion.startsWith('v') ? k8sVersion : `v${k8sVersion}`;
  return `curl -fsSLO https://dl.k8s.io/release/${v}/bin/linux/${arch()}/kubectl && sudo install -m 0755 kubectl /usr/local/bin/kubectl`;
}
export const HELM_INSTALL = 'curl -fsSL https://raw.githubusercontent.com/helm/helm/main/scripts/get-helm-3 | bash';

async function have(cmd: string, args: string[]): Promise<boolean> {
  try {
    const r = await run(cmd, args, { reject: false, timeoutMs: 15_000 });
    return r.exitCode === 0;
  } catch {
    return false;
  }
}

async function connectDocker(): Promise<Docker> {
  const { default: DockerCtor } = await import('dockerode');
  return new DockerCtor();
}

async function pingDocker(d: Docker): Promise<{ ok: true } | { ok: false; why: string; permission: boolean }> {
  // abortable: a daemon that never answers must not keep the process alive after the check
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new Error('no answer within 5 s')), 5000);
  try {
    await (d.ping as (o: { abortSignal: AbortSignal }) => Promise<unknown>)({ abortSignal: ac.signal });
    return { ok: true };
  } catch (e) {
    const err = (ac.signal.aborted ? ac.signal.reason : e) as NodeJS.ErrnoException;
    return { ok: false, why: err.message, permission: err.code === 'EACCES' || /permission denied/i.test(err.message) };
  } finally {
    clearTimeout(timer);
  }
}

export async function dockerCheck(lab: Lab): Promise<void> {
  const t = lab.topology;
  const missing: { what: string; fix: string }[] = [];
  if (process.platform !== 'linux') {
    throw new PrerequisiteError(
      `the docker provider needs a Linux host (this is ${process.platform}): it reaches the Talos containers on their bridge addresses, which Docker Desktop hides in its VM, and Talos documents that VIPs do not work on Docker for Mac`,
      'npm run lab -- <lab> --provider sim',
    );
  }
  const d = await connectDocker();
  // all probes at once: a missing daemon or tool costs its timeout only once
  const [ping, talosctl, kubectl, helm] = await Promise.all([
    pingDocker(d),
    have('talosctl', ['version', '--client']),
    have('kubectl', ['version', '--client']),
    lab.strategies.some((s) => clusterCni(composeStrategy(s)) === 'cilium') ? have('helm', ['version', '--short']) : Promise.resolve(true),
  ]);
  if (!ping.ok) {
    if (ping.permission) missing.push({ what: `Docker daemon refuses this user (${ping.why})`, fix: 'sudo usermod -aG docker "$USER" && newgrp docker' });
    else missing.push({ what: `Docker daemon not reachable (${process.env.DOCKER_HOST || '/var/run/docker.sock'}: ${ping.why})`, fix: 'sudo systemctl start docker   (without systemd: sudo dockerd &)' });
  }
  if (!talosctl) missing.push({ what: 'talosctl not found in PATH', fix: talosctlInstall(t.talos.version) });
  if (!kubectl) missing.push({ what: 'kubectl not found in PATH', fix: kubectlInstall(t.talos.kubernetesVersion) });
  if (!helm) missing.push({ what: 'helm not found in PATH (Cilium is installed with its chart)', fix: HELM_INSTALL });
  if (ping.ok) {
    const image = dockerImages(t).talos;
    try {
      await d.getImage(image).inspect();
    } catch {
      missing.push({ what: `image ${image} is not present (Talos images are not pulled by the lab)`, fix: `docker pull ${image}` });
    }
  }
  if (missing.length) throw prerequisites(missing);
}

/** Everything missing at once: one line per problem, one `fix:` line per command. */
export function prerequisites(missing: { what: string; fix: string }[]): PrerequisiteError {
  return new PrerequisiteError(missing.map((m) => m.what).join('\n'), missing.map((m) => m.fix).join('\n  fix: '));
}

// ---------------------------------------------------------------------------------------------
// support

export function dockerSupports(strategy: StrategyRef, lab: Lab): Support {
  const t = lab.topology;
  const s = composeStrategy(strategy);
  if (s.svc.traits.bgp && t.resilientEcmp.enabled) {
    return {
      supported: false,
      reason: 'resilient ECMP: the docker router is FRR 8.4 whose zebra installs plain multipath routes; resilient nexthop groups (buckets, idle timer) are built by the sim provider only',
    };
  }
  if (s.cp.traits.endpoint === 'lb-host' && !t.loadBalancer) return { supported: false, reason: `${s.cp.id} needs the topology’s loadBalancer host` };
  return { supported: true };
}

// ---------------------------------------------------------------------------------------------
// the running lab

interface ExecResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

async function dockerExec(d: Docker, container: string, cmd: string[], env: string[] = []): Promise<ExecResult> {
  const c = d.getContainer(container);
  const ex = await c.exec({ Cmd: cmd, Env: env, AttachStdout: true, AttachStderr: true });
  const stream = await ex.start({ hijack: true, stdin: false });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const { Writable } = await import('node:stream');
  const sink = (into: Buffer[]) => new Writable({ write: (chunk, _e, cb) => (into.push(Buffer.from(chunk)), cb()) });
  d.modem.demuxStream(stream, sink(out), sink(err));
  await new Promise<void>((res, rej) => {
    stream.on('end', () => res());
    stream.on('close', () => res());
    stream.on('error', rej);
  });
  const info = await ex.inspect();
  return { stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), exitCode: info.ExitCode ?? -1 };
}

/**
 * Which of `nodes` hold `ip` on a link, from Talos' own AddressStatus resources
 * (`talosctl get addresses`: one YAML document per address, with the answering node's IP).
 */
export async function talosAddressHolders(talosconfig: string, ip: string, nodes: { name: string; ip: string }[], signal?: AbortSignal): Promise<string[]> {
  if (!nodes.length) return [];
  const r = await run('talosctl', ['--talosconfig', talosconfig, '--nodes', nodes.map((n) => n.ip).join(','), 'get', 'addresses', '-o', 'yaml'], { timeoutMs: 30_000, signal, reject: false }).catch(() => null);
  if (!r) return [];
  return holdersFromAddressYaml(r.stdout, ip, nodes);
}

/** Parse `talosctl get addresses -o yaml` (pure; unit-tested). */
export function holdersFromAddressYaml(yamlText: string, ip: string, nodes: { name: string; ip: string }[]): string[] {
  const held = new Set<string>();
  for (const doc of parseAllDocuments(yamlText)) {
    const o = doc.toJS() as { node?: string; spec?: { address?: string } } | null;
    if (o?.spec?.address?.split('/')[0] === ip && o.node) held.add(o.node);
  }
  return nodes.filter((n) => held.has(n.ip)).map((n) => n.name);
}

const connError = (e: unknown) => /refused|timed? ?out|unreachable|no route|EOF|connection reset|i\/o timeout/i.test((e as Error).message ?? '');

class DockerLab implements RunningLab {
  readonly provider = 'docker' as const;
  bringUpMs = 0;
  private readonly p: DockerPathSet;
  private readonly t: Topology;
  private current?: { ref: StrategyRef; artifacts: Artifacts };
  private readonly daemons: { host: string; pid: string }[] = [];
  private cni: 'flannel' | 'cilium';
  private readonly injected = new Map<string, Primitive>();
  private readonly say: (m: string) => void;

  constructor(
    readonly lab: Lab,
    private readonly ctx: UpContext,
    private readonly d: Docker,
    private plan: DockerPlan,
  ) {
    this.t = lab.topology;
    this.p = dockerPaths(join(ctx.state.dir, 'docker'), ctx.state.dir);
    this.cni = plan.cni;
    this.say = (m) => ctx.progress?.(m);
  }

  get id() {
    return this.ctx.id;
  }
  get prefix() {
    return this.ctx.prefix;
  }
  private get state(): LabState {
    return this.ctx.state;
  }
  private cps(): Node[] {
    return this.t.nodes.filter((n) => n.role === 'controlplane');
  }
  private host(name: string): Host {
    const h = allHosts(this.t).find((x) => x.name === name);
    if (!h) throw new LabError(`unknown host '${name}'`);
    return h;
  }
  private cname(host: string) {
    return containerName(this.prefix, host);
  }

  // ---- process helpers ------------------------------------------------------------------
  private talosctl(args: string[], timeoutMs = 120_000): Promise<RunResult> {
    return run('talosctl', ['--talosconfig', this.p.talosconfig, ...args], { timeoutMs, signal: this.ctx.signal });
  }
  /** kubectl through each control plane in turn (the drill's victim may be the first one) */
  private async kubectl(args: string[], timeoutMs = 120_000): Promise<RunResult> {
    let last: unknown;
    for (const cp of this.cps()) {
      try {
        return await run('kubectl', ['--kubeconfig', this.p.kubeconfig, '--server', `https://${cp.ip}:${this.t.apiPort}`, '--request-timeout=15s', ...args], { timeoutMs, signal: this.ctx.signal });
      } catch (e) {
        last = e;
        if (!connError(e)) throw e;
      }
    }
    throw last;
  }
  private async retry<T>(what: string, target: string, timeoutMs: number, f: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      this.ctx.signal?.throwIfAborted();
      try {
        return await f();
      } catch (e) {
        last = (e as Error).message.split('\n').slice(0, 3).join(' ');
        if (Date.now() > deadline) throw new ReadinessError(what, target, timeoutMs, '', last);
        await sleep(3000, this.ctx.signal);
      }
    }
  }

  // ---- bring-up -------------------------------------------------------------------------
  async bringUp(): Promise<void> {
    const t0 = now();
    const p = this.p;
    for (const dir of [p.talos, p.patches, p.nodes, dirname(p.haproxyCfg), dirname(p.routerConf('x')), p.agents, p.events, dirname(p.caFile)]) mkdirSync(dir, { recursive: true });
    await this.ensureNetbox();
    for (const n of this.plan.networks) {
      this.say(`docker: network ${n.name} ${n.options.IPAM?.Config?.[0]?.Subnet}`);
      this.state.record({ kind: 'network', name: n.name });
      await this.d.createNetwork(n.options);
    }
    // the routers' first frr.conf (the first strategy's; bind-mounted, rewritten in place at apply)
    for (const [r, conf] of Object.entries(this.plan.routers)) writeFileSync(p.routerConf(r), conf);
    for (const c of this.plan.containers.filter((x) => x.kind !== 'talos')) await this.createContainer(c);
    await this.buildCluster(this.lab.strategies[0]!);
    // one traffic agent per client for the whole run, as the sim does (src/providers/kinds/emulated/lab.ts)
    for (const c of this.t.clients) await this.startAgent(c.name);
    this.bringUpMs = now() - t0;
  }

  private async ensureNetbox(): Promise<void> {
    const img = this.plan.images;
    try {
      await this.d.getImage(img.netbox).inspect();
      return;
    } catch {
      if (!img.netboxBuilt) throw new PrerequisiteError(`image ${img.netbox} (TLAB_NETBOX_IMAGE) is not present`, `docker pull ${img.netbox}`);
    }
    this.say(`docker: building ${img.netbox} from Debian packages (once)`);
    mkdirSync(this.p.netboxDir, { recursive: true });
    writeFileSync(join(this.p.netboxDir, 'Dockerfile'), netboxDockerfile(img.netboxBase));
    const stream = await this.d.buildImage({ context: this.p.netboxDir, src: ['Dockerfile'] }, { t: img.netbox, labels: { 'tlab.image': 'netbox' } });
    const out = await new Promise<{ error?: string; errorDetail?: { message: string } }[]>((res, rej) => this.d.modem.followProgress(stream, (e: Error | null, r: any[]) => (e ? rej(e) : res(r))));
    const bad = out.find((x) => x.error || x.errorDetail);
    if (bad) throw new LabError(`building ${img.netbox} failed: ${bad.error ?? bad.errorDetail?.message}`);
  }

  private async createContainer(c: DockerContainerPlan, options = c.options): Promise<void> {
    this.say(`docker: container ${c.name}`);
    const { availableParallelism } = await import('node:os');
    const cpus = availableParallelism() * 1e9;
    if ((options.HostConfig?.NanoCpus ?? 0) > cpus) options = { ...options, HostConfig: { ...options.HostConfig, NanoCpus: cpus } };
    this.state.record({ kind: 'container', name: c.name, host: c.host });
    const ct = await this.d.createContainer(options);
    for (const x of c.connect) await this.d.getNetwork(x.network).connect({ Container: ct.id, EndpointConfig: { IPAMConfig: { IPv4Address: x.ip } } });
    await ct.start();
  }

  /** Generate the Talos configs for `ref`, create the Talos containers, bootstrap, wait until Kubernetes answers. */
  private async buildCluster(ref: StrategyRef): Promise<void> {
    const p = this.p;
    if (ref.id !== this.plan.initialStrategy) this.plan = buildDockerPlan({ ...this.lab, strategies: [ref, ...this.lab.strategies.filter((s) => s.id !== ref.id)] }, { prefix: this.prefix, paths: p });
    this.cni = this.plan.cni;
    for (const x of this.plan.talos.patches) writeFileSync(join(p.patches, x.file), x.content);
    for (const [n, y] of Object.entries(this.plan.talos.nodePatches)) if (y) writeFileSync(join(p.nodes, `${n}.patch.yaml`), y);
    this.say(`talos: generating configs for ${ref.id} (${this.plan.cni})`);
    for (const cmd of talosGenCommands(this.plan, this.lab, p, ref)) {
      if (cmd[0] === 'cp') writeFileSync(cmd[2]!, readFileSync(cmd[1]!));
      else await run(cmd[0]!, cmd.slice(1), { timeoutMs: 60_000, signal: this.ctx.signal });
    }
    for (const c of this.plan.containers.filter((x) => x.kind === 'talos')) {
      await this.createContainer(c, withUserdata(c.options, readFileSync(join(p.nodes, `${this.plan.talos.nodeGroup[c.host]}.yaml`), 'utf8')));
    }
    const [bootstrap, kubeconfig] = bootstrapCommands(this.lab, p);
    this.say('talos: bootstrapping etcd through the first control plane');
    await this.retry('talosctl bootstrap', this.cps()[0]!.name, 5 * 60_000, () => run(bootstrap![0]!, bootstrap!.slice(1), { timeoutMs: 30_000 }));
    await this.retry('talosctl kubeconfig', this.cps()[0]!.name, 10 * 60_000, () => run(kubeconfig![0]!, kubeconfig!.slice(1), { timeoutMs: 30_000 }));
    this.writeCa();
    this.say('kubernetes: waiting for the nodes');
    if (this.cni === 'cilium') {
      // nodes stay NotReady until the CNI exists: wait for registration, install Cilium at apply
      await this.retry('nodes registered', this.t.name, 15 * 60_000, async () => {
        const r = await this.kubectl(['get', 'nodes', '-o', 'name']);
        const n = r.stdout.split('\n').filter(Boolean).length;
        if (n < this.t.nodes.length) throw new Error(`${n}/${this.t.nodes.length} nodes registered`);
      });
    } else {
      await this.retry('nodes Ready', this.t.name, 15 * 60_000, () => this.kubectl(['wait', '--for=condition=Ready', 'nodes', '--all', '--timeout=60s'], 90_000));
    }
  }

  private writeCa(): void {
    const kc = readFileSync(this.p.kubeconfig, 'utf8');
    const m = /certificate-authority-data:\s*(\S+)/.exec(kc);
    if (!m) throw new LabError(`${this.p.kubeconfig}: no certificate-authority-data`);
    writeFileSync(this.p.caFile, Buffer.from(m[1]!, 'base64'));
  }

  private async destroyCluster(): Promise<void> {
    for (const c of this.plan.containers.filter((x) => x.kind === 'talos')) {
      await this.d
        .getContainer(c.name)
        .remove({ force: true, v: true })
        .catch((e: { statusCode?: number }) => {
          if (e.statusCode !== 404) throw e;
        });
    }
  }

  // ---- RunningLab -------------------------------------------------------------------------
  async components(): Promise<Record<string, string>> {
    const out: Record<string, string> = { talos: this.t.talos.version, kubernetes: this.t.talos.kubernetesVersion, 'talos image': this.plan.images.talos };
    try {
      out.docker = (await this.d.version()).Version;
    } catch {
      /* reported as missing */
    }
    const rtr = this.t.routers.find((r) => r.bgp !== false);
    if (rtr) out.frr = (await dockerExec(this.d, this.cname(rtr.name), ['vtysh', '-c', 'show version']).catch(() => null))?.stdout.split('\n')[0]?.trim() ?? '?';
    for (const ref of this.lab.strategies) {
      for (const id of [ref.cp, ref.svc]) {
        for (const [name, q] of Object.entries(MECHANISMS.get(id)?.versions ?? {})) {
          const host = renderStrategy(this.t, composeStrategy(ref)).sim.daemons[0]?.host;
          if (name in out || !host) continue;
          const r = await dockerExec(this.d, this.cname(host), q.argv).catch(() => null);
          out[name] = q.pattern.exec(`${r?.stdout ?? ''}${r?.stderr ?? ''}`)?.[1] ?? '?';
        }
      }
    }
    if (this.current) {
      const s = composeStrategy(this.current.ref);
      Object.assign(out, s.cp.real?.versions, s.svc.real?.versions);
    }
    return out;
  }

  async apply(ref: StrategyRef, artifacts: Artifacts): Promise<void> {
    const t = this.t;
    const cni = clusterCni(composeStrategy(ref));
    if (cni !== this.cni) {
      // a cluster cannot switch its CNI in place: rebuild the Talos nodes for this strategy
      this.say(`${ref.id}: needs ${cni} as the CNI, the cluster runs ${this.cni}: rebuilding the Talos nodes`);
      await this.destroyCluster();
      await this.buildCluster(ref);
    }
    const dir = join(this.p.base, 'strategies', ref.id);
    // the roles' files and the Talos kind's (endpoint, KubePrism…) for this strategy
    const files = talosStrategyFiles(t, ref);
    for (const f of files) {
      const path = join(dir, f.path);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, f.content);
    }
    const kubeconfigs = staticPodKubeconfigPaths(files);
    if (kubeconfigs.length) writeFileSync(join(this.p.base, 'static-pod-kubeconfig.patch.yaml'), kubeconfigFilesPatch(kubeconfigs, readFileSync(this.p.kubeconfig, 'utf8'), t.apiPort));
    // routers: this strategy's frr.conf (timers, BFD), FRR restarted so the sessions come up with it
    for (const r of t.routers.filter((x) => x.bgp !== false)) {
      const f = files.find((x) => x.kind === 'frr' && x.path === routerFrrPath(r));
      if (!f || f.content === this.plan.routers[r.name]) continue;
      writeFileSync(this.p.routerConf(r.name), f.content);
      this.plan.routers[r.name] = f.content;
      await dockerExec(this.d, this.cname(r.name), ['/usr/lib/frr/frrinit.sh', 'restart']);
    }
    // the roles' daemons on the lab's own boxes (HAProxy on the load balancer), from the lab state
    for (const d of artifacts.sim.daemons) await this.startDaemon(d);
    for (const cmd of strategyApplyCommands(this.lab, ref, this.p, files, dir)) {
      this.say(`${ref.id}: ${cmd.slice(0, 4).join(' ')} …`);
      // webhooks (MetalLB's) take a while after their deployment is Available: retry applies
      await this.retry(cmd.slice(0, 3).join(' '), ref.id, 5 * 60_000, () => run(cmd[0]!, cmd.slice(1), { timeoutMs: 6 * 60_000, signal: this.ctx.signal }));
    }
    this.current = { ref, artifacts: { ...artifacts, files } };
    await this.waitReady(ref, files);
  }

  private clientAgentSpec(host: string, components: ComponentSpec[]): AgentSpec {
    const caFile = this.p.caFile;
    return {
      host,
      ns: '',
      stateDir: this.state.dir,
      socket: join(this.p.agents, `${host}.sock`),
      eventsFile: join(this.p.events, `${host}.jsonl`),
      topology: this.t,
      // the API probes verify the real cluster's CA (from the kubeconfig), not the sim's lab PKI
      components: components.map((c) => (c.kind === 'traffic' ? { ...c, config: { ...c.config, caFile } } : c)),
    };
  }

  private async startAgent(host: string): Promise<void> {
    const spec = this.clientAgentSpec(host, [{ kind: 'traffic', config: {} }]);
    const specFile = join(this.p.agents, `${host}.json`);
    writeFileSync(specFile, JSON.stringify(spec, null, 2));
    const pid = join(this.p.agents, `${host}.pid`);
    const log = join(this.p.agents, `${host}.log`);
    const ex = await this.d.getContainer(this.cname(host)).exec({
      Cmd: ['sh', '-c', `echo $$ > ${pid}; cd ${REPO_ROOT} && exec node --import tsx src/emulation/agent/main.ts ${specFile} >> ${log} 2>&1`],
      AttachStdout: false,
      AttachStderr: false,
    });
    await ex.start({ Detach: true });
    const { call } = await import('../../../emulation/agent/rpc.js');
    await this.retry('traffic agent', host, 60_000, () => call(spec.socket, 'ping', null, 2000));
  }

  private async stopAgents(): Promise<void> {
    for (const c of this.t.clients) {
      const pid = join(this.p.agents, `${c.name}.pid`);
      if (!existsSync(pid)) continue;
      await dockerExec(this.d, this.cname(c.name), ['sh', '-c', `kill -TERM $(cat ${pid}) 2>/dev/null; for i in $(seq 50); do kill -0 $(cat ${pid}) 2>/dev/null || exit 0; sleep 0.1; done; kill -KILL $(cat ${pid})`]).catch(() => null);
    }
  }

  private async waitReady(ref: StrategyRef, files: RenderedFile[]): Promise<void> {
    const t = this.t;
    const client = t.clients[0];
    if (!client) return;
    const host = apiEndpoint(t, composeStrategy(ref).cp);
    await this.retry('API endpoint /readyz', host, 5 * 60_000, async () => {
      const r = await dockerExec(this.d, this.cname(client.name), ['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '3', '--cacert', this.p.caFile, `https://${host}:${t.apiPort}/readyz`]);
      if (r.stdout.trim() !== '200') throw new Error(`HTTP ${r.stdout.trim() || r.stderr.trim()}`);
    });
    const rendered = files.filter((f) => f.kind === 'k8s-manifest').flatMap((f) => parseAllDocuments(f.content).map((d) => d.toJS() as { kind?: string; metadata?: { name?: string } } | null));
    for (const s of t.services) {
      if (!rendered.some((o) => o?.kind === 'Service' && o.metadata?.name === s.name)) {
        this.say(`${ref.id}: no Service '${s.name}' among the rendered manifests — its target cannot be measured on docker`);
        continue;
      }
      await this.retry(`Service ${s.name}`, `${s.ip}:${s.port}`, 5 * 60_000, async () => {
        const r = await dockerExec(this.d, this.cname(client.name), ['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '3', `http://${s.ip}:${s.port}/`]);
        if (r.stdout.trim() !== '200') throw new Error(`HTTP ${r.stdout.trim() || r.stderr.trim()}`);
      });
    }
  }

  /** a role's daemon in its appliance container: files in the lab state (bind-mounted at the same path), config checked, started with a pid file */
  private async startDaemon(d: DaemonSpec): Promise<void> {
    const dir = join(this.state.dir, 'daemons', `${d.host}-${d.name}`);
    mkdirSync(dir, { recursive: true });
    const paths: Record<string, string> = {};
    for (const [name, content] of Object.entries(d.files ?? {})) writeFileSync((paths[name] = join(dir, name)), content);
    const fill = (args: string[]) => args.map((a) => a.replace(/\{file:([^}]+)\}/g, (_, n: string) => paths[n] ?? a));
    if (d.check) {
      const r = await dockerExec(this.d, this.cname(d.host), fill(d.check));
      if (r.exitCode !== 0) throw new LabError(`${d.name} on ${d.host} refuses its config:\n${r.stderr || r.stdout}`);
    }
    const pid = join(dir, 'pid');
    const r = await dockerExec(this.d, this.cname(d.host), ['sh', '-c', `kill $(cat ${pid} 2>/dev/null) 2>/dev/null; (${quote([d.cmd, ...fill(d.args)])}) >> ${join(dir, 'log')} 2>&1 & echo $! > ${pid}`]);
    if (r.exitCode !== 0) throw new LabError(`${d.name} on ${d.host} did not start:\n${r.stderr || r.stdout}`);
    if (d.readyAfterMs) await sleep(d.readyAfterMs, this.ctx.signal);
    this.daemons.push({ host: d.host, pid });
  }

  async unapply(ref: StrategyRef): Promise<void> {
    const dir = join(this.p.base, 'strategies', ref.id);
    const all = this.current?.artifacts.files ?? [];
    const reverse = reversePatchDocs(all);
    if (reverse.length) {
      // the mechanism's static pods (and their kubeconfig) leave with it
      const f = join(this.p.base, 'unapply.patch.yaml');
      writeFileSync(f, toYamlDocs(reverse));
      await this.talosctl(['patch', 'machineconfig', '--nodes', this.cps().map((n) => n.ip).join(','), '--patch', `@${f}`]).catch((e) => this.say(`unapply ${ref.id}: ${(e as Error).message.split('\n')[0]}`));
    }
    for (const cmd of strategyUnapplyCommands(this.lab, ref, this.p, all, dir)) {
      await run(cmd[0]!, cmd.slice(1), { timeoutMs: 3 * 60_000, signal: this.ctx.signal }).catch((e) => this.say(`unapply ${ref.id}: ${(e as Error).message.split('\n')[0]}`));
    }
    for (const d of this.daemons.splice(0)) await dockerExec(this.d, this.cname(d.host), ['sh', '-c', `kill $(cat ${d.pid} 2>/dev/null) 2>/dev/null; rm -f ${d.pid}`]).catch(() => null);
    this.current = undefined;
  }

  async holders(target: Target): Promise<string[]> {
    const ref = this.current?.ref;
    if (!ref) return [];
    const t = this.t;
    const s = composeStrategy(ref);
    const role = target === 'api' ? s.cp : s.svc;
    const svc = t.services[0];
    const ip = target === 'api' ? apiEndpoint(t, s.cp) : svc?.ip;
    if (!ip) return [];
    if (role.holders === 'lb-host') return t.loadBalancer ? [t.loadBalancer.name] : [];
    if (role.holders === 'routes') return this.routeHolders(`${ip}/32`);
    if (target === 'service' && svc && role.real?.holders) {
      const dir = join(this.p.base, 'strategies', ref.id);
      return role.real.holders(realContext(t, ref, dir, (args) => this.kubectl(args, 30_000).catch((e) => ({ stdout: '', exitCode: 1, stderr: String(e) }))), svc);
    }
    return this.addressHolders(ip, target === 'api' ? this.cps() : t.nodes);
  }

  /** nodes whose Talos AddressStatus list holds `ip` (Talos' VIP and kube-vip both add it to eth0) */
  private async addressHolders(ip: string, among: Node[]): Promise<string[]> {
    const alive = among.filter((n) => !['crash', 'shutdown'].includes(this.injected.get(n.name) ?? ''));
    return talosAddressHolders(this.p.talosconfig, ip, alive.map((n) => ({ name: n.name, ip: n.ip })));
  }

  /** next hops of the routers that face the nodes (ECMP: every announcing node) */
  private async routeHolders(prefix: string): Promise<string[]> {
    const out = new Set<string>();
    for (const r of this.t.routers.filter((x) => x.bgp !== false && x.nodeSegments.length)) {
      const res = await dockerExec(this.d, this.cname(r.name), ['vtysh', '-c', `show ip route ${prefix} json`]).catch(() => null);
      if (!res) continue;
      try {
        const j = JSON.parse(res.stdout || '{}') as Record<string, { nexthops?: { ip?: string; active?: boolean }[] }[]>;
        for (const e of j[prefix] ?? []) for (const nh of e.nexthops ?? []) if (nh.ip && nh.active !== false) out.add(nh.ip);
      } catch {
        /* no route */
      }
    }
    return this.t.nodes.filter((n) => out.has(n.ip)).map((n) => n.name);
  }

  async inject(primitive: Primitive, host: string, opts: { downMs?: number } = {}): Promise<void> {
    const h = this.host(host);
    const name = this.cname(host);
    const m = dockerPrimitive(primitive, this.current?.ref);
    if ('unsupported' in m) throw new LabError(`unsupported on docker: ${m.unsupported}`);
    this.injected.set(host, primitive);
    const c = this.d.getContainer(name);
    switch (primitive) {
      case 'shutdown':
        if (h.kind === 'node') {
          await this.talosctl(['--nodes', h.ip, '--endpoints', h.ip, 'shutdown', '--wait=false'], 60_000).catch(async (e) => {
            this.say(`talosctl shutdown ${host} failed (${(e as Error).message.split('\n')[0]}): docker stop instead`);
            await c.stop({ t: 30 });
          });
        } else await c.stop({ t: 10 });
        return;
      case 'crash':
        await c.kill({ signal: 'SIGKILL' });
        return;
      case 'freeze':
        await c.pause();
        return;
      case 'partition':
        await this.nftIn(host, partitionNft(h.interfaces[0]!.ifname));
        return;
      case 'link-flap': {
        const i = h.interfaces[0]!;
        await this.d.getNetwork(networkName(this.prefix, i.segment)).disconnect({ Container: name, Force: true });
        await sleep(opts.downMs ?? 2000, this.ctx.signal);
        await this.d.getNetwork(networkName(this.prefix, i.segment)).connect({ Container: name, EndpointConfig: { IPAMConfig: { IPv4Address: i.ip } } });
        this.injected.delete(host);
        return;
      }
      case 'leave':
        await this.kubectl(['label', '--overwrite', 'node', host, 'node.kubernetes.io/exclude-from-external-load-balancers=']);
        return;
      case 'join':
        await this.kubectl(['label', 'node', host, 'node.kubernetes.io/exclude-from-external-load-balancers-']);
        this.injected.delete(host);
        return;
    }
  }

  /** run an nft script in a container's network namespace (the Talos image has no nft: a helper container joins it) */
  private async nftIn(host: string, script: string): Promise<void> {
    const h = this.host(host);
    if (h.kind !== 'node') {
      const r = await dockerExec(this.d, this.cname(host), ['sh', '-c', 'printf "%s" "$NFT" | nft -f -'], [`NFT=${script}`]);
      if (r.exitCode !== 0) throw new LabError(`nft on ${host}: ${r.stderr}`);
      return;
    }
    const name = `${this.cname(host)}-nft-${Date.now().toString(36)}`;
    this.state.record({ kind: 'container', name, host });
    const c = await this.d.createContainer({
      name,
      Image: this.plan.images.netbox,
      Cmd: ['sh', '-c', 'printf "%s" "$NFT" | nft -f -'],
      Env: [`NFT=${script}`],
      Labels: { 'tlab.id': this.plan.labId, 'tlab.kind': 'helper' },
      HostConfig: { NetworkMode: `container:${this.cname(host)}`, CapAdd: ['NET_ADMIN'] },
    });
    try {
      await c.start();
      const r = (await c.wait()) as { StatusCode: number };
      if (r.StatusCode !== 0) throw new LabError(`nft in ${host}'s network namespace failed (exit ${r.StatusCode})`);
    } finally {
      await c.remove({ force: true }).catch(() => null);
    }
  }

  async restore(host: string): Promise<void> {
    const what = this.injected.get(host);
    if (!what) return;
    const c = this.d.getContainer(this.cname(host));
    switch (what) {
      case 'shutdown':
      case 'crash':
        await c.start().catch((e: { statusCode?: number }) => {
          if (e.statusCode !== 304) throw e; // 304: already running
        });
        break;
      case 'freeze':
        await c.unpause();
        break;
      case 'partition':
        await this.nftIn(host, PARTITION_UNDO);
        break;
      case 'leave':
        await this.kubectl(['label', 'node', host, 'node.kubernetes.io/exclude-from-external-load-balancers-']);
        break;
      default:
        break;
    }
    this.injected.delete(host);
  }

  async setGarpIgnored(on: boolean): Promise<void> {
    for (const r of this.t.routers.filter((x) => x.nodeSegments.length || x.role === 'single')) {
      await this.nftIn(r.name, on ? garpIgnoreNft(this.t) : GARP_UNDO).catch((e) => {
        if (on) throw e;
      });
    }
  }

  async call<T = unknown>(host: string, method: string, params?: unknown, timeoutMs?: number): Promise<T> {
    const { call } = await import('../../../emulation/agent/rpc.js');
    return call<T>(join(this.p.agents, `${host}.sock`), method, params, timeoutMs);
  }

  async events(sinceT: number): Promise<AgentEvent[]> {
    return readEvents(this.p.events, sinceT);
  }

  async exec(host: string, cmd: string, args: string[]): Promise<ExecResult> {
    if (this.host(host).kind === 'node') throw new LabError(`exec on ${host}: Talos has no shell; use talosctl (talosconfig: ${this.p.talosconfig})`);
    return dockerExec(this.d, this.cname(host), [cmd, ...args]);
  }

  async down(): Promise<void> {
    await this.stopAgents().catch(() => null);
    const { cleanLab } = await import('../../../state/clean.js');
    const r = await cleanLab(this.state);
    if (r.errors.length) throw new LabError(`docker teardown of ${this.prefix} left errors:\n${r.errors.join('\n')}`);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.down();
  }
}

// ---------------------------------------------------------------------------------------------
// the provider

export const dockerProvider: Provider & {
  supportsDrill(primitive: Primitive, strategy: StrategyRef): Support;
} = {
  name: 'docker',
  emulated: false,
  check: dockerCheck,
  supports: dockerSupports,
  supportsDrill(primitive, strategy) {
    const m = dockerPrimitive(primitive, strategy);
    return 'unsupported' in m ? { supported: false, reason: m.unsupported } : { supported: true };
  },
  async up(lab, ctx) {
    const paths = dockerPaths(join(ctx.state.dir, 'docker'), ctx.state.dir);
    const plan = buildDockerPlan(lab, { prefix: ctx.prefix, paths });
    const d = await connectDocker();
    const running = new DockerLab(lab, ctx, d, plan);
    try {
      await running.bringUp();
    } catch (e) {
      ctx.progress?.(`docker: bring-up failed, tearing down ${ctx.prefix}: ${(e as Error).message.split('\n')[0]}`);
      await running.down().catch((d2) => ctx.progress?.(`teardown: ${(d2 as Error).message}`));
      throw e;
    }
    return running;
  },
  async plan(lab, ctx) {
    const renderDir = ctx.renderDir;
    const id = idOfPrefix(ctx.prefix);
    const stateDir = join(stateRoot(), id);
    // in the plan, talosctl's files live under the render dir; at up they live in the lab state
    const paths = dockerPaths(renderDir ? join(renderDir, 'docker') : join(stateDir, 'docker'), stateDir);
    const plan = buildDockerPlan(lab, { prefix: ctx.prefix, paths });
    const steps = planSteps(lab, plan, paths);
    const perStrategy: Record<string, { supported: boolean; reason?: string; commands: string[] }> = {};
    let prevCni: string = plan.cni;
    for (const ref of lab.strategies) {
      const support = dockerSupports(ref, lab);
      const files: RenderedFile[] = talosStrategyFiles(lab.topology, ref);
      const dir = renderDir ? join(renderDir, ref.id) : join(paths.base, 'strategies', ref.id);
      const cmds = strategyApplyCommands(lab, ref, paths, files, dir);
      const cni = clusterCni(composeStrategy(ref));
      if (support.supported) {
        steps.push(
          ...(cni !== prevCni ? [{ what: `${ref.id}: needs ${cni} as the CNI: the Talos nodes are rebuilt for it (configs regenerated, bootstrap again)` }] : []),
          ...stepsFromCommands(`apply ${ref.id}`, cmds),
          ...strategyContainerSteps(lab, ref, files, plan, paths),
          ...stepsFromCommands(`unapply ${ref.id}`, strategyUnapplyCommands(lab, ref, paths, files, dir)),
        );
        prevCni = cni;
      } else {
        steps.push({ what: `${ref.id}: unsupported on docker — ${support.reason}` });
      }
      perStrategy[ref.id] = { ...support, commands: cmds.map(quote) } as never;
    }
    steps.push({ what: 'down: remove every recorded container (with its anonymous volumes) and network, then sweep by name prefix', command: `npm run cli -- down ${id}` });
    if (renderDir) writeDockerPlan(plan, steps, renderDir, { strategies: perStrategy });
    return steps;
  },
};
