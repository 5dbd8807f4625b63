/**
 * The `metallb` agent component: MetalLB's speaker in L2 mode on one node (a DaemonSet pod in a
 * real cluster, control planes included). Rules and their sources: ./index.ts. (In BGP mode the
 * speaker is the emulation kit's `bgp-services` component.)
 *
 * L2 mode: the speakers form a memberlist cluster over UDP (port 7946 on the node IP) — an
 * emulation of hashicorp/memberlist's SWIM protocol as MetalLB configures it (DefaultLANConfig):
 * round-robin probes with direct and indirect pings, suspicion with confirmations and refutation
 * by incarnation numbers, piggybacked and periodic gossip with a retransmit limit, push/pull state
 * exchange, graceful leave. On every membership change the speaker re-evaluates, for each Service
 * IP, who the announcer is (the first usable node in sha256(node#ip) order); the winner holds the
 * IP FROM USER SPACE as MetalLB does (src/emulation/net.ts UserSpaceArp: the kernel does not answer
 * ARP for it, the speaker's own responder does — internal/layer2/arp.go@v0.16.1 — so a frozen
 * speaker is silent) and sends gratuitous ARP (a request and a reply, broadcast: arp.go
 * Gratuitous) at once and every 1.1 s for 5 s; a loser stops answering.
 *
 * Events: `peer-down` {node, state: dead|left} / `peer-up` {node}, `acquired` / `released` {ip},
 * `garp-sent` {ip}, `announce` / `withdraw` {ip} (BGP). Suspicions are logged, not emitted (the
 * phase analysis takes a survivor's first event as "detect"; MetalLB acts on *dead*).
 */
import dgram from 'node:dgram';
import type { AgentComponent, AgentContext, ComponentFactory } from '../../emulation/agent/types.js';
import { UserSpaceArp, delAddress, thisNode } from '../../emulation/net.js';
import { Memberlist, type MlPacket } from '../../emulation/memberlist.js';
import { l2Announcer, type MetalLbL2Config } from './index.js';

const factory: ComponentFactory = (ctx: AgentContext, config: MetalLbL2Config) => new MetalLbSpeaker(ctx, config);
export default factory;

const COMPONENT = 'metallb';

export class MetalLbSpeaker implements AgentComponent {
  readonly kind = 'metallb';
  private ml?: Memberlist;
  private udp?: dgram.Socket;
  private arp?: UserSpaceArp;
  private readonly held = new Set<string>();
  private reconciling: Promise<void> = Promise.resolve();
  private readonly spam = new Map<string, NodeJS.Timeout>();
  private periodic?: NodeJS.Timeout;
  private stopping = false;

  constructor(
    private readonly ctx: AgentContext,
    private readonly config: MetalLbL2Config,
  ) {
    const mode = (config as { mode?: unknown } | undefined)?.mode;
    if (mode !== 'l2') throw new Error(`metallb: config.mode must be 'l2', got ${JSON.stringify(mode)}`);
  }

