/**
 * The plan of a run: which runs, how long a held fault is held, how the band changes with the
 * hold, how strategies are packed into lab instances, and the floor of the whole run. Expected
 * values are computed here from the lab files' timers, not by the functions under test.
 */
import { describe, expect, it } from 'vitest';
import { loadLab, REPO_ROOT } from '../../src/model/load.js';
import { selectLab } from '../../src/model/select.js';
import { composeStrategy } from '../../src/strategies/compose.js';
import { DEFAULT_DOWNTIME_MS, EMULATED_BOOT_MS, HOLD_MARGIN_MS, RESTORE_BOOT_MS, RUN_OVERHEAD_MS, RUN_OVERHEAD_PER_NODE_MS, STABLE_MS, floorMs, heldBand, holdFor, lanes, planRuns, runEstimateMs } from '../../src/orchestrator/plan.js';
import { join } from 'node:path';

const smb = loadLab('smb', { repoRoot: REPO_ROOT });
const minecraft = loadLab('minecraft', { repoRoot: REPO_ROOT });

describe('held faults', () => {
  it('are held until the slowest strategy of the run could have failed over (its band maximum) plus a margin', () => {
    const t = smb.topology.timers;
    const partition = smb.drills.find((d) => d.kind === 'partition');
    expect(partition).toBeDefined();
    // the slowest API failover of smb is Talos VIP's session lease: TTL + 3 election timeouts +
    // the lessor's 500 ms tick + the campaign retry + 1 s margin (etcd lease expiry, then a new campaign)
    const talosMax = t.talosVip.sessionTtlS * 1000 + 3 * t.etcd.electionMs + 500 + t.talosVip.campaignRetryS * 1000 + 1000;
    const strategies = smb.strategies.map(composeStrategy);
    const hold = holdFor(smb, { ...partition!, holdMs: 0 }, 'api', strategies);
    expect(hold).toBe(talosMax + HOLD_MARGIN_MS);
    // a lab that sets a hold gets exactly that (a short blip is its own variant)
    expect(holdFor(smb, { ...partition!, holdMs: 3000 }, 'api', strategies)).toBe(3000);
  });

  it('a hold shorter than the failover turns the band into the hold; a longer one keeps it', () => {
    const band = { min: 40_000, max: 65_500, basis: 'lease' };
    expect(heldBand(band, 70_000)).toEqual(band);
    const short = heldBand(band, 10_000)!;
    expect(short.min).toBe(10_000);
    expect(short.max).toBeLessThan(band.min);
    expect(short.basis).toMatch(/held 10 s/);
    const mid = heldBand(band, 50_000)!;
    expect(mid.min).toBe(40_000);
    expect(mid.max).toBeGreaterThanOrEqual(65_500);
    expect(heldBand(null, 1000)).toBeNull();
  });
});

describe('a crash nobody can take over', () => {
  it('the single node comes back after its downtime: the band is the downtime plus the emulated boot', () => {
    const { runs } = planRuns(minecraft);
    const crash = runs.find((r) => r.drill === 'crash' && r.target === 'api' && r.strategy === 'talos-vip+metallb-l2');
    expect(crash).toBeDefined();
    expect(crash!.holdMs).toBe(DEFAULT_DOWNTIME_MS);
    expect(crash!.band).toMatchObject({ min: DEFAULT_DOWNTIME_MS, max: DEFAULT_DOWNTIME_MS + EMULATED_BOOT_MS });
    const { runs: longer } = planRuns(minecraft, { downtimeMs: 30_000 });
    expect(longer.find((r) => r.drill === 'crash' && r.target === 'api')!.band!.min).toBe(30_000);
  });

  it('kube-vip ARP comes back through KubePrism, whose first upstream is the VIP it has yet to bring up: two failed dials and retries more', () => {
    const { runs } = planRuns(minecraft);
    const crash = runs.find((r) => r.drill === 'crash' && r.target === 'api' && r.strategy === 'kube-vip-arp+kube-vip-arp')!;
    const t = minecraft.topology.timers;
    // a failed dial to an address nobody answers: 3 broadcast probes (mcast_solicit) retrans_time
    // apart; client-go's retry wait ≤ (1 + 1.2) × retryPeriod; two of them before KubePrism's
    // score (+1, −1 per failure) takes the VIP out; 1 s margin
    const rejoin = 2 * (3 * t.arp.retransMs + 2.2 * t.kubeVip.retryPeriodS * 1000) + 1000;
    expect(crash.band).toMatchObject({ min: DEFAULT_DOWNTIME_MS, max: DEFAULT_DOWNTIME_MS + EMULATED_BOOT_MS + rejoin });
    expect(crash.band!.basis).toMatch(/KubePrism/);
    // its Services lease goes through the `kubernetes` Service, not KubePrism: no such term
    const svc = runs.find((r) => r.drill === 'crash' && r.target === 'service' && r.strategy === 'kube-vip-arp+kube-vip-arp')!;
    expect(svc.band!.max).toBeLessThan(crash.band!.max);
  });
});

