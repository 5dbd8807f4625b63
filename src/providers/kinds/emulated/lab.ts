/**
 * A running lab of EMULATED nodes (RunningLab) on any runtime: in `up` the runtime builds the
 * hosts and segments, then this kind starts FRR on the routers, a real etcd cluster on the
 * control planes, the lab PKI and the clients' traffic agents; each strategy's SimPlan (node
 * speakers, the roles' daemons, one agent per node) comes and goes with apply/unapply — applying
 * over a running strategy changes only what differs (./switch.ts says what is kept and why); drill
 * primitives act on a node through the runtime (crash, boot, freeze, isolate…) and on the node's
 * processes in the order a real node stops them.
 *
 * Everything is recorded in the lab state before (hosts, dirs) or right after (pids) it is
 * created; `down` is the runtime's `cleanLab` on that state: the same code `lab clean` runs after
 * a SIGKILL, so the normal path and the recovery path cannot drift apart.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Host, Lab, Node, Router, StrategyRef, Target } from '../../../model/types.js';
import type { Artifacts, DaemonSpec, SimPlan } from '../../../strategies/types.js';
import type { AgentEvent, AgentSpec, ComponentSpec } from '../../../emulation/agent/types.js';
import type { LabProcess, Primitive, ProviderName, RunningLab, UpContext } from '../../types.js';
import type { HostProc, HostRuntime } from '../../runtimes/types.js';
import { unmeasuredStop, type TrafficStart, type TrafficStatus } from '../../../traffic/rpc.js';
import { call as rpcCall } from '../../../emulation/agent/rpc.js';
import { readEvents } from '../../../emulation/agent/events.js';
import { LabError, settleAll } from '../../../util/errors.js';
import { now, sleep } from '../../../util/proc.js';
import { REPO_ROOT } from '../../../model/load.js';
import { renderRouterFrr, nodeRouter } from '../../../render/frr.js';
import { makePki } from '../../../emulation/pki.js';
import { MECHANISMS } from '../../../strategies/registry.js';
import { apiEndpoint, claimsConflict, composeStrategy } from '../../../strategies/compose.js';
import { allHosts } from '../../runtimes/netns/network.js';
import { startFrr, restartFrr, vtysh, bgpPeers, instanceOf, frrRunDir, type FrrInstance } from '../../gear/frr.js';
import { startEtcdCluster, waitForEtcd } from '../../gear/etcd.js';
import { Watchers, type WireEvent } from '../../gear/watchers.js';
import { ResilientEcmp, routeGateways } from '../../gear/ecmp.js';
import { waitFor } from '../../gear/readiness.js';
import { agentEntry } from '../../gear/agent-bundle.js';
import { OBSERVING_FILE } from '../../../emulation/kubelet-client.js';
import { diffPlans, type AgentChange } from './switch.js';

type Fault = 'shutdown' | 'crash' | 'freeze' | 'partition' | 'leave';

/** agents started at once (see apply) */
const AGENT_STARTS = 6;
/**
 * An agent collects its heap before a drill once it grew this much since its last collection:
 * below it a mark-compact is short (the agents' live heaps are 15–20 MB), and collecting every
 * idle agent of a 35-node lab before every drill would cost more CPU than the pauses it avoids.
 */
const COLLECT_GROWTH_BYTES = 8 * 2 ** 20;

export class EmulatedLab implements RunningLab {
  bringUpMs = 0;
  private readonly routersFrr = new Map<string, FrrInstance>();
  /** the frr.conf each BGP router runs now (the topology's at bring-up, then the applied strategy's) */
  private readonly routerConfs = new Map<string, string>();
  private readonly speakers = new Map<string, FrrInstance>();
  private readonly agents = new Map<string, HostProc>();
  private readonly agentSpecs = new Map<string, AgentSpec>();
  private daemons: { spec: DaemonSpec; proc: HostProc }[] = [];
  private readonly faults = new Map<string, Set<Fault>>();
  private readonly watchers: Watchers;
  private readonly ecmp = new Map<string, ResilientEcmp>();
  private current: { ref: StrategyRef; plan: SimPlan } | null = null;
  private downed = false;
  private saidFallback = false;
  readonly eventsDir: string;
  /**
   * apply() over a running strategy could switch in place (./switch.ts: only what differs is
   * stopped and started; 26 s → 5 s per switch on smb). It is off: in the e2e, the switch from
   * kube-vip-bgp+metallb-l2 to kube-vip-arp+metallb-l2 never became ready (the lab's readiness
   * wait ran out) and the cause is not found yet, so every strategy is applied fresh after an
   * unapply, which is proven.
   */
  readonly switches = false;

