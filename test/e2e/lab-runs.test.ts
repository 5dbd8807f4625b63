/**
 * Real sim labs through the CLI a user runs (`lab run <lab> --out DIR --json`), asserting on the
 * MEASURED figures of results.json. Every expected band below is computed here, from the lab's
 * configured timers (results.timers) and the mechanism's documented rule — not taken from what the
 * run printed — and widened only by the probe's resolution (interval + timeout).
 *
 * Covered: the API endpoint (talos-vip, kube-vip-arp, kube-vip-bgp, haproxy; KubePrism), Services
 * (L2 share, BGP spread, ETP Local client IP, failover bands, ECMP resets plain vs resilient,
 * class conflict), `lab report` reproducing the reports, every drill on the sim, and nothing
 * left behind.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import type { RunRecord } from '../../src/results/types.js';
import { validateResults } from '../../src/results/validate.js';
import { REPO_ROOT } from '../../src/model/load.js';
import { listNetns } from '../../src/state/clean.js';
import { pick, runLabCli } from '../helpers/lab-run.js';
import { expectSmbQuickBands, expectWithin, timersOf } from '../helpers/bands.js';
import { useTempDirs } from '../helpers/tmp.js';

const mkTemp = useTempDirs();
const fixture = (name: string) => join(REPO_ROOT, 'test', 'fixtures', 'labs', `${name}.yaml`);

function topShare(run: RunRecord): number {
  return Math.max(...Object.values(run.nodeShare ?? {}));
}

/** at most 1 % of what the client sent failed: the load's requests and the probe's (errors counts both) */
function baselineClean(run: RunRecord) {
  expect(run.requests, `${run.strategy} ${run.target} baseline requests`).toBeGreaterThan(50);
  const probes = (run.timeline ?? []).reduce((n, b) => n + b.ok + b.failed, 0);
  expect(probes, `${run.strategy} ${run.target} baseline probes`).toBeGreaterThan(50);
  expect(run.errors, `${run.strategy} ${run.target} baseline errors (load ${JSON.stringify(run.errorsByKind ?? {})}, probe ${run.probeFailures})`).toBeLessThanOrEqual(Math.ceil((run.requests + probes) * 0.01));
}

/**
 * a run with an outage of seconds says how long the lab's own processes waited for a CPU meanwhile,
 * and which: one thread never waits longer than the interval it was read over (give or take the
 * few milliseconds one sampling pass takes to read every process)
 */
function cpuWaitRead(run: RunRecord) {
  expect(run.cpuWait, `${run.strategy} ${run.target} ${run.drill}: cpuWait`).toBeDefined();
  expect(run.cpuWait!.process).toMatch(/^[\w-]+\/[\w-]+$/);
  expect(run.cpuWait!.ms).toBeGreaterThanOrEqual(0);
  expect(run.cpuWait!.ms).toBeLessThanOrEqual(run.outageMs! + 100);
}

/** a fixture's run through the CLI that must succeed and write a results.json that meets its schema */
async function validRun(name: string, out: string) {
  const run = await runLabCli(fixture(name), out);
  expect(run.code).toBe(0);
  expect(validateResults(run.results).errors).toEqual([]);
  return run;
}

async function noLeftovers(labName: string) {
  const short = labName.replace(/[^a-z0-9]/gi, '').slice(0, 8).toLowerCase();
  expect((await listNetns()).filter((n) => n.startsWith(`tlab-${short}-`))).toEqual([]);
}

