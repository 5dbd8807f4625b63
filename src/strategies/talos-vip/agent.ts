/**
 * Agent component `talos-vip`: the emulated Talos shared-IP (VIP) operator of one control plane.
 * Emulates siderolabs/talos internal/app/machined/pkg/controllers/network/operator/vip.go (v1.11)
 * with the SAME etcd primitives Talos uses (go.etcd.io/etcd/client/v3/concurrency: Session +
 * Election, etcd v3.5), run against the lab's real etcd cluster:
 *
 * - Preconditions (vip.go waitForPreconditions): the node campaigns only while its etcd is healthy.
 *   Talos waits for its etcd service's health (ValidateQuorum through the LOCAL member, checked every
 *   20 s); the emulation checks the local member with a linearizable read right before campaigning
 *   and retries every campaign-retry interval while it fails (event `etcd-unhealthy`).
 * - Client: only the local member (Talos `etcd.NewLocalClient`), so a node cut off from quorum
 *   cannot campaign or keep its session through another member.
 * - Session: a lease with TTL `timers.talosVip.sessionTtlS` (Talos calls concurrency.NewSession
 *   without WithTTL → client default 60 s, concurrency/session.go), kept alive every TTL/3
 *   (clientv3 lease.go sends keepalives at TTL/3; etcd3's Lease does the same). The session is
 *   "done" when etcd says the lease is gone or when no keepalive succeeded for a whole TTL
 *   (clientv3 lease.go deadlineLoop, checked every 500 ms) — that is how a partitioned holder lets go.
 * - Election key `talos:v1:vip:election:<ip>` (vip.go etcdElectionKey, constants.EtcdRootTalosKey =
 *   "talos:v1"): concurrency.Election keys are `<prefix>/<lease id hex>`; Campaign puts the key if
 *   absent (CAS on create revision 0) and waits until every key created before it is deleted (FIFO
 *   queue by create revision, concurrency/election.go + key.go waitDeletes).
 * - Before campaigning, a node that is still recorded as leader from a previous run resigns that
 *   key first (vip.go "resigning from previous election").
 * - The winner adds the VIP to the link and the address controller sends one gratuitous ARP
 *   (AddressSpec.AnnounceWithARP). It keeps the IP until: its session ends (lease expired or lost —
 *   the only way a crashed/partitioned holder is replaced: the others wait for the lease to
 *   expire, by design), the leader key changes, its etcd or kube-apiserver static pod goes away, or
 *   the node shuts down. Then it removes the IP, resigns (deletes its key, vip.go deferred
 *   election.Resign) and revokes its session (vip.go deferred ec.RevokeSession, upstream main), and
 *   campaigns again at once; after a failure it waits campaignRetryInterval = 1 s (vip.go Run).
 *
 * Config: `{ vip, link?, endpoints?, hostname?, watchApiserver? }`. Events: `campaign`, `leader`,
 * `acquired` {ip}, `garp-sent`, `released` {ip, reason}, `lost-leader`, `resigned`,
 * `etcd-unhealthy` {error}.
 * Test hook: `simulateCrash()` stops everything without a goodbye (no resign, no revoke, the lease
 * is simply no longer kept alive) — what SIGKILL does to the real process.
 */
import net from 'node:net';
import { Etcd3, type IOptions, type Lease, type Watcher } from 'etcd3';
import type { AgentComponent, AgentContext, ComponentFactory } from '../../emulation/agent/types.js';
import { addAddress, delAddress, hasAddress, lanIf, sendGarp } from '../../emulation/net.js';

// ---------------------------------------------------------------------------------------------
// etcd client shared by the emulated controllers (talos-vip, kube-vip)
// ---------------------------------------------------------------------------------------------

type Policy = NonNullable<NonNullable<IOptions['faultHandling']>['global']>;
type Backoff = NonNullable<NonNullable<IOptions['faultHandling']>['watchBackoff']>;

