/**
 * qemu provider — real Talos VMs through talosctl's own qemu provisioner (Linux + KVM, root).
 *
 *  - Talos ≤ 1.11: `talosctl cluster create --provisioner qemu …` with `--config-patch`,
 *    `--config-patch-control-plane`, `--config-patch-worker`, and the boot artefacts given
 *    explicitly: `--vmlinuz-path` / `--initrd-path` default to `_out/vmlinuz-${ARCH}` and
 *    `_out/initramfs-${ARCH}.xz` RELATIVE TO THE WORKING DIRECTORY (create/command.go@v1.11.6,
 *    pkg/machinery/gendata/data/artifacts = "_out"), which a user of this lab never has: the lab
 *    passes the release's `vmlinuz-<arch>` and `initramfs-<arch>.xz`, downloaded once (with their
 *    sha256 from the release's sha256sum.txt) into a cache;
 *  - Talos ≥ 1.12: `talosctl cluster create qemu …` with `--config-patch-controlplanes`,
 *    `--config-patch-workers` (cmd/talosctl/cmd/mgmt/cluster/create/cmd.go flag names); it boots
 *    the `iso` preset from the Image Factory for `--talos-version` (cmd_qemu.go@v1.12.11/@v1.13.9).
 * Everything after the VMs exist — kubeconfig, waiting for every node, a strategy's live patches
 * and manifests, holders — is the Talos kind's (src/providers/kinds/talos/cluster.ts), shared with
 * docker.
 * Both keep several control planes and one bridge network (`--cidr`) whose gateway is the host,
 * where talosctl also runs DHCP and a TCP load balancer over the control planes
 * (pkg/provision/providers/qemu/qemu.go: "QEMU provisioner always runs TCP loadbalancer on the
 * bridge IP and port 6443"). Nodes get the addresses from the 2nd of the CIDR upwards, control
 * planes first (talos.dev: nodes 10.5.0.2, 10.5.0.3 for the default 10.5.0.0/24).
 *
 * The native VIP: the lab's own VIP patch (the topology's address), not `--use-vip`, which puts
 * talosctl's VIP on the 50th address of the CIDR (create.go `vipOffset`) — so the flag is used only
 * when the topology's VIP IS that address. talosctl's qemu network selects the NIC by driver
 * (≤ 1.11 `deviceSelector: {driver: virtio_net}`; ≥ 1.12 a LinkAliasConfig `net0`), so the VIP
 * patch names the link that way instead of the topology's `eth0`.
 *
 * What qemu cannot do here (supports() and the drill mapping say so, with the reason):
 *  - BGP: talosctl's network has no router — its gateway is the host bridge — and the lab never
 *    runs a BGP speaker in the host's root namespace; MetalLB BGP, Cilium BGP and kube-vip BGP
 *    are unsupported on qemu (use docker or sim);
 *  - the external HAProxy box and racks behind ToR routers (one bridge, no extra hosts);
 *  - clients behind a router: the client is the host, on the nodes' own L2 segment;
 *  - partitions and link flaps (they would change links in the host's root namespace), sticky-ARP
 *    routers, and powering a single node back on after a shutdown or crash (talosctl has no
 *    command for that): only `freeze` (SIGSTOP of the VM's qemu process) is offered — and unlike
 *    the sim and docker, a frozen VM's kernel does NOT answer ARP any more.
 */
