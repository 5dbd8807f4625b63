/**
 * Agent component `bgp-services`: a node's BGP Service announcer, as MetalLB's speaker (BGP mode)
 * and the Cilium agent's BGP control plane do it — advertise the Service /32s this node should
 * announce through the node's BGP speaker (FRR in the emulation, see ./net.ts bgpAnnounce) and
 * withdraw them on a graceful stop (both close their sessions on shutdown; a crash withdraws
 * nothing, the router's hold timer or BFD does). Events (under `component`, the mechanism's name):
 * `announce` / `withdraw` {ip}, plus net.ts's `bgp-announce` / `bgp-withdraw`.
 */
import type { AgentComponent, AgentContext, ComponentFactory } from './agent/types.js';
import { bgpAnnounce, bgpWithdraw } from './net.js';

export interface BgpServicesConfig {
  /** the name events are emitted under (the mechanism family: 'metallb', 'cilium') */
  component: string;
  /** the Service IPs THIS node announces */
  services: { name: string; ip: string }[];
}

export class BgpServiceAnnouncer {
  private announced = false;
  private retry?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly ctx: AgentContext,
    private readonly component: string,
    private readonly ips: string[],
    private readonly retryMs = 1000,
  ) {}

  get active(): boolean {
    return this.announced;
  }

  /** announce now; if the speaker is not reachable yet (restart order), retry until it is */
  async start(): Promise<void> {
    if (!this.ips.length) return;
    const attempt = async (): Promise<void> => {
      if (this.stopped) return;
      try {
        await bgpAnnounce(this.ctx, this.component, this.ips);
        this.announced = true;
        for (const ip of this.ips) this.ctx.emit(this.component, 'announce', { ip });
      } catch (e) {
        this.ctx.log(this.component, `announce failed (${(e as Error).message.split('\n')[0]}); retrying`);
        this.retry = setTimeout(() => void attempt(), this.retryMs);
      }
    };
    await attempt();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    if (!this.announced) return;
    await bgpWithdraw(this.ctx, this.component, this.ips);
    this.announced = false;
    for (const ip of this.ips) this.ctx.emit(this.component, 'withdraw', { ip });
  }
}

const factory: ComponentFactory = (ctx: AgentContext, config: BgpServicesConfig) => new BgpServices(ctx, config);
export default factory;

export class BgpServices implements AgentComponent {
  readonly kind = 'bgp-services';
  private readonly bgp: BgpServiceAnnouncer;

  constructor(
    ctx: AgentContext,
    private readonly config: BgpServicesConfig,
  ) {
    if (!config || typeof config.component !== 'string' || !Array.isArray(config.services)) {
      throw new Error(`bgp-services: config needs {component, services}, got ${JSON.stringify(config)}`);
    }
    this.bgp = new BgpServiceAnnouncer(ctx, config.component, config.services.map((s) => s.ip));
  }

  start(): Promise<void> {
    return this.bgp.start();
  }

  stop(): Promise<void> {
    return this.bgp.stop();
  }

  status(): Record<string, unknown> {
    return { announced: this.bgp.active ? this.config.services.map((s) => s.ip) : [] };
  }
}
