/**
 * The slow drills at the shipped default timers (no `timers:` in the fixture), through the CLI.
 * Every band is derived here from the run's recorded timers and the upstream rule written out
 * beside it, never from the production band functions. The short-timer fixtures elsewhere show
 * the mechanisms' shape quickly; this one shows that the figures a user gets from `lab smb` —
 * about a minute for Talos VIP, 40–56 s for an `externalTrafficPolicy: Cluster` Service on a dead
 * node — emerge from the emulated components at their real timers.
 */
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import type { Timers } from '../../src/model/types.js';
import { validateResults } from '../../src/results/validate.js';
import { REPO_ROOT } from '../../src/model/load.js';
import { listNetns } from '../../src/state/clean.js';
import { pick, runLabCli } from '../helpers/lab-run.js';
import { useTempDirs } from '../helpers/tmp.js';
import { endpointTail, expectWithin } from '../helpers/bands.js';

const mkTemp = useTempDirs();
describe('lab ci-smb-defaults (talos-vip + metallb-l2 at the shipped timers)', () => {
  it('a crashed or partitioned VIP holder fails over after the etcd session TTL; a dead node’s Cluster endpoints leave after the node lifecycle', async () => {
    const { code, results: r } = await runLabCli(join(REPO_ROOT, 'test', 'fixtures', 'labs', 'ci-smb-defaults.yaml'), mkTemp('lab-def-'));
    expect(code).toBe(0);
    expect(validateResults(r).errors).toEqual([]);
    const T = r.timers as unknown as Timers;
    const s = 'talos-vip+metallb-l2';
    // the fixture sets no timers: these are the upstream defaults the test is about
    expect(T.talosVip.sessionTtlS).toBe(60);
    expect(T.kubernetes.nodeMonitorGraceS).toBe(50);

    // Talos VIP: the holder's etcd session lease (TTL, keepalive every TTL/3 by the etcd client)
    // expires TTL after its last keepalive, so [2/3 TTL, TTL] after the fault; when the victim led
    // etcd, a new leader is elected first (up to 3 election timeouts) and promotes the leases with
    // a fresh TTL; the waiting campaigner then sees the key deleted, adds the VIP and sends its GARP
    // (≤ the campaign retry + 1.5 s for the address to be configured and the router to switch).
    const ttl = T.talosVip.sessionTtlS * 1000;
    const electionMax = ttl + 3 * T.etcd.electionMs + T.talosVip.campaignRetryS * 1000 + 1500;
    expectWithin(pick(r, s, 'api', 'crash'), (ttl * 2) / 3, electionMax, 'session TTL');
    // a partition held until the slowest strategy could have failed over: the cut-off holder's
    // session expires the same way (it cannot reach a quorum to keep it alive), and the majority
    // side elects: Talos VIP DOES fail over (about 40–65 s), not merely the hold
    const part = pick(r, s, 'api', 'partition');
    expectWithin(part, (ttl * 2) / 3, electionMax, 'session TTL, partition held past it');

    // Services: the crash takes the MetalLB L2 holder of the first Service (`web`, ETP Cluster).
    // The other speaker takes over after memberlist's failure detection (seconds), but until the
    // dead node's endpoint is removed the new holder's kube-proxy keeps sending a share of new
    // connections to the dead pod, so the client's outage ends with that removal.
    // ETP Cluster: kube-proxy on the new holder keeps sending a share of new connections to the
    // dead node's pod until its endpoint is removed. The kubelet renews its Lease every
    // 0.25 × leaseDuration (10 s) stretched by up to 4 % jitter; the node lifecycle controller
    // looks every monitor period and marks the node NotReady once grace has passed since the last
    // renewal it saw; kube-proxy applies the change within its min sync period. So removal is
    // [grace − 1.04 × renew, grace + monitor period + min sync] after the fault.
    const tail = endpointTail(T);
    expectWithin(pick(r, s, 'service', 'crash', 'web'), tail.min, tail.max, 'node lifecycle: Lease renewals, monitor period, grace');

    const short = r.lab.replace(/[^a-z0-9]/gi, '').slice(0, 8).toLowerCase();
    expect((await listNetns()).filter((x) => x.startsWith(`tlab-${short}-`))).toEqual([]);
  });
});
