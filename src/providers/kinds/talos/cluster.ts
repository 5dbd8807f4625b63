/**
 * A real Talos cluster as every Talos runtime drives it — docker (containers created by the lab),
 * qemu (talosctl's own VMs) and a future existing-cluster provider: the talosctl/kubectl/helm
 * commands (pure builders, printed by `--dry-run` and checked by the unit tests), and the steps
 * that run them (`TalosCluster`): configs, an idempotent bootstrap, the kubeconfig, waiting until
 * every node has registered, a strategy's apply and unapply, the holder queries, prerequisites.
 * A runtime supplies only what differs (`TalosRuntimeProfile`): how it names links, what its own
 * node configs carry, which of the kind's patches it uses.
 *
 * Facts used here (siderolabs/talos, read at v1.11.6 / v1.12.11 / v1.13.9):
 *  - `talosctl bootstrap` on a node whose etcd data directory is not empty answers gRPC
 *    AlreadyExists ("etcd data directory is not empty"); FailedPrecondition while the CRI is not up
 *    ("bootstrap is not available yet") or the clock is not in sync
 *    (internal/app/machined/internal/server/v1alpha1/v1alpha1_server.go `Bootstrap`). A retry after
 *    a lost reply therefore finds AlreadyExists: that is success. It always goes to the SAME node:
 *    a control plane that has not joined would start a second etcd cluster.
 *  - `talosctl health --control-plane-nodes … --worker-nodes …` (cmd/talosctl/cmd/talos/health.go)
 *    runs, in order, etcd healthy, etcd members consistent, "all k8s nodes to report" (each listed
 *    IP among the nodes' InternalIP/ExternalIP: pkg/cluster/check/kubernetes.go
 *    K8sAllNodesReportedAssertion), static pods, "all k8s nodes to report ready", kube-proxy,
 *    coredns, schedulable (pkg/cluster/check/default.go). `kubectl wait nodes --all` instead passes
 *    as soon as the nodes registered SO FAR are Ready.
 *  - `talosctl patch machineconfig` defaults to `--mode auto`, which REBOOTS the node when the
 *    change is not immediate (v1alpha1_server.go ApplyConfiguration; runtime CanApplyImmediate).
 *    Every live patch here goes with `--mode=no-reboot`: a patch Talos cannot apply live fails
 *    loudly instead of rebooting every control plane at once (a rebooting Talos container exits and
 *    stays stopped: pkg/provision/providers/docker/node.go sets no restart policy). The patches
 *    themselves are checked with the rules oracle (./rules.ts) in test/contract.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { Lab, LbService, Node, StrategyRef, Target, Topology } from '../../../model/types.js';
import type { RealContext, RenderedFile, Role, Strategy } from '../../../strategies/types.js';
import { apiEndpoint, apiEndpointUrl, clusterCni, composeStrategy } from '../../../strategies/compose.js';
import { LabError, PrerequisiteError, ReadinessError } from '../../../util/errors.js';
import { quote, run, sleep, type RunResult } from '../../../util/proc.js';
import { STRATEGY_SPECIFIC_PATCHES, TALOS_PATCH, renderTalosFiles, talosStrategyFiles } from './files.js';
import { completeInterfaceDeletes, patchScope } from './machine-config.js';
import { ECHO_NAME, isWorkloadFile } from './workload.js';

// ---------------------------------------------------------------------------------------------
// paths and the runtime profile

export interface TalosPaths {
  /** the runtime's base directory (strategies/<id>/ and live/<id>/ live below it) */
  base: string;
  /** talosctl's own files: secrets.yaml, controlplane.yaml, worker.yaml, talosconfig */
  talos: string;
  secrets: string;
  talosconfig: string;
  /** the cluster-wide patches given to `talosctl gen config` */
  patches: string;
  /** per-node-group machine configs (`<role>-<lan>.yaml`) */
  nodes: string;
  kubeconfig: string;
}

export function talosPaths(base: string): TalosPaths {
  const talos = join(base, 'talos');
  return {
    base,
    talos,
    secrets: join(talos, 'secrets.yaml'),
    talosconfig: join(talos, 'talosconfig'),
    patches: join(talos, 'patches'),
    nodes: join(talos, 'nodes'),
    kubeconfig: join(base, 'kubeconfig'),
  };
}

/** Where a strategy's rendered files are written, and where the runtime's completed live patches go. */
export function strategyDirs(p: Pick<TalosPaths, 'base'>, ref: StrategyRef): { dir: string; liveDir: string } {
  return { dir: join(p.base, 'strategies', ref.id), liveDir: join(p.base, 'live', ref.id) };
}

/** What a Talos runtime does its own way. */
export interface TalosRuntimeProfile {
  name: string;
  /** a rendered file as this runtime delivers it (links renamed), or null when it does not use it */
  adapt(t: Topology, f: RenderedFile): RenderedFile | null;
  /**
   * Talos ≤ 1.11: the runtime's own `machine.network.interfaces` entries in a node's config (a
   * docker node's routes through the lab router, a qemu VM's DHCP entry) — what a live patch that
   * deletes an entry must put back (machine-config.ts completeInterfaceDeletes). [] from 1.12.
   */
  nodeInterfaces(t: Topology, n: Node): Record<string, unknown>[];
}