import { accessSync, constants as fsc, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Lab, StrategyRef, Target, Topology } from '../../../model/types.js';
import type { Artifacts, RenderedFile } from '../../../strategies/types.js';
import type { AgentEvent } from '../../../emulation/agent/types.js';
import type { PlanStep, Primitive, Provider, RunningLab, Support, UpContext } from '../../types.js';
import { stateRoot } from '../../../state/state.js';
import { REPO_ROOT } from '../../../model/load.js';
import { LabError, PrerequisiteError, ReadinessError } from '../../../util/errors.js';
import { isAlive, now, pidStartTime, quote, run, sleep, spawnDaemon } from '../../../util/proc.js';
import { TALOS_PATCH } from '../../kinds/talos/files.js';
import { relinkPatch, toYamlDocs, usesNetworkDocuments, type VipLink } from '../../kinds/talos/machine-config.js';
import {
  TalosCluster,
  clusterPatchPlans,
  healthCommand,
  kubeconfigCommand,
  prerequisites,
  runtimeStrategyFiles,
  stepsFromCommands,
  strategyApplyCommands,
  strategyDirs,
  strategyUnapplyCommands,
  talosPaths,
  talosReleaseUrl,
  talosToolsMissing,
  writeFiles,
  type TalosPatchPlan,
  type TalosPaths,
} from '../../kinds/talos/cluster.js';
import type { SequenceProfile } from '../../kinds/talos/sequence.js';
import { clusterCni, composeStrategy } from '../../../strategies/compose.js';
import { AGENT_NODE_FLAGS } from '../../gear/agent-bundle.js';

/** talosctl create.go: `vipOffset` — `--use-vip` puts the VIP on this address of the CIDR (e.g. 192.168.0.50) */
export const TALOSCTL_VIP_OFFSET = 50;
/** talosctl numbers the nodes from the 2nd address of the CIDR (the 1st is the host bridge) */
export const TALOSCTL_NODES_OFFSET = 2;

const ip2n = (ip: string) => ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
const n2ip = (n: number) => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
const cidrBase = (cidr: string) => {
  const [ip, len] = cidr.split('/');
  const size = 2 ** (32 - Number(len));
  return { base: Math.floor(ip2n(ip!) / size) * size, size };
};

function lan(t: Topology) {
  return t.segments.filter((s) => s.kind === 'lan');
}

/** The address talosctl gives each topology node: control planes first, from the 2nd address of the LAN. */
export function qemuNodeIps(t: Topology): Record<string, string> {
  const { base } = cidrBase(lan(t)[0]!.cidr);
  const order = [...t.nodes.filter((n) => n.role === 'controlplane'), ...t.nodes.filter((n) => n.role === 'worker')];
  return Object.fromEntries(order.map((n, i) => [n.name, n2ip(base + TALOSCTL_NODES_OFFSET + i)]));
}

/** The topology with the node addresses talosctl hands out (what the Talos kind's commands then use). */
export function qemuTopology(t: Topology): Topology {
  const ips = qemuNodeIps(t);
  return { ...t, nodes: t.nodes.map((n) => ({ ...n, ip: ips[n.name]!, interfaces: n.interfaces.map((i, k) => (k === 0 ? { ...i, ip: ips[n.name]! } : i)) })) };
}
const qemuLab = (lab: Lab): Lab => ({ ...lab, topology: qemuTopology(lab.topology) });

export function qemuVipLink(version: string): VipLink | string {
  return usesNetworkDocuments(version) ? 'net0' : { deviceSelector: { driver: 'virtio_net' } };
}

/**
 * What talosctl's qemu provisioner puts in every node's config for its NIC (pkg/provision/
 * providers/qemu/qemu.go GenOptions): ≤ 1.11 a `machine.network.interfaces` entry chosen by
 * `deviceSelector: {driver: virtio_net}` with DHCP (v1.11.6); ≥ 1.12 a LinkAliasConfig `net0`
 * (selector `link.driver == "virtio_net"`) and a DHCPv4Config for it (v1.12.11, v1.13.9).
 */
export function qemuNodeInterfaces(version: string): Record<string, unknown>[] {
  return usesNetworkDocuments(version) ? [] : [{ deviceSelector: { driver: 'virtio_net' }, dhcp: true, dhcpOptions: { ipv4: true, ipv6: false } }];
}
export function qemuNodeConfigDocs(version: string): Record<string, unknown>[] {
  if (!usesNetworkDocuments(version)) return [{ machine: { network: { interfaces: qemuNodeInterfaces(version) } } }];
  return [
    { apiVersion: 'v1alpha1', kind: 'LinkAliasConfig', name: 'net0', selector: { match: 'link.driver == "virtio_net"' } },
    { apiVersion: 'v1alpha1', kind: 'DHCPv4Config', name: 'net0' },
  ];
}

