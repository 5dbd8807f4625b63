/**
 * Per-run fidelity notes: which notes the orchestrator attaches to a run (strategy × drill ×
 * target, emulated or real nodes), that every note has its long form in docs/fidelity.md, that
 * the report shows them per run with links, and that results.json still validates with them.
 * Expected id lists are written out by hand from the notes' stated scope.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadLab, REPO_ROOT } from '../../src/model/load.js';
import type { DrillKind, StrategyRef, Topology } from '../../src/model/types.js';
import { composeStrategy } from '../../src/strategies/compose.js';
import { allFidelityNotes, FIDELITY_DOC, fidelityNotes } from '../../src/strategies/fidelity.js';
import type { Results } from '../../src/results/types.js';
import { validateResults } from '../../src/results/validate.js';
import { buildModel } from '../../src/report/model.js';
import { recommend } from '../../src/report/recommend.js';
import { renderMarkdown } from '../../src/report/markdown.js';
import { renderHtml } from '../../src/report/html.js';
import { renderSummary } from '../../src/report/summary.js';
import { renderCsv } from '../../src/report/csv.js';
import { fidelityDocFrom } from '../../src/report/writer.js';

const smb: Topology = loadLab('smb', { repoRoot: REPO_ROOT }).topology;

function ref(id: string, options: StrategyRef['options'] = {}): StrategyRef {
  const [cp, svc] = id.split('+') as [string, string];
  return { id, cp, svc, options };
}

function ids(strategy: string, kind: DrillKind, target: 'api' | 'service', opts: { emulated?: boolean; options?: StrategyRef['options']; topology?: Topology } = {}): string[] {
  const s = composeStrategy(ref(strategy, opts.options));
  return fidelityNotes(s, { kind, target }, { topology: opts.topology ?? smb, emulated: opts.emulated ?? true }).map((n) => n.id);
}

describe('fidelity notes attached to a run', () => {
  it('an API crash under Talos VIP gets the VIP notes and the kit notes for every run, not the Service ones', () => {
    expect(ids('talos-vip+metallb-l2', 'crash', 'api')).toEqual(['talos-vip-etcd-version', 'kit-client-event-loop', 'kit-veth-latency']);
  });

  it('a Service crash under MetalLB L2 gets the speaker notes, the pod and probe notes and the endpoint chain, not the VIP ones', () => {
    expect(ids('talos-vip+metallb-l2', 'crash', 'service')).toEqual([
      'metallb-l2-memberlist',
      'metallb-l2-address-on-lo',
      'kit-echo-event-loop',
      'kit-client-event-loop',
      'kit-probe-source-ports',
      'kit-veth-latency',
      'kit-node-lifecycle',
    ]);
  });

  it('the graceful drill gets the shutdown-order note, the crash-only notes stay away', () => {
    const g = ids('talos-vip+metallb-l2', 'graceful-shutdown', 'api');
    expect(g).toContain('talos-vip-shutdown-order');
    expect(g).not.toContain('talos-vip-etcd-version');
    expect(ids('talos-vip+metallb-l2', 'graceful-shutdown', 'service')).not.toContain('kit-probe-source-ports');
  });

  it('a baseline gets only what shapes steady-state figures', () => {
    expect(ids('talos-vip+metallb-l2', 'baseline', 'service')).toEqual(['kit-echo-event-loop', 'kit-veth-latency']);
    expect(ids('talos-vip+metallb-l2', 'baseline', 'api')).toEqual(['kit-veth-latency']);
  });

  it('on real Talos nodes only the notes about the lab’s own client remain', () => {
    expect(ids('talos-vip+metallb-l2', 'crash', 'service', { emulated: false })).toEqual(['kit-client-event-loop', 'kit-probe-source-ports']);
    expect(ids('talos-vip+metallb-l2', 'baseline', 'api', { emulated: false })).toEqual([]);
  });

  it('notes that depend on the strategy’s options follow them (BFD, lb_enable)', () => {
    expect(ids('kube-vip-bgp+metallb-bgp', 'crash', 'api', { options: { bfd: true } })).toContain('kube-vip-bfd-unit');
    expect(ids('kube-vip-bgp+metallb-bgp', 'crash', 'api', { options: { bfd: false } })).not.toContain('kube-vip-bfd-unit');
    expect(ids('kube-vip-arp+metallb-l2', 'crash', 'api', { options: { kubeVipLbEnable: true } })).toContain('kube-vip-ipvs');
    expect(ids('kube-vip-arp+metallb-l2', 'crash', 'api')).not.toContain('kube-vip-ipvs');
    expect(ids('kube-vip-arp+metallb-l2', 'crash', 'service', { options: { kubeVipLbEnable: true } })).not.toContain('kube-vip-ipvs');
  });

  it('a note both roles of one family carry is listed once, and only for its own target', () => {
    const svc = ids('kube-vip-arp+kube-vip-arp', 'crash', 'service');
    expect(svc.filter((x) => x === 'kube-vip-lease-transport')).toHaveLength(1);
    expect(new Set(svc).size).toBe(svc.length);
    // the ECMP router note is on BGP roles only, on their own target
    expect(ids('haproxy+metallb-bgp', 'node-leave', 'service')).toContain('bgp-linux-router');
    expect(ids('haproxy+metallb-bgp', 'crash', 'api')).not.toContain('bgp-linux-router');
    expect(ids('talos-vip+metallb-l2', 'crash', 'service')).not.toContain('bgp-linux-router');
  });

  it('every note has its long form in docs/fidelity.md under its id, and ids are unique per text', () => {
    const doc = readFileSync(join(REPO_ROOT, FIDELITY_DOC), 'utf8');
    const notes = allFidelityNotes();
    expect(notes.length).toBeGreaterThan(10);
    const missing = notes.filter((n) => !doc.includes(`<a id="${n.id}"></a>`)).map((n) => n.id);
    expect(missing).toEqual([]);
    for (const n of notes) {
      expect(n.id).toMatch(/^[a-z0-9-]+$/);
      expect(n.text.length).toBeGreaterThan(40);
    }
  });
});

describe('the report shows each run’s notes', () => {
  const base = JSON.parse(readFileSync(join(REPO_ROOT, 'test/fixtures/results/smb.results.json'), 'utf8')) as Results;
  const withNotes = (): Results => {
    const r = structuredClone(base);
    for (const run of r.runs) {
      if (run.supported === false) continue;
      const s = composeStrategy(ref(run.strategy));
      run.fidelity = fidelityNotes(s, { kind: run.drill as DrillKind, target: run.target }, { topology: smb, emulated: true });
    }
    return r;
  };

  it('results.json with the notes still validates against the contract', () => {
    const r = withNotes();
    expect(r.runs.some((x) => (x.fidelity?.length ?? 0) > 0)).toBe(true);
    expect(validateResults(r)).toEqual({ valid: true, errors: [] });
  });

  it('report.md lists the notes per run with links into the doc, and each text once', () => {
    const m = buildModel(withNotes());
    const md = renderMarkdown(m, recommend(m), { fidelityDoc: '../docs/fidelity.md' });
    expect(md).toContain('## Fidelity notes per run');
    const section = md.slice(md.indexOf('## Fidelity notes per run'));
    const row = section.split('\n').find((l) => l.startsWith('| service | crash | haproxy+metallb-bgp'));
    expect(row).toBeDefined();
    expect(row).toContain('[bgp-static-announcements](../docs/fidelity.md#bgp-static-announcements)');
    expect(row).toContain('[kit-probe-source-ports](../docs/fidelity.md#kit-probe-source-ports)');
    expect(row).not.toContain('talos-vip');
    expect(section.split('\n').filter((l) => l.startsWith('- **kit-veth-latency**:'))).toHaveLength(1);
  });

  it('report.html has the table, in-page anchors and links to the doc', () => {
    const m = buildModel(withNotes());
    const html = renderHtml(m, recommend(m), { fidelityDoc: '../docs/fidelity.md' });
    expect(html).toContain('<section id="fidelity">');
    expect(html).toContain('<a href="#fidelity">Fidelity</a>');
    expect(html).toContain('<dt id="fidelity-kit-veth-latency"><a href="../docs/fidelity.md#kit-veth-latency">kit-veth-latency</a></dt>');
    expect(html).toMatch(/<tr><td>api<\/td><td>crash<\/td><td>haproxy\+metallb-bgp<\/td><td>[^<]*<a href="#fidelity-haproxy-apiserver-stand-in">/);
  });

  it('the terminal summary names the notes per run; the CSV carries their ids', () => {
    const r = withNotes();
    const text = renderSummary(buildModel(r), '/x/report.html');
    expect(text).toContain('fidelity notes per run (docs/fidelity.md#<id>):');
    expect(text).toMatch(/^ {2}haproxy\+metallb-bgp api crash: haproxy-apiserver-stand-in, haproxy-single-box, kit-client-event-loop, kit-veth-latency$/m);
    const csv = renderCsv(r).split('\r\n');
    const col = csv[0]!.split(',').indexOf('fidelity');
    expect(col).toBeGreaterThan(0);
  });

  it('results without notes render as before (no section)', () => {
    const m = buildModel(base);
    expect(renderMarkdown(m, recommend(m))).not.toContain('Fidelity notes');
    expect(renderSummary(m, '/x/report.html')).not.toContain('fidelity');
  });

  it('the writer links to this checkout’s docs/fidelity.md from the report directory', () => {
    const link = fidelityDocFrom(join(REPO_ROOT, 'out', 'smb'));
    expect(link).toBe('../../docs/fidelity.md');
    expect(existsSync(join(REPO_ROOT, 'out', 'smb', link))).toBe(existsSync(join(REPO_ROOT, FIDELITY_DOC)));
  });
});
