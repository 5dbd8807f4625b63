/**
 * Cilium L2 announcements (`cilium-l2`), pure parts: where the announcer runs and what it contends
 * for, which Services it takes, the real-cluster manifests and helm values, the timer rules Cilium
 * rewrites, and the expected bands — computed here from the lab's timers and client-go's rule
 * (never by calling the mechanism's band function).
 */
import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { loadLab, REPO_ROOT } from '../../src/model/load.js';
import type { Timers, Topology } from '../../src/model/types.js';
import { DEFAULT_TIMERS, timerIssues } from '../../src/model/timer-groups.js';
import type { RealContext, RenderedFile } from '../../src/strategies/types.js';
import { componentModule, mechanism, SVC_IDS } from '../../src/strategies/registry.js';
import { composeStrategy, renderStrategy } from '../../src/strategies/compose.js';
import { ciliumL2, type CiliumL2Config } from '../../src/strategies/cilium-l2/index.js';
import { ctxOf } from '../helpers/roles.js';
import { useTempDirs } from '../helpers/tmp.js';

const mkTemp = useTempDirs();
const ID = 'cilium-l2';
const STRATEGY = `talos-vip+${ID}`;
const topo = (name: string): Topology => loadLab(name, { repoRoot: REPO_ROOT }).topology;
const role = ciliumL2.svc!;
const withL2Timers = (t: Topology, c: Partial<Timers['ciliumL2']>): Topology => ({ ...t, timers: { ...t.timers, ciliumL2: { ...t.timers.ciliumL2, ...c } } });
type Doc = { apiVersion: string; kind: string; metadata: Record<string, any>; spec: Record<string, any> };
const docsOf = (content: string) => parseAllDocuments(content).map((d) => d.toJS() as Doc);
const fileOf = (files: RenderedFile[] | undefined, path: string) => files?.find((f) => f.path === path);

describe('the smb lab', () => {
  it('lists talos-vip+cilium-l2, which composes without conflicts', () => {
    const lab = loadLab('smb', { repoRoot: REPO_ROOT });
    const ref = lab.strategies.find((s) => s.id === STRATEGY);
    expect(ref).toBeDefined();
    expect(ref).toMatchObject({ cp: 'talos-vip', svc: ID });
    expect(composeStrategy(ref!).conflicts).toEqual([]);
    expect(SVC_IDS).toContain(ID);
    expect(mechanism(ID).svc).toBe(role);
    expect(componentModule(ID)).toMatch(/\/cilium-l2\/agent\.(js|ts)$/);
  });

  it('accepts its timers group with the agent’s documented defaults', () => {
    expect(DEFAULT_TIMERS.ciliumL2).toEqual({ leaseDurationS: 15, renewDeadlineS: 5, retryPeriodS: 2 });
    expect(topo('smb').timers.ciliumL2).toEqual(DEFAULT_TIMERS.ciliumL2);
  });
});

describe('render', () => {
  it('smb: one announcer on each node that runs workloads, contending for one Lease per Service', () => {
    const t = topo('smb');
    const r = role.render(ctxOf(t, STRATEGY));
    const comps = r.sim!.components!;
    expect(Object.keys(comps).sort()).toEqual(['w1', 'w2']);
    for (const n of ['w1', 'w2']) {
      expect(comps[n]!.map((c) => c.kind)).toEqual([ID]);
      const cfg = comps[n]![0]!.config as unknown as CiliumL2Config;
      expect(cfg.identity).toBe(n);
      expect(cfg.link).toBe('eth0');
      expect(cfg.leaseNamespace).toBe('kube-system');
      expect(cfg.endpoints).toEqual(t.nodes.filter((x) => x.role === 'controlplane').map((x) => `http://${x.ip}:2379`));
      expect([cfg.leaseDurationMs, cfg.renewDeadlineMs, cfg.retryPeriodMs]).toEqual([15_000, 5_000, 2_000]);
      expect(cfg.services).toEqual(t.services.map((s) => ({ namespace: s.namespace, name: s.name, ip: s.ip, lease: `cilium-l2announce-${s.namespace}-${s.name}` })));
    }
    // no BGP speaker, no daemon; the composed plan keeps the base components and adds the announcer
    expect(r.sim!.speakers ?? {}).toEqual({});
    const plan = renderStrategy(t, composeStrategy({ id: STRATEGY, cp: 'talos-vip', svc: ID, options: {} })).sim;
    expect(plan.components.w1!.map((c) => c.kind)).toContain(ID);
    expect(plan.components.cp1!.map((c) => c.kind)).not.toContain(ID);
  });

  it('a control plane that runs workloads contends too, through its own etcd member first', () => {
    const t = topo('minecraft');
    const comps = role.render(ctxOf(t, STRATEGY)).sim!.components!;
    expect(Object.keys(comps)).toEqual(['cp1']);
    expect((comps.cp1![0]!.config as unknown as CiliumL2Config).endpoints[0]).toBe(`http://${t.nodes[0]!.ip}:2379`);
  });

  it('externalTrafficPolicy Local does not narrow the candidates (Cilium 1.18 ignores it)', () => {
    const t = topo('smb');
    const local = t.services.find((s) => s.externalTrafficPolicy === 'Local')!;
    const cfg = role.render(ctxOf(t, STRATEGY)).sim!.components!.w2![0]!.config as unknown as CiliumL2Config;
    expect(cfg.services.map((s) => s.ip)).toContain(local.ip);
  });
});

