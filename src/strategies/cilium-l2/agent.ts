/**
 * Agent component `cilium-l2`: the L2 announcer of the Cilium agent on one node (a DaemonSet pod
 * in a real cluster). Rules and their sources: ./index.ts.
 *
 * For each Service the policy selects, one client-go election on the Lease
 * `kube-system/cilium-l2announce-<namespace>-<service>` (pkg/l2announcer/l2announcer.go
 * serviceLeaderElection: `for { select ctx.Done: return; default: RunOrDie(…) }` with
 * ReleaseOnCancel, so a lost leadership is followed at once by a new campaign). The elector is the
 * client-go LeaderElector on an etcd-backed Lease that ../kube-vip/agent.ts implements (the Lease
 * as the API server stores it, compare-and-swap on its revision).
 *  - OnStartedLeading: the IP is put on the LAN link (src/emulation/net.ts addAddress — the
 *    kernel answers ARP for it, where Cilium answers from eBPF) and ONE gratuitous ARP is sent
 *    (l2responder.go garpOnNewEntry: once per new map entry, no repeats).
 *  - OnStoppedLeading (renewal failed for RenewDeadline, or the stop): the IP is removed.
 *  - graceful stop: the context is cancelled, client-go releases the Lease (empty holder,
 *    leaseDurationSeconds 1) before OnStoppedLeading, so a candidate takes it at its next retry.
 *    (A real agent leaves its pinned responder map behind; the datapath answers until its liveness
 *    check expires — the new holder's gratuitous ARP redirects the clients first.)
 *
 * Events (component `cilium`): `leader` / `lost-leader` {lease, service}, `new-leader` {lease,
 * identity}, `acquired` / `released` {ip, service}, `garp-sent` {ip}.
 */
import type { AgentComponent, AgentContext, ComponentFactory } from '../../emulation/agent/types.js';
import { addAddress, delAddress, hasAddress, sendGarp } from '../../emulation/net.js';
import { EtcdEndpoints, EtcdLeaseLock, LeaderElector } from '../kube-vip/agent.js';
import { atMost, pause } from '../talos-vip/agent.js';
import type { CiliumL2Config } from './index.js';

const COMPONENT = 'cilium';

const factory: ComponentFactory = (ctx: AgentContext, config: CiliumL2Config) => new CiliumL2Announcer(ctx, config);
export default factory;

type ServiceItem = CiliumL2Config['services'][number];

export class CiliumL2Announcer implements AgentComponent {
  readonly kind = 'cilium-l2';
  private etcd?: EtcdEndpoints;
  private readonly abort = new AbortController();
  private readonly runs: Promise<void>[] = [];
  private readonly electors = new Map<string, LeaderElector>();
  /** Service IPs on the link (ip → service) */
  private readonly held = new Map<string, string>();
  private stopping = false;

  constructor(
    private readonly ctx: AgentContext,
    private readonly config: CiliumL2Config,
  ) {
    const c = config as Partial<CiliumL2Config> | undefined;
    if (!c || !Array.isArray(c.services) || !c.link || !c.endpoints?.length || !c.leaseNamespace) {
      throw new Error('cilium-l2: config needs services, link, endpoints and leaseNamespace (src/strategies/cilium-l2/index.ts ciliumL2Config)');
    }
  }

  async start(): Promise<void> {
    // what a previous life of this agent left on the link is not held any more (the responder
    // reconciler's full reconciliation at start drops entries nobody wants)
    for (const s of this.config.services) if (await hasAddress(this.ctx, s.ip, this.config.link)) await delAddress(this.ctx, s.ip, this.config.link);
    this.etcd = new EtcdEndpoints(this.config.endpoints);
    for (const s of this.config.services) this.runs.push(this.serviceElection(s));
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.abort.abort(new Error('stopping'));
    // the electors release their Leases and run OnStoppedLeading (addresses removed)
    await atMost(Promise.allSettled(this.runs), 10_000);
    for (const [ip, svc] of [...this.held]) await this.letGo(ip, svc);
    this.etcd?.close();
  }

  status(): Record<string, unknown> {
    return {
      identity: this.config.identity,
      leases: [...this.electors.entries()].map(([svc, e]) => ({ service: svc, lease: e.lock.describe(), leading: e.isLeading, leader: e.getLeader() })),
      holding: [...this.held.keys()],
    };
  }

  async call(method: string): Promise<unknown> {
    if (method === 'status') return this.status();
    if (method === 'holding') return [...this.held.keys()];
    throw new Error(`cilium-l2: unknown method '${method}'; valid: status, holding`);
  }

  /** serviceLeaderElection: RunOrDie again and again until the context ends */
  private async serviceElection(s: ServiceItem): Promise<void> {
    const signal = this.abort.signal;
    const svc = `${s.namespace}/${s.name}`;
    const lock = new EtcdLeaseLock(this.etcd!, this.config.leaseNamespace, s.lease);
    const lease = lock.describe();
    while (!signal.aborted) {
      // RunOrDie builds a new LeaderElector each time: nothing observed is carried over
      const elector = new LeaderElector(lock, {
        identity: this.config.identity,
        leaseDurationMs: this.config.leaseDurationMs,
        renewDeadlineMs: this.config.renewDeadlineMs,
        retryPeriodMs: this.config.retryPeriodMs,
        releaseOnCancel: true,
        onStartedLeading: async () => {
          this.ctx.emit(COMPONENT, 'leader', { lease, service: svc });
          await this.hold(s.ip, svc).catch((e) => this.ctx.log(COMPONENT, `${lease}: announcing ${s.ip} failed: ${(e as Error).message}`));
        },
        onStoppedLeading: async () => {
          await this.letGo(s.ip, svc).catch((e) => this.ctx.log(COMPONENT, `${lease}: withdrawing ${s.ip} failed: ${(e as Error).message}`));
          this.ctx.emit(COMPONENT, 'lost-leader', { lease, service: svc });
        },
        onNewLeader: (identity) => {
          if (identity !== this.config.identity) this.ctx.emit(COMPONENT, 'new-leader', { lease, identity });
        },
      });
      this.electors.set(svc, elector);
      const end = await elector.run(signal).catch((e: unknown) => {
        this.ctx.log(COMPONENT, `${lease}: election failed: ${(e as Error).message}`);
        return 'failed' as const;
      });
      // not a client-go path (RunOrDie does not throw): wait a retry period instead of spinning
      if (end === 'failed') await pause(this.config.retryPeriodMs, signal);
      if (end === 'lost' && !this.stopping) this.ctx.log(COMPONENT, `${lease}: leadership lost, campaigning again`);
    }
  }

  private async hold(ip: string, svc: string): Promise<void> {
    await addAddress(this.ctx, ip, this.config.link);
    this.held.set(ip, svc);
    this.ctx.emit(COMPONENT, 'acquired', { ip, service: svc });
    this.ctx.log(COMPONENT, `announcing ${ip} (${svc})`);
    // arping waits out its deadline (nobody answers a gratuitous ARP): do not hold the election up
    void sendGarp(this.ctx, COMPONENT, ip, 1, this.config.link).catch(() => undefined);
  }

  private async letGo(ip: string, svc: string): Promise<void> {
    if (!this.held.has(ip)) return;
    this.held.delete(ip);
    await delAddress(this.ctx, ip, this.config.link);
    this.ctx.emit(COMPONENT, 'released', { ip, service: svc });
    this.ctx.log(COMPONENT, `no longer announcing ${ip} (${svc})`);
  }
}
