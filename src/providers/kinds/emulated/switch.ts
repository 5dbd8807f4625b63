/**
 * A strategy switch on an emulated lab (pure): from the SimPlan that runs to the next one,
 * changing only what differs. The rule, per thing a plan starts:
 *
 *  - an agent's components: the longest common prefix of identical specs is kept (see
 *    src/emulation/agent/diff.ts — order and predecessors stay as on a fresh start); the rest of
 *    the old list stops gracefully, last first, the rest of the new one starts. An agent with
 *    nothing in common (or on a host only one plan uses) is stopped, its node's kernel state reset
 *    and a fresh agent started — exactly the unapply + apply path;
 *  - a node's FRR speaker: kept only when its spec is identical AND the node's component list is
 *    identical too; otherwise the speaker AND the node's agent are renewed. Components announce
 *    through the speaker (routes, `network` statements): a kept speaker under changed components
 *    could keep an announcement a fresh one would not have, and a kept component would not
 *    announce again to a new speaker;
 *  - a daemon (HAProxy…): kept when its whole spec (host, name, argv, files, check) is identical;
 *  - a BGP router's FRR: kept when its frr.conf is identical (the strategies' BGP timers and BFD
 *    decide it), else restarted with the new one. A router restart ends every node session, so
 *    then no speaker is kept either: each is renewed with its node's agent, as on a fresh apply.
 *
 * What a kept component carries over is only what it already carries from one drill to the next
 * inside one strategy (its lease or address if it holds one, its peers, its health scores): every
 * drill after a strategy's first starts from exactly such a state, and the drills find the
 * holder they act on by observing it. What no fresh start would have — a stopped component's
 * addresses and nft tables, conntrack entries, neighbour caches — does not survive: a graceful
 * stop removes what the component added (the graceful-shutdown drill relies on the same), a fully
 * replaced node gets the kernel reset unapply does, and the transient state of every host is
 * flushed before every drill (RunningLab.flushTransientState).
 *
 * `applyPlanDiff(old, diffPlans(old, next))` rebuilds `next` exactly (test/unit/plan-switch.test.ts):
 * what runs after a switch is what a fresh apply of `next` would run, in the same order.
 */
import type { DaemonSpec, SimPlan, SpeakerSpec } from '../../../strategies/types.js';
import type { ComponentSpec } from '../../../emulation/agent/types.js';
import { canonical, keptPrefix } from '../../../emulation/agent/diff.js';

export type AgentChange =
  /** identical list: the agent is left alone */
  | { mode: 'keep' }
  /** the first `keep` components stay; `stop` (old tail) stops, `start` (new tail) starts, in process */
  | { mode: 'partial'; keep: number; stop: ComponentSpec[]; start: ComponentSpec[] }
  /** nothing in common: agent stopped, kernel state reset, new agent started */
  | { mode: 'replace'; start: ComponentSpec[] }
  | { mode: 'stop' }
  | { mode: 'start'; start: ComponentSpec[] };

export interface PlanDiff {
  agents: Record<string, AgentChange>;
  speakers: { keep: string[]; stop: string[]; start: Record<string, SpeakerSpec> };
  /** `run`: the next plan's daemons in its order; a kept one is the OLD spec object (its process runs on) */
  daemons: { stop: DaemonSpec[]; run: { spec: DaemonSpec; keep: boolean }[] };
  /** routers whose frr.conf changes (router name → the new one); the others keep theirs */
  routers: { keep: string[]; restart: Record<string, string> };
}

const daemonKey = (d: DaemonSpec) => canonical(d);
const speakerKey = (s: SpeakerSpec) => canonical(s);

export function diffPlans(old: SimPlan, next: SimPlan): PlanDiff {
  const routers: PlanDiff['routers'] = { keep: [], restart: {} };
  for (const [r, conf] of Object.entries(next.routers ?? {})) {
    if (old.routers?.[r] === conf) routers.keep.push(r);
    else routers.restart[r] = conf;
  }
  for (const r of Object.keys(old.routers ?? {})) if (!next.routers?.[r]) routers.keep.push(r);
  const routersRestart = Object.keys(routers.restart).length > 0;
  const agents: Record<string, AgentChange> = {};
  const speakers: PlanDiff['speakers'] = { keep: [], stop: [], start: {} };
  for (const host of new Set([...Object.keys(old.components), ...Object.keys(next.components), ...Object.keys(old.speakers), ...Object.keys(next.speakers)])) {
    const a = old.components[host];
    const b = next.components[host];
    const k = a && b ? keptPrefix(a, b) : 0;
    const same = Boolean(a && b && k === a.length && k === b.length);
    const sa = old.speakers[host];
    const sb = next.speakers[host];
    // a speaker and the components that announce through it go together: both kept, or both renewed
    const speakerKept = Boolean(sa && sb && same && !routersRestart && speakerKey(sa) === speakerKey(sb));
    const speakerTouched = Boolean(sa || sb) && !speakerKept;
    if (speakerKept) speakers.keep.push(host);
    else {
      if (sa) speakers.stop.push(host);
      if (sb) speakers.start[host] = sb;
    }
    if (a && !b) agents[host] = { mode: 'stop' };
    else if (!a && b) agents[host] = { mode: 'start', start: b };
    else if (a && b) {
      if (same && !speakerTouched) agents[host] = { mode: 'keep' };
      else if (k === 0 || speakerTouched) agents[host] = { mode: 'replace', start: b };
      else agents[host] = { mode: 'partial', keep: k, stop: a.slice(k), start: b.slice(k) };
    }
  }
  // each running daemon serves at most one daemon of the next plan
  const free = [...old.daemons];
  const run = next.daemons.map((d) => {
    const i = free.findIndex((x) => daemonKey(x) === daemonKey(d));
    return i >= 0 ? { spec: free.splice(i, 1)[0]!, keep: true } : { spec: d, keep: false };
  });
  const daemons: PlanDiff['daemons'] = { stop: free, run };
  return { agents, speakers, daemons, routers };
}

/**
 * What runs after the diff is carried out on `old`: kept things taken from OLD, started things
 * from the diff. Equal to the next plan when the diff is right (the equivalence the unit test
 * checks).
 */
export function applyPlanDiff(old: SimPlan, d: PlanDiff): SimPlan {
  const components: Record<string, ComponentSpec[]> = {};
  for (const [host, c] of Object.entries(d.agents)) {
    if (c.mode === 'keep') components[host] = old.components[host]!;
    else if (c.mode === 'partial') components[host] = [...old.components[host]!.slice(0, c.keep), ...c.start];
    else if (c.mode === 'replace' || c.mode === 'start') components[host] = c.start;
  }
  const speakers: Record<string, SpeakerSpec> = {};
  for (const n of d.speakers.keep) speakers[n] = old.speakers[n]!;
  Object.assign(speakers, d.speakers.start);
  const routers: Record<string, string> = {};
  for (const r of d.routers.keep) if (old.routers?.[r] !== undefined) routers[r] = old.routers[r]!;
  Object.assign(routers, d.routers.restart);
  return { components, speakers, daemons: d.daemons.run.map((r) => r.spec), ...(old.routers || Object.keys(routers).length ? { routers } : {}) };
}