describe('which Services', () => {
  it('takes class-less Services and its own class, ignores any other class', () => {
    const t = topo('smb');
    const [a, b] = t.services;
    t.services = [
      { ...a!, loadBalancerClass: 'io.cilium/l2-announcer' },
      { ...b!, loadBalancerClass: 'io.cilium/bgp-control-plane' },
      { ...a!, name: 'plain', ip: '10.32.0.200' },
      { ...a!, name: 'metallb', ip: '10.32.0.201', loadBalancerClass: 'metallb.io/metallb' },
    ];
    const cfg = role.render(ctxOf(t, STRATEGY)).sim!.components!.w1![0]!.config as unknown as CiliumL2Config;
    expect(cfg.services.map((s) => s.name)).toEqual([a!.name, 'plain']);
  });

  it('claims class-less Services: beside kube-vip taking them too it is pitfall 2', () => {
    expect(role.claimsClasslessServices!({ id: STRATEGY, cp: 'talos-vip', svc: ID, options: {} })).toBe(true);
    const both = composeStrategy({ id: `kube-vip-arp+${ID}`, cp: 'kube-vip-arp', svc: ID, options: { useLoadBalancerClass: false } });
    expect(both.conflicts.some((c) => c.startsWith('pitfall 2'))).toBe(true);
    const apart = composeStrategy({ id: `kube-vip-arp+${ID}`, cp: 'kube-vip-arp', svc: ID, options: { useLoadBalancerClass: true } });
    expect(apart.conflicts).toEqual([]);
  });

  it('no Service of its classes: no announcer at all', () => {
    const t = topo('smb');
    t.services = t.services.map((s) => ({ ...s, loadBalancerClass: 'metallb.io/metallb' }));
    expect(role.render(ctxOf(t, STRATEGY)).sim!.components).toEqual({});
    expect(role.expectedOutage('crash', ctxOf(t, STRATEGY))).toBeNull();
  });
});

