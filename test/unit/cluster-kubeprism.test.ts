/** KubePrism's upstream rules, as go-loadbalancer has them (pure parts of src/emulation/kubeprism.ts). */
import { describe, expect, it } from 'vitest';
import { loadLab, REPO_ROOT } from '../../src/model/load.js';
import { UpstreamList, dialTier, isLocalHost, kubePrismUpstreams, tierFor } from '../../src/emulation/kubeprism.js';

describe('KubePrism upstream list', () => {
  it('lists the cluster endpoint, localhost on control planes, then every control plane', () => {
    const t = loadLab('smb', { repoRoot: REPO_ROOT }).topology;
    const cps = t.nodes.filter((n) => n.role === 'controlplane');
    const worker = t.nodes.find((n) => n.role === 'worker')!;
    expect(kubePrismUpstreams(t, worker.name)).toEqual(cps.map((n) => `${n.ip}:6443`));
    expect(kubePrismUpstreams(t, cps[0]!.name, `${t.loadBalancer!.ip}:6443`)).toEqual([
      `${t.loadBalancer!.ip}:6443`,
      '127.0.0.1:6443',
      ...cps.map((n) => `${n.ip}:6443`),
    ]);
  });

  it('scores: start +1, −1 per failure, +1 per success, clamped to [−3, +3]; usable while ≥ 0', () => {
    const changes: string[] = [];
    const l = new UpstreamList(['10.0.0.1:6443', '10.0.0.2:6443'], (u, usable, reason) => changes.push(`${u.address} ${usable ? 'up' : 'down'} ${reason}`));
    const [a, b] = l.nodes as [typeof l.nodes[0], typeof l.nodes[0]];
    expect(a.score).toBe(1);
    // tier 1 = every upstream's initial tier (both stay in one tier: scores alone decide here)
    for (let i = 0; i < 5; i++) l.up(a, 1);
    expect(a.score).toBe(3); // clamped
    // a healthy upstream needs four failures before it is avoided
    for (let i = 0; i < 3; i++) l.down(a, 'dial');
    expect(a.score).toBe(0);
    expect(changes).toEqual([]);
    expect([l.pick(), l.pick()].map((u) => u!.address).sort()).toEqual(['10.0.0.1:6443', '10.0.0.2:6443']);
    l.down(a, 'dial');
    expect(changes).toEqual(['10.0.0.1:6443 down dial']);
    for (let i = 0; i < 4; i++) expect(l.pick()).toBe(b);
    for (let i = 0; i < 5; i++) l.down(a, 'healthcheck');
    expect(a.score).toBe(-3);
    l.up(a, 1);
    l.up(a, 1);
    expect(changes).toHaveLength(1); // −1 is still unusable
    l.up(a, 1);
    expect(changes).toEqual(['10.0.0.1:6443 down dial', '10.0.0.1:6443 up healthcheck']);
    l.down(b, 'dial');
    l.down(b, 'dial');
    expect(l.pick()).toBe(a);
    l.down(a, 'dial');
    expect(l.pick()).toBeNull();
    expect(l.healthy()).toBe(false);
  });

  it('prefers the lowest latency tier, round robin inside it', () => {
    const l = new UpstreamList(['a:1', 'b:1', 'c:1']);
    const [a, b, c] = l.nodes as [typeof l.nodes[0], typeof l.nodes[0], typeof l.nodes[0]];
    l.up(a, tierFor(0.05)); // < 0.1 ms → tier 0
    l.up(b, tierFor(5)); // ≥ 1 ms → tier 2
    l.up(c, tierFor(0.08)); // tier 0
    expect(b.tier).toBe(2);
    const picks = Array.from({ length: 6 }, () => l.pick()!.address);
    expect(new Set(picks)).toEqual(new Set(['a:1', 'c:1']));
    expect(picks.filter((p) => p === 'a:1')).toHaveLength(3);
    // a failed check keeps the tier; when tier 0 is exhausted the next tier is used
    for (const u of [a, c]) for (let i = 0; i < 3; i++) l.down(u, 'healthcheck');
    expect(a.tier).toBe(0);
    expect(l.pick()).toBe(b);
  });

  it('tiers by dial time as go-loadbalancer v0.4.0 has them: <0.1 ms 0, ≥0.1 ms 1, ≥1 ms 2, ≥10 ms 3, ≥100 ms 4, ≥1 s 5; every upstream starts in tier 1', () => {
    expect([0, 0.05, 0.1, 0.9, 1, 9, 10, 99, 100, 999, 1000, 5000].map(tierFor)).toEqual([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]);
    const l = new UpstreamList(['x:1', 'y:1']);
    expect(l.nodes.map((u) => u.tier)).toEqual([1, 1]);
    l.up(l.nodes[0]!, tierFor(1500));
    expect(l.nodes[0]!.tier).toBe(5); // the range is 0–5 (loadbalancer.go AddRoute: WithTiers(0, 5, 1))
  });

  it('a control plane prefers its own API server after the first health round, as Go rates a loopback dial', () => {
    const t = loadLab('smb', { repoRoot: REPO_ROOT }).topology;
    const cp1 = t.nodes.find((n) => n.role === 'controlplane')!;
    const list = kubePrismUpstreams(t, cp1.name, `${t.vip}:6443`);
    const l = new UpstreamList(list);
    // before any check: one tier, round robin over all five
    expect(new Set(Array.from({ length: list.length }, () => l.pick()!.address)).size).toBe(list.length);
    // a health round: Node measured every dial at 0.3–0.8 ms (its event loop), Go would have seen
    // tens of µs for a loopback dial and at least a LAN round trip for the others
    const measured = [0.6, 0.5, 0.4, 0.7, 0.8];
    l.nodes.forEach((u, i) => l.up(u, dialTier(measured[i]!, isLocalHost(u.host, [cp1.ip]))));
    const picks = new Set(Array.from({ length: 10 }, () => l.pick()!.address));
    // localhost and the node's own address (the same API server) — never another control plane
    expect(picks).toEqual(new Set(['127.0.0.1:6443', `${cp1.ip}:6443`]));
    // a worker has no local upstream: everything stays in one tier, round robin over all
    expect(dialTier(0.05, false)).toBe(1);
    expect(dialTier(3, false)).toBe(2);
    expect(dialTier(3, true)).toBe(0);
  });
});
