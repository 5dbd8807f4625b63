/**
 * Expected outage bands as the e2e tests derive them: from the timers a run recorded
 * (results.timers) and each mechanism's rule written out here, never from the production band
 * functions — a test that asked the code under test for its band could not catch a wrong band.
 * Widened only by the probe's resolution.
 */
import { expect } from 'vitest';
import type { Timers } from '../../src/model/types.js';
import type { Results, RunRecord } from '../../src/results/types.js';
import { pick } from './lab-run.js';

/** probe resolution: a failure is stamped at its send time, a probe can take its timeout */
export const SLACK = 10 + 200;

export function timersOf(r: Results): Timers {
  return r.timers as unknown as Timers;
}

/** The run recovered and its outage lies in [min − SLACK, max + SLACK]. */
export function expectWithin(run: RunRecord, min: number, max: number, why: string): void {
  const what = `${run.strategy} ${run.target}${run.service ? ` ${run.service}` : ''} ${run.drill}`;
  expect(run.recovered, `${what}: recovered inside its observation window`).not.toBe(false);
  expect(run.outageMs, `${what}: outage measured (${why})`).not.toBeNull();
  expect(run.outageMs!, `${what}: outage ≥ ${min - SLACK} ms (${why})`).toBeGreaterThanOrEqual(min - SLACK);
  expect(run.outageMs!, `${what}: outage ≤ ${max + SLACK} ms (${why})`).toBeLessThanOrEqual(max + SLACK);
}

/**
 * When a dead node's endpoints leave the Services: the kubelet renews its Lease every
 * 0.25 × leaseDuration (+4 % jitter), the node lifecycle controller marks the node NotReady once
 * grace has passed since the last renewal it saw (checked every monitor period), kube-proxy
 * applies it within its min sync period: [grace − 1.04 × renew, grace + period + minSync] after
 * the fault, never before it.
 */
export function endpointTail(T: Timers): { min: number; max: number } {
  const renew = 0.25 * T.kubernetes.nodeLeaseDurationS * 1000;
  const grace = T.kubernetes.nodeMonitorGraceS * 1000;
  return { min: Math.max(0, grace - 1.04 * renew), max: grace + T.kubernetes.nodeMonitorPeriodS * 1000 + T.kubernetes.proxyMinSyncS * 1000 };
}

/**
 * The smb quick faults (graceful shutdown and crash, API and Service) of the two strategies the
 * smb CI fixtures run, each inside the band its timers give. `nodes` is the memberlist cluster
 * size (smb: 3 control planes + 2 workers).
 */
export function expectSmbQuickBands(r: Results, nodes = 5): void {
  const T = timersOf(r);
  // Talos VIP: graceful = resign, the next campaigner is already waiting (vip.go)
  expectWithin(pick(r, 'talos-vip+metallb-l2', 'api', 'graceful-shutdown'), 0, T.talosVip.campaignRetryS * 1000 + 1000, 'resign + GARP');
  // crash = the session lease expires: TTL after the last keepalive (sent every TTL/3); when the
  // victim led etcd, re-election adds up to 3 election timeouts
  const ttl = T.talosVip.sessionTtlS * 1000;
  expectWithin(pick(r, 'talos-vip+metallb-l2', 'api', 'crash'), (ttl * 2) / 3, ttl + 3 * T.etcd.electionMs + T.talosVip.campaignRetryS * 1000 + 1500, 'session TTL');
  // HAProxy: a stopped API server is refused and re-dispatched; a dead one is marked DOWN after
  // `fall` failed checks, each bounded by min(timeout connect, inter)
  const h = T.haproxy;
  expectWithin(pick(r, 'haproxy+metallb-bgp', 'api', 'graceful-shutdown'), 0, h.fall * h.checkIntervalMs + 500, 'refused + redispatch');
  expectWithin(pick(r, 'haproxy+metallb-bgp', 'api', 'crash'), 0, h.fall * (2 * h.checkIntervalMs) + 1000, 'fall × check');

  // MetalLB L2: memberlist leave (graceful), or suspicion (crash): suspicionMult × max(1, log10 n)
  // × probe interval, up to 6 × that (memberlist suspicionMaxTimeoutMult); plus the ETP Cluster
  // endpoint tail of the dead node's pod
  const ml = T.metallb;
  const tail = endpointTail(T);
  const suspicionMin = ml.suspicionMult * Math.max(1, Math.log10(nodes)) * ml.probeIntervalMs;
  expectWithin(pick(r, 'talos-vip+metallb-l2', 'service', 'graceful-shutdown'), 0, 1500, 'memberlist leave + GARP');
  expectWithin(pick(r, 'talos-vip+metallb-l2', 'service', 'crash'), Math.max(ml.probeTimeoutMs + suspicionMin, tail.min), Math.max(2 * ml.probeIntervalMs + 6 * suspicionMin, tail.max) + 1500, 'memberlist + endpoint tail');
  // MetalLB BGP: withdraw (graceful), hold time (crash) + the endpoint tail
  const b = T.bgp;
  expectWithin(pick(r, 'haproxy+metallb-bgp', 'service', 'graceful-shutdown'), 0, 1000, 'BGP withdraw');
  expectWithin(pick(r, 'haproxy+metallb-bgp', 'service', 'crash'), Math.max((b.holdS - b.keepaliveS) * 1000, tail.min), Math.max(b.holdS * 1000, tail.max) + 1000, 'hold time + endpoint tail');
}
