/**
 * Agent component `kube-vip`: ONE emulated kube-vip process per node serving the control-plane VIP
 * (`api`) and/or LoadBalancer Services (`services`), as the real kube-vip does (pkg/manager,
 * pkg/cluster), behaving as the release in `settings.kubeVip.version` does (./versions.ts: the
 * rules and where each was read). Configs of the cp and svc mechanisms are merged into one
 * component (src/strategies/compose.ts mergeComponents), so they use distinct keys.
 *
 * Leader election (pkg/cluster/clusterLeaderElection.go, pkg/election/election.go@v1.2.3,
 * pkg/manager/worker/common.go): client-go `leaderelection.RunOrDie` on a coordination.k8s.io
 * Lease with ReleaseOnCancel, LeaseDuration/RenewDeadline/RetryPeriod = vip_leaseduration /
 * vip_renewdeadline / vip_retryperiod (`timers.kubeVip`). The Lease is read and written THROUGH AN
 * API SERVER, as the real process does, along the path the rendered manifests give it
 * (./manifests.ts): the API VIP's DaemonSet points its in-cluster config at KubePrism on the node
 * (127.0.0.1:7445), which prefers the node's own API server (tier 0) and moves to another only
 * after its dials failed enough to score it out (src/emulation/kubeprism.ts) — so a dead local API
 * server makes the leader miss renewals until KubePrism fails over, and it hands over when that
 * takes longer than the renew deadline; the Services DaemonSet uses the `kubernetes` Service,
 * which kube-proxy sends to one API server per connection (emulated: one control plane's API
 * server, picked at random and kept until a request to it fails). The API
 * server stand-in (src/emulation/apiserver.ts) keeps the Lease in etcd with resourceVersion
 * compare-and-swap (409 Conflict). The elector follows client-go k8s.io/client-go/tools/
 * leaderelection/leaderelection.go (@v0.36.3, what kube-vip v1.2.3 builds with) line by line:
 *   - acquire: tryAcquireOrRenew every RetryPeriod with JitterFactor 1.2 (wait.JitterUntil);
 *   - a non-leader may take the lease once LeaseDuration has passed since it last OBSERVED the
 *     record change (observedTime, client-go's clock-skew-safe rule), or at once when the holder
 *     identity is empty (released);
 *   - renew: every RetryPeriod; the leader gives up when it could not renew for RenewDeadline;
 *   - ReleaseOnCancel: a graceful stop reads the lease and writes it back with an empty holder and
 *     leaseDurationSeconds 1, so another candidate takes over at its next retry.
 * Losing the control-plane or the global Services lease ends the process as the release does
 * (./versions.ts onLostCpLease / onLostServicesLease): `die` (log.Fatal/panic: other leases not
 * released, its other addresses left) or `exit` (a graceful shutdown: other leases released,
 * addresses removed), and the kubelet starts the container again — at once the first time (after
 * its 1 s PLEG relist), then after 10 s doubling to 300 s (kubelet kuberuntime_manager.go
 * doBackOff with client-go flowcontrol.Backoff: no back-off entry before the first exit; 10 s
 * initial, MaxContainerBackOff 300 s). `hang` (v1.2.0–v1.2.3 on the Services lease): the graceful
 * shutdown starts but the process never exits, so it is never restarted (event `hung`). At the
 * restart its addresses are removed first (kube-vip StartCluster deletes the VIP "in case it
 * already exists").
 *
 * API (`api`):
 *   - ARP (vip_arp): the leader of lease `plndr-cp-lock` (vip_leasename) adds the VIP to the link.
 *     Gratuitous ARP as the release sends it: ≤ v0.8 one at once from a per-VIP loop, repeated
 *     every 3 s (hard-coded ≤ v0.8.9) or vip_arpRate (v0.8.10); ≥ v0.9 the VIP joins the process's
 *     ONE ARP loop, started with the process, which sends for every held address each vip_arpRate:
 *     the first GARP after a takeover goes out 0…arpRate later (pkg/arp/arp.go).
 *   - BGP (bgp_enable, no leader election): every control plane adds the VIP to `lo` and announces
 *     it as /32 through its BGP speaker (here: the node's FRR, src/emulation/net.ts bgpAnnounce);
 *     a graceful stop withdraws it.
 *   - lb_enable: upstream spreads API connections over the control planes with IPVS round robin
 *     (pkg/loadbalancer/ipvs.go, scheduler "rr", backends = Ready control-plane nodes from the
 *     NodeWatcher; in masquerade mode each backend is checked every backend_health_check_interval
 *     = 5 s with GET /version (pkg/backend/backend.go) and removed/re-added on the result). The lab
 *     kernel has no IPVS, so the emulation does the same with nftables in the holder's namespace:
 *     table `ip kube-vip`, `dnat to numgen inc mod N map {…}` (round robin) + masquerade of those
 *     connections (IPVS masquerade forwarding), rewritten whenever the healthy backend set changes.
 * Services (`services`): class filtering is done by the renderer (see ./render.ts);
 *   - ARP, global election (default): the leader of `plndr-svcs-lock` (svc_leasename) adds every
 *     Service IP to the LAN link + GARP as above (all traffic for all Services enters through one node);
 *   - ARP, svc_election: one lease `kubevip-<service>` per Service (in the Service's namespace); for
 *     externalTrafficPolicy Local only nodes with a local endpoint take part (pkg/manager/
 *     watch_services.go starts the endpoint watcher for Local Services);
 *   - BGP: every node announces the Service /32 — for ETP Local only nodes with a local endpoint,
 *     for Cluster every node — and withdraws it on a graceful stop.
 *
 * Events: `leader` / `lost-leader` {lease}, `new-leader` {lease, identity}, `acquired` / `released`
 * {ip}, `garp-sent` {ip} (the first GARP after acquiring an address, when it goes out), `announce` /
 * `withdraw` {ip} (+ net.ts' `bgp-announce`/`bgp-withdraw`), `backend-up` / `backend-down` {ip},
 * `restart` {reason, afterMs}, `hung` {reason}.
 * Test hook: `simulateCrash()` = SIGKILL (no release, no withdraw, addresses left).
 */
