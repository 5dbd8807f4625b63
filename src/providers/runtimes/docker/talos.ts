/**
 * docker provider — REAL Talos in containers. The Talos containers are created through dockerode
 * the way talosctl's docker provisioner creates them (siderolabs/talos
 * pkg/provision/providers/docker/node.go, the same at v1.11.6, v1.12.11 and v1.13.9), with three
 * differences that are the point of this provider:
 *
 *  1. several control planes (from Talos 1.12 `talosctl cluster create docker` makes exactly one);
 *  2. eth0 is NOT marked ignored. talosctl's docker provisioner adds
 *     `v1alpha1.WithNetworkInterfaceIgnore("eth0")` for configs without multi-document network
 *     config (Talos ≤ 1.11; pkg/provision/providers/docker/docker.go GenOptions), and Talos' VIP
 *     controller skips ignored links, so a talosctl docker cluster never gets the native VIP.
 *     Nothing else in container mode disables the VIP, so the native VIP runs here. Upstream never
 *     tests this combination: the nightly run is what proves it;
 *  3. the lab's own network around the cluster (./network.ts) and the lab's boxes — FRR routers,
 *     the HAProxy box, the clients — as containers of the pinned appliance image (./hosts.ts,
 *     ./appliance.ts).
 *
 * Everything Talos-specific that is not about containers — configs, bootstrap, kubeconfig, waiting
 * for the nodes, a strategy's live patches and manifests, holders, prerequisites — is the Talos
 * kind's (src/providers/kinds/talos/cluster.ts), shared with qemu.
 *
 * `plan()` renders everything (networks, the exact ContainerCreateOptions, the commands) without
 * touching Docker; `up()` performs it, recording every network and container in the lab state
 * BEFORE creating it, labelled `tlab.id`, and tears down on failure. No real Talos runs on the
 * offline CI machines (no images): the fake-engine e2e (test/e2e/docker-talos-fake.test.ts)
 * checks every request and command against reviewed golden files; the nightly run on a Docker
 * host is what runs Talos.
 */
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type Docker from 'dockerode';
import type { Host, Lab, Node, StrategyRef, Target, Topology } from '../../../model/types.js';
import type { Artifacts, DaemonSpec, RenderedFile } from '../../../strategies/types.js';
import type { AgentEvent, AgentSpec, ComponentSpec } from '../../../emulation/agent/types.js';
import type { PlanStep, Primitive, Provider, RunningLab, Support, UpContext } from '../../types.js';
import type { LabState } from '../../../state/state.js';
import { stateRoot } from '../../../state/state.js';
import { REPO_ROOT } from '../../../model/load.js';
import { LabError, PrerequisiteError } from '../../../util/errors.js';
import { now, quote, sleep } from '../../../util/proc.js';
import { readEvents } from '../../../emulation/agent/events.js';
import { routerFrrPath } from '../../kinds/talos/files.js';
import { toYamlDocs, usesNetworkDocuments } from '../../kinds/talos/machine-config.js';
import {
  TalosCluster,
  bootstrapCommand,
  clusterPatchPlans,
  genConfigCommand,
  genSecretsCommand,
  healthCommand,
  kubeconfigCommand,
  nodeConfigCommand,
  prerequisites,
  renderedServiceNames,
  runtimeStrategyFiles,
  stepsFromCommands,
  strategyApplyCommands,
  strategyDirs,
  strategyUnapplyCommands,
  talosPaths,
  talosToolsMissing,
  talosconfigCommands,
  type TalosPatchPlan,
  type TalosPaths,
} from '../../kinds/talos/cluster.js';
import type { SequenceProfile } from '../../kinds/talos/sequence.js';
import { apiEndpoint, apiEndpointUrl, clusterCni, composeStrategy, renderStrategy } from '../../../strategies/compose.js';
import { MECHANISMS } from '../../../strategies/registry.js';
import { buildNetworkPlans, containerName, dockerCliEquivalent, idOfPrefix, networkName, allHosts, type DockerNetworkPlan } from './network.js';
import { APPLIANCE_IMAGE_PLACEHOLDER, applianceHostPlans, withImage, type ApplianceContainerPlan } from './hosts.js';
import { connectDocker, createAndStart, dockerExec, dockerExecDetached, pingDocker, removeContainer, stopContainer, type ContainerPlan, type ExecResult } from './engine.js';
import { DOCKER_FAULTS, DockerFaults, GARP_UNDO, garpIgnoreNft, type PrimitiveMapping } from './faults.js';
import { APPLIANCE_PACKAGES, applianceDockerfile, ensureApplianceImage, PUBLIC_BASE } from './appliance.js';
import { AGENT_NODE_FLAGS } from '../../gear/agent-bundle.js';

// ---------------------------------------------------------------------------------------------
// what talosctl's docker provisioner does (siderolabs/talos pkg/provision/providers/docker/node.go
// at v1.11.6 and v1.13.9: the same lines)

/** tmpfs mounts of a Talos container (node.go: `for _, path := range []string{"/run", "/system", "/tmp"}`) */
export const TALOS_TMPFS = ['/run', '/system', '/tmp'] as const;
/**
 * Anonymous volumes (node.go: EphemeralMountPoint, StateMountPoint, then constants.Overlays):
 * /var, /system/state, /etc/cni, /etc/kubernetes, /usr/libexec/kubernetes, /opt.
 */