/**
 * etcd3 wraps calls in cockatiel policies (3 retries, a 5 s circuit breaker per host; etcd3 v1.1
 * lib/connection-pool.js). The Go clients the real controllers use do neither, and our loops retry
 * on their own timers, so every call here is one attempt bounded by its deadline.
 */
const passThrough = {
  execute: <T>(fn: (c: { signal: AbortSignal }) => PromiseLike<T> | T, signal?: AbortSignal) =>
    Promise.resolve().then(() => fn({ signal: signal ?? new AbortController().signal })),
} as unknown as Policy;

/** Watch streams re-connect after 200 ms (etcd3's default backoff grows to 30 s). */
const watchBackoff: Backoff = { duration: 200, next() { return this; } } as unknown as Backoff;

export function labEtcdClient(hosts: string[], defaultDeadlineMs = 5000): Etcd3 {
  return new Etcd3({
    hosts,
    dialTimeout: 2000,
    defaultCallOptions: (c) => (c.isStream ? {} : { deadline: Date.now() + defaultDeadlineMs }),
    faultHandling: { host: () => passThrough, global: passThrough, watchBackoff },
    // grpc-js reconnects with a backoff growing to 120 s; cap it so a restarted etcd is seen at once
    grpcOptions: { 'grpc.initial_reconnect_backoff_ms': 100, 'grpc.min_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': 1000 },
  });
}

export const within = (ms: number) => ({ deadline: Date.now() + ms });

/**
 * Wait `ms`, or less when `signal` aborts (resolves either way). Unlike util/proc.ts `sleep`, it
 * removes its abort listener when the timer fires, so loops that pause every second for hours do
 * not pile listeners onto one long-lived signal.
 */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Wait for `p`, at most `ms` (the timer is cleared when `p` settles first). */
export async function atMost(p: Promise<unknown>, ms: number): Promise<void> {
  const ac = new AbortController();
  await Promise.race([p.then(() => undefined, () => undefined).finally(() => ac.abort()), pause(ms, ac.signal)]);
}

/** Reject when the signal aborts (the promise itself keeps running; callers clean up). */
export function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason ?? new Error('aborted'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason ?? new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

// ---------------------------------------------------------------------------------------------
// concurrency.Session / concurrency.Election (go.etcd.io/etcd/client/v3/concurrency, v3.5)
// ---------------------------------------------------------------------------------------------

/** A lease kept alive every TTL/3; `done` resolves (with the reason) when the session is over. */
export class EtcdSession {
  readonly done: Promise<string>;
  private finish!: (reason: string) => void;
  private ended = false;
  private lastOkAt = Date.now();
  private readonly deadlineTimer: NodeJS.Timeout;

  private constructor(
    private readonly lease: Lease,
    readonly id: string,
    readonly ttlS: number,
  ) {
    this.done = new Promise((resolve) => (this.finish = resolve));
    lease.on('keepaliveSucceeded', () => (this.lastOkAt = Date.now()));
    lease.on('lost', (e) => this.end(`lease lost: ${e.message}`));
    // clientv3 lease.go deadlineLoop: every 500 ms, close the keepalive channel of a lease whose
    // last keepalive response is older than its TTL (the session's Done() then fires)
    this.deadlineTimer = setInterval(() => {
      if (Date.now() - this.lastOkAt > ttlS * 1000) this.end(`no keepalive answered for ${ttlS} s`);
    }, 500);
    this.deadlineTimer.unref?.();
  }

  static async open(client: Etcd3, ttlS: number, deadlineMs = 5000): Promise<EtcdSession> {
    const lease = client.lease(ttlS, { autoKeepAlive: true, deadline: Date.now() + deadlineMs });
    lease.on('lost', () => undefined); // a failed grant also emits 'lost'; grant() rejects below
    try {
      const id = await lease.grant();
      return new EtcdSession(lease, id, ttlS);
    } catch (e) {
      lease.release();
      throw e;
    }
  }

  /** the lease id as concurrency.Election writes it into keys (`%x`) */
  get hex(): string {
    return BigInt(this.id).toString(16);
  }

  get isDone(): boolean {
    return this.ended;
  }

  private end(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.deadlineTimer);
    this.lease.release(); // stop the keepalive loop (no-op when already torn down)
    this.finish(reason);
  }

  /** graceful: revoke the lease, which deletes every key attached to it (Session.Close) */
  async revoke(deadlineMs = 3000): Promise<void> {
    const wasEnded = this.ended;
    this.end('revoked');
    if (!wasEnded) await this.lease.revoke(within(deadlineMs));
  }

  /** crash: stop keeping the lease alive and say nothing (etcd expires it after the TTL) */
  abandon(): void {
    this.end('abandoned');
  }
}

