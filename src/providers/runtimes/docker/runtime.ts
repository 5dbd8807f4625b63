/**
 * The docker runtime (HostRuntime) for EMULATED nodes: one container of the lab appliance
 * (./appliance.ts) per lab host — routers, nodes, clients, the load balancer — on `--internal`
 * Docker networks, one per lab segment, with the lab's own addresses (./network.ts); inside each
 * container the lab's segments are a VXLAN overlay over Docker's link (./overlay.ts says why).
 *
 *  - processes: `docker exec` of the process wrapped so it leads its own process group and
 *    stays attached (its output streams here: logs, watchers' lines); the exec's host pid
 *    (`ExecInspect.Pid`) is recorded in the lab state like any lab pid, and stop/kill/SIGSTOP go
 *    to that group directly (this runtime needs a local Linux engine: its containers' processes
 *    are this machine's processes);
 *  - files: the lab state directory and this checkout are bind-mounted at the same paths (the
 *    checkout read-only), so config files, unix sockets and event files work unchanged; a file
 *    outside the state (FRR's /var/run/frr/<instance>) is written inside the container;
 *  - faults as Docker operations: crash = the sim's drop, then `docker kill` (every process dies
 *    at once, the network namespace with them), shutdown = SIGTERM to the node's processes in
 *    order (the container stays up, refusing, as a Talos node does until it powers off),
 *    boot = `docker stop` where still running, then `docker start` (a fresh namespace, the
 *    overlay script again), freeze = `docker pause`, link flap = the lab link down and
 *    `docker network disconnect` / `connect` with the same address (Docker's new link is found
 *    by that address and becomes the underlay again), partition = the sim's nftables rules
 *    inside the container.
 *
 * Everything is recorded in the lab state before it is created (networks, containers) or right
 * after (pids), named `<prefix>-…` and labelled `tlab.id=<lab id>`, so `lab clean` removes it.
 * Nothing is changed in the host's root network namespace beyond what dockerd itself does when
 * it creates networks and containers.
 */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type Docker from 'dockerode';
import type { Host, Topology } from '../../../model/types.js';
import type { UpContext } from '../../types.js';
import type { ExecOptions, HostProc, HostRuntime, ProcRole, ProcSpec } from '../types.js';
import { LabError, ProcessError } from '../../../util/errors.js';
import { isAlive, now, pidStartTime, quote, signalGroup, sleep, type RunResult } from '../../../util/proc.js';
import { cleanLab } from '../../../state/clean.js';
import { REPO_ROOT } from '../../../model/load.js';
import { flushTransientStateWith, isolateRules, resetKernelStateWith } from '../netns/faults.js';
import { dockerVersion, brNetfilter } from './dockerd.js';
import { dockerExec, dockerExecAttached, disconnectNetwork, isRunning, killContainer, pauseContainer, reconnectNetwork, startContainer, stopContainer, unpauseContainer, waitNotRunning } from './engine.js';
import { allHosts, buildNetworkPlans, containerName, idOfPrefix, networkName, OPT_MTU, type DockerNetworkPlan } from './network.js';
import { overlayScript, READY_ALIAS, UNDERLAY_MTU } from './overlay.js';

/** wraps a command so it leads its own session and process group (POSIX setsid), then execs it: the exec's pid is the command's */
const LEADER = ['perl', '-MPOSIX', '-e', 'POSIX::setsid(); exec { $ARGV[0] } @ARGV or die "exec $ARGV[0]: $!\\n"'];
/** lines of a process's output kept for readiness errors */
const TAIL_LINES = 200;

interface DockerProc extends HostProc {
  pid: number;
  startTime: number | null;
  /** false once the exec's stream has ended (or the container went away) */
  attached: boolean;
  tail: string[];
  logFile: string;
}

export interface DockerRuntimeOptions {
  /** the appliance image (its tag once ensured) */
  image(): string;
  docker: Docker;
  /** the engine's API version (a reconnected link's name) */
  apiVersion?: string;
}

