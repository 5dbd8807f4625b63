import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync, mkdirSync, copyFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadLab, loadTopology, labNames, REPO_ROOT } from '../../src/model/load.js';
import * as A from '../../src/model/address.js';
import type { Lab, Topology } from '../../src/model/types.js';
import { timerIssues, DEFAULT_TIMERS } from '../../src/model/timer-groups.js';
import { useTempDirs } from '../helpers/tmp.js';

const mkTemp = useTempDirs();

function allHosts(t: Topology) {
  return [...t.nodes, ...t.routers, ...t.clients, ...(t.loadBalancer ? [t.loadBalancer] : [])];
}

/** Invariants every resolved lab must satisfy, whatever its shape. */
function checkInvariants(lab: Lab) {
  const t = lab.topology;
  const hosts = allHosts(t);
  // names unique across every host
  const names = hosts.map((h) => h.name);
  expect(new Set(names).size).toBe(names.length);
  // every IP unique, inside its segment, not a network/broadcast address
  const ips = hosts.flatMap((h) => h.interfaces.map((i) => i.ip));
  expect(new Set(ips).size).toBe(ips.length);
  for (const h of hosts) {
    expect(h.interfaces.length).toBeGreaterThan(0);
    h.interfaces.forEach((i, k) => {
      expect(i.ifname).toBe(`eth${k}`);
      const seg = t.segments.find((s) => s.name === i.segment)!;
      expect(seg, `${h.name} ${i.segment}`).toBeDefined();
      const c = A.parseCidr(seg.cidr);
      expect(A.contains(c, i.ip)).toBe(true);
      expect(A.isNetworkOrBroadcast(c, i.ip)).toBe(false);
      expect(i.prefixLen).toBe(c.prefixLen);
    });
    if (h.gateway) expect(ips).toContain(h.gateway);
  }
  // VIP in the control planes' LAN, free
  const cpRacks = new Set(t.nodes.filter((n) => n.role === 'controlplane').map((n) => n.rack));
  expect(t.segments.some((s) => cpRacks.has(s.name) && A.contains(A.parseCidr(s.cidr), t.vip))).toBe(true);
  expect(ips).not.toContain(t.vip);
  // pool: no host, no VIP; services inside it, unique, both ETPs
  const pool = A.parseCidr(t.pool.cidr);
  for (const ip of [...ips, t.vip]) expect(A.contains(pool, ip)).toBe(false);
  expect(t.pool.addresses.length).toBeGreaterThanOrEqual(t.services.length);
  for (const s of t.services) expect(t.pool.addresses).toContain(s.ip);
  expect(new Set(t.services.map((s) => s.ip)).size).toBe(t.services.length);
  expect(t.services.some((s) => s.externalTrafficPolicy === 'Cluster')).toBe(true);
  expect(t.services.some((s) => s.externalTrafficPolicy === 'Local')).toBe(true);
  // node fields
  for (const n of t.nodes) {
    expect(n.ip).toBe(n.interfaces[0]!.ip);
    expect(n.interfaces[0]!.segment).toBe(n.rack);
    expect(n.runsWorkloads).toBe(n.role === 'worker' || t.allowSchedulingOnControlPlanes);
  }
  expect(t.nodes.some((n) => n.runsWorkloads)).toBe(true);
  // timers after every layer are consistent
  expect(timerIssues(t.timers)).toEqual([]);
  // every drill has windows; every strategy id is <cp>+<svc>
  for (const s of lab.strategies) expect(s.id).toBe(`${s.cp}+${s.svc}`);
  for (const d of lab.drills) expect(d.preMs).toBeGreaterThanOrEqual(0);
  expect(lab.quick!.drills.every((k) => lab.drills.some((d) => d.kind === k))).toBe(true);
}