/** The topology's LAN link (`eth0`) as talosctl's qemu VMs name it. */
function qemuRelink(t: Topology, f: RenderedFile): RenderedFile {
  if (f.kind !== 'talos-patch') return f;
  const from = t.nodes[0]?.interfaces[0]?.ifname ?? 'eth0';
  return { ...f, content: relinkPatch(f.content, from, qemuVipLink(t.talos.version)) };
}

/** How qemu delivers the Talos kind's files: without the container-mode patch, links named the way talosctl's VMs name them. */
export const QEMU_PROFILE: SequenceProfile = {
  name: 'qemu',
  adapt: (t, f) => (f.path === TALOS_PATCH.containerMode ? null : qemuRelink(t, f)),
  nodeInterfaces: (t) => qemuNodeInterfaces(t.talos.version),
  nodeConfigPatch: (t) => toYamlDocs(qemuNodeConfigDocs(t.talos.version), ['what talosctl\'s qemu provisioner adds for the VM\'s NIC (qemu.go GenOptions)']),
};

export function qemuSupports(strategy: StrategyRef, lab: Lab): Support {
  const t = lab.topology;
  if (lan(t).length !== 1) {
    return { supported: false, reason: `talosctl's qemu provisioner builds one bridge network; the ${lan(t).length} LANs behind ToR routers of ${t.name} cannot be reproduced (use docker or sim)` };
  }
  const st = composeStrategy(strategy);
  if (st.cp.traits.bgp || st.svc.traits.bgp) {
    return {
      supported: false,
      reason: `${strategy.id} needs a BGP router: talosctl's qemu network has none (its gateway is the host bridge with talosctl's DHCP and load balancer) and the lab never runs a BGP speaker in the host's root namespace (use docker or sim)`,
    };
  }
  if (st.cp.traits.endpoint === 'lb-host') {
    return { supported: false, reason: 'no external load-balancer host on talosctl’s qemu network (talosctl’s own TCP load balancer on the bridge is not HAProxy and has none of the lab’s health-check settings)' };
  }
  const ips = Object.values(qemuNodeIps(t));
  const pool = cidrBase(t.pool.cidr);
  const clash = ips.find((ip) => ip === t.vip || (ip2n(ip) >= pool.base && ip2n(ip) < pool.base + pool.size));
  if (clash) return { supported: false, reason: `talosctl numbers the qemu nodes from the 2nd address of ${lan(t)[0]!.cidr}; node address ${clash} collides with the VIP or the Service pool` };
  return { supported: true };
}

export function qemuPrimitive(p: Primitive): { how: string; restore: string } | { unsupported: string } {
  switch (p) {
    case 'freeze':
      return { how: 'SIGSTOP of the node’s qemu process: the whole VM stops (its kernel does not answer ARP either, unlike sim/docker freeze)', restore: 'SIGCONT' };
    case 'shutdown':
    case 'crash':
      return { unsupported: `${p} on qemu: talosctl has no command to power a single qemu node back on, so the drill could not be restored` };
    case 'partition':
    case 'link-flap':
      return { unsupported: `${p} on qemu: the VMs' tap links live in the host's root namespace, which the lab never changes` };
    case 'leave':
    case 'join':
      return { unsupported: `${p} on qemu: no BGP on talosctl's qemu network` };
  }
}

// ---------------------------------------------------------------------------------------------
// commands

export interface QemuPaths extends TalosPaths {
  /** talosctl's cluster state (`--state`) */
  state: string;
}

export function qemuPaths(base: string): QemuPaths {
  return { ...talosPaths(base), state: join(base, 'clusters'), talosconfig: join(base, 'talosconfig'), patches: join(base, 'patches') };
}

