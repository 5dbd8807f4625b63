/**
 * One measured drill run: traffic on → pre window → inject → wait for recovery (or the window's
 * end) → restore → post window → traffic off → a RunRecord. Every figure comes from what the
 * client's probes observed; the mechanism's timers only give the expected band stored beside it.
 */
import type { DrillSpec, Lab, LbService, Target } from '../model/types.js';
import type { RunningLab } from '../providers/types.js';
import type { Strategy, Band } from '../strategies/types.js';
import type { Drill, DrillContext } from '../drills/types.js';
import type { RunRecord } from '../results/types.js';
import type { AgentEvent } from '../emulation/agent/types.js';
import type { TrafficResult, TrafficStart, TrafficStatus, TrafficStop, ProbeSample } from '../traffic/rpc.js';
import { now, sleep } from '../util/proc.js';
import { bucketTimeline, phaseBreakdown, internalOutage } from './analysis.js';
import { clientIpPreserved } from '../traffic/stats.js';
import { withEndpointTail } from '../emulation/endpoints.js';
import { apiEndpoint } from '../strategies/compose.js';

export interface MeasureInput {
  lab: RunningLab;
  strategy: Strategy;
  drill: Drill;
  spec: DrillSpec;
  target: Target;
  repeat: number;
  /** the Service under test (target 'service') */
  service?: LbService;
  random(): number;
  signal?: AbortSignal;
  log(msg: string): void;
}