  private constructor(
    readonly lab: Lab,
    readonly ctx: UpContext,
    readonly rt: HostRuntime,
    readonly provider: ProviderName,
  ) {
    this.eventsDir = ctx.state.subdir('events');
    this.watchers = new Watchers(rt, join(this.eventsDir, '_wire.jsonl'));
  }

  get id() {
    return this.ctx.id;
  }
  get prefix() {
    return this.ctx.prefix;
  }
  private host(name: string): Host {
    const h = allHosts(this.lab.topology).find((x) => x.name === name);
    if (!h) throw new LabError(`no host '${name}' in lab ${this.lab.name}`);
    return h;
  }
  private node(name: string): Node {
    const n = this.lab.topology.nodes.find((x) => x.name === name);
    if (!n) throw new LabError(`'${name}' is not a node of ${this.lab.topology.name}`);
    return n;
  }

  // -------------------------------------------------------------------------------------------
  // bring-up

  static async up(lab: Lab, ctx: UpContext, rt: HostRuntime, provider: ProviderName): Promise<EmulatedLab> {
    const t0 = now();
    const self = new EmulatedLab(lab, ctx, rt, provider);
    try {
      await self.bringUp();
    } catch (e) {
      await self.down().catch(() => undefined);
      throw e;
    }
    self.bringUpMs = now() - t0;
    return self;
  }

  private async bringUp(): Promise<void> {
    const { state, signal } = this.ctx;
    const t = this.lab.topology;
    const say = (m: string) => this.ctx.progress?.(m);
    say(`${this.rt.name}: ${allHosts(t).length} hosts on ${t.segments.length} segments`);
    await this.rt.build(signal);
    signal?.throwIfAborted();
    const pki = makePki(state.dir, t);
    const routers = t.routers.filter((r) => r.bgp !== false);
    say(`FRR on ${routers.map((r) => r.name).join(', ') || 'no router (no BGP)'}; etcd on ${t.nodes.filter((n) => n.role === 'controlplane').length} control planes`);
    const frr = settleAll(
      routers.map(async (r) => {
        const conf = renderRouterFrr(r, t);
        this.routersFrr.set(r.name, await startFrr(this.rt, r.name, conf, signal));
        this.routerConfs.set(r.name, conf);
      }),
    );
    const etcd = startEtcdCluster(this.rt, t, (n) => state.subdir('etcd', n), this.prefix, signal);
    await settleAll([frr, etcd, pki] as Promise<unknown>[]);
    await this.startWatchers();
    await this.waitFabric(routers);
    const ca = (await pki).caCert;
    await settleAll(t.clients.map((c) => this.startAgent(c.name, [{ kind: 'traffic', config: { caFile: ca } }])));
  }

  /** the routers' own sessions (ToR ↔ edge) are up: clients can cross the fabric */
  private async waitFabric(routers: Router[]): Promise<void> {
    const { signal } = this.ctx;
    await settleAll(
      routers
        .filter((r) => r.peers.length)
        .map((r) => waitFor('forBgpEstablished', `${r.name} ↔ ${r.peers.map((p) => p.router).join(', ')}`, async () => (await bgpPeers(this.rt, this.routersFrr.get(r.name)!)).filter((p) => p.state === 'Established' && p.pfxRcd > 0).length >= r.peers.length, { timeoutMs: 20_000, intervalMs: 200, signal })),
    );
  }

