/** The external HAProxy: rendered config and the mechanism (render output, expected outage bands). */
import { describe, expect, it } from 'vitest';
import { loadLab, REPO_ROOT } from '../../src/model/load.js';
import type { StrategyRef, Topology } from '../../src/model/types.js';
import { renderHaproxyCfg } from '../../src/strategies/haproxy/config.js';
import { cpOf, ctxOf } from '../helpers/roles.js';

const haproxyMechanism = cpOf('haproxy');

const ref: StrategyRef = { id: 'haproxy+metallb-bgp', cp: 'haproxy', svc: 'metallb-bgp', options: {} };
const topo = (name: string) => loadLab(name, { repoRoot: REPO_ROOT }).topology;
const lines = (cfg: string) => cfg.split('\n').map((l) => l.trim());

describe('renderHaproxyCfg', () => {
  it('smb: TCP frontend on the LB address, every control plane checked over TLS on /readyz with the lab timers', () => {
    const t = topo('smb');
    const cfg = renderHaproxyCfg(t);
    const l = lines(cfg);
    expect(l).toContain(`bind ${t.loadBalancer!.ip}:6443`);
    expect(l).toContain('mode tcp');
    expect(l).toContain('balance roundrobin');
    expect(l).toContain('option httpchk GET /readyz');
    expect(l).toContain('http-check expect status 200');
    expect(l).toContain('retries 3');
    expect(l).toContain('option redispatch 1');
    // smb.yaml sets inter 1 s, fall 2, rise 2, timeout check 1 s
    expect(l).toContain('timeout check 1000ms');
    const servers = l.filter((x) => x.startsWith('server '));
    const cps = t.nodes.filter((n) => n.role === 'controlplane');
    expect(servers).toEqual(cps.map((n) => `server ${n.name} ${n.ip}:6443 check check-ssl verify none inter 1000ms fall 2 rise 2`));
    // foreground, no daemon / pid file / stats
    expect(cfg).not.toMatch(/^\s*(daemon|pidfile|stats)\b/m);
  });

  it('follows topology.timers.haproxy and the API port', () => {
    const t: Topology = structuredClone(topo('smb'));
    t.timers.haproxy = { checkIntervalMs: 3000, fall: 5, rise: 4, checkTimeoutMs: 700 };
    t.apiPort = 16443;
    const l = lines(renderHaproxyCfg(t));
    expect(l).toContain('timeout check 700ms');
    expect(l).toContain(`bind ${t.loadBalancer!.ip}:16443`);
    expect(l.filter((x) => x.startsWith('server ')).every((s) => s.endsWith(':16443 check check-ssl verify none inter 3000ms fall 5 rise 4'))).toBe(true);
  });

  it('enterprise: all five control planes, and a clear error without a load balancer', () => {
    const t = topo('enterprise');
    expect(lines(renderHaproxyCfg(t)).filter((x) => x.startsWith('server '))).toHaveLength(5);
    const noLb: Topology = { ...t, loadBalancer: undefined };
    expect(() => renderHaproxyCfg(noLb)).toThrow(/no loadBalancer/);
  });
});

describe('haproxy mechanism', () => {
  it('renders the config file and the sim plan (HAProxy on the LB host, KubePrism knows the endpoint)', () => {
    const t = topo('smb');
    const r = haproxyMechanism.render(ctxOf(t, ref));
    expect(r.files).toEqual([{ path: 'haproxy/haproxy.cfg', kind: 'config', delivery: 'lb-host', content: renderHaproxyCfg(t), hosts: ['lb'] }]);
    expect(r.sim!.daemons).toEqual([
      {
        host: t.loadBalancer!.name,
        name: 'haproxy',
        cmd: 'haproxy',
        args: ['-db', '-f', '{file:haproxy.cfg}'],
        files: { 'haproxy.cfg': renderHaproxyCfg(t) },
        check: ['haproxy', '-c', '-q', '-f', '{file:haproxy.cfg}'],
        readyAfterMs: (t.timers.haproxy.rise + 1) * t.timers.haproxy.checkIntervalMs,
      },
    ]);
    for (const n of t.nodes) expect(r.sim!.components![n.name]).toEqual([{ kind: 'kubeprism', config: { clusterEndpoint: `${t.loadBalancer!.ip}:6443` } }]);
    expect(haproxyMechanism).toMatchObject({ id: 'haproxy', kind: 'cp', traits: { l2: false, bgp: false, endpoint: 'lb-host' } });
    expect(haproxyMechanism.title).toBeTruthy();
    expect(haproxyMechanism.summary.length).toBeGreaterThan(100);
    expect(haproxyMechanism.sources.some((s) => s.includes('HAProxy 2.6'))).toBe(true);
  });

  it('expected outage bands come from inter, fall and the check connect timeout', () => {
    const t = topo('smb'); // inter 1000, fall 2, timeout check 1000; timeout connect 5000 → d = 1000
    const ctx = ctxOf(t, ref);
    expect(haproxyMechanism.expectedOutage('baseline', ctx)).toBeNull();
    expect(haproxyMechanism.expectedOutage('node-leave', ctx)).toBeNull();
    expect(haproxyMechanism.expectedOutage('graceful-shutdown', ctx)).toMatchObject({ min: 0, max: 2 * 1000 + 500 });
    // fall×d + (fall−1)×inter − 200 … fall×(inter+d) + 500
    for (const drill of ['crash', 'partition', 'freeze', 'vip-loss-internal'] as const) {
      expect(haproxyMechanism.expectedOutage(drill, ctx), drill).toMatchObject({ min: 2 * 1000 + 1000 - 200, max: 2 * (1000 + 1000) + 500 });
    }
    expect(haproxyMechanism.expectedOutage('link-flap', ctx)).toMatchObject({ min: 0, max: 4500 });

    const slow: Topology = structuredClone(t);
    slow.timers.haproxy = { checkIntervalMs: 2000, fall: 3, rise: 2, checkTimeoutMs: 500 };
    const c2 = ctxOf(slow, ref);
    const crash = haproxyMechanism.expectedOutage('crash', c2)!;
    expect(crash).toMatchObject({ min: 3 * 2000 + 2 * 2000 - 200, max: 3 * (2000 + 2000) + 500 });
    expect(crash.basis).toMatch(/fall 3/);
    expect(haproxyMechanism.expectedOutage('graceful-shutdown', c2)).toMatchObject({ min: 0, max: 3 * 2000 + 500 });
    // an inter longer than timeout connect: the connect timeout bounds each failed check
    const long: Topology = structuredClone(t);
    long.timers.haproxy = { checkIntervalMs: 8000, fall: 2, rise: 2, checkTimeoutMs: 1000 };
    expect(haproxyMechanism.expectedOutage('freeze', ctxOf(long, ref))).toMatchObject({ min: 2 * 5000 + 8000 - 200, max: 2 * (8000 + 5000) + 500 });
  });

  it('says why address-moving drills do not apply to the API endpoint', () => {
    expect(haproxyMechanism.drillIssue!('garp-ignored')).toMatch(/no address moves/);
    expect(haproxyMechanism.drillIssue!('crash')).toBeNull();
  });
});