export interface ElectionLeader {
  key: string;
  value: string;
  createRevision: string;
}

/** concurrency.Election: FIFO by create revision of `<prefix>/<lease hex>` keys. */
export class EtcdElection {
  readonly keyPrefix: string;
  private myKey?: string;
  private myRev?: string;

  constructor(
    private readonly client: Etcd3,
    private readonly session: EtcdSession,
    prefix: string,
  ) {
    this.keyPrefix = `${prefix}/`;
  }

  get key(): string | undefined {
    return this.myKey;
  }

  async leader(deadlineMs = 3000): Promise<ElectionLeader | null> {
    const r = await this.client.getAll().prefix(this.keyPrefix).sort('Create', 'Ascend').limit(1).options(within(deadlineMs)).exec();
    const kv = r.kvs[0];
    return kv ? { key: kv.key.toString(), value: kv.value.toString(), createRevision: String(kv.create_revision) } : null;
  }

  /** election.Campaign: resolves when this session leads; rejects when `signal` aborts or etcd fails. */
  async campaign(value: string, signal: AbortSignal): Promise<void> {
    const key = `${this.keyPrefix}${this.session.hex}`;
    const r = await this.client
      .if(key, 'Create', '==', 0)
      .then(this.client.put(key).value(value).lease(this.session.id))
      .else(this.client.get(key))
      .commit();
    this.myKey = key;
    this.myRev = String(r.header.revision);
    if (!r.succeeded) {
      const kv = r.responses[0]?.response_range?.kvs[0];
      if (kv) {
        this.myRev = String(kv.create_revision);
        if (kv.value.toString() !== value) {
          // Proclaim: update the value while keeping the key's create revision
          await this.client.if(key, 'Create', '==', this.myRev).then(this.client.put(key).value(value).lease(this.session.id)).commit();
        }
      }
    }
    try {
      await this.waitDeletes(BigInt(this.myRev) - 1n, signal);
    } catch (e) {
      // concurrency/election.go: on cancel, resign so we do not stay queued
      if (signal.aborted) await this.resign().catch(() => undefined);
      throw e;
    }
  }

  /** key.go waitDeletes: wait until no key of the prefix has create revision ≤ maxCreateRev. */
  private async waitDeletes(maxCreateRev: bigint, signal: AbortSignal): Promise<void> {
    for (;;) {
      if (signal.aborted) throw signal.reason ?? new Error('aborted');
      const r = await untilAborted(
        this.client.getAll().prefix(this.keyPrefix).maxCreateRevision(String(maxCreateRev)).sort('Create', 'Descend').limit(1).exec(),
        signal,
      );
      const last = r.kvs[0];
      if (!last) return;
      await this.waitDelete(last.key.toString(), String(r.header.revision), signal);
    }
  }

  private async waitDelete(key: string, rev: string, signal: AbortSignal): Promise<void> {
    let watcher: Watcher | undefined;
    try {
      const deleted = new Promise<void>((resolve, reject) => {
        const w = this.client.watch().key(key).startRevision(rev).only('delete').watcher();
        watcher = w;
        w.once('delete', () => resolve());
        w.on('error', reject);
      });
      await untilAborted(deleted, signal);
    } finally {
      await watcher?.cancel().catch(() => undefined);
    }
  }