/** A runtime that delivers the kind's files as they are and adds nothing to the nodes' configs (an existing cluster). */
export const PLAIN_PROFILE: TalosRuntimeProfile = { name: 'plain', adapt: (_t, f) => f, nodeInterfaces: () => [] };

/** Every file a real cluster gets for a strategy, as the runtime delivers it. */
export function runtimeStrategyFiles(t: Topology, ref: StrategyRef, profile: TalosRuntimeProfile): RenderedFile[] {
  return talosStrategyFiles(t, ref).flatMap((f) => profile.adapt(t, f) ?? []);
}

export function writeFiles(dir: string, files: { path: string; content: string }[]): void {
  for (const f of files) {
    const path = f.path.startsWith('/') ? f.path : join(dir, f.path);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, f.content);
  }
}

// ---------------------------------------------------------------------------------------------
// configs

export interface TalosPatchPlan {
  /** file name under the patches directory */
  file: string;
  scope: 'all' | 'controlplane' | 'worker';
  content: string;
}

/** The cluster-wide patches `talosctl gen config` gets for the strategy the cluster is built for. */
export function clusterPatchPlans(t: Topology, ref: StrategyRef, profile: TalosRuntimeProfile): TalosPatchPlan[] {
  return renderTalosFiles(t, composeStrategy(ref))
    .filter((f) => f.kind === 'talos-patch')
    .flatMap((f) => {
      const a = profile.adapt(t, f);
      return a ? [{ file: basename(a.path), scope: patchScope(t, a), content: a.content }] : [];
    });
}

export const CONFIG_PATCH_FLAG = { all: '--config-patch', controlplane: '--config-patch-control-plane', worker: '--config-patch-worker' } as const;

export function genSecretsCommand(p: TalosPaths): string[] {
  return ['talosctl', 'gen', 'secrets', '--output-file', p.secrets, '--force'];
}

/** `talosctl gen config` with fresh secrets, the versions of the topology and the cluster-wide patches by scope. */
export function genConfigCommand(t: Topology, clusterName: string, endpointUrl: string, patches: TalosPatchPlan[], p: TalosPaths): string[] {
  return [
    'talosctl', 'gen', 'config', clusterName, endpointUrl,
    '--with-secrets', p.secrets,
    '--talos-version', t.talos.version,
    '--kubernetes-version', t.talos.kubernetesVersion,
    '--with-docs=false', '--with-examples=false',
    ...patches.flatMap((x) => [CONFIG_PATCH_FLAG[x.scope], `@${join(p.patches, x.file)}`]),
    '--output-types', 'controlplane,worker,talosconfig',
    '--output', p.talos, '--force',
  ];
}

/** A node group's config: the generated one with the runtime's per-node patch (or a plain copy). */
export function nodeConfigCommand(p: TalosPaths, group: string, role: 'controlplane' | 'worker', hasPatch: boolean): string[] {
  const base = join(p.talos, `${role}.yaml`);
  return hasPatch
    ? ['talosctl', 'machineconfig', 'patch', base, '--patch', `@${join(p.nodes, `${group}.patch.yaml`)}`, '--output', join(p.nodes, `${group}.yaml`)]
    : ['cp', base, join(p.nodes, `${group}.yaml`)];
}

/** Pitfall 1: talosctl talks to the node IPs, never to the VIP. */
export function talosconfigCommands(p: TalosPaths, cpIps: string[]): string[][] {
  return [
    ['talosctl', '--talosconfig', p.talosconfig, 'config', 'endpoint', ...cpIps],
    ['talosctl', '--talosconfig', p.talosconfig, 'config', 'node', cpIps[0]!],
  ];
}

export function bootstrapCommand(p: TalosPaths, cpIp: string): string[] {
  return ['talosctl', '--talosconfig', p.talosconfig, 'bootstrap', '--nodes', cpIp, '--endpoints', cpIp];
}

export function kubeconfigCommand(p: TalosPaths, cpIp: string): string[] {
  return ['talosctl', '--talosconfig', p.talosconfig, 'kubeconfig', p.kubeconfig, '--nodes', cpIp, '--endpoints', cpIp, '--force'];
}

/** Until every listed node is part of a healthy cluster (etcd, all nodes reported and Ready, kube-proxy, CoreDNS). */
export function healthCommand(p: TalosPaths, nodes: Pick<Node, 'ip' | 'role'>[], timeout = '20m'): string[] {
  const cps = nodes.filter((n) => n.role === 'controlplane').map((n) => n.ip);
  const ws = nodes.filter((n) => n.role === 'worker').map((n) => n.ip);
  return [
    'talosctl', '--talosconfig', p.talosconfig, '--nodes', cps[0]!, '--endpoints', cps[0]!, 'health',
    '--control-plane-nodes', cps.join(','),
    ...(ws.length ? ['--worker-nodes', ws.join(',')] : []),
    '--wait-timeout', timeout,
  ];
}

