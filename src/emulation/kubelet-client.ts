/**
 * Agent component `kubelet-client`: an in-cluster API client on every node, standing for kubelet
 * and the other host-network clients Talos points at KubePrism. It calls
 * `https://127.0.0.1:7445/readyz` (through KubePrism, TLS verified with the lab CA) every
 * `intervalMs` and keeps the samples, so a drill can show what in-cluster clients saw while the
 * external endpoint (VIP / load balancer) failed over (pitfall 5 of the brief; `internalOutage()` in
 * src/orchestrator/analysis.ts reads them through the `samples` RPC).
 *
 * Measurement rules are the outage probe's (src/traffic/outage.ts): open loop (a probe is due every
 * interval whether or not earlier ones finished; missed slots while the process was stopped are
 * skipped, not sent in a burst), one fresh TCP + TLS connection per probe (a kept-alive connection
 * would stick to one API server through the TCP balancer and hide its failover), `t` = the intended
 * send time in epoch ms on the shared clock (`now()` of src/util/proc.ts), latency from `t`.
 * Samples `{t, ok, latencyMs, kind?, node?}` (ProbeSample of src/traffic/rpc.ts): ok =
 * HTTP status < 400 before the timeout, `kind` = the failure class of src/traffic/target.ts, `node`
 * = the API server that answered (`x-served-by`). They live in a bounded ring (last `keepMs`,
 * default 10 min).
 *
 * Gated (`gated: true`, as the lab runs it): a slot is probed only while the file
 * `<stateDir>/observing` exists, which the lab creates for the time a drill measures a fault
 * (RunningLab.observing). Each probe is a fresh TCP + TLS connection through KubePrism to an API
 * server: three observers at 10 a second cost the 2-core enterprise lab about a third of a CPU
 * (client and server side), which its API baselines and the boots between drills paid for
 * without a fault to observe. A respawned agent reads the same file, so an observer restarted
 * during a measured fault (the only node of minecraft coming back) probes again at once.
 *
 * RPC: `samples {since?, until?}` → ProbeSample[] sorted by t; `status`.
 * Config: `{ url?, intervalMs? (100), timeoutMs? (1000), keepMs? (600000), caFile?, gated? (false) }`.
 */
import http from 'node:http';
import https from 'node:https';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AgentComponent, AgentContext, ComponentFactory } from './agent/types.js';
import type { ProbeSample } from '../traffic/rpc.js';
import { classifyError, httpStatusKind } from '../traffic/target.js';
import { now } from '../util/proc.js';
import { pkiPaths } from './pki.js';

export interface KubeletClientConfig {
  /** default `https://127.0.0.1:<kubePrismPort>/readyz` */
  url?: string;
  intervalMs?: number;
  timeoutMs?: number;
  /** how long samples are kept (ring), default 10 min */
  keepMs?: number;
  /** CA to verify the API servers with; default the lab CA `pkiPaths(stateDir).caCert` */
  caFile?: string;
  /** probe only while `<stateDir>/observing` exists (OBSERVING_FILE) */
  gated?: boolean;
}

/** the file whose presence in the lab's state dir lets gated observers probe */
export const OBSERVING_FILE = 'observing';

const factory: ComponentFactory = (ctx: AgentContext, config: KubeletClientConfig = {}) => new KubeletClient(ctx, config ?? {});
export default factory;

const round3 = (x: number) => Math.round(x * 1000) / 1000;

export class KubeletClient implements AgentComponent {
  readonly kind = 'kubelet-client';
  private readonly url: URL;
  private readonly intervalMs: number;
  private readonly timeoutMs: number;
  private readonly keepMs: number;
  private readonly caFile: string;
  /** probe only while this file exists (null: always) */
  private readonly gate: string | null;
  private ca?: Buffer;
  private ring: ProbeSample[] = [];
  private head = 0;
  private timer?: NodeJS.Timeout;
  private startedAt = 0;
  private slot = 0;
  private inFlight = 0;
  private stopped = false;
  private readonly pending = new Set<() => void>();
  private counts = { sent: 0, ok: 0, failed: 0, skipped: 0, gated: 0 };

  constructor(
    private readonly ctx: AgentContext,
    config: KubeletClientConfig,
  ) {
    this.url = new URL(config.url ?? `https://127.0.0.1:${ctx.topology.kubePrismPort}/readyz`);
    this.intervalMs = config.intervalMs ?? 100;
    this.timeoutMs = config.timeoutMs ?? 1000;
    this.keepMs = config.keepMs ?? 600_000;
    this.caFile = config.caFile ?? pkiPaths(ctx.spec.stateDir).caCert;
    this.gate = config.gated ? join(ctx.spec.stateDir, OBSERVING_FILE) : null;
    if (!(this.intervalMs > 0)) throw new Error(`kubelet-client: intervalMs must be > 0, got ${this.intervalMs}`);
  }