describe('shipped labs', () => {
  it('labs/ holds minecraft, smb and enterprise', () => {
    expect(labNames()).toEqual(expect.arrayContaining(['minecraft', 'smb', 'enterprise']));
  });

  it('minecraft: one control plane that runs workloads, the LB-label pitfall handled', () => {
    const lab = loadLab('minecraft');
    checkInvariants(lab);
    const t = lab.topology;
    expect(t.nodes).toHaveLength(1);
    expect(t.nodes[0]).toMatchObject({ name: 'cp1', role: 'controlplane', runsWorkloads: true });
    expect(t.allowSchedulingOnControlPlanes).toBe(true);
    expect(t.removeExcludeLbLabel).toBe(true);
    expect(lab.strategies.map((s) => s.id)).toEqual(['talos-vip+metallb-l2', 'kube-vip-arp+kube-vip-arp']);
    expect(lab.strategies[0]!.recommended).toBe(true);
    expect(t.segments.map((s) => [s.name, s.kind])).toEqual([
      ['lan', 'lan'],
      ['uplink', 'uplink'],
    ]);
    expect(t.routers).toHaveLength(1);
    expect(t.routers[0]!.role).toBe('single');
    expect(t.pool.segment).toBe('lan');
  });

  it('smb: 3 control planes + 2 workers on one L2, one BGP router, the article strategies', () => {
    const lab = loadLab('smb');
    checkInvariants(lab);
    const t = lab.topology;
    expect(t.nodes.filter((n) => n.role === 'controlplane')).toHaveLength(3);
    expect(t.nodes.filter((n) => n.role === 'worker')).toHaveLength(2);
    expect(new Set(t.nodes.map((n) => n.rack))).toEqual(new Set(['lan']));
    expect(t.routers).toHaveLength(1);
    const r = t.routers[0]!;
    expect(r.bgp).toBe(true);
    expect(r.nodeSegments).toEqual(['lan']);
    expect(r.asn).not.toBe(t.nodeAsn);
    expect(t.loadBalancer).toBeDefined();
    const ids = lab.strategies.map((s) => s.id);
    expect(ids).toEqual(['talos-vip+metallb-l2', 'kube-vip-arp+kube-vip-arp', 'kube-vip-arp+metallb-l2', 'haproxy+metallb-bgp', 'talos-vip+cilium-l2']);
    expect(ids).not.toContain('kube-vip-bgp+metallb-bgp'); // pitfall 3
    expect(lab.strategies.find((s) => s.recommended)!.id).toBe('talos-vip+metallb-l2');
    // the lab overrides BGP to keepalive 3 / hold 9; everything else stays at the documented default
    expect(t.timers.bgp).toEqual({ keepaliveS: 3, holdS: 9, connectRetryS: 120 });
    expect(t.timers.talosVip).toEqual(DEFAULT_TIMERS.talosVip);
    // nodes reach the world through the router; clients sit on the uplink behind it
    for (const n of t.nodes) expect(n.gateway).toBe(r.interfaces.find((i) => i.segment === 'lan')!.ip);
    for (const c of t.clients) expect(c.gateway).toBe(r.interfaces.find((i) => i.segment === 'uplink')!.ip);
  });

  it('enterprise: ≥5 control planes, ≥30 workers, ≥2 racks each behind its own ToR, BGP to an edge, HAProxy', () => {
    const lab = loadLab('enterprise');
    checkInvariants(lab);
    const t = lab.topology;
    expect(t.nodes.filter((n) => n.role === 'controlplane').length).toBeGreaterThanOrEqual(5);
    expect(t.nodes.filter((n) => n.role === 'worker').length).toBeGreaterThanOrEqual(30);
    const racks = t.segments.filter((s) => s.kind === 'lan');
    expect(racks.length).toBeGreaterThanOrEqual(2);
    const edge = t.routers.find((r) => r.role === 'edge')!;
    const tors = t.routers.filter((r) => r.role === 'tor');
    expect(tors).toHaveLength(racks.length);
    for (const rack of racks) {
      const tor = tors.find((r) => r.nodeSegments.includes(rack.name))!;
      expect(tor, rack.name).toBeDefined();
      expect(rack.gateway).toEqual({ router: tor.name, ip: tor.interfaces.find((i) => i.segment === rack.name)!.ip });
      for (const n of t.nodes.filter((x) => x.rack === rack.name)) expect(n.gateway).toBe(rack.gateway!.ip);
      expect(tor.peers).toEqual([{ router: edge.name, ip: edge.interfaces.find((i) => i.segment === 'fabric')!.ip, asn: edge.asn }]);
      expect(tor.asn).not.toBe(edge.asn);
    }
    expect(edge.peers.map((p) => p.router).sort()).toEqual(tors.map((r) => r.name).sort());
    expect(t.segments.map((s) => s.kind)).toEqual(expect.arrayContaining(['fabric', 'uplink']));
    expect(t.loadBalancer).toBeDefined();
    expect(lab.strategies[0]).toMatchObject({ id: 'haproxy+metallb-bgp', recommended: true });
    expect(lab.strategies.map((s) => s.id)).toEqual(['haproxy+metallb-bgp', 'haproxy+cilium-bgp', 'talos-vip+metallb-l2']);
  });

  it('the CI fixtures load with their short timers', () => {
    const smb = loadLab(resolve(REPO_ROOT, 'test/fixtures/labs/ci-smb.yaml'));
    checkInvariants(smb);
    expect(smb.topology.timers.talosVip.sessionTtlS).toBe(5);
    expect(smb.repeats).toBe(1);
    const mc = loadLab(resolve(REPO_ROOT, 'test/fixtures/labs/ci-minecraft.yaml'));
    checkInvariants(mc);
  });
});

