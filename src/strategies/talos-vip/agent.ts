/**
 * Agent component `talos-vip`: the emulated Talos shared-IP (VIP) operator of one control plane.
 * Emulates siderolabs/talos internal/app/machined/pkg/controllers/network/operator/vip.go as the
 * pinned release (`topology.talos.version`) has it — read at v1.11.6 and v1.13.9, which differ only
 * in the session cleanup (see revokesOnCancel) — with the SAME etcd primitives Talos uses
 * (go.etcd.io/etcd/client/v3/concurrency: Session + Election, client v3.6.4 / v3.6.12), run against
 * the lab's real etcd cluster:
 *
 * - Preconditions (vip.go waitForPreconditions): the node campaigns only once its etcd SERVICE is
 *   Running && Healthy. Healthy is a cached flag the etcd service's health runner refreshes: the
 *   first check 5 s after etcd starts, then every 20 s, each a linearizable read through the local
 *   member with a 15 s timeout (ETCD_HEALTH). The flag is read only before campaigning: a node
 *   already queued or leading does not react to it. Events `etcd-unhealthy` / `etcd-healthy`.
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
 *   expire, by design), the leader key changes, the kube-apiserver static pod status is destroyed
 *   (the kubelet no longer lists the pod, seen at its 15 s refresh — NOT when :6443 refuses), the
 *   node shuts down (KubeletLifecycle teardown) or the operator stops. Then it removes the IP,
 *   resigns on a detached context, and cleans its session up: revoked when the campaign ended with
 *   its context live (teardown, session end, new leader — every release) or, after a context
 *   cancel, only in releases with RevokeSession (revokesOnCancel); it campaigns again at once;
 *   after a failure it waits campaignRetryInterval = 1 s (vip.go Run).
 *
 * Config: `{ vip, link?, endpoints?, hostname?, watchApiserver?, etcdHealth?, staticPodRefreshMs? }`.
 * Events: `campaign`, `leader`, `acquired` {ip}, `garp-sent`, `released` {ip, reason},
 * `lost-leader`, `resigned`, `etcd-unhealthy` {error}, `etcd-healthy`. RPC: `status`, `remove`
 * (the operator removed while the node runs).
 * Test hook: `simulateCrash()` stops everything without a goodbye (no resign, no revoke, the lease
 * is simply no longer kept alive) — what SIGKILL does to the real process.
 */
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
    // concurrency/election.go Campaign resigns when its ctx ends, on client.Ctx(); Talos builds the
    // client on the campaign's own ctx (etcd.NewLocalClient(ctx), vip.go), so that resign always
    // fails and is not emulated: the key goes with the session (revoked or expired), see TalosVip
    await this.waitDeletes(BigInt(this.myRev) - 1n, signal);
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
  /** release the VIP when the kube-apiserver static pod status is destroyed (default: when the agent runs one) */
  watchApiserver?: boolean;
  /** the etcd service's health check (default Talos': first after 5 s, then every 20 s, 15 s timeout) */
  etcdHealth?: { initialDelayMs: number; periodMs: number; timeoutMs: number };
  /** how often the kubelet's static pods are listed (default Talos' 15 s) */
  staticPodRefreshMs?: number;
}

/** Talos constants.EtcdRootTalosKey (pkg/machinery/constants, v1.11) */
export const ETCD_ROOT_TALOS_KEY = 'talos:v1';
export const talosElectionKey = (ip: string) => `${ETCD_ROOT_TALOS_KEY}:vip:election:${ip}`;

/**
 * Talos' etcd service health settings: (*Etcd).HealthSettings InitialDelay 5 s, Period 20 s,
 * Timeout 15 s (internal/app/machined/pkg/system/services/etcd.go@v1.11.6 and @v1.13.9), run by
 * health.Run: one check after the initial delay, then one per tick (system/health/check.go@v1.11.6).
 * The check is ValidateQuorum: a linearizable Get through the local member (internal/pkg/etcd).
 */
export const ETCD_HEALTH = { initialDelayMs: 5000, periodMs: 20_000, timeoutMs: 15_000 };
/** KubeletStaticPodController refreshes the kubelet's pod list every 15 s (k8s/kubelet_static_pod.go@v1.11.6/@v1.13.9) */
export const STATIC_POD_REFRESH_MS = 15_000;
/** etcd.CleanupTimeout (internal/pkg/etcd/session.go@v1.13.9): the detached revoke/resign bound */
const CLEANUP_TIMEOUT_MS = 10_000;