  /** resolves when this session's key is deleted (lease expired, revoked, resigned): leadership gone */
  async watchOwnKey(signal: AbortSignal): Promise<string> {
    if (!this.myKey) throw new Error('not campaigning');
    const key = this.myKey;
    const now = await this.client.get(key).exec();
    if (!now.kvs.length) return 'leader key gone';
    await this.waitDelete(key, String(now.header.revision), signal);
    return 'leader key deleted';
  }

  /** election.Resign: delete our key if it is still the one we created */
  async resign(deadlineMs = 3000): Promise<void> {
    if (!this.myKey || !this.myRev) return;
    const key = this.myKey;
    const rev = this.myRev;
    this.myKey = undefined;
    this.myRev = undefined;
    await this.client.if(key, 'Create', '==', rev).then(this.client.delete().key(key)).options(within(deadlineMs)).commit();
  }

  /** concurrency.ResumeElection(...).Resign: delete a key left by an earlier run of this node */
  async resignKey(leader: ElectionLeader, deadlineMs = 3000): Promise<void> {
    await this.client.if(leader.key, 'Create', '==', leader.createRevision).then(this.client.delete().key(leader.key)).options(within(deadlineMs)).commit();
  }
}

// ---------------------------------------------------------------------------------------------
// the component
// ---------------------------------------------------------------------------------------------

export interface TalosVipConfig {
  /** the shared IP (machine.network.interfaces[].vip.ip) */
  vip: string;
  /** link the VIP is added to (default: the node's LAN interface) */
  link?: string;
  /** etcd client URLs (default: the node's own member, http://<node ip>:2379, like NewLocalClient) */
  endpoints?: string[];
  /** value campaigned with (default: the host name, vip.go uses os.Hostname()) */
  hostname?: string;
  /** treat the local kube-apiserver disappearing as its static pod being destroyed (default: when the agent runs one) */
  watchApiserver?: boolean;
}

/** Talos constants.EtcdRootTalosKey (pkg/machinery/constants, v1.11) */
export const ETCD_ROOT_TALOS_KEY = 'talos:v1';
export const talosElectionKey = (ip: string) => `${ETCD_ROOT_TALOS_KEY}:vip:election:${ip}`;

const factory: ComponentFactory = (ctx: AgentContext, config: TalosVipConfig) => new TalosVip(ctx, config);
export default factory;

const COMPONENT = 'talos-vip';

export class TalosVip implements AgentComponent {
  readonly kind = COMPONENT;
  private readonly abort = new AbortController();
  private crashed = false;
  private loop?: Promise<void>;
  private client?: Etcd3;
  private session?: EtcdSession;
  private leader = false;
  private holding = false;
  private campaigning = false;
  private etcdHealthy: boolean | null = null;
  private leaderSince: number | null = null;
  private readonly link: string;
  private readonly endpoints: string[];
  private readonly hostname: string;
  private readonly ttlS: number;
  private readonly retryMs: number;
  private readonly watchApiserver: boolean;

  constructor(
    private readonly ctx: AgentContext,
    private readonly config: TalosVipConfig,
  ) {
    if (!config?.vip) throw new Error('talos-vip: config.vip is required');
    this.link = config.link ?? lanIf(ctx);
    const me = ctx.topology.nodes.find((n) => n.name === ctx.host);
    this.endpoints = config.endpoints ?? [`http://${me?.ip ?? '127.0.0.1'}:2379`];
    this.hostname = config.hostname ?? ctx.host;
    this.ttlS = ctx.topology.timers.talosVip.sessionTtlS;
    this.retryMs = ctx.topology.timers.talosVip.campaignRetryS * 1000;
    this.watchApiserver = config.watchApiserver ?? ctx.spec.components.some((c) => c.kind === 'apiserver');
  }

