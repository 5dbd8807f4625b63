/**
 * qemu provider — real Talos VMs through talosctl's own qemu provisioner (Linux + KVM, root).
 *
 *  - Talos ≤ 1.11: `talosctl cluster create --provisioner qemu …` with `--config-patch`,
 *    `--config-patch-control-plane`, `--config-patch-worker`;
 *  - Talos ≥ 1.12: `talosctl cluster create qemu …` with `--config-patch-controlplanes`,
 *    `--config-patch-workers` (cmd/talosctl/cmd/mgmt/cluster/create/cmd.go flag names).
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
import { basename, dirname, join } from 'node:path';
import type { Lab, Node, StrategyRef, Target, Topology } from '../../../model/types.js';
import type { Artifacts, RenderedFile } from '../../../strategies/types.js';
import type { AgentEvent } from '../../../emulation/agent/types.js';
import type { PlanStep, Primitive, Provider, RunningLab, Support, UpContext } from '../../types.js';
import { stateRoot } from '../../../state/state.js';
import { REPO_ROOT } from '../../../model/load.js';
import { LabError, PrerequisiteError, ReadinessError } from '../../../util/errors.js';
import { isAlive, now, pidStartTime, quote, run, sleep, spawnDaemon } from '../../../util/proc.js';
import { TALOS_PATCH, renderTalosFiles, talosStrategyFiles } from '../../kinds/talos/files.js';
import { patchScope, relinkPatch, toYamlDocs, usesNetworkDocuments, type VipLink } from '../../kinds/talos/machine-config.js';
import { composeStrategy } from '../../../strategies/compose.js';
import { dockerPaths, idOfPrefix, kubeconfigFilesPatch, prerequisites, realContext, reversePatchDocs, staticPodKubeconfigPaths, strategyApplyCommands, strategyUnapplyCommands, talosAddressHolders, talosctlInstall, kubectlInstall } from '../docker/talos.js';

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

export function qemuVipLink(version: string): VipLink | string {
  return usesNetworkDocuments(version) ? 'net0' : { deviceSelector: { driver: 'virtio_net' } };
}

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

export interface QemuPaths {
  base: string;
  state: string;
  talosconfig: string;
  kubeconfig: string;
  patches: string;
}

export function qemuPaths(base: string): QemuPaths {
  return { base, state: join(base, 'clusters'), talosconfig: join(base, 'talosconfig'), kubeconfig: join(base, 'kubeconfig'), patches: join(base, 'patches') };
}

export interface QemuPatch {
  file: string;
  scope: 'all' | 'controlplane' | 'worker';
  content: string;
}

/** The topology's LAN link (`eth0`) as talosctl's qemu VMs name it. */
function qemuRelink(t: Topology, f: RenderedFile): RenderedFile {
  if (f.kind !== 'talos-patch') return f;
  const from = t.nodes[0]?.interfaces[0]?.ifname ?? 'eth0';
  return { ...f, content: relinkPatch(f.content, from, qemuVipLink(t.talos.version)) };
}

/** The cluster-wide patches for qemu: the Talos kind's for the strategy, without the container-mode patch, on talosctl's link name. */
export function qemuPatches(t: Topology, ref: StrategyRef): QemuPatch[] {
  const out: QemuPatch[] = [];
  for (const f of renderTalosFiles(t, composeStrategy(ref)).filter((x) => x.kind === 'talos-patch')) {
    if (f.path === TALOS_PATCH.containerMode) continue;
    out.push({ file: basename(f.path), scope: patchScope(t, f), content: qemuRelink(t, f).content });
  }
  return out;
}

/** Write a strategy's files for qemu into `dir`: every Talos patch re-linked to talosctl's NIC, the container-mode patch left out. */
export function writeQemuStrategyFiles(t: Topology, dir: string, files: RenderedFile[]): RenderedFile[] {
  const out = files.filter((f) => f.path !== TALOS_PATCH.containerMode).map((f) => qemuRelink(t, f));
  for (const f of out) {
    mkdirSync(dirname(join(dir, f.path)), { recursive: true });
    writeFileSync(join(dir, f.path), f.content);
  }
  return out;
}

