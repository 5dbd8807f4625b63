/**
 * The lab appliance: ONE image for every non-Talos container of the docker runtime — FRR routers,
 * the HAProxy box, the clients and the emulated nodes. It carries the same Debian packages the sim
 * uses on the host (FRR 8.4, HAProxy 2.6, etcd 3.4, iproute2, nftables, arping, tcpdump, conntrack)
 * pinned to exact versions, plus Node ≥ 20 for our agents. The agents' code is NOT in the image:
 * the repository (with its node_modules) is bind-mounted read-only at the same path and run with
 * `node --import tsx`, so an edit to an agent never needs a rebuild.
 *
 * One Dockerfile, two bases. The Dockerfile only needs "Debian bookworm with Node ≥ 20 on PATH":
 *  - where a registry answers: `node:20-bookworm-slim` (Docker's official Node image on Debian's
 *    bookworm-slim, Node at /usr/local/bin/node, NODE_VERSION in its environment);
 *  - where none does (CI, this machine): `tlab-bookworm-base:<hash>`, made here by
 *    `debootstrap --variant=minbase bookworm` from the host's own Debian mirror (read from
 *    /etc/apt/sources.list*), the host's `node` binary copied to /usr/local/bin/node, and
 *    `docker import` — the same layout and the same NODE_VERSION variable as the official image.
 *
 * How Node gets in, and why this way:
 *  - Debian bookworm's own nodejs is 18.20.4. Tried here: all ten agent component modules load and
 *    the process runner works under it — but the project declares `engines.node >= 20.5`, its CI
 *    and the sim run 20, and Node 18 is end-of-life. A measurement taken on another V8/libuv than
 *    the sim's is a needless difference, so 18 is not used.
 *  - Offline, the host's `node` is copied into the base: it is the very binary that runs the sim
 *    and the tests, and it is always there (it runs this code). Allowed only when the host is Linux
 *    on the engine's architecture and the binary is ≥ 20; it is executed inside the new root
 *    (chroot) before the import, so a binary needing libraries minbase lacks fails here, loudly.
 *  - Online (a laptop with Docker Desktop: the host's node is a macOS binary and cannot be copied),
 *    the official image provides Node.
 * Either way the base's id is part of the appliance hash, so a different Node means a new image.
 *
 * Offline detection: the public base is used when it is already local, or when a pull of it
 * succeeds within PULL_PROBE_MS; otherwise the local base is built (once). `offline: true` skips
 * the probe, `offline: false` makes a failed pull an error instead of a fallback.
 *
 * Built once: the tag is `tlab-appliance:<hash of Dockerfile text + pinned versions + base id>`,
 * the full hash is stored in the label `tlab.appliance.hash` (the pins in
 * `tlab.appliance.packages`); an image with that label is reused as it is, nothing is rebuilt.
 * Every image and build container carries `tlab.image=appliance` (the base too, with
 * `tlab.appliance.role=base`), intermediate containers are removed even when a step fails.
 * A new pin, a new host node or a re-pulled `node:20-bookworm-slim` changes the hash: the next
 * call builds a new appliance and the old one stays until removed (`docker rmi <old tag>`).
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, accessSync, constants as fsc, chmodSync, copyFileSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type Dockerode from 'dockerode';
import { LabError, PrerequisiteError } from '../../../util/errors.js';
import { run } from '../../../util/proc.js';

// ---------------------------------------------------------------------------------------------
// what goes into the image

/**
 * Exact Debian bookworm versions of every package the appliance installs (amd64).
 *
 * Source: `apt-cache policy` (Candidate) on a Debian 12 amd64 host after `apt-get update` against
 * deb.debian.org (bookworm, bookworm-updates, bookworm-security), 2026-11-30. Debian's mirrors keep
 * only the newest version of each package per suite, so a security update retires a pin: the build
 * then fails with apt's "Version '…' for '…' was not found" and the error names the refresh
 * command (PINS_REFRESH_COMMAND) — run it on a bookworm host, paste its output here.
 * A `+bN` suffix is a per-architecture rebuild number: on arm64 engines the table may need the
 * same refresh, run on an arm64 bookworm host.
 *
 * Why each: frr (vtysh, zebra/bgpd/bfdd/staticd: routers and node speakers), haproxy (the API
 * load balancer), etcd-server/etcd-client (the control planes' etcd, etcdctl), iproute2 (`ip`),
 * nftables (`nft`: partitions, kube-proxy DNAT, drops), iputils-arping (gratuitous ARP),
 * iputils-ping (reachability checks), tcpdump (wire events), openssl (the emulated API servers'
 * certificates), procps (`sysctl`, `ps`), curl + ca-certificates (probes by hand), conntrack
 * (flushing/inspecting flows in ECMP drills).
 */
