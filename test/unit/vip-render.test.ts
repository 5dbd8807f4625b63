/**
 * Talos VIP and kube-vip mechanisms: what they render (sim components, speakers, real-cluster
 * manifests), which Services kube-vip claims, and the outage bands derived from the timers.
 */
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { loadLab } from '../../src/model/load.js';
import { mergeTimers } from '../../src/model/timers.js';
import type { Lab, StrategyRef, Topology } from '../../src/model/types.js';
import type { MechanismContext, Role } from '../../src/strategies/types.js';
import { renderStrategy, routerBgpTimers } from '../../src/strategies/compose.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LabInputError } from '../../src/util/errors.js';
import { useTempDirs } from '../helpers/tmp.js';
import { KUBE_VIP_CLASS, claimsService, cpKubeVipServices } from '../../src/strategies/kube-vip/render.js';
import { cpOf, ctxOf, svcOf } from '../helpers/roles.js';

const talosVipMechanism = cpOf('talos-vip');
const kubeVipArpMechanism = cpOf('kube-vip-arp');
const kubeVipBgpMechanism = cpOf('kube-vip-bgp');
const kubeVipArpSvc = svcOf('kube-vip-arp');
const kubeVipBgpSvc = svcOf('kube-vip-bgp');
import type { KubeVipConfig } from '../../src/strategies/kube-vip/agent.js';
import type { TalosVipConfig } from '../../src/strategies/talos-vip/agent.js';

const mkTemp = useTempDirs();
const smb = loadLab('smb');
const minecraft = loadLab('minecraft');
const enterprise = loadLab('enterprise');

function ref(lab: Lab, id: string, options: StrategyRef['options'] = {}): StrategyRef {
  const [cp, svc] = id.split('+') as [StrategyRef['cp'], StrategyRef['svc']];
  return { id, cp, svc, options };
}
const ctx = (lab: Lab, id: string, options: StrategyRef['options'] = {}, topology: Topology = lab.topology): MechanismContext => ctxOf(topology, ref(lab, id, options));
const envOf = (pod: any): Record<string, string> => Object.fromEntries(pod.spec.containers[0].env.filter((e: any) => 'value' in e).map((e: any) => [e.name, e.value]));

describe('talos-vip render', () => {
  it('runs the operator on every control plane and puts the VIP among KubePrism upstreams', () => {
    const t = smb.topology;
    const r = talosVipMechanism.render(ctx(smb, 'talos-vip+metallb-l2'));
    const cps = t.nodes.filter((n) => n.role === 'controlplane').map((n) => n.name);
    for (const n of t.nodes) {
      const specs = r.sim!.components![n.name]!;
      const vip = specs.filter((s) => s.kind === 'talos-vip');
      expect(vip).toHaveLength(cps.includes(n.name) ? 1 : 0);
      if (vip[0]) expect(vip[0].config as unknown as TalosVipConfig).toEqual({ vip: t.vip, link: 'eth0' });
      expect(specs.find((s) => s.kind === 'kubeprism')?.config).toEqual({ clusterEndpoint: `${t.vip}:${t.apiPort}` });
    }
    expect(r.sim!.speakers).toBeUndefined();
  });
});