  /**
   * The routers as the strategy configures them (its speakers' BGP timers, BFD when it asks for
   * it): a router whose frr.conf differs from what it runs is restarted with the new one — before
   * the strategy's speakers start, so every node session is opened against the router the bands
   * assume. Shipped strategies without BGP options leave the topology's config, and nothing restarts.
   */
  private async configureRouters(want: Record<string, string> | undefined): Promise<void> {
    const changed = Object.entries(want ?? {}).filter(([r, conf]) => this.routerConfs.get(r) !== conf);
    if (!changed.length) return;
    const { signal } = this.ctx;
    await settleAll(
      changed.map(async ([name, conf]) => {
        const old = this.routersFrr.get(name);
        if (old) {
          await Promise.all(old.procs.map((p) => this.rt.stop(p)));
          old.procs.forEach((p) => this.rt.forget(p));
          // the old zebra's socket file would pass the new instance's readiness check before it listens
          await this.rt.exec(name, 'rm', ['-f', join(frrRunDir(old.instance), 'zserv.api')], { reject: false });
        }
        this.routerConfs.delete(name);
        this.routersFrr.set(name, await startFrr(this.rt, name, conf, signal));
        this.routerConfs.set(name, conf);
        this.ctx.progress?.(`${name}: FRR restarted with the strategy's router config`);
      }),
    );
    await this.waitFabric(this.lab.topology.routers.filter((r) => r.bgp !== false));
  }

  private async startWatchers(): Promise<void> {
    const t = this.lab.topology;
    // every LAN's GARPs, seen from its router (the segment's gateway)
    for (const s of t.segments.filter((x) => x.kind === 'lan' && x.gateway)) {
      const r = t.routers.find((x) => x.name === s.gateway!.router)!;
      const ifname = r.interfaces.find((i) => i.segment === s.name)!.ifname;
      await this.watchers.arp(r.name, ifname, s.name);
    }
    const re = t.resilientEcmp;
    for (const r of t.routers.filter((x) => x.bgp !== false)) {
      let shim: ResilientEcmp | undefined;
      if (re.enabled && r.nodeSegments.length) {
        const devOf = (gw: string) => r.interfaces.find((i) => t.segments.find((s) => s.name === i.segment && sameSubnet(gw, i.ip, i.prefixLen)))?.ifname ?? r.interfaces[0]!.ifname;
        shim = new ResilientEcmp((cmd, args, o) => this.rt.exec(r.name, cmd, args, o), re.buckets, re.idleTimerS, devOf);
        this.ecmp.set(r.name, shim);
      }
      await this.watchers.routes(r.name, shim ? (e: WireEvent) => void (/proto bgp/.test(String(e.detail)) ? shim!.sync(String(e.prefix)) : undefined) : undefined, shim ? () => void shim!.syncAll() : undefined);
    }
  }

  private agentSpec(host: string, components: ComponentSpec[]): AgentSpec {
    return {
      host,
      // the host's FRR instance name (its node speaker): `vtysh -N` from inside the host
      ns: instanceOf(this.rt, host),
      stateDir: this.ctx.state.dir,
      socket: join(this.ctx.state.subdir('agents'), `${host}.sock`),
      eventsFile: join(this.eventsDir, `${host}.jsonl`),
      topology: this.lab.topology,
      components,
    };
  }

  /** the agent's spec, also on disk: a respawn (restore after a crash) starts from the file */
  private writeAgentSpec(host: string, components: ComponentSpec[]): string {
    const spec = this.agentSpec(host, components);
    const file = join(this.ctx.state.subdir('agents'), `${host}.json`);
    writeFileSync(file, JSON.stringify(spec));
    this.agentSpecs.set(host, spec);
    return file;
  }

  private async startAgent(host: string, components: ComponentSpec[]): Promise<void> {
    const file = this.writeAgentSpec(host, components);
    const entry = await agentEntry();
    if (entry.fallback && !this.saidFallback) {
      this.saidFallback = true;
      this.ctx.progress?.(entry.fallback);
    }
    const p = await this.rt.start(host, { role: 'agent', name: 'agent', cmd: process.execPath, args: [...entry.args, file], cwd: REPO_ROOT });
    this.agents.set(host, p);
    await this.waitAgent(host, p);
  }

  private async stopAgent(host: string): Promise<void> {
    const p = this.agents.get(host);
    if (!p) return;
    await this.rt.stop(p, 8000);
    this.rt.forget(p);
    this.agents.delete(host);
    this.agentSpecs.delete(host);
  }

  private waitAgent(host: string, p: HostProc): Promise<void> {
    const spec = this.agentSpecs.get(host)!;
    const want = spec.components.length;
    return waitFor('forAgentReady', `${host}/agent`, async () => (await rpcCall<{ components: string[] }>(spec.socket, 'ping', null, 2000)).components.length === want, {
      timeoutMs: 30_000,
      rt: this.rt,
      proc: p,
      intervalMs: 100,
      signal: this.ctx.signal,
    });
  }

