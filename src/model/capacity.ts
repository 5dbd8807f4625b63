/**
 * Capacity check before bring-up: what a lab will cost this machine (namespaces or containers,
 * processes and their threads, memory) against what the machine has, so a topology with
 * `workers: 100000` is refused with one line naming the field instead of creating 100,007
 * namespaces and running the machine out of memory.
 *
 * Two kinds of limit:
 *  - SOFT: the machine's own figures (available memory, free pids/threads, CPUs for the sim's
 *    timing-sensitive agents, network-namespace and per-user process limits). Exceeding one is an
 *    input error (exit 2) naming the field and the largest node count that fits; `--force` runs
 *    anyway.
 *  - HARD: sizes no lab of this toolkit is meant for on any machine (more than HARD_MAX_NODES
 *    nodes, HARD_MAX_RACKS racks) and demands the kernel cannot meet at all (more threads than
 *    pid_max allows). `--force` does not lift them. The node/rack caps are checked on the raw
 *    topology by load.ts already, before resolving builds a host object per node.
 *
 * The per-process costs are measurements on this project's sim (2 CPUs, 24 GiB, Node 20, FRR 8.4,
 * etcd 3.4) with a strategy applied — the peak of a run. Memory is the proportional set size (PSS,
 * /proc/<pid>/smaps_rollup: shared pages such as the node binary split between the processes that
 * map them), so summing it over processes does not count the shared text 35 times; RSS is given
 * beside it:
 *  - docs/bench-labs.md, bring-up only (RSS): minecraft 3 processes / 142 MiB, smb 9 / 235 MiB,
 *    enterprise 26 / 543 MiB.
 *  - `lab run test/fixtures/labs/ci-smb.yaml --drills baseline`, sampled in every lab namespace
 *    while haproxy+metallb-bgp was applied (PSS / RSS / threads): node agent (`node --import tsx`
 *    hosting the node's emulated components) 56–75 / 96–117 MiB / 12 (control planes at the top);
 *    client traffic agent 77 / 122 MiB / 12 plus its esbuild helper ~10 MiB / 5; etcd member
 *    36–38 / 49–51 MiB / 8–9; FRR per instance zebra 8 / 14 MiB / 7, bgpd 11 / 17 MiB / 4, staticd
 *    3 / 7 MiB / 1; HAProxy 12 / 16 MiB / 2; tcpdump (ARP watcher per LAN) 4 / 7 MiB; `ip monitor`
 *    (route watcher per BGP router) 1 / 2 MiB. The figures below round these up.
 * What runs where follows the sim provider (src/providers/runtimes/netns/, kinds/emulated/): one
 * namespace per host plus the switch namespace; etcd on each control plane; FRR (zebra, bgpd,
 * staticd, and bfdd with BFD) on each BGP router and, while a BGP mechanism is applied, on each
 * node that speaks BGP; one agent per node and per client; HAProxy on the load-balancer host.
 *
 * Docker and qemu run real Talos: each node gets what Talos documents as its minimum (control
 * plane 2 GiB, worker 1 GiB: Talos docs v1.11, introduction/system-requirements); talosctl gives
 * every node 2048 MiB by default (`talosctl cluster create --memory 2048`), which is the container
 * limit of the docker provider.
 */
import { availableParallelism, freemem, totalmem } from 'node:os';
import { readFileSync, readdirSync } from 'node:fs';
import type { InputIssue } from '../util/errors.js';
import type { Lab } from './types.js';
import { cpRole, svcRole } from '../strategies/registry.js';

// ---------------------------------------------------------------------------------------------
// limits

/** Nodes in one lab: more is no lab this toolkit is for (a 2,000-node sim needs ~300 GiB). */
export const HARD_MAX_NODES = 2000;
/** Racks (each a LAN, a ToR router and its FRR): the address plan of a data hall, not a lab. */
export const HARD_MAX_RACKS = 128;
/** Share of the available memory a lab may plan to use (the rest: the orchestrator's spikes, the page cache, the user's own work). */
export const MEMORY_SHARE = 0.8;
/** Share of the free pid/thread slots a lab may plan to use (commands such as `ip`, `nft`, `vtysh` come and go on top). */
export const TASK_SHARE = 0.5;
/**
 * Sim nodes per CPU. The enterprise lab (35 nodes on 2 CPUs, docs/bench-labs.md and the README's
 * figures) is the largest measured: its failovers still landed in their bands. Many more agents
 * per CPU delay the probes and timers the measurement is about.
 */
