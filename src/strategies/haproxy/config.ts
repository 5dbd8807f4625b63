/**
 * The external HAProxy in front of every kube-apiserver (the enterprise guidance of the brief),
 * rendered pure from the topology (checked with `haproxy -c` in test/contract/haproxy-config.test.ts).
 * The sim provider runs it in the foreground on the load-balancer host (`haproxy -db -f <cfg>`):
 * no `daemon`, no pid file, no stats socket, logs to stdout.
 *
 * Shape, as the kube-apiserver HA guides do it (kubernetes/kubeadm docs/ha-considerations.md,
 * "haproxy configuration"; OpenShift UPI load-balancer docs): TCP pass-through (the client's TLS
 * session ends at the API server, so client certificates keep working), round robin over all
 * control planes, and an HTTPS health check of `/readyz` so a server whose etcd is gone leaves
 * the pool even though its port is open. Keywords from the HAProxy 2.6 configuration manual
 * (doc/configuration.txt, the version Debian 12 ships):
 * - `option httpchk GET /readyz` + `http-check expect status 200`: an HTTP check; `check-ssl`
 *   runs it over TLS, `verify none` because the check is about readiness, not identity (the lab CA
 *   is not given to HAProxy; HAProxy 2.6 refuses check-ssl without a CA unless verify is none).
 * - `inter` / `fall` / `rise` per server and `timeout check` from `topology.timers.haproxy`: a
 *   check runs every `inter`, rescheduled from the end of the previous one (2.6 src/check.c
 *   process_chk_conn: `expire = now + inter`); a server is DOWN after `fall` consecutive failed
 *   checks, UP again after `rise`; with `timeout check` set, a check may take
 *   min(`timeout connect`, `inter`) to connect plus `timeout check` to answer (manual, "timeout
 *   check"). With `check-ssl` the TLS handshake belongs to the connect phase: against a frozen
 *   server HAProxy 2.6 logs "Layer6 timeout, check duration: 600ms" with inter 600 ms and timeout
 *   check 150 ms (measured in test/contract/haproxy-behaviour.test.ts).
 * - `retries 3` + `option redispatch 1`: a connection attempt that fails (refused by a server that
 *   has closed its listener, or timed out) is retried, and with `redispatch 1` EVERY retry goes to
 *   another server, without the turn-around pause of min(`timeout connect`, 1 s) that a retry on
 *   the same server waits (manual, "retries", "option redispatch <interval>"). That is why a
 *   graceful shutdown costs the client (almost) nothing while the server is still counted UP.
 * - `timeout connect 5s` (kubeadm's guide uses 5 s), `timeout client/server 1h`: API watches are
 *   long-lived streams and must not be cut by the balancer.
 */
import type { Topology } from '../../model/types.js';

/** `timeout connect` of the rendered config (kubeadm docs/ha-considerations.md uses 5 s). */
export const HAPROXY_CONNECT_TIMEOUT_MS = 5000;
/** `retries` of the rendered config. */
export const HAPROXY_RETRIES = 3;
export const HAPROXY_BACKEND = 'kube-apiservers';

export function renderHaproxyCfg(t: Topology): string {
  const lb = t.loadBalancer;
  if (!lb) throw new Error(`topology ${t.name} has no loadBalancer host: the haproxy mechanism needs one (topology key loadBalancer:)`);
  const h = t.timers.haproxy;
  const cps = t.nodes.filter((n) => n.role === 'controlplane');
  if (!cps.length) throw new Error(`topology ${t.name} has no control planes to balance`);
  const server = (name: string, ip: string) =>
    `    server ${name} ${ip}:${t.apiPort} check check-ssl verify none inter ${h.checkIntervalMs}ms fall ${h.fall} rise ${h.rise}`;
  return [
    `# HAProxy (2.6 syntax) in front of the kube-apiservers of ${t.name} (rendered by talos-ha-lab; see src/strategies/haproxy/config.ts)`,
    `# run in the foreground: haproxy -db -f haproxy.cfg`,
    'global',
    '    log stdout format raw local0 info',
    '    # no maxconn: HAProxy derives it from the fd limit it gets (a fixed 20000 needs 40k fds and',
    '    # makes HAProxy refuse to start under a lower hard limit)',
    '',
    'defaults',
    '    mode tcp',
    '    log global',
    '    option tcplog',
    '    option dontlognull',
    '    # log failed sessions only: the outage probe opens ~100 connections a second',
    '    option dontlog-normal',
    '    # health check state changes in the log (the provider may turn them into events)',
    '    option log-health-checks',
    `    retries ${HAPROXY_RETRIES}`,
    '    # every retry on another server: a refused connect is re-dispatched at once',
    '    option redispatch 1',
    `    timeout connect ${HAPROXY_CONNECT_TIMEOUT_MS}ms`,
    '    timeout client 1h',
    '    timeout server 1h',
    '',
    'frontend kube-apiserver',
    `    bind ${lb.ip}:${t.apiPort}`,
    `    default_backend ${HAPROXY_BACKEND}`,
    '',
    `backend ${HAPROXY_BACKEND}`,
    '    balance roundrobin',
    '    option httpchk GET /readyz',
    '    http-check expect status 200',
    `    timeout check ${h.checkTimeoutMs}ms`,
    ...cps.map((n) => server(n.name, n.ip)),
    '',
  ].join('\n');
}
