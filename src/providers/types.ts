/**
 * A provider builds hosts and runs artifacts, through a phased interface:
 * check → up (returns a RunningLab, AsyncDisposable: `await using lab = await provider.up(...)`)
 * → apply(strategy) → drill primitives / restore → unapply → down.
 */
import type { Lab, StrategyRef, Target } from '../model/types.js';
import type { Artifacts } from '../strategies/types.js';
import type { LabState } from '../state/state.js';
import type { AgentEvent } from '../emulation/agent/types.js';

export type ProviderName = 'sim' | 'docker' | 'qemu';

export type Support = { supported: true } | { supported: false; reason: string };

/** What a drill can do to a host Every primitive has `restore`. */
export type Primitive =
  | 'shutdown' // graceful: SIGTERM, daemons say goodbye (resign, BGP NOTIFICATION, memberlist leave)
  | 'crash' // SIGKILL every process of the node and drop its traffic: peers notice only by timeouts
  | 'freeze' // SIGSTOP the node's processes; its kernel still answers ARP and accepts TCP handshakes
  | 'partition' // drop all the node's traffic both ways; processes keep running
  | 'link-flap' // link down for opts.downMs, then up
  | 'leave' // node leaves the BGP fabric gracefully (speaker stops: withdraw) — ECMP churn
  | 'join'; // node (re)joins: speaker starts announcing again

export interface UpContext {
  id: string; // lab instance id
  prefix: string; // name prefix of everything created, e.g. 'tlab-smb-3f2a'
  state: LabState;
  signal?: AbortSignal;
  progress?(message: string): void;
}

export interface PlanStep {
  what: string; // human line
  command?: string; // exact command where there is one
}

/** a process of the lab, as its runtime supervises it on this machine */
export interface LabProcess {
  /** host/name, e.g. 'cp1/agent' */
  name: string;
  pid: number;
}

export interface RunningLab extends AsyncDisposable {
  readonly id: string;
  readonly prefix: string;
  readonly lab: Lab;
  readonly provider: ProviderName;
  readonly bringUpMs: number;
  /** real component versions (frr, haproxy, etcd, kernel, talos…) */
  components(): Promise<Record<string, string>>;
  /** start a strategy's artifacts and wait until its endpoint and services are ready */
  apply(strategy: StrategyRef, artifacts: Artifacts): Promise<void>;
  /** stop the strategy's components (the base network and etcd stay) */
  unapply(strategy: StrategyRef): Promise<void>;
  /**
   * true: apply() over a running strategy switches to the new one in place, changing only what
   * differs, and leaves the lab as a fresh apply would — the run flow then skips the unapply
   * between two strategies of one instance
   */
  readonly switches?: boolean;
  /**
   * empty every host's connection tracking and dynamic neighbour cache: what one drill leaves
   * behind (SYN_SENT entries DNATed to a dead pod, a neighbour entry for an address that moved)
   * must not steer the next. Called before every measured drill; absent = nothing to flush.
   */
  flushTransientState?(): Promise<void>;
  /**
   * restart what a drill left stuck that the real component never leaves by itself (a hung
   * process), then wait until the endpoints serve again; returns `host: what` for each. Called
   * after every measured drill; absent = nothing can get stuck.
   */
  unstick?(): Promise<string[]>;
  /**
   * the in-cluster observers (kubelet-client through KubePrism) probe only while a fault is being
   * measured: between drills and during baselines their new TLS connection every 100 ms per
   * observer is load of the measuring kit, not of a cluster. Absent = nothing to switch.
   */
  observing?(on: boolean): Promise<void>;
  /** nodes currently holding/announcing the target's address, observed (kernel addresses, router routes) */
  holders(target: Target): Promise<string[]>;
  inject(primitive: Primitive, host: string, opts?: { downMs?: number }): Promise<void>;
  restore(host: string): Promise<void>;
  /** make the router (and LAN clients) ignore gratuitous ARP, like sticky-ARP gear */
  setGarpIgnored(on: boolean): Promise<void>;
  /** call an RPC method on a host's agent, e.g. call('client1', 'traffic.start', {...}) */
  call<T = unknown>(host: string, method: string, params?: unknown, timeoutMs?: number): Promise<T>;
  /**
   * the processes the lab supervises on this machine (every host's agents and daemons, not its
   * observers), read for how long they wait for a CPU (../orchestrator/cpu-wait.ts); absent when
   * the runtime's processes are not visible from here
   */
  processes?(): LabProcess[];
  /** events emitted by agents and watchers since t (epoch ms) */
  events(sinceT: number): Promise<AgentEvent[]>;
  /** run a command on a host (namespace / container) */
  exec(host: string, cmd: string, args: string[]): Promise<{ stdout: string; stderr: string; exitCode: number }>;
  down(): Promise<void>;
}

export interface Provider {
  readonly name: ProviderName;
  /** true = Talos/MetalLB/kube-vip behaviour is emulated */
  readonly emulated: boolean;
  /** what runs on the nodes: real Talos, or the lab's emulated nodes (default: emulated when `emulated`) */
  readonly nodes?: 'talos' | 'emulated';
  /**
   * how many instances of one lab can run side by side on this machine (each strategy of a run on
   * its own instance): namespaces isolate everything, Docker networks with the same subnets clash
   * (default 1)
   */
  readonly maxInstances?: number;
  /** null/supported when the provider can do the primitive for this strategy, else why not */
  supportsDrill?(primitive: Primitive, strategy: StrategyRef): Support;
  /** throws PrerequisiteError (exit 3, with the fix command) when the machine lacks something */
  check(lab: Lab): Promise<void>;
  supports(strategy: StrategyRef, lab: Lab): Support;
  up(lab: Lab, ctx: UpContext): Promise<RunningLab>;
  /** --dry-run: the plan, and every rendered artifact written below renderDir; touches nothing */
  plan(lab: Lab, ctx: { prefix: string; renderDir?: string }): Promise<PlanStep[]>;
}