  async start(): Promise<void> {
    // a restarted node boots without the VIP (Talos reconciles addresses from specs); the sim's
    // namespace survives a crash, so drop an address left behind by the killed process
    if (await hasAddress(this.ctx, this.config.vip, this.link)) await delAddress(this.ctx, this.config.vip, this.link);
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.abort.abort(new Error('stopping'));
    await atMost(this.loop ?? Promise.resolve(), 10_000);
  }

  /** Test hook: vanish like a SIGKILLed process (no resign, no revoke, address left as is). */
  simulateCrash(): void {
    this.crashed = true;
    this.session?.abandon();
    this.client?.close();
    this.abort.abort(new Error('crashed'));
  }

  status(): Record<string, unknown> {
    return {
      vip: this.config.vip,
      link: this.link,
      leader: this.leader,
      holding: this.holding,
      campaigning: this.campaigning,
      leaderSince: this.leaderSince,
      etcdHealthy: this.etcdHealthy,
      sessionTtlS: this.ttlS,
      endpoints: this.endpoints,
    };
  }

  async call(method: string): Promise<unknown> {
    if (method === 'status') return this.status();
    throw new Error(`talos-vip: unknown method '${method}'; valid: status`);
  }

  private get signal(): AbortSignal {
    return this.abort.signal;
  }

  /** vip.go Run: campaign; on failure wait campaignRetryInterval; on a normal end campaign again at once. */
  private async run(): Promise<void> {
    while (!this.signal.aborted) {
      try {
        await this.campaignOnce();
      } catch (e) {
        if (this.signal.aborted) break;
        this.ctx.log(COMPONENT, `campaign failure: ${(e as Error).message}`);
        await pause(this.retryMs, this.signal);
      }
    }
  }

  /** Precondition: the local member answers a linearizable read (etcd ValidateQuorum). */
  private async waitForEtcd(): Promise<void> {
    for (;;) {
      if (this.signal.aborted) throw this.signal.reason;
      const probe = labEtcdClient(this.endpoints, 2000);
      try {
        await probe.get('health').options(within(2000)).exec();
        this.etcdHealthy = true;
        return;
      } catch (e) {
        if (this.etcdHealthy !== false) this.ctx.emit(COMPONENT, 'etcd-unhealthy', { error: (e as Error).message });
        this.etcdHealthy = false;
      } finally {
        probe.close();
      }
      await pause(this.retryMs, this.signal);
    }
  }

  private async campaignOnce(): Promise<void> {
    await this.waitForEtcd();
    const client = (this.client = labEtcdClient(this.endpoints, 3000));
    let session: EtcdSession | undefined;
    try {
      session = this.session = await EtcdSession.open(client, this.ttlS);
      const election = new EtcdElection(client, session, talosElectionKey(this.config.vip));
      const current = await election.leader();
      if (current && current.value === this.hostname) {
        this.ctx.log(COMPONENT, 'resigning from previous election');
        await election.resignKey(current);
      }
      // the campaign ends early when the session dies or the component stops
      const campaignAbort = new AbortController();
      const onStop = () => campaignAbort.abort(new Error('stopping'));
      this.signal.addEventListener('abort', onStop, { once: true });
      void session.done.then((why) => campaignAbort.abort(new Error(`etcd session closed: ${why}`)));
      this.campaigning = true;
      this.ctx.emit(COMPONENT, 'campaign', { ip: this.config.vip, key: talosElectionKey(this.config.vip) });
      try {
        await election.campaign(this.hostname, campaignAbort.signal);
      } catch (e) {
        if (campaignAbort.signal.aborted) return; // session closed or stopping: not an error (vip.go returns nil)
        throw e;
      } finally {
        this.campaigning = false;
        this.signal.removeEventListener('abort', onStop);
      }
      if (this.crashed) return;
      await this.lead(election, session);
    } finally {
      if (!this.crashed) {
        // vip.go (upstream main) defers ec.RevokeSession: a queued key must not outlive the campaign
        await session?.revoke().catch(() => undefined);
        client.close();
      }
      this.session = undefined;
      this.client = undefined;
    }
  }