export function dockerEmulatedNetworkPlans(t: Topology, prefix: string): DockerNetworkPlan[] {
  return buildNetworkPlans(t, { prefix, labels: { 'tlab.nodes': 'emulated' } }).map((n) => ({
    ...n,
    masquerade: false,
    // internal: no route to anything outside the lab; the lab's traffic rides the overlay
    options: { ...n.options, Internal: true, Options: { [OPT_MTU]: String(UNDERLAY_MTU) } },
  }));
}

export function dockerEmulatedContainer(t: Topology, h: Host, o: { prefix: string; image: string; stateDir: string }): Docker.ContainerCreateOptions & { name: string } {
  const [first] = h.interfaces;
  const net = networkName(o.prefix, first!.segment);
  const name = containerName(o.prefix, h.name);
  return {
    name,
    Hostname: h.name,
    Image: o.image,
    // the network first (overlay, routes, sysctls), then nothing but the init keeping it alive
    Cmd: ['/bin/sh', '-c', `${overlayScript(t, h)}exec sleep infinity`],
    Labels: { 'tlab.id': idOfPrefix(o.prefix), 'tlab.host': h.name, 'tlab.kind': h.kind, 'tlab.nodes': 'emulated' },
    // SIGTERM ends `sleep infinity` under the init at once
    StopTimeout: 10,
    WorkingDir: REPO_ROOT,
    HostConfig: {
      // what the lab's processes do to their own network namespace: links, addresses, routes,
      // nftables, raw ARP (NET_ADMIN, NET_RAW), and the per-link sysctls under /proc/sys, which
      // Docker mounts read-only unless its system paths are unconfined. Not `privileged`: that
      // asks for every capability, and runc refuses to start where the host's bounding set lacks
      // one ("unable to apply caps": e.g. CAP_SYS_RESOURCE in some VMs)
      CapAdd: ['NET_ADMIN', 'NET_RAW', 'SYS_ADMIN'],
      // `--security-opt systempaths=unconfined` as the docker CLI sends it (API ≥ 1.40): nothing masked or read-only
      MaskedPaths: [],
      ReadonlyPaths: [],
      Init: true,
      NetworkMode: net,
      // tsx compiles each module once per cache: one cache in the lab state for all the lab's
      // containers (tsx keeps it at os.tmpdir()/tsx-<uid>; the lab's processes run as root),
      // as the sim's agents share the machine's /tmp
      Binds: [`${REPO_ROOT}:${REPO_ROOT}:ro`, `${o.stateDir}:${o.stateDir}`, `${join(o.stateDir, 'tsx-cache')}:/tmp/tsx-0`],
    },
    NetworkingConfig: { EndpointsConfig: { [net]: { IPAMConfig: { IPv4Address: first!.ip } } } },
  };
}

export class DockerRuntime implements HostRuntime {
  readonly name = 'docker' as const;
  private readonly list: DockerProc[] = [];
  private readonly logs: string;
  private downed = false;

  constructor(
    /** the overlay topology (./overlay.ts overlayTopology): its ifnames are the lab's links in the containers */
    readonly topology: Topology,
    private readonly ctx: Pick<UpContext, 'prefix' | 'state' | 'signal' | 'progress'>,
    private readonly o: DockerRuntimeOptions,
  ) {
    this.logs = ctx.state.subdir('logs');
  }

  get prefix(): string {
    return this.ctx.prefix;
  }
  private get d(): Docker {
    return this.o.docker;
  }
  private host(name: string): Host {
    const h = allHosts(this.topology).find((x) => x.name === name);
    if (!h) throw new LabError(`no host '${name}' in topology ${this.topology.name}; hosts: ${allHosts(this.topology).map((x) => x.name).join(', ')}`);
    return h;
  }
  cname(host: string): string {
    this.host(host);
    return containerName(this.prefix, host);
  }

