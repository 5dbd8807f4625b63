/**
 * A strategy = control-plane endpoint mechanism × service LB mechanism (DESIGN.md).
 * A mechanism is one module that RENDERS its artifacts from the resolved topology (pure: topology
 * in, text/specs out); it does not know which provider runs them. Providers consume `files`
 * (docker/qemu/dry-run) or `sim` (the sim provider's agents and daemons).
 */
import type { CpMechanismId, DrillKind, StrategyRef, SvcMechanismId, Topology, Target } from '../model/types.js';
import type { ComponentSpec } from '../agent/types.js';

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
  kind: 'talos-patch' | 'k8s-manifest' | 'haproxy' | 'frr' | 'other';
  /** hosts the file applies to (informational) */
  hosts?: string[];
}

/** What the sim provider needs to run a mechanism. Merged over all mechanisms of a strategy. */
export interface SimPlan {
  /** emulated components each host's agent runs (host name → specs) */
  components: Record<string, ComponentSpec[]>;
  /** per-node FRR BGP speakers (node name → speaker). Two mechanisms wanting one = pitfall 3. */
  speakers: Record<string, SpeakerSpec>;
  /** external HAProxy on the lb host */
  haproxy?: { host: string; config: string };
}

export interface SpeakerSpec {
  /** which mechanism owns TCP/179 on this node */
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
}

export interface Mechanism {
  id: CpMechanismId | SvcMechanismId;
  kind: 'cp' | 'svc';
  title: string;
  /** one paragraph for the report: how it works, with the timers that matter */
  summary: string;
  /** upstream sources of every emulated timer/rule (file or doc + version) */
  sources: string[];
  uses: { l2: boolean; bgp: boolean };
  /** pure renderer */
  render(ctx: MechanismContext): { files?: RenderedFile[]; sim?: Partial<SimPlan> };
  /** expected client-seen outage for a drill on the given target, from the configured timers; null = not predicted */
  expectedOutage(drill: DrillKind, target: Target, ctx: MechanismContext): Band | null;
  /** null when the drill makes sense for this mechanism, else the reason it does not */
  drillIssue?(drill: DrillKind, target: Target): string | null;
}

export interface Strategy {
  ref: StrategyRef;
  cp: Mechanism;
  svc: Mechanism;
  /** conflicts found when composing (pitfalls 2 and 3), as human sentences */
  conflicts: string[];
}