import https from 'node:https';
import { readFileSync } from 'node:fs';
import type { AgentComponent, AgentContext, ComponentFactory } from '../../emulation/agent/types.js';
import type { Node } from '../../model/types.js';
import { addAddress, bgpAnnounce, bgpWithdraw, delAddress, hasAddress, lanIf, sendGarp } from '../../emulation/net.js';
import { pkiPaths } from '../../emulation/pki.js';
import type { Etcd3 } from 'etcd3';
import { atMost, labEtcdClient, pause, within } from '../talos-vip/agent.js';
import { leaseKey } from '../../emulation/apiserver.js';
import { releaseOf } from './settings.js';
import type { KubeVipRelease } from './versions.js';

// ---------------------------------------------------------------------------------------------
// config (written by the renderer ./render.ts for both mechanisms and both roles)
// ---------------------------------------------------------------------------------------------

export interface KubeVipBackend {
  name: string;
  ip: string;
}

export interface KubeVipApiConfig {
  mode: 'arp' | 'bgp';
  vip: string;
  /** API server port (default topology.apiPort); lb_port is the same */
  port?: number;
  /** ARP: link of the VIP (default the LAN interface); BGP: always `lo` */
  link?: string;
  /** vip_leasename (default plndr-cp-lock) in cp_namespace (default kube-system) */
  leaseName?: string;
  leaseNamespace?: string;
  /** lb_enable: spread API connections over `backends` */
  lbEnable?: boolean;
  backends?: KubeVipBackend[];
  /** backend_health_check_interval in s (default 5) */
  backendCheckIntervalS?: number;
}

export interface KubeVipServiceItem {
  name: string;
  namespace: string;
  ip: string;
  externalTrafficPolicy: 'Cluster' | 'Local';
  /** a ready endpoint (echo pod) runs on this node */
  localEndpoint: boolean;
}

export interface KubeVipServicesConfig {
  mode: 'arp' | 'bgp';
  /** ARP: one global lease (default) or svc_election (one lease per Service) */
  election: 'global' | 'per-service';
  /** svc_leasename (default plndr-svcs-lock) */
  leaseName?: string;
  items: KubeVipServiceItem[];
}

export interface KubeVipConfig {
  api?: KubeVipApiConfig;
  services?: KubeVipServicesConfig;
  /**
   * base URLs of the API servers the process talks to. Default, as the rendered manifests make
   * it: with `api` (the control-plane DaemonSet) KubePrism on the node, https://127.0.0.1:<7445>,
   * which prefers the local API server and falls back to the others by its own rules
   * (src/emulation/kubeprism.ts); Services only (their DaemonSet, in-cluster config): every control
   * plane's API server, one at a time, as the `kubernetes` Service gives them
   */
  apiServers?: string[];
  /** CA the API servers' certificates are checked with (default the lab CA) */
  caFile?: string;
  /** vip_nodename (default the host name) */
  nodeName?: string;
}

// kube-vip defaults (pkg/kubevip/config_environment.go, v0.8): vip_leasename, svc_leasename, cp_namespace
export const CP_LEASE = 'plndr-cp-lock';
export const SVC_LEASE = 'plndr-svcs-lock';
export const LEASE_NAMESPACE = 'kube-system';
/** pkg/manager/servicesLeader.go: per-Service lease name */
export const serviceLeaseName = (svc: string) => `kubevip-${svc}`;
/** client-go leaderelection.go JitterFactor */
export const JITTER_FACTOR = 1.2;
/**
 * When the kubelet starts an exited container again: the first time at once, once its PLEG relist
 * (every 1 s) has seen the exit; then after the back-off, 10 s doubling up to 300 s (see header).
 * The back-off is forgotten after 10 min without an exit (flowcontrol.Backoff GC: 2 × max).
 */
export function restartDelayMs(restartsSoFar: number): number {
  return restartsSoFar === 0 ? 1000 : Math.min(10_000 * 2 ** (restartsSoFar - 1), 300_000);
}
const BACKOFF_FORGOTTEN_MS = 600_000;
/** pkg/backend/backend.go: the default check interval; the client's request timeout (issue #875 logs `timeout=10s`) */
const BACKEND_CHECK_INTERVAL_S = 5;
const BACKEND_CHECK_TIMEOUT_MS = 10_000;
export const NFT_TABLE = 'kube-vip';

// ---------------------------------------------------------------------------------------------
// the Lease and client-go's elector
// ---------------------------------------------------------------------------------------------

/** coordination.k8s.io/v1 LeaseSpec as client-go's LeaderElectionRecord sees it */
export interface LeaseRecord {
  holderIdentity: string;
  leaseDurationSeconds: number;
  acquireTime: string;
  renewTime: string;
  leaseTransitions: number;
}

/** What the elector needs of a Lease: get, create, update guarded by the resourceVersion read. */
export interface LeaseLock {
  describe(): string;
  get(deadlineMs: number): Promise<{ record: LeaseRecord; raw: string; resourceVersion: string } | null>;
  /** fails (null) when the object exists — the API server's AlreadyExists */
  create(record: LeaseRecord, deadlineMs: number): Promise<{ raw: string; resourceVersion: string } | null>;
  /** fails (null) when the resourceVersion is not the current one — 409 Conflict */
  update(record: LeaseRecord, resourceVersion: string, deadlineMs: number): Promise<{ raw: string; resourceVersion: string } | null>;
}

/**
 * The API servers the process talks to. client-go keeps ONE connection to the address its config
 * names and opens a new one when it breaks; through the `kubernetes` Service each new connection
 * may land on another API server (kube-proxy picks one per connection). So: one server at a time,
 * the next one after a request to it failed at the transport level (refused, reset, timed out);
 * an HTTP error (409, 404, 5xx) is an answer and keeps the server.
 */
export class ApiServers {
  private current: number;
  private readonly agents: https.Agent[];
  private ca: Buffer | null | undefined;
  private closed = false;

