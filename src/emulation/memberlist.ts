/**
 * memberlist (SWIM) emulation — hashicorp/memberlist as MetalLB's speakers configure it
 * (DefaultLANConfig): round-robin probes with direct and indirect pings, suspicion with
 * confirmations and refutation by incarnation numbers, piggybacked and periodic gossip with a
 * retransmit limit, push/pull state exchange, graceful leave. Transport and clock are injected, so
 * it runs over UDP in an agent and over a virtual network in the unit tests. Sources of each rule
 * at the code that implements it; the timers are the caller's (MemberlistTimers).
 */
export interface MemberlistTimers {
  probeIntervalMs: number;
  probeTimeoutMs: number;
  suspicionMult: number;
  suspicionMaxTimeoutMult: number;
  gossipIntervalMs: number;
  gossipNodes: number;
  indirectChecks: number;
  retransmitMult: number;
  gossipToTheDeadMs: number;
  pushPullIntervalMs: number;
  /** how often the application re-joins its seed list (MetalLB: every minute) */
  joinIntervalMs: number;
  leaveTimeoutMs: number;
}

/** memberlist util.go suspicionTimeout = SuspicionMult × max(1, log10(max(1, n))) × ProbeInterval */
export function suspicionTimeoutMs(suspicionMult: number, n: number, probeIntervalMs: number): number {
  const nodeScale = Math.max(1, Math.log10(Math.max(1, n)));
  return suspicionMult * nodeScale * probeIntervalMs;
}
// memberlist (SWIM) emulation — transport and clock injected, so it runs over UDP in the agent and
// over a virtual network in the unit tests.

export type MemberState = 'alive' | 'suspect' | 'dead' | 'left';

export type Gossip = { t: 'alive'; node: string; inc: number } | { t: 'suspect'; node: string; inc: number; from: string } | { t: 'dead'; node: string; inc: number; from: string };

export type MlMessage =
  | Gossip
  | { t: 'ping'; seq: number; target: string }
  | { t: 'ack'; seq: number }
  | { t: 'ping-req'; seq: number; target: string }
  | { t: 'push-pull'; states: { node: string; inc: number; state: MemberState }[]; reply: boolean };

/** One datagram: a compound of messages (memberlist compoundMsg), with the sender's name. */
export interface MlPacket {
  from: string;
  msgs: MlMessage[];
}

export interface MlEnv {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(h: unknown): void;
  send(to: string, p: MlPacket): void;
  random(): number;
  log?(msg: string): void;
}

export interface Member {
  name: string;
  inc: number;
  state: MemberState;
  changedAt: number;
}

interface Queued {
  msg: Gossip;
  transmits: number;
  done?: () => void;
}

/** memberlist suspicion.go: a timer that shrinks from max towards min with k confirmations. */
class Suspicion {
  private readonly confirmations = new Set<string>();
  private n = 0;
  private readonly start: number;
  private timer: unknown;

  constructor(
    private readonly env: MlEnv,
    from: string,
    private readonly k: number,
    private readonly min: number,
    private readonly max: number,
    private readonly fire: (confirmations: number) => void,
  ) {
    this.start = env.now();
    this.confirmations.add(from);
    this.timer = env.setTimeout(() => this.fire(this.n), k < 1 ? min : max);
  }

  /** remainingSuspicionTime: max − log(n+1)/log(k+1) × (max − min), floored at min, minus elapsed */
  static remaining(n: number, k: number, elapsed: number, min: number, max: number): number {
    const frac = Math.log(n + 1) / Math.log(k + 1);
    const raw = max - frac * (max - min);
    return Math.max(min, Math.floor(raw)) - elapsed;
  }

  /** a new independent confirmation: true when it counted (and should be re-gossiped) */
  confirm(from: string): boolean {
    if (this.n >= this.k || this.confirmations.has(from)) return false;
    this.confirmations.add(from);
    this.n++;
    const left = Suspicion.remaining(this.n, this.k, this.env.now() - this.start, this.min, this.max);
    this.env.clearTimeout(this.timer);
    this.timer = this.env.setTimeout(() => this.fire(this.n), Math.max(0, left));
    return true;
  }

  stop(): void {
    this.env.clearTimeout(this.timer);
  }
}

export class Memberlist {
  readonly members = new Map<string, Member>();
  /** called on every state change of a member (new members included) */
  onChange: (node: string, state: MemberState, prev: MemberState | null) => void = () => {};
  private readonly suspicions = new Map<string, Suspicion>();
  private readonly acks = new Map<number, () => void>();
  private queue: Queued[] = [];
  private seq = 0;
  private probeOrder: string[] = [];
  private probeIndex = 0;
  private readonly timers = new Set<unknown>();
  private loops: unknown[] = [];
  private leaving = false;
  private stopped = false;

