/**
 * The MetalLB speaker's memberlist (SWIM) emulation on a virtual network with a virtual clock:
 * convergence, crash detection inside the band the mechanism predicts from the same timers,
 * graceful leave, refutation of a false suspicion, rejoin after a partition heals.
 */
import { describe, expect, it } from 'vitest';
import { Memberlist, type MlPacket, type MemberState, type MemberlistTimers } from '../../src/emulation/memberlist.js';
import { memberlistDetection, MEMBERLIST_FIXED, METALLB_JOIN_INTERVAL_MS, METALLB_LEAVE_TIMEOUT_MS } from '../../src/strategies/metallb-l2/index.js';
import { seeded } from '../../src/orchestrator/ids.js';

const rng = seeded;

interface Ev {
  t: number;
  seq: number;
  fn: () => void;
  dead: boolean;
}

/** discrete-event network: 0.2 ms latency, nodes can be cut off (both directions) */
class VirtualNet {
  now = 0;
  private seq = 0;
  private events: Ev[] = [];
  readonly nodes = new Map<string, Memberlist>();
  readonly cut = new Set<string>();
  readonly changes: { t: number; at: string; node: string; state: MemberState }[] = [];

  schedule(fn: () => void, ms: number): Ev {
    const e: Ev = { t: this.now + Math.max(0, ms), seq: this.seq++, fn, dead: false };
    this.events.push(e);
    return e;
  }

  run(until: number): void {
    for (;;) {
      this.events.sort((a, b) => a.t - b.t || a.seq - b.seq);
      const e = this.events[0];
      if (!e || e.t > until) break;
      this.events.shift();
      if (e.dead) continue;
      this.now = e.t;
      e.fn();
    }
    this.now = until;
  }

  add(name: string, peers: string[], timers: MemberlistTimers, seed: number): Memberlist {
    const random = rng(seed);
    const ml = new Memberlist(name, peers, timers, {
      now: () => this.now,
      setTimeout: (fn, ms) => this.schedule(fn, ms),
      clearTimeout: (h) => {
        (h as Ev).dead = true;
      },
      random,
      send: (to: string, p: MlPacket) => {
        if (this.cut.has(name) || this.cut.has(to)) return;
        const copy = JSON.parse(JSON.stringify(p)) as MlPacket;
        this.schedule(() => {
          if (!this.cut.has(to)) this.nodes.get(to)?.handle(copy);
        }, 0.2);
      },
    });
    ml.onChange = (node, state) => this.changes.push({ t: this.now, at: name, node, state });
    this.nodes.set(name, ml);
    return ml;
  }
}

const timers = (over: Partial<MemberlistTimers> = {}): MemberlistTimers => ({
  probeIntervalMs: 1000,
  probeTimeoutMs: 500,
  suspicionMult: 4,
  gossipIntervalMs: 200,
  ...MEMBERLIST_FIXED,
  joinIntervalMs: METALLB_JOIN_INTERVAL_MS,
  leaveTimeoutMs: METALLB_LEAVE_TIMEOUT_MS,
  ...over,
});

function cluster(n: number, seed: number, tm = timers()): { net: VirtualNet; names: string[] } {
  const net = new VirtualNet();
  const names = Array.from({ length: n }, (_, i) => `n${i + 1}`);
  // speakers start one after another, 50 ms apart (a DaemonSet rolling out)
  names.forEach((name, i) => {
    const ml = net.add(name, names, tm, seed * 100 + i);
    net.schedule(() => ml.start(), i * 50);
  });
  return { net, names };
}

const allSee = (net: VirtualNet, names: string[], state: MemberState) =>
  names.every((a) => names.every((b) => net.nodes.get(a)!.state(b) === state));