  async start(): Promise<void> {
    if (this.url.protocol === 'https:') this.ca = readFileSync(this.caFile);
    this.startedAt = now();
    this.slot = 0;
    this.tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    for (const abort of [...this.pending]) abort();
  }

  status(): Record<string, unknown> {
    const last = this.ring[this.ring.length - 1];
    return { url: this.url.href, intervalMs: this.intervalMs, kept: this.ring.length - this.head, inFlight: this.inFlight, ...this.counts, last };
  }

  async call(method: string, params: unknown): Promise<unknown> {
    switch (method) {
      case 'samples': {
        const p = (params ?? {}) as { since?: number | null; until?: number | null };
        return this.samples(p.since ?? undefined, p.until ?? undefined);
      }
      case 'status':
        return this.status();
      default:
        throw new Error(`kubelet-client: unknown method '${method}'; valid: samples, status`);
    }
  }

  /** Kept samples with since ≤ t ≤ until, sorted by t. */
  samples(since = -Infinity, until = Infinity): ProbeSample[] {
    const out: ProbeSample[] = [];
    for (let i = this.head; i < this.ring.length; i++) {
      const s = this.ring[i]!;
      if (s.t >= since && s.t <= until) out.push(s);
    }
    return out.sort((a, b) => a.t - b.t);
  }

  private tick(): void {
    if (this.stopped) return;
    const due = this.startedAt + this.slot * this.intervalMs;
    const late = now() - due;
    if (late >= this.intervalMs) {
      // the process was stopped (freeze drill) or starved: skip the missed slots
      const skip = Math.floor(late / this.intervalMs);
      this.counts.skipped += skip;
      this.slot += skip;
    }
    const t = this.startedAt + this.slot * this.intervalMs;
    this.slot++;
    // never more in flight than can be pending within one timeout
    if (this.gate && !existsSync(this.gate)) this.counts.gated++;
    else if (this.inFlight < Math.ceil(this.timeoutMs / this.intervalMs) + 8) this.probe(t);
    else this.counts.skipped++;
    const next = this.startedAt + this.slot * this.intervalMs;
    this.timer = setTimeout(() => this.tick(), Math.max(0, next - now()));
  }

  private probe(t: number): void {
    this.inFlight++;
    this.counts.sent++;
    let finished = false;
    const finish = (ok: boolean, kind?: string, node?: string) => {
      if (finished) return;
      finished = true;
      clearTimeout(deadline);
      this.pending.delete(abort);
      this.inFlight--;
      req.destroy();
      if (this.stopped) return;
      const s: ProbeSample = { t: round3(t), ok, latencyMs: round3(now() - t) };
      if (kind) s.kind = kind;
      if (node) s.node = node;
      if (ok) this.counts.ok++;
      else this.counts.failed++;
      this.record(s);
    };
    const client = this.url.protocol === 'http:' ? http : https;
    const req = client.request({
      protocol: this.url.protocol,
      hostname: this.url.hostname,
      port: Number(this.url.port) || (this.url.protocol === 'http:' ? 80 : 443),
      path: `${this.url.pathname}${this.url.search}`,
      method: 'GET',
      agent: false,
      ca: this.ca,
      rejectUnauthorized: true,
      headers: { 'user-agent': 'talos-ha-lab kubelet-client', connection: 'close' },
    });
    const abort = () => finish(false, 'other');
    this.pending.add(abort);
    // the deadline counts from the intended send time, like the outage probe's
    const deadline = setTimeout(() => finish(false, 'timeout'), Math.max(0, t + this.timeoutMs - now()));
    req.on('response', (res) => {
      const node = typeof res.headers['x-served-by'] === 'string' ? res.headers['x-served-by'] : undefined;
      const status = res.statusCode ?? 0;
      res.resume();
      res.on('end', () => {
        const bad = httpStatusKind(status);
        finish(bad === null, bad ?? undefined, node);
      });
      res.on('error', (e) => finish(false, classifyError(e), node));
    });
    req.on('error', (e) => finish(false, classifyError(e)));
    req.end();
  }

  private record(s: ProbeSample): void {
    this.ring.push(s);
    const cutoff = now() - this.keepMs;
    while (this.head < this.ring.length && this.ring[this.head]!.t < cutoff) this.head++;
    // compact the ring now and then (amortised O(1) per sample)
    if (this.head > 1024 && this.head * 2 > this.ring.length) {
      this.ring = this.ring.slice(this.head);
      this.head = 0;
    }
  }
}