describe('lab ci-minecraft (1 node: talos-vip + metallb-l2)', () => {
  it('measures baseline and a VIP loss; KubePrism keeps in-cluster clients up; `lab report` reproduces the reports', async () => {
    const out = mkTemp('lab-mc-');
    const { results: r } = await validRun('ci-minecraft', out);
    expect(r.provider).toMatchObject({ name: 'sim', emulated: true });
    expect(r.provider.components.frr).toMatch(/^\d+\.\d+/);
    expect(r.provider.components.etcd).toMatch(/^\d+\.\d+/);

    const api = pick(r, 'talos-vip+metallb-l2', 'api', 'baseline');
    baselineClean(api);
    expect(api.nodeShare).toEqual({ cp1: 1 });
    // the single-node pitfall handled: the control plane serves Services
    const web = pick(r, 'talos-vip+metallb-l2', 'service', 'baseline', 'web');
    const local = pick(r, 'talos-vip+metallb-l2', 'service', 'baseline', 'web-local');
    baselineClean(web);
    expect(web.nodeShare).toEqual({ cp1: 1 });
    expect(web.clientIpPreserved).toBe(false); // ETP Cluster: SNAT
    expect(local.clientIpPreserved).toBe(true); // ETP Local

    // the only node is partitioned for holdMs: no peer can take the VIP, it is back at restore
    const loss = pick(r, 'talos-vip+metallb-l2', 'api', 'vip-loss-internal');
    const holdMs = 3000; // ci-minecraft.yaml
    expectWithin(loss, holdMs, holdMs + 3000, 'external clients lose the VIP for the partition');
    // in-cluster clients go through KubePrism on localhost:7445 to the node's own API server
    expect(loss.internalOutageMs).not.toBeNull();
    expect(loss.internalOutageMs!).toBeLessThanOrEqual(500);

    const files = ['report.md', 'report.html', 'runs.csv'];
    const before = files.map((f) => readFileSync(join(out, f)));
    execFileSync(process.execPath, [join(REPO_ROOT, 'scripts', 'lab.mjs'), 'report', out], { cwd: REPO_ROOT, env: { ...process.env, CI: 'true' } });
    files.forEach((f, i) => expect(readFileSync(join(out, f)).equals(before[i]!), `${f} regenerated identically`).toBe(true));
    expect(readFileSync(join(out, 'report.md'), 'utf8')).toMatch(/emulated Talos control plane/);
    await noLeftovers(r.lab);
  });
});

describe('lab ci-smb (talos-vip + metallb-l2, haproxy + metallb-bgp)', () => {
  it('failovers of the API and the Services fall inside the bands their timers predict', async () => {
    const { results: r } = await validRun('ci-smb', mkTemp('lab-smb-'));
    const T = timersOf(r);

    // --- API endpoint
    const tvBase = pick(r, 'talos-vip+metallb-l2', 'api', 'baseline');
    baselineClean(tvBase);
    expect(topShare(tvBase), 'Talos VIP is active-passive').toBeGreaterThanOrEqual(0.95);
    const hpBase = pick(r, 'haproxy+metallb-bgp', 'api', 'baseline');
    baselineClean(hpBase);
    expect(Object.values(hpBase.nodeShare ?? {}).filter((s) => s >= 0.1).length, 'HAProxy spreads over the API servers').toBeGreaterThanOrEqual(2);
    expect(topShare(hpBase), 'HAProxy: active-active over 3 control planes').toBeLessThanOrEqual(0.6);

    // every graceful shutdown and crash inside the band the fixture's timers give (bands.ts)
    expectSmbQuickBands(r);
    const tvCrash = pick(r, 'talos-vip+metallb-l2', 'api', 'crash');
    expect(tvCrash.phases?.announceMs, 'the new holder’s GARP was seen on the wire').not.toBeNull();
    // in-cluster clients (through KubePrism) see no outage longer than its health-check period
    for (const d of ['graceful-shutdown', 'crash'])
      for (const s of ['talos-vip+metallb-l2', 'haproxy+metallb-bgp']) {
        const run = pick(r, s, 'api', d);
        expect(run.internalOutageMs, `${s} ${d}: KubePrism clients observed`).not.toBeNull();
        expect(run.internalOutageMs!, `${s} ${d}: KubePrism outage ≤ health-check period`).toBeLessThanOrEqual(T.kubePrism.healthIntervalS * 1000);
      }

    // --- Services
    for (const s of ['talos-vip+metallb-l2', 'haproxy+metallb-bgp']) {
      const web = pick(r, s, 'service', 'baseline', 'web');
      const local = pick(r, s, 'service', 'baseline', 'web-local');
      baselineClean(web);
      baselineClean(local);
      expect(web.clientIpPreserved, `${s}: ETP Cluster loses the client IP`).toBe(false);
      expect(local.clientIpPreserved, `${s}: ETP Local keeps the client IP`).toBe(true);
    }
    // L2: one node takes all the traffic (Local: only its own pod answers)
    expect(topShare(pick(r, 'talos-vip+metallb-l2', 'service', 'baseline', 'web-local'))).toBeGreaterThanOrEqual(0.95);
    // BGP: ECMP spreads over both workers
    const bgpWeb = pick(r, 'haproxy+metallb-bgp', 'service', 'baseline', 'web');
    expect(Object.keys(bgpWeb.nodeShare ?? {}).length).toBeGreaterThanOrEqual(2);
    expect(topShare(bgpWeb)).toBeLessThanOrEqual(0.7);
    const bgpLocal = pick(r, 'haproxy+metallb-bgp', 'service', 'baseline', 'web-local');
    expect(topShare(bgpLocal), 'BGP + ETP Local: every node with a pod announces').toBeLessThanOrEqual(0.7);

    await noLeftovers(r.lab);
  });
});

