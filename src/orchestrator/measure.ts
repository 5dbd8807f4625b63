/**
 * One measured drill run: traffic on → pre window → inject → (a held fault is restored after its
 * hold) → observe until the client has recovered and stayed clean → the "after" window → traffic
 * off → a RunRecord. Every figure comes from what the client's probes observed; the mechanism's
 * timers only give the expected band stored beside it. An outage that has not ended when the
 * observation window closes is recorded as `recovered: false` with a lower bound, never as a
 * figure.
 */
import type { Lab, LbService, Target } from '../model/types.js';
import type { RunningLab } from '../providers/types.js';
import type { Strategy, Band } from '../strategies/types.js';
import type { DrillContext } from '../drills/types.js';
import type { RunRecord } from '../results/types.js';
import type { AgentEvent } from '../emulation/agent/types.js';
import { unmeasuredStop, type TrafficResult, type TrafficStart, type TrafficStatus, type TrafficStop, type ProbeSample } from '../traffic/rpc.js';
import type { RunEvents } from './events.js';
import { now, sleep } from '../util/proc.js';
import { bucketTimeline, phaseBreakdown, internalOutage, servedShare } from './analysis.js';
import { clientIpPreserved } from '../traffic/stats.js';
import { apiEndpoint } from '../strategies/compose.js';
import { drill as drillFor } from '../drills/index.js';
import { CpuWaitTracker, type CpuWait } from './cpu-wait.js';
import { afterWindowMs, baselineWindowMs, observationWindowMs, runBand, STABLE_MS, WARM_UP_MS, type RunPlan } from './plan.js';

export interface MeasureInput {
  lab: RunningLab;
  plan: RunPlan;
  random(): number;
  signal?: AbortSignal;
  log(msg: string): void;
  /** the run's event stream: drill phases, probe samples, holders and agent events as they happen */
  events?: RunEvents;
  /** also stream agent/wire events and BGP sessions (a live view is watching) */
  observe?: boolean;
}

export interface MeasureOutput {
  record: RunRecord;
  raw: { probe: ProbeSample[]; events: AgentEvent[]; traffic: TrafficResult; internal?: Record<string, unknown[]> };
  /**
   * what was found stuck before this drill started (`host: what`) and restarted before its traffic:
   * an earlier drill's fault that ended a process only after that drill's own check. The caller
   * reports it with the drill that caused it (attachLateStuck).
   */
  stuckBefore: string[];
}

/**
 * A process an earlier drill left hung after that drill's measurement had ended: a kube-vip leader
 * thawed after its lease was taken still leads in its own view until its renewal round's
 * RenewDeadline runs out (client-go `tools/leaderelection/leaderelection.go@v0.36.3` renew: a fresh
 * deadline per round; kube-vip's default 10 s from v1.1.0, `cmd/kube-vip.go@v1.1.0`) and only then
 * loses the lease — v1.2.x then hangs. It is the earlier drill's doing, so it goes on that record.
 */
export function attachLateStuck(prev: RunRecord, stuck: readonly string[]): void {
  if (!stuck.length) return;
  prev.leftStuck = [...(prev.leftStuck ?? []), ...stuck];
  prev.notes = [
    ...(prev.notes ?? []),
    ...stuck.map((u) => `left stuck by this drill after its observation ended (found before the next drill, restarted before that drill's traffic started): ${u}`),
  ];
}

export function clientHost(lab: Lab): string {
  return lab.topology.clients[0]!.name;
}

/** The address a client uses for the target under this strategy. */
export function endpointFor(lab: Lab, strategy: Strategy, target: Target, service?: LbService) {
  const t = lab.topology;
  if (target === 'api') {
    const ip = apiEndpoint(t, strategy.cp);
    return { ip, probeUrl: `https://${ip}:${t.apiPort}/readyz`, loadUrl: `https://${ip}:${t.apiPort}/version`, streamUrl: undefined };
  }
  const s = service ?? t.services[0]!;
  return { ip: s.ip, probeUrl: `http://${s.ip}:${s.port}/`, loadUrl: `http://${s.ip}:${s.port}/`, streamUrl: `tcp://${s.ip}:${s.streamPort}` };
}