export const SIM_NODES_PER_CPU = 24;

/**
 * CPUs one sim lab instance keeps busy while its drills run: the agents' and etcd's idle work per
 * node plus the client's traffic, dominated by TLS handshakes (the API probe and a
 * `new-connection` load open a TLS connection per request, both ends in Node). Measured with
 * `top` during `lab run test/fixtures/labs/ci-smb.yaml --drills baseline --parallel 1` (5 nodes,
 * load 50 req/s new-connection, probe every 10 ms): 1.06 of 2 CPUs busy. A second instance on
 * that machine pushed the API baseline from 1 error to 418 and its p99 from 0.2 s to 1.6 s: the
 * probe then measures the host, so parallel instances are only started where the CPUs for them
 * exist.
 */
export const SIM_CPU_PER_NODE = 0.04;
export const SIM_CPU_PER_REQUEST_PER_S = 0.006;
/** share of the machine's CPUs the instances may plan to keep busy (the orchestrator, the kernel's softirqs and the user's own work need the rest) */
export const CPU_SHARE = 0.8;

export function instanceCpus(lab: Lab): number {
  const tr = lab.traffic;
  const perS = tr.rate + 1000 / Math.max(1, tr.probeIntervalMs);
  return lab.topology.nodes.length * SIM_CPU_PER_NODE + perS * SIM_CPU_PER_REQUEST_PER_S;
}

// ---------------------------------------------------------------------------------------------
// per-process costs (see the header for where each figure comes from)

interface Cost {
  mib: number;
  threads: number;
}
export const COSTS = {
  nodeAgent: { mib: 80, threads: 12 },
  clientAgent: { mib: 90, threads: 17 },
  etcd: { mib: 40, threads: 9 },
  /** zebra + bgpd + staticd */
  frr: { mib: 24, threads: 12 },
  /** not sampled (no BFD in ci-smb): one more FRR daemon of staticd's size */
  bfdd: { mib: 4, threads: 2 },
  haproxy: { mib: 12, threads: 2 },
  arpWatcher: { mib: 4, threads: 1 },
  routeWatcher: { mib: 2, threads: 1 },
  /** the `lab` wrapper and the CLI it runs (node + tsx + the engine, two processes), with headroom for its spikes */
  orchestrator: { mib: 250, threads: 24 },
} as const satisfies Record<string, Cost>;
/** Talos minimum memory per node (docker, qemu): see the header */
export const TALOS_CP_MIB = 2048;
export const TALOS_WORKER_MIB = 1024;
/** a router / client / load-balancer container beside the Talos nodes (alpine + FRR or HAProxy) */
export const HELPER_CONTAINER_MIB = 64;

// ---------------------------------------------------------------------------------------------
// the machine

export interface MachineFacts {
  totalMemMiB: number;
  /** MemAvailable (what can be allocated without swapping), else os.freemem() */
  availableMemMiB: number;
  cpus: number;
  /** `ulimit -u` (RLIMIT_NPROC, counts threads of this user); Infinity when unlimited */
  maxUserProcesses: number;
  /** /proc/sys/kernel/pid_max: every thread takes one */
  pidMax: number;
  /** /proc/sys/kernel/threads-max */
  threadsMax: number;
  /** threads that exist now (4th field of /proc/loadavg) */
  tasksNow: number;
  /** /proc/sys/user/max_net_namespaces */
  maxNetNamespaces: number;
  /** root is exempt from RLIMIT_NPROC */
  isRoot: boolean;
}

function readNumber(file: string): number | null {
  try {
    const n = Number(readFileSync(file, 'utf8').trim());
    return Number.isFinite(n) ? n : null;
  } catch {
    return null;
  }
}

