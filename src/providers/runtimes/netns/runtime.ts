/**
 * The netns runtime: one network namespace per host (`<prefix>-<host>`), a switch namespace with
 * one bridge per segment (./network.ts), processes spawned detached inside a host's namespace by
 * the one process runner and supervised here (./procs.ts), host faults done with the namespace's
 * own kernel (./faults.ts). Hosts share this machine's filesystem, so files and unix sockets of
 * the lab state are at the same paths for everyone. No images, seconds to build; root needed.
 */
import { chownSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Host, Topology } from '../../../model/types.js';
import type { UpContext } from '../../types.js';
import type { ExecOptions, HostProc, HostRuntime, ProcRole, ProcSpec } from '../types.js';
import { LabError } from '../../../util/errors.js';
import { run, sleep, spawnLines, type LineWatcher, type RunResult } from '../../../util/proc.js';
import { pidStartTime } from '../../../util/proc.js';
import { cleanLab } from '../../../state/clean.js';
import { allHosts, buildNetwork, renderNetworkPlan, type NetworkPlan } from './network.js';
import { Supervisor, type Managed } from './procs.js';
import { flushTransientState, isolate, resetKernelState, unisolate } from './faults.js';

interface NetnsProc extends HostProc {
  managed?: Managed;
  watcher?: LineWatcher;
}

