/**
 * A real etcd cluster (Debian's etcd-server) across the control-plane namespaces, as Talos runs
 * one etcd member per control plane. Timers from `topology.timers.etcd` (etcd defaults: heartbeat
 * 100 ms, election 1000 ms — etcd docs tuning.md; Talos does not change them). Data lives in the
 * lab state directory, so a crashed member restarted by `restore` rejoins with its data, as a
 * rebooted Talos node does.
 */
import { mkdirSync } from 'node:fs';
import type { Node, Topology } from '../../../model/types.js';
import type { LabState } from '../../../state/state.js';
import { run } from '../../../util/proc.js';
import { Supervisor, waitFor, type Managed } from './procs.js';

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
    '--logger', 'zap',
    '--log-level', 'warn',
  ];
}

export async function startEtcdCluster(sup: Supervisor, state: LabState, t: Topology, nsOf: (host: string) => string, token: string, signal?: AbortSignal): Promise<Managed[]> {
  const cps = t.nodes.filter((x) => x.role === 'controlplane');
  const procs = cps.map((n) => {
    const dataDir = state.subdir('etcd', n.name);
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    return sup.start(n.name, 'etcd', 'etcd', 'etcd', etcdArgs(n, t, dataDir, token), nsOf(n.name), { ETCD_UNSUPPORTED_ARCH: process.arch === 'x64' ? '' : process.arch });
  });
  await Promise.all(cps.map((n, i) => waitForEtcd(n, nsOf(n.name), procs[i]!, signal)));
  return procs;
}

export function waitForEtcd(n: Node, ns: string, m: Managed, signal?: AbortSignal, timeoutMs = 20_000): Promise<void> {
  return waitFor(
    'forEtcdHealthy',
    `${n.name}/etcd`,
    async () => (await run('etcdctl', ['--endpoints', `http://${n.ip}:2379`, '--command-timeout=1s', 'endpoint', 'health'], { ns, reject: false, env: { ETCDCTL_API: '3' }, timeoutMs: 3000 })).exitCode === 0,
    { timeoutMs, daemon: m.daemon, intervalMs: 100, signal },
  );
}