describe('talos-vip bands (from the configured timers)', () => {
  const c = ctx(smb, 'talos-vip+metallb-l2');
  it('graceful: the next candidate takes over at once, ≤ campaign retry + margin', () => {
    expect(talosVipMechanism.expectedOutage('graceful-shutdown', c)).toMatchObject({ min: 0, max: 2000 });
  });
  it('crash/freeze/partition: the session lease expiry, TTL − TTL/3 … TTL + etcd re-election + retry', () => {
    // 60 s TTL: ≥ 40 s; ≤ 60 + 3×1 (etcd election) + 0.5 (lessor) + 1 (retry) + 1 (margin)
    for (const d of ['crash', 'freeze', 'partition', 'vip-loss-internal'] as const) {
      const b = talosVipMechanism.expectedOutage(d, c)!;
      expect([b.min, b.max]).toEqual([40_000, 65_500]);
      expect(b.basis).toMatch(/TTL 60 s/);
    }
  });
  it('follows the timers: a 15 s TTL gives 10–20.5 s', () => {
    const t = { ...smb.topology, timers: mergeTimers(smb.topology.timers, { talosVip: { sessionTtlS: 15 } }) };
    expect(talosVipMechanism.expectedOutage('crash', ctx(smb, 'talos-vip+metallb-l2', {}, t))).toMatchObject({ min: 10_000, max: 20_500 });
  });
  it('garp-ignored: the later of the lease expiry and the router\'s neighbour entry failing', () => {
    const b = talosVipMechanism.expectedOutage('garp-ignored', c)!;
    expect(b.max).toBe(65_500); // 1.5×30 + 5 + 3×1 = 53 s < lease
    const t = { ...smb.topology, timers: mergeTimers(smb.topology.timers, { talosVip: { sessionTtlS: 6 }, etcd: { electionMs: 1000, heartbeatMs: 100 } }) };
    expect(talosVipMechanism.expectedOutage('garp-ignored', ctx(smb, 'talos-vip+metallb-l2', {}, t))!.max).toBe(55_000);
  });
  it('null for baseline and with a single control plane (no peer)', () => {
    expect(talosVipMechanism.expectedOutage('baseline', c)).toBeNull();
    expect(talosVipMechanism.expectedOutage('crash', ctx(minecraft, 'talos-vip+metallb-l2'))).toBeNull();
  });
  it('names the drills that do not apply', () => {
    expect(talosVipMechanism.drillIssue!('node-leave')).toMatch(/not announced over BGP/);
    expect(talosVipMechanism.drillIssue!('class-conflict')).toMatch(/Services/);
    expect(talosVipMechanism.drillIssue!('crash')).toBeNull();
    expect(talosVipMechanism.drillIssue!('garp-ignored')).toBeNull();
  });
});

describe('kube-vip: which Services it takes (lbClassFilterLegacy)', () => {
  const svc = smb.topology.services[0]!;
  it('class-less unless lb_class_only; a class only when it is kube-vip\'s', () => {
    expect(claimsService(svc, false)).toBe(true);
    expect(claimsService(svc, true)).toBe(false);
    expect(claimsService({ ...svc, loadBalancerClass: KUBE_VIP_CLASS }, true)).toBe(true);
    expect(claimsService({ ...svc, loadBalancerClass: 'metallb.io/metallb' }, false)).toBe(false);
  });
  it('beside MetalLB: useLoadBalancerClass true → lb_class_only, false → claims the class-less ones (pitfall 2), unset → API only', () => {
    const t = { ...smb.topology, services: [...smb.topology.services, { ...svc, name: 'kv', ip: '10.32.0.222', loadBalancerClass: KUBE_VIP_CLASS }] };
    expect(cpKubeVipServices(t, ref(smb, 'kube-vip-arp+metallb-l2', { useLoadBalancerClass: true }), svcOf('metallb-l2').family)!.services.map((s) => s.name)).toEqual(['kv']);
    expect(cpKubeVipServices(t, ref(smb, 'kube-vip-arp+metallb-l2', { useLoadBalancerClass: false }), svcOf('metallb-l2').family)!.services.map((s) => s.name)).toEqual(['web', 'web-local', 'kv']);
    expect(cpKubeVipServices(t, ref(smb, 'kube-vip-arp+metallb-l2'), svcOf('metallb-l2').family)).toBeNull();
    expect(cpKubeVipServices(t, ref(smb, 'kube-vip-arp+kube-vip-arp'), svcOf('kube-vip-arp').family)).toBeNull();
  });
});