  // -------------------------------------------------------------------------------------------
  // RunningLab

  async components(): Promise<Record<string, string>> {
    // asked on a host of the lab: what its processes run (the host's binaries on netns, the appliance's on docker)
    const probe = this.lab.topology.nodes[0]?.name ?? allHosts(this.lab.topology)[0]!.name;
    const v = async (cmd: string, args: string[], re: RegExp) => {
      const r = await this.rt.exec(probe, cmd, args, { reject: false }).catch(() => null);
      return re.exec((r?.stdout ?? '') + (r?.stderr ?? ''))?.[1] ?? 'unknown';
    };
    const [frr, etcd, nft, rt] = await Promise.all([
      v('/usr/lib/frr/zebra', ['--version'], /zebra version (\S+)/),
      v('etcd', ['--version'], /etcd Version: (\S+)/),
      v('nft', ['--version'], /nftables v(\S+)/),
      this.rt.versions(),
    ]);
    // the real software the lab's mechanisms run (HAProxy…), as each mechanism says how to ask it
    const own: Record<string, string> = {};
    for (const ref of this.lab.strategies) {
      for (const id of [ref.cp, ref.svc]) {
        for (const [name, q] of Object.entries(MECHANISMS.get(id)?.versions ?? {})) {
          if (!(name in own)) own[name] = await v(q.argv[0]!, q.argv.slice(1), q.pattern);
        }
      }
    }
    return { frr, etcd, nftables: nft, ...rt, ...own, node: process.versions.node, 'talos-control-plane': 'emulated' };
  }

  async apply(ref: StrategyRef, artifacts: Artifacts): Promise<void> {
    const plan = artifacts.sim;
    const t = this.lab.topology;
    const hosts = Object.keys(plan.components).filter((h) => t.nodes.some((n) => n.name === h));
    if (this.current) await this.switchTo(ref, plan);
    else {
      this.current = { ref, plan };
      const { signal } = this.ctx;
      // 0. the routers as the strategy has them, 1. node speakers (agents announce through them),
      // 2. the roles' daemons, 3. one agent per node
      await this.configureRouters(plan.routers);
      await settleAll(Object.entries(plan.speakers).map(async ([node, sp]) => this.speakers.set(node, await startFrr(this.rt, node, sp.frrConf, signal))));
      for (const d of plan.daemons) this.daemons.push({ spec: d, proc: await this.startDaemon(d) });
      await this.startAgents(hosts, (h) => this.startAgent(h, plan.components[h]!));
    }
    await this.waitReady(ref, plan, hosts);
  }

  /** control planes first, a few at a time */
  private async startAgents(hosts: string[], start: (h: string) => Promise<void>): Promise<void> {
    const t = this.lab.topology;
    // control planes first: their API servers must listen before any node's KubePrism dials them
    // (a failed dial costs an upstream its score until the next health check, 20 s in Talos)
    const isCp = (h: string) => t.nodes.find((n) => n.name === h)?.role === 'controlplane';
    // a few at a time: each agent compiles its TypeScript at start, 35 at once starve 2 cores
    await mapLimit(hosts.filter(isCp), AGENT_STARTS, start);
    await mapLimit(hosts.filter((h) => !isCp(h)), AGENT_STARTS, start);
  }

