/**
 * The Docker Engine, through dockerode: connect and ping, exec with separated output, containers
 * (create with fixed addresses on several networks, start, graceful stop, kill, pause, wait),
 * network disconnect/reconnect keeping the interface's name, and one-shot helper containers
 * joined to another container's network namespace. Generic: nothing here knows what runs in the
 * containers.
 */
import { Writable } from 'node:stream';
import type Docker from 'dockerode';
import { LabError } from '../../../util/errors.js';
import { sleep } from '../../../util/proc.js';

export interface ExecResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export async function connectDocker(): Promise<Docker> {
  const { default: DockerCtor } = await import('dockerode');
  return new DockerCtor();
}

export async function pingDocker(d: Docker, timeoutMs = 5000): Promise<{ ok: true } | { ok: false; why: string; permission: boolean }> {
  // abortable: a daemon that never answers must not keep the process alive after the check
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
  try {
    await (d.ping as (o: { abortSignal: AbortSignal }) => Promise<unknown>)({ abortSignal: ac.signal });
    return { ok: true };
  } catch (e) {
    const err = (ac.signal.aborted ? ac.signal.reason : e) as NodeJS.ErrnoException;
    return { ok: false, why: err.message, permission: err.code === 'EACCES' || /permission denied/i.test(err.message) };
  } finally {
    clearTimeout(timer);
  }
}

/** The engine's API version as numbers (`1.41` → [1, 41]). */
export function apiVersionOf(v: string | undefined): [number, number] {
  const m = /^(\d+)\.(\d+)/.exec(v ?? '');
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

/**
 * Docker 28 (API 1.48) lets a network endpoint name the container's interface
 * (`EndpointSettings.DriverOpts["com.docker.network.endpoint.ifname"]`, moby v28.0.0 release
 * notes, "docker network connect --driver-opt com.docker.network.endpoint.ifname=…"). Before,
 * libnetwork names a (re)connected interface `eth<N>` by order, so a reconnect can come back
 * under another name.
 */
export const IFNAME_OPT = 'com.docker.network.endpoint.ifname';
export function supportsIfnameOpt(apiVersion: string | undefined): boolean {
  const [maj, min] = apiVersionOf(apiVersion);
  return maj > 1 || (maj === 1 && min >= 48);
}

const sink = (into: Buffer[]) =>
  new Writable({
    write(chunk, _enc, cb) {
      into.push(Buffer.from(chunk));
      cb();
    },
  });

/**
 * Run a command in a running container and collect its output and exit code. The output sinks and
 * the end/close listeners are attached in the same tick the stream arrives: an exec that finishes
 * at once (a fast engine, a trivial command) otherwise ends before anyone listens, and the call
 * never returns.
 */
export async function dockerExec(d: Docker, container: string, cmd: string[], o: { env?: string[]; user?: string; workdir?: string } = {}): Promise<ExecResult> {
  const c = d.getContainer(container);
  const ex = await c.exec({ Cmd: cmd, Env: o.env ?? [], AttachStdout: true, AttachStderr: true, ...(o.user ? { User: o.user } : {}), ...(o.workdir ? { WorkingDir: o.workdir } : {}) });
  const stream = await ex.start({ hijack: true, stdin: false });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const ended = new Promise<void>((res, rej) => {
    stream.once('end', () => res());
    stream.once('close', () => res());
    stream.once('error', rej);
  });
  d.modem.demuxStream(stream, sink(out), sink(err));
  const s = stream as NodeJS.ReadableStream & { readableEnded?: boolean; destroyed?: boolean };
  if (!s.readableEnded && !s.destroyed) await ended;
  const info = await ex.inspect();
  return { stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), exitCode: info.ExitCode ?? -1 };
}

export interface AttachedExec {
  /** the exec'd process's pid in the HOST's pid namespace (`ExecInspect.Pid`) */
  pid: number;
  /** resolves with the exit code once the exec's output stream has ended */
  done: Promise<number>;
}

/**
 * Start a long-running command in a container and keep its output attached: each chunk of
 * stdout/stderr goes to the callbacks as it arrives, `done` resolves when the stream ends. The
 * sinks are attached in the tick the stream arrives (see dockerExec).
 */