export function nodesJsonCommand(p: TalosPaths, serverIp: string, apiPort: number): string[] {
  return ['kubectl', '--kubeconfig', p.kubeconfig, '--server', `https://${serverIp}:${apiPort}`, 'get', 'nodes', '-o', 'json'];
}

/**
 * Which of `ips` a Kubernetes node reports as its InternalIP or ExternalIP (`kubectl get nodes -o
 * json`) — the test of talosctl's "all k8s nodes to report" check (K8sAllNodesReportedAssertion).
 */
export function registeredNodeIps(nodesJson: string, ips: string[]): string[] {
  let j: { items?: { status?: { addresses?: { type?: string; address?: string }[] } }[] };
  try {
    j = JSON.parse(nodesJson || '{}');
  } catch {
    return [];
  }
  const seen = new Set<string>();
  for (const it of j.items ?? []) for (const a of it.status?.addresses ?? []) if ((a.type === 'InternalIP' || a.type === 'ExternalIP') && a.address) seen.add(a.address);
  return ips.filter((ip) => seen.has(ip));
}

/** The CA of the cluster (the API probes verify it), from the kubeconfig. */
export function caFromKubeconfig(kubeconfig: string): Buffer {
  const m = /certificate-authority-data:\s*(\S+)/.exec(kubeconfig);
  if (!m) throw new LabError('the kubeconfig has no certificate-authority-data');
  return Buffer.from(m[1]!, 'base64');
}

// ---------------------------------------------------------------------------------------------
// bootstrap, idempotent

export type BootstrapOutcome = 'bootstrapped' | 'already';

/** What a failed `talosctl bootstrap` means for a retry (v1alpha1_server.go Bootstrap codes). */
export function classifyBootstrapError(text: string): 'already' | 'retry' | 'fatal' {
  if (/AlreadyExists|etcd data directory is not empty/i.test(text)) return 'already';
  if (/FailedPrecondition|not available yet|time is not in sync|Unavailable|DeadlineExceeded|deadline exceeded|connection refused|connection reset|no route to host|i\/o timeout|timed? ?out|EOF|transport is closing|error reading server preface/i.test(text)) {
    return 'retry';
  }
  return 'fatal';
}

/**
 * `talosctl bootstrap` until etcd is bootstrapped on that one node: a first success, or
 * AlreadyExists after a reply that got lost (the node did it; doing it elsewhere would split etcd).
 */
export async function bootstrapOnce(
  exec: () => Promise<{ exitCode: number; stdout: string; stderr: string }>,
  o: { timeoutMs: number; intervalMs?: number; signal?: AbortSignal; target?: string },
): Promise<BootstrapOutcome> {
  const deadline = Date.now() + o.timeoutMs;
  let last = '';
  for (;;) {
    o.signal?.throwIfAborted();
    const r = await exec().catch((e: Error & { stderr?: string }) => ({ exitCode: -1, stdout: '', stderr: `${e.stderr ?? ''} ${e.message}` }));
    if (r.exitCode === 0) return 'bootstrapped';
    last = `${r.stderr}${r.stdout}`.trim();
    const kind = classifyBootstrapError(last);
    if (kind === 'already') return 'already';
    if (kind === 'fatal') throw new LabError(`talosctl bootstrap on ${o.target ?? 'the first control plane'} failed: ${last.split('\n').slice(-3).join(' ')}`);
    if (Date.now() > deadline) throw new ReadinessError('talosctl bootstrap', o.target ?? 'control plane', o.timeoutMs, '', last.split('\n').pop());
    await sleep(o.intervalMs ?? 3000, o.signal);
  }
}

// ---------------------------------------------------------------------------------------------
// a strategy on a running cluster

/** One `talosctl patch machineconfig` call: the nodes it goes to and its patch files, in order. */
export interface LivePatchCall {
  name: string;
  hosts: string[];
  ips: string[];
  files: { path: string; content: string }[];
}

const isUnapply = (f: RenderedFile) => f.path.includes('/unapply/');

/**
 * The Talos patches applied to the RUNNING nodes when a strategy is applied (`apply`: the
 * strategy-specific kind patches such as the cluster endpoint, and the roles' own patches — the
 * cluster-wide ones went into `gen config`) or taken away (`unapply`: the `talos/unapply/` files),
 * per group of nodes that get the same content. Talos ≤ 1.11 patches that delete an interface
 * entry are completed with the runtime's own entries (machine-config.ts completeInterfaceDeletes);
 * a completed variant is written under `liveDir`.
 */