describe('real-cluster manifests', () => {
  // Cilium 1.18's CRD types (pkg/k8s/apis/cilium.io/v2alpha1, l2announcement_types.go and
  // lbipam_types.go): the policy's spec fields are all optional; a pool's spec is required
  const POLICY_FIELDS = ['nodeSelector', 'serviceSelector', 'loadBalancerIPs', 'externalIPs', 'interfaces'];

  it('renders the LB IPAM pool and a CiliumL2AnnouncementPolicy for the workload nodes on the pool’s LAN', () => {
    const t = topo('smb');
    const f = fileOf(role.render(ctxOf(t, STRATEGY)).files, 'cilium/l2.yaml')!;
    expect(f).toMatchObject({ kind: 'k8s-manifest', delivery: 'kubectl' });
    const [pool, policy, ...rest] = docsOf(f.content);
    expect(rest).toEqual([]);
    expect(pool).toMatchObject({ apiVersion: 'cilium.io/v2alpha1', kind: 'CiliumLoadBalancerIPPool', metadata: { name: t.pool.name } });
    expect(pool!.spec.blocks).toEqual([{ cidr: t.pool.cidr }]);
    expect(policy!.apiVersion).toBe('cilium.io/v2alpha1');
    expect(policy!.kind).toBe('CiliumL2AnnouncementPolicy');
    expect(typeof policy!.metadata.name).toBe('string');
    expect(policy!.metadata.namespace).toBeUndefined(); // cluster-scoped
    for (const k of Object.keys(policy!.spec)) expect(POLICY_FIELDS).toContain(k);
    // both IP types default to false: without loadBalancerIPs nothing would be announced
    expect(policy!.spec.loadBalancerIPs).toBe(true);
    expect(policy!.spec.interfaces).toEqual(['^eth0$']);
    for (const re of policy!.spec.interfaces as string[]) expect(() => new RegExp(re)).not.toThrow();
    expect(policy!.spec.nodeSelector).toEqual({ matchExpressions: [{ key: 'node-role.kubernetes.io/control-plane', operator: 'DoesNotExist' }] });
  });

  it('asks Talos for no kube-proxy (kube-proxy replacement) and gives it back on unapply', () => {
    const t = topo('smb');
    const files = role.render(ctxOf(t, STRATEGY)).files;
    const on = fileOf(files, 'talos/cilium-no-kube-proxy.patch.yaml')!;
    const off = fileOf(files, 'talos/unapply/cilium-no-kube-proxy.patch.yaml')!;
    expect(on).toMatchObject({ kind: 'talos-patch', delivery: 'talos' });
    expect(docsOf(on.content)).toEqual([{ cluster: { proxy: { disabled: true } } }]);
    expect(docsOf(off.content)).toEqual([{ cluster: { proxy: { disabled: false } } }]);
    expect(on.hosts!.sort()).toEqual(t.nodes.map((n) => n.name).sort());
  });

  it('installs Cilium as the CNI with kube-proxy replacement, L2 announcements, its lease timers and a sized rate limit', () => {
    const t = withL2Timers(topo('smb'), { leaseDurationS: 3, renewDeadlineS: 1, retryPeriodS: 0.2 });
    expect(role.real!.cni).toBe('cilium');
    const ctx: RealContext = { topology: t, strategy: { id: STRATEGY, cp: 'talos-vip', svc: ID, options: {} }, fileOf: (p) => p, kubectl: async () => ({ stdout: '', exitCode: 1 }) };
    const steps = role.real!.install!(ctx);
    expect(steps).toHaveLength(1);
    const argv = steps[0]!.argv;
    expect(argv.slice(0, 3)).toEqual(['helm', 'upgrade', '--install']);
    const sets = argv.flatMap((a, i) => (argv[i - 1] === '--set' ? [a] : []));
    // the doc's rule: QPS = #services / leaseRenewDeadline, never below the default 5 (burst 10)
    const qps = Math.max(5, Math.ceil(t.services.length / 1));
    expect(sets).toEqual(
      expect.arrayContaining([
        'kubeProxyReplacement=true',
        'k8sServiceHost=localhost',
        `k8sServicePort=${t.kubePrismPort}`,
        'l2announcements.enabled=true',
        'l2announcements.leaseDuration=3s',
        'l2announcements.leaseRenewDeadline=1s',
        'l2announcements.leaseRetryPeriod=200ms',
        `k8sClientRateLimit.qps=${qps}`,
        `k8sClientRateLimit.burst=${Math.max(10, 2 * qps)}`,
      ]),
    );
    expect(sets).not.toContain('kubeProxyReplacement=false');
  });

  it('finds the holder of a real cluster in the Service’s Lease (the IP is never on a link there)', async () => {
    const t = topo('smb');
    const seen: string[][] = [];
    const ctx: RealContext = {
      topology: t,
      strategy: { id: STRATEGY, cp: 'talos-vip', svc: ID, options: {} },
      fileOf: (p) => p,
      kubectl: async (args) => {
        seen.push(args);
        return { stdout: JSON.stringify({ spec: { holderIdentity: 'w2' } }), exitCode: 0 };
      },
    };
    expect(await role.real!.holders!(ctx, t.services[0]!)).toEqual(['w2']);
    expect(seen[0]).toEqual(['-n', 'kube-system', 'get', 'lease', `cilium-l2announce-${t.services[0]!.namespace}-${t.services[0]!.name}`, '-o', 'json']);
    const none = { ...ctx, kubectl: async () => ({ stdout: JSON.stringify({ spec: { holderIdentity: '' } }), exitCode: 0 }) };
    expect(await role.real!.holders!(none, t.services[0]!)).toEqual([]);
  });
});