export async function dockerExecAttached(
  d: Docker,
  container: string,
  cmd: string[],
  o: { env?: string[]; workdir?: string; onStdout(chunk: Buffer): void; onStderr(chunk: Buffer): void },
): Promise<AttachedExec> {
  const ex = await d.getContainer(container).exec({ Cmd: cmd, Env: o.env ?? [], AttachStdout: true, AttachStderr: true, ...(o.workdir ? { WorkingDir: o.workdir } : {}) });
  const stream = await ex.start({ hijack: true, stdin: false });
  const ended = new Promise<void>((res) => {
    stream.once('end', () => res());
    stream.once('close', () => res());
    stream.once('error', () => res());
  });
  const to = (f: (b: Buffer) => void) =>
    new Writable({
      write(chunk, _enc, cb) {
        f(Buffer.from(chunk));
        cb();
      },
    });
  d.modem.demuxStream(stream, to(o.onStdout), to(o.onStderr));
  // the hijacked start answers before the engine has started the process: wait for its pid (or
  // its exit code, when it ended before it could be seen)
  let pid = 0;
  for (let i = 0; i < 500; i++) {
    const info = await ex.inspect();
    pid = info.Pid ?? 0;
    if (pid > 0 || (!info.Running && info.ExitCode !== null && info.ExitCode !== undefined)) break;
    await sleep(10);
  }
  const done = ended.then(async () => (await ex.inspect().catch(() => null))?.ExitCode ?? -1);
  return { pid, done };
}

/** Start a long-running command in a container and return at once (its output goes where the command sends it). */
export async function dockerExecDetached(d: Docker, container: string, cmd: string[], o: { env?: string[]; user?: string } = {}): Promise<void> {
  const ex = await d.getContainer(container).exec({ Cmd: cmd, Env: o.env ?? [], AttachStdout: false, AttachStderr: false, ...(o.user ? { User: o.user } : {}) });
  await ex.start({ Detach: true });
}

export interface ContainerPlan {
  host: string;
  name: string;
  /** the exact dockerode create options */
  options: Docker.ContainerCreateOptions;
  /** further networks, connected after create and before start, with fixed addresses and interface names */
  connect: { network: string; ip: string; ifname: string }[];
}

const statusOf = (e: unknown) => (e as { statusCode?: number }).statusCode;

/** Create, connect the further networks, start. */
export async function createAndStart(d: Docker, c: ContainerPlan, o: { apiVersion?: string; options?: Docker.ContainerCreateOptions } = {}): Promise<Docker.Container> {
  const ct = await d.createContainer(o.options ?? c.options);
  for (const x of c.connect) {
    await d.getNetwork(x.network).connect({
      Container: ct.id,
      EndpointConfig: { IPAMConfig: { IPv4Address: x.ip }, ...(supportsIfnameOpt(o.apiVersion) ? { DriverOpts: { [IFNAME_OPT]: x.ifname } } : {}) },
    });
  }
  await ct.start();
  return ct;
}

/** `docker start`; a container that already runs (304) is fine. */
export async function startContainer(d: Docker, name: string): Promise<void> {
  await d
    .getContainer(name)
    .start()
    .catch((e: unknown) => {
      if (statusOf(e) !== 304) throw e;
    });
}

/** `docker stop -t graceS`: the stop signal, then SIGKILL after the grace time; a stopped (304) or gone (404) container is fine. */
export async function stopContainer(d: Docker, name: string, graceS: number): Promise<void> {
  await d
    .getContainer(name)
    .stop({ t: graceS })
    .catch((e: unknown) => {
      if (statusOf(e) !== 304 && statusOf(e) !== 404) throw e;
    });
}

export async function killContainer(d: Docker, name: string, signal = 'SIGKILL'): Promise<void> {
  await d.getContainer(name).kill({ signal });
}
export async function pauseContainer(d: Docker, name: string): Promise<void> {
  await d.getContainer(name).pause();
}
export async function unpauseContainer(d: Docker, name: string): Promise<void> {
  await d.getContainer(name).unpause();
}