/** Talos ≤ 1.11 boot artefacts of the release, cached per version (`$XDG_CACHE_HOME/talos-ha-lab/talos/<version>`). */
export function talosAssetsDir(version: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(env.TLAB_TALOS_ASSETS || join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'talos-ha-lab', 'talos'), version);
}
const archName = () => (process.arch === 'arm64' ? 'arm64' : 'amd64');
export function talosBootAssets(version: string, env: NodeJS.ProcessEnv = process.env): { vmlinuz: string; initramfs: string } {
  const dir = talosAssetsDir(version, env);
  return { vmlinuz: join(dir, `vmlinuz-${archName()}`), initramfs: join(dir, `initramfs-${archName()}.xz`) };
}
/** Download the release's kernel and initramfs, checked against the release's sha256sum.txt. */
export function talosBootAssetsInstall(version: string, env: NodeJS.ProcessEnv = process.env): string {
  const dir = talosAssetsDir(version, env);
  const url = talosReleaseUrl(version);
  return `mkdir -p ${dir} && (cd ${dir} && curl -fsSLO ${url}/vmlinuz-${archName()} && curl -fsSLO ${url}/initramfs-${archName()}.xz && curl -fsSLO ${url}/sha256sum.txt && sha256sum --ignore-missing -c sha256sum.txt)`;
}

export type QemuPatch = TalosPatchPlan;

/** The cluster-wide patches for qemu: the Talos kind's for the strategy, without the container-mode patch, on talosctl's link name. */
export function qemuPatches(t: Topology, ref: StrategyRef): QemuPatch[] {
  return clusterPatchPlans(t, ref, QEMU_PROFILE);
}

/** Write a strategy's files for qemu into `dir`: every Talos patch re-linked to talosctl's NIC, the container-mode patch left out. */
export function writeQemuStrategyFiles(t: Topology, dir: string, files: RenderedFile[]): RenderedFile[] {
  const out = files.flatMap((f) => QEMU_PROFILE.adapt(t, f) ?? []);
  writeFiles(dir, out);
  return out;
}

export function qemuCreateCommand(lab: Lab, clusterName: string, p: QemuPaths, ref: StrategyRef, env: NodeJS.ProcessEnv = process.env): string[] {
  const t = lab.topology;
  const cps = t.nodes.filter((n) => n.role === 'controlplane').length;
  const workers = t.nodes.length - cps;
  const split = usesNetworkDocuments(t.talos.version);
  const patches = qemuPatches(t, ref);
  const flag = { all: '--config-patch', controlplane: split ? '--config-patch-controlplanes' : '--config-patch-control-plane', worker: split ? '--config-patch-workers' : '--config-patch-worker' };
  const common = [
    '--name', clusterName, '--state', p.state,
    '--controlplanes', String(cps), '--workers', String(workers),
    '--cidr', lan(t)[0]!.cidr,
    '--talos-version', t.talos.version, '--kubernetes-version', t.talos.kubernetesVersion,
    ...patches.flatMap((x) => [flag[x.scope], `@${join(p.patches, x.file)}`]),
  ];
  if (split) return ['talosctl', 'cluster', 'create', 'qemu', ...common, '--talosconfig-destination', p.talosconfig];
  const boot = talosBootAssets(t.talos.version, env);
  return [
    'talosctl', '--talosconfig', p.talosconfig, 'cluster', 'create', '--provisioner', 'qemu', ...common,
    '--vmlinuz-path', boot.vmlinuz, '--initrd-path', boot.initramfs,
    '--skip-kubeconfig', '--wait', '--wait-timeout', '20m',
  ];
}

export function qemuDestroyCommand(lab: Lab, clusterName: string, p: QemuPaths): string[] {
  const split = usesNetworkDocuments(lab.topology.talos.version);
  return ['talosctl', 'cluster', 'destroy', '--name', clusterName, '--state', p.state, ...(split ? [] : ['--provisioner', 'qemu'])];
}

export function qemuKubeconfigCommand(lab: Lab, p: QemuPaths): string[] {
  return kubeconfigCommand(p, qemuNodeIps(lab.topology)[lab.topology.nodes.find((n) => n.role === 'controlplane')!.name]!);
}

// ---------------------------------------------------------------------------------------------
// prerequisites