export const APPLIANCE_PACKAGES: Readonly<Record<string, string>> = Object.freeze({
  'ca-certificates': '20250419~deb12u2',
  conntrack: '1:1.4.7-1+b2',
  curl: '7.88.1-10+deb12u15',
  'etcd-client': '3.4.23-4+b4',
  'etcd-server': '3.4.23-4+b4',
  frr: '8.4.4-1.1~deb12u2',
  haproxy: '2.6.12-1+deb12u4',
  iproute2: '6.1.0-3',
  'iputils-arping': '3:20221126-1+deb12u1',
  'iputils-ping': '3:20221126-1+deb12u1',
  nftables: '1.0.6-2+deb12u2',
  openssl: '3.0.22-1~deb12u2',
  procps: '2:4.0.2-3',
  tcpdump: '4.99.3-1',
});

/** Prints fresh `'pkg': 'version',` lines for APPLIANCE_PACKAGES (run on a Debian bookworm host). */
export const PINS_REFRESH_COMMAND =
  `apt-get update && apt-cache policy ${Object.keys(APPLIANCE_PACKAGES).join(' ')} ` +
  `| awk '/^[^ ]/{p=$1; sub(/:$/,"",p)} /Candidate:/{printf "  \\x27%s\\x27: \\x27%s\\x27,\\n", p, $2}'`;

/** The public base where a registry answers (Node 20 on Debian bookworm-slim). */
export const PUBLIC_BASE = 'node:20-bookworm-slim';
export const LOCAL_BASE_REPO = 'tlab-bookworm-base';
export const APPLIANCE_REPO = 'tlab-appliance';
/** The lowest Node major the agents run on (package.json engines: >= 20.5). */
export const MIN_NODE_MAJOR = 20;
/** How long a pull of the public base may take before the machine counts as offline. */
export const PULL_PROBE_MS = 15_000;

export const LABEL_IMAGE = 'tlab.image';
export const LABEL_ROLE = 'tlab.appliance.role';
export const LABEL_HASH = 'tlab.appliance.hash';
export const LABEL_PACKAGES = 'tlab.appliance.packages';
export const LABEL_BASE = 'tlab.appliance.base';
export const LABEL_BASE_HASH = 'tlab.appliance.base.hash';

const SUITE = 'bookworm';
const DEFAULT_MIRROR = 'http://deb.debian.org/debian';
const DEFAULT_SECURITY_MIRROR = 'http://deb.debian.org/debian-security';
const DEBIAN_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

/**
 * The appliance's Dockerfile, FROM either base. Pure: its text is part of the image hash.
 * The LABEL comes first so every intermediate container and image of the build carries it.
 */