  constructor(
    readonly urls: string[],
    private readonly caFile: string,
    start = Math.floor(Math.random() * urls.length),
  ) {
    if (!urls.length) throw new Error('kube-vip: no API server to talk to');
    this.current = start % urls.length;
    this.agents = urls.map(() => new https.Agent({ keepAlive: true, maxSockets: 4 }));
  }

  get currentUrl(): string {
    return this.urls[this.current]!;
  }

  /** One request with a deadline; resolves with the status and the JSON body, rejects on transport errors. */
  request(method: string, path: string, body: unknown, deadlineMs: number): Promise<{ status: number; json: any }> {
    if (this.closed) return Promise.reject(new Error('client closed'));
    if (this.ca === undefined) {
      try {
        this.ca = readFileSync(this.caFile);
      } catch {
        this.ca = null;
      }
    }
    if (!this.ca) return Promise.reject(new Error(`kube-vip: no CA at ${this.caFile}`));
    const i = this.current;
    const url = new URL(path, this.urls[i]);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (e: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (this.current === i) this.current = (i + 1) % this.urls.length;
        reject(e);
      };
      const req = https.request(
        url,
        { method, ca: this.ca!, agent: this.agents[i], headers: { accept: 'application/json', ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}) } },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (text += d));
          res.on('end', () => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            let json: unknown = null;
            try {
              json = JSON.parse(text);
            } catch {
              /* not JSON: the status says enough */
            }
            resolve({ status: res.statusCode ?? 0, json });
          });
          res.on('error', (e) => fail(e));
        },
      );
      const timer = setTimeout(() => {
        req.destroy(new Error('deadline exceeded'));
      }, Math.max(1, deadlineMs));
      req.on('error', (e) => fail(e));
      req.end(payload);
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const a of this.agents) a.destroy();
  }
}

/** client-go resourcelock.LeaseLock: the Lease through the API server (coordination.k8s.io/v1). */
export class ApiLeaseLock implements LeaseLock {
  constructor(
    private readonly api: ApiServers,
    readonly namespace: string,
    readonly name: string,
  ) {}

  describe(): string {
    return `${this.namespace}/${this.name}`;
  }