describe('the run plan', () => {
  it('has one run per strategy × target × drill × repeat (baseline once per Service), none for drills that do not apply', () => {
    const lab = selectLab(smb, { strategies: ['talos-vip+metallb-l2'], drills: ['baseline', 'crash', 'node-leave'] });
    const { runs } = planRuns(lab);
    const baseline = runs.filter((r) => r.drill === 'baseline');
    expect(baseline.map((r) => `${r.target}${r.service ? `:${r.service.name}` : ''}`).sort()).toEqual(['api', ...smb.topology.services.map((s) => `service:${s.name}`)].sort());
    expect(runs.filter((r) => r.drill === 'crash')).toHaveLength(2 * lab.repeats);
    // L2 Services: no ECMP to churn
    expect(runs.some((r) => r.drill === 'node-leave')).toBe(false);
    for (const r of runs) expect(r.estimateMs).toBeGreaterThan(r.spec.preMs);
  });

  it('packs strategies into lanes longest first, and the floor of parallel lanes is the longest lane', () => {
    const items = [
      { id: 'a', ms: 10 },
      { id: 'b', ms: 7 },
      { id: 'c', ms: 5 },
      { id: 'd', ms: 4 },
    ];
    const two = lanes(items, (x) => x.ms, 2);
    expect(two.map((l) => l.map((x) => x.id))).toEqual([['a', 'd'], ['b', 'c']]);
    expect(lanes(items, (x) => x.ms, 8)).toHaveLength(4);
    expect(lanes(items, (x) => x.ms, 1)).toEqual([items]);
    const lab = loadLab(join(REPO_ROOT, 'test/fixtures/labs/ci-smb.yaml'), { repoRoot: REPO_ROOT });
    const { runs } = planRuns(lab);
    const seq = floorMs(runs, 1);
    const par = floorMs(runs, lab.strategies.length);
    expect(par).toBeLessThan(seq);
    const perStrategy = lab.strategies.map((s) => floorMs(runs.filter((r) => r.strategy === s.id), 1));
    expect(par).toBe(Math.max(...perStrategy));
    expect(seq).toBe(perStrategy.reduce((a, b) => a + b, 0));
  });
});

describe('the estimated duration of a run', () => {
  const lab = loadLab(join(REPO_ROOT, 'test/fixtures/labs/ci-smb.yaml'), { repoRoot: REPO_ROOT });
  const crash = lab.drills.find((d) => d.kind === 'crash')!;
  const overhead = RUN_OVERHEAD_MS + RUN_OVERHEAD_PER_NODE_MS * lab.topology.nodes.length;
  const settle = Math.min(crash.settleMs, 3000);

  it('a fault the cluster heals by itself: observed until the middle of its band plus the clean second, then the after window and the victim’s boot', () => {
    const band = { min: 3000, max: 9000, basis: 'test' };
    const est = runEstimateMs(lab, crash, band, 0, { prepare: false, reboot: RESTORE_BOOT_MS });
    expect(est).toBe(overhead + crash.preMs + 6000 + STABLE_MS + settle + RESTORE_BOOT_MS);
    // never shorter than the band's minimum: measure.ts does not stop observing before it
    const wide = { min: 8000, max: 8400, basis: 'test' };
    expect(runEstimateMs(lab, crash, wide, 0, { prepare: false, reboot: 0 })).toBe(overhead + crash.preMs + 8200 + STABLE_MS + settle);
  });

  it('a held fault is observed at least as long as it is held', () => {
    const band = { min: 1000, max: 2000, basis: 'test' };
    const est = runEstimateMs(lab, crash, band, 20_000, { prepare: false, reboot: 0 });
    expect(est).toBe(overhead + crash.preMs + 20_000 + settle);
  });

  it('the run plan uses it, and a lab of 35 nodes costs more per run than one of 5', () => {
    const { runs } = planRuns(lab);
    const r = runs.find((x) => x.drill === 'crash' && x.target === 'api')!;
    expect(r.estimateMs).toBe(runEstimateMs(lab, r.spec, r.band, r.holdMs, { prepare: false, reboot: RESTORE_BOOT_MS }));
    const enterprise = loadLab('enterprise', { repoRoot: REPO_ROOT });
    const base = enterprise.drills.find((d) => d.kind === 'baseline')!;
    expect(runEstimateMs(enterprise, base, null, 0, { prepare: false, reboot: 0 }) - runEstimateMs({ ...enterprise, topology: lab.topology }, base, null, 0, { prepare: false, reboot: 0 })).toBe(
      RUN_OVERHEAD_PER_NODE_MS * (enterprise.topology.nodes.length - lab.topology.nodes.length),
    );
  });
});