describe('timers.ciliumL2: what Cilium’s leaseTimings() would rewrite is refused', () => {
  const issuesOf = (c: Partial<Timers['ciliumL2']>) =>
    timerIssues({ ...DEFAULT_TIMERS, ciliumL2: { ...DEFAULT_TIMERS.ciliumL2, ...c } }).filter((i) => i.fields.some((f) => f.startsWith('ciliumL2.')));

  it('the defaults and the doc’s fast example (3 s / 1 s / 200 ms) are fine', () => {
    expect(issuesOf({})).toEqual([]);
    expect(issuesOf({ leaseDurationS: 3, renewDeadlineS: 1, retryPeriodS: 0.2 })).toEqual([]);
  });

  it('lease < 1 s, renew ≥ lease, renew ≤ 1.2 × retry, zero periods and fractional leases', () => {
    expect(issuesOf({ leaseDurationS: 0.5, renewDeadlineS: 0.3, retryPeriodS: 0.1 }).map((i) => i.fields)).toEqual([['ciliumL2.leaseDurationS']]);
    expect(issuesOf({ renewDeadlineS: 15 }).map((i) => i.fields)).toEqual([['ciliumL2.renewDeadlineS', 'ciliumL2.leaseDurationS']]);
    expect(issuesOf({ renewDeadlineS: 2.4, retryPeriodS: 2 }).map((i) => i.fields)).toEqual([['ciliumL2.retryPeriodS', 'ciliumL2.renewDeadlineS']]);
    expect(issuesOf({ retryPeriodS: 0 }).map((i) => i.fields)).toEqual([['ciliumL2.retryPeriodS']]);
    expect(issuesOf({ leaseDurationS: 7.5 })[0]!.message).toMatch(/whole seconds.*7 s/);
  });

  it('a lab asking for a rewritten combination does not load; a valid override lands in the topology', () => {
    const dir = mkTemp('tlx-cilium-l2-');
    const lab = (name: string, timers: string) => {
      writeFileSync(join(dir, `${name}.yaml`), `topology: smb\nstrategies: [${STRATEGY}]\ndrills: [baseline]\ntimers:\n  ciliumL2: ${timers}\n`);
      return join(dir, `${name}.yaml`);
    };
    expect(() => loadLab(lab('bad', '{ renewDeadlineS: 20 }'))).toThrow(/ciliumL2\.renewDeadlineS/);
    expect(loadLab(lab('fast', '{ leaseDurationS: 3, renewDeadlineS: 1, retryPeriodS: 0.2 }')).topology.timers.ciliumL2).toEqual({ leaseDurationS: 3, renewDeadlineS: 1, retryPeriodS: 0.2 });
  });
});

describe('bands (from the lab’s timers and client-go’s rule)', () => {
  const J = 1.2; // client-go leaderelection JitterFactor
  const MARGIN = 1000; // ms for the address, the gratuitous ARP and the probe's recovery

  for (const timers of [DEFAULT_TIMERS.ciliumL2, { leaseDurationS: 3, renewDeadlineS: 1, retryPeriodS: 0.2 }]) {
    it(`lease ${timers.leaseDurationS} s / retry ${timers.retryPeriodS} s`, () => {
      const t = withL2Timers(topo('smb'), timers);
      const ctx = ctxOf(t, STRATEGY);
      const D = timers.leaseDurationS * 1000;
      const R = timers.retryPeriodS * 1000;
      const stall = Math.max(0, 2 * t.timers.etcd.electionMs - (D - R));
      // graceful: the Lease is released; a candidate's next retry (≤ (1+J)·R) takes it
      const g = role.expectedOutage('graceful-shutdown', ctx)!;
      expect([g.min, g.max]).toEqual([0, Math.round((1 + J) * R + MARGIN)]);
      // crash: renewed ≤ R before the fault; observed and expired each at a jittered retry
      const c = role.expectedOutage('crash', ctx)!;
      expect([c.min, c.max]).toEqual([D - R, Math.round(D + 2 * (1 + J) * R + stall + MARGIN)]);
      for (const d of ['freeze', 'partition'] as const) expect(role.expectedOutage(d, ctx)).toEqual(c);
      expect(role.expectedOutage('baseline', ctx)).toBeNull();
      expect(c.basis).toContain(`cilium-l2announce-${t.services[0]!.namespace}-${t.services[0]!.name}`);
    });
  }

  it('the default crash band sits inside the doc’s "between 10 s and 20 s" plus client-go’s jittered observation', () => {
    const c = role.expectedOutage('crash', ctxOf(topo('smb'), STRATEGY))!;
    expect(c.min).toBeGreaterThanOrEqual(10_000);
    expect(c.max).toBeGreaterThan(20_000); // the doc leaves out the candidates' retry jitter
  });

  it('a single candidate: nobody can take over, no band', () => {
    expect(role.expectedOutage('crash', ctxOf(topo('minecraft'), STRATEGY))).toBeNull();
  });

  it('drills that make no sense for an L2 Service mechanism are skipped with a reason', () => {
    expect(role.drillIssue!('node-leave')).toMatch(/L2/);
    expect(role.drillIssue!('vip-loss-internal')).toMatch(/KubePrism/);
    expect(role.drillIssue!('crash')).toBeNull();
    expect(role.drillIssue!('garp-ignored')).toBeNull();
    expect(role.traits).toEqual({ l2: true, bgp: false, spread: 'active-passive' });
    expect(role.holders).toBe('address');
    expect(role.articleClaims).toEqual(['l2-single-entry']);
  });
});