/** Is the container running (or paused)? false when it exited or is gone. */
export async function isRunning(d: Docker, name: string): Promise<boolean> {
  try {
    const i = await d.getContainer(name).inspect();
    return Boolean(i.State?.Running);
  } catch (e) {
    if (statusOf(e) === 404) return false;
    throw e;
  }
}

/** Wait until the container is not running (`POST /containers/{id}/wait?condition=not-running`), at most `timeoutMs`; true when it stopped. */
export async function waitNotRunning(d: Docker, name: string, timeoutMs: number): Promise<boolean> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  try {
    await (d.getContainer(name).wait as (o: object) => Promise<unknown>)({ condition: 'not-running', abortSignal: ac.signal });
    return true;
  } catch (e) {
    if (ac.signal.aborted) return false;
    if (statusOf(e) === 404) return true;
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

/** Remove a container with its anonymous volumes; a gone one (404) is fine. */
export async function removeContainer(d: Docker, name: string): Promise<void> {
  await d
    .getContainer(name)
    .remove({ force: true, v: true })
    .catch((e: unknown) => {
      if (statusOf(e) !== 404) throw e;
    });
}

// ---------------------------------------------------------------------------------------------
// links

export async function disconnectNetwork(d: Docker, network: string, container: string): Promise<void> {
  await d.getNetwork(network).disconnect({ Container: container, Force: true });
}

/** Reconnect with the same address (and, where the engine can, the same interface name); returns the endpoint's MAC. */
export async function reconnectNetwork(d: Docker, network: string, container: string, ip: string, ifname: string, apiVersion?: string): Promise<string | undefined> {
  await d.getNetwork(network).connect({
    Container: container,
    EndpointConfig: { IPAMConfig: { IPv4Address: ip }, ...(supportsIfnameOpt(apiVersion) ? { DriverOpts: { [IFNAME_OPT]: ifname } } : {}) },
  });
  const info = await d.getContainer(container).inspect();
  return info.NetworkSettings?.Networks?.[network]?.MacAddress || undefined;
}

/**
 * A shell script that gives the link with this MAC the wanted name (down, rename, up) — a no-op
 * when it already has it. Docker < 28 re-attaches a reconnected endpoint as the next `eth<N>`, and
 * Talos' and the lab's own configuration name the link (`eth0`).
 */
export function renameLinkScript(mac: string, ifname: string): string {
  const m = mac.toLowerCase();
  return [
    `cur=$(ip -o link | awk -v mac='${m}' 'tolower($0) ~ ("link/ether " mac) { sub(/@.*/, "", $2); sub(/:$/, "", $2); print $2; exit }')`,
    `[ -n "$cur" ] || { echo "no link with MAC ${m}" >&2; exit 1; }`,
    `[ "$cur" = '${ifname}' ] && exit 0`,
    `ip link set dev "$cur" down && ip link set dev "$cur" name '${ifname}' && ip link set dev '${ifname}' up`,
  ].join('\n');
}

/**
 * Run a shell script in another container's network namespace from a one-shot helper container
 * (`--network container:<target>`, NET_ADMIN) of `image`: for containers without a shell or tools
 * (Talos). The helper is removed afterwards; `record` is called before it is created.
 */
export async function runInNetns(
  d: Docker,
  target: string,
  image: string,
  script: string,
  o: { name: string; labels: Record<string, string>; record?: (name: string) => void; env?: string[] },
): Promise<void> {
  o.record?.(o.name);
  const c = await d.createContainer({
    name: o.name,
    Image: image,
    Cmd: ['sh', '-c', script],
    Env: o.env ?? [],
    Labels: o.labels,
    HostConfig: { NetworkMode: `container:${target}`, CapAdd: ['NET_ADMIN'] },
  });
  try {
    await c.start();
    const r = (await c.wait()) as { StatusCode: number };
    if (r.StatusCode !== 0) throw new LabError(`helper in ${target}'s network namespace failed (exit ${r.StatusCode})`);
  } finally {
    await c.remove({ force: true }).catch(() => null);
  }
}

/** Retry an engine call that may race a container's own start (e.g. a link not up yet). */
export async function retrying<T>(f: () => Promise<T>, tries = 5, pauseMs = 200): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await f();
    } catch (e) {
      if (i >= tries) throw e;
      await sleep(pauseMs);
    }
  }
}