/** what the client sends at an endpoint: the probe, the load and the streams, as the lab's traffic settings say */
function trafficStart(id: string, ep: ReturnType<typeof endpointFor>, tr: Lab['traffic']): TrafficStart {
  return {
    id,
    probe: { url: ep.probeUrl, intervalMs: tr.probeIntervalMs, timeoutMs: tr.probeTimeoutMs },
    load: { url: ep.loadUrl, rate: tr.rate, connections: tr.connections, mode: tr.mode, timeoutMs: tr.timeoutMs },
    streams: ep.streamUrl && tr.streams > 0 ? { url: ep.streamUrl, count: tr.streams, stallMs: 1000 } : undefined,
  };
}

/**
 * Unmeasured traffic against the API endpoint and every Service, as the drills will send it
 * (probe, load at the lab's rate and mode, streams), once a strategy is applied. Readiness only
 * probed; the first load through a freshly started client or API server runs code paths nobody
 * ran yet (the load client's connection code, new-connection TLS, the API's /version handler),
 * and on 2 shared cores that cold start stalled replies for 150–350 ms at the start of the
 * first baseline — a cost of the lab's own processes, not of the mechanism measured.
 */
export async function warmUp(lab: RunningLab, strategy: Strategy, signal?: AbortSignal): Promise<void> {
  const L = lab.lab;
  const tr = L.traffic;
  const client = clientHost(L);
  const eps = [endpointFor(L, strategy, 'api'), ...L.topology.services.map((s) => endpointFor(L, strategy, 'service', s))];
  for (const ep of eps) {
    const id = `warm-up/${strategy.ref.id}/${ep.ip}/${Math.round(now())}`;
    await lab.call(client, 'traffic.start', trafficStart(id, ep, tr));
    try {
      await sleep(WARM_UP_MS, signal);
    } finally {
      await lab.call(client, 'traffic.stop', unmeasuredStop(id), 60_000).catch(() => undefined);
    }
  }
}

/** how often the orchestrator asks the client how the probe is doing */
const POLL_MS = 100;
/** how often agent and wire events are read for the live view */
const EVENTS_MS = 500;

