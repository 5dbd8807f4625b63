/**
 * FRR on the lab's hosts: one instance per router and one per node BGP speaker, each named
 * `<prefix>-<host>` (`-N`), so several run side by side on one machine (netns) as well as one per
 * container (docker). An instance keeps its runtime and config under /var/run/frr/<instance>/
 * (FRR's own pathspace for -N; readable by the `frr` user the daemons drop to). Daemons: zebra
 * (routes into the host's kernel), bgpd, staticd, and bfdd when the config has a BFD profile,
 * in the foreground, supervised by the runtime like every lab process.
 */
import { join } from 'node:path';
import type { HostProc, HostRuntime } from '../runtimes/types.js';
import { frrInstance } from '../../emulation/net.js';
import { waitFor } from './readiness.js';
import { sleep } from '../../util/proc.js';

const FRR_BIN = '/usr/lib/frr';

export interface FrrInstance {
  host: string;
  instance: string;
  conf: string;
  procs: HostProc[];
}

/** an instance's name: unique on the machine (the netns runtime shares /var/run/frr between hosts) */
export function instanceOf(rt: Pick<HostRuntime, 'prefix'>, host: string): string {
  return frrInstance(`${rt.prefix}-${host}`);
}

export function frrRunDir(instance: string): string {
  return join('/var/run/frr', instance);
}

export async function startFrr(rt: HostRuntime, host: string, conf: string, signal?: AbortSignal): Promise<FrrInstance> {
  const instance = instanceOf(rt, host);
  const dir = frrRunDir(instance);
  const file = join(dir, 'frr.conf');
  await rt.writeFile(host, file, conf, { owner: 'frr' });
  const daemons = ['zebra', 'bgpd', 'staticd', ...(/^bfd$/m.test(conf) ? ['bfdd'] : [])];
  const procs: HostProc[] = [];
  for (const d of daemons) {
    procs.push(await rt.start(host, { role: 'frr', name: d, cmd: join(FRR_BIN, d), args: ['-N', instance, '-f', file, ...(d === 'zebra' ? ['-s', '90000000'] : [])] }));
    if (d === 'zebra') {
      // the other daemons connect to zebra's zserv socket: start them once it is there
      await waitFor('forZebraSocket', `${host}/zebra`, async () => (await rt.exec(host, 'test', ['-S', join(dir, 'zserv.api')], { reject: false })).exitCode === 0, { timeoutMs: 10_000, rt, proc: procs[0], signal });
    }
  }
  const inst: FrrInstance = { host, instance, conf: file, procs };
  await waitFor('forBgpd', `${host}/bgpd`, async () => (await vtysh(rt, inst, ['show bgp summary json'])).exitCode === 0, { timeoutMs: 10_000, rt, proc: procs[1], intervalMs: 100, signal });
  return inst;
}

/** start an instance's daemons again after a crash or shutdown of its host (zebra first) */
export async function restartFrr(rt: HostRuntime, inst: FrrInstance, signal?: AbortSignal): Promise<void> {
  for (const p of inst.procs) {
    await rt.respawn(p);
    // the dead zebra's socket file is still there until the new one replaces it: give it a moment
    // (bgpd and staticd also retry their zebra connection on their own)
    if (p.name === 'zebra') await sleep(300, signal);
  }
  await waitFor('forBgpd', `${inst.host}/bgpd`, async () => (await vtysh(rt, inst, ['show bgp summary json'])).exitCode === 0, { timeoutMs: 10_000, intervalMs: 100, signal });
}

export function vtysh(rt: HostRuntime, inst: { host: string; instance: string }, commands: string[], timeoutMs = 10_000) {
  const args = ['-N', inst.instance];
  for (const c of commands) args.push('-c', c);
  return rt.exec(inst.host, 'vtysh', args, { reject: false, timeoutMs });
}

export interface BgpPeerState {
  peer: string;
  state: string;
  pfxRcd: number;
}

/** The BGP sessions of an instance, from `show bgp summary json`. */
export async function bgpPeers(rt: HostRuntime, inst: { host: string; instance: string }): Promise<BgpPeerState[]> {
  const r = await vtysh(rt, inst, ['show bgp ipv4 unicast summary json']);
  if (r.exitCode !== 0) return [];
  const j = JSON.parse(r.stdout || '{}') as { peers?: Record<string, { state?: string; pfxRcd?: number }> };
  return Object.entries(j.peers ?? {}).map(([peer, p]) => ({ peer, state: p.state ?? '?', pfxRcd: p.pfxRcd ?? 0 }));
}
