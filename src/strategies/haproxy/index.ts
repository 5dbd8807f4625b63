/**
 * Control-plane mechanism `haproxy`: an external HAProxy box in front of every kube-apiserver
 * (the brief's recommendation for large clusters). The config is ./config.ts; emulated labs run a
 * real HAProxy 2.6 with it on the topology's load-balancer host. On Talos the cluster
 * endpoint is then `https://<lb>:6443`, and KubePrism lists it first among its upstreams (Talos
 * docs kubernetes-guides/configuration/kubeprism.md), which `render` passes on to every node's
 * `kubeprism` component as `clusterEndpoint`.
 *
 * Expected client-seen outage (API target), from `topology.timers.haproxy` (inter I, fall F) and
 * the rendered `timeout connect` K, with the HAProxy 2.6 rules quoted in ./config.ts: a
 * check runs I after the previous one ENDED; a server is DOWN after F failed checks; a check's
 * connect phase — the TLS handshake of `check-ssl` included — is bounded by d = min(K, I), and
 * only then does `timeout check` bound the HTTP answer; `retries` + `option redispatch 1` move a
 * failed connect to another server at once.
 * - graceful shutdown: the API server closes its listener; new connections are refused and
 *   re-dispatched → ~0. Bounded by the server marked DOWN (refused checks fail at once): F×I.
 * - crash / partition (SYNs dropped) and freeze (the kernel completes the TCP handshake, the
 *   frozen process never answers the TLS one): every check fails after d. Until the server is
 *   DOWN the round robin keeps sending every N-th new connection to it and those hang (K is far
 *   longer than a probe's timeout), so the outage lasts until DOWN: from F×d + (F−1)×I (the fault
 *   hit just as a check began) to F×(I + d) (it hit just after a check passed).
 * `timeout check` does not enter: the stand-in answers /readyz from a cached state, so a check that
 * got through TLS never waits for its answer. Measured with the real HAProxy 2.6 in front of
 * frozen API servers (test/contract/haproxy-behaviour.test.ts): HAProxy logs "Layer6 timeout,
 * check duration: 600ms" with inter 600 ms / timeout check 150 ms, and the client-seen outage
 * falls in the band.
 */
import type { DrillKind } from '../../model/types.js';
import type { ComponentSpec } from '../../emulation/agent/types.js';
import type { Band, FidelityNote, Mechanism, MechanismContext } from '../types.js';
import { HAPROXY_CONNECT_TIMEOUT_MS, renderHaproxyCfg } from './config.js';
import { haproxyTimers } from './timers.js';

/** Slack for check scheduling, probe granularity and the recovery run (ms). */
const MARGIN_MS = 500;
/** The lower bound's slack: a check already in its handshake when the fault hits fails a bit sooner. */
const MIN_SLACK_MS = 200;

const ID = 'haproxy';

/** What the lab around the real HAProxy differs in (docs/fidelity.md). */
const FIDELITY: FidelityNote[] = [
  {
    id: 'haproxy-apiserver-stand-in',
    // src/emulation/apiserver.ts: /readyz from a cached etcd check polled every 250 ms
    text:
      'HAProxy is the real 2.6 binary; what it checks is the API-server stand-in, whose /readyz answers at once from a cached etcd check (polled every 250 ms). ' +
      'A real kube-apiserver under load answers checks slower and may trip `timeout check` on a healthy server (a spurious DOWN, no outage while others serve); the victim\'s checks fail the same way: no effect on the failover outage.',
    applies: (d) => d.target === 'api' && d.kind !== 'baseline',
  },
  {
    id: 'haproxy-single-box',
    text:
      'One HAProxy box, no VRRP/keepalived pair: the balancer itself is never drilled. A real HA pair adds its own failover when the active box dies (not measured here); the drills measure the API servers behind it only.',
    applies: (d) => d.target === 'api' && d.kind !== 'baseline',
  },
];
const CFG = 'haproxy.cfg';

