/**
 * The files a real Talos cluster gets for a strategy (the Talos kind's, src/providers/kinds/talos/
 * files.ts, and the roles' own Talos patches): which patches exist for which
 * strategy and topology, on which hosts, with which values; the version-dependent VIP shape; the
 * static patches read from patches/talos/; the README listing every file. (Schema validity is the
 * contract test's job: test/contract/talos-schema.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { loadLab, REPO_ROOT } from '../../src/model/index.js';
import type { Lab, StrategyRef, Topology } from '../../src/model/types.js';
import { README_PATH, TALOS_PATCH, routerFrrPath, talosStrategyFiles as renderStrategyFiles } from '../../src/providers/kinds/talos/files.js';
import { apiCertSans, patchScope, talosMinor, usesNetworkDocuments } from '../../src/providers/kinds/talos/machine-config.js';
import { VIP_PATCH, vipPatchDocs, vipRemovalDocs } from '../../src/strategies/talos-vip/talos-patch.js';
import { apiEndpointUrl as apiUrl, clusterCni as cniOf, composeStrategy } from '../../src/strategies/compose.js';

const apiEndpointUrl = (t: Topology, r: StrategyRef) => apiUrl(t, composeStrategy(r).cp);
const clusterCni = (r: StrategyRef) => cniOf(composeStrategy(r));

const labs: Lab[] = ['minecraft', 'smb', 'enterprise'].map((n) => loadLab(n));
const lab = (n: string) => labs.find((l) => l.name === n)!;
const ref = (l: Lab, id: string) => l.strategies.find((s) => s.id === id)!;
const docs = (content: string) => parseAllDocuments(content).map((d) => d.toJS() as Record<string, any>);
const file = (t: Topology, r: StrategyRef, path: string) => renderStrategyFiles(t, r).find((f) => f.path === path);
const withVersion = (t: Topology, version: string): Topology => ({ ...t, talos: { ...t.talos, version } });

describe('the files of a strategy on a real Talos cluster', () => {
  it('is pure and deterministic: same input, same files', () => {
    for (const l of labs) for (const r of l.strategies) expect(renderStrategyFiles(l.topology, r)).toEqual(renderStrategyFiles(l.topology, r));
  });

  it('points the cluster endpoint at the VIP, or at the load balancer for haproxy', () => {
    const smb = lab('smb');
    for (const r of smb.strategies) {
      const d = docs(file(smb.topology, r, TALOS_PATCH.endpoint)!.content)[0]!;
      const host = r.cp === 'haproxy' ? smb.topology.loadBalancer!.ip : smb.topology.vip;
      expect(d.cluster.controlPlane.endpoint).toBe(`https://${host}:6443`);
      expect(apiEndpointUrl(smb.topology, r)).toBe(`https://${host}:6443`);
    }
    // and to every node: workers join through it
    expect(file(smb.topology, smb.strategies[0]!, TALOS_PATCH.endpoint)!.hosts).toEqual(smb.topology.nodes.map((n) => n.name));
  });

  it('turns KubePrism on explicitly, on every node, on the topology’s port', () => {
    for (const l of labs) {
      const f = file(l.topology, l.strategies[0]!, TALOS_PATCH.kubePrism)!;
      expect(docs(f.content)[0]!.machine.features.kubePrism).toEqual({ enabled: true, port: l.topology.kubePrismPort });
      expect(f.hosts).toHaveLength(l.topology.nodes.length);
    }
  });

  it('puts every API address (VIP and load balancer) in the API server certificate, on control planes only', () => {
    const smb = lab('smb');
    const f = file(smb.topology, smb.strategies[0]!, TALOS_PATCH.certSans)!;
    expect(docs(f.content)[0]!.cluster.apiServer.certSANs).toEqual([smb.topology.vip, smb.topology.loadBalancer!.ip]);
    expect(f.hosts).toEqual(['cp1', 'cp2', 'cp3']);
    expect(apiCertSans(lab('minecraft').topology)).toEqual([lab('minecraft').topology.vip]);
  });

  it('handles the single-node pitfall only where the topology asks: label removed with $patch: delete, scheduling allowed', () => {
    const mc = lab('minecraft');
    const f = file(mc.topology, mc.strategies[0]!, TALOS_PATCH.excludeLbLabel)!;
    expect(docs(f.content)[0]!.machine.nodeLabels).toEqual({ 'node.kubernetes.io/exclude-from-external-load-balancers': { $patch: 'delete' } });
    expect(docs(file(mc.topology, mc.strategies[0]!, TALOS_PATCH.scheduling)!.content)[0]).toEqual({ cluster: { allowSchedulingOnControlPlanes: true } });
    const smb = lab('smb');
    expect(file(smb.topology, smb.strategies[0]!, TALOS_PATCH.excludeLbLabel)).toBeUndefined();
    expect(file(smb.topology, smb.strategies[0]!, TALOS_PATCH.scheduling)).toBeUndefined();
  });

  it('scopes each patch to the config it belongs to (Talos refuses to delete a label a worker config does not have)', () => {
    const mc = lab('minecraft');
    const smb = lab('smb');
    const label = file(mc.topology, mc.strategies[0]!, TALOS_PATCH.excludeLbLabel)!;
    expect(patchScope(mc.topology, label)).toBe('controlplane'); // one node that is a control plane: never worker.yaml
    expect(patchScope(smb.topology, file(smb.topology, smb.strategies[0]!, TALOS_PATCH.kubePrism)!)).toBe('all');
    expect(patchScope(smb.topology, file(smb.topology, smb.strategies[0]!, TALOS_PATCH.certSans)!)).toBe('controlplane');
    expect(patchScope(smb.topology, { path: 'x', kind: 'talos-patch', content: '', hosts: ['w1', 'w2'] })).toBe('worker');
    expect(patchScope(smb.topology, { path: 'x', kind: 'talos-patch', content: '' })).toBe('all');
    expect(renderStrategyFiles(mc.topology, mc.strategies[0]!).find((f) => f.path === README_PATH)!.content).toContain(`--config-patch-control-plane @${TALOS_PATCH.excludeLbLabel}`);
  });

  it('the static patches are the files under patches/talos/ (real patches, usable as they are)', () => {
    const mc = lab('minecraft');
    const read = (n: string) => readFileSync(join(REPO_ROOT, 'patches', 'talos', `${n}.yaml`), 'utf8');
    expect(file(mc.topology, mc.strategies[0]!, TALOS_PATCH.excludeLbLabel)!.content).toBe(read('remove-exclude-lb-label'));
    expect(file(mc.topology, mc.strategies[0]!, TALOS_PATCH.scheduling)!.content).toBe(read('allow-scheduling-on-control-planes'));
    expect(file(mc.topology, mc.strategies[0]!, TALOS_PATCH.containerMode)!.content).toBe(read('container-mode'));
    expect(docs(read('container-mode'))[0]!.machine.features.hostDNS).toEqual({ enabled: true, forwardKubeDNSToHost: true });
  });

  it('renders the native VIP for talos-vip only, in the shape of the topology’s Talos version', () => {
    const smb = lab('smb');
    const tv = ref(smb, 'talos-vip+metallb-l2');
    const legacy = docs(file(smb.topology, tv, VIP_PATCH)!.content);
    expect(legacy).toEqual([{ machine: { network: { interfaces: [{ interface: 'eth0', vip: { ip: smb.topology.vip } }] } } }]);
    expect(file(smb.topology, tv, VIP_PATCH)!.hosts).toEqual(['cp1', 'cp2', 'cp3']);
    const v12 = docs(file(withVersion(smb.topology, 'v1.12.11'), tv, VIP_PATCH)!.content);
    expect(v12).toEqual([{ apiVersion: 'v1alpha1', kind: 'Layer2VIPConfig', name: smb.topology.vip, link: 'eth0' }]);
    for (const r of smb.strategies.filter((s) => s.cp !== 'talos-vip')) expect(file(smb.topology, r, VIP_PATCH)).toBeUndefined();
  });

  it('the VIP removal deletes the eth0 item, merging back what else it had (≤ 1.11: Talos refuses a delete inside a list item), or the whole Layer2VIPConfig document (≥ 1.12)', () => {
    expect(vipRemovalDocs('10.0.0.10', 'v1.11.6', 'eth0')).toEqual([{ machine: { network: { interfaces: [{ interface: 'eth0', $patch: 'delete' }] } } }]);
    const routes = [{ network: '10.9.0.0/24', gateway: '10.0.0.1' }];
    expect(vipRemovalDocs('10.0.0.10', 'v1.11.6', 'eth0', { interface: 'eth0', routes, vip: { ip: '10.0.0.10' } })).toEqual([
      { machine: { network: { interfaces: [{ interface: 'eth0', $patch: 'delete' }, { interface: 'eth0', routes }] } } },
    ]);
    expect(vipRemovalDocs('10.0.0.10', 'v1.12.0', 'eth0')).toEqual([{ apiVersion: 'v1alpha1', kind: 'Layer2VIPConfig', name: '10.0.0.10', $patch: 'delete' }]);
    expect(vipPatchDocs('10.0.0.10', 'v1.11.6', { deviceSelector: { driver: 'virtio_net' } })).toEqual([{ machine: { network: { interfaces: [{ deviceSelector: { driver: 'virtio_net' }, vip: { ip: '10.0.0.10' } }] } } }]);
    expect(() => vipPatchDocs('10.0.0.10', 'v1.12.0', { deviceSelector: { driver: 'virtio_net' } })).toThrow(/link name/);
  });

  it('parses Talos versions and picks the document shape from 1.12 on', () => {
    expect(talosMinor('v1.11.6')).toEqual({ major: 1, minor: 11 });
    expect(talosMinor('1.12.0-beta.1')).toEqual({ major: 1, minor: 12 });
    expect(() => talosMinor('latest')).toThrow(/not a Talos version/);
    expect(usesNetworkDocuments('v1.11.6')).toBe(false);
    expect(usesNetworkDocuments('v1.12.0')).toBe(true);
    expect(usesNetworkDocuments('v2.0.0')).toBe(true);
  });

  it('asks for no CNI when Cilium is the service mechanism (Cilium BGP needs Cilium as the CNI)', () => {
    const ent = lab('enterprise');
    for (const r of ent.strategies) {
      const f = file(ent.topology, r, TALOS_PATCH.cniNone);
      expect(Boolean(f)).toBe(r.svc === 'cilium-bgp');
      expect(clusterCni(r)).toBe(r.svc === 'cilium-bgp' ? 'cilium' : 'flannel');
      if (f) expect(docs(f.content)[0]).toEqual({ cluster: { network: { cni: { name: 'none' } } } });
    }
  });

  it('renders one frr.conf per BGP router, none for a router without BGP', () => {
    const ent = lab('enterprise');
    const frr = renderStrategyFiles(ent.topology, ent.strategies[0]!).filter((f) => f.kind === 'frr');
    expect(frr.map((f) => f.path).sort()).toEqual(ent.topology.routers.map((r) => routerFrrPath(r)).sort());
    for (const f of frr) expect(f.content).toContain(`hostname ${f.hosts![0]}`);
    const mc = lab('minecraft');
    expect(renderStrategyFiles(mc.topology, mc.strategies[0]!).filter((f) => f.kind === 'frr')).toEqual([]);
  });

  it('uses the mechanism’s BGP timers and the strategy’s BFD choice on the routers', () => {
    const ent = lab('enterprise');
    const cilium = ref(ent, 'haproxy+cilium-bgp');
    const tor1 = renderStrategyFiles(ent.topology, cilium).find((f) => f.path === 'router/tor1/frr.conf')!.content;
    expect(tor1).toContain(`neighbor NODES timers ${ent.topology.timers.cilium.keepaliveS} ${ent.topology.timers.cilium.holdS}`);
    const withBfd = renderStrategyFiles(ent.topology, { ...cilium, options: { ...cilium.options, bfd: true } }).find((f) => f.path === 'router/tor1/frr.conf')!.content;
    expect(withBfd).toContain('neighbor NODES bfd profile');
    const noBfd = renderStrategyFiles(ent.topology, { ...cilium, options: { ...cilium.options, bfd: false } }).find((f) => f.path === 'router/tor1/frr.conf')!.content;
    expect(noBfd).not.toContain('bfd');
  });

  it('the README names every file, where it goes and the talosctl commands (node IPs, never the VIP, as talosctl endpoints)', () => {
    for (const l of labs) {
      for (const r of l.strategies) {
        const files = renderStrategyFiles(l.topology, r);
        const readme = files.find((f) => f.path === README_PATH)!.content;
        for (const f of files.filter((x) => x.path !== README_PATH)) expect(readme, `${l.name} ${r.id} ${f.path}`).toContain(f.path);
        expect(readme).toContain(`talosctl gen config ${l.topology.name} ${apiEndpointUrl(l.topology, r)}`);
        const endpointLine = readme.split('\n').find((x) => x.includes('config endpoint'))!;
        expect(endpointLine).not.toContain(l.topology.vip);
        expect(endpointLine).toContain(l.topology.nodes[0]!.ip);
      }
    }
  });

  it('every Talos patch is plain YAML with a comment saying what it is for', () => {
    for (const l of labs) {
      for (const r of l.strategies) {
        for (const f of renderStrategyFiles(l.topology, r).filter((x) => x.kind === 'talos-patch')) {
          expect(f.content.startsWith('#'), f.path).toBe(true);
          for (const d of parseAllDocuments(f.content)) expect(d.errors, f.path).toEqual([]);
        }
      }
    }
  });
});
