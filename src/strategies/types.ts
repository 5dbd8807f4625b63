/**
 * A strategy = control-plane endpoint mechanism × service LB mechanism. A MECHANISM is a kind, in
 * the sense of containerlab's node kinds: `src/strategies/<id>/` owns everything about it — its
 * id and traits, the real manifests and Talos patches it renders, its emulated agent, its expected
 * outage bands, how its holder is observed, its timers, and what a real cluster needs for it
 * (CNI, install and removal steps). The registry (./registry.ts) lists the mechanisms; the model,
 * the providers and the report ask them through these types and never switch on an id.
 *
 * A mechanism plays one or both ROLES: `cp` (the Kubernetes API endpoint) and `svc` (Services of
 * type LoadBalancer). kube-vip ARP is both; MetalLB only `svc`; Talos's VIP only `cp`.
 *
 * Rendering is pure (topology in, files and a sim plan out): the same render feeds `--dry-run
 * --render DIR`, the real-cluster providers (`files`) and the emulated nodes (`sim`).
 */
import type { DrillKind, LbService, Settings, StrategyRef, Timers, Topology } from '../model/types.js';
import type { TimersOverride } from '../model/timers.js';
import type { ComponentSpec } from '../emulation/agent/types.js';

export interface Band {
  min: number; // ms
  max: number; // ms
  /** the formula in words, shown in the report, e.g. "session TTL 60 s + campaign retry 1 s ± GARP" */
  basis: string;
}

export interface RenderedFile {
  /** relative path inside the render dir, e.g. `talos/controlplane-vip.patch.yaml` */
  path: string;
  content: string;
  /** `config` = a daemon's own config (a load balancer's), `frr` = a router's */
  kind: 'talos-patch' | 'k8s-manifest' | 'config' | 'frr' | 'other';
  /** hosts the file applies to (informational) */
  hosts?: string[];
  /**
   * How a real cluster gets it: `talos` = part of the machine config (a Talos patch, static pods
   * through machine.pods); `kubectl` = applied to the running cluster; `lb-host` = copied to the
   * load-balancer box; `router` = the routers' own config; `doc` = read by people only.
   */
  delivery?: 'talos' | 'kubectl' | 'lb-host' | 'router' | 'doc';
}

/** A real daemon a mechanism runs on a host of an emulated lab (e.g. HAProxy on the LB box). */
export interface DaemonSpec {
  host: string;
  /** short name, unique on the host (used in process names and logs) */
  name: string;
  cmd: string;
  args: string[];
  /** files written before start: absolute path inside the lab's state dir is chosen by the runtime; `{file:<name>}` in args is replaced by that path */
  files?: Record<string, string>;
  /** argv run once before start to check the config (non-zero exit = the config is refused) */
  check?: string[];
  /** time the daemon needs after start before it serves (e.g. HAProxy's `rise` health checks) */
  readyAfterMs?: number;
}

/** What the emulated nodes need to run a mechanism. Merged over all mechanisms of a strategy. */
export interface SimPlan {
  /** emulated components each host's agent runs (host name → specs) */
  components: Record<string, ComponentSpec[]>;
  /** per-node FRR BGP speakers (node name → speaker). Two mechanisms wanting one = pitfall 3. */
  speakers: Record<string, SpeakerSpec>;
  /** real daemons on lab hosts (HAProxy on the load-balancer box…) */
  daemons: DaemonSpec[];
  /** the BGP routers' frr.conf under this strategy (router name → config); absent: the routers keep what they run */
  routers?: Record<string, string>;
}

export interface SpeakerSpec {
  /** which mechanism family owns TCP/179 on this node */
  owner: string;
  asn: number;
  frrConf: string;
  /** prefixes announced as soon as the speaker is up (e.g. kube-vip BGP mode VIP) */
  staticPrefixes: string[];
}

export interface Artifacts {
  files: RenderedFile[];
  sim: SimPlan;
}

export interface MechanismContext {
  topology: Topology;
  strategy: StrategyRef;
  /** the strategy's two roles: a role may depend on the other (kube-vip for the API takes Services only beside another controller) */
  roles: { cp: CpRole; svc: SvcRole };
}

export interface Traits {
  /** moves an address on one L2 segment (ARP/GARP) */
  l2: boolean;
  /** announces over BGP (needs a router with BGP; owns TCP/179 on the node) */
  bgp: boolean;
  /** how client traffic spreads over the nodes: one entry node, or many */
  spread: 'active-passive' | 'active-active';
}