export async function measureDrill(m: MeasureInput): Promise<MeasureOutput> {
  const { lab, plan } = m;
  const strategy = plan.strategyRef;
  const { spec, target } = plan;
  const drill = drillFor(spec.kind);
  const L = lab.lab;
  const tr = L.traffic;
  const client = clientHost(L);
  const ep = endpointFor(L, strategy, target, plan.service);
  const ctx: DrillContext = { lab, strategy, spec, target, random: m.random };
  const victim = await drill.pickVictim(ctx);
  // a late hang of the previous drill's victim (see attachLateStuck) is restarted before anything of
  // this drill is measured; a holder pick has already waited for it to give the address up
  const stuckBefore = (await lab.unstick?.()) ?? [];
  for (const u of stuckBefore) m.log(`found stuck before this drill (an earlier drill's fault ended it late), restarted: ${u}`);
  const victimRunsPod = L.topology.nodes.some((n) => n.name === victim && n.runsWorkloads);
  const holdMs = plan.holdMs;
  const band: Band | null = runBand(L, strategy, spec, target, plan.service, victimRunsPod, holdMs);
  const ev = m.events;
  const emit: RunEvents['emit'] = (e) => ev?.emit(e);
  const tag = { strategy: strategy.ref.id, target, drill: drill.kind };

  // nothing the previous drill (or the readiness probes) left in a kernel steers this one
  await lab.flushTransientState?.();
  if (drill.prepare) {
    await drill.prepare(ctx, victim);
    await sleep(afterWindowMs(spec), m.signal);
  }

  const id = `${strategy.ref.id}/${target}/${drill.kind}/${plan.repeat}/${Math.round(now())}`;
  const start = trafficStart(id, ep, tr);
  const startedAt = now();
  emit({ type: 'drill-start', t: startedAt, ...tag, ...(plan.service ? { service: plan.service.name } : {}), repeat: plan.repeat, victim, address: ep.ip, band: band ? { ...band } : null });
  if (ev) emit({ type: 'holders', t: startedAt, strategy: strategy.ref.id, target, address: ep.ip, holders: await lab.holders(target).catch(() => []) });
  // the in-cluster observers probe for the runs that have a fault to observe, pre-window included
  const observed = drill.kind !== 'baseline' && drill.kind !== 'class-conflict';
  if (observed) await lab.observing?.(true);
  await lab.call(client, 'traffic.start', start);

  // the probe's progress, polled; with a listener its samples and the agents' events are streamed
  let cursor = 0;
  let eventsAt = startedAt - 1;
  let lastEventsRead = 0;
  const poll = async (since: number | null): Promise<TrafficStatus> => {
    const st = await lab.call<TrafficStatus>(client, 'traffic.status', { id, since: since ?? undefined, ...(ev ? { cursor } : {}) });
    if (ev && st.samples?.length) emit({ type: 'probe', t: now(), strategy: strategy.ref.id, target, samples: st.samples });
    if (st.cursor !== undefined) cursor = st.cursor;
    if (ev && m.observe && now() - lastEventsRead >= EVENTS_MS) {
      lastEventsRead = now();
      for (const e of await lab.events(eventsAt)) {
        if (e.t > eventsAt) eventsAt = e.t;
        emit({ type: 'mechanism', t: e.t, strategy: strategy.ref.id, event: e });
      }
    }
    return st;
  };
  let injectAt: number | null = null;
  // how long the lab's own processes wait for a CPU, sampled from the injection on: an outage
  // stretched by a saturated host is named so, not charged to the mechanism (hostLoadCovers)
  const cpu = lab.processes && drill.kind !== 'baseline' && drill.kind !== 'class-conflict' ? new CpuWaitTracker(() => lab.processes!()) : null;
  const waitMs = async (ms: number, since: number | null) => {
    const until = now() + ms;
    while (now() < until) {
      await sleep(Math.min(POLL_MS, Math.max(0, until - now())), m.signal);
      if (injectAt !== null) cpu?.sample();
      if (ev) await poll(since);
    }
  };

  let restored = false;
  /** when a held fault was undone while the probe ran: the failures after it are the heal's */
  let healAt: number | null = null;
  /** whether the failover had ended (or nothing failed) by the observation's clean rule when the fault was undone */
  let settledAtUndo = false;
  let traffic: TrafficResult | undefined;
  const holdersSeen: string[] = [];
  const restore = async (elapsed: number) => {
    m.log(`restore ${victim ?? '-'} after ${Math.round(elapsed)} ms`);
    healAt = now();
    emit({ type: 'restore', t: healAt, ...tag, victim });
    await drill.restore(ctx, victim);
    restored = true;
  };
  /** how long past the pre window the fault waited for a clean probe, and whether it got one */
  let cleanWait: { waitedMs: number; clean: boolean; failed: number } | null = null;
  try {
    await waitMs(spec.preMs, null);
    if (drill.kind !== 'baseline' && drill.kind !== 'class-conflict') {
      // the fault goes onto a path the client has just seen healthy: a failure in the pre window
      // (the last drill's restored node still booting, a CPU-starved host) would otherwise open the
      // outage before the fault and be charged to it. Bounded: a path that never gets clean is
      // injected anyway and the run says so
      cleanWait = await awaitCleanPreWindow(spec.preMs, (since) => poll(since), m.signal);
      if (cleanWait.waitedMs > 0) m.log(`pre window: the probe failed ${cleanWait.failed} time(s); ${cleanWait.clean ? `clean again after ${cleanWait.waitedMs} ms more` : `still failing after ${cleanWait.waitedMs} ms more: injected anyway`}`);
      m.log(`inject ${drill.kind} on ${victim ?? '-'}${holdMs ? ` (held ${holdMs} ms)` : ''}`);
      cpu?.sample();
      injectAt = now();
      emit({ type: 'inject', t: injectAt, ...tag, victim });
      await drill.inject(ctx, victim);
      // a fault with a hold (freeze, partition, the VIP loss; a crash nobody takes over) is undone
      // after exactly holdMs — what the client sees afterwards is part of the measurement; other
      // faults stay until the client has recovered by itself
      const restoresAt = holdMs > 0 ? holdMs : null;
      const window = observationWindowMs(spec, band, restoresAt ?? 0);
      // stop observing once the probe has been clean for a whole second: with ECMP or a dead
      // endpoint still in rotation failures are partial, and K lucky successes in a row would end
      // the window in the middle of the outage (the outage itself is computed over every sample)
      // — nor a clean streak no longer than one the probe already saw end in a failure: when a
      // dead endpoint among thirty fails one connection in thirty, a clean second comes by chance
      // every few seconds; the streak must be twice the longest that proved to be luck
      const stableOk = Math.max(tr.recoverSuccesses, Math.ceil(STABLE_MS / tr.probeIntervalMs));
      const quietMs = Math.min(window, restoresAt !== null ? Math.max(restoresAt, 3000) : 5000);
      const afterMs = afterWindowMs(spec);
      let healWatched = false;
      for (;;) {
        await sleep(POLL_MS, m.signal);
        cpu?.sample();
        const elapsed = now() - injectAt;
        const st = await poll(injectAt);
        const clean = st.firstFailAt !== null && st.consecutiveOk >= Math.max(stableOk, 2 * st.maxOkRun);
        const quiet = st.firstFailAt === null && elapsed >= quietMs;
        if (restoresAt !== null && !restored && elapsed >= restoresAt) {
          // had the failover ended (or nothing failed) before the undo?
          settledAtUndo = st.firstFailAt === null || clean;
          await restore(elapsed);
          continue;
        }
        // after the undo, the heal: at least the after window, then until the probe has been clean
        // for a second again, so a heal burst is seen to its end (or to the window's) rather than cut
        // by a fixed wait. A failover still under way at the undo keeps the full rule above (its
        // partial tail); a heal after a finished failover needs one clean second, not twice the
        // clean streak it interrupted
        if (restored && healAt !== null) {
          if (now() - healAt >= afterMs && (settledAtUndo ? st.consecutiveOk >= stableOk : clean)) {
            healWatched = true;
            break;
          }
          if (elapsed >= window) break;
          continue;
        }
        // never before the band's minimum: a tail of rare partial failures (one dead pod among
        // thirty endpoints) can look clean for a second long before it really ends
        if ((clean && elapsed >= Math.max(STABLE_MS, band?.min ?? 0)) || quiet) {
          if (restoresAt === null || restored) break;
        }
        if (elapsed >= window) break;
      }
      if (!restored && restoresAt !== null) await restore(now() - injectAt);
      if (!healWatched) await waitMs(afterMs, injectAt); // the "after" window
    } else if (drill.kind === 'class-conflict') {
      // the misconfiguration is the fault: watch who holds the Service address meanwhile
      const until = now() + Math.max(spec.observeMs, 1000);
      while (now() < until) {
        const h = (await lab.holders(target)).join(',');
        if (h !== holdersSeen.at(-1)) holdersSeen.push(h);
        if (ev) emit({ type: 'holders', t: now(), strategy: strategy.ref.id, target, address: ep.ip, holders: h.split(',').filter(Boolean) });
        await waitMs(250, null);
      }
    } else {
      // a baseline is as long as the percentiles need samples at the lab's rate
      await waitMs(baselineWindowMs(L, spec), null);
    }
  } finally {
    // traffic off before restore: a restore is not part of what the client measured
    traffic = await lab.call<TrafficResult>(client, 'traffic.stop', { id, injectAt, recoverSuccesses: tr.recoverSuccesses, healAt, settledAtUndo } satisfies TrafficStop, 60_000).finally(() => (observed ? lab.observing?.(false) : undefined));
    if (!restored && drill.kind !== 'baseline') {
      await drill.restore(ctx, victim).catch((e) => m.log(`restore failed: ${(e as Error).message}`));
    }
  }
  if (!traffic) throw new Error('traffic.stop returned nothing');
  const endedAt = now();
  // what the drill left stuck that only an operator ends (a hung process): reported with this
  // drill, then undone, so the next drill starts from a cluster that can fail over
  const leftStuck = (await lab.unstick?.()) ?? [];
  for (const u of leftStuck) m.log(`left stuck by this drill, restarted before the next: ${u}`);
  const events = await lab.events(startedAt - 1);
  if (ev) emit({ type: 'holders', t: endedAt, strategy: strategy.ref.id, target, address: ep.ip, holders: await lab.holders(target).catch(() => []) });

  const internal = await internalOutage(lab, startedAt, endedAt, injectAt, tr.recoverSuccesses, healAt);
  const outage = traffic.probe.outage;
  // judged on every sample: a burst still open at the last sample did not recover (its length is then a lower bound)
  const unrecovered = injectAt !== null && outage.firstFailAt !== null && outage.recoveredAt === null;
  const outageMs = injectAt === null ? (drill.kind === 'class-conflict' ? outage.outageMs : null) : outage.outageMs;
  const load = traffic.load;
  const streams = traffic.streams ?? [];
  // which node a stream ENTERED through: under ETP Cluster the pod sees the ingress node's address
  // (SNAT) and may run elsewhere; under Local the pod's node is the ingress and sees the client
  const nodeByIp = new Map(L.topology.nodes.map((n) => [n.ip, n.name]));
  const ingressOf = (s: { clientIp: string | null; node: string | null }) => (s.clientIp ? nodeByIp.get(s.clientIp) : undefined) ?? s.node;
  const resetsOnVictim = streams.filter((s) => s.broken && ingressOf(s) === victim).length;
  const clientIps = L.topology.clients.flatMap((c) => c.interfaces.map((i) => i.ip));
  const slack = probeSlack(tr);
  const clientStalledMs = traffic.probe.clientStalls?.ms ?? 0;
  const cpuWait: CpuWait | null = cpu && injectAt !== null && outage.firstFailAt !== null ? cpu.longest(outage.firstFailAt, outage.recoveredAt ?? endedAt) : null;

  const record: RunRecord = {
    strategy: strategy.ref.id,
    target,
    drill: drill.kind,
    victim,
    repeat: plan.repeat,
    ...(plan.service && target === 'service' ? { service: plan.service.name, externalTrafficPolicy: plan.service.externalTrafficPolicy } : {}),
    outageMs,
    ...(injectAt !== null ? { recovered: !unrecovered } : {}),
    ...(holdMs > 0 ? { holdMs } : {}),
    // whole milliseconds: bands built from fractional terms (memberlist's log10 of the cluster size) print as such otherwise
    expectedOutageMs: band ? { min: Math.round(band.min), max: Math.round(band.max) } : null,
    expectedBasis: band?.basis,
    // the band is what the timers predict; the check allows the probe's own resolution (one
    // probe interval + one probe timeout on each side: a failure is stamped at its send time).
    // An outage that did not end is not inside any band.
    withinBand: band && outageMs !== null ? !unrecovered && outageMs >= band.min - slack && outageMs <= band.max + slack : null,
    ...(band && outageMs !== null && !unrecovered && hostLoadCovers(outageMs, band.max, slack, Math.max(clientStalledMs, cpuWait?.ms ?? 0)) ? { outsideReason: 'host-load' as const } : {}),
    ...(cpuWait ? { cpuWait } : {}),
    bandSlackMs: band ? slack : undefined,
    phases: injectAt !== null ? phaseBreakdown(events, injectAt, ep.ip, victim, outage.recoveredAt) : undefined,
    errors: (load?.errors ?? 0) + outage.failedProbes,
    errorsByKind: load?.errorsByKind,
    probeFailures: outage.failedProbes,
    outageBursts: outage.bursts,
    ...(outage.heal ? { healOutage: outage.heal } : {}),
    resets: streams.filter((s) => s.broken).length,
    resetsOnVictim,
    resetsOnSurvivors: streams.filter((s) => s.broken).length - resetsOnVictim,
    streams: streams.filter((s) => s.opened).length,
    requests: load?.requests ?? 0,
    latencyMs: load?.latencyMs ?? { p50: 0, p90: 0, p99: 0, p999: 0, max: 0 },
    latencyByPhaseMs: load?.latencyByPhaseMs,
    throughputRps: load?.throughputRps ?? 0,
    nodeShare: servedShare(traffic.probe.samples, load?.nodeCounts),
    clientIpPreserved: target === 'service' && load ? clientIpPreserved(load.clientIps, clientIps) : null,
    internalOutageMs: internal.outageMs,
    timeline: bucketTimeline(traffic.probe.samples, injectAt ?? startedAt + spec.preMs, 100),
    supported: true,
    ...(drill.kind === 'class-conflict' ? { holdersObserved: [...new Set(holdersSeen.flatMap((h) => h.split(',').filter(Boolean)))].sort() } : {}),
    ...(leftStuck.length ? { leftStuck } : {}),
    ...(cleanWait && !cleanWait.clean ? { cleanBeforeFault: false } : {}),
  } as RunRecord;
  const stalls = traffic.probe.clientStalls;
  const notes = [
    ...(drill.kind === 'class-conflict'
      ? [`nodes holding ${ep.ip} over the window, in order: ${holdersSeen.map((h) => `[${h}]`).join(' → ') || 'none'} (two controllers announcing one address = a duplicate IP on the LAN: the path follows whichever announced last)`]
      : []),
    ...(outage.heal && healAt !== null && injectAt !== null
      ? [
          outage.heal.recovered === false
            ? `after the fault was undone (${((healAt - injectAt) / 1000).toFixed(1)} s after the injection) the client saw ${outage.heal.bursts} more failure burst(s), the last still failing when observation stopped: > ${Math.round(outage.heal.outageMs)} ms from the first failure to the last sample (${outage.heal.failedProbes} failed probes, not recovered). What the returning victim did, after a failover the observation had seen end: that outage stands as measured`
            : `after the fault was undone (${((healAt - injectAt) / 1000).toFixed(1)} s after the injection) the client saw ${outage.heal.bursts} more failure burst(s), ${Math.round(outage.heal.outageMs)} ms from the first failure to the last recovery (${outage.heal.failedProbes} failed probes): what the returning victim did (e.g. announcing an address it still held), not part of the failover's outage`,
        ]
      : []),
    ...leftStuck.map((u) => `left stuck by this drill (a real cluster stays so until an operator acts; the lab restarted it before the next drill): ${u}`),
    ...(record.outsideReason === 'host-load'
      ? [
          `outside its band by ${Math.round(outageMs! - band!.max - slack)} ms beyond the probe's resolution while ${hostStallText(clientStalledMs, cpuWait)} (host CPU starvation, docs/fidelity.md#kit-client-event-loop): the overshoot is no longer than that, so this run cannot tell the mechanism from the host's load — rerun it on a quieter or larger host`,
        ]
      : []),
    ...(cleanWait && cleanWait.waitedMs > 0
      ? [
          cleanWait.clean
            ? `the probe failed ${cleanWait.failed} time(s) in the ${spec.preMs} ms before the fault was due: the fault waited ${cleanWait.waitedMs} ms more for a clean pre window, so no earlier failure is counted in this outage`
            : `the probe was still failing ${cleanWait.waitedMs} ms after the fault was due (${cleanWait.failed} failures in the last pre window): the fault was injected on a path that was not clean, so this outage may include failures the fault did not cause — the host or the previous drill, not the mechanism; rerun it on a quieter host`,
        ]
      : []),
    ...(stalls && stalls.ms >= tr.probeTimeoutMs
      ? [`the probing client did not run for ${stalls.ms} ms in ${stalls.count} stall(s) (host load): replies that arrived meanwhile were counted as on time, the probes due meanwhile were sent late`]
      : []),
  ];
  if (notes.length) record.notes = notes;
  return { record, raw: { probe: traffic.probe.samples, events, traffic: traffic!, internal: internal.samples }, stuckBefore };
}