/** uid/gid of a system user (FRR's daemons drop to `frr` and must read their config) */
function userIds(name: string): { uid: number; gid: number } | null {
  const row = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${name}:`));
  if (!row) return null;
  const f = row.split(':');
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

export class NetnsRuntime implements HostRuntime {
  readonly name = 'netns' as const;
  readonly net: NetworkPlan;
  private readonly sup: Supervisor;
  private readonly list: NetnsProc[] = [];
  private downed = false;

  constructor(
    readonly topology: Topology,
    private readonly ctx: Pick<UpContext, 'prefix' | 'state' | 'signal'>,
  ) {
    this.net = renderNetworkPlan(topology, ctx.prefix);
    this.sup = new Supervisor(ctx.state, ctx.state.subdir('logs'));
  }

  get prefix(): string {
    return this.ctx.prefix;
  }

  ns(host: string): string {
    const ns = this.net.hostNs[host];
    if (!ns) throw new LabError(`no host '${host}' in topology ${this.topology.name}; hosts: ${Object.keys(this.net.hostNs).join(', ')}`);
    return ns;
  }

  private host(name: string): Host {
    const h = allHosts(this.topology).find((x) => x.name === name);
    if (!h) throw new LabError(`no host '${name}' in topology ${this.topology.name}`);
    return h;
  }

  async versions(): Promise<Record<string, string>> {
    const r = await run('uname', ['-r'], { reject: false });
    return { kernel: r.stdout.trim() || 'unknown', runtime: 'netns' };
  }

  async build(): Promise<void> {
    await buildNetwork(this.net, this.ctx.state);
  }

  exec(host: string, cmd: string, args: string[], opts: ExecOptions = {}): Promise<RunResult> {
    return run(cmd, args, { ns: this.ns(host), ...opts });
  }

  async writeFile(host: string, path: string, content: string, opts: { owner?: string; mode?: number } = {}): Promise<void> {
    this.ns(host); // a known host
    const dir = dirname(path);
    // outside the lab state (FRR's own pathspace under /var/run/frr) the directory is recorded for removal
    if (!resolve(path).startsWith(resolve(this.ctx.state.dir))) this.ctx.state.record({ kind: 'dir', name: dir, host });
    mkdirSync(dir, { recursive: true });
    writeFileSync(path, content, opts.mode !== undefined ? { mode: opts.mode } : {});
    const ids = opts.owner ? userIds(opts.owner) : null;
    if (ids) {
      chownSync(dir, ids.uid, ids.gid);
      chownSync(path, ids.uid, ids.gid);
    }
  }

  async start(host: string, spec: ProcSpec): Promise<HostProc> {
    const ns = this.ns(host);
    const p: NetnsProc = { host, role: spec.role, name: spec.name, spec };
    if (spec.onLine) {
      p.watcher = spawnLines(spec.cmd, spec.args, { ns, onLine: spec.onLine });
      this.ctx.state.record({ kind: 'pid', name: `${host}/${spec.name}`, pid: p.watcher.pid, startTime: pidStartTime(p.watcher.pid), host });
    } else {
      p.managed = this.sup.start(host, spec.role as 'frr' | 'etcd' | 'daemon' | 'agent', spec.name, spec.cmd, spec.args, ns, spec.env, spec.cwd);
    }
    this.list.push(p);
    return p;
  }

  private managed(p: HostProc): Managed | undefined {
    return (p as NetnsProc).managed;
  }

  async stop(p: HostProc, graceMs = 5000): Promise<void> {
    const w = (p as NetnsProc).watcher;
    if (w) return w.stop();
    const m = this.managed(p);
    if (m) await this.sup.stop(m, graceMs);
  }

  async kill(p: HostProc): Promise<void> {
    const m = this.managed(p);
    if (m) this.sup.kill(m);
    else await (p as NetnsProc).watcher?.stop();
  }

  async signal(p: HostProc, sig: 'SIGSTOP' | 'SIGCONT'): Promise<void> {
    const m = this.managed(p);
    if (m) this.sup.signal(m, sig);
  }

  async respawn(p: HostProc): Promise<void> {
    const m = this.managed(p);
    if (m) this.sup.spawn(m);
    else if ((p as NetnsProc).watcher) (p as NetnsProc).watcher = spawnLines(p.spec.cmd, p.spec.args, { ns: this.ns(p.host), onLine: p.spec.onLine! });
  }

  isRunning(p: HostProc): boolean {
    return this.managed(p)?.daemon?.isRunning() ?? false;
  }

  pidOf(p: HostProc): number | null {
    const d = this.managed(p)?.daemon;
    return d?.isRunning() ? d.pid : null;
  }

  logTail(p: HostProc, lines = 20): string {
    return this.managed(p)?.daemon?.logTail(lines) ?? '';
  }

  procs(host: string, role?: ProcRole): HostProc[] {
    return this.list.filter((p) => p.host === host && (!role || p.role === role));
  }

  forget(p: HostProc): void {
    const m = this.managed(p);
    if (m) this.sup.forget(m);
    const i = this.list.indexOf(p as NetnsProc);
    if (i >= 0) this.list.splice(i, 1);
  }

  // --- whole-host faults ---------------------------------------------------------------------

  isolate(host: string): Promise<void> {
    return isolate(this.host(host), this.ns(host));
  }

  unisolate(host: string): Promise<void> {
    return unisolate(this.ns(host));
  }

  /** the drop first, so nothing the dying processes might still send gets out; then SIGKILL; then what a reboot forgets */
  async crash(host: string): Promise<void> {
    await this.isolate(host);
    for (const p of this.procs(host).filter((x) => x.role !== 'watcher')) await this.kill(p);
    await this.resetKernelState(host);
  }

  async shutdown(host: string, order: HostProc[], graceMs: number): Promise<void> {
    for (const p of order) await this.stop(p, graceMs);
    await this.resetKernelState(host);
  }

  /** a namespace does not reboot: lift the drop a crash left (the kernel state was reset when it went down) */
  async boot(host: string): Promise<void> {
    await this.unisolate(host);
  }

  async freeze(host: string): Promise<void> {
    for (const p of this.procs(host).filter((x) => x.role !== 'watcher')) await this.signal(p, 'SIGSTOP');
  }

  async thaw(host: string): Promise<void> {
    for (const p of this.procs(host).filter((x) => x.role !== 'watcher')) await this.signal(p, 'SIGCONT');
  }

  async linkFlap(host: string, downMs: number, signal?: AbortSignal): Promise<void> {
    const h = this.host(host);
    const ns = this.ns(host);
    const dev = h.interfaces[0]!.ifname;
    await run('ip', ['link', 'set', dev, 'down'], { ns });
    await sleep(downMs, signal);
    await run('ip', ['link', 'set', dev, 'up'], { ns });
    // a link going down takes its routes with it: the default route comes back with the link
    if (h.gateway) await run('ip', ['route', 'replace', 'default', 'via', h.gateway], { ns, reject: false });
  }

  resetKernelState(host: string): Promise<void> {
    return resetKernelState(this.host(host), this.ns(host));
  }

  flushTransientState(host: string): Promise<void> {
    return flushTransientState(this.ns(host));
  }

  async down(): Promise<void> {
    if (this.downed) return;
    this.downed = true;
    await Promise.all(this.list.filter((p) => p.watcher).map((p) => p.watcher!.stop()));
    const r = await cleanLab(this.ctx.state, { graceMs: 1500 });
    if (r.errors.length) throw new LabError(`teardown of ${this.prefix} left: ${r.errors.join('; ')}`);
  }
}