  /**
   * From the running plan to the next one, changing only what differs (./switch.ts: the rule and
   * why it leaves the lab as a fresh apply would). Stops in the reverse of the start order
   * (agents' tails and whole agents, daemons, speakers), resets the kernel of nodes whose agent
   * went entirely, then starts in the start order (speakers, daemons, agents).
   *
   * Measured on the 2-core machine, smb sim lab (5 nodes), one strategy to another that shares
   * its control-plane role (Talos VIP with MetalLB L2 → with Cilium L2): unapply + fresh apply
   * 26.2 s, in place 5.1 s; and back: 33.5 s fresh, 8.2 s in place. Every agent process kept; the
   * cluster base and the VIP controller kept, only the service mechanism stopped and started.
   */
  private async switchTo(ref: StrategyRef, plan: SimPlan): Promise<void> {
    const { signal } = this.ctx;
    const t = this.lab.topology;
    const isNode = (h: string) => t.nodes.some((n) => n.name === h);
    // a drill's fault is undone first: the restored node runs the old plan again, then switches with the others
    for (const h of [...this.faults.keys()]) await this.restore(h).catch(() => undefined);
    const d = diffPlans(this.current!.plan, plan);
    this.current = { ref, plan };
    const changes = Object.entries(d.agents).filter(([h]) => isNode(h)) as [string, AgentChange][];
    // 1. stop
    await settleAll(
      changes.map(async ([h, c]) => {
        if (c.mode === 'partial') await this.call(h, 'trim', { keep: c.keep }, 60_000);
        else if (c.mode === 'stop' || c.mode === 'replace') await this.stopAgent(h);
      }),
    );
    const gone = new Set(d.daemons.stop);
    for (const x of this.daemons.filter((y) => gone.has(y.spec))) {
      await this.rt.stop(x.proc);
      this.rt.forget(x.proc);
    }
    this.daemons = this.daemons.filter((y) => !gone.has(y.spec));
    await settleAll(d.speakers.stop.map((h) => this.stopSpeaker(h)));
    // what a node's components left in its kernel, for the nodes whose agent went entirely
    await settleAll(changes.filter(([, c]) => c.mode === 'stop' || c.mode === 'replace').map(([h]) => this.rt.resetKernelState(h)));
    // 2. start: the routers first (a restarted router renewed every speaker, see ./switch.ts)
    await this.configureRouters(d.routers.restart);
    await settleAll(Object.entries(d.speakers.start).map(async ([node, sp]) => this.speakers.set(node, await startFrr(this.rt, node, sp.frrConf, signal))));
    const kept = new Map(this.daemons.map((x) => [x.spec, x]));
    const daemons: typeof this.daemons = [];
    for (const r of d.daemons.run) daemons.push(r.keep ? kept.get(r.spec)! : { spec: r.spec, proc: await this.startDaemon(r.spec) });
    this.daemons = daemons;
    const byHost = new Map(changes);
    await this.startAgents(
      changes.filter(([, c]) => c.mode === 'partial' || c.mode === 'replace' || c.mode === 'start').map(([h]) => h),
      async (h) => {
        const c = byHost.get(h)!;
        if (c.mode !== 'partial') return this.startAgent(h, plan.components[h]!);
        // the file first: a crash drill's respawn must start the new list
        this.writeAgentSpec(h, plan.components[h]!);
        if (c.start.length) await this.call(h, 'extend', { components: c.start }, 60_000);
        await this.waitAgent(h, this.agents.get(h)!);
      },
    );
  }

  private async stopSpeaker(h: string): Promise<void> {
    const inst = this.speakers.get(h);
    if (!inst) return;
    await Promise.all(inst.procs.map((p) => this.rt.stop(p)));
    inst.procs.forEach((p) => this.rt.forget(p));
    this.speakers.delete(h);
  }

  /** the speakers' sessions are up, the API endpoint and every Service answer the client */
  private async waitReady(ref: StrategyRef, plan: SimPlan, hosts: string[]): Promise<void> {
    const { signal } = this.ctx;
    const t = this.lab.topology;
    // the BGP sessions of the speakers are up
    await settleAll(
      [...this.speakers.entries()].map(([node]) => {
        const r = nodeRouter(this.node(node), t);
        return waitFor('forBgpEstablished', `${node} → ${r.name}`, async () => (await bgpPeers(this.rt, this.speakers.get(node)!)).some((p) => p.state === 'Established'), { timeoutMs: 30_000, intervalMs: 200, signal });
      }),
    );
    // ready = what the drills measure answers from the client: the API endpoint and every Service
    if (!hosts.length) return; // a plan without cluster components (network-only tests)
    await this.waitServing(ref);
    // a daemon may need time after it answers before it serves every backend (HAProxy's `rise` checks)
    const settle = Math.max(0, ...plan.daemons.map((d) => d.readyAfterMs ?? 0));
    if (settle) await sleep(settle, signal);
  }