export async function qemuCheck(lab: Lab): Promise<void> {
  const missing: { what: string; fix: string }[] = [];
  if (process.platform !== 'linux') throw new PrerequisiteError(`the qemu provider needs Linux with KVM (this is ${process.platform})`, 'npm run lab -- <lab> --provider sim');
  try {
    accessSync('/dev/kvm', fsc.R_OK | fsc.W_OK);
  } catch {
    missing.push({ what: existsSync('/dev/kvm') ? '/dev/kvm is not read/writable by this user' : '/dev/kvm is missing (no KVM: nested virtualisation off, or the kvm module not loaded)', fix: 'sudo modprobe kvm_intel || sudo modprobe kvm_amd' });
  }
  // talosctl's qemu provisioner needs CAP_SYS_ADMIN and CAP_NET_ADMIN (talos docs "QEMU")
  if (process.getuid?.() !== 0) missing.push({ what: 'talosctl’s qemu provisioner needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN)', fix: 'sudo --preserve-env=HOME,PATH npm run lab -- <lab> --provider qemu' });
  missing.push(...(await talosToolsMissing(lab)));
  const has = async (cmd: string, args: string[]) => (await run(cmd, args, { reject: false, timeoutMs: 15_000 }).catch(() => null))?.exitCode === 0;
  const qemuBin = process.arch === 'arm64' ? 'qemu-system-aarch64' : 'qemu-system-x86_64';
  if (!(await has(qemuBin, ['--version']))) missing.push({ what: `${qemuBin} not found`, fix: `sudo apt-get install -y ${process.arch === 'arm64' ? 'qemu-system-arm' : 'qemu-system-x86'} qemu-utils` });
  const v = lab.topology.talos.version;
  if (!usesNetworkDocuments(v)) {
    const boot = talosBootAssets(v);
    if (!existsSync(boot.vmlinuz) || !existsSync(boot.initramfs)) {
      missing.push({ what: `Talos ${v} boot artefacts missing (${boot.vmlinuz}, ${boot.initramfs}): talosctl ≤ 1.11 would look for _out/ in the working directory`, fix: talosBootAssetsInstall(v) });
    }
  }
  if (missing.length) throw prerequisites(missing);
}

// ---------------------------------------------------------------------------------------------
// the running lab

class QemuLab implements RunningLab {
  readonly provider = 'qemu' as const;
  bringUpMs = 0;
  private current?: { ref: StrategyRef; files: RenderedFile[] };
  private readonly frozen = new Map<string, number>();
  private readonly agents = new Map<string, number>();
  private readonly cluster: TalosCluster;
  private cni: 'flannel' | 'cilium';
  private healthy = false;

  constructor(
    readonly lab: Lab,
    private readonly ctx: UpContext,
    private readonly p: QemuPaths,
  ) {
    // the Talos kind's commands with the node addresses talosctl assigns
    this.cluster = new TalosCluster({ lab: qemuLab(lab), paths: p, profile: QEMU_PROFILE, signal: ctx.signal, say: (m) => ctx.progress?.(m) });
    this.cni = clusterCni(composeStrategy(lab.strategies[0]!));
  }
  get id() {
    return this.ctx.id;
  }
  get prefix() {
    return this.ctx.prefix;
  }
  private get caFile() {
    return join(this.ctx.state.dir, 'pki', 'ca.crt');
  }

  async bringUp(): Promise<void> {
    const t0 = now();
    await this.createCluster(this.lab.strategies.find((s) => qemuSupports(s, this.lab).supported) ?? this.lab.strategies[0]!);
    for (const c of this.lab.topology.clients) await this.startAgent(c.name);
    this.bringUpMs = now() - t0;
  }

  /** talosctl creates, bootstraps and waits for the VMs; then the kubeconfig and every node registered (and healthy unless the CNI comes later) */
  private async createCluster(ref: StrategyRef): Promise<void> {
    const t = this.lab.topology;
    mkdirSync(this.p.patches, { recursive: true });
    for (const x of qemuPatches(t, ref)) writeFileSync(join(this.p.patches, x.file), x.content);
    this.ctx.state.record({ kind: 'dir', name: this.p.state });
    const create = qemuCreateCommand(this.lab, this.prefix, this.p, ref);
    this.ctx.progress?.(`qemu: ${quote(create)}`);
    await run(create[0]!, create.slice(1), { timeoutMs: 30 * 60_000, signal: this.ctx.signal, env: { ...process.env, KUBECONFIG: this.p.kubeconfig } as Record<string, string> });
    this.recordVmPids();
    this.cni = clusterCni(composeStrategy(ref));
    await this.cluster.kubeconfig(this.caFile);
    await this.cluster.waitRegistered();
    this.healthy = false;
    if (this.cni !== 'cilium') {
      await this.cluster.waitHealthy();
      this.healthy = true;
    }
  }