export interface CpTraits extends Traits {
  /** the API endpoint clients use: the topology's VIP, or the external load-balancer host */
  endpoint: 'vip' | 'lb-host';
}

/**
 * How the current holder of a role's address is observed (never predicted):
 *  - `address`: the nodes with the address on a link (kernel addresses; Talos AddressStatus);
 *  - `routes`: the next hops of the routers that face the nodes (BGP/ECMP);
 *  - `lb-host`: the external load balancer itself.
 */
export type HolderRule = 'address' | 'routes' | 'lb-host';

/** A strategy option a mechanism understands (`strategies[].options.<name>` in a lab file). */
export interface OptionDef {
  describe: string;
  /** null when the option means something beside `other` (the strategy's other role), else why not */
  meaningful?(other: Role): string | null;
}

/**
 * A claim the article makes about the mechanism in this role, checked by the report against what
 * was measured (src/report/recommend.ts knows how to check each kind).
 */
export type ArticleClaim =
  | 'graceful-near-instant'
  | 'crash-about-a-minute'
  | 'api-active-passive'
  | 'api-active-active'
  | 'l2-single-entry'
  | 'bgp-ecmp-spread'
  | 'bgp-churn-resets';

/** What a real cluster (Talos on docker/qemu, an existing cluster) needs for a role. */
export interface RealSupport {
  /** the CNI the cluster must be built with (default: Talos's own, flannel) */
  cni?: 'cilium';
  /** commands that install the role's controller before its rendered manifests are applied */
  install?(ctx: RealContext): RealStep[];
  /** commands that take it away again (after its rendered manifests were deleted) */
  uninstall?(ctx: RealContext): RealStep[];
  /** versions of what the role installs, for results.json */
  versions?: Record<string, string>;
  /**
   * the role's speakers withdraw a node's announcements when the node gets the
   * `node.kubernetes.io/exclude-from-external-load-balancers` label (MetalLB ≥ 0.13.4): how a real
   * cluster's node leaves (and re-joins) the BGP fabric gracefully for the ECMP churn drills
   */
  honoursExcludeLabel?: boolean;
  /** nodes announcing the role's address, read from the cluster's own status (when `holders` is not enough) */
  holders?(ctx: RealContext, service: LbService): Promise<string[]>;
  /** the Service annotation the role's controller reads a requested address from (else the kind uses spec.loadBalancerIP) */
  addressAnnotation?: string;
  /** kernel modules the role needs on the node's kernel — the HOST's for Talos in containers, which cannot load them (e.g. ip_vs for IPVS) */
  hostModules?(ref: StrategyRef): string[];
}

export interface RealStep {
  what: string;
  /** argv; `kubectl`/`helm` are run with the lab's kubeconfig by the provider */
  argv: string[];
  /** retried until it succeeds or this long has passed (webhooks that come up late) */
  retryMs?: number;
}

export interface RealContext {
  topology: Topology;
  strategy: StrategyRef;
  /** the rendered files of the strategy, by path, where the provider wrote them */
  fileOf(path: string): string;
  /** runs kubectl against the cluster (for `holders`) */
  kubectl(args: string[]): Promise<{ stdout: string; exitCode: number }>;
}

/** The run a fidelity note is asked about: the drill and the target the client measured. */
export interface FidelityDrill {
  kind: DrillKind;
  target: 'api' | 'service';
}

/**
 * A known difference between what the lab runs and the real component, in one sentence that says
 * its effect on the measured outage (direction, size). docs/fidelity.md has the long form, under
 * the anchor `#<id>`; the orchestrator attaches the notes that apply to every run record
 * (results.json `runs[].fidelity`) and the report shows them per run.
 */
export interface FidelityNote {
  /** stable, unique over the kit and all mechanisms; the anchor in docs/fidelity.md */
  id: string;
  /** the difference and its effect on the outage, e.g. "… sim outage up to 3 s shorter" */
  text: string;
  /**
   * the runs it applies to (the strategy's own options and the topology when the answer depends
   * on them, e.g. BFD); absent = every run on the role's own target (cp → api, svc → service)
   */
  applies?(drill: FidelityDrill, ctx: { ref: StrategyRef; topology: Topology }): boolean;
  /**
   * `emulated` (default): only when the lab's emulation stands in for the component (sim, or
   * emulated nodes on docker); `always`: also on real Talos (the lab's own client and probe)
   */
  scope?: 'emulated' | 'always';
}