export function livePatchCalls(lab: Lab, files: RenderedFile[], dir: string, phase: 'apply' | 'unapply', o: { profile?: TalosRuntimeProfile; liveDir?: string } = {}): LivePatchCall[] {
  const t = lab.topology;
  const profile = o.profile ?? PLAIN_PROFILE;
  const liveDir = o.liveDir ?? join(dir, 'live');
  const kindPatches = new Set<string>(Object.values(TALOS_PATCH));
  const chosen = files.filter((f) => {
    if (f.kind !== 'talos-patch') return false;
    if (phase === 'unapply') return isUnapply(f);
    if (isUnapply(f)) return false;
    return !kindPatches.has(f.path) || STRATEGY_SPECIFIC_PATCHES.includes(f.path);
  });
  const calls: LivePatchCall[] = [];
  for (const f of chosen) {
    const hosts = (f.hosts ?? t.nodes.map((n) => n.name)).map((h) => t.nodes.find((n) => n.name === h)).filter((n): n is Node => !!n);
    const groups = new Map<string, { nodes: Node[]; contents: string[] }>();
    for (const n of hosts.length ? hosts : t.nodes) {
      const contents = completeInterfaceDeletes(f.content, profile.nodeInterfaces(t, n));
      const key = JSON.stringify(contents);
      const g = groups.get(key) ?? { nodes: [], contents };
      g.nodes.push(n);
      groups.set(key, g);
    }
    for (const g of groups.values()) {
      const unchanged = g.contents.length === 1 && g.contents[0] === f.content;
      const stem = f.path.replace(/\.patch\.ya?ml$|\.ya?ml$/, '');
      const paths = unchanged
        ? [join(dir, f.path)]
        : g.contents.map((_, i) => join(liveDir, `${stem}.for-${g.nodes[0]!.name}${g.contents.length > 1 ? `.${i + 1}` : ''}.patch.yaml`));
      calls.push({
        name: `${phase} ${f.path}${groups.size > 1 || !unchanged ? ` on ${g.nodes.map((n) => n.name).join(',')}` : ''}`,
        hosts: g.nodes.map((n) => n.name),
        ips: g.nodes.map((n) => n.ip),
        files: g.contents.map((content, i) => ({ path: paths[i]!, content })),
      });
    }
  }
  return calls;
}

export function patchCommand(p: Pick<TalosPaths, 'talosconfig'>, c: LivePatchCall): string[] {
  return ['talosctl', '--talosconfig', p.talosconfig, 'patch', 'machineconfig', '--mode=no-reboot', '--nodes', c.ips.join(','), ...c.files.flatMap((f) => ['--patch', `@${f.path}`])];
}

/** kubectl/helm of a role's real steps get the lab's kubeconfig and a control plane's address. */
export function realArgv(argv: string[], kubectl: string[], helm: string[]): string[] {
  if (argv[0] === 'kubectl') return [...kubectl, ...argv.slice(1)];
  if (argv[0] === 'helm') return [...helm, ...argv.slice(1)];
  return argv;
}

/** The strategy's two roles, once per family for what a family installs once (kube-vip for the API and Services). */
export function realRoles(s: Pick<Strategy, 'cp' | 'svc'>): Role[] {
  return s.cp.family === s.svc.family && s.cp.real === s.svc.real ? [s.cp] : [s.cp, s.svc];
}

/** The context a role's real-cluster steps and holder queries see. */
export function realContext(t: Topology, ref: StrategyRef, dir: string, kubectlRun?: (args: string[]) => Promise<{ stdout: string; exitCode: number }>): RealContext {
  return {
    topology: t,
    strategy: ref,
    fileOf: (path) => join(dir, path),
    kubectl: kubectlRun ?? (async () => ({ stdout: '', exitCode: 1 })),
  };
}

function clientArgv(lab: Lab, p: TalosPaths): { kubectl: string[]; helm: string[] } {
  const cp1 = lab.topology.nodes.find((n) => n.role === 'controlplane')!.ip;
  const server = `https://${cp1}:${lab.topology.apiPort}`;
  return {
    kubectl: ['kubectl', '--kubeconfig', p.kubeconfig, '--server', server],
    helm: ['helm', '--kubeconfig', p.kubeconfig, '--kube-apiserver', server],
  };
}

/** Manifests kubectl applies, the mechanisms' own first and the echo workload last. */
function appliedManifests(files: RenderedFile[]): RenderedFile[] {
  const m = files.filter((x) => x.kind === 'k8s-manifest' && !deliveredByTalos(x, files));
  return [...m.filter((f) => !isWorkloadFile(f)), ...m.filter(isWorkloadFile)];
}

export interface StrategyCommandOptions {
  profile?: TalosRuntimeProfile;
  /** where completed live patches go (default `<dir>/live`) */
  liveDir?: string;
}