export function applianceDockerfile(base: string): string {
  const pins = Object.entries(APPLIANCE_PACKAGES)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([p, v]) => `      ${p}=${v} \\`);
  return [
    `FROM ${base}`,
    `LABEL ${LABEL_IMAGE}=appliance ${LABEL_ROLE}=appliance`,
    'ENV DEBIAN_FRONTEND=noninteractive',
    // Both bases must bring Node; fail on the first line rather than at the first agent start.
    `RUN node -e 'const m = Number(process.versions.node.split(".")[0]); if (m < ${MIN_NODE_MAJOR}) { console.error("base has Node " + process.version + ", need >= ${MIN_NODE_MAJOR}"); process.exit(1) }'`,
    // policy-rc.d 101 = "do not start services": haproxy's and etcd's postinst would otherwise try
    // to start daemons inside the build; the lab starts them itself with its own configs.
    "RUN printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d \\",
    ' && apt-get update \\',
    ' && apt-get install -y --no-install-recommends --allow-downgrades \\',
    ...pins,
    ' && rm -f /usr/sbin/policy-rc.d \\',
    ' && apt-get clean && rm -rf /var/lib/apt/lists/*',
    '',
  ].join('\n');
}

/** sha256 over everything that decides the image's content. */
export function applianceHash(dockerfile: string, packages: Readonly<Record<string, string>>, baseId: string): string {
  const sorted = Object.fromEntries(Object.entries(packages).sort(([a], [b]) => a.localeCompare(b)));
  return createHash('sha256').update(JSON.stringify({ dockerfile, packages: sorted, baseId })).digest('hex');
}

export const applianceTag = (hash: string) => `${APPLIANCE_REPO}:${hash.slice(0, 16)}`;

// ---------------------------------------------------------------------------------------------
// the host's Debian mirror (for debootstrap and for the base's apt sources)

export interface DebianMirrors {
  /** carries bookworm and bookworm-updates */
  main: string;
  /** carries bookworm-security */
  security: string;
  /** where they were read from ('default' when the host names no bookworm mirror) */
  from: string;
}

interface AptEntry {
  uri: string;
  suites: string[];
  file: string;
}

/** deb entries of one-line `sources.list` files and deb822 `.sources` files. */
export function parseAptSources(text: string, file: string): AptEntry[] {
  const out: AptEntry[] = [];
  if (file.endsWith('.sources')) {
    for (const stanza of text.split(/\n\s*\n/)) {
      const f: Record<string, string> = {};
      for (const line of stanza.split('\n')) {
        if (line.startsWith('#')) continue;
        const m = /^([A-Za-z-]+):\s*(.*)$/.exec(line);
        if (m) f[m[1]!.toLowerCase()] = m[2]!.trim();
      }
      if (!(f.types ?? '').split(/\s+/).includes('deb') || f.enabled === 'no') continue;
      for (const uri of (f.uris ?? '').split(/\s+/).filter(Boolean)) out.push({ uri, suites: (f.suites ?? '').split(/\s+/).filter(Boolean), file });
    }
  } else {
    for (const raw of text.split('\n')) {
      const line = raw.replace(/#.*/, '').trim();
      // `deb [opts] uri suite components…`
      const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line);
      if (m) out.push({ uri: m[1]!, suites: [m[2]!], file });
    }
  }
  return out;
}

/** Only the files apt itself reads: sources.list, *.list and *.sources (not *.disabled…). */
export function hostDebianMirrors(etcApt = '/etc/apt'): DebianMirrors {
  const files: string[] = [];
  if (existsSync(join(etcApt, 'sources.list'))) files.push(join(etcApt, 'sources.list'));
  const d = join(etcApt, 'sources.list.d');
  if (existsSync(d)) for (const f of readdirSync(d).sort()) if (/\.(list|sources)$/.test(f)) files.push(join(d, f));
  const entries = files.flatMap((f) => parseAptSources(readFileSync(f, 'utf8'), f));
  const main = entries.find((e) => e.suites.includes(SUITE));
  const sec = entries.find((e) => e.suites.includes(`${SUITE}-security`));
  return {
    main: (main?.uri ?? DEFAULT_MIRROR).replace(/\/+$/, ''),
    security: (sec?.uri ?? DEFAULT_SECURITY_MIRROR).replace(/\/+$/, ''),
    from: main ? main.file : 'default',
  };
}