export interface MeasureOutput {
  record: RunRecord;
  raw: { probe: ProbeSample[]; events: AgentEvent[]; traffic: TrafficResult; internal?: Record<string, unknown[]> };
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

export async function measureDrill(m: MeasureInput): Promise<MeasureOutput> {
  const { lab, strategy, drill, spec, target } = m;
  const L = lab.lab;
  const tr = L.traffic;
  const client = clientHost(L);
  const ep = endpointFor(L, strategy, target, m.service);
  const mech = target === 'api' ? strategy.cp : strategy.svc;
  const ctx: DrillContext = { lab, strategy, spec, target, random: m.random };
  const victim = await drill.pickVictim(ctx);
  const mechBand: Band | null = drill.kind === 'baseline' ? null : mech.expectedOutage(drill.kind, { topology: L.topology, strategy: strategy.ref, roles: { cp: strategy.cp, svc: strategy.svc } });
  const victimRunsPod = L.topology.nodes.some((n) => n.name === victim && n.runsWorkloads);
  const band = target === 'service' ? withEndpointTail(mechBand, drill.kind, m.service ?? L.topology.services[0], L.topology, victimRunsPod, spec.holdMs, drill.held) : mechBand;
  if (drill.prepare) {
    await drill.prepare(ctx, victim);
    await sleep(Math.min(spec.settleMs, 3000), m.signal);
  }

  const id = `${strategy.ref.id}/${target}/${drill.kind}/${m.repeat}/${Math.round(now())}`;
  const start: TrafficStart = {
    id,
    probe: { url: ep.probeUrl, intervalMs: tr.probeIntervalMs, timeoutMs: tr.probeTimeoutMs },
    load: { url: ep.loadUrl, rate: tr.rate, connections: tr.connections, mode: tr.mode, timeoutMs: tr.timeoutMs },
    streams: ep.streamUrl && tr.streams > 0 ? { url: ep.streamUrl, count: tr.streams, stallMs: 1000 } : undefined,
  };
  const startedAt = now();
  await lab.call(client, 'traffic.start', start);
  let injectAt: number | null = null;
  let restored = false;
  let traffic: TrafficResult | undefined;
  const holdersSeen: string[] = [];
  try {
    await sleep(spec.preMs, m.signal);
    if (drill.kind !== 'baseline' && drill.kind !== 'class-conflict') {
      m.log(`inject ${drill.kind} on ${victim ?? '-'}`);
      injectAt = now();
      await drill.inject(ctx, victim);
      // observe: until recovered (clean for a second after a failure), or quiet, or the window ends.
      // A held fault (freeze, partition) lasts exactly holdMs — it is restored then, inside the
      // window, and what the client sees afterwards is part of the measurement (holdMs 0 = hold
      // until the client recovered by itself).
      const window = Math.max(spec.observeMs, band ? band.max * 1.5 + 2000 : 0, drill.held ? spec.holdMs + 5000 : 0);
      const quietMs = Math.min(window, drill.held ? Math.max(spec.holdMs, 3000) : 5000);
      // Stop observing only once the probe has been clean for a whole second: with ECMP or a dead
      // endpoint still in rotation failures are partial, and K lucky successes in a row would end
      // the window in the middle of the outage (the outage itself is computed over every sample).
      const stableOk = Math.max(tr.recoverSuccesses, Math.ceil(1000 / tr.probeIntervalMs));
      for (;;) {
        await sleep(100, m.signal);
        const elapsed = now() - injectAt;
        const st = await lab.call<TrafficStatus>(client, 'traffic.status', { id, since: injectAt });
        const recovered = st.firstFailAt !== null && st.consecutiveOk >= stableOk;
        const quiet = st.firstFailAt === null && elapsed >= quietMs;
        if (drill.held && !restored && (spec.holdMs > 0 ? elapsed >= spec.holdMs : (recovered && elapsed >= 1000) || quiet)) {
          m.log(`restore ${victim ?? '-'} after ${Math.round(elapsed)} ms`);
          await drill.restore(ctx, victim);
          restored = true;
          continue;
        }
        // never before the band's minimum: a tail of rare partial failures (one dead pod among
        // thirty endpoints) can look clean for a second long before it really ends
        if (((recovered && elapsed >= Math.max(1000, band?.min ?? 0)) || quiet) && (!drill.held || restored)) break;
        if (elapsed >= window) break;
      }
      if (drill.held && !restored) {
        m.log(`restore ${victim ?? '-'}`);
        await drill.restore(ctx, victim);
        restored = true;
      }
      await sleep(Math.min(spec.settleMs, 3000), m.signal); // the "after" window
    } else if (drill.kind === 'class-conflict') {
      // the misconfiguration is the fault: watch who holds the Service address meanwhile
      const until = now() + Math.max(spec.observeMs, 1000);
      while (now() < until) {
        const h = (await lab.holders(target)).join(',');
        if (h !== holdersSeen.at(-1)) holdersSeen.push(h);
        await sleep(250, m.signal);
      }
    } else {
      await sleep(Math.max(spec.observeMs, 1000), m.signal);
    }
  } finally {
    // traffic off before restore: a restore is not part of what the client measured
    traffic = await lab.call<TrafficResult>(client, 'traffic.stop', { id, injectAt, recoverSuccesses: tr.recoverSuccesses } satisfies TrafficStop, 60_000);
    if (!restored && drill.kind !== 'baseline') {
      await drill.restore(ctx, victim).catch((e) => m.log(`restore failed: ${(e as Error).message}`));
    }
  }
  if (!traffic) throw new Error('traffic.stop returned nothing');
  const endedAt = now();
  const events = await lab.events(startedAt - 1);

  const internal = await internalOutage(lab, startedAt, endedAt, injectAt, tr.recoverSuccesses);
  const outage = traffic.probe.outage;
  const outageMs = injectAt === null ? (drill.kind === 'class-conflict' ? outage.outageMs : null) : outage.outageMs;
  const load = traffic.load;
  const streams = traffic.streams ?? [];
  // which node a stream ENTERED through: under ETP Cluster the pod sees the ingress node's address
  // (SNAT) and may run elsewhere; under Local the pod's node is the ingress and sees the client
  const nodeByIp = new Map(L.topology.nodes.map((n) => [n.ip, n.name]));
  const ingressOf = (s: { clientIp: string | null; node: string | null }) => (s.clientIp ? nodeByIp.get(s.clientIp) : undefined) ?? s.node;
  const resetsOnVictim = streams.filter((s) => s.broken && ingressOf(s) === victim).length;
  const clientIps = L.topology.clients.flatMap((c) => c.interfaces.map((i) => i.ip));

  const record: RunRecord = {
    strategy: strategy.ref.id,
    target,
    drill: drill.kind,
    victim,
    repeat: m.repeat,
    ...(m.service && target === 'service' ? { service: m.service.name, externalTrafficPolicy: m.service.externalTrafficPolicy } : {}),
    outageMs,
    expectedOutageMs: band ? { min: band.min, max: band.max } : null,
    expectedBasis: band?.basis,
    // the band is what the timers predict; the check allows the probe's own resolution (one
    // probe interval + one probe timeout on each side: a failure is stamped at its send time)
    withinBand: band && outageMs !== null ? outageMs >= band.min - probeSlack(tr) && outageMs <= band.max + probeSlack(tr) : null,
    bandSlackMs: band ? probeSlack(tr) : undefined,
    phases: injectAt !== null ? phaseBreakdown(events, injectAt, ep.ip, victim, outage.recoveredAt) : undefined,
    errors: (load?.errors ?? 0) + outage.failedProbes,
    errorsByKind: load?.errorsByKind,
    probeFailures: outage.failedProbes,
    outageBursts: outage.bursts,
    resets: streams.filter((s) => s.broken).length,
    resetsOnVictim,
    resetsOnSurvivors: streams.filter((s) => s.broken).length - resetsOnVictim,
    streams: streams.filter((s) => s.opened).length,
    requests: load?.requests ?? 0,
    latencyMs: load?.latencyMs ?? { p50: 0, p90: 0, p99: 0, p999: 0, max: 0 },
    latencyByPhaseMs: load?.latencyByPhaseMs,
    throughputRps: load?.throughputRps ?? 0,
    nodeShare: load?.nodeShare,
    clientIpPreserved: target === 'service' && load ? clientIpPreserved(load.clientIps, clientIps) : null,
    internalOutageMs: internal.outageMs,
    timeline: bucketTimeline(traffic.probe.samples, injectAt ?? startedAt + spec.preMs, 100),
    supported: true,
    ...(drill.kind === 'class-conflict'
      ? {
          holdersObserved: [...new Set(holdersSeen.flatMap((h) => h.split(',').filter(Boolean)))].sort(),
          notes: [`nodes holding ${ep.ip} over the window, in order: ${holdersSeen.map((h) => `[${h}]`).join(' → ') || 'none'} (two controllers announcing one address = a duplicate IP on the LAN: the path follows whichever announced last)`],
        }
      : {}),
  } as RunRecord;
  return { record, raw: { probe: traffic.probe.samples, events, traffic: traffic!, internal: internal.samples } };
}

/** measurement resolution of the outage probe, allowed around a band (see `withinBand`) */
export function probeSlack(tr: { probeIntervalMs: number; probeTimeoutMs: number }): number {
  return tr.probeIntervalMs + tr.probeTimeoutMs;
}