  constructor(
    readonly name: string,
    private readonly peers: string[],
    private readonly cfg: MemberlistTimers,
    private readonly env: MlEnv,
  ) {
    this.members.set(name, { name, inc: 1, state: 'alive', changedAt: env.now() });
  }

  /** start probing/gossiping and join the other speakers (push/pull with each) */
  start(): void {
    this.join();
    this.every(this.cfg.probeIntervalMs, () => this.probe());
    this.every(this.cfg.gossipIntervalMs, () => this.gossip());
    this.every(this.cfg.pushPullIntervalMs, () => this.pushPull());
    this.every(this.cfg.joinIntervalMs, () => this.join());
  }

  /** nodes MetalLB may use: memberlist Members() = alive or suspect, self included */
  usable(): string[] {
    return [...this.members.values()].filter((m) => m.state === 'alive' || m.state === 'suspect').map((m) => m.name);
  }

  state(node: string): MemberState | null {
    return this.members.get(node)?.state ?? null;
  }

  /** graceful: gossip "dead: me" and wait until it went out (≤ timeout), like memberlist Leave */
  leave(timeoutMs: number): Promise<void> {
    if (this.leaving || this.stopped) return Promise.resolve();
    this.leaving = true;
    const me = this.members.get(this.name)!;
    return new Promise<void>((resolve) => {
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        resolve();
      };
      const others = this.usable().filter((n) => n !== this.name);
      if (!others.length) return finish();
      this.enqueue({ t: 'dead', node: this.name, inc: me.inc, from: this.name }, finish);
      this.later(timeoutMs, finish);
    });
  }

  shutdown(): void {
    this.stopped = true;
    for (const l of this.loops) this.env.clearTimeout(l);
    for (const t of this.timers) this.env.clearTimeout(t);
    for (const s of this.suspicions.values()) s.stop();
    this.loops = [];
    this.timers.clear();
    this.suspicions.clear();
  }

  /** a datagram from the network */
  handle(p: MlPacket): void {
    if (this.stopped) return;
    for (const m of p.msgs) {
      switch (m.t) {
        case 'ping':
          if (m.target === this.name) this.send(p.from, [{ t: 'ack', seq: m.seq }]);
          break;
        case 'ack': {
          const cb = this.acks.get(m.seq);
          if (cb) cb();
          break;
        }
        case 'ping-req': {
          // probe the target on the requester's behalf and forward its ack (memberlist handleIndirectPing)
          const seq = ++this.seq;
          const requester = p.from;
          this.acks.set(seq, () => {
            this.acks.delete(seq);
            this.send(requester, [{ t: 'ack', seq: m.seq }]);
          });
          this.later(this.cfg.probeTimeoutMs, () => this.acks.delete(seq));
          this.send(m.target, [{ t: 'ping', seq, target: m.target }]);
          break;
        }
        case 'push-pull':
          this.merge(m.states, p.from);
          if (m.reply) this.env.send(p.from, { from: this.name, msgs: [{ t: 'push-pull', states: this.snapshot(), reply: false }] });
          break;
        case 'alive':
          this.aliveNode(m);
          break;
        case 'suspect':
          this.suspectNode(m);
          break;
        case 'dead':
          this.deadNode(m);
          break;
      }
    }
  }

  // -- loops ------------------------------------------------------------------------------------

  private every(ms: number, fn: () => void): void {
    const tick = () => {
      if (this.stopped) return;
      fn();
      this.loops[idx] = this.env.setTimeout(tick, ms);
    };
    const idx = this.loops.length;
    // memberlist staggers its tickers by a random fraction of the period
    this.loops.push(this.env.setTimeout(tick, Math.floor(this.env.random() * ms)));
  }

  private later(ms: number, fn: () => void): void {
    const h = this.env.setTimeout(() => {
      this.timers.delete(h);
      if (!this.stopped) fn();
    }, ms);
    this.timers.add(h);
  }

  /** memberlist probe(): the next node of a shuffled round-robin list, skipping self/dead/left */
  private probe(): void {
    if (this.leaving) return;
    for (let checked = 0; checked < this.members.size + 1; checked++) {
      if (this.probeIndex >= this.probeOrder.length) {
        this.probeOrder = this.shuffle([...this.members.keys()]);
        this.probeIndex = 0;
        this.reap();
      }
      const name = this.probeOrder[this.probeIndex++];
      const m = name ? this.members.get(name) : undefined;
      if (!m || m.name === this.name || m.state === 'dead' || m.state === 'left') continue;
      this.probeNode(m);
      return;
    }
  }

  /** memberlist probeNode: ping; after ProbeTimeout indirect pings; at ProbeInterval → suspect */
  private probeNode(target: Member): void {
    const seq = ++this.seq;
    let acked = false;
    this.acks.set(seq, () => {
      acked = true;
      this.acks.delete(seq);
    });
    // a suspect node is told of the suspicion in the same packet, so it can refute (memberlist probeNode)
    const tell: MlMessage[] = target.state === 'suspect' ? [{ t: 'suspect', node: target.name, inc: target.inc, from: this.name }] : [];
    this.send(target.name, [{ t: 'ping', seq, target: target.name }, ...tell]);
    this.later(this.cfg.probeTimeoutMs, () => {
      if (acked) return;
      const helpers = this.kRandom(this.cfg.indirectChecks, (m) => m.name !== this.name && m.name !== target.name && m.state === 'alive');
      for (const h of helpers) this.send(h, [{ t: 'ping-req', seq, target: target.name }]);
    });
    this.later(this.cfg.probeIntervalMs, () => {
      this.acks.delete(seq);
      if (acked || this.leaving) return;
      const m = this.members.get(target.name);
      if (!m) return;
      this.env.log?.(`probe of ${m.name} failed: suspect`);
      this.suspectNode({ node: m.name, inc: m.inc, from: this.name });
    });
  }

  /** memberlist gossip(): queued broadcasts to GossipNodes random live (or recently dead) nodes */
  private gossip(): void {
    if (!this.queue.length) return;
    const now = this.env.now();
    const targets = this.kRandom(this.cfg.gossipNodes, (m) => {
      if (m.name === this.name) return false;
      if (m.state === 'alive' || m.state === 'suspect') return true;
      return m.state === 'dead' && now - m.changedAt <= this.cfg.gossipToTheDeadMs;
    });
    for (const to of targets) {
      const msgs = this.takeBroadcasts();
      if (!msgs.length) break;
      this.env.send(to, { from: this.name, msgs });
    }
  }

  /** memberlist pushPull(): full state exchange with one random live node */
  private pushPull(): void {
    const [to] = this.kRandom(1, (m) => m.name !== this.name && m.state === 'alive');
    if (to) this.env.send(to, { from: this.name, msgs: [{ t: 'push-pull', states: this.snapshot(), reply: true }] });
  }

  /** MetalLB speakerlist mlJoin: push/pull with every speaker that is not a live member */
  private join(): void {
    if (this.leaving) return;
    for (const p of this.peers) {
      if (p === this.name) continue;
      const s = this.members.get(p)?.state;
      if (s === 'alive' || s === 'suspect') continue;
      this.env.send(p, { from: this.name, msgs: [{ t: 'push-pull', states: this.snapshot(), reply: true }] });
    }
  }

  // -- state machine (memberlist state.go) --------------------------------------------------------

  private setState(m: Member, state: MemberState): void {
    const prev = m.state;
    if (prev === state) return;
    m.state = state;
    m.changedAt = this.env.now();
    this.onChange(m.name, state, prev);
  }

  private aliveNode(a: { node: string; inc: number }): void {
    const m = this.members.get(a.node);
    if (!m) {
      const nm: Member = { name: a.node, inc: a.inc, state: 'alive', changedAt: this.env.now() };
      this.members.set(a.node, nm);
      this.onChange(a.node, 'alive', null);
      this.enqueue({ t: 'alive', node: a.node, inc: a.inc });
      return;
    }
    if (a.node === this.name) {
      // someone thinks we are alive with a newer incarnation than ours (a previous life): outdo it
      if (a.inc > m.inc && !this.leaving) this.refute(a.inc);
      return;
    }
    if (a.inc <= m.inc) return;
    m.inc = a.inc;
    this.suspicions.get(a.node)?.stop();
    this.suspicions.delete(a.node);
    this.enqueue({ t: 'alive', node: a.node, inc: a.inc });
    this.setState(m, 'alive');
  }

  private suspectNode(s: { node: string; inc: number; from: string }): void {
    const m = this.members.get(s.node);
    if (!m || s.inc < m.inc) return;
    const timer = this.suspicions.get(s.node);
    if (timer) {
      if (timer.confirm(s.from)) this.enqueue({ t: 'suspect', ...s });
      return;
    }
    if (m.state !== 'alive') return;
    if (s.node === this.name) {
      if (!this.leaving) this.refute(s.inc);
      return;
    }
    this.enqueue({ t: 'suspect', ...s });
    m.inc = s.inc;
    this.setState(m, 'suspect');
    const changedAt = m.changedAt;
    const n = this.members.size;
    let k = this.cfg.suspicionMult - 2;
    if (n - 2 < k) k = 0;
    const min = suspicionTimeoutMs(this.cfg.suspicionMult, n, this.cfg.probeIntervalMs);
    const max = this.cfg.suspicionMaxTimeoutMult * min;
    this.suspicions.set(
      s.node,
      new Suspicion(this.env, s.from, k, min, max, (confirmations) => {
        const cur = this.members.get(s.node);
        if (this.stopped || !cur || cur.state !== 'suspect' || cur.changedAt !== changedAt) return;
        this.env.log?.(`marking ${s.node} as failed, suspect timeout reached (${confirmations} peer confirmations)`);
        this.deadNode({ node: s.node, inc: cur.inc, from: this.name });
      }),
    );
  }

  private deadNode(d: { node: string; inc: number; from: string }): void {
    const m = this.members.get(d.node);
    if (!m || d.inc < m.inc) return;
    this.suspicions.get(d.node)?.stop();
    this.suspicions.delete(d.node);
    if (m.state === 'dead' || m.state === 'left') return;
    if (d.node === this.name) {
      if (!this.leaving) this.refute(d.inc);
      return;
    }
    this.enqueue({ t: 'dead', ...d });
    m.inc = d.inc;
    this.setState(m, d.from === d.node ? 'left' : 'dead');
  }

  /** memberlist refute: a higher incarnation, gossiped as alive */
  private refute(inc: number): void {
    const me = this.members.get(this.name)!;
    me.inc = Math.max(me.inc, inc) + 1;
    this.env.log?.(`refuting a suspect/dead message (incarnation now ${me.inc})`);
    this.enqueue({ t: 'alive', node: this.name, inc: me.inc });
  }

  /** memberlist mergeState: remote dead/suspect → suspect (never dead at once), left → dead by itself */
  private merge(states: { node: string; inc: number; state: MemberState }[], from: string): void {
    for (const s of states) {
      if (s.state === 'alive') this.aliveNode(s);
      else if (s.state === 'left') this.deadNode({ node: s.node, inc: s.inc, from: s.node });
      else this.suspectNode({ node: s.node, inc: s.inc, from });
    }
  }

  private snapshot(): { node: string; inc: number; state: MemberState }[] {
    return [...this.members.values()].map((m) => ({ node: m.name, inc: m.inc, state: m.state }));
  }

  /** dead members older than GossipToTheDeadTime leave the node list (memberlist resetNodes) */
  private reap(): void {
    const now = this.env.now();
    for (const m of [...this.members.values()]) {
      if ((m.state === 'dead' || m.state === 'left') && now - m.changedAt > this.cfg.gossipToTheDeadMs) this.members.delete(m.name);
    }
  }

  // -- broadcasts (memberlist TransmitLimitedQueue) ------------------------------------------------

  private retransmitLimit(): number {
    return this.cfg.retransmitMult * Math.ceil(Math.log10(this.members.size + 1));
  }

  private enqueue(msg: Gossip, done?: () => void): void {
    // a newer message about a node invalidates the queued ones about it
    for (const q of this.queue.filter((x) => x.msg.node === msg.node)) q.done?.();
    this.queue = this.queue.filter((q) => q.msg.node !== msg.node);
    this.queue.push({ msg, transmits: 0, done });
  }

  private takeBroadcasts(): Gossip[] {
    const limit = this.retransmitLimit();
    const out: Gossip[] = [];
    // fewest transmits first (memberlist orders its queue the same way)
    this.queue.sort((a, b) => a.transmits - b.transmits);
    for (const q of this.queue) {
      out.push(q.msg);
      q.transmits++;
    }
    const finished = this.queue.filter((q) => q.transmits >= limit);
    this.queue = this.queue.filter((q) => q.transmits < limit);
    for (const q of finished) q.done?.();
    return out;
  }

  /** a packet with piggybacked broadcasts (memberlist adds them to pings and acks) */
  private send(to: string, msgs: MlMessage[]): void {
    this.env.send(to, { from: this.name, msgs: [...msgs, ...this.takeBroadcasts()] });
  }

  private kRandom(k: number, ok: (m: Member) => boolean): string[] {
    return this.shuffle([...this.members.values()].filter(ok).map((m) => m.name)).slice(0, k);
  }

  private shuffle<T>(xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = Math.floor(this.env.random() * (i + 1));
      [xs[i], xs[j]] = [xs[j]!, xs[i]!];
    }
    return xs;
  }
}