/**
 * The longest a fault waits past its pre window for the probe to be clean: a lab choice, not a
 * component's timer. Long enough for the slowest return seen between drills (a rebooted Talos
 * control plane's VIP comes back about 5 s after the boot: its campaign waits for the etcd
 * service's first health check, ETCD_HEALTH in ../strategies/talos-vip/agent.ts; the waits seen
 * were 0.2–3.2 s), short enough that a host that never gets clean costs 10 s a fault, not the run.
 */
export const CLEAN_WAIT_MAX_MS = 10_000;

/**
 * Wait until the probe has had no failure for a whole pre window (`preMs`), checking every poll,
 * for at most CLEAN_WAIT_MAX_MS past the window's planned end. `status(since)` returns the probe's
 * state counting failures of probes sent at/after `since` (the traffic agent's `traffic.status`).
 */
export async function awaitCleanPreWindow(
  preMs: number,
  status: (since: number) => Promise<Pick<TrafficStatus, 'firstFailAt' | 'failed'>>,
  signal?: AbortSignal,
  maxMs = CLEAN_WAIT_MAX_MS,
  pollMs = POLL_MS,
): Promise<{ waitedMs: number; clean: boolean; failed: number }> {
  const due = now();
  let st = await status(due - preMs);
  if (st.firstFailAt === null) return { waitedMs: 0, clean: true, failed: 0 };
  const failed = st.failed;
  while (st.firstFailAt !== null) {
    const waited = now() - due;
    if (waited >= maxMs) return { waitedMs: Math.round(waited), clean: false, failed: st.failed };
    await sleep(pollMs, signal);
    st = await status(now() - preMs);
  }
  return { waitedMs: Math.round(now() - due), clean: true, failed };
}