describe('kube-vip render', () => {
  it('ARP cp: api config with lb backends on every control plane; static pod with the timers as env', () => {
    const t = smb.topology;
    const r = kubeVipArpMechanism.render(ctx(smb, 'kube-vip-arp+kube-vip-arp', { kubeVipLbEnable: true }));
    const cps = t.nodes.filter((n) => n.role === 'controlplane');
    for (const n of cps) {
      const c = r.sim!.components![n.name]!.find((s) => s.kind === 'kube-vip')!.config as unknown as KubeVipConfig;
      expect(c.api).toMatchObject({ mode: 'arp', vip: t.vip, port: 6443, link: 'eth0', leaseName: 'plndr-cp-lock', lbEnable: true });
      expect(c.api!.backends!.map((b) => b.ip)).toEqual(cps.map((x) => x.ip));
      expect(c.services).toBeUndefined();
    }
    // a DaemonSet on the control planes (in-cluster config through KubePrism), not a static pod whose kubeconfig Talos could only deliver with a reboot
    const docs = parseAllDocuments(r.files!.find((f) => f.path === 'kube-vip/kube-vip-cp.daemonset.yaml')!.content).map((d) => d.toJS());
    expect(docs.map((d) => d.kind)).toEqual(['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'DaemonSet']);
    const pod = docs[3].spec.template;
    expect(pod.spec).toMatchObject({ hostNetwork: true, serviceAccountName: 'kube-vip', nodeSelector: { 'node-role.kubernetes.io/control-plane': '' } });
    expect(pod.spec.volumes).toBeUndefined();
    expect(envOf(pod)).toMatchObject({ KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(t.kubePrismPort) });
    expect(envOf(pod).k8s_config_file).toBeUndefined();
    expect(r.files!.some((f) => f.kind === 'talos-patch')).toBe(false);
    expect(envOf(pod)).toMatchObject({
      address: t.vip,
      vip_arp: 'true',
      vip_leaderelection: 'true',
      vip_leasename: 'plndr-cp-lock',
      // the default release v1.2.3's lease defaults, 15/10/2 s (cmd/kube-vip.go@v1.1.0+)
      vip_leaseduration: '15',
      vip_renewdeadline: '10',
      vip_retryperiod: '2',
      vip_arpRate: '3000',
      cp_enable: 'true',
      svc_enable: 'false',
      lb_enable: 'true',
      lb_port: '6443',
    });
    expect(r.files!.every((f) => f.hosts!.length === cps.length)).toBe(true);
  });

  it('BGP cp: every control plane announces through a kube-vip-owned speaker; per-node manifests with its peer', () => {
    const t = smb.topology;
    const r = kubeVipBgpMechanism.render(ctx(smb, 'kube-vip-bgp+metallb-l2'));
    const cps = t.nodes.filter((n) => n.role === 'controlplane');
    expect(Object.keys(r.sim!.speakers!)).toEqual(cps.map((n) => n.name));
    for (const n of cps) {
      const sp = r.sim!.speakers![n.name]!;
      expect(sp).toMatchObject({ owner: 'kube-vip', asn: n.asn, staticPrefixes: [] });
      expect(sp.frrConf).toContain(`router bgp ${n.asn}`);
      // kube-vip's own BGP timers (keepalive 10 s, hold 30 s), not the lab's MetalLB `timers.bgp`
      expect(sp.frrConf).toContain(`timers ${t.timers.kubeVipBgp.keepaliveS} ${t.timers.kubeVipBgp.holdS}`);
      expect([t.timers.kubeVipBgp.keepaliveS, t.timers.kubeVipBgp.holdS]).toEqual([10, 30]);
      expect((r.sim!.components![n.name]![0]!.config as unknown as KubeVipConfig).api).toMatchObject({ mode: 'bgp', vip: t.vip });
      const ds = parseAllDocuments(r.files!.find((f) => f.path === 'kube-vip/kube-vip-cp.daemonset.yaml')!.content).map((d) => d.toJS()).find((d) => d.metadata.name === `kube-vip-cp-${n.name}`);
      expect(ds.spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values).toEqual([n.name]);
      const pod = ds.spec.template;
      expect(envOf(pod)).toMatchObject({
        bgp_enable: 'true',
        vip_arp: 'false',
        vip_leaderelection: 'false',
        vip_interface: 'lo',
        bgp_as: String(n.asn),
        bgp_peers: `${n.gateway}:${t.routers[0]!.asn}::false`,
        bgp_hold_time: '30',
        bgp_keepalive_interval: '10',
      });
      expect(pod.spec.containers[0].image).toBe('ghcr.io/kube-vip/kube-vip:v1.2.3');
    }
  });

  it('svc: a DaemonSet on the workload nodes only; global election unless kubeVipServicesElection', () => {
    const t = smb.topology;
    const workers = t.nodes.filter((n) => n.runsWorkloads).map((n) => n.name);
    const r = kubeVipArpSvc.render(ctx(smb, 'kube-vip-arp+kube-vip-arp'));
    expect(Object.keys(r.sim!.components!).sort()).toEqual([...workers].sort());
    const c = r.sim!.components![workers[0]!]![0]!.config as unknown as KubeVipConfig;
    expect(c.services).toMatchObject({ mode: 'arp', election: 'global', leaseName: 'plndr-svcs-lock' });
    expect(c.services!.items.map((i) => [i.name, i.externalTrafficPolicy, i.localEndpoint])).toEqual([
      ['web', 'Cluster', true],
      ['web-local', 'Local', true],
    ]);
    expect(c.api).toBeUndefined();
    const per = kubeVipArpSvc.render(ctx(smb, 'kube-vip-arp+kube-vip-arp', { kubeVipServicesElection: true }));
    expect((per.sim!.components![workers[0]!]![0]!.config as unknown as KubeVipConfig).services!.election).toBe('per-service');
    const docs = parseAllDocuments(per.files![0]!.content).map((d) => d.toJS());
    expect(docs.map((d) => d.kind)).toEqual(['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'DaemonSet']);
    const ds = docs[3];
    expect(ds.spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values).toEqual(workers);
    expect(envOf(ds.spec.template)).toMatchObject({ svc_enable: 'true', cp_enable: 'false', svc_election: 'true', vip_leaderelection: 'false' });
  });

  it('svc BGP on three racks: one DaemonSet per peer group, speakers on every workload node', () => {
    const t = enterprise.topology;
    const r = kubeVipBgpSvc.render(ctx(enterprise, 'haproxy+kube-vip-bgp'));
    const workers = t.nodes.filter((n) => n.runsWorkloads);
    expect(Object.keys(r.sim!.speakers!)).toHaveLength(workers.length);
    const ds = parseAllDocuments(r.files![0]!.content).map((d) => d.toJS()).filter((d) => d.kind === 'DaemonSet');
    expect(ds.length).toBe(new Set(workers.map((n) => n.rack)).size);
    const peers = new Set(ds.map((d) => envOf(d.spec.template).bgp_peers));
    expect(peers.size).toBe(ds.length);
  });

  it('kube-vip alone on one node: cp and svc configs merge into ONE kube-vip process (api + services)', async () => {
    const t = minecraft.topology;
    const s = { ref: ref(minecraft, 'kube-vip-arp+kube-vip-arp', { kubeVipLbEnable: true }), cp: kubeVipArpMechanism, svc: kubeVipArpSvc, conflicts: [] };
    const a = await renderStrategy(t, s);
    const node = t.nodes[0]!.name;
    const kv = a.sim.components[node]!.filter((c) => c.kind === 'kube-vip');
    expect(kv).toHaveLength(1);
    const c = kv[0]!.config as unknown as KubeVipConfig;
    expect(c.api?.vip).toBe(t.vip);
    expect(c.services?.items.map((i) => i.ip)).toEqual(t.services.map((x) => x.ip));
    // after the API server (base components first): stopped before it on a graceful shutdown
    const kinds = a.sim.components[node]!.map((c) => c.kind);
    expect(kinds.indexOf('kube-vip')).toBeGreaterThan(kinds.indexOf('apiserver'));
    expect(a.sim.components[node]!.find((c) => c.kind === 'kubeprism')!.config).toMatchObject({ clusterEndpoint: `${t.vip}:${t.apiPort}`, port: t.kubePrismPort });
  });
});

describe('kube-vip bands', () => {
  const c = ctx(smb, 'kube-vip-arp+kube-vip-arp');
  // the rules, restated: client-go JitterFactor 1.2 on retryPeriod R; lease D; ≥ v0.9 the first GARP
  // waits up to vip_arpRate G for the process-wide ARP loop (pkg/arp/arp.go), ≤ v0.8 it goes out at
  // once; 1 s margin
  const J = 1.2;
  const MARGIN = 1000;
  const bands = (D: number, R: number, G: number) => ({
    graceful: { min: 0, max: Math.round((1 + J) * R + G + MARGIN) },
    crash: { min: D - R, max: Math.round(D + 2 * (1 + J) * R + G + MARGIN) },
  });
  // smb pins nothing: kube-vip v1.2.3, 15/10/2 s, arpRate 3 s
  const v123 = bands(15_000, 2000, 3000);

  it('ARP graceful: a follower takes the released Lease at its next jittered retry, then the ARP loop announces it', () => {
    expect(smb.topology.timers.kubeVip).toMatchObject({ leaseDurationS: 15, retryPeriodS: 2, arpRateMs: 3000 });
    expect(kubeVipArpMechanism.expectedOutage('graceful-shutdown', c)).toMatchObject(v123.graceful);
    expect(kubeVipArpMechanism.expectedOutage('graceful-shutdown', c)!.basis).toMatch(/ARP loop/);
  });
  it('ARP crash: [lease − retry, lease + 2 jittered retries + the ARP loop + margin]', () => {
    for (const d of ['crash', 'freeze', 'partition'] as const) expect(kubeVipArpMechanism.expectedOutage(d, c)).toMatchObject(v123.crash);
    const t = { ...smb.topology, timers: mergeTimers(smb.topology.timers, { kubeVip: { leaseDurationS: 5, renewDeadlineS: 3, retryPeriodS: 1 } }) };
    expect(kubeVipArpMechanism.expectedOutage('crash', ctx(smb, 'kube-vip-arp+kube-vip-arp', {}, t))).toMatchObject(bands(5000, 1000, 3000).crash);
  });
  it('a lab pinning v0.8.9 gets its 5/3/1 s lease and its GARP at once: no ARP-loop term', () => {
    const t = { ...smb.topology, settings: { kubeVip: { version: 'v0.8.9' } }, timers: mergeTimers(smb.topology.timers, { kubeVip: { leaseDurationS: 5, renewDeadlineS: 3, retryPeriodS: 1 } }) };
    const old = bands(5000, 1000, 0);
    expect(kubeVipArpMechanism.expectedOutage('graceful-shutdown', ctx(smb, 'kube-vip-arp+kube-vip-arp', {}, t))).toMatchObject(old.graceful);
    expect(kubeVipArpMechanism.expectedOutage('crash', ctx(smb, 'kube-vip-arp+kube-vip-arp', {}, t))).toMatchObject(old.crash);
    const pod = parseAllDocuments(kubeVipArpMechanism.render(ctx(smb, 'kube-vip-arp+kube-vip-arp', {}, t)).files!.find((f) => f.path === 'kube-vip/kube-vip-cp.daemonset.yaml')!.content)
      .map((d) => d.toJS())
      .find((d) => d.kind === 'DaemonSet').spec.template;
    expect(pod.spec.containers[0].image).toBe('ghcr.io/kube-vip/kube-vip:v0.8.9');
  });
  it('ARP garp-ignored: bounded by the router\'s neighbour entry failing (53 s) + a resolution + margin', () => {
    expect(kubeVipArpMechanism.expectedOutage('garp-ignored', c)).toMatchObject({ min: v123.crash.min, max: 55_000 });
  });
  it('the Service side uses the same lease math (global or per-Service lease)', () => {
    expect(kubeVipArpSvc.expectedOutage('crash', c)).toMatchObject(v123.crash);
    expect(kubeVipArpSvc.expectedOutage('crash', ctx(smb, 'kube-vip-arp+kube-vip-arp', { kubeVipServicesElection: true }))!.basis).toMatch(/kubevip-web/);
  });
  it('BGP: withdraw ≈ 0 on graceful; kube-vip\'s own hold time (30 s, keepalive 10 s — not the lab\'s MetalLB timers) or BFD on a crash', () => {
    const b = ctx(smb, 'kube-vip-bgp+metallb-l2');
    expect(kubeVipBgpMechanism.expectedOutage('graceful-shutdown', b)).toMatchObject({ min: 0, max: 2000 });
    expect(kubeVipBgpMechanism.expectedOutage('crash', b)).toMatchObject({ min: 20_000, max: 31_000 }); // hold 30 s − keepalive 10 s … hold + 1 s (bgpd/zebra)
    expect(kubeVipBgpMechanism.expectedOutage('crash', ctx(smb, 'kube-vip-bgp+metallb-l2', { bfd: true }))).toMatchObject({ min: 600, max: 1900 });
    expect(kubeVipBgpSvc.expectedOutage('node-leave', ctx(smb, 'haproxy+kube-vip-bgp'))).toMatchObject({ min: 0, max: 2000 });
    expect(kubeVipBgpSvc.expectedOutage('crash', ctx(smb, 'haproxy+kube-vip-bgp'))!.basis).toMatch(/hold time at the router \(30 s negotiated/);
    // the routers are rendered with kube-vip's timers for its strategies
    expect(routerBgpTimers(smb.topology, { cp: kubeVipBgpMechanism, svc: svcOf('metallb-l2') })).toEqual(smb.topology.timers.kubeVipBgp);
    expect(routerBgpTimers(smb.topology, { cp: cpOf('haproxy'), svc: kubeVipBgpSvc })).toEqual(smb.topology.timers.kubeVipBgp);
  });
  it('BGP with BFD: the peer carries kube-vip\'s BFD field (v1.2.2+); an older release asked for BFD is refused when the lab loads', () => {
    const r = kubeVipBgpMechanism.render(ctx(smb, 'kube-vip-bgp+metallb-l2', { bfd: true }));
    const cp1 = smb.topology.nodes.find((n) => n.role === 'controlplane')!;
    const ds = parseAllDocuments(r.files!.find((f) => f.path === 'kube-vip/kube-vip-cp.daemonset.yaml')!.content).map((d) => d.toJS()).find((d) => d.metadata.name === `kube-vip-cp-${cp1.name}`);
    const { receiveMs, transmitMs, detectMultiplier } = smb.topology.timers.bfd;
    expect(envOf(ds.spec.template).bgp_peers).toBe(`${cp1.gateway}:${smb.topology.routers[0]!.asn}::false:::true;${receiveMs};${transmitMs};${detectMultiplier}`);
    const dir = mkTemp('tlx-kv-bfd-');
    const write = (name: string, body: string) => {
      writeFileSync(join(dir, name), `topology: smb\ndrills: [baseline]\n${body}`);
      return join(dir, name);
    };
    const problems = (file: string) => {
      try {
        loadLab(file);
        return [];
      } catch (e) {
        return (e as LabInputError).issues.map((i) => `${i.path}: ${i.message}`);
      }
    };
    const opt = problems(write('a.yaml', 'strategies: [{ id: kube-vip-bgp+metallb-l2, options: { bfd: true } }]\nsettings:\n  kubeVip: { version: v1.2.1 }\n'));
    expect(opt).toEqual([expect.stringMatching(/^strategies\[0\]\.options\.bfd: BFD \(options\.bfd\).*v1\.2\.2 or later.*v1\.2\.1/)]);
    const viaTimers = problems(write('b.yaml', 'strategies: [kube-vip-bgp+metallb-l2, talos-vip+metallb-bgp]\nsettings:\n  kubeVip: { version: v0.8.9 }\ntimers:\n  bfd: { enabled: true }\n'));
    expect(viaTimers).toEqual([expect.stringMatching(/^strategies\[0\]\.id: BFD \(timers\.bfd\.enabled\)/)]);
    expect(problems(write('c.yaml', 'strategies: [{ id: kube-vip-bgp+metallb-l2, options: { bfd: true } }]\nsettings:\n  kubeVip: { version: v1.2.2 }\n'))).toEqual([]);
  });
  it('drill issues', () => {
    const all: Role[] = [kubeVipArpMechanism, kubeVipBgpMechanism];
    for (const m of all) expect(m.drillIssue!('class-conflict')).toMatch(/Services/);
    expect(kubeVipArpMechanism.drillIssue!('node-join')).toMatch(/not announced over BGP/);
    expect(kubeVipBgpMechanism.drillIssue!('garp-ignored')).toMatch(/no gratuitous ARP/);
    expect(kubeVipArpSvc.drillIssue!('node-leave')).toMatch(/no ECMP/);
    expect(kubeVipBgpSvc.drillIssue!('garp-ignored')).toMatch(/no gratuitous ARP/);
    expect(kubeVipBgpSvc.drillIssue!('node-leave')).toBeNull();
  });
  it('single node: no peer, no prediction', () => {
    expect(kubeVipArpMechanism.expectedOutage('crash', ctx(minecraft, 'kube-vip-arp+kube-vip-arp'))).toBeNull();
    expect(kubeVipArpSvc.expectedOutage('crash', ctx(minecraft, 'kube-vip-arp+kube-vip-arp'))).toBeNull();
  });
});