  private get path(): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${this.namespace}/leases`;
  }

  async get(deadlineMs: number): Promise<{ record: LeaseRecord; raw: string; resourceVersion: string } | null> {
    const r = await this.api.request('GET', `${this.path}/${this.name}`, undefined, deadlineMs);
    if (r.status === 404) return null;
    if (r.status !== 200) throw new Error(`get lease ${this.describe()}: HTTP ${r.status}`);
    const spec = r.json.spec as LeaseRecord;
    return { record: spec, raw: JSON.stringify(spec), resourceVersion: String(r.json.metadata.resourceVersion) };
  }

  async create(record: LeaseRecord, deadlineMs: number): Promise<{ raw: string; resourceVersion: string } | null> {
    const body = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: this.name, namespace: this.namespace }, spec: record };
    const r = await this.api.request('POST', this.path, body, deadlineMs);
    if (r.status === 409) return null;
    if (r.status !== 201 && r.status !== 200) throw new Error(`create lease ${this.describe()}: HTTP ${r.status}`);
    return { raw: JSON.stringify(record), resourceVersion: String(r.json.metadata.resourceVersion) };
  }

  async update(record: LeaseRecord, resourceVersion: string, deadlineMs: number): Promise<{ raw: string; resourceVersion: string } | null> {
    const body = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: this.name, namespace: this.namespace, resourceVersion }, spec: record };
    const r = await this.api.request('PUT', `${this.path}/${this.name}`, body, deadlineMs);
    if (r.status === 409 || r.status === 404) return null;
    if (r.status !== 200) throw new Error(`update lease ${this.describe()}: HTTP ${r.status}`);
    return { raw: JSON.stringify(record), resourceVersion: String(r.json.metadata.resourceVersion) };
  }
}

/**
 * The Lease straight in etcd, at the key the API server uses (`/registry/leases/<ns>/<name>`), with
 * the mod revision as resourceVersion: for emulated controllers whose real client path is not
 * modelled. kube-vip itself goes through an API server (ApiLeaseLock). gRPC clients stick to one
 * endpoint and move to the next when it fails.
 */
export class EtcdEndpoints {
  private readonly clients: Etcd3[];
  private current = 0;

  constructor(readonly hosts: string[]) {
    if (!hosts.length) throw new Error('no etcd endpoints');
    this.clients = hosts.map((h) => labEtcdClient([h], 5000));
  }

  async use<T>(fn: (c: Etcd3) => Promise<T>): Promise<T> {
    const i = this.current;
    try {
      return await fn(this.clients[i]!);
    } catch (e) {
      if (this.current === i) this.current = (i + 1) % this.clients.length;
      throw e;
    }
  }

  private closed = false;
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.clients) c.close();
  }
}

export class EtcdLeaseLock implements LeaseLock {
  readonly key: string;

  constructor(
    private readonly etcd: EtcdEndpoints,
    readonly namespace: string,
    readonly name: string,
  ) {
    this.key = leaseKey(namespace, name);
  }

  describe(): string {
    return `${this.namespace}/${this.name}`;
  }

  async get(deadlineMs: number): Promise<{ record: LeaseRecord; raw: string; resourceVersion: string } | null> {
    const r = await this.etcd.use((c) => c.get(this.key).options(within(deadlineMs)).exec());
    const kv = r.kvs[0];
    if (!kv) return null;
    const raw = kv.value.toString();
    return { record: JSON.parse(raw) as LeaseRecord, raw, resourceVersion: String(kv.mod_revision) };
  }

  async create(record: LeaseRecord, deadlineMs: number): Promise<{ raw: string; resourceVersion: string } | null> {
    const raw = JSON.stringify(record);
    const r = await this.etcd.use((c) => c.if(this.key, 'Create', '==', 0).then(c.put(this.key).value(raw)).options(within(deadlineMs)).commit());
    return r.succeeded ? { raw, resourceVersion: String(r.header.revision) } : null;
  }

  async update(record: LeaseRecord, resourceVersion: string, deadlineMs: number): Promise<{ raw: string; resourceVersion: string } | null> {
    const raw = JSON.stringify(record);
    const r = await this.etcd.use((c) => c.if(this.key, 'Mod', '==', resourceVersion).then(c.put(this.key).value(raw)).options(within(deadlineMs)).commit());
    return r.succeeded ? { raw, resourceVersion: String(r.header.revision) } : null;
  }
}

export interface LeaderElectionConfig {
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  releaseOnCancel: boolean;
  onStartedLeading(): void | Promise<void>;
  onStoppedLeading(): void | Promise<void>;
  onNewLeader?(identity: string): void;
  /** for tests; default Math.random */
  random?: () => number;
}

export type ElectionEnd = 'cancelled' | 'lost' | 'abandoned';

/** client-go leaderelection.LeaderElector, driven by an AbortSignal instead of a context. */
export class LeaderElector {
  private observed: LeaseRecord | null = null;
  private observedRaw: string | null = null;
  private observedTime = 0;
  private resourceVersion: string | null = null;
  private reportedLeader = '';
  private abandoned = false;
  private leading = false;

  constructor(
    readonly lock: LeaseLock,
    private readonly c: LeaderElectionConfig,
  ) {}

  isLeader(): boolean {
    return this.observed?.holderIdentity === this.c.identity;
  }

  get isLeading(): boolean {
    return this.leading;
  }

  getLeader(): string {
    return this.observed?.holderIdentity ?? '';
  }

  /** crash: stop without releasing (and without running onStoppedLeading) */
  abandon(): void {
    this.abandoned = true;
  }

  /** RunOrDie: acquire → lead (renew) → release on cancel → onStoppedLeading. */
  async run(signal: AbortSignal): Promise<ElectionEnd> {
    if (!(await this.acquire(signal))) return this.abandoned ? 'abandoned' : 'cancelled';
    this.leading = true;
    try {
      await this.c.onStartedLeading();
    } catch {
      /* the callback logs its own failures; client-go runs it in a goroutine */
    }
    const end = await this.renew(signal);
    if (this.abandoned) {
      this.leading = false;
      return 'abandoned';
    }
    // client-go renew() ends with `if ReleaseOnCancel { release() }` whether the context was
    // cancelled or the renewal failed (leaderelection.go@v0.36.3); OnStoppedLeading runs after it
    if (this.c.releaseOnCancel) await this.release().catch(() => false);
    this.leading = false;
    await this.c.onStoppedLeading();
    return end;
  }

  private stopped(signal: AbortSignal): boolean {
    return signal.aborted || this.abandoned;
  }

  /** wait.JitterUntil(tryAcquireOrRenew, RetryPeriod, JitterFactor 1.2, sliding) until success. */
  private async acquire(signal: AbortSignal): Promise<boolean> {
    for (;;) {
      if (this.stopped(signal)) return false;
      const ok = await this.tryAcquireOrRenew(Date.now() + this.c.renewDeadlineMs).catch(() => false);
      this.maybeReportTransition();
      if (ok && !this.stopped(signal)) return true;
      if (ok && signal.aborted && !this.abandoned && this.c.releaseOnCancel) {
        await this.release().catch(() => false); // won while stopping: hand it back at once
        return false;
      }
      const wait = this.c.retryPeriodMs * (1 + (this.c.random ?? Math.random)() * JITTER_FACTOR);
      await pause(wait, signal);
    }
  }

  /**
   * wait.Until(…, RetryPeriod): each round polls tryAcquireOrRenew every RetryPeriod (immediately
   * first) until it succeeds or RenewDeadline passes; a failed round ends the leadership.
   */
  private async renew(signal: AbortSignal): Promise<'cancelled' | 'lost'> {
    for (;;) {
      if (this.stopped(signal)) return 'cancelled';
      const deadline = Date.now() + this.c.renewDeadlineMs;
      let ok = false;
      for (;;) {
        if (deadline - Date.now() <= 0 || this.stopped(signal)) break;
        ok = await this.tryAcquireOrRenew(deadline).catch(() => false);
        if (ok || this.stopped(signal)) break;
        if (Date.now() + this.c.retryPeriodMs >= deadline) break;
        await pause(this.c.retryPeriodMs, signal);
      }
      this.maybeReportTransition();
      if (this.stopped(signal)) return 'cancelled';
      if (!ok) return 'lost';
      await pause(this.c.retryPeriodMs, signal);
    }
  }

  private isLeaseValid(nowMs: number): boolean {
    return this.observedTime + (this.observed?.leaseDurationSeconds ?? 0) * 1000 > nowMs;
  }

  private setObserved(record: LeaseRecord, raw: string, resourceVersion: string): void {
    this.observed = record;
    this.observedRaw = raw;
    this.observedTime = Date.now();
    this.resourceVersion = resourceVersion;
  }

  /**
   * client-go tryAcquireOrRenew (fast path for the leader, then get / create / update). All its
   * requests share one deadline (epoch ms), as they share one context in client-go.
   */
  async tryAcquireOrRenew(deadline: number): Promise<boolean> {
    const left = () => {
      const ms = deadline - Date.now();
      if (ms <= 0) throw new Error('deadline exceeded');
      return ms;
    };
    const nowMs = Date.now();
    const nowIso = new Date(nowMs).toISOString();
    const record: LeaseRecord = {
      holderIdentity: this.c.identity,
      leaseDurationSeconds: this.c.leaseDurationMs / 1000,
      acquireTime: nowIso,
      renewTime: nowIso,
      leaseTransitions: 0,
    };
    // 1. fast path: the leader updates optimistically against the record it observed last
    if (this.isLeader() && this.isLeaseValid(nowMs) && this.resourceVersion) {
      record.acquireTime = this.observed!.acquireTime;
      record.leaseTransitions = this.observed!.leaseTransitions;
      const r = await this.lock.update(record, this.resourceVersion, left()).catch(() => null);
      if (r) {
        this.setObserved(record, r.raw, r.resourceVersion);
        return true;
      }
    }
    // 2. obtain or create the record
    const cur = await this.lock.get(left());
    if (!cur) {
      const r = await this.lock.create(record, left());
      if (!r) return false;
      this.setObserved(record, r.raw, r.resourceVersion);
      return true;
    }
    // 3. record obtained: note when it last changed (observedTime), check identity and time
    if (cur.raw !== this.observedRaw) {
      this.observed = cur.record;
      this.observedRaw = cur.raw;
      this.observedTime = Date.now();
    }
    this.resourceVersion = cur.resourceVersion;
    if (cur.record.holderIdentity && this.isLeaseValid(nowMs) && !this.isLeader()) return false;
    // 4. take or renew it
    if (this.isLeader()) {
      record.acquireTime = cur.record.acquireTime;
      record.leaseTransitions = cur.record.leaseTransitions;
    } else {
      record.leaseTransitions = cur.record.leaseTransitions + 1;
    }
    const r = await this.lock.update(record, cur.resourceVersion, left());
    if (!r) return false;
    this.setObserved(record, r.raw, r.resourceVersion);
    return true;
  }

  /**
   * client-go release() (@v0.36.3): get the lease (for its resourceVersion) within RenewDeadline;
   * if we still think we lead, write it back with an empty holder and leaseDurationSeconds 1.
   */
  async release(): Promise<boolean> {
    const deadline = Date.now() + this.c.renewDeadlineMs;
    const cur = await this.lock.get(this.c.renewDeadlineMs);
    if (!cur) return false;
    if (!this.isLeader()) return true;
    const nowIso = new Date().toISOString();
    const record: LeaseRecord = {
      holderIdentity: '',
      leaseDurationSeconds: 1,
      acquireTime: nowIso,
      renewTime: nowIso,
      leaseTransitions: cur.record.leaseTransitions,
    };
    const left = deadline - Date.now();
    if (left <= 0) return false;
    const r = await this.lock.update(record, cur.resourceVersion, left);
    if (!r) return false;
    this.setObserved(record, r.raw, r.resourceVersion);
    return true;
  }

  private maybeReportTransition(): void {
    const holder = this.observed?.holderIdentity ?? '';
    if (holder === this.reportedLeader) return;
    this.reportedLeader = holder;
    if (holder && this.c.onNewLeader) this.c.onNewLeader(holder);
  }
}

// ---------------------------------------------------------------------------------------------
// lb_enable: IPVS round robin, emulated with nftables
// ---------------------------------------------------------------------------------------------

/** The nft script for the current healthy backends (empty set → table removed: no DNAT). */
export function lbRuleset(vip: string, port: number, backends: string[]): string {
  const lines = [`add table ip ${NFT_TABLE}`, `delete table ip ${NFT_TABLE}`];
  if (!backends.length) return lines.join('\n') + '\n';
  const map = backends.map((ip, i) => `${i} : ${ip}`).join(', ');
  lines.push(
    `table ip ${NFT_TABLE} {`,
    '  chain prerouting {',
    '    type nat hook prerouting priority dstnat; policy accept;',
    `    ip daddr ${vip} tcp dport ${port} dnat to numgen inc mod ${backends.length} map { ${map} }`,
    '  }',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    `    ct original ip daddr ${vip} ct status dnat masquerade`,
    '  }',
    '}',
  );
  return lines.join('\n') + '\n';
}

/** GET https://ip:port/version like pkg/backend Check (TLS not verified: a liveness check). */
export function checkApiBackend(ip: string, port: number, timeoutMs = BACKEND_CHECK_TIMEOUT_MS): Promise<boolean> {
  return new Promise((resolve) => {
    const req = https.get({ host: ip, port, path: '/version', rejectUnauthorized: false, agent: false }, (res) => {
      res.resume();
      clearTimeout(timer);
      resolve((res.statusCode ?? 500) < 400);
    });
    const timer = setTimeout(() => req.destroy(new Error('timeout')), timeoutMs);
    req.on('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}

class ApiLoadBalancer {
  private readonly healthy = new Map<string, boolean>();
  private active = false;
  private timer?: NodeJS.Timeout;
  private applied: string | null = null;
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly ctx: AgentContext,
    private readonly vip: string,
    private readonly port: number,
    private readonly backends: KubeVipBackend[],
    private readonly intervalS: number,
    private readonly check: (ip: string, port: number) => Promise<boolean>,
  ) {}

  /** vipService → NewIPVSLB + NodeWatcher: each backend is checked before it is added. */
  async start(): Promise<void> {
    this.active = true;
    // ipvs.go (masquerade): net.ipv4.ip_forward=1 on the holder
    await this.ctx.run('sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1'], { reject: false });
    for (const b of [...this.backends].sort((a, z) => a.name.localeCompare(z.name))) {
      if (!this.active) return;
      const ok = await this.check(b.ip, this.port);
      if (!this.active) return;
      this.healthy.set(b.ip, ok);
      if (ok) await this.apply();
    }
    if (this.active) this.timer = setInterval(() => void this.tick(), this.intervalS * 1000);
  }

  private busy = false;
  private async tick(): Promise<void> {
    if (this.busy || !this.active) return; // a slow round (10 s timeout) swallows ticks, like time.Ticker
    this.busy = true;
    try {
      for (const b of this.backends) {
        const ok = await this.check(b.ip, this.port);
        if (!this.active) return;
        if (this.healthy.get(b.ip) === ok) continue;
        this.healthy.set(b.ip, ok);
        this.ctx.emit('kube-vip', ok ? 'backend-up' : 'backend-down', { ip: b.ip, node: b.name });
        await this.apply();
      }
    } finally {
      this.busy = false;
    }
  }

  current(): string[] {
    return this.backends.filter((b) => this.healthy.get(b.ip)).map((b) => b.ip);
  }

  private apply(): Promise<void> {
    this.chain = this.chain.then(async () => {
      if (!this.active) return;
      const script = lbRuleset(this.vip, this.port, this.current());
      if (script === this.applied) return;
      await this.ctx.run('nft', ['-f', '-'], { input: script, reject: false });
      this.applied = script;
    });
    return this.chain;
  }

  async stop(): Promise<void> {
    this.active = false;
    clearInterval(this.timer);
    await this.chain.catch(() => undefined);
    if (this.applied !== null) await this.ctx.run('nft', ['delete', 'table', 'ip', NFT_TABLE], { reject: false });
    this.applied = null;
  }
}

// ---------------------------------------------------------------------------------------------
// the component
// ---------------------------------------------------------------------------------------------

const COMPONENT = 'kube-vip';

const factory: ComponentFactory = (ctx: AgentContext, config: KubeVipConfig) => new KubeVip(ctx, config ?? {});
export default factory;

/** ctx whose emit is silent: periodic re-announcements are not failover events */
const quiet = (ctx: AgentContext): AgentContext => ({ ...ctx, emit: () => undefined });

export class KubeVip implements AgentComponent {
  readonly kind = COMPONENT;
  private api?: ApiServers;
  private abort = new AbortController();
  private runs: Promise<unknown>[] = [];
  private electors: LeaderElector[] = [];
  /** addresses held in ARP mode (ip → link and what it is for) */
  private readonly arpHeld = new Map<string, { dev: string; role: 'api' | 'svc' }>();
  /** held addresses whose first GARP (the failover announcement) has not gone out yet */
  private readonly firstGarpPending = new Set<string>();
  /** ≤ v0.8: one GARP repeat timer per held address */
  private readonly garpTimers = new Map<string, NodeJS.Timeout>();
  private readonly announced = new Set<string>();
  private readonly loAddrs = new Set<string>();
  private lb?: ApiLoadBalancer;
  /** ≥ v0.9: the process-wide ARP loop */
  private arpLoop?: NodeJS.Timeout;
  private restartTimer?: NodeJS.Timeout;
  private stopping = false;
  private crashed = false;
  private hung = false;
  private restarts = 0;
  private lastRestartAt = 0;
  private readonly node: Node | undefined;
  private readonly identity: string;
  private readonly release: KubeVipRelease;
  /** backend check, replaceable in tests */
  checkBackend: (ip: string, port: number) => Promise<boolean> = checkApiBackend;
  /** the Lease of an election, through the API server (replaceable in tests) */
  makeLock: (namespace: string, name: string) => LeaseLock = (namespace, name) => new ApiLeaseLock(this.api!, namespace, name);

  constructor(
    private readonly ctx: AgentContext,
    private readonly config: KubeVipConfig,
  ) {
    if (!config.api && !config.services) throw new Error('kube-vip: config needs `api` and/or `services`');
    this.node = ctx.topology.nodes.find((n) => n.name === ctx.host);
    this.identity = config.nodeName ?? ctx.host;
    this.release = releaseOf(ctx.topology);
  }

  private get timers() {
    return this.ctx.topology.timers.kubeVip;
  }

  /** The API servers the process talks to (see KubeVipConfig.apiServers). */
  private apiServers(): string[] {
    if (this.config.apiServers?.length) return this.config.apiServers;
    const t = this.ctx.topology;
    // the API VIP's DaemonSet points its in-cluster config at KubePrism on the node (./manifests.ts):
    // KubePrism sends it to the local API server while that answers, elsewhere once it does not
    if (this.config.api) return [`https://127.0.0.1:${t.kubePrismPort}`];
    // the Services DaemonSet uses the `kubernetes` Service: one API server per connection
    return t.nodes.filter((n) => n.role === 'controlplane').map((n) => `https://${n.ip}:${t.apiPort}`);
  }