/** The deb822 apt sources of the local base: the official Debian images' layout, the host's mirrors. */
export function baseAptSources(m: DebianMirrors): string {
  return [
    'Types: deb',
    `URIs: ${m.main}`,
    `Suites: ${SUITE} ${SUITE}-updates`,
    'Components: main',
    `Signed-By: ${DEBIAN_KEYRING}`,
    '',
    'Types: deb',
    `URIs: ${m.security}`,
    `Suites: ${SUITE}-security`,
    'Components: main',
    `Signed-By: ${DEBIAN_KEYRING}`,
    '',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// docker plumbing

type Log = (m: string) => void;

interface StreamEvent {
  stream?: string;
  status?: string;
  error?: string;
  errorDetail?: { message?: string };
  aux?: { ID?: string };
}

/** Read a docker JSON-lines progress stream to its end; an `error` event rejects with the tail of the output. */
function followStream(stream: NodeJS.ReadableStream, onEvent: (e: StreamEvent) => void = () => {}): Promise<StreamEvent[]> {
  return new Promise((resolve, reject) => {
    const events: StreamEvent[] = [];
    let buf = '';
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      if (buf.trim()) line(buf);
      const bad = events.find((e) => e.error || e.errorDetail);
      if (err) reject(err);
      else if (bad) {
        const out = events.map((e) => e.stream ?? e.status ?? '').join('').trimEnd().split('\n').slice(-25).join('\n');
        reject(new LabError(`${bad.error ?? bad.errorDetail?.message}\n--- last output ---\n${out}`));
      } else resolve(events);
    };
    const line = (l: string) => {
      if (!l.trim()) return;
      try {
        const e = JSON.parse(l) as StreamEvent;
        events.push(e);
        onEvent(e);
      } catch {
        events.push({ stream: l + '\n' });
      }
    };
    stream.on('data', (chunk: Buffer | string) => {
      buf += chunk.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        line(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
    });
    stream.on('end', () => finish());
    stream.on('close', () => finish());
    stream.on('error', (e: Error) => finish(e));
  });
}

/**
 * The image `tag` names when it carries all `labels`; else the OLDEST image carrying them, tagged
 * `tag` again (the tag may have been removed by hand). Oldest, because labels are inherited: an
 * image built FROM the base (the appliance) or FROM the appliance carries their labels too, and
 * is always newer than the image it derives from.
 */
async function findImage(docker: Dockerode, tag: string, labels: Record<string, string>): Promise<string | null> {
  const has = (l: Record<string, string> | undefined) => Object.entries(labels).every(([k, v]) => l?.[k] === v);
  const byTag = await inspectOrNull(docker, tag);
  if (byTag && has(byTag.Config?.Labels)) return byTag.Id;
  const list = await docker.listImages({ filters: { label: Object.entries(labels).map(([k, v]) => `${k}=${v}`) } });
  const oldest = list.filter((i) => has(i.Labels)).sort((a, b) => a.Created - b.Created)[0];
  if (!oldest) return null;
  const [repo, t] = tag.split(':');
  await docker.getImage(oldest.Id).tag({ repo, tag: t });
  return oldest.Id;
}

async function inspectOrNull(docker: Dockerode, name: string): Promise<Dockerode.ImageInspectInfo | null> {
  try {
    return await docker.getImage(name).inspect();
  } catch {
    return null;
  }
}

function anySignal(signals: (AbortSignal | undefined)[]): AbortSignal {
  const real = signals.filter((s): s is AbortSignal => !!s);
  return AbortSignal.any(real);
}

const secs = (t0: number) => `${((performance.now() - t0) / 1000).toFixed(1)} s`;

const dockerArch: Record<string, string> = { x86_64: 'x64', amd64: 'x64', aarch64: 'arm64', arm64: 'arm64', armv7l: 'arm', s390x: 's390x', ppc64le: 'ppc64' };

// ---------------------------------------------------------------------------------------------
// the base

export interface ApplianceBase {
  /** image reference used in FROM */
  name: string;
  /** image id (sha256:…) — part of the appliance hash */
  id: string;
  kind: 'public' | 'local';
  /** true when this call built the local base */
  built: boolean;
}

/** Try the public base: already local, or pulled within PULL_PROBE_MS. null = not available (offline). */
async function tryPublicBase(docker: Dockerode, log: Log, signal?: AbortSignal): Promise<Dockerode.ImageInspectInfo | null> {
  const have = await inspectOrNull(docker, PUBLIC_BASE);
  if (have) return have;
  log(`appliance: probing the registry (pull ${PUBLIC_BASE}, at most ${PULL_PROBE_MS / 1000} s)`);
  try {
    const stream = (await docker.pull(PUBLIC_BASE, { abortSignal: anySignal([signal, AbortSignal.timeout(PULL_PROBE_MS)]) })) as NodeJS.ReadableStream;
    await followStream(stream);
  } catch (e) {
    if (signal?.aborted) throw signal.reason;
    log(`appliance: no registry (${String((e as Error).message).split('\n')[0]}); using a local Debian base`);
    return null;
  }
  return inspectOrNull(docker, PUBLIC_BASE);
}

const fileHashes = new Map<string, string>();
/**
 * sha256 of a file through coreutils' sha256sum (about 5× faster than node:crypto on the 100 MB
 * node binary here, which decides how fast a cached ensure is), remembered per path, size and mtime.
 */
async function fileSha256(path: string): Promise<string> {
  const st = statSync(path);
  const key = `${path}:${st.size}:${st.mtimeMs}:${st.ino}`;
  let h = fileHashes.get(key);
  if (!h) {
    const r = await run('sha256sum', [path], { reject: false, timeoutMs: 60_000 });
    h = r.exitCode === 0 ? r.stdout.split(' ')[0]! : createHash('sha256').update(readFileSync(path)).digest('hex');
    fileHashes.set(key, h);
  }
  return h;
}

/** The host's node binary, checked for copying into a Linux image of the engine's architecture. */
async function hostNode(engineArch: string): Promise<{ path: string; version: string; sha256: string }> {
  const path = realpathSync(process.execPath);
  const major = Number(process.versions.node.split('.')[0]);
  const fixOnline = `docker pull ${PUBLIC_BASE}   # once, on a network where a registry answers`;
  if (process.platform !== 'linux') throw new PrerequisiteError(`no registry answers and this host's node (${process.platform}) cannot be copied into a Linux image`, fixOnline);
  if (dockerArch[engineArch] !== process.arch) throw new PrerequisiteError(`no registry answers and this host's node (${process.arch}) does not match the Docker engine's architecture (${engineArch})`, fixOnline);
  if (major < MIN_NODE_MAJOR) throw new PrerequisiteError(`no registry answers and this host's node is ${process.version} (the appliance needs >= ${MIN_NODE_MAJOR})`, `apt-get install -y nodejs   # from the NodeSource 20.x repository, or: ${fixOnline}`);
  return { path, version: process.versions.node, sha256: await fileSha256(path) };
}

function onPath(cmd: string): string | null {
  for (const dir of [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin']) {
    if (!dir) continue;
    const p = join(dir, cmd);
    try {
      accessSync(p, fsc.X_OK);
      if (statSync(p).isFile()) return p;
    } catch {
      // not here
    }
  }
  return null;
}

/** Mount points at or under `dir` (debootstrap mounts /proc, /sys and, inside containers, binds /dev). */
function mountsUnder(dir: string): string[] {
  const unesc = (s: string) => s.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  try {
    return readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => unesc(l.split(' ')[4] ?? ''))
      .filter((m) => m === dir || m.startsWith(dir + '/'));
  } catch {
    return [];
  }
}

/**
 * Remove a scratch root file system — never through a mount: an aborted debootstrap can leave the
 * host's /proc, /sys or /dev mounted inside it, and `rm -rf` would then reach the host's files.
 */
async function removeRootfsDir(dir: string, log: Log): Promise<void> {
  for (const m of mountsUnder(dir).sort((a, b) => b.length - a.length)) await run('umount', ['-l', m], { reject: false, timeoutMs: 10_000 });
  const left = mountsUnder(dir);
  if (left.length) {
    log(`appliance: NOT removing ${dir}: still mounted: ${left.join(', ')}`);
    return;
  }
  rmSync(dir, { recursive: true, force: true });
}

export interface LocalBaseInputs {
  mirrors: DebianMirrors;
  sources: string;
  node: { path: string; version: string; sha256: string };
}

/** sha256 over everything that decides the local base's content (the debootstrap result aside). */
export function localBaseHash(i: LocalBaseInputs): string {
  return createHash('sha256')
    .update(JSON.stringify({ suite: SUITE, variant: 'minbase', mirror: i.mirrors.main, sources: i.sources, node: { version: i.node.version, sha256: i.node.sha256 } }))
    .digest('hex');
}

async function localBase(docker: Dockerode, engineArch: string, log: Log, signal?: AbortSignal): Promise<ApplianceBase> {
  const mirrors = hostDebianMirrors();
  const inputs: LocalBaseInputs = { mirrors, sources: baseAptSources(mirrors), node: await hostNode(engineArch) };
  const hash = localBaseHash(inputs);
  const tag = `${LOCAL_BASE_REPO}:${hash.slice(0, 16)}`;
  const found = await findImage(docker, tag, { [LABEL_ROLE]: 'base', [LABEL_BASE_HASH]: hash });
  if (found) return { name: tag, id: found, kind: 'local', built: false };

  if (process.getuid?.() !== 0) throw new PrerequisiteError('building the offline Debian base image (debootstrap, chroot) needs root, once', `sudo npm run lab -- …   (or, where a registry answers: docker pull ${PUBLIC_BASE})`);
  const debootstrap = onPath('debootstrap');
  if (!debootstrap) throw new PrerequisiteError('debootstrap is not installed (needed to build the offline Debian base image)', 'apt-get install -y debootstrap');
  if (!onPath('tar')) throw new PrerequisiteError('tar is not installed', 'apt-get install -y tar');
  const chroot = onPath('chroot');
  if (!chroot) throw new PrerequisiteError('chroot is not installed', 'apt-get install -y coreutils');

  const work = mkdtempSync(join(tmpdir(), 'tlab-appliance-base-'));
  const rootfs = join(work, 'rootfs');
  try {
    log(`appliance: debootstrap --variant=minbase ${SUITE} from ${mirrors.main} (${mirrors.from}); about a minute or two`);
    const t0 = performance.now();
    await run(debootstrap, ['--variant=minbase', SUITE, rootfs, mirrors.main], { timeoutMs: 20 * 60_000, signal });
    log(`appliance: debootstrap done in ${secs(t0)}`);
    // the official images' apt layout: one deb822 file, no sources.list
    rmSync(join(rootfs, 'etc/apt/sources.list'), { force: true });
    writeFileSync(join(rootfs, 'etc/apt/sources.list.d/debian.sources'), inputs.sources);
    const node = join(rootfs, 'usr/local/bin/node');
    copyFileSync(inputs.node.path, node);
    chmodSync(node, 0o755);
    // run the copied binary in the new root: a library minbase lacks fails here, not in a lab
    // (a clean environment: the host's NODE_OPTIONS or NODE_EXTRA_CA_CERTS mean nothing in there)
    const v = await run(chroot, [rootfs, '/usr/bin/env', '-i', '/usr/local/bin/node', '--version'], { timeoutMs: 30_000, signal, reject: false });
    if (v.exitCode !== 0 || v.stdout.trim() !== `v${inputs.node.version}`) {
      throw new LabError(
        `the host's node (${inputs.node.path}) does not run in a Debian ${SUITE} minbase root (exit ${v.exitCode}): ${(v.stderr || v.stdout).trim()}\n  fix: docker pull ${PUBLIC_BASE} on a network with a registry`,
      );
    }
    // what apt fetched for debootstrap is not part of the base (apt-get update refetches lists)
    for (const d of ['var/cache/apt/archives', 'var/lib/apt/lists']) {
      for (const f of readdirSync(join(rootfs, d))) if (f !== 'partial' && f !== 'lock') rmSync(join(rootfs, d, f), { recursive: true, force: true });
    }
    for (const f of readdirSync(join(rootfs, 'var/cache/apt'))) if (f.endsWith('.bin')) rmSync(join(rootfs, 'var/cache/apt', f), { force: true });

    const t1 = performance.now();
    const tarFile = join(work, 'rootfs.tar');
    await run('tar', ['--numeric-owner', '--xattrs', '-C', rootfs, '-cf', tarFile, '.'], { timeoutMs: 10 * 60_000, signal });
    const stream = (await docker.importImage(createReadStream(tarFile) as unknown as string, {
      repo: LOCAL_BASE_REPO,
      tag: hash.slice(0, 16),
      changes: [
        `LABEL ${LABEL_IMAGE}=appliance ${LABEL_ROLE}=base ${LABEL_BASE_HASH}=${hash}`,
        // the official node image's conventions, so the Dockerfile and readers see one layout
        `ENV NODE_VERSION=${inputs.node.version}`,
        'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
        'CMD ["bash"]',
      ],
      abortSignal: signal,
    } as unknown as object)) as NodeJS.ReadableStream;
    await followStream(stream);
    log(`appliance: base ${tag} imported in ${secs(t1)} (tar + docker import)`);
  } finally {
    await removeRootfsDir(work, log);
  }
  const img = await inspectOrNull(docker, tag);
  if (!img) throw new LabError(`docker import reported success but ${tag} is not there`);
  return { name: tag, id: img.Id, kind: 'local', built: true };
}

/** Pick (and if needed build) the base the appliance is built FROM. */
export async function resolveApplianceBase(docker: Dockerode, opts: { offline?: boolean; log?: Log; signal?: AbortSignal } = {}): Promise<ApplianceBase> {
  const log = opts.log ?? (() => {});
  if (opts.offline !== true) {
    const pub = await tryPublicBase(docker, log, opts.signal);
    if (pub) return { name: PUBLIC_BASE, id: pub.Id, kind: 'public', built: false };
    if (opts.offline === false) throw new PrerequisiteError(`the public base ${PUBLIC_BASE} cannot be pulled (no registry answers)`, `docker pull ${PUBLIC_BASE}`);
  }
  const info = await docker.info();
  return localBase(docker, String(info.Architecture), log, opts.signal);
}

// ---------------------------------------------------------------------------------------------
// the appliance

export interface ApplianceImage {
  /** tag to run (`tlab-appliance:<hash16>`) */
  image: string;
  /** image id (sha256:…) */
  id: string;
  /** full input hash (label tlab.appliance.hash) */
  hash: string;
  /** true when this call built the appliance */
  built: boolean;
  /** the base it is FROM */
  base: string;
  baseKind: 'public' | 'local';
}

export interface EnsureApplianceOptions {
  /** true: never probe a registry; false: the public base is required; unset: probe, fall back */
  offline?: boolean;
  log?: Log;
  signal?: AbortSignal;
}

export async function ensureApplianceImage(docker: Dockerode, opts: EnsureApplianceOptions = {}): Promise<ApplianceImage> {
  const log = opts.log ?? (() => {});
  const base = await resolveApplianceBase(docker, opts);
  const dockerfile = applianceDockerfile(base.name);
  const hash = applianceHash(dockerfile, APPLIANCE_PACKAGES, base.id);
  const tag = applianceTag(hash);
  const result = (id: string, built: boolean): ApplianceImage => ({ image: tag, id, hash, built, base: base.name, baseKind: base.kind });

  const found = await findImage(docker, tag, { [LABEL_ROLE]: 'appliance', [LABEL_HASH]: hash });
  if (found) return result(found, false);

  log(`appliance: building ${tag} FROM ${base.name} (pinned Debian packages)`);
  const t0 = performance.now();
  const work = mkdtempSync(join(tmpdir(), 'tlab-appliance-ctx-'));
  try {
    writeFileSync(join(work, 'Dockerfile'), dockerfile);
    const ctx = join(work, 'context.tar');
    await run('tar', ['-C', work, '-cf', ctx, 'Dockerfile'], { timeoutMs: 30_000, signal: opts.signal });
    // Docker's predefined proxy build args pass the host's proxy to apt without entering the cache key.
    const buildargs: Record<string, string> = {};
    for (const k of ['http_proxy', 'https_proxy', 'no_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY']) if (process.env[k]) buildargs[k] = process.env[k]!;
    const stream = (await docker.buildImage(createReadStream(ctx), {
      t: tag,
      labels: { [LABEL_IMAGE]: 'appliance', [LABEL_ROLE]: 'appliance', [LABEL_HASH]: hash, [LABEL_PACKAGES]: JSON.stringify(APPLIANCE_PACKAGES), [LABEL_BASE]: `${base.name}@${base.id}` },
      rm: true,
      // remove the step containers also when a step fails
      forcerm: true,
      // apt in the RUN step reaches the mirror the way the host does: no dependence on Docker's
      // NAT (absent when the engine runs without iptables, e.g. nested in a CI container)
      networkmode: 'host',
      buildargs,
      abortSignal: opts.signal,
    } as Dockerode.ImageBuildOptions)) as NodeJS.ReadableStream;
    try {
      await followStream(stream, (e) => {
        const s = e.stream?.trimEnd();
        if (s && /^Step \d+\/\d+/.test(s)) log(`appliance: ${s.slice(0, 120)}`);
      });
    } catch (e) {
      const msg = (e as Error).message;
      if (/Version '.*' for '.*' was not found/.test(msg)) {
        throw new LabError(`building ${tag}: a pinned Debian version is no longer on the mirror (Debian keeps only the newest per suite).\n${msg}\n  fix: refresh APPLIANCE_PACKAGES in src/providers/runtimes/docker/appliance.ts with the output of:\n  ${PINS_REFRESH_COMMAND}`);
      }
      throw new LabError(`building ${tag} FROM ${base.name} failed: ${msg}`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const img = await inspectOrNull(docker, tag);
  if (!img || img.Config?.Labels?.[LABEL_HASH] !== hash) throw new LabError(`build of ${tag} finished but the image is missing or lacks its hash label`);
  log(`appliance: ${tag} built in ${secs(t0)}`);
  return result(img.Id, true);
}

// ---------------------------------------------------------------------------------------------
// reading it back (results.json: the real components' versions)

export interface ApplianceVersions {
  image: string;
  id: string;
  hash: string;
  base: string;
  /** pinned Debian package → version */
  packages: Record<string, string>;
  /** NODE_VERSION of the image's environment (both bases set it) */
  node?: string;
  created: string;
}

export async function applianceVersions(docker: Dockerode, image: string): Promise<ApplianceVersions> {
  const img = await docker.getImage(image).inspect();
  const labels = img.Config?.Labels ?? {};
  if (!labels[LABEL_HASH] || !labels[LABEL_PACKAGES]) throw new LabError(`${image} is not a tlab appliance image (no ${LABEL_HASH}/${LABEL_PACKAGES} labels)`);
  const env = img.Config?.Env ?? [];
  return {
    image,
    id: img.Id,
    hash: labels[LABEL_HASH]!,
    base: labels[LABEL_BASE] ?? '',
    packages: JSON.parse(labels[LABEL_PACKAGES]!) as Record<string, string>,
    node: env.find((e) => e.startsWith('NODE_VERSION='))?.slice('NODE_VERSION='.length),
    created: img.Created,
  };
}