  /** The client is the host itself (talosctl's bridge gateway): its traffic agent runs here, in the root namespace. */
  private async startAgent(host: string): Promise<void> {
    const agents = this.ctx.state.subdir('agents');
    const spec = {
      host,
      ns: '',
      stateDir: this.ctx.state.dir,
      socket: join(agents, `${host}.sock`),
      eventsFile: join(this.ctx.state.subdir('events'), `${host}.jsonl`),
      topology: this.lab.topology,
      components: [{ kind: 'traffic', config: { caFile: this.caFile } }],
    };
    const specFile = join(agents, `${host}.json`);
    writeFileSync(specFile, JSON.stringify(spec, null, 2));
    const d = spawnDaemon({ name: `${host}/agent`, cmd: process.execPath, args: [...AGENT_NODE_FLAGS, '--import', 'tsx', join(REPO_ROOT, 'src/emulation/agent/main.ts'), specFile], logFile: join(agents, `${host}.log`), cwd: REPO_ROOT });
    this.ctx.state.record({ kind: 'pid', name: `${host}/agent`, pid: d.pid, startTime: pidStartTime(d.pid) });
    this.agents.set(host, d.pid);
    const { call } = await import('../../../emulation/agent/rpc.js');
    const until = Date.now() + 60_000;
    for (;;) {
      try {
        await call(spec.socket, 'ping', null, 2000);
        return;
      } catch (e) {
        if (Date.now() > until) throw new ReadinessError('traffic agent', host, 60_000, d.logTail(), (e as Error).message);
        await sleep(300);
      }
    }
  }

  /** talosctl writes each VM launcher's pid to <state>/<cluster>/<node>.pid; the qemu process is its child */
  private vmPids(): Map<string, number> {
    const dir = join(this.p.state, this.prefix);
    const out = new Map<string, number>();
    if (!existsSync(dir)) return out;
    for (const f of readdirSync(dir).filter((x) => x.endsWith('.pid'))) {
      const launcher = Number(readFileSync(join(dir, f), 'utf8').trim());
      if (!Number.isInteger(launcher) || !isAlive(launcher)) continue;
      let child = launcher;
      try {
        const kids = readFileSync(`/proc/${launcher}/task/${launcher}/children`, 'utf8').trim().split(/\s+/).map(Number).filter(Boolean);
        if (kids.length) child = kids[0]!;
      } catch {
        /* no children file: use the launcher */
      }
      out.set(f.replace(/\.pid$/, ''), child);
    }
    return out;
  }

  private recordVmPids(): void {
    for (const [name, pid] of this.vmPids()) this.ctx.state.record({ kind: 'pid', name: `qemu ${name}`, pid, startTime: pidStartTime(pid) });
  }

  /** talosctl names the VMs <cluster>-controlplane-N / <cluster>-worker-N in creation order */
  private vmOf(host: string): number | undefined {
    const t = this.lab.topology;
    const n = t.nodes.find((x) => x.name === host);
    if (!n) return undefined;
    const idx = t.nodes.filter((x) => x.role === n.role).indexOf(n) + 1;
    return this.vmPids().get(`${this.prefix}-${n.role === 'controlplane' ? 'controlplane' : 'worker'}-${idx}`);
  }

  async components(): Promise<Record<string, string>> {
    const v = await run('talosctl', ['version', '--client', '--short'], { reject: false }).catch(() => null);
    return { ...this.cluster.versions(this.current?.ref), talosctl: v?.stdout.trim().split('\n').pop() ?? '?' };
  }