  private apiLink(): string {
    const a = this.config.api!;
    return a.mode === 'bgp' ? 'lo' : (a.link ?? lanIf(this.ctx));
  }

  async start(): Promise<void> {
    await this.cleanup();
    this.boot();
  }

  /** kube-vip StartCluster: "(attempt to) Remove the virtual IP, in case it already exists" */
  private async cleanup(): Promise<void> {
    const addrs: [string, string][] = [];
    if (this.config.api) addrs.push([this.config.api.vip, this.apiLink()]);
    if (this.config.services?.mode === 'arp') for (const s of this.config.services.items) addrs.push([s.ip, lanIf(this.ctx)]);
    for (const [ip, dev] of addrs) if (await hasAddress(this.ctx, ip, dev)) await delAddress(this.ctx, ip, dev);
    if (this.config.api?.lbEnable) await this.ctx.run('nft', ['delete', 'table', 'ip', NFT_TABLE], { reject: false });
  }

  private boot(): void {
    this.abort = new AbortController();
    this.runs = [];
    this.electors = [];
    this.api = new ApiServers(this.apiServers(), this.config.caFile ?? pkiPaths(this.ctx.spec.stateDir).caCert);
    // ≥ v0.9 the ARP manager's loop starts with the process (pkg/manager/worker/arp.go Configure →
    // StartAdvertisement): its phase is set here, not by a takeover
    if (this.release.garp === 'arp-loop') this.arpLoop = setInterval(() => void this.arpTick(), this.release.cpArpRepeatMs(this.timers.arpRateMs));
    if (this.config.api) this.startApi(this.config.api);
    if (this.config.services) this.startServices(this.config.services);
  }

