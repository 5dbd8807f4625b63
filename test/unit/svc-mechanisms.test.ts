/**
 * Service side, pure parts: base components, kube-proxy's nftables rendering and endpoint
 * readiness, MetalLB's announcer choice and eligibility, what each mechanism renders (sim plan and
 * real-cluster manifests), and the expected-outage bands from the configured timers.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { loadLab, REPO_ROOT } from '../../src/model/load.js';
import type { StrategyRef, Topology } from '../../src/model/types.js';
import { svcBaseComponents } from '../../src/emulation/base-svc.js';
import { EndpointReadiness, renderKubeProxyNft, usableEndpoints, type KubeProxyService } from '../../src/emulation/kube-proxy.js';
import { l2Announcer, l2Candidates, l2Order, memberlistDetection, memberlistTimers, metallbL2 } from '../../src/strategies/metallb-l2/index.js';
import { metallbServes } from '../../src/strategies/metallb/common.js';
import { suspicionTimeoutMs } from '../../src/emulation/memberlist.js';
import { bgpAnnouncers, metallbBgp } from '../../src/strategies/metallb-bgp/index.js';
import { ciliumBgp, CILIUM_LB_CLASS } from '../../src/strategies/cilium-bgp/index.js';
import { SVC_IDS, mechanism } from '../../src/strategies/registry.js';
import { ctxOf } from '../helpers/roles.js';

const topo = (name: string): Topology => loadLab(name, { repoRoot: REPO_ROOT }).topology;
const ref = (svc: StrategyRef['svc'], options: StrategyRef['options'] = {}): StrategyRef => ({ id: `haproxy+${svc}`, cp: 'haproxy', svc, options });
const ctx = (t: Topology, svc: StrategyRef['svc'], options: StrategyRef['options'] = {}) => ctxOf(t, ref(svc, options));
const docsOf = (content: string) => parseAllDocuments(content).map((d) => d.toJS() as { kind: string; apiVersion: string; metadata: { name: string }; spec: Record<string, any> });

describe('svcBaseComponents', () => {
  it('smb: echo on the nodes that run workloads, kube-proxy on every node', () => {
    const t = topo('smb');
    const c = svcBaseComponents(t);
    expect(Object.keys(c).sort()).toEqual(t.nodes.map((n) => n.name).sort());
    for (const n of t.nodes) {
      const kinds = c[n.name]!.map((s) => s.kind);
      expect(kinds).toEqual(n.runsWorkloads ? ['echo', 'kube-proxy'] : ['kube-proxy']);
    }
    expect(c.w1![0]!.config).toEqual({ port: 8080, streamPort: 9000 });
    const kp = c.cp1!.find((s) => s.kind === 'kube-proxy')!.config as { endpoints: { node: string }[]; services: KubeProxyService[] };
    expect(kp.endpoints.map((e) => e.node)).toEqual(['w1', 'w2']);
    expect(kp.services.map((s) => `${s.name}:${s.externalTrafficPolicy}`)).toEqual(['default/web:Cluster', 'default/web-local:Local']);
  });

  it('minecraft: the single control plane runs the pod', () => {
    const c = svcBaseComponents(topo('minecraft'));
    expect(c.cp1!.map((s) => s.kind)).toEqual(['echo', 'kube-proxy']);
  });
});

describe('kube-proxy nftables rendering', () => {
  const services: KubeProxyService[] = [
    { name: 'default/web', ip: '10.0.0.192', port: 80, targetPort: 8080, streamPort: 9000, externalTrafficPolicy: 'Cluster' },
    { name: 'default/web-local', ip: '10.0.0.193', port: 80, targetPort: 8080, streamPort: 9000, externalTrafficPolicy: 'Local' },
  ];
  const endpoints = [
    { node: 'w1', ip: '10.0.0.14', terminating: false },
    { node: 'w2', ip: '10.0.0.15', terminating: false },
  ];

  it('Cluster: random DNAT over every ready endpoint + masquerade mark; Local: only the local pod, no mark', () => {
    const nft = renderKubeProxyNft({ node: 'w1', nodeIp: '10.0.0.14', services, endpoints });
    // the table is kept and flushed (its NAT hooks stay registered), never deleted and re-created
    expect(nft.startsWith('table ip kube-proxy\nflush table ip kube-proxy\ntable ip kube-proxy {')).toBe(true);
    expect(nft).not.toMatch(/delete table/);
    expect(nft).toContain('ip daddr 10.0.0.192 tcp dport 80 counter meta mark set meta mark | 0x4000 dnat ip to numgen random mod 2 map { 0 : 10.0.0.14 . 8080, 1 : 10.0.0.15 . 8080 }');
    expect(nft).toContain('ip daddr 10.0.0.192 tcp dport 9000 counter meta mark set meta mark | 0x4000 dnat ip to numgen random mod 2 map { 0 : 10.0.0.14 . 9000, 1 : 10.0.0.15 . 9000 }');
    expect(nft).toContain('ip daddr 10.0.0.193 tcp dport 80 counter dnat ip to 10.0.0.14:8080');
    expect(nft).toMatch(/meta mark & 0x4000 == 0x4000 oifname != "lo" masquerade/);
    expect(nft).toMatch(/snat ip to 10\.0\.0\.14/);
    expect(nft).not.toMatch(/drop|reject/);
  });

  it('a node without a local pod drops Local traffic; no endpoint at all rejects Cluster traffic', () => {
    const cp = renderKubeProxyNft({ node: 'cp1', nodeIp: '10.0.0.11', services, endpoints });
    expect(cp).toContain('ip daddr 10.0.0.193 tcp dport { 80, 9000 } counter drop');
    expect(cp).toContain('dnat ip to numgen random mod 2');
    const none = renderKubeProxyNft({ node: 'cp1', nodeIp: '10.0.0.11', services, endpoints: [] });
    expect(none).toContain('ip daddr 10.0.0.192 tcp dport { 80, 9000 } counter reject');
    expect(none).not.toContain('dnat');
  });
});

describe('endpoint readiness', () => {
  const eps = [
    { node: 'w1', ip: '1' },
    { node: 'w2', ip: '2' },
    { node: 'w3', ip: '3' },
  ];
  const names = (r: EndpointReadiness, now: number) => r.endpoints(now).map((e) => `${e.node}${e.terminating ? '~' : ''}`);

  it('terminating → still serving, stopped → gone; a silent node at the lifecycle pass grace after the pass that saw its last renewal; back at the pass that sees a new one', () => {
    const grace = 50_000;
    const r = new EndpointReadiness('w1', eps, grace, 3000, 0, 4);
    expect(names(r, 0)).toEqual(['w1', 'w2', 'w3']);
    r.pod('w2', 'terminating', 100);
    expect(names(r, 100)).toEqual(['w1', 'w2~', 'w3']);
    r.pod('w2', 'stopped', 200);
    expect(names(r, 200)).toEqual(['w1', 'w3']);
    // w3 renews its Lease at 1000 and then goes silent; w2's node keeps renewing and heart-beating
    r.heartbeat('w3', 1000, 1000);
    const w2Renews = (from: number, to: number) => {
      for (let t = from; t <= to; t += 1000) r.heartbeat('w2', t, t);
    };
    // passes every 5 s: the pass at 5000 sees w3's renewal, so w3 is declared at the pass at 5000 + grace
    for (let t = 5000; t < 5000 + grace; t += 5000) {
      w2Renews(t - 4000, t);
      expect(r.pass(t)).toEqual([]);
      expect(names(r, t)).toEqual(['w1', 'w3']);
    }
    w2Renews(5000 + grace - 4000, 5000 + grace);
    expect(r.pass(5000 + grace)).toEqual(['w3']);
    expect(names(r, 5000 + grace)).toEqual(['w1']);
    // w3 renews again: ready at the next pass; w2's pod starts again: ready at once
    r.heartbeat('w3', 57_000, 57_000);
    expect(names(r, 57_000)).toEqual(['w1']);
    r.pod('w2', 'ready', 57_000);
    expect(names(r, 57_000)).toEqual(['w1', 'w2']);
    w2Renews(58_000, 60_000);
    expect(r.pass(60_000)).toEqual(['w3']);
    expect(names(r, 60_000)).toEqual(['w1', 'w2', 'w3']);
  });

  it('a node that hears nobody keeps its last view (it is the one cut off), and counts afresh once back', () => {
    const r = new EndpointReadiness('w1', eps, 50_000, 3000, 0, 4);
    expect(r.isolated(2999)).toBe(false);
    expect(r.isolated(60_000)).toBe(true);
    for (let t = 5000; t <= 60_000; t += 5000) expect(r.pass(t)).toEqual([]);
    expect(names(r, 60_000)).toEqual(['w1', 'w2', 'w3']);
    // back at 61 s: only w2 is heard again; the others' grace restarted at the last isolated pass (60 s)
    r.heartbeat('w2', 61_000, 61_000);
    r.heartbeat('w2', 64_000); // a reachability heartbeat without a new renewal
    expect(r.pass(65_000)).toEqual([]);
    for (let t = 70_000; t < 110_000; t += 5000) {
      r.heartbeat('w2', t - 1000, t - 1000);
      expect(r.pass(t)).toEqual([]);
    }
    r.heartbeat('w2', 109_000, 109_000);
    expect(r.pass(110_000)).toEqual(['w3']);
  });

  it('terminating endpoints are used only when nothing ready is left (ProxyTerminatingEndpoints)', () => {
    const svc = (etp: 'Cluster' | 'Local'): KubeProxyService => ({ name: 's', ip: '9.9.9.9', port: 80, targetPort: 8080, streamPort: 9000, externalTrafficPolicy: etp });
    const all = [
      { node: 'w1', ip: '1', terminating: true },
      { node: 'w2', ip: '2', terminating: false },
    ];
    expect(usableEndpoints(svc('Cluster'), 'w1', all).map((e) => e.node)).toEqual(['w2']);
    expect(usableEndpoints(svc('Local'), 'w1', all).map((e) => e.node)).toEqual(['w1']);
    expect(usableEndpoints(svc('Cluster'), 'w1', [all[0]!]).map((e) => e.node)).toEqual(['w1']);
    expect(usableEndpoints(svc('Local'), 'cp1', all)).toEqual([]);
  });
});

describe('MetalLB rules', () => {
  it('announcer = first node in sha256(node#ip) order among the usable ones', () => {
    const ip = '10.32.0.192';
    const nodes = ['w1', 'w2', 'cp1', 'cp2', 'cp3'];
    const byHash = [...nodes].sort((a, b) => Buffer.compare(createHash('sha256').update(`${a}#${ip}`).digest(), createHash('sha256').update(`${b}#${ip}`).digest()));
    expect(l2Order(ip, nodes)).toEqual(byHash);
    expect(l2Announcer(ip, nodes)).toBe(byHash[0]);
    // the winner dies → the next in the same order
    expect(l2Announcer(ip, nodes.filter((n) => n !== byHash[0]))).toBe(byHash[1]);
    expect(l2Announcer(ip, [])).toBeNull();
    // different IPs spread over nodes (the order depends on the IP)
    const winners = new Set(topo('smb').pool.addresses.map((a) => l2Announcer(a, nodes)));
    expect(winners.size).toBeGreaterThan(1);
  });

  it('eligibility: control planes excluded by the label unless removed; Local needs a pod; L2 only on the pool LAN', () => {
    const smb = topo('smb');
    const [web, local] = smb.services;
    expect(l2Candidates(smb, web!)).toEqual(['w1', 'w2']);
    expect(l2Candidates({ ...smb, removeExcludeLbLabel: true }, web!)).toEqual(['cp1', 'cp2', 'cp3', 'w1', 'w2']);
    expect(l2Candidates({ ...smb, removeExcludeLbLabel: true }, local!)).toEqual(['w1', 'w2']);
    const ent = topo('enterprise');
    expect(l2Candidates(ent, ent.services[0]!)).toEqual(ent.nodes.filter((n) => n.rack === 'rack1' && n.role === 'worker').map((n) => n.name));
    expect(l2Candidates(topo('minecraft'), topo('minecraft').services[0]!)).toEqual(['cp1']);
    expect(bgpAnnouncers(ent, ent.services[0]!)).toHaveLength(30);
  });

  it('MetalLB serves only class-less Services; Cilium its own class too', () => {
    const s = topo('smb').services[0]!;
    expect(metallbServes(s)).toBe(true);
    expect(metallbServes({ ...s, loadBalancerClass: 'kube-vip.io/kube-vip-class' })).toBe(false);
    const t = topo('smb');
    t.services = [{ ...t.services[0]!, loadBalancerClass: CILIUM_LB_CLASS }, t.services[1]!];
    const l2 = metallbL2.svc!.render(ctx(t, 'metallb-l2')).sim!.components!.w1![0]!.config as { services: { ip: string }[] };
    expect(l2.services.map((x) => x.ip)).toEqual([t.services[1]!.ip]);
    const cil = ciliumBgp.svc!.render(ctx(t, 'cilium-bgp')).sim!.components!.w1![0]!.config as { services: { ip: string }[] };
    expect(cil.services.map((x) => x.ip)).toEqual(t.services.map((x) => x.ip));
  });

  it('memberlist suspicion timeout = mult × max(1, log10(n)) × interval', () => {
    expect(suspicionTimeoutMs(4, 1, 1000)).toBe(4000);
    expect(suspicionTimeoutMs(4, 5, 1000)).toBe(4000);
    expect(suspicionTimeoutMs(4, 100, 1000)).toBe(8000);
    const d = memberlistDetection(5, memberlistTimers(topo('smb')));
    expect(d.k).toBe(2);
    expect(d.maxTimeoutMs).toBe(24_000);
    expect(memberlistDetection(3, memberlistTimers(topo('smb'))).k).toBe(0);
  });
});

describe('metallb-l2 mechanism', () => {
  it('renders a speaker on every node (memberlist over all of them), no BGP speakers, valid manifests', () => {
    const t = topo('smb');
    const r = metallbL2.svc!.render(ctx(t, 'metallb-l2'));
    expect(Object.keys(r.sim!.components!).sort()).toEqual(t.nodes.map((n) => n.name).sort());
    expect(r.sim!.speakers ?? {}).toEqual({});
    const cfg = r.sim!.components!.cp1![0]!.config as { mode: string; speakers: unknown[]; services: { candidates: string[] }[]; memberlist: { probeIntervalMs: number } };
    expect(cfg.mode).toBe('l2');
    expect(cfg.speakers).toHaveLength(5);
    expect(cfg.services[0]!.candidates).toEqual(['w1', 'w2']);
    expect(cfg.memberlist.probeIntervalMs).toBe(t.timers.metallb.probeIntervalMs);
    const docs = docsOf(r.files![0]!.content);
    expect(docs.map((d) => `${d.apiVersion} ${d.kind}`)).toEqual(['metallb.io/v1beta1 IPAddressPool', 'metallb.io/v1beta1 L2Advertisement']);
    expect(docs[0]!.spec.addresses).toEqual([t.pool.cidr]);
    expect(docs[1]!.spec.ipAddressPools).toEqual([t.pool.name]);
    expect(docs[1]!.spec.nodeSelectors).toBeUndefined();
    // enterprise: the advertisement is limited to the pool's rack
    const ent = topo('enterprise');
    const entDocs = docsOf(metallbL2.svc!.render(ctx(ent, 'metallb-l2')).files![0]!.content);
    expect(entDocs[1]!.spec.nodeSelectors[0].matchExpressions[0].values).toHaveLength(15);
  });

  it('bands from the timers: crash = memberlist detection + takeover; graceful sub-second; none without a second candidate', () => {
    const t = topo('smb');
    const crash = metallbL2.svc!.expectedOutage('crash', ctx(t, 'metallb-l2'))!;
    expect(crash.min).toBe(4500); // ack timeout 0.5 s + suspicion 4 s
    expect(crash.max).toBeGreaterThan(10_000);
    expect(crash.max).toBeLessThan(13_000);
    expect(crash.basis).toMatch(/memberlist/);
    // halving the probe interval halves the band
    const fast = { ...t, timers: { ...t.timers, metallb: { ...t.timers.metallb, probeIntervalMs: 500, probeTimeoutMs: 250 } } };
    const crashFast = metallbL2.svc!.expectedOutage('crash', ctx(fast, 'metallb-l2'))!;
    expect(crashFast.min).toBe(2250);
    expect(crashFast.max).toBeLessThan(crash.max);
    const graceful = metallbL2.svc!.expectedOutage('graceful-shutdown', ctx(t, 'metallb-l2'))!;
    expect(graceful.min).toBe(0);
    expect(graceful.max).toBeLessThanOrEqual(2000);
    expect(metallbL2.svc!.expectedOutage('freeze', ctx(t, 'metallb-l2'))!.min).toBe(0);
    const garp = metallbL2.svc!.expectedOutage('garp-ignored', ctx(t, 'metallb-l2'))!;
    expect(garp.max).toBeGreaterThan(crash.max + 45_000);
    expect(metallbL2.svc!.expectedOutage('baseline', ctx(t, 'metallb-l2'))).toBeNull();
    expect(metallbL2.svc!.expectedOutage('crash', ctx(topo('minecraft'), 'metallb-l2'))).toBeNull();
    expect(metallbL2.svc!.drillIssue!('node-leave')).toMatch(/BGP/);
    expect(metallbL2.svc!.drillIssue!('crash')).toBeNull();
  });
});

describe('metallb-bgp mechanism', () => {
  it('announcing nodes get an FRR speaker owned by metallb with the BGP timers; every node runs the speaker agent', () => {
    const t = topo('smb');
    const r = metallbBgp.svc!.render(ctx(t, 'metallb-bgp'));
    expect(Object.keys(r.sim!.speakers!).sort()).toEqual(['w1', 'w2']);
    const sp = r.sim!.speakers!.w1!;
    expect(sp.owner).toBe('metallb');
    expect(sp.staticPrefixes).toEqual([]);
    expect(sp.frrConf).toContain(`timers ${t.timers.bgp.keepaliveS} ${t.timers.bgp.holdS}`);
    expect(sp.frrConf).not.toContain('bfd');
    expect(Object.keys(r.sim!.components!)).toHaveLength(5);
    expect((r.sim!.components!.w1![0]!.config as { services: { ip: string }[] }).services.map((s) => s.ip)).toEqual(t.services.map((s) => s.ip));
    expect((r.sim!.components!.cp1![0]!.config as { services: unknown[] }).services).toEqual([]);
    const docs = docsOf(r.files![0]!.content);
    expect(docs.map((d) => d.kind)).toEqual(['IPAddressPool', 'BGPPeer', 'BGPAdvertisement']);
    const peer = docs[1]!;
    expect(peer.apiVersion).toBe('metallb.io/v1beta2');
    expect(peer.spec).toMatchObject({ myASN: 64600, peerASN: 64500, peerAddress: '10.32.0.1', holdTime: `${t.timers.bgp.holdS}s`, keepaliveTime: `${t.timers.bgp.keepaliveS}s` });
  });

  it('with BFD: the speakers and manifests carry the profile, and the crash band is the BFD detection time', () => {
    const t = topo('smb');
    const r = metallbBgp.svc!.render(ctx(t, 'metallb-bgp', { bfd: true }));
    expect(r.sim!.speakers!.w2!.frrConf).toContain('bfd profile lab');
    const docs = docsOf(r.files![0]!.content);
    expect(docs.find((d) => d.kind === 'BFDProfile')!.spec).toEqual({ receiveInterval: 300, transmitInterval: 300, detectMultiplier: 3 });
    expect(docs.find((d) => d.kind === 'BGPPeer')!.spec.bfdProfile).toBe('lab');
    const band = metallbBgp.svc!.expectedOutage('crash', ctx(t, 'metallb-bgp', { bfd: true }))!;
    expect(band).toMatchObject({ min: 600, max: 1900 });
  });

  it('bands: crash = hold time, graceful = withdraw, node churn ≈ 0; L2-only drills do not apply', () => {
    const t = topo('smb');
    const hold = t.timers.bgp.holdS * 1000;
    const crash = metallbBgp.svc!.expectedOutage('crash', ctx(t, 'metallb-bgp'))!;
    expect(crash).toMatchObject({ min: hold - t.timers.bgp.keepaliveS * 1000, max: hold + 1000 });
    expect(metallbBgp.svc!.expectedOutage('graceful-shutdown', ctx(t, 'metallb-bgp'))).toMatchObject({ min: 0, max: 2000 });
    expect(metallbBgp.svc!.expectedOutage('node-leave', ctx(t, 'metallb-bgp'))!.basis).toMatch(/reset/);
    expect(metallbBgp.svc!.drillIssue!('garp-ignored')).toMatch(/gratuitous ARP/);
    expect(metallbBgp.svc!.drillIssue!('node-join')).toBeNull();
  });

  it('enterprise: one BGPPeer per ToR with node selectors; speakers peer with their own rack’s ToR', () => {
    const t = topo('enterprise');
    const r = metallbBgp.svc!.render(ctx(t, 'metallb-bgp'));
    const peers = docsOf(r.files![0]!.content).filter((d) => d.kind === 'BGPPeer');
    expect(peers.map((p) => p.spec.peerAddress).sort()).toEqual(['10.33.1.1', '10.33.2.1', '10.33.3.1']);
    expect(peers.every((p) => p.spec.nodeSelectors[0].matchExpressions[0].values.length >= 10)).toBe(true);
    expect(r.sim!.speakers!.w30!.frrConf).toContain('neighbor 10.33.3.1 remote-as 65103');
  });
});

describe('cilium-bgp mechanism', () => {
  it('uses Cilium’s own timers (hold = the smaller of router and Cilium), no BFD', () => {
    const t = topo('smb');
    const c = { ...t, timers: { ...t.timers, cilium: { keepaliveS: 1, holdS: 3, connectRetryS: 5 } } };
    const r = ciliumBgp.svc!.render(ctx(c, 'cilium-bgp', { bfd: true }));
    expect(Object.keys(r.sim!.speakers!).sort()).toEqual(['w1', 'w2']);
    expect(r.sim!.speakers!.w1!.owner).toBe('cilium');
    expect(r.sim!.speakers!.w1!.frrConf).toContain('timers 1 3');
    expect(r.sim!.speakers!.w1!.frrConf).not.toContain('bfd');
    expect(r.sim!.components!.w1![0]!).toMatchObject({ kind: 'bgp-services', name: 'cilium' });
    const band = ciliumBgp.svc!.expectedOutage('crash', ctx(c, 'cilium-bgp', { bfd: true }))!;
    expect(band).toMatchObject({ min: 2000, max: 4000 });
    const docs = docsOf(r.files![0]!.content);
    expect(docs.map((d) => d.kind)).toEqual(['CiliumLoadBalancerIPPool', 'CiliumBGPClusterConfig', 'CiliumBGPPeerConfig', 'CiliumBGPAdvertisement']);
    expect(docs[2]!.spec.timers).toEqual({ connectRetryTimeSeconds: 5, holdTimeSeconds: 3, keepAliveTimeSeconds: 1 });
    expect(docs[1]!.spec.bgpInstances[0].peers[0]).toMatchObject({ peerASN: 64500, peerAddress: '10.32.0.1', peerConfigRef: { name: 'lab-peer' } });
    expect(docs[3]!.metadata).toMatchObject({ labels: { advertise: 'bgp' } });
  });
});

describe('service mechanisms in the registry', () => {
  it('every service id has a svc role with its own id', () => {
    expect([...SVC_IDS].sort()).toEqual(['cilium-bgp', 'cilium-l2', 'kube-vip-arp', 'kube-vip-bgp', 'metallb-bgp', 'metallb-l2']);
    for (const id of SVC_IDS) {
      const m = mechanism(id);
      expect(m.svc!.id).toBe(id);
      expect(m.svc!.kind).toBe('svc');
    }
  });
});