  /** From winning the campaign to giving the VIP up again (vip.go after campaignLoop). */
  private async lead(election: EtcdElection, session: EtcdSession): Promise<void> {
    this.leader = true;
    this.leaderSince = Date.now();
    this.ctx.emit(COMPONENT, 'leader', { ip: this.config.vip });
    let reason = 'unknown';
    const observeAbort = new AbortController();
    try {
      await addAddress(this.ctx, this.config.vip, this.link);
      this.holding = true;
      this.ctx.emit(COMPONENT, 'acquired', { ip: this.config.vip, link: this.link });
      // one gratuitous ARP (arping then waits out its 1 s deadline: do not hold the observation up)
      void sendGarp(this.ctx, COMPONENT, this.config.vip, 1, this.link).catch(() => undefined);
      const stopped = new Promise<string>((resolve) => {
        if (this.signal.aborted) resolve('shutdown');
        const onAbort = () => resolve(this.crashed ? 'crashed' : 'shutdown');
        this.signal.addEventListener('abort', onAbort, { once: true });
        observeAbort.signal.addEventListener('abort', () => this.signal.removeEventListener('abort', onAbort), { once: true });
      });
      const watchers: Promise<string>[] = [
        stopped,
        session.done.then((why) => `etcd session closed: ${why}`),
        election.watchOwnKey(observeAbort.signal).catch((e) => (observeAbort.signal.aborted ? 'observe cancelled' : `observe failed: ${(e as Error).message}`)),
      ];
      if (this.watchApiserver) watchers.push(this.apiserverGone(observeAbort.signal));
      reason = await Promise.race(watchers);
    } finally {
      observeAbort.abort();
      this.leader = false;
      this.leaderSince = null;
      if (!this.crashed) {
        // deferred in vip.go: markAsLeader(false) (address removed) runs before election.Resign
        if (this.holding) {
          await delAddress(this.ctx, this.config.vip, this.link);
          this.ctx.emit(COMPONENT, 'released', { ip: this.config.vip, reason });
        }
        this.ctx.emit(COMPONENT, 'lost-leader', { ip: this.config.vip, reason });
        try {
          await election.resign();
          this.ctx.emit(COMPONENT, 'resigned', { ip: this.config.vip });
        } catch (e) {
          this.ctx.log(COMPONENT, `resign failed (the key will expire with the session lease): ${(e as Error).message}`);
        }
      }
      this.holding = false;
    }
  }

  /**
   * vip.go breaks its observe loop when the kube-apiserver static pod is destroyed. In the sim the
   * API server is a component of the same agent listening on 0.0.0.0:<apiPort>; "destroyed" =
   * it was listening and now refuses connections.
   */
  private async apiserverGone(signal: AbortSignal): Promise<string> {
    const port = this.ctx.topology.apiPort;
    let seenUp = false;
    while (!signal.aborted) {
      const up = await tcpConnect('127.0.0.1', port, 1000);
      if (up === 'open') seenUp = true;
      else if (up === 'refused' && seenUp) return 'kube-apiserver gone';
      await pause(1000, signal);
    }
    return 'observe cancelled';
  }
}

/** One TCP connect: open, refused, or timeout. */
export function tcpConnect(host: string, port: number, timeoutMs: number): Promise<'open' | 'refused' | 'timeout'> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (r: 'open' | 'refused' | 'timeout') => {
      s.destroy();
      resolve(r);
    };
    s.setTimeout(timeoutMs, () => done('timeout'));
    s.once('connect', () => done('open'));
    s.once('error', () => done('refused'));
  });
}