  private stopArp(): void {
    clearInterval(this.arpLoop);
    this.arpLoop = undefined;
    for (const t of this.garpTimers.values()) clearInterval(t);
    this.garpTimers.clear();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    this.stopArp();
    this.abort.abort(new Error('stopping'));
    // electors release their leases and run onStoppedLeading (addresses removed)
    await atMost(Promise.allSettled(this.runs), 10_000);
    await this.stopLb();
    await this.withdrawAll();
    for (const ip of this.loAddrs) await delAddress(this.ctx, ip, 'lo');
    this.loAddrs.clear();
    this.api?.close();
  }

  /** Test hook: SIGKILL — leases neither released nor renewed, addresses and routes left as they are. */
  simulateCrash(): void {
    this.crashed = true;
    this.stopping = true;
    for (const e of this.electors) e.abandon();
    clearTimeout(this.restartTimer);
    this.stopArp();
    this.abort.abort(new Error('crashed'));
    this.api?.close();
  }

  status(): Record<string, unknown> {
    return {
      identity: this.identity,
      release: this.release.version,
      apiServer: this.api?.currentUrl ?? null,
      leases: this.electors.map((e) => ({ lease: e.lock.describe(), leading: e.isLeading, leader: e.getLeader() })),
      arp: [...this.arpHeld.keys()],
      announced: [...this.announced],
      lbBackends: this.lb?.current() ?? null,
      restarts: this.restarts,
      hung: this.hung,
    };
  }