  async versions(): Promise<Record<string, string>> {
    const v = await dockerVersion(this.d);
    const br = await brNetfilter();
    return {
      docker: v.version,
      'docker api': v.apiVersion,
      ...(v.containerd ? { containerd: v.containerd } : {}),
      ...(v.runc ? { runc: v.runc } : {}),
      kernel: v.kernel,
      runtime: 'docker',
      appliance: this.o.image(),
      br_netfilter: br.loaded ? `loaded (bridge-nf-call-iptables=${br.bridgeNfCallIptables ?? '?'})` : 'not loaded',
    };
  }

  async build(signal?: AbortSignal): Promise<void> {
    const t = this.topology;
    this.ctx.state.subdir('tsx-cache');
    for (const n of dockerEmulatedNetworkPlans(t, this.prefix)) {
      signal?.throwIfAborted();
      this.ctx.progress?.(`docker: network ${n.name} ${n.options.IPAM?.Config?.[0]?.Subnet} (internal)`);
      this.ctx.state.record({ kind: 'network', name: n.name });
      await this.d.createNetwork(n.options);
    }
    for (const h of allHosts(t)) {
      signal?.throwIfAborted();
      const c = dockerEmulatedContainer(t, h, { prefix: this.prefix, image: this.o.image(), stateDir: this.ctx.state.dir });
      this.ctx.state.record({ kind: 'container', name: c.name, host: h.name });
      const ct = await this.d.createContainer(c);
      for (const i of h.interfaces.slice(1)) await this.d.getNetwork(networkName(this.prefix, i.segment)).connect({ Container: ct.id, EndpointConfig: { IPAMConfig: { IPv4Address: i.ip } } });
      await ct.start();
    }
    await Promise.all(allHosts(t).map((h) => this.waitNetwork(h.name, 30_000, signal)));
  }

