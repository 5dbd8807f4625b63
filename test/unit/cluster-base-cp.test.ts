/** cpBaseComponents: what every strategy runs on the control-plane side, per host and in order. */
import { describe, expect, it } from 'vitest';
import { loadLab, REPO_ROOT } from '../../src/model/load.js';
import { cpBaseComponents, observerNodes, OBSERVERS } from '../../src/emulation/base-cp.js';

describe('cpBaseComponents', () => {
  for (const name of ['minecraft', 'smb', 'enterprise']) {
    it(`${name}: apiserver on control planes, kubeprism on every node, the kubelet client on a few observers`, () => {
      const t = loadLab(name, { repoRoot: REPO_ROOT }).topology;
      const frozen = JSON.stringify(t);
      const plan = cpBaseComponents(t);
      const observers = observerNodes(t);
      const workers = t.nodes.filter((n) => n.role === 'worker');
      // observers: workers when there are any, spread over the racks, at most OBSERVERS
      expect(observers.length).toBe(Math.min(OBSERVERS, (workers.length ? workers : t.nodes).length));
      if (workers.length) expect(observers.every((o) => workers.some((w) => w.name === o))).toBe(true);
      const racks = new Set(t.nodes.filter((n) => observers.includes(n.name)).map((n) => n.rack));
      expect(racks.size).toBe(Math.min(observers.length, new Set((workers.length ? workers : t.nodes).map((n) => n.rack)).size));
      // exactly the nodes: no router, client or load-balancer host runs these
      expect(Object.keys(plan).sort()).toEqual(t.nodes.map((n) => n.name).sort());
      for (const n of t.nodes) {
        const kinds = plan[n.name]!.map((s) => s.kind);
        const client = observers.includes(n.name) ? ['kubelet-client'] : [];
        expect(kinds).toEqual(n.role === 'controlplane' ? ['apiserver', 'kubeprism', ...client] : ['kubeprism', ...client]);
        const kp = plan[n.name]!.find((s) => s.kind === 'kubeprism')!;
        expect(kp.config.port).toBe(t.kubePrismPort);
        if (n.role === 'controlplane') expect(plan[n.name]![0]!.config.port).toBe(t.apiPort);
      }
      expect(Object.values(plan).flat().filter((s) => s.kind === 'apiserver')).toHaveLength(t.nodes.filter((n) => n.role === 'controlplane').length);
      // pure: same input, same output; the topology is not touched
      expect(cpBaseComponents(t)).toEqual(plan);
      expect(JSON.stringify(t)).toBe(frozen);
    });
  }
});