  /**
   * A hung process (v1.2.0–v1.2.3 after losing the global Services lease) stays hung: the pod is
   * Running, nothing restarts it. Deleting the pod ends it; the DaemonSet's replacement starts as
   * any kube-vip does (addresses removed first, then the elections).
   */
  async unstick(): Promise<string | null> {
    if (!this.hung || this.stopping) return null;
    this.hung = false;
    this.restarts = 0;
    this.ctx.emit(COMPONENT, 'restart', { reason: 'hung pod deleted', afterMs: 0, exit: 'deleted' });
    await this.relaunch(atMost(Promise.allSettled(this.runs), 10_000).then(() => this.stopLb()), this.api);
    return `kube-vip ${this.release.version} hung after losing a lease (it never exits, so it is never restarted: no failover candidate on this node until its pod is deleted); the lab deleted the pod`;
  }

  async call(method: string): Promise<unknown> {
    if (method === 'status') return this.status();
    throw new Error(`kube-vip: unknown method '${method}'; valid: status`);
  }

  // -- elections -------------------------------------------------------------------------------

  private elect(namespace: string, name: string, onStarted: () => Promise<void>, onStopped: () => Promise<void>, onLost: () => void): void {
    const lock = this.makeLock(namespace, name);
    const lease = lock.describe();
    const elector = new LeaderElector(lock, {
      identity: this.identity,
      leaseDurationMs: this.timers.leaseDurationS * 1000,
      renewDeadlineMs: this.timers.renewDeadlineS * 1000,
      retryPeriodMs: this.timers.retryPeriodS * 1000,
      releaseOnCancel: true,
      onStartedLeading: async () => {
        this.ctx.emit(COMPONENT, 'leader', { lease });
        await onStarted().catch((e) => this.ctx.log(COMPONENT, `${lease}: start leading failed: ${(e as Error).message}`));
      },
      onStoppedLeading: async () => {
        if (this.crashed) return;
        await onStopped().catch((e) => this.ctx.log(COMPONENT, `${lease}: stop leading failed: ${(e as Error).message}`));
        this.ctx.emit(COMPONENT, 'lost-leader', { lease });
      },
      onNewLeader: (identity) => {
        if (identity !== this.identity) this.ctx.emit(COMPONENT, 'new-leader', { lease, identity });
      },
    });
    this.electors.push(elector);
    const signal = this.abort.signal;
    this.runs.push(
      elector.run(signal).then((end) => {
        if (end === 'lost' && !this.stopping && !signal.aborted) onLost();
      }),
    );
  }

  /**
   * Lost the control-plane or the global Services lease: the process ends as the release makes it
   * (see the header and ./versions.ts), and the kubelet starts it again — unless it hangs.
   */
  private lostLease(which: 'cp' | 'services', lease: string): void {
    if (this.stopping || this.abort.signal.aborted) return;
    const fate = which === 'cp' ? this.release.onLostCpLease : this.release.onLostServicesLease;
    const reason = `lost leadership of ${lease}`;
    if (fate === 'die') {
      // log.Fatal / panic: nothing else runs — the other leases are not released and their
      // addresses stay until the restarted process removes them
      for (const e of this.electors) e.abandon();
    }
    this.stopArp();
    this.abort.abort(new Error(reason));
    // `exit` / `hang`: cancelling the contexts releases the other leases (ReleaseOnCancel) and
    // their onStoppedLeading removes the addresses
    const shutdown = Promise.allSettled(this.runs).then(() => this.stopLb());
    if (fate === 'die') void shutdown.catch(() => undefined);
    // kube-vip's own BGP speaker dies with the process (or with its shutdown): its routes go
    void this.withdrawAll();
    if (fate === 'hang') {
      this.hung = true;
      this.ctx.emit(COMPONENT, 'hung', { reason, release: this.release.version });
      return;
    }
    const now = Date.now();
    if (now - this.lastRestartAt > BACKOFF_FORGOTTEN_MS) this.restarts = 0;
    const afterMs = restartDelayMs(this.restarts);
    this.restarts++;
    this.lastRestartAt = now;
    this.ctx.emit(COMPONENT, 'restart', { reason, afterMs, exit: fate });
    const api = this.api;
    this.restartTimer = setTimeout(() => {
      if (!this.stopping) void this.relaunch(shutdown, api);
    }, afterMs);
  }

  /**
   * A new process in place of the one that ended (`ended`: its elections settled, its Services
   * load balancer stopped): the old API client goes, the start-up clean-up removes the addresses
   * it left, and the elections begin again — the same path for a restarted container and a
   * deleted pod's replacement.
   */
  private async relaunch(ended: Promise<unknown>, api: ApiServers | undefined): Promise<void> {
    await ended;
    api?.close();
    await this.cleanup();
    if (!this.stopping) this.boot();
  }

  private async stopLb(): Promise<void> {
    await this.lb?.stop();
    this.lb = undefined;
  }

  /** The process's BGP speaker is gone: every route it announced is withdrawn. */
  private async withdrawAll(): Promise<void> {
    if (!this.announced.size) return;
    const ips = [...this.announced];
    this.announced.clear();
    await bgpWithdraw(this.ctx, COMPONENT, ips);
    for (const ip of ips) this.ctx.emit(COMPONENT, 'withdraw', { ip });
  }

  // -- addresses and gratuitous ARP ------------------------------------------------------------

  private async hold(ip: string, dev: string, what: string, role: 'api' | 'svc'): Promise<void> {
    await addAddress(this.ctx, ip, dev);
    this.arpHeld.set(ip, { dev, role });
    this.ctx.emit(COMPONENT, 'acquired', { ip, link: dev, for: what });
    if (this.release.garp === 'arp-loop') {
      // the ARP loop announces it on its next round (0…arpRate from now)
      this.firstGarpPending.add(ip);
      return;
    }
    // ≤ v0.8: a GARP at once, then repeated by this address's own loop: the control-plane VIP every
    // 3 s (≤ v0.8.9) or vip_arpRate, Services every vip_arpRate (pkg/cluster/service.go@v0.8.9
    // vipService / StartLoadBalancerService)
    this.garp(ip, dev, true);
    const every = role === 'api' ? this.release.cpArpRepeatMs(this.timers.arpRateMs) : Math.max(this.timers.arpRateMs < 500 ? 3000 : this.timers.arpRateMs, 1);
    clearInterval(this.garpTimers.get(ip));
    this.garpTimers.set(ip, setInterval(() => this.garp(ip, dev, false), every));
  }