/** What `apply(strategy)` runs, in order (also printed by `--dry-run` for every strategy). */
export function strategyApplyCommands(lab: Lab, ref: StrategyRef, p: TalosPaths, files: RenderedFile[], dir: string, o: StrategyCommandOptions = {}): string[][] {
  const t = lab.topology;
  const s = composeStrategy(ref);
  refuseRebootingFiles(files);
  const { kubectl, helm } = clientArgv(lab, p);
  const cmds: string[][] = livePatchCalls(lab, files, dir, 'apply', o).map((c) => patchCommand(p, c));
  const ctx = realContext(t, ref, dir);
  for (const role of realRoles(s)) for (const step of role.real?.install?.(ctx) ?? []) cmds.push(realArgv(step.argv, kubectl, helm));
  const manifests = appliedManifests(files);
  for (const f of manifests) cmds.push([...kubectl, 'apply', '--server-side', '--force-conflicts', '-f', join(dir, f.path)]);
  if (manifests.some(isWorkloadFile)) {
    for (const ns of [...new Set(t.services.map((x) => x.namespace))]) cmds.push([...kubectl, '-n', ns, 'rollout', 'status', `deployment/${ECHO_NAME}`, '--timeout=5m']);
  }
  return cmds;
}

/** What `unapply(strategy)` runs: the manifests deleted (the echo Services first), the controllers removed, the Talos patches taken back. */
export function strategyUnapplyCommands(lab: Lab, ref: StrategyRef, p: TalosPaths, files: RenderedFile[], dir: string, o: StrategyCommandOptions = {}): string[][] {
  const t = lab.topology;
  const s = composeStrategy(ref);
  const { kubectl, helm } = clientArgv(lab, p);
  const cmds: string[][] = [];
  for (const f of [...appliedManifests(files)].reverse()) cmds.push([...kubectl, 'delete', '--ignore-not-found', '--wait=true', '--timeout=2m', '-f', join(dir, f.path)]);
  const ctx = realContext(t, ref, dir);
  for (const role of realRoles(s)) for (const step of role.real?.uninstall?.(ctx) ?? []) cmds.push(realArgv(step.argv, kubectl, helm));
  for (const c of livePatchCalls(lab, files, dir, 'unapply', o)) cmds.push(patchCommand(p, c));
  return cmds;
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
  for (const f of files.filter((x) => x.kind === 'talos-patch' && !isUnapply(x))) {
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
 * A static pod that needs a kubeconfig file cannot be delivered to a running node: Talos writes no
 * admin kubeconfig on the host, the file could only come through `machine.files`, and a
 * `machine.files` change is not immediate (runtime CanApplyImmediate, v1.11.6 … v1.13.9) — it
 * reboots every node it is applied to. Such a mechanism must run as a DaemonSet (in-cluster
 * config, KubePrism at localhost:7445) instead.
 */
export function refuseRebootingFiles(files: RenderedFile[]): void {
  const kc = staticPodKubeconfigPaths(files);
  if (kc.length) {
    throw new LabError(
      `a static pod of this strategy mounts a kubeconfig file (${kc.join(', ')}): Talos can only write it through machine.files, ` +
        'which needs a reboot when applied to a running node — render the component as a DaemonSet with in-cluster config instead',
    );
  }
}

// ---------------------------------------------------------------------------------------------
// holders

/**
 * Which of `nodes` hold `ip` on a link, from Talos' own AddressStatus resources
 * (`talosctl get addresses -o yaml`: one YAML document per address, with the answering node's IP).
 */
export function holdersFromAddressYaml(yamlText: string, ip: string, nodes: { name: string; ip: string }[]): string[] {
  const held = new Set<string>();
  for (const doc of parseAllDocuments(yamlText)) {
    const o = doc.toJS() as { node?: string; spec?: { address?: string } } | null;
    if (o?.spec?.address?.split('/')[0] === ip && o.node) held.add(o.node);
  }
  return nodes.filter((n) => held.has(n.ip)).map((n) => n.name);
}

export function addressesCommand(p: Pick<TalosPaths, 'talosconfig'>, ips: string[]): string[] {
  return ['talosctl', '--talosconfig', p.talosconfig, '--nodes', ips.join(','), 'get', 'addresses', '-o', 'yaml'];
}

export async function talosAddressHolders(talosconfig: string, ip: string, nodes: { name: string; ip: string }[], signal?: AbortSignal): Promise<string[]> {
  if (!nodes.length) return [];
  const argv = addressesCommand({ talosconfig }, nodes.map((n) => n.ip));
  const r = await run(argv[0]!, argv.slice(1), { timeoutMs: 30_000, signal, reject: false }).catch(() => null);
  return r ? holdersFromAddressYaml(r.stdout, ip, nodes) : [];
}

export interface HolderProbes {
  /** nodes among `among` with `ip` on a link */
  address(ip: string, among: Node[]): Promise<string[]>;
  /** nodes the routers facing the nodes use as next hops for `prefix` (BGP/ECMP); [] when the runtime has no router */
  routes(prefix: string): Promise<string[]>;
  kubectl(args: string[]): Promise<{ stdout: string; exitCode: number }>;
}

/** The nodes holding the target's address right now, observed the way the role says (Role.holders, RealSupport.holders). */
export async function observedHolders(t: Topology, ref: StrategyRef, target: Target, dir: string, probes: HolderProbes): Promise<string[]> {
  const s = composeStrategy(ref);
  const role = target === 'api' ? s.cp : s.svc;
  const svc: LbService | undefined = t.services[0];
  const ip = target === 'api' ? apiEndpoint(t, s.cp) : svc?.ip;
  if (!ip) return [];
  if (role.holders === 'lb-host') return t.loadBalancer ? [t.loadBalancer.name] : [];
  if (role.holders === 'routes') return probes.routes(`${ip}/32`);
  if (target === 'service' && svc && role.real?.holders) return role.real.holders(realContext(t, ref, dir, probes.kubectl), svc);
  return probes.address(ip, target === 'api' ? t.nodes.filter((n) => n.role === 'controlplane') : t.nodes);
}

// ---------------------------------------------------------------------------------------------
// prerequisites and install commands (pinned, checksums verified)

function arch(): string {
  return process.arch === 'arm64' ? 'arm64' : 'amd64';
}

/** The Talos release's assets: `talosctl-linux-<arch>`, `vmlinuz-<arch>`, `initramfs-<arch>.xz`, checked against its `sha256sum.txt` (siderolabs/talos .github/workflows/ci.yaml release job, v1.11.6). */
export function talosReleaseUrl(version: string): string {
  return `https://github.com/siderolabs/talos/releases/download/${version}`;
}

export function talosctlInstall(version: string): string {
  const f = `talosctl-linux-${arch()}`;
  return `(cd "$(mktemp -d)" && curl -fsSLO ${talosReleaseUrl(version)}/${f} && curl -fsSLO ${talosReleaseUrl(version)}/sha256sum.txt && sha256sum --ignore-missing -c sha256sum.txt && sudo install -m 0755 ${f} /usr/local/bin/talosctl)`;
}

/** kubectl from dl.k8s.io with its published `.sha256` (Kubernetes docs "Install kubectl on Linux"). */
export function kubectlInstall(k8sVersion: string): string {
  const v = k8sVersion.startsWith('v') ? k8sVersion : `v${k8sVersion}`;
  const url = `https://dl.k8s.io/release/${v}/bin/linux/${arch()}/kubectl`;
  return `(cd "$(mktemp -d)" && curl -fsSLO ${url} && curl -fsSLO ${url}.sha256 && echo "$(cat kubectl.sha256)  kubectl" | sha256sum -c && sudo install -m 0755 kubectl /usr/local/bin/kubectl)`;
}

/** Helm, pinned, from get.helm.sh with its published `.sha256sum` (helm.sh "Installing Helm: From the Binary Releases"). */
export const HELM_VERSION = 'v3.19.0';
export function helmInstall(version = HELM_VERSION): string {
  const f = `helm-${version}-linux-${arch()}.tar.gz`;
  return `(cd "$(mktemp -d)" && curl -fsSLO https://get.helm.sh/${f} && curl -fsSLO https://get.helm.sh/${f}.sha256sum && sha256sum -c ${f}.sha256sum && tar -xzf ${f} && sudo install -m 0755 linux-${arch()}/helm /usr/local/bin/helm)`;
}

async function have(cmd: string, args: string[]): Promise<boolean> {
  try {
    return (await run(cmd, args, { reject: false, timeoutMs: 15_000 })).exitCode === 0;
  } catch {
    return false;
  }
}

/** talosctl, kubectl (and helm when a strategy installs its CNI with a chart), with the pinned install command of each missing one. */
export async function talosToolsMissing(lab: Lab): Promise<{ what: string; fix: string }[]> {
  const t = lab.topology;
  const helmNeeded = lab.strategies.some((s) => clusterCni(composeStrategy(s)) === 'cilium');
  const [talosctl, kubectl, helm] = await Promise.all([have('talosctl', ['version', '--client']), have('kubectl', ['version', '--client']), helmNeeded ? have('helm', ['version', '--short']) : Promise.resolve(true)]);
  const missing: { what: string; fix: string }[] = [];
  if (!talosctl) missing.push({ what: 'talosctl not found in PATH', fix: talosctlInstall(t.talos.version) });
  if (!kubectl) missing.push({ what: 'kubectl not found in PATH', fix: kubectlInstall(t.talos.kubernetesVersion) });
  if (!helm) missing.push({ what: 'helm not found in PATH (Cilium is installed with its chart)', fix: helmInstall() });
  return missing;
}

/** Everything missing at once: one line per problem, one `fix:` line per command. */
export function prerequisites(missing: { what: string; fix: string }[]): PrerequisiteError {
  return new PrerequisiteError(missing.map((m) => m.what).join('\n'), missing.map((m) => m.fix).join('\n  fix: '));
}

// ---------------------------------------------------------------------------------------------
// the steps, run

const connError = (e: unknown) => /refused|timed? ?out|unreachable|no route|EOF|connection reset|i\/o timeout/i.test((e as Error).message ?? '');

export interface TalosClusterOptions {
  lab: Lab;
  paths: TalosPaths;
  profile: TalosRuntimeProfile;
  signal?: AbortSignal;
  say?: (m: string) => void;
  /** pause between retries (default 3 s) */
  retryIntervalMs?: number;
}

/**
 * The steps of a Talos cluster, run: what docker and qemu (and an existing cluster) share. The
 * runtime creates the machines; this talks to them through talosctl and kubectl only.
 */
export class TalosCluster {
  readonly lab: Lab;
  readonly p: TalosPaths;
  readonly profile: TalosRuntimeProfile;
  private readonly signal?: AbortSignal;
  private readonly say: (m: string) => void;
  private readonly retryMs: number;

  constructor(o: TalosClusterOptions) {
    this.lab = o.lab;
    this.p = o.paths;
    this.profile = o.profile;
    this.signal = o.signal;
    this.say = o.say ?? (() => {});
    this.retryMs = o.retryIntervalMs ?? 3000;
  }

  get t(): Topology {
    return this.lab.topology;
  }
  cps(): Node[] {
    return this.t.nodes.filter((n) => n.role === 'controlplane');
  }

  exec(argv: string[], timeoutMs = 120_000): Promise<RunResult> {
    return run(argv[0]!, argv.slice(1), { timeoutMs, signal: this.signal });
  }

  talosctl(args: string[], timeoutMs = 120_000): Promise<RunResult> {
    return this.exec(['talosctl', '--talosconfig', this.p.talosconfig, ...args], timeoutMs);
  }

  /** kubectl through each control plane in turn (a drill's victim may be the first one) */
  async kubectl(args: string[], timeoutMs = 120_000): Promise<RunResult> {
    let last: unknown;
    for (const cp of this.cps()) {
      try {
        return await this.exec(['kubectl', '--kubeconfig', this.p.kubeconfig, '--server', `https://${cp.ip}:${this.t.apiPort}`, '--request-timeout=15s', ...args], timeoutMs);
      } catch (e) {
        last = e;
        if (!connError(e)) throw e;
      }
    }
    throw last;
  }

  async retry<T>(what: string, target: string, timeoutMs: number, f: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      this.signal?.throwIfAborted();
      try {
        return await f();
      } catch (e) {
        const last = (e as Error).message.split('\n').slice(0, 3).join(' ');
        if (Date.now() > deadline) throw new ReadinessError(what, target, timeoutMs, '', last);
        await sleep(this.retryMs, this.signal);
      }
    }
  }

  /** secrets, `gen config` with the cluster-wide patches of `ref`, the per-group node configs, talosconfig endpoints = node IPs */
  async generate(ref: StrategyRef, clusterName: string, nodeGroups: { group: string; role: 'controlplane' | 'worker'; patch: string }[]): Promise<void> {
    const p = this.p;
    for (const d of [p.talos, p.patches, p.nodes]) mkdirSync(d, { recursive: true });
    const patches = clusterPatchPlans(this.t, ref, this.profile);
    for (const x of patches) writeFileSync(join(p.patches, x.file), x.content);
    for (const g of nodeGroups) if (g.patch) writeFileSync(join(p.nodes, `${g.group}.patch.yaml`), g.patch);
    this.say(`talos: generating configs for ${ref.id}`);
    const cmds = [
      genSecretsCommand(p),
      genConfigCommand(this.t, clusterName, apiEndpointUrl(this.t, composeStrategy(ref).cp), patches, p),
      ...nodeGroups.map((g) => nodeConfigCommand(p, g.group, g.role, !!g.patch)),
      ...talosconfigCommands(p, this.cps().map((n) => n.ip)),
    ];
    for (const cmd of cmds) {
      if (cmd[0] === 'cp') writeFileSync(cmd[2]!, readFileSync(cmd[1]!));
      else await this.exec(cmd, 60_000);
    }
  }

  /** etcd bootstrapped once, through the first control plane's IP (the VIP exists only after etcd) */
  async bootstrap(timeoutMs = 5 * 60_000): Promise<BootstrapOutcome> {
    const cp1 = this.cps()[0]!;
    this.say(`talos: bootstrapping etcd through ${cp1.name} (${cp1.ip})`);
    const argv = bootstrapCommand(this.p, cp1.ip);
    const outcome = await bootstrapOnce(() => run(argv[0]!, argv.slice(1), { timeoutMs: 30_000, signal: this.signal, reject: false }), {
      timeoutMs,
      intervalMs: this.retryMs,
      signal: this.signal,
      target: cp1.name,
    });
    if (outcome === 'already') this.say(`talos: etcd on ${cp1.name} was already bootstrapped (an earlier reply was lost)`);
    return outcome;
  }

  /** the admin kubeconfig through a node IP; the cluster CA written to `caFile` */
  async kubeconfig(caFile?: string, timeoutMs = 10 * 60_000): Promise<void> {
    const argv = kubeconfigCommand(this.p, this.cps()[0]!.ip);
    await this.retry('talosctl kubeconfig', this.cps()[0]!.name, timeoutMs, () => this.exec(argv, 30_000));
    if (caFile) {
      mkdirSync(dirname(caFile), { recursive: true });
      writeFileSync(caFile, caFromKubeconfig(readFileSync(this.p.kubeconfig, 'utf8')));
    }
  }

  /** every node of the topology registered (InternalIP), not just the ones seen so far */
  async waitRegistered(timeoutMs = 15 * 60_000): Promise<void> {
    const ips = this.t.nodes.map((n) => n.ip);
    await this.retry('all nodes registered', this.t.name, timeoutMs, async () => {
      const r = await this.kubectl(['get', 'nodes', '-o', 'json'], 60_000);
      const seen = registeredNodeIps(r.stdout, ips);
      if (seen.length < ips.length) throw new Error(`${seen.length}/${ips.length} nodes registered (missing ${ips.filter((ip) => !seen.includes(ip)).join(', ')})`);
    });
  }

  /** `talosctl health` with the node lists: every node reported and Ready, kube-proxy and CoreDNS up */
  async waitHealthy(timeoutMs = 20 * 60_000): Promise<void> {
    const argv = healthCommand(this.p, this.t.nodes, `${Math.round(timeoutMs / 60_000)}m`);
    this.say(`talos: ${quote(argv.slice(0, 2))} … health (${this.t.nodes.length} nodes)`);
    await this.exec(argv, timeoutMs + 60_000);
  }

  /** write the strategy's files (and completed live patches) and run its apply commands */
  async apply(ref: StrategyRef, files: RenderedFile[], o: { dir: string; liveDir: string; retryMs?: number }): Promise<void> {
    writeFiles(o.dir, files);
    for (const c of livePatchCalls(this.lab, files, o.dir, 'apply', { profile: this.profile, liveDir: o.liveDir })) writeFiles(o.liveDir, c.files);
    for (const cmd of strategyApplyCommands(this.lab, ref, this.p, files, o.dir, { profile: this.profile, liveDir: o.liveDir })) {
      this.say(`${ref.id}: ${cmd.slice(0, 5).join(' ')} …`);
      // webhooks (MetalLB's) take a while after their deployment is Available: retry
      await this.retry(cmd.slice(0, 3).join(' '), ref.id, o.retryMs ?? 5 * 60_000, () => this.exec(cmd, 6 * 60_000));
    }
  }

  /** the strategy's unapply commands; failures are reported, the rest still runs */
  async unapply(ref: StrategyRef, files: RenderedFile[], o: { dir: string; liveDir: string }): Promise<string[]> {
    const problems: string[] = [];
    for (const c of livePatchCalls(this.lab, files, o.dir, 'unapply', { profile: this.profile, liveDir: o.liveDir })) writeFiles(o.liveDir, c.files);
    for (const cmd of strategyUnapplyCommands(this.lab, ref, this.p, files, o.dir, { profile: this.profile, liveDir: o.liveDir })) {
      await this.exec(cmd, 3 * 60_000).catch((e: Error) => {
        const m = `unapply ${ref.id}: ${e.message.split('\n')[0]}`;
        problems.push(m);
        this.say(m);
      });
    }
    return problems;
  }

  holders(ref: StrategyRef, target: Target, dir: string, probes: Omit<HolderProbes, 'kubectl'> & Partial<Pick<HolderProbes, 'kubectl'>>): Promise<string[]> {
    const kubectl = probes.kubectl ?? ((args: string[]) => this.kubectl(args, 30_000).catch((e) => ({ stdout: '', exitCode: 1, stderr: String(e) })));
    return observedHolders(this.t, ref, target, dir, { ...probes, kubectl });
  }

  addressHolders(ip: string, among: Node[]): Promise<string[]> {
    return talosAddressHolders(this.p.talosconfig, ip, among.map((n) => ({ name: n.name, ip: n.ip })), this.signal);
  }

  /** versions for results.json: Talos, Kubernetes and what the current strategy's roles install */
  versions(ref?: StrategyRef): Record<string, string> {
    const out: Record<string, string> = { talos: this.t.talos.version, kubernetes: this.t.talos.kubernetesVersion };
    if (ref) {
      const s = composeStrategy(ref);
      Object.assign(out, s.cp.real?.versions, s.svc.real?.versions);
    }
    return out;
  }
}

/** Helper for plans: a command list as PlanSteps. */
export function stepsFromCommands(what: string, cmds: string[][]): { what: string; command: string }[] {
  return cmds.map((c, i) => ({ what: `${what}${cmds.length > 1 ? ` (${i + 1}/${cmds.length})` : ''}`, command: quote(c) }));
}

/** The docs a strategy's files carry for the echo workload and Services (for readiness checks). */
export function renderedServiceNames(files: RenderedFile[]): Set<string> {
  return new Set(
    files
      .filter((f) => f.kind === 'k8s-manifest')
      .flatMap((f) => parseAllDocuments(f.content).map((d) => d.toJS() as { kind?: string; metadata?: { name?: string } } | null))
      .filter((o) => o?.kind === 'Service')
      .map((o) => o!.metadata?.name ?? ''),
  );
}