export const haproxy: Mechanism = {
  id: ID,
  family: 'haproxy',
  timers: [haproxyTimers],
  versions: { haproxy: { argv: ['haproxy', '-v'], pattern: /HAProxy version (\S+)/ } },
  hostNeeds: [{ bin: '/usr/sbin/haproxy', debian: 'haproxy' }],
  cp: {
    id: ID,
    kind: 'cp',
    family: 'haproxy',
    title: 'external HAProxy',  summary:
      'An external HAProxy box in TCP mode balances new connections round robin over every kube-apiserver (active-active) ' +
      'and health-checks each one with an HTTPS GET /readyz every `inter`; a server leaves the pool after `fall` failed checks ' +
      'and comes back after `rise` passed ones. `retries 3` with `option redispatch 1` re-sends a refused connect to another ' +
      'server at once, so a graceful shutdown is nearly invisible; a crash or freeze costs up to fall × (inter + min(timeout connect, inter)) ' +
      '(a check\'s TLS handshake is bounded by the connect timeout), because until the server is DOWN every N-th new connection is sent to it. The balancer does not depend on etcd or any ' +
      'cluster state; in this lab it is a single box (no VRRP pair), so the box itself is not drilled.',
    sources: [
      'HAProxy 2.6 configuration manual (doc/configuration.txt): inter/fastinter/downinter, fall, rise, check-ssl, verify, option httpchk, http-check expect, timeout check, timeout connect, retries, option redispatch <interval>',
      'HAProxy src/check.c process_chk_conn: the next check is scheduled `inter` after the previous one ends',
      'kubernetes/kubeadm docs/ha-considerations.md: HAProxy in TCP mode in front of kube-apiserver, HTTPS health check, verify none, timeout connect 5s',
      'kubernetes.io/docs/reference/using-api/health-checks: /readyz fails while the API server cannot serve (e.g. etcd unavailable)',
      'Talos docs kubernetes-guides/configuration/kubeprism.md (v1.12): KubePrism includes the external cluster endpoint among its upstreams',
    ],
    traits: { l2: false, bgp: false, spread: 'active-active', endpoint: 'lb-host' },
    holders: 'lb-host',
    articleClaims: ['api-active-active'],
    fidelity: FIDELITY,

    render(ctx: MechanismContext) {
      const t = ctx.topology;
      const config = renderHaproxyCfg(t); // throws with the reason when there is no load balancer
      const lb = t.loadBalancer!;
      const h = t.timers.haproxy;
      const components: Record<string, ComponentSpec[]> = {};
      for (const n of t.nodes) components[n.name] = [{ kind: 'kubeprism', config: { clusterEndpoint: `${lb.ip}:${t.apiPort}` } }];
      return {
        files: [{ path: 'haproxy/haproxy.cfg', kind: 'config' as const, delivery: 'lb-host' as const, content: config, hosts: [lb.name] }],
        sim: {
          components,
          daemons: [
            {
              host: lb.name,
              name: ID,
              cmd: 'haproxy',
              args: ['-db', '-f', `{file:${CFG}}`],
              files: { [CFG]: config },
              check: ['haproxy', '-c', '-q', '-f', `{file:${CFG}}`],
              // a server is UP after `rise` good checks, `inter` apart
              readyAfterMs: (h.rise + 1) * h.checkIntervalMs,
            },
          ],
        },
      };
    },

    expectedOutage(drill: DrillKind, ctx: MechanismContext): Band | null {
      const { checkIntervalMs: I, fall: F } = ctx.topology.timers.haproxy;
      const d = Math.min(HAPROXY_CONNECT_TIMEOUT_MS, I);
      const unreachable = (what: string): Band => ({
        min: Math.max(0, F * d + (F - 1) * I - MIN_SLACK_MS),
        max: F * (I + d) + MARGIN_MS,
        basis:
          `${what}: every check fails after min(timeout connect ${HAPROXY_CONNECT_TIMEOUT_MS}, inter ${I}) = ${d} ms; ` +
          `the server is DOWN after fall ${F} checks spaced inter ${I} ms apart, until then round robin sends some new connections to it: ` +
          `fall×${d} + (fall−1)×inter − ${MIN_SLACK_MS} ms … fall×(inter+${d}) + ${MARGIN_MS} ms`,
      });
      switch (drill) {
        case 'graceful-shutdown':
          return {
            min: 0,
            max: F * I + MARGIN_MS,
            basis: `the API server closes its listener: refused connects are re-dispatched at once (retries 3, option redispatch 1) → ~0; at most until the server is marked DOWN after fall ${F} refused checks × inter ${I} ms (+ ${MARGIN_MS} ms margin)`,
          };
        case 'crash':
        case 'partition':
        case 'vip-loss-internal':
          return unreachable('SYNs to the victim are dropped');
        case 'freeze':
          return unreachable('the victim\'s kernel completes TCP handshakes, the frozen process never answers the TLS handshake');
        case 'link-flap':
          return { ...unreachable('the victim\'s link is down'), min: 0 };
        default:
          // baseline, node-leave/join (BGP churn of Services), garp-ignored, class-conflict
          return null;
      }
    },

    drillIssue(drill: DrillKind): string | null {
      switch (drill) {
        case 'garp-ignored':
          return 'the HAProxy endpoint is the load balancer\'s own address: no address moves, no gratuitous ARP is involved';
        case 'node-leave':
        case 'node-join':
          return 'the API endpoint behind HAProxy is not announced over BGP';
        case 'class-conflict':
          return 'loadBalancerClass conflicts concern Services, not the API endpoint';
        default:
          return null;
      }
    },
  },
};