  /**
   * The API endpoint, every API server and every Service answer the client's probe. Not an
   * externalTrafficPolicy Local Service that two controllers claim (pitfall 2): both answer for
   * its address, the router follows whichever answered last, and that can be a node with no local
   * endpoint, where the traffic is dropped for as long as it stays so — the class-conflict drill
   * observes exactly that, readiness cannot wait it out.
   */
  private async waitServing(ref: StrategyRef): Promise<void> {
    const t = this.lab.topology;
    const strategy = composeStrategy(ref);
    const apiIp = apiEndpoint(t, strategy.cp);
    const cps = t.nodes.filter((n) => n.role === 'controlplane');
    const services = t.services.filter((s) => !(claimsConflict(strategy) && s.externalTrafficPolicy === 'Local'));
    // one after the other: on a big lab the client shares 2 cores with every agent
    for (const u of [`https://${apiIp}:${t.apiPort}/readyz`, ...cps.map((n) => `https://${n.ip}:${t.apiPort}/readyz`), ...services.map((s) => `http://${s.ip}:${s.port}/`)]) {
      await this.waitReachable(u, 120_000);
    }
  }

  /** after a drill: restart what is stuck the way only an operator would end it (AgentComponent.unstick) */
  async unstick(): Promise<string[]> {
    const nodes = new Set(this.lab.topology.nodes.map((n) => n.name));
    const done: string[] = [];
    await mapLimit([...this.agents.keys()].filter((h) => nodes.has(h)), 8, async (h) => {
      // an agent that does not answer is not stuck in this sense (the next drill's readiness sees it)
      for (const what of await this.call<string[]>(h, 'unstick', undefined, 30_000).catch(() => [] as string[])) done.push(`${h}: ${what}`);
    });
    if (done.length && this.current) await this.waitServing(this.current.ref);
    return done.sort();
  }

  async observing(on: boolean): Promise<void> {
    const file = join(this.ctx.state.dir, OBSERVING_FILE);
    if (on) writeFileSync(file, '');
    else rmSync(file, { force: true });
  }

  processes(): LabProcess[] {
    const pidOf = this.rt.pidOf?.bind(this.rt);
    if (!pidOf) return [];
    const out: LabProcess[] = [];
    for (const h of allHosts(this.lab.topology)) {
      for (const p of this.rt.procs(h.name)) {
        if (p.role === 'watcher') continue;
        const pid = pidOf(p);
        if (pid !== null) out.push({ name: `${h.name}/${p.name}`, pid });
      }
    }
    return out;
  }

  /** between drills: no conntrack or neighbour entry of one drill may steer the next (netns/faults.ts) */
  async flushTransientState(): Promise<void> {
    // a few hosts at a time: 40 hosts × two commands at once would load 2 cores just before a pre-window
    await mapLimit(allHosts(this.lab.topology), 8, (h) => this.rt.flushTransientState(h.name));
    // and the agents' garbage: a full GC now, where the agent has piled up enough for a
    // mark-compact to stop it for a noticeable time, rather than inside the drill's window
    // (src/emulation/agent/heap.ts); one at a time, each is a burst of CPU
    await mapLimit([...this.agents.keys()], 1, async (h) => void (await this.call(h, 'collect', { minGrowthBytes: COLLECT_GROWTH_BYTES }, 10_000).catch(() => undefined)));
  }