  /** one gratuitous ARP; the first after taking the address is the failover event `garp-sent` */
  private garp(ip: string, dev: string, first: boolean): void {
    if (first) this.ctx.emit(COMPONENT, 'garp-sent', { ip });
    // arping waits out its deadline (no reply to a gratuitous ARP): do not hold the caller
    void sendGarp(quiet(this.ctx), COMPONENT, ip, 1, dev).catch(() => undefined);
  }

  /** ≥ v0.9 pkg/arp StartAdvertisement: one round over every held address */
  private arpTick(): void {
    for (const [ip, { dev }] of this.arpHeld) {
      const first = this.firstGarpPending.delete(ip);
      this.garp(ip, dev, first);
    }
  }

  private async letGo(ip: string, dev: string, what: string): Promise<void> {
    this.arpHeld.delete(ip);
    this.firstGarpPending.delete(ip);
    clearInterval(this.garpTimers.get(ip));
    this.garpTimers.delete(ip);
    await delAddress(this.ctx, ip, dev);
    this.ctx.emit(COMPONENT, 'released', { ip, for: what });
  }

  /** Announce through the node's speaker; retried every second until its vtysh answers (GoBGP
   *  upstream keeps the route in its RIB whatever the session state). */
  private async announce(ips: string[], signal: AbortSignal): Promise<void> {
    const add = ips.filter((ip) => !this.announced.has(ip));
    while (add.length && !signal.aborted) {
      try {
        await bgpAnnounce(this.ctx, COMPONENT, add);
        for (const ip of add) {
          this.announced.add(ip);
          this.ctx.emit(COMPONENT, 'announce', { ip });
        }
        return;
      } catch (e) {
        this.ctx.log(COMPONENT, `announce ${add.join(', ')} failed, retrying: ${(e as Error).message}`);
        await pause(1000, signal);
      }
    }
  }

  // -- API VIP ---------------------------------------------------------------------------------

  private makeLb(api: KubeVipApiConfig): ApiLoadBalancer | undefined {
    if (!api.lbEnable || !api.backends?.length) return undefined;
    const port = api.port ?? this.ctx.topology.apiPort;
    return new ApiLoadBalancer(this.ctx, api.vip, port, api.backends, api.backendCheckIntervalS ?? BACKEND_CHECK_INTERVAL_S, (ip, p) => this.checkBackend(ip, p));
  }

  private startApi(api: KubeVipApiConfig): void {
    const link = this.apiLink();
    if (api.mode === 'bgp') {
      // no leader election in BGP mode: every control plane holds the VIP on lo and announces it
      const signal = this.abort.signal;
      this.runs.push(
        (async () => {
          await addAddress(this.ctx, api.vip, 'lo');
          this.loAddrs.add(api.vip);
          if (signal.aborted) return;
          this.lb = this.makeLb(api);
          void this.lb?.start();
          await this.announce([api.vip], signal);
        })().catch((e) => this.ctx.log(COMPONENT, `BGP VIP: ${(e as Error).message}`)),
      );
      return;
    }
    this.elect(
      api.leaseNamespace ?? LEASE_NAMESPACE,
      api.leaseName ?? CP_LEASE,
      async () => {
        await this.hold(api.vip, link, 'api', 'api');
        this.lb = this.makeLb(api);
        void this.lb?.start();
      },
      async () => {
        // OnStoppedLeading: the IPVS service goes with the leadership, then the VIP is deleted
        await this.lb?.stop();
        this.lb = undefined;
        await this.letGo(api.vip, link, 'api');
      },
      () => this.lostLease('cp', `${api.leaseNamespace ?? LEASE_NAMESPACE}/${api.leaseName ?? CP_LEASE}`),
    );
  }

  // -- Services --------------------------------------------------------------------------------

  private startServices(svc: KubeVipServicesConfig): void {
    const lan = lanIf(this.ctx);
    // ETP Local: only nodes with a local endpoint take part (per-Service election, BGP)
    const eligible = svc.items.filter((s) => s.externalTrafficPolicy === 'Cluster' || s.localEndpoint);
    if (svc.mode === 'bgp') {
      this.runs.push(this.announce(eligible.map((s) => s.ip), this.abort.signal));
      return;
    }
    // no Service to serve (e.g. lb_class_only and no Service of kube-vip's class): the services
    // election upstream would run but change nothing a client can see — not emulated
    if (!svc.items.length) return;
    if (svc.election === 'global') {
      // one leader announces every Service, whatever its traffic policy
      this.elect(
        LEASE_NAMESPACE,
        svc.leaseName ?? SVC_LEASE,
        async () => {
          await Promise.all(svc.items.map((s) => this.hold(s.ip, lan, `${s.namespace}/${s.name}`, 'svc')));
        },
        async () => {
          await Promise.all(svc.items.map((s) => this.letGo(s.ip, lan, `${s.namespace}/${s.name}`)));
        },
        () => this.lostLease('services', `${LEASE_NAMESPACE}/${svc.leaseName ?? SVC_LEASE}`),
      );
      return;
    }
    for (const s of eligible) this.electService(s, lan);
  }

  /** svc_election: one lease per Service; after losing it the Service watcher campaigns again */
  private electService(s: KubeVipServiceItem, lan: string): void {
    this.elect(
      s.namespace,
      serviceLeaseName(s.name),
      () => this.hold(s.ip, lan, `${s.namespace}/${s.name}`, 'svc'),
      () => this.letGo(s.ip, lan, `${s.namespace}/${s.name}`),
      () => this.electService(s, lan),
    );
  }
}