/**
 * Does this Talos release revoke its session when the campaign's context is cancelled (the VIP
 * operator removed, machined tearing the controller down)? From commit "fix: use context without
 * cancelation for etcd locks": v1.12.11, v1.13.8 and v1.14.0-beta.1 on (vip.go defers
 * ec.RevokeSession on context.WithoutCancel). Before, vip.go defers sess.Close(), which revokes on
 * the client context — the campaign's own, already cancelled — so it fails at once and a queued
 * key stays until its 60 s lease expires (vip.go@v1.11.6, concurrency/session.go@v3.6.4).
 */
export function revokesOnCancel(talosVersion: string): boolean {
  const m = /^v(\d+)\.(\d+)\.(\d+)/.exec(talosVersion);
  if (!m) return true;
  const [maj, min, patch] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (maj !== 1) return maj > 1;
  if (min >= 14) return true;
  if (min === 13) return patch >= 8;
  if (min === 12) return patch >= 11;
  return false;
}

const factory: ComponentFactory = (ctx: AgentContext, config: TalosVipConfig) => new TalosVip(ctx, config);
export default factory;

const COMPONENT = 'talos-vip';

/** How a campaign ended, for the cleanup that follows (vip.go's deferred calls). */
type Ending = 'teardown' | 'cancelled' | 'crashed' | null;

