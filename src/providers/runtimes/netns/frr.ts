/**
 * FRR instances in the sim: one per router and one per node BGP speaker, side by side on one
 * machine with `-N <instance>` (= the host's namespace name). Each instance keeps its runtime and
 * its config under /var/run/frr/<instance>/ (FRR's own pathspace for -N; readable by the `frr`
 * user the daemons drop to), recorded in the lab state so `lab clean` removes it.
 * Daemons: zebra (routes into the namespace's kernel), bgpd, staticd, and bfdd when the config
 * has a BFD profile. They run in the foreground (no -d), supervised like every lab process.
 */
import { chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LabState } from '../../../state/state.js';
import { run } from '../../../util/proc.js';
import { frrInstance } from '../../../emulation/net.js';
import { Supervisor, waitFor, type Managed } from './procs.js';

const FRR_BIN = '/usr/lib/frr';

export interface FrrInstance {
  host: string;
  ns: string;
  instance: string;
  conf: string;
  procs: Managed[];
}

/** uid/gid of the `frr` user the daemons drop to (they must read their config), from /etc/passwd */
function frrUid(): { uid: number; gid: number } | null {
  const row = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('frr:'));
  if (!row) return null;
  const f = row.split(':');
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

export function frrRunDir(ns: string): string {
  return join('/var/run/frr', frrInstance(ns));
}

export async function startFrr(sup: Supervisor, state: LabState, host: string, ns: string, conf: string, signal?: AbortSignal): Promise<FrrInstance> {
  const instance = frrInstance(ns);
  const dir = frrRunDir(ns);
  state.record({ kind: 'dir', name: dir, host });
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'frr.conf');
  writeFileSync(file, conf);
  const ids = frrUid();
  if (ids) {
    chownSync(dir, ids.uid, ids.gid);
    chownSync(file, ids.uid, ids.gid);
  }
  const daemons = ['zebra', 'bgpd', 'staticd', ...(/^bfd$/m.test(conf) ? ['bfdd'] : [])];
  const procs: Managed[] = [];
  for (const d of daemons) {
    procs.push(sup.start(host, 'frr', d, join(FRR_BIN, d), ['-N', instance, '-f', file, ...(d === 'zebra' ? ['-s', '90000000'] : [])], ns));
    if (d === 'zebra') {
      // the other daemons connect to zebra's zserv socket: start them once it is there
      await waitFor('forZebraSocket', `${host}/zebra`, async () => existsSync(join(dir, 'zserv.api')), { timeoutMs: 10_000, daemon: procs[0]!.daemon, signal });
    }
  }
  const inst: FrrInstance = { host, ns, instance, conf: file, procs };
  await waitFor('forBgpd', `${host}/bgpd`, async () => (await vtysh(inst, ['show bgp summary json'])).exitCode === 0, { timeoutMs: 10_000, daemon: procs[1]!.daemon, intervalMs: 100, signal });
  return inst;
}

export function vtysh(inst: { instance: string }, commands: string[], timeoutMs = 10_000) {
  const args = ['-N', inst.instance];
  for (const c of commands) args.push('-c', c);
  return run('vtysh', args, { reject: false, timeoutMs });
}

export interface BgpPeerState {
  peer: string;
  state: string;
  pfxRcd: number;
}

/** The BGP sessions of an instance, from `show bgp summary json`. */
export async function bgpPeers(inst: { instance: string }): Promise<BgpPeerState[]> {
  const r = await vtysh(inst, ['show bgp ipv4 unicast summary json']);
  if (r.exitCode !== 0) return [];
  const j = JSON.parse(r.stdout || '{}') as { peers?: Record<string, { state?: string; pfxRcd?: number }> };
  return Object.entries(j.peers ?? {}).map(([peer, p]) => ({ peer, state: p.state ?? '?', pfxRcd: p.pfxRcd ?? 0 }));
}
