/**
 * The per-host agent: ONE process per sim host (started inside the host's network namespace by the
 * sim provider) that hosts the emulated components of that host (API server stand-in, KubePrism,
 * Talos VIP controller, kube-vip, MetalLB speaker, echo pods, the client's traffic tools…).
 * The orchestrator talks to it over a unix socket (newline-delimited JSON RPC, see ./rpc.ts).
 * Components emit timestamped events (JSONL, one file per host) that the measurement reads for
 * phase breakdowns (detect / announce), e.g. `{t, host, component:'talos-vip', type:'acquired', ip}`.
 */
import type { Topology } from '../../model/types.js';
import type { RunOptions, RunResult } from '../../util/proc.js';

export interface ComponentSpec {
  /** registry key, e.g. 'apiserver', 'kubeprism', 'talos-vip', 'kube-vip', 'metallb', 'echo', 'traffic' */
  kind: string;
  /** instance name when a host runs several of one kind (default = kind) */
  name?: string;
  config: Record<string, unknown>;
}

export interface AgentSpec {
  host: string;
  ns: string;
  /** lab state dir (certs, logs, sockets live below it) */
  stateDir: string;
  socket: string;
  eventsFile: string;
  topology: Topology;
  components: ComponentSpec[];
}

export interface AgentEvent {
  t: number; // epoch ms with fractions (performance.timeOrigin + performance.now())
  host: string;
  component: string;
  type: string;
  [k: string]: unknown;
}

export interface AgentContext {
  host: string;
  spec: AgentSpec;
  topology: Topology;
  /** append an event (timestamped now) to this host's events file */
  emit(component: string, type: string, data?: Record<string, unknown>): void;
  log(component: string, msg: string): void;
  /** aborted when the agent stops */
  signal: AbortSignal;
  /** the process runner, already inside this host's namespace */
  run(cmd: string, args: string[], opts?: Omit<RunOptions, 'ns'>): Promise<RunResult>;
}

export interface AgentComponent {
  readonly kind: string;
  start(): Promise<void>;
  /** graceful stop: resign leases, withdraw announcements, close listeners */
  stop(): Promise<void>;
  status?(): Record<string, unknown> | Promise<Record<string, unknown>>;
  /** component-specific RPC methods, called as `<name>.<method>` */
  call?(method: string, params: any): Promise<unknown>;
  /**
   * An operator's fix for a state the real component never leaves by itself (a process that hangs
   * instead of exiting: `kubectl delete pod`, and the kubelet starts it again). Returns what was
   * stuck and done, or null when nothing was. The lab calls it after every drill, so that one
   * drill's aftermath is reported with that drill and never measured as the next one's outage.
   */
  unstick?(): Promise<string | null>;
}

export type ComponentFactory = (ctx: AgentContext, config: any) => AgentComponent;