export class TalosVip implements AgentComponent {
  readonly kind = COMPONENT;
  /** the operator's context: cancelled when the operator is removed (or the agent crashes) */
  private readonly abort = new AbortController();
  /** KubeletLifecycle entering teardown: a graceful node shutdown (StopAllPods) */
  private readonly teardown = new AbortController();
  private crashed = false;
  private loop?: Promise<void>;
  private client?: Etcd3;
  private session?: EtcdSession;
  private leader = false;
  private holding = false;
  private campaigning = false;
  private etcdHealthy: boolean | null = null;
  private healthTimer?: NodeJS.Timeout;
  private healthWaiters: (() => void)[] = [];
  private leaderSince: number | null = null;
  private readonly link: string;
  private readonly endpoints: string[];
  private readonly hostname: string;
  private readonly ttlS: number;
  private readonly retryMs: number;
  private readonly watchApiserver: boolean;
  private readonly health: { initialDelayMs: number; periodMs: number; timeoutMs: number };
  private readonly revokeOnCancel: boolean;
  /** does the kubelet still list the kube-apiserver static pod? (the agent runs it while it lives; replaceable in tests) */
  apiserverListed: () => boolean;

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
    this.health = config.etcdHealth ?? ETCD_HEALTH;
    this.revokeOnCancel = revokesOnCancel(ctx.topology.talos?.version ?? 'v1.11.6');
    this.apiserverListed = () => ctx.spec.components.some((c) => c.kind === 'apiserver');
  }

  async start(): Promise<void> {
    // a restarted node boots without the VIP (Talos reconciles addresses from specs); the sim's
    // namespace survives a crash, so drop an address left behind by the killed process
    if (await hasAddress(this.ctx, this.config.vip, this.link)) await delAddress(this.ctx, this.config.vip, this.link);
    this.startHealth();
    this.loop = this.run();
  }

  /**
   * Graceful node shutdown: Talos' Shutdown sequence runs StopAllPods, which tears the
   * KubeletLifecycle down and waits for the VIP operator's finalizer on it
   * (v1alpha1_sequencer.go@v1.11.6 Shutdown; vip.go AddFinalizer). The operator sees the teardown
   * with its context still live, so its deferred cleanup works in every release: the holder drops
   * the VIP and resigns, a queued node revokes its session (its key goes), and only then does the
   * operator stop. etcd is stopped later in the sequence (stopAllPhaselist), after the agent here.
   */
  async stop(): Promise<void> {
    this.teardown.abort(new Error('kubelet lifecycle teardown'));
    await atMost(this.loop ?? Promise.resolve(), 15_000);
    this.abort.abort(new Error('stopping'));
    this.stopHealth();
  }

  /**
   * The VIP operator removed while the node runs (its VIP config deleted, machined tearing the
   * network controller down): the operator's context is cancelled first. The leader's resign runs
   * on a detached context and works; the session revoke works only in releases with the fix
   * (revokesOnCancel) — before it, a queued node's key stays until its lease expires.
   */
  async remove(): Promise<void> {
    this.abort.abort(new Error('operator removed'));
    await atMost(this.loop ?? Promise.resolve(), 15_000);
    this.stopHealth();
  }

  /** Test hook: vanish like a SIGKILLed process (no resign, no revoke, address left as is). */
  simulateCrash(): void {
    this.crashed = true;
    this.session?.abandon();
    this.client?.close();
    this.abort.abort(new Error('crashed'));
    this.stopHealth();
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
      revokeOnCancel: this.revokeOnCancel,
    };
  }

  async call(method: string): Promise<unknown> {
    if (method === 'status') return this.status();
    if (method === 'remove') return this.remove();
    throw new Error(`talos-vip: unknown method '${method}'; valid: status, remove`);
  }

  private get signal(): AbortSignal {
    return this.abort.signal;
  }

  private get over(): boolean {
    return this.signal.aborted || this.teardown.signal.aborted;
  }

  // -- the etcd service's health (what waitForPreconditions reads) -----------------------------

  /** health.Run: a check after InitialDelay, then one per Period; the result is a cached flag */
  private startHealth(): void {
    const tick = async () => {
      if (this.over) return;
      const probe = labEtcdClient(this.endpoints, this.health.timeoutMs);
      let ok = false;
      let error = '';
      try {
        await probe.get('health').options(within(this.health.timeoutMs)).exec();
        ok = true;
      } catch (e) {
        error = (e as Error).message;
      } finally {
        probe.close();
      }
      if (this.over) return;
      if (!ok && this.etcdHealthy !== false) this.ctx.emit(COMPONENT, 'etcd-unhealthy', { error });
      if (ok && this.etcdHealthy !== true) this.ctx.emit(COMPONENT, 'etcd-healthy', {});
      this.etcdHealthy = ok;
      if (ok) for (const w of this.healthWaiters.splice(0)) w();
    };
    // time.Ticker(Period) after the first check: ticks every Period from then, a slow check drops ticks
    let busy = false;
    const guarded = () => {
      if (busy) return;
      busy = true;
      void tick().finally(() => (busy = false));
    };
    this.healthTimer = setTimeout(() => {
      guarded();
      this.healthTimer = setInterval(guarded, this.health.periodMs);
    }, this.health.initialDelayMs);
  }

  private stopHealth(): void {
    clearTimeout(this.healthTimer);
    clearInterval(this.healthTimer);
    for (const w of this.healthWaiters.splice(0)) w();
  }

  /** waitForPreconditions: the etcd service Running && Healthy (a watch on the cached flag) */
  private async waitForEtcd(): Promise<void> {
    while (this.etcdHealthy !== true) {
      if (this.over) throw new Error('stopping');
      await new Promise<void>((resolve) => {
        this.healthWaiters.push(resolve);
        const done = () => resolve();
        this.signal.addEventListener('abort', done, { once: true });
        this.teardown.signal.addEventListener('abort', done, { once: true });
      });
    }
  }

  // -- the operator ----------------------------------------------------------------------------

  /** vip.go Run: campaign; on failure wait campaignRetryInterval; on a normal end campaign again at once. */
  private async run(): Promise<void> {
    while (!this.over) {
      try {
        await this.campaignOnce();
      } catch (e) {
        if (this.over) break;
        this.ctx.log(COMPONENT, `campaign failure: ${(e as Error).message}`);
        await pause(this.retryMs, this.signal);
      }
    }
  }

  /** what ended the campaign, as vip.go's deferred calls see it */
  private ending(): Ending {
    if (this.crashed) return 'crashed';
    if (this.signal.aborted) return 'cancelled';
    if (this.teardown.signal.aborted) return 'teardown';
    return null;
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
      // the campaign ends early when the session dies, the node shuts down or the operator stops
      const campaignAbort = new AbortController();
      const onStop = () => campaignAbort.abort(new Error('stopping'));
      this.signal.addEventListener('abort', onStop, { once: true });
      this.teardown.signal.addEventListener('abort', onStop, { once: true });
      void session.done.then((why) => campaignAbort.abort(new Error(`etcd session closed: ${why}`)));
      this.campaigning = true;
      this.ctx.emit(COMPONENT, 'campaign', { ip: this.config.vip, key: talosElectionKey(this.config.vip) });
      try {
        await election.campaign(this.hostname, campaignAbort.signal);
      } catch (e) {
        if (campaignAbort.signal.aborted) return; // session closed, teardown or stopping: not an error (vip.go returns nil)
        throw e;
      } finally {
        this.campaigning = false;
        this.signal.removeEventListener('abort', onStop);
        this.teardown.signal.removeEventListener('abort', onStop);
      }
      if (this.crashed) return;
      await this.lead(election, session);
    } finally {
      await this.closeSession(session, client);
      this.session = undefined;
      this.client = undefined;
    }
  }

  /** vip.go's deferred session cleanup, by release and by what ended the campaign */
  private async closeSession(session: EtcdSession | undefined, client: Etcd3): Promise<void> {
    const end = this.ending();
    if (end === 'crashed') return;
    if (end === 'cancelled' && !this.revokeOnCancel) {
      // sess.Close() on the cancelled client context: Orphan (keepalives stop), the revoke fails
      // at once; the key stays until etcd expires the lease, one TTL after the last keepalive
      session?.abandon();
      client.close();
      return;
    }
    // a live context (teardown, session end, new leader) or RevokeSession (WithoutCancel, 10 s)
    await session?.revoke(end === 'cancelled' ? CLEANUP_TIMEOUT_MS : 3000).catch(() => undefined);
    client.close();
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
      // AddressSpecController sends ONE gratuitous ARP when it adds the address
      // (network/address_spec.go@v1.11.6); arping then waits out its 1 s deadline: do not hold the
      // observation up
      void sendGarp(this.ctx, COMPONENT, this.config.vip, 1, this.link).catch(() => undefined);
      const stopped = new Promise<string>((resolve) => {
        const onAbort = () => resolve(this.crashed ? 'crashed' : 'operator stopped');
        const onTeardown = () => resolve('kubelet lifecycle teardown');
        if (this.signal.aborted) onAbort();
        if (this.teardown.signal.aborted) onTeardown();
        this.signal.addEventListener('abort', onAbort, { once: true });
        this.teardown.signal.addEventListener('abort', onTeardown, { once: true });
        observeAbort.signal.addEventListener(
          'abort',
          () => {
            this.signal.removeEventListener('abort', onAbort);
            this.teardown.signal.removeEventListener('abort', onTeardown);
          },
          { once: true },
        );
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
          // Resign on a detached context: context.Background() + 10 s @v1.11.6,
          // WithoutCancel + CleanupTimeout (10 s) @v1.13.9 — works in every release
          await election.resign(CLEANUP_TIMEOUT_MS);
          this.ctx.emit(COMPONENT, 'resigned', { ip: this.config.vip });
        } catch (e) {
          this.ctx.log(COMPONENT, `resign failed (the key will expire with the session lease): ${(e as Error).message}`);
        }
      }
      this.holding = false;
    }
  }

  /**
   * vip.go breaks its observe loop when a StaticPodStatus `kube-system/kube-apiserver-*` is
   * DESTROYED: KubeletStaticPodController refreshes the kubelet's pod list every 15 s and destroys a
   * status only when the kubelet no longer lists that static pod, or the kubelet goes away
   * (k8s/kubelet_static_pod.go@v1.11.6/@v1.13.9). A crashed or unready kube-apiserver container
   * whose pod is still listed keeps the VIP where it is. In the sim the kubelet's pod list is the
   * agent's component list: the API server stand-in stays listed while the agent runs, so this
   * fires only if a test says the pod left the list.
   */
  private async apiserverGone(signal: AbortSignal): Promise<string> {
    const every = this.config.staticPodRefreshMs ?? STATIC_POD_REFRESH_MS;
    while (!signal.aborted) {
      await pause(every, signal);
      if (signal.aborted) break;
      if (!this.apiserverListed()) return 'kube-apiserver static pod destroyed';
    }
    return 'observe cancelled';
  }
}