describe('memberlist emulation', () => {
  it('speakers that start one by one all see each other alive', () => {
    const { net, names } = cluster(5, 1);
    net.run(3000);
    expect(allSee(net, names, 'alive')).toBe(true);
  });

  it('a crashed speaker is declared dead inside the predicted band (n=5, 12 and 35; 30, 30 and 10 seeds)', () => {
    for (const [n, seeds] of [[5, 30], [12, 30], [35, 10]] as const) {
      const band = memberlistDetection(n, timers());
      const firsts: number[] = [];
      for (let seed = 1; seed <= seeds; seed++) {
        const { net, names } = cluster(n, seed);
        net.run(5000 + seed * 37); // a different phase of the probe cycle at each seed
        const victim = names[seed % n]!;
        const crashAt = net.now;
        net.cut.add(victim);
        net.nodes.get(victim)!.shutdown();
        net.run(crashAt + band.max + 5000);
        const dead = net.changes.filter((c) => c.node === victim && c.at !== victim && c.state === 'dead' && c.t > crashAt);
        expect(dead.length, `n=${n} seed ${seed}: nobody declared ${victim} dead`).toBeGreaterThan(0);
        const first = dead[0]!.t - crashAt;
        firsts.push(first);
        expect(first, `n=${n} seed ${seed}`).toBeGreaterThanOrEqual(band.min);
        expect(first, `n=${n} seed ${seed}`).toBeLessThanOrEqual(band.max);
        // and every survivor knows shortly after (gossip)
        const survivors = names.filter((x) => x !== victim);
        const knownBy = new Set(dead.filter((c) => c.t - crashAt <= band.max + 1000).map((c) => c.at));
        expect([...knownBy].sort()).toEqual(survivors.sort());
      }
      // not always at the bound: the spread is real
      expect(Math.max(...firsts) - Math.min(...firsts)).toBeGreaterThan(200);
    }
  });

  it('a graceful leave is known everywhere within the leave timeout, as left (not dead)', async () => {
    const { net, names } = cluster(5, 7);
    net.run(4000);
    const leaver = net.nodes.get('n3')!;
    const t0 = net.now;
    let left = false;
    const leaving = leaver.leave(1000).then(() => (left = true));
    net.run(t0 + 1000);
    await Promise.resolve();
    await Promise.resolve();
    await leaving;
    expect(left).toBe(true); // resolved by the end of the 1 s leave timeout at the latest
    const learned = net.changes.filter((c) => c.node === 'n3' && c.t >= t0);
    expect(learned.every((c) => c.state === 'left')).toBe(true);
    expect(new Set(learned.map((c) => c.at))).toEqual(new Set(names.filter((x) => x !== 'n3')));
    expect(Math.max(...learned.map((c) => c.t)) - t0).toBeLessThan(1000);
  });

  it('a short blip makes a node suspect, it refutes, and nobody declares it dead', () => {
    const { net, names } = cluster(5, 3);
    net.run(4000);
    net.cut.add('n2');
    net.run(net.now + 1500); // well inside the 4 s minimum suspicion
    net.cut.delete('n2');
    net.run(net.now + 30_000);
    expect(net.changes.some((c) => c.node === 'n2' && c.state === 'suspect')).toBe(true);
    expect(net.changes.some((c) => c.node === 'n2' && c.state === 'dead')).toBe(false);
    expect(allSee(net, names, 'alive')).toBe(true);
  });

  it('after a partition heals, the cut-off node and the others are members again (join ticker)', () => {
    const { net, names } = cluster(5, 5);
    net.run(4000);
    net.cut.add('n4');
    // the cut-off node hears no confirmations: its suspicions run the full 6 × 4 s
    net.run(net.now + 30_000);
    // both sides declared the other dead
    expect(net.nodes.get('n1')!.state('n4')).toBe('dead');
    expect(net.nodes.get('n4')!.usable()).toEqual(['n4']);
    net.cut.delete('n4');
    net.run(net.now + METALLB_JOIN_INTERVAL_MS + 5000);
    expect(allSee(net, names, 'alive')).toBe(true);
  });
});