  async start(): Promise<void> {
    const cfg = this.config;
    const me = thisNode(this.ctx);
    // stale addresses from a previous life of this agent (crash → restore) are not ours any more
    for (const s of cfg.services) {
      await delAddress(this.ctx, s.ip);
      await delAddress(this.ctx, s.ip, 'lo');
    }
    this.arp = await UserSpaceArp.start(this.ctx, COMPONENT);
    const ipOf = new Map(cfg.speakers.map((s) => [s.name, s.ip]));
    const udp = dgram.createSocket('udp4');
    this.udp = udp;
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(cfg.port, me.ip, () => {
        udp.off('error', reject);
        resolve();
      });
    });
    udp.on('error', (e) => this.ctx.log(COMPONENT, `memberlist socket: ${e.message}`));
    const ml = new Memberlist(
      this.ctx.host,
      cfg.speakers.map((s) => s.name),
      cfg.memberlist,
      {
        now: () => Date.now(),
        setTimeout: (fn, ms) => setTimeout(fn, ms),
        clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
        random: Math.random,
        send: (to, p) => {
          const ip = ipOf.get(to);
          if (!ip) return;
          try {
            udp.send(JSON.stringify(p), cfg.port, ip);
          } catch {
            /* closing */
          }
        },
        log: (m) => this.ctx.log(COMPONENT, m),
      },
    );
    this.ml = ml;
    udp.on('message', (buf) => {
      try {
        ml.handle(JSON.parse(buf.toString('utf8')) as MlPacket);
      } catch (e) {
        this.ctx.log(COMPONENT, `bad memberlist packet: ${(e as Error).message}`);
      }
    });
    ml.onChange = (node, state, prev) => {
      if (node !== this.ctx.host) {
        if (state === 'dead' || state === 'left') this.ctx.emit(COMPONENT, 'peer-down', { node, state });
        else if (state === 'alive' && prev !== 'suspect') this.ctx.emit(COMPONENT, 'peer-up', { node });
        else if (state === 'suspect') this.ctx.log(COMPONENT, `${node} is suspect`);
      }
      // MetalLB: a memberlist node event forces a sync of every Service (speakerlist memberlistWatchEvents)
      void this.reconcile();
    };
    ml.start();
    // the first evaluation waits for the join round trip (a lone speaker would grab every IP)
    await new Promise((r) => setTimeout(r, Math.min(1000, cfg.memberlist.probeIntervalMs)));
    await this.reconcile();
    this.periodic = setInterval(() => void this.reconcile(), 5000);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.periodic);
    if (this.ml) await this.ml.leave(this.config.memberlist.leaveTimeoutMs);
    this.ml?.shutdown();
    await this.reconciling.catch(() => undefined);
    for (const t of this.spam.values()) clearInterval(t);
    this.spam.clear();
    for (const ip of [...this.held]) await this.release(ip);
    await this.arp?.stop();
    await new Promise<void>((r) => (this.udp ? this.udp.close(() => r()) : r()));
  }

  status(): Record<string, unknown> {
    return {
      mode: 'l2',
      members: Object.fromEntries([...(this.ml?.members.values() ?? [])].map((m) => [m.name, m.state])),
      holding: [...this.held],
    };
  }

  async call(method: string): Promise<unknown> {
    if (method === 'members') return this.status().members ?? {};
    if (method === 'holding') return [...this.held];
    throw new Error(`metallb: unknown method '${method}'; valid: members, holding`);
  }

  /** layer2 ShouldAnnounce for every Service IP, then add/remove addresses (serialised) */
  private reconcile(): Promise<void> {
    this.reconciling = this.reconciling
      .catch(() => undefined)
      .then(async () => {
        const cfg = this.config;
        if (this.stopping || !this.ml) return;
        const usable = new Set(this.ml.usable());
        for (const s of cfg.services) {
          const winner = l2Announcer(s.ip, s.candidates.filter((n) => usable.has(n)));
          const mine = winner === this.ctx.host;
          if (mine && !this.held.has(s.ip)) await this.acquire(s.ip);
          else if (!mine && this.held.has(s.ip)) await this.release(s.ip);
        }
      });
    return this.reconciling;
  }

  private async acquire(ip: string): Promise<void> {
    await this.arp!.hold(ip);
    this.held.add(ip);
    this.ctx.emit(COMPONENT, 'acquired', { ip });
    this.ctx.log(COMPONENT, `announcing ${ip}`);
    const cfg = this.config;
    const until = Date.now() + cfg.garp.durationMs;
    this.garp(ip);
    clearInterval(this.spam.get(ip));
    const t = setInterval(() => {
      if (!this.held.has(ip) || Date.now() > until) {
        clearInterval(t);
        this.spam.delete(ip);
        return;
      }
      this.garp(ip);
    }, cfg.garp.intervalMs);
    this.spam.set(ip, t);
  }

  private garp(ip: string): void {
    try {
      this.arp!.garp(ip);
    } catch (e) {
      this.ctx.log(COMPONENT, `gratuitous ARP for ${ip}: ${(e as Error).message}`);
    }
  }

  private async release(ip: string): Promise<void> {
    clearInterval(this.spam.get(ip));
    this.spam.delete(ip);
    await this.arp!.release(ip);
    this.held.delete(ip);
    this.ctx.emit(COMPONENT, 'released', { ip });
    this.ctx.log(COMPONENT, `no longer announcing ${ip}`);
  }
}