/** One role of a mechanism (the part a strategy composes). */
export interface Role {
  /** the mechanism's id */
  id: string;
  kind: 'cp' | 'svc';
  /** the mechanism's family (see Mechanism.family) */
  family: string;
  title: string;
  /** one paragraph for the report: how it works, with the timers that matter */
  summary: string;
  /** upstream sources of every emulated timer/rule (file or doc + version) */
  sources: string[];
  traits: Traits;
  holders: HolderRule;
  /** pure renderer */
  render(ctx: MechanismContext): { files?: RenderedFile[]; sim?: Partial<SimPlan> };
  /** expected client-seen outage for a drill on this role's target, from the configured timers; null = not predicted */
  expectedOutage(drill: DrillKind, ctx: MechanismContext): Band | null;
  /**
   * A crash with no peer (one candidate): once the node is back and booted, how long this role may
   * still take before it serves again, from its timers (e.g. an election that must reach an API
   * server first). Absent: it serves as soon as its node has booted.
   */
  rejoin?(ctx: MechanismContext): { ms: number; basis: string } | null;
  /** null when the drill makes sense for this role, else the reason it does not */
  drillIssue?(drill: DrillKind): string | null;
  /**
   * null when the role can run in this strategy as the lab configures it (its settings, timers and
   * options, e.g. a feature its pinned release lacks), else why not; `option` names the strategy
   * option the problem is about, when one is
   */
  strategyIssue?(ref: StrategyRef, t: Topology): { option?: string; message: string } | null;
  /** strategy options this role reads */
  options?: Record<string, OptionDef>;
  /** does this role take Services that have no spec.loadBalancerClass? (pitfall 2 when two controllers do) */
  claimsClasslessServices?(ref: StrategyRef): boolean;
  articleClaims?: ArticleClaim[];
  /** where the lab's stand-in differs from the real component, per run (docs/fidelity.md) */
  fidelity?: FidelityNote[];
  /** the BGP timers its speakers use (default `timers.bgp`); the routers are rendered to match */
  bgpTimers?(t: Topology): Timers['bgp'];
  real?: RealSupport;
}

export interface CpRole extends Role {
  kind: 'cp';
  traits: CpTraits;
}

export interface SvcRole extends Role {
  kind: 'svc';
}

/** A timer group a mechanism reads: `timers.<group>` in lab and topology files. */
export interface TimerGroupDef {
  group: string;
  /** every field with its documented upstream default (sources in the defining module) */
  defaults: Record<string, number | boolean>;
  /** combinations the real component rejects or silently rewrites (cross-field) */
  issues?(t: Timers): { fields: string[]; message: string }[];
}

/**
 * A settings group a mechanism reads: `settings.<group>` in lab and topology files — its choices
 * that are not timers (e.g. the upstream release it emulates). Composed like the timer groups
 * (src/model/settings.ts): the schema is built from `defaults` (a string field takes a string, a
 * number a number, a boolean a boolean), the files merge over the defaults field by field.
 */
export interface SettingsGroupDef {
  group: string;
  /** every field with its default (the reason for each in the defining module) */
  defaults: Record<string, string | number | boolean>;
  /** values the mechanism does not know, or combinations with the timers the real component rejects */
  issues?(s: Settings, t: Timers): { fields: string[]; message: string }[];
  /**
   * Timer defaults that follow from the settings (e.g. an older release's defaults): applied over
   * the registry's timer defaults and under the files' own `timers:`, so a file that sets a timer wins.
   */
  timerDefaults?(s: Settings): TimersOverride;
}

export interface Mechanism {
  id: string;
  /**
   * The product. Two roles of one family on a node are one process (kube-vip for the API and for
   * Services) and may share a BGP speaker; two families both wanting TCP/179 is pitfall 3.
   */
  family: string;
  cp?: CpRole;
  svc?: SvcRole;
  /** timer groups defined by this mechanism (shared groups may be listed by several) */
  timers?: TimerGroupDef[];
  /** its settings group (a group shared by two mechanisms of one family is the same object) */
  settings?: SettingsGroupDef;
  /** agent components it provides: kind → module URL (default export: a ComponentFactory) */
  components?: Record<string, string>;
  /** real software the emulation runs for it on the lab's hosts: name → argv printing its version + a pattern */
  versions?: Record<string, { argv: string[]; pattern: RegExp }>;
  /** what an emulated lab needs on the machine to run it: a binary and the Debian package that has it */
  hostNeeds?: { bin: string; debian: string }[];
}

export interface Strategy {
  ref: StrategyRef;
  cp: CpRole;
  svc: SvcRole;
  /** conflicts found when composing (pitfalls 2 and 3), as human sentences */
  conflicts: string[];
}
