/**
 * The `cilium` agent component: the BGP Control Plane part of the Cilium agent on one node
 * (rules and sources: ./cilium-bgp.ts). It advertises the LoadBalancer IPs this node should
 * announce through the node's BGP speaker (FRR with Cilium's timers) and withdraws them when the
 * agent stops gracefully (the Cilium agent closes its BGP sessions on shutdown). Events:
 * `announce` / `withdraw` {ip}, plus net.ts's `bgp-announce` / `bgp-withdraw`.
 */
import type { AgentComponent, AgentContext, ComponentFactory } from '../../agent/types.js';
import type { BgpServiceConfig } from './metallb-bgp.js';
import { BgpServiceAnnouncer } from './metallb.agent.js';

const factory: ComponentFactory = (ctx: AgentContext, config: BgpServiceConfig) => new CiliumBgpAgent(ctx, config);
export default factory;

export class CiliumBgpAgent implements AgentComponent {
  readonly kind = 'cilium';
  private readonly bgp: BgpServiceAnnouncer;

  constructor(
    ctx: AgentContext,
    private readonly config: BgpServiceConfig,
  ) {
    if (!config || !Array.isArray(config.services)) throw new Error(`cilium: config needs {services}, got ${JSON.stringify(config)}`);
    this.bgp = new BgpServiceAnnouncer(ctx, 'cilium', config.services.map((s) => s.ip));
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