export const TALOS_VOLUMES = ['/var', '/system/state', '/etc/cni', '/etc/kubernetes', '/usr/libexec/kubernetes', '/opt'] as const;
/** talosctl cluster create defaults: 2 CPUs and 2 GiB per node (clusterops/options.go GetCommon @v1.13.9; `--cpus 2.0 --memory 2048` @v1.11.6); node.go sets TALOSSKU from them */
export const TALOS_NODE_CPUS = 2;
export const TALOS_NODE_MEMORY_MIB = 2048;
/** node.go: `hostConfig.Sysctls = {"net.ipv6.conf.all.disable_ipv6": "0"}` unless IPv6 is disabled (talosctl's default keeps it) */
export const TALOS_SYSCTLS = { 'net.ipv6.conf.all.disable_ipv6': '0' } as const;
/** graceful stop of a Talos container at teardown and when a shutdown does not end by itself */
export const TALOS_STOP_GRACE_S = 30;

// ---------------------------------------------------------------------------------------------
// images

export interface DockerImages {
  /** the image talosctl uses for the version (`--image`, default ghcr.io/siderolabs/talos:<version>) */
  talos: string;
  /** the appliance (routers, load balancer, clients): its tag is known once ensured at up */
  appliance: string;
  /** true when the appliance is built (ensureApplianceImage), false when TLAB_APPLIANCE_IMAGE names one */
  applianceBuilt: boolean;
}

export function dockerImages(t: Topology, env: NodeJS.ProcessEnv = process.env): DockerImages {
  return {
    talos: env.TLAB_TALOS_IMAGE || `ghcr.io/siderolabs/talos:${t.talos.version}`,
    appliance: env.TLAB_APPLIANCE_IMAGE || APPLIANCE_IMAGE_PLACEHOLDER,
    applianceBuilt: !env.TLAB_APPLIANCE_IMAGE,
  };
}

// ---------------------------------------------------------------------------------------------
// the Talos runtime profile of docker

const USERDATA_PLACEHOLDER = (path: string) => `USERDATA=@@base64:${path}@@`;
/** Put the base64 machine config into a planned Talos container's options (the one value known only at `up`). */
export function withUserdata(o: Docker.ContainerCreateOptions, machineConfig: string): Docker.ContainerCreateOptions {
  const b64 = Buffer.from(machineConfig, 'utf8').toString('base64');
  return { ...o, Env: (o.Env ?? []).map((e) => (e.startsWith('USERDATA=') ? `USERDATA=${b64}` : e)) };
}

/**
 * A Talos container keeps Docker's default route (through the host's bridge: Talos pulls its
 * images through it). The lab's other segments (uplink with the clients, fabric, other racks) are
 * reached through the node's LAN router, as on real gear, with more specific routes:
 * Talos ≤ 1.11 `machine.network.interfaces[].routes`, ≥ 1.12 a `LinkConfig` document.
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

function nodeRoutePatch(t: Topology, n: Node): string {
  const docs = nodeRoutePatchDocs(t, n);
  return docs.length ? toYamlDocs(docs, [`docker provider, ${n.role}s on ${n.rack}: the lab's other segments through ${n.gateway} (Docker keeps the default route)`]) : '';
}

/** How docker delivers the Talos kind's files: all of them as rendered (the container-mode patch included); its nodes' eth0 carries the routes above. */
export const DOCKER_PROFILE: SequenceProfile = {
  name: 'docker',
  adapt: (_t, f) => f,
  nodeInterfaces(t, n) {
    if (usesNetworkDocuments(t.talos.version)) return [];
    const d = nodeRoutePatchDocs(t, n)[0] as { machine?: { network?: { interfaces?: Record<string, unknown>[] } } } | undefined;
    return d?.machine?.network?.interfaces ?? [];
  },
  nodeConfigPatch: nodeRoutePatch,
};

// ---------------------------------------------------------------------------------------------
// the plan (pure)

export interface TalosContainerPlan extends ContainerPlan {
  kind: 'talos';
}
export type DockerContainerPlan = TalosContainerPlan | ApplianceContainerPlan;

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

export function dockerPaths(base: string, stateDir: string) {
  return {
    ...talosPaths(base),
    stateDir,
    routerConf: (r: string) => join(base, 'routers', `${r}.frr.conf`),
    agents: join(stateDir, 'agents'),
    events: join(stateDir, 'events'),
    caFile: join(stateDir, 'pki', 'ca.crt'),
  };
}
export type DockerPathSet = ReturnType<typeof dockerPaths>;

export function talosContainerPlan(_t: Topology, n: Node, o: { prefix: string; clusterName: string; image: string; group: string }): TalosContainerPlan {
  const type = n.role === 'controlplane' ? 'controlplane' : 'worker';
  const net = networkName(o.prefix, n.interfaces[0]!.segment);
  const name = containerName(o.prefix, n.name);
  const mounts: Docker.MountSettings[] = [
    ...TALOS_TMPFS.map((target) => ({ Type: 'tmpfs' as const, Target: target, Source: '' })),
    ...TALOS_VOLUMES.map((target) => ({ Type: 'volume' as const, Target: target, Source: '' })),
  ];
  return {
    host: n.name,
    name,
    kind: 'talos',
    connect: [],
    options: {
      name,
      Hostname: n.name,
      Image: o.image,
      Env: ['PLATFORM=container', `TALOSSKU=${TALOS_NODE_CPUS}CPU-${TALOS_NODE_MEMORY_MIB}RAM`, USERDATA_PLACEHOLDER(`talos/nodes/${o.group}.yaml`)],
      Labels: { 'talos.owned': 'true', 'talos.cluster.name': o.clusterName, 'talos.type': type, 'tlab.id': idOfPrefix(o.prefix), 'tlab.host': n.name },
      HostConfig: {
        Privileged: true,
        SecurityOpt: ['seccomp:unconfined'],
        NanoCpus: TALOS_NODE_CPUS * 1e9,
        Memory: TALOS_NODE_MEMORY_MIB * 1024 * 1024,
        ReadonlyRootfs: true,
        Mounts: mounts,
        Sysctls: { ...TALOS_SYSCTLS },
        NetworkMode: net,
      },
      NetworkingConfig: { EndpointsConfig: { [net]: { IPAMConfig: { IPv4Address: n.ip } } } },
    },
  };
}

