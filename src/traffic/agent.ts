/**
 * The `traffic` agent component: hosts the load generator, the outage probe and the stream probe
 * inside a client host's network namespace (so everything measured crossed the lab's router, as
 * in real life) and answers the orchestrator over the agent RPC. The contract is
 * src/traffic/rpc.ts: `traffic.start` → `traffic.status` (polled) → `traffic.stop`.
 *
 * Component config (from the provider): `{ caFile?, ca?, insecure?, localAddress? }` — the lab CA
 * for the https API endpoint, and the source address to bind when the client has several.
 *
 * The outage probe runs on this component's own thread. ./probe-worker.ts can run it in a worker
 * thread instead (so a busy load generator cannot delay its timers), but wired in here it made
 * the API baselines worse on the 2-core machine, not better: on `test/fixtures/labs/ci-smb.yaml`
 * the API baseline errors went from 0–1 to 11–267 (probe and load each doing TLS handshakes on
 * their own core leave less CPU for the lab's emulated API servers, whose answers then miss the
 * probe's 200 ms deadline). It stays unwired until a lab has the CPUs for it.
 *
 * Every session starts from a collected heap (../emulation/agent/heap.ts): the garbage of earlier
 * sessions (a TLS socket per new connection, returned samples) otherwise ends in a mark-compact
 * inside a later window — measured with --trace-gc on test/fixtures/labs/ci-smb.yaml, 158 ms in
 * the second strategy's baseline, every probe of that stretch sent up to 197 ms late.
 */
import type { AgentComponent, AgentContext, ComponentFactory } from '../emulation/agent/types.js';
import { collectHeap } from '../emulation/agent/heap.js';
import type { TrafficResult, TrafficStart, TrafficStatus, TrafficStop } from './rpc.js';
import { epochNow } from './clock.js';
import type { LatencyStats } from './histogram.js';
import { startLoad, type LoadGenerator } from './loadgen.js';
import { computeOutage, startOutageProbe, type OutageProbe } from './outage.js';
import { startStreamProbe, type StreamProbe } from './streams.js';
import type { TlsOptions } from './target.js';

export interface TrafficComponentConfig extends TlsOptions {
  localAddress?: string;
}

interface Session {
  id: string;
  startedAt: number;
  probe: OutageProbe;
  load?: LoadGenerator;
  streams?: StreamProbe;
}

const factory: ComponentFactory = (ctx: AgentContext, config: TrafficComponentConfig = {}) => new TrafficComponent(ctx, config ?? {});
export default factory;

export class TrafficComponent implements AgentComponent {
  readonly kind = 'traffic';
  private readonly sessions = new Map<string, Session>();

  constructor(
    private readonly ctx: AgentContext,
    private readonly config: TrafficComponentConfig,
  ) {}

  async start(): Promise<void> {}

  async stop(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.allSettled(all.map((s) => this.stopSession(s)));
  }

  status(): Record<string, unknown> {
    return {
      sessions: [...this.sessions.values()].map((s) => {
        const st = s.streams?.status();
        return {
          id: s.id,
          startedAt: s.startedAt,
          probe: s.probe.status(),
          load: s.load?.progress(),
          streams: st ? { opened: st.opened, resets: st.resets, stalls: st.stalls } : undefined,
        };
      }),
    };
  }

  async call(method: string, params: unknown): Promise<unknown> {
    switch (method) {
      case 'start':
        return this.startSession(params as TrafficStart);
      case 'status': {
        const p = params as { id: string; since?: number; cursor?: number };
        const probe = this.session(p.id).probe;
        const st: TrafficStatus = probe.status(p.since ?? undefined);
        // the samples completed since the caller's cursor, for a live view of the probe
        if (typeof p.cursor === 'number') {
          const all = probe.samples();
          st.samples = all.slice(p.cursor).map((x) => ({ t: x.t, ok: x.ok, latencyMs: x.latencyMs }));
          st.cursor = all.length;
        }
        return st;
      }
      case 'stop':
        return this.finish(params as TrafficStop);
      default:
        throw new Error(`traffic: unknown method '${method}'; valid: start, status, stop`);
    }
  }

