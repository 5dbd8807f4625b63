/**
 * The netns runtime's process supervision: every daemon a lab starts (FRR, etcd, HAProxy, agents) is one
 * `Managed` process, spawned detached in its host's namespace through the one process runner
 * (src/util/proc.ts), recorded in the lab state with its start time right after the spawn (its
 * namespace was recorded before, so even a kill in between leaves nothing: `lab clean` stops
 * whatever runs in a lab namespace), and started again with the same spec by `restore`.
 */
import { join } from 'node:path';
import type { LabState } from '../../../state/state.js';
import { pidStartTime, spawnDaemon, stopProcess, signalGroup, type Daemon, type DaemonSpec } from '../../../util/proc.js';

/** what a supervised process is to its host: FRR, etcd, the agent, or a mechanism's own daemon */
export type Role = 'frr' | 'etcd' | 'daemon' | 'agent';

export interface Managed {
  host: string;
  role: Role;
  spec: DaemonSpec;
  daemon: Daemon | null;
}

export class Supervisor {
  private readonly procs: Managed[] = [];
  constructor(
    private readonly state: LabState,
    private readonly logsDir: string,
  ) {}

  logFile(host: string, name: string): string {
    return join(this.logsDir, `${host}.${name}.log`);
  }

  start(host: string, role: Role, name: string, cmd: string, args: string[], ns: string, env?: Record<string, string>, cwd?: string): Managed {
    const spec: DaemonSpec = { name: `${host}/${name}`, cmd, args, ns, logFile: this.logFile(host, name), env, cwd };
    const m: Managed = { host, role, spec, daemon: null };
    this.spawn(m);
    this.procs.push(m);
    return m;
  }

  /** (re)start a managed process with its recorded spec */
  spawn(m: Managed): void {
    const d = spawnDaemon(m.spec);
    this.state.record({ kind: 'pid', name: m.spec.name, pid: d.pid, startTime: pidStartTime(d.pid), host: m.host });
    m.daemon = d;
  }

  of(host: string, role?: Role): Managed[] {
    return this.procs.filter((p) => p.host === host && (!role || p.role === role));
  }

  all(): Managed[] {
    return [...this.procs];
  }

  async stop(m: Managed, graceMs = 5000): Promise<void> {
    if (m.daemon?.isRunning()) await stopProcess(m.daemon.pid, graceMs);
    m.daemon = null;
  }

  kill(m: Managed): void {
    if (m.daemon?.isRunning()) signalGroup(m.daemon.pid, 'SIGKILL');
  }

  signal(m: Managed, sig: NodeJS.Signals): void {
    if (m.daemon?.isRunning()) signalGroup(m.daemon.pid, sig);
  }

  forget(m: Managed): void {
    const i = this.procs.indexOf(m);
    if (i >= 0) this.procs.splice(i, 1);
  }
}