export function buildDockerPlan(lab: Lab, o: { prefix: string; paths: DockerPathSet; env?: NodeJS.ProcessEnv }): DockerPlan {
  const t = lab.topology;
  const labId = idOfPrefix(o.prefix);
  const clusterName = o.prefix;
  const images = dockerImages(t, o.env);
  const first = lab.strategies[0];
  if (!first) throw new LabError(`lab ${lab.name}: no strategies`);
  const networks = buildNetworkPlans(t, { prefix: o.prefix, labels: { 'talos.owned': 'true', 'talos.cluster.name': clusterName } });
  // nodes of one role on one LAN get the same config (talosctl gen config + the same routes)
  const nodePatches: Record<string, string> = {};
  const nodeGroup: Record<string, string> = {};
  for (const n of t.nodes) {
    const group = `${n.role}-${n.rack}`;
    nodeGroup[n.name] = group;
    nodePatches[group] ??= nodeRoutePatch(t, n);
  }
  const containers: DockerContainerPlan[] = [
    ...t.nodes.map((n) => talosContainerPlan(t, n, { prefix: o.prefix, clusterName, image: images.talos, group: nodeGroup[n.name]! })),
    ...applianceHostPlans(t, { prefix: o.prefix, image: images.appliance, stateDir: o.paths.stateDir, repoRoot: REPO_ROOT, routerConf: o.paths.routerConf }),
  ];
  const notes = [
    `Talos ${t.talos.version} from ${images.talos}, created like talosctl's docker provisioner (PLATFORM=container, USERDATA, privileged, seccomp unconfined, read-only root, tmpfs ${TALOS_TMPFS.join(' ')}, volumes ${TALOS_VOLUMES.join(' ')}), ${t.nodes.filter((n) => n.role === 'controlplane').length} control plane(s).`,
    'eth0 is not marked ignored (talosctl ≤ 1.11 does that for docker clusters, which keeps the native VIP from ever running there): the native VIP runs on these containers. Upstream does not test this combination; the nightly docker run proves it.',
    'From Talos 1.12, `talosctl cluster create docker` makes one control plane only; this provider creates the containers itself and keeps several.',
    'USERDATA is the base64 of talos/nodes/<role>-<lan>.yaml, generated at up by talosctl with fresh cluster secrets: the plan shows its file, not its value.',
    `Routers, load balancer and clients run the lab appliance (${images.applianceBuilt ? `built once from ${PUBLIC_BASE} or an offline Debian base with pinned packages` : images.appliance}).`,
    'No segment is --internal: moby drops routed traffic on internal networks once br_netfilter is loaded (the client → router → VIP path).',
    'Linux only: the host reaches the containers on their bridge addresses (Docker Desktop hides them in its VM; Talos documents that VIPs do not work on Docker for Mac).',
  ];
  return {
    labId,
    prefix: o.prefix,
    clusterName,
    talosVersion: t.talos.version,
    kubernetesVersion: t.talos.kubernetesVersion,
    images,
    initialStrategy: first.id,
    cni: clusterCni(composeStrategy(first)),
    networks,
    containers,
    talos: { patches: clusterPatchPlans(t, first, DOCKER_PROFILE), nodePatches, nodeGroup },
    routers: Object.fromEntries(t.routers.filter((r) => r.bgp !== false).map((r) => [r.name, runtimeStrategyFiles(t, first, DOCKER_PROFILE).find((f) => f.kind === 'frr' && f.path === routerFrrPath(r))?.content ?? ''])),
    notes,
  };
}

// ---------------------------------------------------------------------------------------------
// commands (exact argv; PlanStep.command is their shell quoting)

const nodeGroups = (plan: DockerPlan) =>
  Object.entries(plan.talos.nodePatches).map(([group, patch]) => ({ group, role: group.startsWith('controlplane-') ? ('controlplane' as const) : ('worker' as const), patch }));

export function talosGenCommands(plan: DockerPlan, lab: Lab, p: TalosPaths, ref: StrategyRef): string[][] {
  const t = lab.topology;
  const cps = t.nodes.filter((n) => n.role === 'controlplane').map((n) => n.ip);
  return [
    genSecretsCommand(p),
    genConfigCommand(t, plan.clusterName, apiEndpointUrl(t, composeStrategy(ref).cp), plan.talos.patches, p),
    ...nodeGroups(plan).map((g) => nodeConfigCommand(p, g.group, g.role, !!g.patch)),
    ...talosconfigCommands(p, cps),
  ];
}