  async apply(ref: StrategyRef, _artifacts: Artifacts): Promise<void> {
    const support = qemuSupports(ref, this.lab);
    if (!support.supported) throw new LabError(`unsupported on qemu: ${support.reason}`);
    const cni = clusterCni(composeStrategy(ref));
    if (cni !== this.cni) {
      // a cluster cannot switch its CNI in place: new VMs for this strategy
      this.ctx.progress?.(`${ref.id}: needs ${cni} as the CNI: recreating the VMs`);
      const destroy = qemuDestroyCommand(this.lab, this.prefix, this.p);
      await run(destroy[0]!, destroy.slice(1), { timeoutMs: 10 * 60_000, reject: false });
      await this.createCluster(ref);
    }
    const { dir, liveDir } = strategyDirs(this.p, ref);
    const files = runtimeStrategyFiles(this.cluster.t, ref, QEMU_PROFILE);
    this.current = { ref, files };
    await this.cluster.apply(ref, files, { dir, liveDir });
    if (!this.healthy) {
      await this.cluster.waitHealthy();
      this.healthy = true;
    }
  }

  async unapply(ref: StrategyRef): Promise<void> {
    const { dir, liveDir } = strategyDirs(this.p, ref);
    await this.cluster.unapply(ref, this.current?.files ?? runtimeStrategyFiles(this.cluster.t, ref, QEMU_PROFILE), { dir, liveDir });
    this.current = undefined;
  }

  async holders(target: Target): Promise<string[]> {
    const ref = this.current?.ref;
    if (!ref) return [];
    // qemu runs neither BGP nor a load-balancer box (qemuSupports): no routes to read
    return this.cluster.holders(ref, target, strategyDirs(this.p, ref).dir, { address: (ip, among) => this.cluster.addressHolders(ip, among), routes: async () => [] });
  }

  async inject(primitive: Primitive, host: string): Promise<void> {
    const m = qemuPrimitive(primitive);
    if ('unsupported' in m) throw new LabError(`unsupported on qemu: ${m.unsupported}`);
    const pid = this.vmOf(host);
    if (!pid) throw new LabError(`qemu: no running VM process found for ${host}`);
    process.kill(pid, 'SIGSTOP');
    this.frozen.set(host, pid);
  }

  async restore(host: string): Promise<void> {
    const pid = this.frozen.get(host);
    if (pid && isAlive(pid)) process.kill(pid, 'SIGCONT');
    this.frozen.delete(host);
  }

  async setGarpIgnored(): Promise<void> {
    throw new LabError('unsupported on qemu: there is no lab router on talosctl’s qemu network whose ARP handling could be changed (the gateway is the host)');
  }

  async call<T = unknown>(host: string, method: string, params?: unknown, timeoutMs?: number): Promise<T> {
    const { call } = await import('../../../emulation/agent/rpc.js');
    return call<T>(join(this.ctx.state.dir, 'agents', `${host}.sock`), method, params, timeoutMs);
  }

  async events(sinceT: number): Promise<AgentEvent[]> {
    const { readEvents } = await import('../../../emulation/agent/events.js');
    return readEvents(join(this.ctx.state.dir, 'events'), sinceT);
  }

  async exec(host: string, cmd: string, args: string[]): Promise<{ stdout: string; stderr: string; exitCode: number }> {
    if (!this.lab.topology.clients.some((c) => c.name === host)) throw new LabError(`exec on ${host}: Talos VMs have no shell; use talosctl (talosconfig ${this.p.talosconfig})`);
    const r = await run(cmd, args, { reject: false });
    return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode };
  }

  async down(): Promise<void> {
    for (const [, pid] of this.frozen) if (isAlive(pid)) process.kill(pid, 'SIGCONT');
    const { stopProcess } = await import('../../../util/proc.js');
    for (const pid of this.agents.values()) await stopProcess(pid);
    const destroy = qemuDestroyCommand(this.lab, this.prefix, this.p);
    await run(destroy[0]!, destroy.slice(1), { timeoutMs: 10 * 60_000, reject: false });
    const { cleanLab } = await import('../../../state/clean.js');
    const r = await cleanLab(this.ctx.state);
    if (r.errors.length) throw new LabError(`qemu teardown of ${this.prefix} left errors:\n${r.errors.join('\n')}`);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.down();
  }
}

