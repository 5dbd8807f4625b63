/**
 * report.md and the recommendation: header (provider, emulated Talos control plane, component
 * versions), unsupported pairs with their reason, per-target tables with flags, and the article
 * claims judged against the measured figures — including where they disagree.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../../src/model/load.js';
import type { Results, RunRecord } from '../../src/results/types.js';
import { buildModel } from '../../src/report/model.js';
import { recommend, type Finding } from '../../src/report/recommend.js';
import { renderMarkdown } from '../../src/report/markdown.js';
import { renderHtml } from '../../src/report/html.js';

const fixture = (name: string): Results => JSON.parse(readFileSync(join(REPO_ROOT, 'test/fixtures/results', `${name}.results.json`), 'utf8')) as Results;
const md = (r: Results) => {
  const m = buildModel(r);
  return renderMarkdown(m, recommend(m));
};
const finding = (r: Results, topic: string): Finding | undefined => recommend(buildModel(r)).findings.find((f) => f.topic === topic);
const section = (text: string, heading: string) => {
  const start = text.indexOf(heading);
  expect(start, heading).toBeGreaterThanOrEqual(0);
  const next = text.indexOf('\n## ', start + heading.length);
  return text.slice(start, next < 0 ? undefined : next);
};
const row = (text: string, ...cells: string[]) => text.split('\n').find((l) => l.startsWith('|') && cells.every((c) => l.includes(c)));
const mutate = (r: Results, pick: (x: RunRecord) => boolean, f: (x: RunRecord, i: number) => void) => {
  const copy = structuredClone(r);
  copy.runs.filter(pick).forEach(f);
  return copy;
};

describe('report.md', () => {
  const smb = fixture('smb');
  const text = md(smb);

  it('header: lab, topology, provider, emulated Talos control plane in bold with the real component versions', () => {
    expect(text.startsWith('# HA strategies compared: lab smb\n')).toBe(true);
    expect(text).toContain('**emulated Talos control plane**');
    for (const [k, v] of Object.entries(smb.provider.components)) expect(text).toContain(`${k} ${v}`);
    expect(row(text, 'Topology', 'smb: 3 control planes, 2 workers, 1 rack')).toBeTruthy();
    expect(row(text, 'Provider', 'sim')).toBeTruthy();
    expect(row(text, 'Duration', '31 min 14 s')).toBeTruthy();
  });

  it('a real-Talos provider is not called emulated', () => {
    const docker = { ...smb, provider: { name: 'docker' as const, emulated: false, components: { talos: 'v1.11.6', metallb: 'v0.15.2' } }, notes: [] };
    const t = md(docker);
    expect(t).not.toContain('emulated Talos control plane');
    expect(row(t, 'Provider', 'docker — real Talos')).toBeTruthy();
    expect(t).toContain('talos v1.11.6');
  });

  it('unsupported strategy/provider pairs appear with their reason', () => {
    const s = section(text, '### Not measured: unsupported strategy/provider pairs');
    expect(row(s, 'kube-vip-bgp+metallb-bgp', 'both want TCP port 179', '11')).toBeTruthy();
  });

  it('per target: outage median (min–max), band and the OUTSIDE flag, resets, KubePrism', () => {
    const api = section(text, '## Kubernetes API endpoint');
    expect(row(api, 'crash', 'talos-vip+metallb-l2', '52.3 s (47.9 s–58.1 s)', '40.0–62.0 s', 'inside')).toBeTruthy();
    expect(row(api, 'crash', 'kube-vip-arp+kube-vip-arp', '6.1 s (5.6 s–7.8 s)', '3.0–7.0 s', '**OUTSIDE (1/3 repeats)**')).toBeTruthy();
    // a run over its band by no more than its probing client stood still says so (host load)
    const loaded = md(mutate(smb, (x) => x.target === 'api' && x.drill === 'crash' && x.strategy === 'kube-vip-arp+kube-vip-arp' && x.withinBand === false, (x) => (x.outsideReason = 'host-load')));
    expect(row(section(loaded, '## Kubernetes API endpoint'), 'crash', 'kube-vip-arp+kube-vip-arp', "**OUTSIDE (1/3 repeats; 1 within the host's CPU stalls: host load)**")).toBeTruthy();
    // a baseline over 1 % failed is marked not clean beside its latencies; the others are clean
    const baseApi = section(text, '## Kubernetes API endpoint');
    expect(row(baseApi, 'haproxy+metallb-bgp', '| yes |')).toBeTruthy();
    const noisy = md(mutate(smb, (x) => x.target === 'api' && x.drill === 'baseline' && x.strategy === 'haproxy+metallb-bgp', (x) => (x.errors = Math.ceil((x.requests + (x.timeline ?? []).reduce((k, b) => k + b.ok + b.failed, 0)) * 0.05))));
    expect(row(section(noisy, '## Kubernetes API endpoint'), 'haproxy+metallb-bgp', 'NO: 5 % failed (over 1 %: host or lab, not the mechanism)')).toBeTruthy();
    expect(row(section(noisy, '## Kubernetes API endpoint'), 'talos-vip+metallb-l2', '| yes |')).toBeTruthy();
    // a fault that went in while the probe was still failing says so, inside or outside its band
    const unclean = md(mutate(smb, (x) => x.target === 'api' && x.drill === 'crash' && x.repeat === 0, (x) => (x.cleanBeforeFault = false)));
    const uApi = section(unclean, '## Kubernetes API endpoint');
    expect(row(uApi, 'crash', 'talos-vip+metallb-l2', 'inside (1 with the probe already failing before the fault)')).toBeTruthy();
    expect(row(uApi, 'crash', 'kube-vip-arp+kube-vip-arp', 'OUTSIDE (1/3 repeats; 1 with the probe already failing before the fault)')).toBeTruthy();
    // so does a path failing again after the undo and still failing when observation stopped
    const open = md(mutate(smb, (x) => x.target === 'api' && x.drill === 'crash' && x.repeat === 0, (x) => (x.healOutage = { outageMs: 2900, bursts: 2, failedProbes: 27, recovered: false })));
    expect(row(section(open, '## Kubernetes API endpoint'), 'crash', 'talos-vip+metallb-l2', 'inside (1 failing again after the undo when observation stopped)')).toBeTruthy();
    // KubePrism (internal) outage column on the API table
    expect(row(api, 'crash', 'talos-vip+metallb-l2', '210 ms (0 ms–340 ms)')).toBeTruthy();
    const svc = section(text, '## LoadBalancer Service');
    expect(row(svc, 'node-leave', 'haproxy+metallb-bgp', '2 (1–2) of 4 — victim 1, survivors 1 (0–1)')).toBeTruthy();
    // baseline: spread and client IP per Service
    expect(row(svc, 'talos-vip+metallb-l2', 'web-local (Local)', 'w1 100 %', 'active-passive (one node)', 'yes')).toBeTruthy();
    expect(row(svc, 'haproxy+metallb-bgp', 'web-local (Local)', 'active-active (spread)', 'yes')).toBeTruthy();
    expect(row(svc, 'talos-vip+metallb-l2', 'web (Cluster)', 'no')).toBeTruthy();
    // latency before / during / after, detect / announce / converge
    expect(api).toContain('before p50 / p99 / p99.9 ms');
    expect(row(api, 'crash', 'talos-vip+metallb-l2', '51.2 s (46.8 s–57.0 s)', '52.3 s (47.9 s–58.1 s)')).toBeTruthy();
  });

  it('every figure in the tables comes from results.json: a changed repeat changes the report', () => {
    const changed = mutate(smb, (x) => x.strategy === 'talos-vip+metallb-l2' && x.drill === 'crash' && x.target === 'api' && x.repeat === 0, (x) => (x.outageMs = 61000));
    const t = md(changed);
    expect(row(section(t, '## Kubernetes API endpoint'), 'crash', 'talos-vip+metallb-l2', '58.1 s (47.9 s–61.0 s)')).toBeTruthy();
  });

  it('recommendation: size class, network, the article’s choice and the decision table with measured figures', () => {
    const rec = section(text, '## Recommendation');
    expect(rec).toContain('Cluster size: **smb**');
    expect(rec).toContain('Network: **BGP-capable');
    expect(rec).toContain('talos-vip+metallb-l2 (Talos VIP + MetalLB, the article’s choice here): API graceful-shutdown 420 ms (380 ms–510 ms); API crash 52.3 s (47.9 s–58.1 s)');
    expect(row(rec, 'external HAProxy (API) + MetalLB/Cilium BGP (services)', 'haproxy+metallb-bgp', '2.2 s (2.0 s–2.6 s)', '8.2 s (7.6 s–8.9 s)')).toBeTruthy();
    expect(rec).toContain('API crash, median outage: haproxy+metallb-bgp 2.2 s ≤ kube-vip-arp+kube-vip-arp 6.1 s ≤ kube-vip-arp+metallb-l2 6.1 s ≤ talos-vip+metallb-l2 52.3 s.');
  });

  it('minecraft: L2 only, one node — the crash claim does not apply, BGP rows are out', () => {
    const t = md(fixture('minecraft'));
    const rec = section(t, '## Recommendation');
    expect(rec).toContain('Cluster size: **minecraft**');
    expect(rec).toContain('Network: **L2 only');
    expect(row(rec, 'Talos VIP, crash', 'one control plane, so no peer can take the VIP over', 'does not apply')).toBeTruthy();
    expect(row(rec, 'external HAProxy', 'not in this run (needs a BGP-capable network)')).toBeTruthy();
    expect(rec).toContain('Not measured in this run: near-instant graceful failover of the API VIP');
  });
});

describe('the article against the measurement', () => {
  const smb = fixture('smb');

  it('the smb fixture agrees with the article on every claim it measures', () => {
    const rec = recommend(buildModel(smb));
    expect(rec.findings.map((f) => [f.topic, f.verdict])).toEqual([
      ['Talos VIP, graceful shutdown', 'agrees'],
      ['Talos VIP, crash', 'agrees'],
      ['Talos VIP, API traffic', 'agrees'],
      ['kube-vip ARP, external HAProxy, API traffic', 'agrees'],
      ['L2 mode (MetalLB L2, kube-vip ARP), Service traffic', 'agrees'],
      ['BGP mode (ECMP), Service traffic', 'agrees'],
      ['BGP mode, node leave / join', 'agrees'],
      ['Clients that ignore gratuitous ARP', 'agrees'],
      ['KubePrism when the VIP is lost', 'agrees'],
      ['Client source IP', 'agrees'],
    ]);
  });

  it('a Talos VIP crash failover far under a minute is named as a disagreement, with the figures', () => {
    const fast = [12000, 11000, 13000];
    const r = mutate(smb, (x) => x.strategy === 'talos-vip+metallb-l2' && x.target === 'api' && x.drill === 'crash', (x, i) => (x.outageMs = fast[i]!));
    const f = finding(r, 'Talos VIP, crash')!;
    expect(f.verdict).toBe('disagrees');
    expect(f.measured[0]).toBe('talos-vip+metallb-l2: API outage 12.0 s (11.0 s–13.0 s) over 3 repeats, band 40.0–62.0 s (etcd session TTL in this run: 60 s) — faster than the article says');
    const t = md(r);
    expect(row(section(t, '## Recommendation'), 'Talos VIP, crash', '**disagrees**')).toBeTruthy();
  });

  it('an L2 Service whose ETP Local traffic spreads over nodes disagrees with "bottleneck"', () => {
    const r = mutate(smb, (x) => x.strategy === 'talos-vip+metallb-l2' && x.drill === 'baseline' && x.service === 'web-local', (x) => (x.nodeShare = { w1: 0.5, w2: 0.5 }));
    const f = finding(r, 'L2 mode (MetalLB L2, kube-vip ARP), Service traffic')!;
    expect(f.verdict).toBe('mixed');
    expect(f.measured[0]).toBe('talos-vip+metallb-l2 · web-local (ETP Local): w1 50 %, w2 50 %');
  });

  it('BGP node leave/join without resets disagrees with "connections are reset"', () => {
    const r = mutate(smb, (x) => x.drill === 'node-leave' || x.drill === 'node-join', (x) => Object.assign(x, { resets: 0, resetsOnVictim: 0, resetsOnSurvivors: 0 }));
    const f = finding(r, 'BGP mode, node leave / join')!;
    expect(f.verdict).toBe('disagrees');
    expect(f.measured[0]).toContain('haproxy+metallb-bgp node-leave: 0 of 4 long-lived connections reset');
  });

  it('sticky-ARP outages outside 30–60 s disagree; an active-passive kube-vip API disagrees with IPVS spreading', () => {
    const short = mutate(smb, (x) => x.drill === 'garp-ignored', (x) => (x.outageMs = 8000));
    expect(finding(short, 'Clients that ignore gratuitous ARP')!.verdict).toBe('disagrees');
    const ap = mutate(smb, (x) => x.drill === 'baseline' && x.target === 'api' && x.strategy.startsWith('kube-vip'), (x) => (x.nodeShare = { cp1: 1 }));
    const f = finding(ap, 'kube-vip ARP, external HAProxy, API traffic')!;
    expect(f.verdict).toBe('mixed');
    expect(f.measured).toContain('kube-vip-arp+kube-vip-arp: cp1 100 %');
  });
});

describe('report.html (static checks; the browser test is test/e2e/report-html.test.ts)', () => {
  const smb = fixture('smb');
  const m = buildModel(smb);
  const html = renderHtml(m, recommend(m));

  it('self-contained: inline SVG charts, no script, no external resource', () => {
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/\b(src|href)\s*=\s*["']?(https?:)?\/\//i);
    expect(html).not.toMatch(/@import|url\(\s*["']?https?:/i);
    const figures = html.match(/<figure class="chart" data-chart="c\d+">/g) ?? [];
    const svgs = html.match(/<svg\b/g) ?? [];
    expect(figures.length).toBeGreaterThanOrEqual(2 + 2 * 8);
    expect(svgs.length).toBe(figures.length);
  });

  it('chart ids are unique in the page (zrender’s global counters renumbered per chart)', () => {
    const ids = [...html.matchAll(/\bid="([^"]+)"/g)].map((x) => x[1]);
    expect(new Set(ids).size).toBe(ids.length);
    expect(html).not.toMatch(/\bzr\d+-/);
  });

  it('data is escaped: a hostile reason cannot inject markup', () => {
    const evil = structuredClone(smb);
    evil.strategies = evil.strategies!.map((s) => (s.supported ? s : { ...s, reason: '<img src=x onerror=alert(1)> & "q"' }));
    const mm = buildModel(evil);
    const h = renderHtml(mm, recommend(mm));
    expect(h).not.toContain('<img src=x');
    expect(h).toContain('&lt;img src=x onerror=alert(1)&gt; &amp; &quot;q&quot;');
  });
});
