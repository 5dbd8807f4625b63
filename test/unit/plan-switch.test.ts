/**
 * A strategy switch on an emulated lab changes only what differs, and what runs afterwards is
 * exactly what a fresh apply of the new strategy runs (src/providers/kinds/emulated/switch.ts).
 * For every ordered pair of strategies of the shipped labs: switched == fresh (specs and order),
 * and nothing is kept that is not identical. The expected kept counts are computed here by
 * comparing the rendered lists element by element.
 */
import { describe, expect, it } from 'vitest';
import { loadLab, REPO_ROOT } from '../../src/model/load.js';
import { composeStrategy, renderStrategy } from '../../src/strategies/compose.js';
import { applyPlanDiff, diffPlans } from '../../src/providers/kinds/emulated/switch.js';
import { keptPrefix } from '../../src/emulation/agent/diff.js';
import type { Lab } from '../../src/model/types.js';
import type { SimPlan } from '../../src/strategies/types.js';
import type { ComponentSpec } from '../../src/emulation/agent/types.js';

const labs = ['minecraft', 'smb', 'enterprise'].map((n) => loadLab(n, { repoRoot: REPO_ROOT }));
const planOf = (lab: Lab, id: string): SimPlan => renderStrategy(lab.topology, composeStrategy(lab.strategies.find((s) => s.id === id)!)).sim;
/** leading elements equal as JSON values (the test's own notion of "identical") */
const leadingEqual = (a: ComponentSpec[], b: ComponentSpec[]) => {
  let i = 0;
  while (i < a.length && i < b.length && JSON.stringify(sortKeys(a[i])) === JSON.stringify(sortKeys(b[i]))) i++;
  return i;
};
function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v as object).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]));
  return v;
}