describe('lab ci-smb-bfd (MetalLB BGP with BFD asked by the strategy)', () => {
  it('a crashed announcer of the Local Service leaves the router after BFD detection, not the hold time', async () => {
    const { results: r } = await validRun('ci-smb-bfd', mkTemp('lab-bfd-'));
    const T = timersOf(r);
    const runs = r.runs.filter((x) => x.drill === 'crash' && x.target === 'service');
    expect(runs).toHaveLength(2);
    // the router hears the last BFD packet up to one interval before the crash and declares the
    // session down detect-multiplier × interval after it (RFC 5880 6.8.4); bgpd/zebra then drop
    // the path (≤ 1 s). Without BFD the hold time decides: at least hold − keepalive.
    const interval = Math.max(T.bfd.receiveMs, T.bfd.transmitMs);
    for (const run of runs) {
      expect(run.externalTrafficPolicy).toBe('Local');
      expectWithin(run, (T.bfd.detectMultiplier - 1) * interval, T.bfd.detectMultiplier * interval + 1000, 'BFD detection after the last packet heard, then the route removal');
      expect(run.outageMs!, `${run.victim}: far from the hold time`).toBeLessThan((T.bgp.holdS - T.bgp.keepaliveS) * 1000);
    }
    await noLeftovers(r.lab);
  });
});

describe('lab ci-smb-kubevip (kube-vip ARP with lb_enable, kube-vip BGP, class conflict)', () => {
  it('kube-vip spreads the API, fails over inside its lease/hold bands, and a class-less Service gets two announcers', async () => {
    const { results: r } = await validRun('ci-smb-kubevip', mkTemp('lab-kv-'));
    const T = timersOf(r);
    const kv = T.kubeVip;
    const arp = 'kube-vip-arp+kube-vip-arp';
    const base = pick(r, arp, 'api', 'baseline');
    baselineClean(base);
    expect(Object.values(base.nodeShare ?? {}).filter((s) => s >= 0.1).length, 'lb_enable: active-active API').toBeGreaterThanOrEqual(2);
    expect(topShare(pick(r, 'kube-vip-bgp+metallb-l2', 'api', 'baseline')), 'kube-vip BGP: ECMP over 3 control planes').toBeLessThanOrEqual(0.6);
    expect(topShare(pick(r, 'kube-vip-arp+metallb-l2', 'api', 'baseline')), 'kube-vip ARP without lb_enable: active-passive').toBeGreaterThanOrEqual(0.95);
    // kube-vip from v0.9 (v1.2.3 is the labs' default) sends a new leader's first gratuitous ARP
    // from its process-wide ARP loop, every vip_arpRate (3 s below 500 ms): the router keeps the
    // old holder's MAC for up to that long after the takeover (pkg/cluster/service.go layer2Update
    // and pkg/arp/arp.go StartAdvertisement/NewManager @v1.2.3; earlier releases sent one at once)
    const arpLoop = kv.arpRateMs < 500 ? 3000 : kv.arpRateMs;
    // graceful: the leader releases its Lease; a candidate takes it at its next retry (× 1.2 jitter)
    expectWithin(pick(r, arp, 'api', 'graceful-shutdown'), 0, 1.2 * kv.retryPeriodS * 1000 + arpLoop + 1000, 'lease released + ARP loop');
    // crash: the Lease expires leaseDuration after the last renewal (every retryPeriod); with
    // lb_enable the dead API server leaves the new holder's backends at its next check (5 s)
    expectWithin(pick(r, arp, 'api', 'crash'), (kv.leaseDurationS - kv.retryPeriodS) * 1000, kv.leaseDurationS * 1000 + 2 * 1.2 * kv.retryPeriodS * 1000 + arpLoop + 5000 + 1500, 'lease expiry + ARP loop');
    // BGP mode: every control plane announces; graceful = withdraw (the UPDATE is immediate, but
    // connections already on the stopping API server break and the client reconnects: ≤ 2 s),
    // crash = router hold time
    const bgp = 'kube-vip-bgp+metallb-l2';
    expectWithin(pick(r, bgp, 'api', 'graceful-shutdown'), 0, 2000, 'BGP withdraw + reconnect');
    expectWithin(pick(r, bgp, 'api', 'crash'), 0, T.bgp.holdS * 1000 + 1000, 'BGP hold time');
    // pitfall 2: without spec.loadBalancerClass kube-vip and MetalLB both announce the Service IP
    const conflict = pick(r, 'kube-vip-arp+metallb-l2', 'service', 'class-conflict');
    expect(conflict.holdersObserved?.length ?? 0, `holders seen: ${conflict.notes?.join(' ')}`).toBeGreaterThanOrEqual(2);
    await noLeftovers(r.lab);
  });
});