export function qemuCreateCommand(lab: Lab, clusterName: string, p: QemuPaths, ref: StrategyRef): string[] {
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
  return [
    'talosctl', '--talosconfig', p.talosconfig, 'cluster', 'create', '--provisioner', 'qemu', ...common,
    '--skip-kubeconfig', '--wait', '--wait-timeout', '20m',
  ];
}

export function qemuDestroyCommand(lab: Lab, clusterName: string, p: QemuPaths): string[] {
  const split = usesNetworkDocuments(lab.topology.talos.version);
  return ['talosctl', 'cluster', 'destroy', '--name', clusterName, '--state', p.state, ...(split ? [] : ['--provisioner', 'qemu'])];
}

export function qemuKubeconfigCommand(lab: Lab, p: QemuPaths): string[] {
  const cp1 = qemuNodeIps(lab.topology)[lab.topology.nodes.find((n) => n.role === 'controlplane')!.name]!;
  return ['talosctl', '--talosconfig', p.talosconfig, 'kubeconfig', p.kubeconfig, '--nodes', cp1, '--endpoints', cp1, '--force'];
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
  const has = async (cmd: string, args: string[]) => (await run(cmd, args, { reject: false, timeoutMs: 15_000 }).catch(() => null))?.exitCode === 0;
  if (!(await has('talosctl', ['version', '--client']))) missing.push({ what: 'talosctl not found in PATH', fix: talosctlInstall(lab.topology.talos.version) });
  if (!(await has('kubectl', ['version', '--client']))) missing.push({ what: 'kubectl not found in PATH', fix: kubectlInstall(lab.topology.talos.kubernetesVersion) });
  const qemuBin = process.arch === 'arm64' ? 'qemu-system-aarch64' : 'qemu-system-x86_64';
  if (!(await has(qemuBin, ['--version']))) missing.push({ what: `${qemuBin} not found`, fix: `sudo apt-get install -y ${process.arch === 'arm64' ? 'qemu-system-arm' : 'qemu-system-x86'} qemu-utils` });
  if (missing.length) throw prerequisites(missing);
}

// ---------------------------------------------------------------------------------------------
// the running lab

class QemuLab implements RunningLab {
  readonly provider = 'qemu' as const;
  bringUpMs = 0;
  private current?: { ref: StrategyRef; artifacts: Artifacts };
  private readonly frozen = new Map<string, number>();
  private readonly agents = new Map<string, number>();
  private readonly ips: Record<string, string>;

  constructor(
    readonly lab: Lab,
    private readonly ctx: UpContext,
    private readonly p: QemuPaths,
  ) {
    this.ips = qemuNodeIps(lab.topology);
  }
  get id() {
    return this.ctx.id;
  }
  get prefix() {
    return this.ctx.prefix;
  }
  /** the docker provider's command builders, with node IPs as talosctl assigned them */
  private asQemuLab(): Lab {
    const t = this.lab.topology;
    return { ...this.lab, topology: { ...t, nodes: t.nodes.map((n) => ({ ...n, ip: this.ips[n.name]! })) } };
  }