export const qemuProvider: Provider & { supportsDrill(primitive: Primitive): Support } = {
  name: 'qemu',
  emulated: false,
  check: qemuCheck,
  supports: qemuSupports,
  supportsDrill(primitive) {
    const m = qemuPrimitive(primitive);
    return 'unsupported' in m ? { supported: false, reason: m.unsupported } : { supported: true };
  },
  async up(lab, ctx) {
    const p = qemuPaths(join(ctx.state.dir, 'qemu'));
    const running = new QemuLab(lab, ctx, p);
    try {
      await running.bringUp();
    } catch (e) {
      await running.down().catch(() => null);
      throw e;
    }
    return running;
  },
  async plan(lab, ctx) {
    const id = ctx.prefix.replace(/^tlab-/, '');
    const p = qemuPaths(ctx.renderDir ? join(ctx.renderDir, 'qemu') : join(stateRoot(), id, 'qemu'));
    const t = lab.topology;
    const first = lab.strategies.find((s) => qemuSupports(s, lab).supported) ?? lab.strategies[0]!;
    const steps: PlanStep[] = [{ what: 'check: Linux, /dev/kvm, root, talosctl, kubectl, qemu-system' + (usesNetworkDocuments(t.talos.version) ? '' : `, Talos ${t.talos.version} kernel and initramfs in ${talosAssetsDir(t.talos.version)}`) }];
    const patches = qemuPatches(t, first);
    const create = qemuCreateCommand(lab, ctx.prefix, p, first);
    steps.push({ what: `talosctl creates ${t.nodes.length} VMs on one bridge ${lan(t)[0]?.cidr} (nodes ${Object.entries(qemuNodeIps(t)).map(([n, ip]) => `${n}=${ip}`).join(' ')}) for ${first.id}`, command: quote(create) });
    steps.push({ what: 'fetch the kubeconfig through a node IP', command: quote(qemuKubeconfigCommand(lab, p)) });
    const ql = qemuLab(lab);
    steps.push(...stepsFromCommands('wait until every node is part of a healthy cluster', [healthCommand(p, ql.topology.nodes)]));
    const perStrategy: Record<string, unknown> = {};
    for (const ref of lab.strategies) {
      const s = qemuSupports(ref, lab);
      if (!s.supported) {
        steps.push({ what: `${ref.id}: unsupported on qemu — ${s.reason}` });
        perStrategy[ref.id] = s;
        continue;
      }
      // qemu's variants of the strategy's files (VIP on talosctl's NIC) under qemu/strategies/<id>/
      const { dir, liveDir } = strategyDirs(p, ref);
      const files = runtimeStrategyFiles(ql.topology, ref, QEMU_PROFILE);
      if (ctx.renderDir) writeFiles(dir, files);
      const o = { profile: QEMU_PROFILE, liveDir };
      const cmds = strategyApplyCommands(ql, ref, p, files, dir, o);
      const undo = strategyUnapplyCommands(ql, ref, p, files, dir, o);
      if (ctx.renderDir) {
        const { livePatchCalls } = await import('../../kinds/talos/cluster.js');
        for (const phase of ['apply', 'unapply'] as const) for (const c of livePatchCalls(ql, files, dir, phase, o)) writeFiles(liveDir, c.files.filter((f) => f.path.startsWith(liveDir)));
      }
      steps.push(...stepsFromCommands(`apply ${ref.id}`, cmds));
      steps.push(...stepsFromCommands(`unapply ${ref.id}`, undo));
      perStrategy[ref.id] = { supported: true, commands: cmds.map(quote) };
    }
    steps.push({ what: 'down: destroy the VMs and talosctl’s bridge', command: quote(qemuDestroyCommand(lab, ctx.prefix, p)) });
    if (ctx.renderDir) {
      mkdirSync(p.patches, { recursive: true });
      for (const x of patches) writeFileSync(join(p.patches, x.file), x.content);
      writeFileSync(
        join(p.base, 'plan.json'),
        JSON.stringify({ provider: 'qemu', prefix: ctx.prefix, talosVersion: t.talos.version, nodeIps: qemuNodeIps(t), initialStrategy: first.id, patches: patches.map((x) => ({ file: `patches/${x.file}`, scope: x.scope })), strategies: perStrategy, steps }, null, 2) + '\n',
      );
    }
    return steps;
  },
};