describe('strategy switch (plan diff)', () => {
  for (const lab of labs) {
    const ids = lab.strategies.map((s) => s.id).filter((id) => {
      try {
        planOf(lab, id);
        return true;
      } catch {
        return false; // a strategy that cannot render (blocking conflict) is never applied
      }
    });
    it(`${lab.name}: switching between any two strategies leaves exactly the fresh plan (${ids.length} strategies)`, () => {
      for (const a of ids) {
        for (const b of ids) {
          const old = planOf(lab, a);
          const next = planOf(lab, b);
          const d = diffPlans(old, next);
          const switched = applyPlanDiff(old, d);
          expect(switched, `${a} → ${b}`).toEqual(next);
          // kept components are the leading identical ones, nothing more, nothing less
          for (const host of Object.keys(next.components)) {
            const c = d.agents[host]!;
            const [sa, sb] = [old.speakers[host], next.speakers[host]];
            const sameList = JSON.stringify(sortKeys(old.components[host])) === JSON.stringify(sortKeys(next.components[host]));
            // a node whose speaker is renewed renews its agent too (its components announce through it)
            const speakerRenewed = Boolean(sa || sb) && !(sa && sb && sameList && JSON.stringify(sortKeys(sa)) === JSON.stringify(sortKeys(sb)));
            const want = old.components[host] && !speakerRenewed ? leadingEqual(old.components[host]!, next.components[host]!) : 0;
            const kept = c.mode === 'keep' ? next.components[host]!.length : c.mode === 'partial' ? c.keep : 0;
            expect(kept, `${a} → ${b} on ${host}`).toBe(want);
            if (c.mode === 'partial') expect(c.stop).toEqual(old.components[host]!.slice(want));
          }
          // a kept speaker sits on a node whose components did not change at all
          for (const n of d.speakers.keep) expect(JSON.stringify(old.components[n])).toBe(JSON.stringify(next.components[n]));
        }
      }
    });
  }

  it('a chain of switches (a lane) ends where a fresh apply of the last strategy starts', () => {
    const smb = labs[1]!;
    const ids = smb.strategies.map((s) => s.id);
    let running = planOf(smb, ids[0]!);
    for (const id of [...ids.slice(1), ids[0]!, ids.at(-1)!]) running = applyPlanDiff(running, diffPlans(running, planOf(smb, id)));
    expect(running).toEqual(planOf(smb, ids.at(-1)!));
  });

  it('same control-plane role, other service role: the cluster base and the API mechanism stay, only the service mechanism changes', () => {
    const smb = labs[1]!;
    // two strategies of the lab sharing the cp role and differing in the svc role
    const pair = smb.strategies.flatMap((a) => smb.strategies.filter((b) => b.cp === a.cp && b.svc !== a.svc).map((b) => [a, b] as const))[0];
    expect(pair).toBeDefined();
    const [a, b] = pair!;
    const old = planOf(smb, a.id);
    const next = planOf(smb, b.id);
    const d = diffPlans(old, next);
    let keptTotal = 0;
    for (const n of smb.topology.nodes) {
      const c = d.agents[n.name]!;
      // something is kept on every node: the base components come first in every plan
      expect(c.mode === 'keep' || c.mode === 'partial', n.name).toBe(true);
      if (c.mode === 'partial') {
        keptTotal += c.keep;
        // the stopped tail holds no base component: those are identical in both plans
        for (const s of c.stop) expect(['apiserver', 'kubeprism', 'kubelet-client', 'echo', 'kube-proxy']).not.toContain(s.kind);
      } else keptTotal += next.components[n.name]!.length;
    }
    expect(keptTotal).toBeGreaterThanOrEqual(smb.topology.nodes.length * 2);
  });

  it('a changed config anywhere in the list restarts that component and everything after it; order of config keys does not matter', () => {
    const a: ComponentSpec[] = [
      { kind: 'apiserver', config: { port: 6443, x: { a: 1, b: 2 } } },
      { kind: 'kubeprism', config: { port: 7445 } },
      { kind: 'kube-proxy', config: { services: [] } },
    ];
    const reordered: ComponentSpec[] = [{ kind: 'apiserver', config: { x: { b: 2, a: 1 }, port: 6443 } }, a[1]!, a[2]!];
    expect(keptPrefix(a, reordered)).toBe(3);
    const changed: ComponentSpec[] = [a[0]!, { kind: 'kubeprism', config: { port: 7445, clusterEndpoint: '10.0.0.5:6443' } }, a[2]!];
    expect(keptPrefix(a, changed)).toBe(1);
    const d = diffPlans({ components: { n1: a }, speakers: {}, daemons: [] }, { components: { n1: changed }, speakers: {}, daemons: [] });
    expect(d.agents.n1).toEqual({ mode: 'partial', keep: 1, stop: a.slice(1), start: changed.slice(1) });
    // a different first component: the whole agent is replaced (and its node's kernel reset)
    expect(diffPlans({ components: { n1: a }, speakers: {}, daemons: [] }, { components: { n1: a.slice(1) }, speakers: {}, daemons: [] }).agents.n1!.mode).toBe('replace');
  });

  it('a speaker is kept only when it and its node’s components are unchanged; daemons by their whole spec', () => {
    const sp = { owner: 'x', asn: 65001, frrConf: 'router bgp 65001\n', staticPrefixes: [] };
    const comps = { n1: [{ kind: 'echo', config: {} }], n2: [{ kind: 'echo', config: {} }] };
    const daemon = { host: 'lb', name: 'haproxy', cmd: 'haproxy', args: ['-f', '{file:cfg}'], files: { cfg: 'a' } };
    const old: SimPlan = { components: comps, speakers: { n1: sp, n2: sp }, daemons: [daemon] };
    const next: SimPlan = { components: { n1: comps.n1, n2: [{ kind: 'echo', config: { port: 1 } }] }, speakers: { n1: sp, n2: sp }, daemons: [{ ...daemon, files: { cfg: 'b' } }] };
    const d = diffPlans(old, next);
    expect(d.speakers.keep).toEqual(['n1']);
    expect(d.speakers.stop).toEqual(['n2']);
    expect(Object.keys(d.speakers.start)).toEqual(['n2']);
    expect(d.daemons.stop).toEqual([daemon]);
    expect(d.daemons.run).toEqual([{ spec: next.daemons[0], keep: false }]);
    expect(diffPlans(old, old).daemons.run).toEqual([{ spec: daemon, keep: true }]);
    expect(applyPlanDiff(old, d)).toEqual(next);
  });

  it('a router whose frr.conf changes (BFD asked by one strategy only) is restarted, and then no speaker is kept', () => {
    const smb = labs.find((l) => l.name === 'smb')!;
    const ref = smb.strategies.find((s) => s.id === 'haproxy+metallb-bgp')!;
    const plain = renderStrategy(smb.topology, composeStrategy({ ...ref, options: { ...ref.options, bfd: false } })).sim;
    const withBfd = renderStrategy(smb.topology, composeStrategy({ ...ref, options: { ...ref.options, bfd: true } })).sim;
    // the router's config carries the BFD profile on the node sessions only when asked
    expect(withBfd.routers!.rtr).toMatch(/^bfd$/m);
    expect(withBfd.routers!.rtr).toMatch(/neighbor NODES bfd profile/);
    expect(plain.routers!.rtr).not.toMatch(/bfd/);
    const d = diffPlans(plain, withBfd);
    expect(Object.keys(d.routers.restart)).toEqual(['rtr']);
    expect(d.speakers.keep).toEqual([]);
    expect(Object.keys(d.speakers.start).sort()).toEqual(Object.keys(withBfd.speakers).sort());
    expect(applyPlanDiff(plain, d)).toEqual(withBfd);
    // the same plan again: the router and every speaker stay
    const same = diffPlans(withBfd, withBfd);
    expect(same.routers).toEqual({ keep: ['rtr'], restart: {} });
    expect(same.speakers.keep.sort()).toEqual(Object.keys(withBfd.speakers).sort());
  });

  it("the routers follow the strategy's BGP timers: kube-vip BGP's own (hold 30 s), not the lab's MetalLB timers", () => {
    const smb = labs.find((l) => l.name === 'smb')!;
    const kv = renderStrategy(smb.topology, composeStrategy({ id: 'kube-vip-bgp+metallb-l2', cp: 'kube-vip-bgp', svc: 'metallb-l2', options: {} } as never)).sim;
    const t = smb.topology.timers;
    expect(t.kubeVipBgp.holdS).not.toBe(t.bgp.holdS);
    expect(kv.routers!.rtr).toContain(`neighbor NODES timers ${t.kubeVipBgp.keepaliveS} ${t.kubeVipBgp.holdS}`);
    const mb = planOf(smb, 'haproxy+metallb-bgp');
    expect(mb.routers!.rtr).toContain(`neighbor NODES timers ${t.bgp.keepaliveS} ${t.bgp.holdS}`);
  });
});