  private session(id: string): Session {
    const s = this.sessions.get(id);
    if (!s) throw new Error(`traffic: no session '${id}' (running: ${[...this.sessions.keys()].join(', ') || 'none'})`);
    return s;
  }

  private startSession(p: TrafficStart): { id: string; startedAt: number } {
    if (!p?.id || !p.probe?.url) throw new Error('traffic.start needs {id, probe: {url, intervalMs, timeoutMs}}');
    if (this.sessions.has(p.id)) throw new Error(`traffic: session '${p.id}' already running`);
    // the previous sessions' garbage is collected now, not by a major GC inside this window
    if (!this.sessions.size) collectHeap();
    const tls = { ca: this.config.ca, caFile: this.config.caFile, insecure: this.config.insecure };
    const localAddress = this.config.localAddress;
    const probe = startOutageProbe({ target: p.probe.url, intervalMs: p.probe.intervalMs, timeoutMs: p.probe.timeoutMs, localAddress, ...tls });
    let load: LoadGenerator | undefined;
    let streams: StreamProbe | undefined;
    try {
      if (p.load) {
        load = startLoad({
          url: p.load.url,
          rate: p.load.rate,
          connections: p.load.connections,
          mode: p.load.mode,
          timeoutMs: p.load.timeoutMs,
          keepSamples: false,
          localAddress,
          ...tls,
        });
      }
      if (p.streams) {
        streams = startStreamProbe({ target: p.streams.url, streams: p.streams.count, stallMs: p.streams.stallMs, localAddress, ...tls });
      }
    } catch (e) {
      void probe.stop();
      void load?.stop(false);
      throw e;
    }
    const s: Session = { id: p.id, startedAt: epochNow(), probe, load, streams };
    this.sessions.set(p.id, s);
    this.ctx.emit('traffic', 'started', { id: p.id, probe: p.probe.url, load: p.load?.url, streams: p.streams?.url });
    return { id: p.id, startedAt: s.startedAt };
  }

  private async finish(p: TrafficStop): Promise<TrafficResult> {
    const s = this.session(p.id);
    this.sessions.delete(p.id);
    const result = await this.stopSession(s, p);
    this.ctx.emit('traffic', 'stopped', { id: p.id, outageMs: result.probe.outage.outageMs });
    return result;
  }

  private async stopSession(s: Session, p?: TrafficStop): Promise<TrafficResult> {
    const [samples, load, streams] = await Promise.all([s.probe.stop(), s.load?.stop(true), s.streams?.stop()]);
    const injectAt = p?.injectAt ?? null;
    // baseline (no injection): any failure during the run counts, from the first probe on
    const outage = computeOutage(samples, { injectAt: injectAt ?? s.probe.startedAt, recoverSuccesses: p?.recoverSuccesses ?? 3, healAt: p?.healAt ?? null, settledAtUndo: p?.settledAtUndo });
    const out: TrafficResult = {
      probe: {
        samples,
        outage: {
          outageMs: outage.outageMs,
          firstFailAt: outage.firstFailAt,
          recoveredAt: outage.recoveredAt,
          failedProbes: outage.failedProbes,
          bursts: outage.burstCount,
          heal: outage.heal,
          // extras beyond the contract, for the raw record
          ...{
            recovered: outage.recovered,
            burstList: outage.bursts,
            failuresByKind: outage.failuresByKind,
            preInjectFailures: outage.preInjectFailures,
            nodeBefore: outage.nodeBefore,
            nodeAfter: outage.nodeAfter,
          },
        },
        clientStalls: s.probe.clientStalls(),
      },
    };
    if (load && s.load) {
      const phases: { before?: LatencyStats; during?: LatencyStats; after?: LatencyStats } = {};
      if (injectAt !== null) {
        const ph = s.load.phases(injectAt, outage.recoveredAt);
        if (ph.before.requests) phases.before = ph.before.latencyMs;
        if (ph.during.requests) phases.during = ph.during.latencyMs;
        if (ph.after.requests) phases.after = ph.after.latencyMs;
      }
      const { samples: _drop, ...rest } = load;
      out.load = { ...rest, errorsByKind: load.errorsByKind as Record<string, number>, latencyByPhaseMs: phases };
    }
    if (streams) out.streams = streams.streams;
    return out;
  }
}