function meminfoMiB(key: string): number | null {
  try {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/meminfo', 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

function nprocLimit(): number {
  try {
    const m = /^Max processes\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (!m || m[1] === 'unlimited') return Infinity;
    return Number(m[1]);
  } catch {
    return Infinity;
  }
}

function tasksNow(): number {
  try {
    const m = /\s\d+\/(\d+)\s/.exec(readFileSync('/proc/loadavg', 'utf8'));
    if (m) return Number(m[1]);
  } catch {
    /* not Linux */
  }
  try {
    return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).length;
  } catch {
    return 0;
  }
}

export function machineFacts(): MachineFacts {
  return {
    totalMemMiB: meminfoMiB('MemTotal') ?? totalmem() / 2 ** 20,
    availableMemMiB: meminfoMiB('MemAvailable') ?? freemem() / 2 ** 20,
    cpus: availableParallelism(),
    maxUserProcesses: nprocLimit(),
    pidMax: readNumber('/proc/sys/kernel/pid_max') ?? 32768,
    threadsMax: readNumber('/proc/sys/kernel/threads-max') ?? Infinity,
    tasksNow: tasksNow(),
    maxNetNamespaces: readNumber('/proc/sys/user/max_net_namespaces') ?? Infinity,
    isRoot: process.getuid?.() === 0,
  };
}

// ---------------------------------------------------------------------------------------------
// the estimate

export type CapacityProvider = 'sim' | 'docker' | 'qemu';

export interface CapacityEstimate {
  provider: CapacityProvider;
  nodes: number;
  controlPlanes: number;
  /** every host: nodes, routers, clients, the load balancer */
  hosts: number;
  /** sim: one per host + the switch namespace */
  namespaces: number;
  /** docker: one per host; qemu: one VM per node */
  containers: number;
  /** long-running processes on this machine at the peak (a strategy applied); docker/qemu: 0 (inside the containers/VMs) */
  processes: number;
  /** threads of those processes (each takes a pid) */
  threads: number;
  memoryMiB: number;
  /** what one more worker adds (its agent, its FRR speaker when the lab has a BGP Service mechanism; docker/qemu: its Talos memory) */
  workerMiB: number;
  workerThreads: number;
}

/** `auto` picks docker only when Docker, talosctl and the image are usable, else sim: estimate the sim. */
export function capacityProvider(provider: string): CapacityProvider {
  return provider === 'docker' || provider === 'qemu' ? provider : 'sim';
}


export function estimateCapacity(lab: Lab, provider: string): CapacityEstimate {
  const p = capacityProvider(provider);
  const t = lab.topology;
  const cps = t.nodes.filter((n) => n.role === 'controlplane');
  const nodes = t.nodes.length;
  const hosts = nodes + t.routers.length + t.clients.length + (t.loadBalancer ? 1 : 0);

  if (p !== 'sim') {
    const helpers = hosts - nodes;
    const nodeMiB = cps.length * TALOS_CP_MIB + (nodes - cps.length) * TALOS_WORKER_MIB;
    const fixedMiB = helpers * (p === 'docker' ? HELPER_CONTAINER_MIB : 0) + COSTS.orchestrator.mib;
    return {
      provider: p,
      nodes,
      controlPlanes: cps.length,
      hosts,
      namespaces: 0,
      containers: p === 'docker' ? hosts : nodes,
      processes: 0,
      threads: 0,
      memoryMiB: nodeMiB + fixedMiB,
      workerMiB: TALOS_WORKER_MIB,
      workerThreads: 0,
    };
  }

  // the peak is one strategy applied: the one with the most BGP speakers / BFD / HAProxy
  let speakers = 0;
  let bfd = false;
  let haproxy = false;
  let workersSpeak = false;
  // what each strategy runs follows from its mechanisms' traits (the registry): a BGP mechanism
  // puts an FRR speaker on the nodes it announces from, an endpoint on the load-balancer host runs HAProxy there
  for (const s of lab.strategies) {
    const cp = cpRole(s.cp);
    const svc = svcRole(s.svc);
    const set = new Set<string>();
    if (cp?.traits.bgp) for (const n of cps) set.add(n.name);
    if (svc?.traits.bgp) for (const n of t.nodes.filter((x) => x.runsWorkloads)) set.add(n.name);
    speakers = Math.max(speakers, set.size);
    if (set.size && (s.options.bfd || t.timers.bfd.enabled)) bfd = true;
    if (cp?.traits.endpoint === 'lb-host') haproxy = true;
    // workers always run workloads: a BGP Service mechanism puts a speaker on each
    if (svc?.traits.bgp) workersSpeak = true;
  }
  const bgpRouters = t.routers.filter((r) => r.bgp !== false).length;
  const lans = t.segments.filter((s) => s.kind === 'lan').length;
  const frr = { mib: COSTS.frr.mib + (bfd ? COSTS.bfdd.mib : 0), threads: COSTS.frr.threads + (bfd ? COSTS.bfdd.threads : 0) };

  const sum = (parts: [number, Cost][]) => parts.reduce((a, [n, c]) => ({ mib: a.mib + n * c.mib, threads: a.threads + n * c.threads, count: a.count + n }), { mib: 0, threads: 0, count: 0 });
  const perNode = sum([
    [nodes, COSTS.nodeAgent],
    [cps.length, COSTS.etcd],
    [speakers, frr],
  ]);
  const fixed = sum([
    [t.clients.length, COSTS.clientAgent],
    [bgpRouters, frr],
    [bgpRouters, COSTS.routeWatcher],
    [lans, COSTS.arpWatcher],
    [haproxy ? 1 : 0, COSTS.haproxy],
    [1, COSTS.orchestrator],
  ]);
  // FRR is three or four processes per instance
  const frrProcs = (bfd ? 4 : 3) - 1;
  const processes = perNode.count + fixed.count + (speakers + bgpRouters) * frrProcs;
  return {
    provider: p,
    nodes,
    controlPlanes: cps.length,
    hosts,
    namespaces: hosts + 1,
    containers: 0,
    processes,
    threads: perNode.threads + fixed.threads,
    memoryMiB: perNode.mib + fixed.mib,
    workerMiB: COSTS.nodeAgent.mib + (workersSpeak ? frr.mib : 0),
    workerThreads: COSTS.nodeAgent.threads + (workersSpeak ? frr.threads : 0),
  };
}

// ---------------------------------------------------------------------------------------------
// the check

export interface CapacityCheckOptions {
  /** --force: run even above the soft limits */
  force?: boolean;
  /** how the topology file is shown (default: its absolute path) */
  show?: (abs: string) => string;
  /** 1-based line of a path in the topology file, when known */
  lineOf?: (abs: string, path: (string | number)[]) => number | undefined;
}

export interface CapacityResult {
  estimate: CapacityEstimate;
  /** soft limits exceeded (each a human phrase); empty = fits */
  soft: string[];
  /** hard limits exceeded; never overridable */
  hard: string[];
  /** the largest node count this machine takes within the soft limits (the lab with workers added or removed) */
  maxNodes: number;
  /** what the CLI throws: empty when the lab may start (soft problems are dropped with --force) */
  issues: InputIssue[];
}

const GiB = (mib: number) => (mib / 1024).toFixed(mib < 10 * 1024 ? 1 : 0);
const n = (x: number) => Math.round(x).toLocaleString('en-US');

/** The topology field that sets the node count, for the message. */
function nodeField(lab: Lab): (string | number)[] {
  const t = lab.topology;
  if (t.segments.some((s) => s.kind === 'fabric')) return ['network', 'racks'];
  const cps = t.nodes.filter((x) => x.role === 'controlplane').length;
  return t.nodes.length - cps >= cps ? ['cluster', 'workers'] : ['cluster', 'controlPlanes'];
}

export function checkCapacity(lab: Lab, provider: string, m: MachineFacts, opts: CapacityCheckOptions = {}): CapacityResult {
  const e = estimateCapacity(lab, provider);
  const soft: string[] = [];
  const hard: string[] = [];
  // the node count that fits a budget: this lab with workers added (or removed) until it is used up
  const fitting = (budget: number, used: number, perWorker: number) => e.nodes + Math.floor((budget - used) / perWorker);
  const fits: number[] = [];

  if (e.nodes > HARD_MAX_NODES) hard.push(`more than ${n(HARD_MAX_NODES)} nodes is no lab this toolkit runs on any machine`);

  // memory
  const memBudget = m.availableMemMiB * MEMORY_SHARE;
  fits.push(fitting(memBudget, e.memoryMiB, e.workerMiB));
  if (e.memoryMiB > memBudget) soft.push(`memory: ~${GiB(e.memoryMiB)} GiB is more than ${Math.round(MEMORY_SHARE * 100)} % of the ${GiB(m.availableMemMiB)} GiB available (${GiB(m.totalMemMiB)} GiB total)`);

  if (e.provider === 'sim') {
    // threads: each takes a pid; pid_max and threads-max bound them all, RLIMIT_NPROC this user's
    const slots = Math.min(m.pidMax, m.threadsMax) - m.tasksNow;
    const taskBudget = Math.max(0, slots) * TASK_SHARE;
    fits.push(fitting(taskBudget, e.threads, e.workerThreads));
    if (e.threads > slots) hard.push(`~${n(e.threads)} threads are more than the kernel can give: ${n(slots)} pids free (pid_max ${n(m.pidMax)}, threads-max ${n(m.threadsMax)}, ${n(m.tasksNow)} in use)`);
    else if (e.threads > taskBudget) soft.push(`threads: ~${n(e.threads)} is more than ${Math.round(TASK_SHARE * 100)} % of the ${n(slots)} free pids (pid_max ${n(m.pidMax)}, ${n(m.tasksNow)} in use)`);
    if (!m.isRoot && Number.isFinite(m.maxUserProcesses)) {
      const budget = m.maxUserProcesses * TASK_SHARE;
      fits.push(fitting(budget, e.threads, e.workerThreads));
      if (e.threads > budget) soft.push(`processes: ~${n(e.threads)} threads is more than ${Math.round(TASK_SHARE * 100)} % of \`ulimit -u\` (${n(m.maxUserProcesses)})`);
    }
    if (Number.isFinite(m.maxNetNamespaces)) {
      fits.push(fitting(m.maxNetNamespaces, e.namespaces, 1));
      if (e.namespaces > m.maxNetNamespaces) soft.push(`namespaces: ${n(e.namespaces)} is more than /proc/sys/user/max_net_namespaces (${n(m.maxNetNamespaces)})`);
    }
    const cpuMax = SIM_NODES_PER_CPU * m.cpus;
    fits.push(cpuMax);
    if (e.nodes > cpuMax) soft.push(`CPU: more than ${SIM_NODES_PER_CPU} nodes per CPU (${m.cpus} here) delay the agents' probes and timers that the measurement is about`);
  }

  const maxNodes = Math.max(0, Math.min(HARD_MAX_NODES, ...fits));
  const issues: InputIssue[] = [];
  if (hard.length || (soft.length && !opts.force)) {
    const t = lab.topology;
    const path = nodeField(lab);
    const line = opts.lineOf?.(t.file, path);
    const what =
      e.provider === 'sim'
        ? `~${n(e.namespaces)} namespaces, ~${n(e.processes)} processes (~${n(e.threads)} threads) and ~${GiB(e.memoryMiB)} GiB of memory`
        : `${n(e.containers)} ${e.provider === 'docker' ? 'containers' : 'VMs'} and ~${GiB(e.memoryMiB)} GiB of memory (Talos minimum per node)`;
    const machine = `this machine has ${GiB(m.availableMemMiB)} GiB of memory available and ${m.cpus} CPU${m.cpus === 1 ? '' : 's'}`;
    const why = hard.length ? hard.join('; ') : soft.join('; ');
    const tail = hard.length ? `expected at most ${n(Math.min(maxNodes, HARD_MAX_NODES))} nodes here (--force does not lift this limit)` : `expected at most ${n(maxNodes)} nodes here (--force overrides)`;
    issues.push({
      file: (opts.show ?? ((x: string) => x))(t.file),
      path: path.join('.'),
      message: `${n(e.nodes)} nodes on ${e.provider} need ${what}; ${machine} — ${why}; ${tail}${line ? ` (line ${line})` : ''}`,
    });
  }
  return { estimate: e, soft, hard, maxNodes, issues };
}