describe('resolution details', () => {
  it('a lab path resolves its topology relative to the lab file, and names default to file names', () => {
    const dir = mkTemp('tlx-model-');
    mkdirSync(join(dir, 'nets'));
    copyFileSync(resolve(REPO_ROOT, 'topologies/smb.yaml'), join(dir, 'nets', 'office.yaml'));
    writeFileSync(join(dir, 'mylab.yaml'), 'topology: nets/office.yaml\nstrategies: [talos-vip+metallb-l2]\ndrills: [baseline, crash]\n');
    const lab = loadLab(join(dir, 'mylab.yaml'));
    expect(lab.name).toBe('mylab');
    expect(lab.file).toBe(join(dir, 'mylab.yaml'));
    expect(lab.topology.file).toBe(join(dir, 'nets', 'office.yaml'));
    expect(lab.topology.name).toBe('smb'); // the topology file names itself
    // defaults: 3 repeats, traffic profile, drill windows per kind
    expect(lab.repeats).toBe(3);
    expect(lab.traffic.probeIntervalMs).toBeLessThanOrEqual(10);
    expect(lab.drills[0]).toMatchObject({ kind: 'baseline', target: 'both', victim: 'none' });
    expect(lab.drills[1]).toMatchObject({ kind: 'crash', target: 'both', victim: 'holder' });
  });

  it('allocates the documented address plan (router .1, lb .4, nodes from .11, clients from .10)', () => {
    const t = loadTopology(resolve(REPO_ROOT, 'topologies/smb.yaml'));
    expect(t.routers[0]!.interfaces.map((i) => i.ip)).toEqual(['10.32.0.1', '10.32.100.1']);
    expect(t.loadBalancer!.ip).toBe('10.32.0.4');
    expect(t.nodes.map((n) => `${n.name}=${n.ip}`)).toEqual(['cp1=10.32.0.11', 'cp2=10.32.0.12', 'cp3=10.32.0.13', 'w1=10.32.0.14', 'w2=10.32.0.15']);
    expect(t.clients.map((c) => c.interfaces[0]!.ip)).toEqual(['10.32.100.10']);
    expect(t.services.map((s) => [s.name, s.ip, s.externalTrafficPolicy])).toEqual([
      ['web', '10.32.0.192', 'Cluster'],
      ['web-local', '10.32.0.193', 'Local'],
    ]);
  });

  it('a lab-level timer override lands in the resolved topology', () => {
    const dir = mkTemp('tlx-model-');
    writeFileSync(
      join(dir, 'fast.yaml'),
      'topology: smb\nstrategies: [kube-vip-arp+kube-vip-arp]\ndrills: [baseline]\ntimers:\n  kubeVip: { leaseDurationS: 3, renewDeadlineS: 2, retryPeriodS: 1 }\n',
    );
    const lab = loadLab(join(dir, 'fast.yaml'));
    expect(lab.topology.timers.kubeVip).toEqual({ leaseDurationS: 3, renewDeadlineS: 2, retryPeriodS: 1, arpRateMs: 3000 });
  });
});