describe('lab ci-smb-drills (freeze, partition, link flap, sticky ARP, VIP loss)', () => {
  it('each drill has its observable effect inside the band of its timers', async () => {
    const { results: r } = await validRun('ci-smb-drills', mkTemp('lab-dr-'));
    const T = timersOf(r);
    const s = 'talos-vip+metallb-l2';
    const ttl = T.talosVip.sessionTtlS * 1000;
    const grace = T.kubernetes.nodeMonitorGraceS * 1000;
    // freeze of the VIP holder: its etcd session is not kept alive → like a crash
    expectWithin(pick(r, s, 'api', 'freeze'), (ttl * 2) / 3, ttl + 3 * T.etcd.electionMs + 2500, 'session TTL');
    // partition of the announcer (held 6 s): memberlist failover, and the Cluster endpoint tail
    const ml = T.metallb;
    const part = pick(r, s, 'service', 'partition');
    expectWithin(part, Math.max(ml.probeTimeoutMs + ml.suspicionMult * ml.probeIntervalMs, grace - 1000), 6000 + 3000, 'memberlist + endpoint tail, ends at restore at the latest');
    // link flap of the announcer for 1.5 s: at most the flap plus re-ARP
    const flap = pick(r, s, 'service', 'link-flap');
    expect(flap.outageMs!).toBeGreaterThan(0);
    expect(flap.outageMs!).toBeLessThanOrEqual(1500 + 3000);
    // sticky ARP: the router ignores the new announcer's GARP, so the path heals only through
    // the router's neighbour timers: REACHABLE ≤ 1.5 × base_reachable_time, DELAY, PROBE × ucast_solicit
    const a = T.arp;
    const garp = pick(r, s, 'service', 'garp-ignored');
    const arpHeal = 1.5 * a.baseReachableS * 1000 + a.delayFirstProbeS * 1000 + a.ucastSolicit * a.retransMs + 1000;
    expectWithin(garp, ml.probeTimeoutMs + ml.suspicionMult * ml.probeIntervalMs, Math.max(6 * ml.suspicionMult * ml.probeIntervalMs, grace + 1000) + arpHeal, 'failover + neighbour timers');
    // VIP loss (holder partitioned 3 s): external clients wait for the TTL, KubePrism clients go on
    const loss = pick(r, s, 'api', 'vip-loss-internal');
    expectWithin(loss, Math.min(3000, (ttl * 2) / 3), 3000 + 3000, 'partitioned until restore or TTL');
    expect(loss.internalOutageMs, 'in-cluster clients (KubePrism) were observed').not.toBeNull();
    for (const run of [pick(r, s, 'api', 'freeze'), part, garp, loss]) cpuWaitRead(run);
    await noLeftovers(r.lab);
  });
});

describe('ECMP churn: node leave under plain vs resilient hashing (4 announcing workers)', () => {
  it('plain ECMP resets long-lived connections of SURVIVING nodes; node join re-maps too', async () => {
    const { code, results: r } = await runLabCli(fixture('ci-smb-ecmp'), mkTemp('lab-ecmp-'));
    expect(code).toBe(0);
    const leave = pick(r, 'haproxy+metallb-bgp', 'service', 'node-leave');
    expect(leave.streams!).toBeGreaterThanOrEqual(20);
    expect(leave.resetsOnSurvivors!, 'flows on nodes that stayed were re-hashed and reset').toBeGreaterThan(0);
    const join = pick(r, 'haproxy+metallb-bgp', 'service', 'node-join');
    expect(join.resets!, 'a joining node takes over hash ranges: established flows land on it and reset').toBeGreaterThan(0);
    await noLeftovers(r.lab);
  });

  it('resilient ECMP resets only the leaving node’s connections', async () => {
    const { code, results: r } = await runLabCli(fixture('ci-smb-resilient'), mkTemp('lab-res-'));
    expect(code).toBe(0);
    const leave = pick(r, 'haproxy+metallb-bgp', 'service', 'node-leave');
    expect(leave.streams!).toBeGreaterThanOrEqual(20);
    expect(leave.resetsOnSurvivors).toBe(0);
    expect(leave.resetsOnVictim!, 'the leaving node’s flows moved and reset').toBeGreaterThan(0);
    await noLeftovers(r.lab);
  });
});