  /** a mechanism's real daemon (HAProxy…): its files in the lab state, its config checked, then started */
  private async startDaemon(d: DaemonSpec): Promise<HostProc> {
    const dir = this.ctx.state.subdir(`daemons/${d.host}-${d.name}`);
    const paths: Record<string, string> = {};
    for (const [name, content] of Object.entries(d.files ?? {})) writeFileSync((paths[name] = join(dir, name)), content);
    const fill = (args: string[]) => args.map((a) => a.replace(/\{file:([^}]+)\}/g, (_, n: string) => paths[n] ?? a));
    if (d.check) await this.rt.exec(d.host, d.check[0]!, fill(d.check.slice(1)));
    return this.rt.start(d.host, { role: 'daemon', name: d.name, cmd: d.cmd, args: fill(d.args) });
  }

  async unapply(_ref: StrategyRef): Promise<void> {
    if (!this.current) return;
    const t = this.lab.topology;
    for (const h of [...this.faults.keys()]) await this.restore(h).catch(() => undefined);
    await settleAll([...this.agents.keys()].filter((h) => t.nodes.some((n) => n.name === h)).map((h) => this.stopAgent(h)));
    for (const d of this.daemons.splice(0)) {
      await this.rt.stop(d.proc);
      this.rt.forget(d.proc);
    }
    await settleAll([...this.speakers.keys()].map((h) => this.stopSpeaker(h)));
    // what the strategy's components left in the nodes' kernels (addresses, nft tables)
    await settleAll(t.nodes.map((n) => this.rt.resetKernelState(n.name)));
    this.current = null;
  }

  /** Observed holders: nodes with the address on a link, or the routers' nexthops for it (BGP). */
  async holders(target: Target): Promise<string[]> {
    if (!this.current) return [];
    const t = this.lab.topology;
    const s = composeStrategy(this.current.ref);
    const role = target === 'api' ? s.cp : s.svc;
    if (role.holders === 'lb-host') return [];
    const ip = target === 'api' ? apiEndpoint(t, s.cp) : t.services[0]!.ip;
    if (role.holders === 'routes') return this.routeHolders(ip);
    const out: string[] = [];
    await Promise.all(
      t.nodes.map(async (n) => {
        const r = await this.rt.exec(n.name, 'ip', ['-o', '-4', 'addr', 'show'], { reject: false });
        if (r.stdout.includes(` ${ip}/32 `)) out.push(n.name);
      }),
    );
    return out.sort();
  }

  private async routeHolders(ip: string): Promise<string[]> {
    const t = this.lab.topology;
    const byIp = new Map(t.nodes.map((n) => [n.ip, n.name]));
    const out = new Set<string>();
    for (const r of t.routers.filter((x) => x.nodeSegments.length && x.bgp !== false)) {
      for (const g of await routeGateways((cmd, args, o) => this.rt.exec(r.name, cmd, args, o), `${ip}/32`)) if (byIp.has(g)) out.add(byIp.get(g)!);
    }
    return [...out].sort();
  }

  private faultSet(host: string): Set<Fault> {
    let s = this.faults.get(host);
    if (!s) this.faults.set(host, (s = new Set()));
    return s;
  }

  /** The node's processes, in the order a graceful shutdown stops them (agent first: it resigns while etcd still works). */
  private nodeProcs(host: string): HostProc[] {
    const agent = this.agents.get(host);
    return [...(agent ? [agent] : []), ...(this.speakers.get(host)?.procs ?? []).slice().reverse(), ...this.rt.procs(host, 'etcd')];
  }

  async inject(primitive: Primitive, host: string, opts: { downMs?: number } = {}): Promise<void> {
    this.host(host);
    const f = this.faultSet(host);
    switch (primitive) {
      case 'shutdown':
        // graceful: SIGTERM in order, each allowed to say goodbye (resign, NOTIFICATION, leave)
        await this.rt.shutdown(host, this.nodeProcs(host), 10_000);
        f.add('shutdown');
        return;
      case 'crash':
        await this.rt.crash(host);
        f.add('crash');
        return;
      case 'freeze':
        await this.rt.freeze(host);
        f.add('freeze');
        return;
      case 'partition':
        await this.rt.isolate(host);
        f.add('partition');
        return;
      case 'link-flap':
        await this.rt.linkFlap(host, opts.downMs ?? 2000, this.ctx.signal);
        return;
      case 'leave':
      case 'join': {
        const inst = this.speakers.get(host);
        if (!inst) throw new LabError(`${primitive}: ${host} runs no BGP speaker under ${this.current?.ref.id ?? 'no strategy'}`);
        const n = this.node(host);
        const r = nodeRouter(n, this.lab.topology);
        const peer = r.interfaces.find((i) => i.segment === n.rack)!.ip;
        const res = await vtysh(this.rt, inst, ['configure terminal', `router bgp ${n.asn}`, `${primitive === 'leave' ? '' : 'no '}neighbor ${peer} shutdown`]);
        if (res.exitCode !== 0) throw new LabError(`${primitive} on ${host}: vtysh failed: ${res.stderr || res.stdout}`);
        if (primitive === 'leave') f.add('leave');
        else f.delete('leave');
        return;
      }
    }
  }

  async restore(host: string): Promise<void> {
    const f = this.faults.get(host);
    if (!f || !f.size) return;
    if (f.has('freeze')) await this.rt.thaw(host);
    if (f.has('partition')) await this.rt.unisolate(host);
    if (f.has('leave')) await this.inject('join', host);
    if (f.has('crash') || f.has('shutdown')) {
      await this.rt.boot(host);
      await this.restart(host);
    }
    this.faults.delete(host);
  }

  /** boot again: etcd, the speaker, the agent, with the specs they had */
  private async restart(host: string): Promise<void> {
    const signal = this.ctx.signal;
    const etcd = this.rt.procs(host, 'etcd');
    for (const p of etcd) await this.rt.respawn(p);
    const n = this.lab.topology.nodes.find((x) => x.name === host);
    if (n && etcd[0]) await waitForEtcd(this.rt, n, etcd[0], signal, 30_000);
    const inst = this.speakers.get(host);
    if (inst) await restartFrr(this.rt, inst, signal);
    const agent = this.agents.get(host);
    if (agent) {
      await this.rt.respawn(agent);
      await this.waitAgent(host, agent);
    }
  }

  async setGarpIgnored(on: boolean): Promise<void> {
    const t = this.lab.topology;
    // the routers of the LANs where addresses move, and the LAN's clients (none in the shipped labs)
    const hosts = t.routers.filter((r) => r.interfaces.some((i) => t.segments.find((s) => s.name === i.segment)?.kind === 'lan'));
    const movable = [t.vip, ...t.pool.addresses];
    const { garpIgnoreRules, GARP_TABLE } = await import('../../runtimes/netns/faults.js');
    await settleAll(hosts.map((h) => (on ? this.rt.exec(h.name, 'nft', ['-f', '-'], { input: garpIgnoreRules(movable) + '\n' }) : this.rt.exec(h.name, 'nft', ['delete', 'table', 'arp', GARP_TABLE], { reject: false }))));
  }

  call<T = unknown>(host: string, method: string, params?: unknown, timeoutMs?: number): Promise<T> {
    const spec = this.agentSpecs.get(host);
    if (!spec) return Promise.reject(new LabError(`no agent runs on ${host}`));
    return rpcCall<T>(spec.socket, method, params, timeoutMs);
  }

  async events(sinceT: number): Promise<AgentEvent[]> {
    return readEvents(this.eventsDir, sinceT);
  }

  async exec(host: string, cmd: string, args: string[]) {
    const r = await this.rt.exec(host, cmd, args, { reject: false });
    return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode };
  }

  /**
   * Wait until a URL answers from the first client: the probe of the measurement itself (a
   * `traffic` session with no load), so "ready" means what the drills will measure.
   */
  async waitReachable(url: string, timeoutMs = 30_000, successes = 5): Promise<void> {
    const client = this.lab.topology.clients[0]!.name;
    const id = `ready/${url}/${Math.round(now())}`;
    const start: TrafficStart = { id, probe: { url, intervalMs: 50, timeoutMs: 1000 } };
    await this.call(client, 'traffic.start', start, 30_000);
    try {
      await waitFor('forReachable', `${url} from ${client}`, async () => (await this.call<TrafficStatus>(client, 'traffic.status', { id }, 30_000)).consecutiveOk >= successes, { timeoutMs, intervalMs: 100, signal: this.ctx.signal });
    } finally {
      await this.call(client, 'traffic.stop', unmeasuredStop(id)).catch(() => undefined);
    }
  }

  async down(): Promise<void> {
    if (this.downed) return;
    this.downed = true;
    await this.watchers.stop().catch(() => undefined);
    await this.rt.down();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.down();
  }
}

/** run fn over items with at most `limit` in flight; every failure is kept (settleAll) */
async function mapLimit<T>(items: T[], limit: number, fn: (x: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  await settleAll(
    Array.from({ length: Math.min(limit, queue.length) }, async () => {
      for (let x = queue.shift(); x !== undefined; x = queue.shift()) await fn(x);
    }),
  );
}

function sameSubnet(a: string, b: string, len: number): boolean {
  const n = (ip: string) => ip.split('.').reduce((x, o) => (x << 8) + Number(o), 0) >>> 0;
  const mask = len === 0 ? 0 : (~0 << (32 - len)) >>> 0;
  return (n(a) & mask) === (n(b) & mask);
}