/**
 * An outage over its band's maximum by no more than the time the host stood still for the lab
 * cannot be told from the host's load: the probing client's stalls (its event loop starved: failed
 * probes finish late and in batches, recoveries are seen late), or the longest a process of the lab
 * waited runnable for a CPU during the outage (an API server or a Service's pod answering late, so
 * the probe times out; ./cpu-wait.ts) — whichever is longer, pass it as `stalledMs`. The run stays
 * outside its band; this only names the reason it cannot be judged. Not for outages under the
 * minimum: a stalled host never shortens an outage.
 */
export function hostLoadCovers(outageMs: number, bandMax: number, slackMs: number, stalledMs: number): boolean {
  const over = outageMs - (bandMax + slackMs);
  return over > 0 && stalledMs >= over;
}

/** what stood still during an outage, the longer first: the probing client's stalls, a lab process's wait for a CPU */
export function hostStallText(clientStalledMs: number, cpuWait: CpuWait | null): string {
  const client = `the probing client stood still for ${clientStalledMs} ms in all`;
  if (!cpuWait) return client;
  const proc = `${cpuWait.process} waited ${cpuWait.ms} ms for a CPU`;
  return cpuWait.ms > clientStalledMs ? `${proc} (the probing client stood still for ${clientStalledMs} ms)` : `${client} (${proc})`;
}

/** measurement resolution of the outage probe, allowed around a band (see `withinBand`) */
export function probeSlack(tr: { probeIntervalMs: number; probeTimeoutMs: number }): number {
  return tr.probeIntervalMs + tr.probeTimeoutMs;
}