  /** until the container's overlay script has finished (the alias it leaves on `lo`) */
  private async waitNetwork(host: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      signal?.throwIfAborted();
      const r = await dockerExec(this.d, this.cname(host), ['ip', '-o', 'link', 'show', 'dev', 'lo']).catch((e: Error) => ({ stdout: '', stderr: e.message, exitCode: -1 }));
      if (r.stdout.includes(`alias ${READY_ALIAS}`)) return;
      last = r.stderr.trim();
      if (Date.now() > deadline) {
        const logs = await this.d
          .getContainer(this.cname(host))
          .logs({ stdout: true, stderr: true, tail: 20 })
          .then((b) => String(b))
          .catch(() => '');
        throw new LabError(`${host}: the container's network did not come up within ${timeoutMs / 1000} s${last ? ` (${last})` : ''}\n${logs}`);
      }
      await sleep(100, signal);
    }
  }

  async exec(host: string, cmd: string, args: string[], opts: ExecOptions = {}): Promise<RunResult> {
    const started = performance.now();
    const env = Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`);
    // stdin as an environment variable piped in by the container's shell: no hijacked stdin
    const argv = opts.input !== undefined ? ['sh', '-c', 'printf "%s" "$TLAB_STDIN" | exec "$@"', 'sh', cmd, ...args] : [cmd, ...args];
    if (opts.input !== undefined) env.push(`TLAB_STDIN=${opts.input}`);
    const command = `docker exec ${this.cname(host)} ${quote([cmd, ...args])}`;
    let r: { stdout: string; stderr: string; exitCode: number };
    try {
      const p = dockerExec(this.d, this.cname(host), argv, { env });
      const timeoutMs = opts.timeoutMs ?? 30_000;
      let timer: NodeJS.Timeout | undefined;
      r = await Promise.race([
        p,
        new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new ProcessError(command, undefined, undefined, '', `timed out after ${timeoutMs} ms`, timeoutMs, true)), timeoutMs))),
        ...(opts.signal ? [new Promise<never>((_, rej) => opts.signal!.addEventListener('abort', () => rej(opts.signal!.reason), { once: true }))] : []),
      ]).finally(() => clearTimeout(timer));
    } catch (e) {
      // a paused or stopped container (freeze, crash) cannot exec: a failed command, like a host that does not answer
      if (e instanceof ProcessError || opts.signal?.aborted) throw e;
      r = { stdout: '', stderr: (e as Error).message, exitCode: 125 };
    }
    const durationMs = performance.now() - started;
    if (r.exitCode !== 0 && opts.reject !== false) throw new ProcessError(command, r.exitCode, undefined, r.stdout, r.stderr, durationMs, false);
    return { command, stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode, durationMs };
  }

  async writeFile(host: string, path: string, content: string, opts: { owner?: string; mode?: number } = {}): Promise<void> {
    const inState = resolve(path).startsWith(resolve(this.ctx.state.dir) + '/');
    if (inState && !opts.owner) {
      // the state directory is the same on both sides
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, content, opts.mode !== undefined ? { mode: opts.mode } : {});
      return;
    }
    // inside the container (FRR's pathspace), owned by a user of the container
    const script = [
      'set -e',
      'mkdir -p "$(dirname "$F")"',
      'printf "%s" "$C" > "$F"',
      ...(opts.mode !== undefined ? [`chmod ${opts.mode.toString(8)} "$F"`] : []),
      ...(opts.owner ? [`chown "$O:$O" "$(dirname "$F")" "$F"`] : []),
    ].join('\n');
    const r = await dockerExec(this.d, this.cname(host), ['sh', '-c', script], { env: [`F=${path}`, `C=${content}`, ...(opts.owner ? [`O=${opts.owner}`] : [])] });
    if (r.exitCode !== 0) throw new LabError(`${host}: writing ${path} failed: ${r.stderr || r.stdout}`);
  }

  async start(host: string, spec: ProcSpec): Promise<HostProc> {
    const p: DockerProc = {
      host,
      role: spec.role,
      name: spec.name,
      spec,
      pid: 0,
      startTime: null,
      attached: false,
      tail: [],
      logFile: join(this.logs, `${host}-${spec.name}.log`),
    };
    await this.spawn(p);
    this.list.push(p);
    return p;
  }

  /** the process, through `docker exec`, attached: its lines to the log, the tail and the watcher */
  private async spawn(p: DockerProc): Promise<void> {
    const s = p.spec;
    // the orchestrator's own node binary does not exist in the container: the appliance's does (same version offline, ≥ 20 online)
    const cmd = s.cmd === process.execPath ? 'node' : s.cmd;
    const env = Object.entries(s.env ?? {}).map(([k, v]) => `${k}=${v}`);
    const buf = { out: '', err: '' };
    const onChunk = (which: 'out' | 'err') => (chunk: Buffer) => {
      const t = now();
      buf[which] += chunk.toString('utf8');
      let nl: number;
      while ((nl = buf[which].indexOf('\n')) >= 0) {
        const line = buf[which].slice(0, nl);
        buf[which] = buf[which].slice(nl + 1);
        if (which === 'out' && s.onLine) {
          if (line) s.onLine(line, t);
          continue;
        }
        p.tail.push(line);
        if (p.tail.length > TAIL_LINES) p.tail.shift();
        try {
          appendFileSync(p.logFile, line + '\n');
        } catch {
          // the state directory went away (teardown)
        }
      }
    };
    const a = await dockerExecAttached(this.d, this.cname(p.host), [...LEADER, cmd, ...s.args], { env, workdir: s.cwd, onStdout: onChunk('out'), onStderr: onChunk('err') });
    p.pid = a.pid;
    p.startTime = a.pid ? pidStartTime(a.pid) : null;
    p.attached = true;
    if (a.pid) this.ctx.state.record({ kind: 'pid', name: `${p.host}/${s.name}`, pid: a.pid, startTime: p.startTime, host: p.host });
    void a.done.then((code) => {
      if (p.pid === a.pid) p.attached = false;
      if (code !== 0 && code !== -1) p.tail.push(`[exited ${code}]`);
    });
  }

  private alive(p: DockerProc): boolean {
    return p.pid > 0 && isAlive(p.pid) && pidStartTime(p.pid) === p.startTime;
  }

  async stop(p: HostProc, graceMs = 5000): Promise<void> {
    const d = p as DockerProc;
    if (!this.alive(d)) return;
    signalGroup(d.pid, 'SIGTERM');
    const deadline = Date.now() + graceMs;
    while (Date.now() < deadline) {
      if (!this.alive(d)) return;
      await sleep(20);
    }
    if (this.alive(d)) signalGroup(d.pid, 'SIGKILL');
    const hard = Date.now() + 2000;
    while (Date.now() < hard && this.alive(d)) await sleep(10);
  }

  async kill(p: HostProc): Promise<void> {
    const d = p as DockerProc;
    if (this.alive(d)) signalGroup(d.pid, 'SIGKILL');
  }

  async signal(p: HostProc, sig: 'SIGSTOP' | 'SIGCONT'): Promise<void> {
    const d = p as DockerProc;
    if (this.alive(d)) signalGroup(d.pid, sig);
  }

  async respawn(p: HostProc): Promise<void> {
    const d = p as DockerProc;
    if (this.alive(d)) return;
    await this.spawn(d);
  }

  isRunning(p: HostProc): boolean {
    return this.alive(p as DockerProc);
  }

  /** the engine's host pid of the exec (the engine runs on this machine: its pids are the ones signalled above) */
  pidOf(p: HostProc): number | null {
    return this.alive(p as DockerProc) ? (p as DockerProc).pid : null;
  }

  logTail(p: HostProc, lines = 20): string {
    return (p as DockerProc).tail.slice(-lines).join('\n');
  }

  procs(host: string, role?: ProcRole): HostProc[] {
    return this.list.filter((p) => p.host === host && (!role || p.role === role));
  }

  forget(p: HostProc): void {
    const i = this.list.indexOf(p as DockerProc);
    if (i >= 0) this.list.splice(i, 1);
  }

  // --- whole-host faults -----------------------------------------------------------------------

  /** the sim's drop (netns/faults.ts isolateRules) inside the container: overlay and underlay alike */
  async isolate(host: string): Promise<void> {
    await this.exec(host, 'nft', ['-f', '-'], { input: isolateRules(this.host(host)) + '\n' });
  }

  async unisolate(host: string): Promise<void> {
    await this.exec(host, 'sh', ['-c', 'for f in netdev inet arp; do nft delete table $f tlab_fault 2>/dev/null; done; true'], { reject: false });
  }

  /**
   * The sim's drop first, then `docker kill`: every process dies at once and the network
   * namespace goes with them. Without the drop, the kernel answers for the killed processes in
   * the moment between their death and the namespace's: a connection in flight to the API server
   * gets a RST instead of silence (HAProxy's check then fails at once instead of after its
   * connect timeout, measured 2.27 s against the 2.8 s a silent crash needs at inter 1 s, fall 2).
   * A machine that loses power sends nothing. A paused container cannot be asked to drop: it
   * sends nothing either.
   */
  async crash(host: string): Promise<void> {
    await this.isolate(host).catch(() => null);
    await killContainer(this.d, this.cname(host), 'SIGKILL');
    await waitNotRunning(this.d, this.cname(host), 10_000);
  }

  /**
   * SIGTERM to the given processes in order (each may say goodbye); the container and its network
   * stay up, refusing connections, as the sim's namespace does. Talos, too, stops every pod
   * (`StopAllPods`) and then its services, unmounts and tears volumes down before it powers off
   * (the Shutdown sequence, internal/app/machined/pkg/runtime/v1alpha1/v1alpha1_sequencer.go
   * `Shutdown` and `stopAllPhaselist` @v1.11.6): its links keep their addresses meanwhile, so a
   * balancer's checks are refused, not left to time out. A `docker stop` here silenced the node
   * right after its processes and turned HAProxy's graceful failover into a crash's (3.96 s
   * against ≤ 2.5 s at inter 1 s, fall 2). The power-off is `boot`'s `docker stop`, and with it
   * the kernel state goes (addresses, nftables, conntrack): a Talos node keeps them until it
   * powers off too, and a reset here would cost a handful of `docker exec`s on the busiest
   * second of the drill.
   */
  async shutdown(host: string, order: HostProc[], graceMs: number): Promise<void> {
    for (const p of order) await this.stop(p, graceMs);
  }

  /**
   * A reboot: `docker stop` of a container a shutdown left running (its lab processes are gone:
   * only the init's `sleep` ends), then `docker start` — a fresh namespace, the overlay script
   * again; no lab process runs yet.
   */
  async boot(host: string): Promise<void> {
    const name = this.cname(host);
    if (await isRunning(this.d, name)) await stopContainer(this.d, name, 10);
    await startContainer(this.d, name);
    await this.waitNetwork(host, 30_000, this.ctx.signal);
  }

  /** `docker pause` (cgroup freezer): processes stop, the kernel still answers ARP and TCP handshakes */
  freeze(host: string): Promise<void> {
    return pauseContainer(this.d, this.cname(host));
  }

  thaw(host: string): Promise<void> {
    return unpauseContainer(this.d, this.cname(host));
  }

  /**
   * The lab's link down and `docker network disconnect` of Docker's link under it for downMs,
   * then `connect` with the same address and the overlay script, which brings the lab's link up.
   * The lab's link keeps its name and addresses meanwhile, and loses its routes, as a link that
   * goes down does (the sim's flap). Taking it down is also what lets Docker reconnect: Docker
   * 20.10 refuses to program an address whose subnet an existing route of the container already
   * covers ("cannot program address … conflicts with existing route"), and the lab link's
   * connected route is that route while the link is up. Docker names the new link as it likes
   * (eth<N>): the overlay script finds it by the lab address Docker gave it and makes it the
   * underlay again.
   */
  async linkFlap(host: string, downMs: number, signal?: AbortSignal): Promise<void> {
    const h = this.host(host);
    const i = h.interfaces[0]!;
    const net = networkName(this.prefix, i.segment);
    const name = this.cname(host);
    await this.exec(host, 'ip', ['link', 'set', 'dev', i.ifname, 'down']);
    await disconnectNetwork(this.d, net, name);
    try {
      await sleep(downMs, signal);
    } finally {
      await reconnectNetwork(this.d, net, name, i.ip, i.ifname, this.o.apiVersion);
      const r = await dockerExec(this.d, name, ['sh', '-c', overlayScript(this.topology, h)]);
      if (r.exitCode !== 0) throw new LabError(`${host}: its link came back but the overlay did not: ${r.stderr || r.stdout}`);
    }
  }

  resetKernelState(host: string): Promise<void> {
    return resetKernelStateWith(this.host(host), (cmd, args, o) => this.exec(host, cmd, args, o), host);
  }

  flushTransientState(host: string): Promise<void> {
    return flushTransientStateWith((cmd, args, o) => this.exec(host, cmd, args, o), host);
  }

  /** remove everything the lab created: the same code `lab clean` runs on the recorded state */
  async down(): Promise<void> {
    if (this.downed) return;
    this.downed = true;
    const r = await cleanLab(this.ctx.state, { graceMs: 1500 });
    if (r.errors.length) throw new LabError(`teardown of ${this.prefix} left: ${r.errors.join('; ')}`);
  }
}
