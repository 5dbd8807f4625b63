/**
 * A runtime is WHERE a lab's hosts run (containerlab's container runtimes): network namespaces on
 * bridges (netns), containers on Docker networks (docker), VMs (qemu). It builds the topology's
 * hosts and segments, runs processes on a host, and does to a whole host what a drill needs —
 * crash it, boot it again, freeze it, cut its links — each the runtime's own way (SIGKILL under an
 * nftables drop on netns, `docker kill` on docker). What runs on the hosts (emulated agents with
 * real FRR/etcd/HAProxy, or real Talos) is the node KIND's business, written once against this
 * interface.
 *
 * Contract every runtime keeps:
 *  - a host's processes see the lab's state directory and this checkout at the same absolute
 *    paths as the orchestrator (netns: the same filesystem; docker: bind mounts), so config
 *    files, unix sockets and event files work unchanged;
 *  - every host, link and process is recorded in the lab state before (or, for a pid, right
 *    after) it is created and is named with the lab's prefix, so `lab clean` finds it;
 *  - nothing is changed in the host machine's root network namespace.
 */
import type { Host, Topology } from '../../model/types.js';
import type { RunResult } from '../../util/proc.js';

/** what a supervised process is to its host: FRR, etcd, the agent, a mechanism's daemon, an observer */
export type ProcRole = 'frr' | 'etcd' | 'daemon' | 'agent' | 'watcher';

export interface ProcSpec {
  role: ProcRole;
  /** unique on its host, e.g. 'zebra', 'etcd', 'agent', 'haproxy' */
  name: string;
  cmd: string;
  args: string[];
  env?: Record<string, string>;
  cwd?: string;
  /** each stdout line as it comes, with the time it was read (epoch ms): watchers */
  onLine?: (line: string, t: number) => void;
}

/** A process a runtime supervises on a host; started again with the same spec by `respawn`. */
export interface HostProc {
  readonly host: string;
  readonly role: ProcRole;
  readonly name: string;
  readonly spec: ProcSpec;
}

export interface ExecOptions {
  input?: string;
  timeoutMs?: number;
  /** false: a non-zero exit is returned, not thrown */
  reject?: boolean;
  env?: Record<string, string>;
  signal?: AbortSignal;
}

export interface HostRuntime {
  readonly name: 'netns' | 'docker';
  readonly topology: Topology;
  /** the name every object of the lab starts with, e.g. 'tlab-smb-3f2a' */
  readonly prefix: string;
  /** versions of what the runtime itself is (kernel, Docker…) for results.json */
  versions(): Promise<Record<string, string>>;

  /** create every host and segment of the topology (addresses, routes, neighbour timers, forwarding) */
  build(signal?: AbortSignal): Promise<void>;
  /** run a command on a host and wait for it */
  exec(host: string, cmd: string, args: string[], opts?: ExecOptions): Promise<RunResult>;
  /** write a file the host's processes read, at an absolute path of the host's filesystem view; recorded for removal */
  writeFile(host: string, path: string, content: string, opts?: { owner?: string; mode?: number }): Promise<void>;
  /** start a supervised long-running process on a host */
  start(host: string, spec: ProcSpec): Promise<HostProc>;
  /** SIGTERM, wait up to graceMs for it to exit, then SIGKILL */
  stop(p: HostProc, graceMs?: number): Promise<void>;
  /** SIGKILL, no goodbye */
  kill(p: HostProc): Promise<void>;
  /** SIGSTOP / SIGCONT */
  signal(p: HostProc, sig: 'SIGSTOP' | 'SIGCONT'): Promise<void>;
  /** start a stopped or killed process again with its spec */
  respawn(p: HostProc): Promise<void>;
  isRunning(p: HostProc): boolean;
  /**
   * the pid of a running process on THIS machine's process table, null when it is not running or
   * the runtime cannot name one (absent: no process of this runtime is visible from here)
   */
  pidOf?(p: HostProc): number | null;
  /** the last lines a process wrote (for readiness errors) */
  logTail(p: HostProc, lines?: number): string;
  /** the processes started on a host, in start order */
  procs(host: string, role?: ProcRole): HostProc[];
  /** stop supervising (after stop) */
  forget(p: HostProc): void;

  // --- whole-host faults, each undone by the matching call ---------------------------------
  /** drop everything the host sends, receives or forwards, ARP included; its processes run on */
  isolate(host: string): Promise<void>;
  unisolate(host: string): Promise<void>;
  /** every process of the host dies at once and nothing it would still send gets out */
  crash(host: string): Promise<void>;
  /** graceful: the given processes get SIGTERM one after the other (each may say goodbye), then the host is down */
  shutdown(host: string, order: HostProc[], graceMs: number): Promise<void>;
  /** after crash/shutdown: the host is up again with what a reboot gives (own addresses and routes, no tables or addresses its processes added); no process runs yet */
  boot(host: string): Promise<void>;
  /** every process of the host stops in place; its kernel still answers ARP and TCP handshakes */
  freeze(host: string): Promise<void>;
  thaw(host: string): Promise<void>;
  /** the host's first link goes away for downMs and comes back with the same address */
  linkFlap(host: string, downMs: number, signal?: AbortSignal): Promise<void>;
  /** what a reboot forgets, without rebooting: addresses and nft tables the host's processes added */
  resetKernelState(host: string): Promise<void>;
  /** what one drill leaves in a host's kernel for the next: connection tracking and dynamic neighbour entries */
  flushTransientState(host: string): Promise<void>;

  /** remove everything the lab created (the same code `lab clean` runs on the recorded state) */
  down(): Promise<void>;
}

export type HostOf = (name: string) => Host;