  async bringUp(): Promise<void> {
    const t0 = now();
    const t = this.lab.topology;
    const first = this.lab.strategies[0]!;
    mkdirSync(this.p.patches, { recursive: true });
    for (const x of qemuPatches(t, first)) writeFileSync(join(this.p.patches, x.file), x.content);
    this.ctx.state.record({ kind: 'dir', name: this.p.state });
    const create = qemuCreateCommand(this.lab, this.prefix, this.p, first);
    this.ctx.progress?.(`qemu: ${quote(create)}`);
    await run(create[0]!, create.slice(1), { timeoutMs: 30 * 60_000, signal: this.ctx.signal, env: { ...process.env, KUBECONFIG: this.p.kubeconfig } as Record<string, string> });
    this.recordVmPids();
    const kc = qemuKubeconfigCommand(this.lab, this.p);
    await run(kc[0]!, kc.slice(1), { timeoutMs: 120_000 });
    const ca = /certificate-authority-data:\s*(\S+)/.exec(readFileSync(this.p.kubeconfig, 'utf8'));
    if (ca) {
      mkdirSync(join(this.ctx.state.dir, 'pki'), { recursive: true });
      writeFileSync(join(this.ctx.state.dir, 'pki', 'ca.crt'), Buffer.from(ca[1]!, 'base64'));
    }
    for (const c of t.clients) await this.startAgent(c.name);
    this.bringUpMs = now() - t0;
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
      components: [{ kind: 'traffic', config: { caFile: join(this.ctx.state.dir, 'pki', 'ca.crt') } }],
    };
    const specFile = join(agents, `${host}.json`);
    writeFileSync(specFile, JSON.stringify(spec, null, 2));
    const d = spawnDaemon({ name: `${host}/agent`, cmd: process.execPath, args: ['--import', 'tsx', join(REPO_ROOT, 'src/emulation/agent/main.ts'), specFile], logFile: join(agents, `${host}.log`), cwd: REPO_ROOT });
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
    const t = this.lab.topology;
    const v = await run('talosctl', ['version', '--client', '--short'], { reject: false }).catch(() => null);
    return { talos: t.talos.version, kubernetes: t.talos.kubernetesVersion, talosctl: v?.stdout.trim().split('\n').pop() ?? '?' };
  }

  async apply(ref: StrategyRef, artifacts: Artifacts): Promise<void> {
    const support = qemuSupports(ref, this.lab);
    if (!support.supported) throw new LabError(`unsupported on qemu: ${support.reason}`);
    const t = this.lab.topology;
    const dir = join(this.p.base, 'strategies', ref.id);
    const files = writeQemuStrategyFiles(t, dir, talosStrategyFiles(t, ref));
    const kubeconfigs = staticPodKubeconfigPaths(files);
    if (kubeconfigs.length) writeFileSync(join(this.p.base, 'static-pod-kubeconfig.patch.yaml'), kubeconfigFilesPatch(kubeconfigs, readFileSync(this.p.kubeconfig, 'utf8'), t.apiPort));
    const paths = { ...dockerPaths(this.p.base, this.ctx.state.dir), talosconfig: this.p.talosconfig, kubeconfig: this.p.kubeconfig };
    for (const cmd of strategyApplyCommands(this.asQemuLab(), ref, paths, files, dir)) {
      const deadline = Date.now() + 5 * 60_000;
      for (;;) {
        const r = await run(cmd[0]!, cmd.slice(1), { reject: false, timeoutMs: 6 * 60_000, signal: this.ctx.signal });
        if (r.exitCode === 0) break;
        if (Date.now() > deadline) throw new ReadinessError(cmd.slice(0, 3).join(' '), ref.id, 5 * 60_000, '', r.stderr.trim().split('\n').pop());
        await sleep(3000, this.ctx.signal);
      }
    }
    this.current = { ref, artifacts: { ...artifacts, files } };
  }

  async unapply(ref: StrategyRef): Promise<void> {
    const dir = join(this.p.base, 'strategies', ref.id);
    const t = this.lab.topology;
    const cps = t.nodes.filter((n) => n.role === 'controlplane').map((n) => this.ips[n.name]!);
    const all = this.current?.artifacts.files ?? [];
    const paths = { ...dockerPaths(this.p.base, this.ctx.state.dir), talosconfig: this.p.talosconfig, kubeconfig: this.p.kubeconfig };
    for (const cmd of strategyUnapplyCommands(this.asQemuLab(), ref, paths, all, dir)) await run(cmd[0]!, cmd.slice(1), { reject: false, timeoutMs: 180_000 });
    const reverse = reversePatchDocs(all);
    if (reverse.length) {
      const f = join(this.p.base, 'unapply.patch.yaml');
      writeFileSync(f, toYamlDocs(reverse));
      await run('talosctl', ['--talosconfig', this.p.talosconfig, 'patch', 'machineconfig', '--nodes', cps.join(','), '--patch', `@${f}`], { reject: false, timeoutMs: 120_000 });
    }
    this.current = undefined;
  }

  async holders(target: Target): Promise<string[]> {
    const ref = this.current?.ref;
    if (!ref) return [];
    const t = this.lab.topology;
    const nodes = (ns: Node[]) => ns.map((n) => ({ name: n.name, ip: this.ips[n.name]! }));
    const s = composeStrategy(ref);
    const role = target === 'api' ? s.cp : s.svc;
    const svc = t.services[0];
    // qemu runs neither BGP nor a load-balancer box (qemuSupports): only address holders exist here
    if (role.holders !== 'address') return [];
    if (target === 'api') return talosAddressHolders(this.p.talosconfig, t.vip, nodes(t.nodes.filter((n) => n.role === 'controlplane')));
    if (!svc) return [];
    if (role.real?.holders) {
      const kubectl = async (args: string[]) => run('kubectl', ['--kubeconfig', this.p.kubeconfig, ...args], { reject: false, timeoutMs: 30_000 });
      return role.real.holders(realContext(t, ref, join(this.p.base, 'strategies', ref.id), kubectl), svc);
    }
    return talosAddressHolders(this.p.talosconfig, svc.ip, nodes(t.nodes));
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
    const dir = join(this.ctx.state.dir, 'events');
    if (!existsSync(dir)) return [];
    return readdirSync(dir)
      .filter((f) => f.endsWith('.jsonl'))
      .flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean))
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as AgentEvent];
        } catch {
          return [];
        }
      })
      .filter((e) => e.t >= sinceT)
      .sort((a, b) => a.t - b.t);
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
    const id = idOfPrefix(ctx.prefix);
    const p = qemuPaths(ctx.renderDir ? join(ctx.renderDir, 'qemu') : join(stateRoot(), id, 'qemu'));
    const t = lab.topology;
    const first = lab.strategies.find((s) => qemuSupports(s, lab).supported) ?? lab.strategies[0]!;
    const steps: PlanStep[] = [{ what: 'check: Linux, /dev/kvm, root, talosctl, kubectl, qemu-system' }];
    const patches = qemuPatches(t, first);
    const create = qemuCreateCommand(lab, ctx.prefix, p, first);
    steps.push({ what: `talosctl creates ${t.nodes.length} VMs on one bridge ${lan(t)[0]?.cidr} (nodes ${Object.entries(qemuNodeIps(t)).map(([n, ip]) => `${n}=${ip}`).join(' ')}) for ${first.id}`, command: quote(create) });
    steps.push({ what: 'fetch the kubeconfig through a node IP', command: quote(qemuKubeconfigCommand(lab, p)) });
    const ql: Lab = { ...lab, topology: { ...t, nodes: t.nodes.map((n) => ({ ...n, ip: qemuNodeIps(t)[n.name]! })) } };
    const perStrategy: Record<string, unknown> = {};
    for (const ref of lab.strategies) {
      const s = qemuSupports(ref, lab);
      if (!s.supported) {
        steps.push({ what: `${ref.id}: unsupported on qemu — ${s.reason}` });
        perStrategy[ref.id] = s;
        continue;
      }
      // qemu's variants of the strategy's files (VIP on talosctl's NIC) under qemu/strategies/<id>/
      const dir = join(p.base, 'strategies', ref.id);
      const paths = { ...dockerPaths(p.base, join(stateRoot(), id)), talosconfig: p.talosconfig, kubeconfig: p.kubeconfig };
      let files: RenderedFile[] = talosStrategyFiles(t, ref);
      if (ctx.renderDir) files = writeQemuStrategyFiles(t, dir, files);
      const cmds = strategyApplyCommands(ql, ref, paths, files, dir);
      const undo = strategyUnapplyCommands(ql, ref, paths, files, dir);
      steps.push(...cmds.map((c, i) => ({ what: `apply ${ref.id} (${i + 1}/${cmds.length})`, command: quote(c) })));
      steps.push(...undo.map((c, i) => ({ what: `unapply ${ref.id} (${i + 1}/${undo.length})`, command: quote(c) })));
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
