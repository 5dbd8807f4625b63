/**
 * A real etcd cluster (Debian's etcd-server) across the control planes, as Talos runs one etcd
 * member per control plane. Timers from `topology.timers.etcd` (etcd defaults: heartbeat 100 ms,
 * election 1000 ms — etcd docs tuning.md; Talos does not change them). Data lives in the lab
 * state directory (seen at the same path by every host), so a crashed member restarted by
 * `restore` rejoins with its data, as a rebooted Talos node does.
 */
import { mkdirSync } from 'node:fs';
import type { Node, Topology } from '../../model/types.js';
import type { HostProc, HostRuntime } from '../runtimes/types.js';
import { waitFor } from './readiness.js';

export function etcdArgs(n: Node, t: Topology, dataDir: string, token: string): string[] {
  const cps = t.nodes.filter((x) => x.role === 'controlplane');
  return [
    '--name', n.name,
    '--data-dir', dataDir,
    '--listen-client-urls', `http://${n.ip}:2379,http://127.0.0.1:2379`,
    '--advertise-client-urls', `http://${n.ip}:2379`,
    '--listen-peer-urls', `http://${n.ip}:2380`,
    '--initial-advertise-peer-urls', `http://${n.ip}:2380`,
    '--initial-cluster', cps.map((c) => `${c.name}=http://${c.ip}:2380`).join(','),
    '--initial-cluster-state', 'new',
    '--initial-cluster-token', token,
    '--heartbeat-interval', String(t.timers.etcd.heartbeatMs),
    '--election-timeout', String(t.timers.etcd.electionMs),
    // Raft pre-vote, as the etcd Talos runs: Talos v1.11.6 pins etcd v3.6.5
    // (pkg/machinery/constants/constants.go DefaultEtcdVersion), whose default is PreVote: true
    // (server/embed/config.go@v3.6.4 NewConfig; on since v3.5.0). Debian's 3.4.23 defaults it to
    // false (embed/config.go@v3.4.23: "TODO: enable by default in v3.5"): a member cut off by a
    // partition then raises its term with every election timeout, and on its return forces the
    // healthy leader to step down — an extra election (and a burst of failed API requests) that
    // the real cluster does not have.
    '--pre-vote=true',
    '--logger', 'zap',
    '--log-level', 'warn',
  ];
}

export async function startEtcdCluster(rt: HostRuntime, t: Topology, dataDirOf: (node: string) => string, token: string, signal?: AbortSignal): Promise<HostProc[]> {
  const cps = t.nodes.filter((x) => x.role === 'controlplane');
  const procs = await Promise.all(
    cps.map((n) => {
      const dataDir = dataDirOf(n.name);
      mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      return rt.start(n.name, { role: 'etcd', name: 'etcd', cmd: 'etcd', args: etcdArgs(n, t, dataDir, token), env: { ETCD_UNSUPPORTED_ARCH: process.arch === 'x64' ? '' : process.arch } });
    }),
  );
  await Promise.all(cps.map((n, i) => waitForEtcd(rt, n, procs[i]!, signal)));
  return procs;
}

export function waitForEtcd(rt: HostRuntime, n: Node, p: HostProc, signal?: AbortSignal, timeoutMs = 20_000): Promise<void> {
  return waitFor(
    'forEtcdHealthy',
    `${n.name}/etcd`,
    async () => (await rt.exec(n.name, 'etcdctl', ['--endpoints', `http://${n.ip}:2379`, '--command-timeout=1s', 'endpoint', 'health'], { reject: false, env: { ETCDCTL_API: '3' }, timeoutMs: 3000 })).exitCode === 0,
    { timeoutMs, rt, proc: p, intervalMs: 100, signal },
  );
}