/** After the containers: bootstrap once, the kubeconfig, then until every node is part of a healthy cluster. */
export function bootstrapCommands(lab: Lab, p: TalosPaths): string[][] {
  const t = lab.topology;
  const cp1 = t.nodes.find((n) => n.role === 'controlplane')!.ip;
  const cni = clusterCni(composeStrategy(lab.strategies[0]!));
  return [
    bootstrapCommand(p, cp1),
    kubeconfigCommand(p, cp1),
    // with Cilium as the CNI the nodes stay NotReady until it is installed at apply: registration only, health after the install
    cni === 'cilium' ? ['kubectl', '--kubeconfig', p.kubeconfig, '--server', `https://${cp1}:${t.apiPort}`, 'get', 'nodes', '-o', 'json'] : healthCommand(p, t.nodes),
  ];
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
    const c = containerName(plan.prefix, client.name);
    steps.push({ what: `${ref.id}: wait until the API endpoint answers through the router`, command: quote(['docker', 'exec', c, 'curl', '-sS', '--cacert', p.caFile, `${apiEndpointUrl(t, composeStrategy(ref).cp)}/readyz`]) });
    const services = renderedServiceNames(files);
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

export function planSteps(lab: Lab, plan: DockerPlan, p: DockerPathSet): PlanStep[] {
  const first = lab.strategies[0]!;
  return [
    { what: `check: Linux, Docker answers, talosctl and kubectl are installed, ${plan.images.talos} is present, the kernel modules the strategies need are loaded` },
    plan.images.applianceBuilt
      ? { what: `the lab appliance image (routers, load balancer, clients): built once FROM ${PUBLIC_BASE} (or an offline Debian base) with pinned Debian packages, reused by its hash`, command: `docker build - < ${join(p.base, 'appliance', 'Dockerfile')}` }
      : { what: `use the appliance image ${plan.images.appliance} (TLAB_APPLIANCE_IMAGE)` },
    ...plan.networks.map((n) => ({ what: `network ${n.name} (${n.segment}${n.masquerade ? ', NAT' : ', no NAT'}; Docker gateway ${n.gateway}, dynamic range ${n.ipRange})`, command: quote(dockerCliEquivalent(n)) })),
    ...plan.containers.filter((c) => c.kind !== 'talos').map((c) => ({ what: `container ${c.name} (${c.kind}, ${[Object.keys(c.options.NetworkingConfig?.EndpointsConfig ?? {})[0], ...c.connect.map((x) => x.network)].join(' + ')}): create options in docker/containers/${c.name}.json` })),
    ...stepsFromCommands(`Talos configs for ${plan.initialStrategy}`, talosGenCommands(plan, lab, p, first)),
    ...plan.containers.filter((c) => c.kind === 'talos').map((c) => ({ what: `container ${c.name} (talos ${c.options.Labels?.['talos.type']}, ${Object.keys(c.options.NetworkingConfig?.EndpointsConfig ?? {})[0]}): create options in docker/containers/${c.name}.json` })),
    ...stepsFromCommands('bootstrap etcd once through a node IP, fetch the kubeconfig, wait until every node is part of a healthy cluster', bootstrapCommands(lab, p)),
    ...lab.topology.clients.map((c) => ({
      what: `traffic agent on ${c.name} for the whole run, as the invoking user (API probes verify the cluster CA, written to ${p.caFile} from the kubeconfig)`,
      command: quote(['docker', 'exec', '-d', '--user', `${process.getuid?.() ?? 0}:${process.getgid?.() ?? 0}`, containerName(plan.prefix, c.name), 'node', ...AGENT_NODE_FLAGS, '--import', 'tsx', `${REPO_ROOT}/src/emulation/agent/main.ts`, join(p.agents, `${c.name}.json`)]),
    })),
  ];
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
  put('appliance/Dockerfile', applianceDockerfile(PUBLIC_BASE));
  put('appliance/packages.json', JSON.stringify(APPLIANCE_PACKAGES, null, 2) + '\n');
  put(
    'plan.json',
    JSON.stringify({ provider: 'docker', ...plan, containers: plan.containers.map((c) => ({ name: c.name, host: c.host, kind: c.kind, file: `containers/${c.name}.json`, connect: c.connect })), steps, ...extra }, null, 2) + '\n',
  );
  return written;
}

// ---------------------------------------------------------------------------------------------
// drills

/** How each primitive is done on this lab's containers, or why it cannot be. */
export function dockerPrimitive(p: Primitive, ref: StrategyRef | undefined): PrimitiveMapping | { unsupported: string } {
  switch (p) {
    case 'shutdown':
      return {
        how: 'talosctl shutdown (Talos’ own graceful sequence: services stopped, the VIP holder resigns); the container exits',
        restore: 'docker start, once the container has exited (a shutdown still under way is waited for, then stopped)',
      };
    case 'crash':
      return DOCKER_FAULTS.crash;
    case 'freeze':
      return DOCKER_FAULTS.freeze;
    case 'partition':
      return DOCKER_FAULTS.partition;
    case 'link-flap':
      return DOCKER_FAULTS['link-flap'];
    case 'leave':
    case 'join': {
      const s = ref ? composeStrategy(ref) : undefined;
      if (s?.svc.real?.honoursExcludeLabel && s.svc.traits.bgp) {
        return {
          how: 'kubectl label node <n> node.kubernetes.io/exclude-from-external-load-balancers= — MetalLB (≥ 0.13.4) withdraws the node’s announcements gracefully (join: remove the label)',
          restore: 'remove the label',
        };
      }
      return { unsupported: `${p} on docker needs a BGP Service mechanism whose speakers honour node.kubernetes.io/exclude-from-external-load-balancers (a per-node graceful withdraw the lab can trigger from outside); ${ref?.svc ?? 'this strategy'} has none` };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// prerequisites

/** Kernel modules loaded on the host (`/proc/modules`, or `/sys/module/<m>` for built-ins). */
export function loadedModules(names: string[], procModules?: string): string[] {
  let text = procModules;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/modules', 'utf8');
    } catch {
      text = '';
    }
  }
  return names.filter((m) => new RegExp(`^${m}\\s`, 'm').test(text!) || (procModules === undefined && existsSync(`/sys/module/${m}`)));
}

/**
 * Kernel modules the lab's strategies need on the HOST: Talos in a container shares the host's
 * kernel and cannot load modules into it (kube-vip's lb_enable programs IPVS: pkg/loadbalancer/
 * ipvs.go needs ip_vs). Asked from the roles (RealSupport.hostModules).
 */
export function hostModulesNeeded(lab: Lab): { module: string; why: string }[] {
  const out = new Map<string, string>();
  for (const ref of lab.strategies) {
    const s = composeStrategy(ref);
    for (const role of [s.cp, s.svc]) for (const m of role.real?.hostModules?.(ref) ?? []) if (!out.has(m)) out.set(m, `${ref.id} (${role.title})`);
  }
  return [...out].map(([module, why]) => ({ module, why }));
}

export async function dockerCheck(lab: Lab): Promise<void> {
  const t = lab.topology;
  if (process.platform !== 'linux') {
    throw new PrerequisiteError(
      `the docker provider needs a Linux host (this is ${process.platform}): it reaches the Talos containers on their bridge addresses, which Docker Desktop hides in its VM, and Talos documents that VIPs do not work on Docker for Mac`,
      'npm run lab -- <lab> --provider sim',
    );
  }
  const d = await connectDocker();
  const [ping, tools] = await Promise.all([pingDocker(d), talosToolsMissing(lab)]);
  const missing: { what: string; fix: string }[] = [];
  if (!ping.ok) {
    if (ping.permission) missing.push({ what: `Docker daemon refuses this user (${ping.why})`, fix: 'sudo usermod -aG docker "$USER" && newgrp docker' });
    else missing.push({ what: `Docker daemon not reachable (${process.env.DOCKER_HOST || '/var/run/docker.sock'}: ${ping.why})`, fix: 'sudo systemctl start docker   (without systemd: sudo dockerd &)' });
  }
  missing.push(...tools);
  const needed = hostModulesNeeded(lab);
  const have = loadedModules(needed.map((m) => m.module));
  for (const m of needed.filter((x) => !have.includes(x.module))) {
    missing.push({ what: `kernel module ${m.module} is not loaded on this host (${m.why} needs it; Talos in a container uses the host's kernel)`, fix: `sudo modprobe ${m.module}` });
  }
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

export interface DockerProviderOptions {
  /** how long a node's graceful shutdown may take before restore stops it (default 2 min) */
  shutdownExitWaitMs?: number;
  /** pause between retries of talosctl/kubectl steps (default 3 s) */
  retryIntervalMs?: number;
  /** the appliance: `offline: true` skips the registry probe (ensureApplianceImage) */
  applianceOffline?: boolean;
  /** how long the API endpoint and the Services may take to answer after apply (default 5 min) */
  readyTimeoutMs?: number;
  /** how long the client's traffic agent may take to answer its first ping (default 60 s) */
  agentReadyTimeoutMs?: number;
}

class DockerLab implements RunningLab {
  readonly provider = 'docker' as const;
  bringUpMs = 0;
  private readonly p: DockerPathSet;
  private readonly t: Topology;
  private current?: { ref: StrategyRef; files: RenderedFile[] };
  private readonly daemons: { host: string; pid: string }[] = [];
  private cni: 'flannel' | 'cilium';
  private healthy = false;
  private readonly injected = new Map<string, Primitive>();
  private readonly say: (m: string) => void;
  private readonly cluster: TalosCluster;
  private readonly faults: DockerFaults;
  private applianceImage: string;
  private apiVersion?: string;

  constructor(
    readonly lab: Lab,
    private readonly ctx: UpContext,
    private readonly d: Docker,
    private plan: DockerPlan,
    private readonly o: DockerProviderOptions,
  ) {
    this.t = lab.topology;
    this.p = dockerPaths(join(ctx.state.dir, 'docker'), ctx.state.dir);
    this.cni = plan.cni;
    this.say = (m) => ctx.progress?.(m);
    this.applianceImage = plan.images.appliance;
    this.cluster = new TalosCluster({ lab, paths: this.p, profile: DOCKER_PROFILE, signal: ctx.signal, say: this.say, retryIntervalMs: o.retryIntervalMs });
    this.faults = new DockerFaults({
      docker: d,
      container: (h) => this.cname(h),
      helperImage: () => this.applianceImage,
      labels: { 'tlab.id': plan.labId },
      record: (name) => this.state.record({ kind: 'container', name }),
      apiVersion: () => this.apiVersion,
      signal: ctx.signal,
      say: this.say,
    });
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
  private host(name: string): Host {
    const h = allHosts(this.t).find((x) => x.name === name);
    if (!h) throw new LabError(`unknown host '${name}'`);
    return h;
  }
  private cname(host: string) {
    return containerName(this.prefix, host);
  }

  // ---- bring-up -------------------------------------------------------------------------
  async bringUp(): Promise<void> {
    const t0 = now();
    const p = this.p;
    for (const dir of [p.talos, p.patches, p.nodes, dirname(p.routerConf('x')), p.agents, p.events, dirname(p.caFile)]) mkdirSync(dir, { recursive: true });
    this.apiVersion = (await this.d.version()).ApiVersion;
    await this.ensureAppliance();
    for (const n of this.plan.networks) {
      this.say(`docker: network ${n.name} ${n.options.IPAM?.Config?.[0]?.Subnet}`);
      this.state.record({ kind: 'network', name: n.name });
      await this.d.createNetwork(n.options);
    }
    // the routers' first frr.conf (the first strategy's; bind-mounted, rewritten in place at apply)
    for (const [r, conf] of Object.entries(this.plan.routers)) writeFileSync(p.routerConf(r), conf);
    for (const c of this.plan.containers.filter((x) => x.kind !== 'talos')) await this.createContainer(withImage(c, this.applianceImage));
    await this.buildCluster(this.lab.strategies[0]!);
    // one traffic agent per client for the whole run, as the sim does (src/providers/kinds/emulated/lab.ts)
    for (const c of this.t.clients) await this.startAgent(c.name);
    this.bringUpMs = now() - t0;
  }

  /** the pinned appliance (./appliance.ts), built once and reused by its hash; TLAB_APPLIANCE_IMAGE names a ready one */
  private async ensureAppliance(): Promise<void> {
    if (!this.plan.images.applianceBuilt) {
      try {
        await this.d.getImage(this.plan.images.appliance).inspect();
      } catch {
        throw new PrerequisiteError(`image ${this.plan.images.appliance} (TLAB_APPLIANCE_IMAGE) is not present`, `docker pull ${this.plan.images.appliance}`);
      }
      return;
    }
    const img = await ensureApplianceImage(this.d, { offline: this.o.applianceOffline, log: this.say, signal: this.ctx.signal });
    this.applianceImage = img.image;
  }

  private async createContainer(c: ContainerPlan, options = c.options): Promise<void> {
    this.say(`docker: container ${c.name}`);
    const { availableParallelism } = await import('node:os');
    const cpus = availableParallelism() * 1e9;
    if ((options.HostConfig?.NanoCpus ?? 0) > cpus) options = { ...options, HostConfig: { ...options.HostConfig, NanoCpus: cpus } };
    this.state.record({ kind: 'container', name: c.name, host: c.host });
    await createAndStart(this.d, c, { apiVersion: this.apiVersion, options });
  }

  /** Generate the Talos configs for `ref`, create the Talos containers, bootstrap once, wait until every node is there. */
  private async buildCluster(ref: StrategyRef): Promise<void> {
    const p = this.p;
    if (ref.id !== this.plan.initialStrategy) this.plan = buildDockerPlan({ ...this.lab, strategies: [ref, ...this.lab.strategies.filter((s) => s.id !== ref.id)] }, { prefix: this.prefix, paths: p });
    this.cni = this.plan.cni;
    this.healthy = false;
    await this.cluster.generate(ref, this.plan.clusterName, nodeGroups(this.plan));
    for (const c of this.plan.containers.filter((x): x is TalosContainerPlan => x.kind === 'talos')) {
      await this.createContainer(c, withUserdata(c.options, readFileSync(join(p.nodes, `${this.plan.talos.nodeGroup[c.host]}.yaml`), 'utf8')));
    }
    await this.cluster.bootstrap();
    await this.cluster.kubeconfig(p.caFile);
    this.say('kubernetes: waiting until every node has registered');
    await this.cluster.waitRegistered();
    if (this.cni !== 'cilium') {
      await this.cluster.waitHealthy();
      this.healthy = true;
    }
  }

  private async destroyCluster(): Promise<void> {
    const talos = this.plan.containers.filter((x) => x.kind === 'talos');
    await Promise.all(talos.map((c) => stopContainer(this.d, c.name, TALOS_STOP_GRACE_S)));
    for (const c of talos) await removeContainer(this.d, c.name);
  }

  // ---- RunningLab -------------------------------------------------------------------------
  async components(): Promise<Record<string, string>> {
    const out: Record<string, string> = { ...this.cluster.versions(this.current?.ref), 'talos image': this.plan.images.talos, appliance: this.applianceImage };
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
    const { dir, liveDir } = strategyDirs(this.p, ref);
    const files = runtimeStrategyFiles(t, ref, DOCKER_PROFILE);
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
    this.current = { ref, files };
    await this.cluster.apply(ref, files, { dir, liveDir });
    if (!this.healthy) {
      // the CNI came with this strategy (Cilium): now every node can become Ready
      await this.cluster.waitHealthy();
      this.healthy = true;
    }
    await this.waitReady(ref, files);
  }

  private async waitReady(ref: StrategyRef, files: RenderedFile[]): Promise<void> {
    const t = this.t;
    const client = t.clients[0];
    if (!client) return;
    const host = apiEndpoint(t, composeStrategy(ref).cp);
    const timeout = this.o.readyTimeoutMs ?? 5 * 60_000;
    await this.cluster.retry('API endpoint /readyz', host, timeout, async () => {
      const r = await dockerExec(this.d, this.cname(client.name), ['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '3', '--cacert', this.p.caFile, `https://${host}:${t.apiPort}/readyz`]);
      if (r.stdout.trim() !== '200') throw new Error(`HTTP ${r.stdout.trim() || r.stderr.trim()}`);
    });
    const rendered = renderedServiceNames(files);
    for (const s of t.services) {
      if (!rendered.has(s.name)) {
        this.say(`${ref.id}: no Service '${s.name}' among the rendered manifests — its target cannot be measured on docker`);
        continue;
      }
      await this.cluster.retry(`Service ${s.name}`, `${s.ip}:${s.port}`, timeout, async () => {
        const r = await dockerExec(this.d, this.cname(client.name), ['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '3', `http://${s.ip}:${s.port}/`]);
        if (r.stdout.trim() !== '200') throw new Error(`HTTP ${r.stdout.trim() || r.stderr.trim()}`);
      });
    }
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

  /**
   * The client's traffic agent, run in the client container as the INVOKING user (uid:gid of this
   * process): its RPC socket, events and logs in the bind-mounted lab state then belong to that
   * user — a root agent's socket (root, 0755) refuses a user of the docker group (connect(2) on a
   * unix socket needs write permission on it).
   */
  private async startAgent(host: string): Promise<void> {
    const spec = this.clientAgentSpec(host, [{ kind: 'traffic', config: {} }]);
    const specFile = join(this.p.agents, `${host}.json`);
    writeFileSync(specFile, JSON.stringify(spec, null, 2));
    await launchAgent(this.d, this.cname(host), specFile, { pidFile: join(this.p.agents, `${host}.pid`), logFile: join(this.p.agents, `${host}.log`), user: agentUser() });
    const { call } = await import('../../../emulation/agent/rpc.js');
    await this.cluster.retry('traffic agent', host, this.o.agentReadyTimeoutMs ?? 60_000, () => call(spec.socket, 'ping', null, 2000));
  }

  private async stopAgents(): Promise<void> {
    for (const c of this.t.clients) {
      const pid = join(this.p.agents, `${c.name}.pid`);
      if (!existsSync(pid)) continue;
      await dockerExec(this.d, this.cname(c.name), ['sh', '-c', `kill -TERM $(cat ${pid}) 2>/dev/null; for i in $(seq 50); do kill -0 $(cat ${pid}) 2>/dev/null || exit 0; sleep 0.1; done; kill -KILL $(cat ${pid})`]).catch(() => null);
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
    const { dir, liveDir } = strategyDirs(this.p, ref);
    const files = this.current?.files ?? runtimeStrategyFiles(this.t, ref, DOCKER_PROFILE);
    await this.cluster.unapply(ref, files, { dir, liveDir });
    for (const d of this.daemons.splice(0)) await dockerExec(this.d, this.cname(d.host), ['sh', '-c', `kill $(cat ${d.pid} 2>/dev/null) 2>/dev/null; rm -f ${d.pid}`]).catch(() => null);
    this.current = undefined;
  }

  async holders(target: Target): Promise<string[]> {
    const ref = this.current?.ref;
    if (!ref) return [];
    return this.cluster.holders(ref, target, strategyDirs(this.p, ref).dir, {
      address: (ip, among) => this.cluster.addressHolders(ip, among.filter((n) => !['crash', 'shutdown'].includes(this.injected.get(n.name) ?? ''))),
      routes: (prefix) => this.routeHolders(prefix),
    });
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
    const m = dockerPrimitive(primitive, this.current?.ref);
    if ('unsupported' in m) throw new LabError(`unsupported on docker: ${m.unsupported}`);
    const shell = h.kind !== 'node';
    this.injected.set(host, primitive);
    switch (primitive) {
      case 'shutdown':
        if (h.kind === 'node') {
          await this.cluster.talosctl(['--nodes', h.ip, '--endpoints', h.ip, 'shutdown', '--wait=false'], 60_000).catch(async (e) => {
            this.say(`talosctl shutdown ${host} failed (${(e as Error).message.split('\n')[0]}): docker stop instead`);
            await this.faults.stop(host, TALOS_STOP_GRACE_S);
          });
        } else await this.faults.stop(host, 10);
        return;
      case 'crash':
        return this.faults.crash(host);
      case 'freeze':
        return this.faults.freeze(host);
      case 'partition':
        return this.faults.partition(host, h.interfaces[0]!.ifname, shell);
      case 'link-flap': {
        const i = h.interfaces[0]!;
        await this.faults.linkFlap(host, networkName(this.prefix, i.segment), i.ip, i.ifname, opts.downMs ?? 2000, shell);
        this.injected.delete(host);
        return;
      }
      case 'leave':
        await this.cluster.kubectl(['label', '--overwrite', 'node', host, 'node.kubernetes.io/exclude-from-external-load-balancers=']);
        return;
      case 'join':
        await this.cluster.kubectl(['label', 'node', host, 'node.kubernetes.io/exclude-from-external-load-balancers-']);
        this.injected.delete(host);
        return;
    }
  }

  async restore(host: string): Promise<void> {
    const what = this.injected.get(host);
    if (!what) return;
    const shell = this.host(host).kind !== 'node';
    switch (what) {
      case 'shutdown':
        await this.faults.startAgain(host, this.o.shutdownExitWaitMs ?? 120_000);
        break;
      case 'crash':
        await this.faults.startAgain(host, 10_000);
        break;
      case 'freeze':
        await this.faults.thaw(host);
        break;
      case 'partition':
        await this.faults.heal(host, shell);
        break;
      case 'leave':
        await this.cluster.kubectl(['label', 'node', host, 'node.kubernetes.io/exclude-from-external-load-balancers-']);
        break;
      default:
        break;
    }
    this.injected.delete(host);
  }

  async setGarpIgnored(on: boolean): Promise<void> {
    for (const r of this.t.routers.filter((x) => x.nodeSegments.length || x.role === 'single')) {
      await this.faults.nft(r.name, on ? garpIgnoreNft(this.t) : GARP_UNDO, true).catch((e) => {
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

  /** agents stopped, every container stopped gracefully (in parallel), then removed with the networks from the lab state */
  async down(): Promise<void> {
    await this.stopAgents().catch(() => null);
    for (const [host, what] of this.injected) if (what === 'freeze') await this.faults.thaw(host).catch(() => null);
    const grace = (c: DockerContainerPlan) => (c.kind === 'talos' ? TALOS_STOP_GRACE_S : 10);
    await Promise.all(this.plan.containers.map((c) => stopContainer(this.d, c.name, grace(c)).catch((e) => this.say(`stop ${c.name}: ${(e as Error).message}`))));
    const { cleanLab } = await import('../../../state/clean.js');
    const r = await cleanLab(this.state);
    if (r.errors.length) throw new LabError(`docker teardown of ${this.prefix} left errors:\n${r.errors.join('\n')}`);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.down();
  }
}

/** uid:gid of this process (the agent in the client container runs as the invoking user). */
export function agentUser(): string {
  return `${process.getuid?.() ?? 0}:${process.getgid?.() ?? 0}`;
}

/**
 * Start the lab's agent (`src/emulation/agent/main.ts <spec>`) in a container, detached, as
 * `user` (uid:gid): its pid to `pidFile`, its output to `logFile`. The files and the spec's socket
 * live in a directory bind-mounted at the same path, so a caller on the host reaches the socket.
 */
export async function launchAgent(d: Docker, container: string, specFile: string, o: { pidFile: string; logFile: string; user: string }): Promise<void> {
  await dockerExecDetached(d, container, ['sh', '-c', `echo $$ > ${quote([o.pidFile])}; cd ${quote([REPO_ROOT])} && exec node ${AGENT_NODE_FLAGS.join(' ')} --import tsx src/emulation/agent/main.ts ${quote([specFile])} >> ${quote([o.logFile])} 2>&1`], { user: o.user });
}

// ---------------------------------------------------------------------------------------------
// the provider

export type DockerProvider = Provider & { supportsDrill(primitive: Primitive, strategy: StrategyRef): Support };

export function createDockerProvider(o: DockerProviderOptions = {}): DockerProvider {
  return {
    name: 'docker',
    emulated: false,
    nodes: 'talos',
    // one Talos cluster per machine: the lab's subnets on Docker networks overlap between instances (Docker refuses them)
    maxInstances: 1,
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
      const running = new DockerLab(lab, ctx, d, plan, o);
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
        const files = runtimeStrategyFiles(lab.topology, ref, DOCKER_PROFILE);
        // the rendered files are where `--dry-run --render` writes them (src/orchestrator/engine.ts: <renderDir>/<strategy>/)
        const dir = renderDir ? join(renderDir, ref.id) : strategyDirs(paths, ref).dir;
        const liveDir = renderDir ? join(renderDir, 'docker', 'live', ref.id) : strategyDirs(paths, ref).liveDir;
        const cmds = strategyApplyCommands(lab, ref, paths, files, dir, { profile: DOCKER_PROFILE, liveDir });
        const undo = strategyUnapplyCommands(lab, ref, paths, files, dir, { profile: DOCKER_PROFILE, liveDir });
        const cni = clusterCni(composeStrategy(ref));
        if (support.supported) {
          steps.push(
            ...(cni !== prevCni ? [{ what: `${ref.id}: needs ${cni} as the CNI: the Talos nodes are rebuilt for it (configs regenerated, bootstrap again)` }] : []),
            ...stepsFromCommands(`apply ${ref.id}`, cmds),
            ...(cni === 'cilium' ? stepsFromCommands(`${ref.id}: every node Ready once the CNI is there`, [healthCommand(paths, lab.topology.nodes)]) : []),
            ...strategyContainerSteps(lab, ref, files, plan, paths),
            ...stepsFromCommands(`unapply ${ref.id}`, undo),
          );
          prevCni = cni;
          if (renderDir) {
            const { livePatchCalls, writeFiles } = await import('../../kinds/talos/cluster.js');
            for (const phase of ['apply', 'unapply'] as const) for (const c of livePatchCalls(lab, files, dir, phase, { profile: DOCKER_PROFILE, liveDir })) writeFiles(liveDir, c.files.filter((f) => f.path.startsWith(liveDir)));
          }
        } else {
          steps.push({ what: `${ref.id}: unsupported on docker — ${support.reason}` });
        }
        perStrategy[ref.id] = { ...support, commands: cmds.map(quote) } as never;
      }
      steps.push({ what: 'down: stop every container gracefully, remove it (with its anonymous volumes) and the networks, then sweep by name prefix', command: `npm run cli -- down ${id}` });
      if (renderDir) writeDockerPlan(plan, steps, renderDir, { strategies: perStrategy });
      return steps;
    },
  };
}

export const dockerProvider: DockerProvider = createDockerProvider();
