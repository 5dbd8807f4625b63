/**
 * Lab state: every namespace, link, process, container, network and file a lab
 * creates is recorded here BEFORE it is created (intent first, so a SIGKILL between the two leaves
 * a record, never an orphan). `down` and `clean` remove exactly what is recorded, newest first,
 * and then sweep by name prefix for anything a crash left half-recorded.
 *
 * Layout: $XDG_STATE_HOME/talos-ha-lab/labs/<id>/ (default ~/.local/state/…; override with
 * LAB_STATE_DIR). lab.json = who/what/when; resources.jsonl = append-only records.
 *
 * The state directory holds the lab's secrets (the lab CA key and the API servers' keys under
 * pki/, agent sockets, etcd data), so it is private: every lab directory is 0700 (and the state
 * root when this code creates it), lab.json and resources.jsonl 0600.
 * `remove()` deletes the whole directory with the lab. A lab directory is created exclusively:
 * two runs that drew the same id never share one (the second fails before creating anything).
 */
import { mkdirSync, appendFileSync, readFileSync, writeFileSync, existsSync, readdirSync, rmSync, openSync, fsyncSync, closeSync, renameSync, fstatSync, readSync, chmodSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { LabError } from '../util/errors.js';

/** Another lab already has this id (its state directory exists): nothing was created; draw a new id. */
export class LabIdInUseError extends LabError {
  constructor(
    readonly id: string,
    readonly dir: string,
  ) {
    super(`lab id ${id} is already in use (${dir}); nothing was created — run again for a new id`);
  }
}

/** owner-only: the state holds private keys */
export const STATE_DIR_MODE = 0o700;
export const STATE_FILE_MODE = 0o600;

/**
 * mkdir -p with 0700 on every directory it creates. An existing directory keeps its mode: the root
 * may be one the user chose (LAB_STATE_DIR=/tmp/x), and each lab directory inside is 0700 anyway.
 */
export function privateDir(dir: string): string {
  if (!existsSync(dir)) {
    mkdirSync(dir, { recursive: true, mode: STATE_DIR_MODE });
    // the umask may have narrowed it further, never widened; make it exact
    chmodSync(dir, STATE_DIR_MODE);
  }
  return dir;
}

export type ResourceKind = 'netns' | 'pid' | 'container' | 'network' | 'file' | 'dir' | 'image';

export interface ResourceRecord {
  kind: ResourceKind;
  name: string;
  /** pid records: the process start time (clock ticks since boot), so a reused pid is never killed */
  pid?: number;
  startTime?: number | null;
  host?: string;
  t?: number;
}

export interface LabMeta {
  id: string;
  prefix: string;
  lab: string;
  labFile: string;
  provider: string;
  createdAt: string;
  ownerPid: number;
  status: 'starting' | 'up' | 'running' | 'down' | 'failed';
  out?: string;
}

export function stateRoot(): string {
  if (process.env.LAB_STATE_DIR) return process.env.LAB_STATE_DIR;
  const base = process.env.XDG_STATE_HOME || join(homedir(), '.local', 'state');
  return join(base, 'talos-ha-lab', 'labs');
}

export class LabState {
  readonly dir: string;
  private readonly resourcesFile: string;
  private readonly metaFile: string;

  constructor(readonly id: string, root = stateRoot()) {
    this.dir = join(root, id);
    this.resourcesFile = join(this.dir, 'resources.jsonl');
    this.metaFile = join(this.dir, 'lab.json');
  }

  static create(meta: LabMeta, root = stateRoot()): LabState {
    const s = new LabState(meta.id, root);
    privateDir(root);
    try {
      // not recursive: EEXIST when another lab already has this id
      mkdirSync(s.dir, { mode: STATE_DIR_MODE });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new LabIdInUseError(meta.id, s.dir);
      throw e;
    }
    chmodSync(s.dir, STATE_DIR_MODE);
    s.writeMeta(meta);
    return s;
  }

  static list(root = stateRoot()): LabState[] {
    if (!existsSync(root)) return [];
    return readdirSync(root)
      .filter((d) => existsSync(join(root, d, 'lab.json')))
      .map((d) => new LabState(d, root));
  }

  path(...parts: string[]): string {
    const p = join(this.dir, ...parts);
    return p;
  }

  subdir(...parts: string[]): string {
    const p = join(this.dir, ...parts);
    mkdirSync(p, { recursive: true, mode: STATE_DIR_MODE });
    return p;
  }

  meta(): LabMeta {
    return JSON.parse(readFileSync(this.metaFile, 'utf8')) as LabMeta;
  }

  writeMeta(meta: LabMeta): void {
    const tmp = `${this.metaFile}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(meta, null, 2), { mode: STATE_FILE_MODE });
    // rename is atomic: a reader (`lab ls`, `lab clean`) never sees half a file
    renameSync(tmp, this.metaFile);
  }

  setStatus(status: LabMeta['status'], extra: Partial<LabMeta> = {}): void {
    this.writeMeta({ ...this.meta(), ...extra, status });
  }

  /** Record a resource durably (fsync) before creating it. */
  record(r: ResourceRecord): void {
    // a SIGKILL mid-append can leave a torn last line: start on a fresh line so this record
    // is not glued to it (and lost with it)
    const line = (this.endsTorn() ? '\n' : '') + JSON.stringify({ ...r, t: Date.now() }) + '\n';
    appendFileSync(this.resourcesFile, line, { mode: STATE_FILE_MODE });
    const fd = openSync(this.resourcesFile, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  private endsTorn(): boolean {
    if (!existsSync(this.resourcesFile)) return false;
    const fd = openSync(this.resourcesFile, 'r');
    try {
      const size = fstatSync(fd).size;
      if (size === 0) return false;
      const b = Buffer.alloc(1);
      readSync(fd, b, 0, 1, size - 1);
      return b[0] !== 0x0a;
    } finally {
      closeSync(fd);
    }
  }

  resources(): ResourceRecord[] {
    if (!existsSync(this.resourcesFile)) return [];
    return readFileSync(this.resourcesFile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as ResourceRecord];
        } catch {
          return []; // a torn last line after SIGKILL
        }
      });
  }

  /** Forget everything (after a successful teardown). */
  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
