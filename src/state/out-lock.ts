/**
 * The output directory of a run (`--out DIR`): checked before anything starts, and locked for the
 * run so two runs never write results.json, reports and samples into the same directory.
 *
 * The lock is a file inside the directory (OUT_LOCK) naming its owner: pid AND the process start
 * time (/proc/<pid>/stat), so a pid reused by an unrelated process does not keep a dead run's lock
 * alive. A lock whose owner is gone is stale and taken over: renamed aside atomically (of two
 * runs taking over the same stale lock, one rename fails and that run sees the winner's lock),
 * then created with O_EXCL. The lock is removed when the run ends, also on `process.exit` (a
 * second Ctrl-C), and only while it still names this process.
 */
import { accessSync, constants, existsSync, linkSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { UsageError } from '../util/errors.js';
import { isAlive, pidStartTime } from '../util/proc.js';

export const OUT_LOCK = '.lab-run.lock';

export interface OutLockInfo {
  pid: number;
  startTime: number | null;
  lab: string;
  verb: string;
  createdAt: string;
  host: string;
}

function kindOf(path: string): string {
  try {
    const st = statSync(path);
    if (st.isFile()) return 'a regular file';
    if (st.isDirectory()) return 'a directory';
    if (st.isFIFO()) return 'a FIFO';
    if (st.isSocket()) return 'a socket';
    if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
    return 'not a directory';
  } catch {
    return 'missing';
  }
}

function writable(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function lockInfo(file: string): OutLockInfo | null {
  try {
    const info = JSON.parse(readFileSync(file, 'utf8')) as OutLockInfo;
    return Number.isInteger(info.pid) && info.pid > 0 ? info : null;
  } catch {
    return null;
  }
}

function liveOwner(info: OutLockInfo): boolean {
  if (info.host && info.host !== hostname()) return true; // another machine's run (shared filesystem): cannot tell, assume live
  if (!isAlive(info.pid)) return false;
  return info.startTime === null || info.startTime === undefined || pidStartTime(info.pid) === info.startTime;
}

/** The live run that holds DIR's lock, or null (no lock, unreadable lock, or its owner is gone). */
export function outDirOwner(dir: string): OutLockInfo | null {
  const info = lockInfo(join(resolve(dir), OUT_LOCK));
  return info && liveOwner(info) ? info : null;
}

function inUse(flag: string, dir: string, o: OutLockInfo): UsageError {
  return new UsageError(
    `${flag} ${dir}: in use by another run (pid ${o.pid}, \`lab ${o.verb} ${o.lab}\`, since ${o.createdAt}); expected an output directory no running lab writes to — choose another ${flag} or wait for that run to end`,
  );
}

/**
 * Everything about an output directory that can be known without writing: not a regular file (or
 * anything but a directory), creatable (the nearest existing ancestor is a writable directory) or
 * writable, and not locked by a live run. Throws UsageError (exit 2) naming the flag.
 */
export function checkOutDir(dir: string, flag = '--out'): void {
  if (!dir.trim()) throw new UsageError(`${flag}: expected a directory path, got an empty string`);
  const abs = resolve(dir);
  const kind = kindOf(abs);
  if (kind === 'a directory') {
    if (!writable(abs)) throw new UsageError(`${flag} ${dir}: the directory is not writable by this user; expected a directory the run can write results into`);
    const owner = outDirOwner(abs);
    if (owner) throw inUse(flag, dir, owner);
    return;
  }
  if (kind !== 'missing') throw new UsageError(`${flag} ${dir}: is ${kind}; expected a directory (an existing one, or a path the run may create)`);
  // missing: its nearest existing ancestor must be a writable directory
  let up = dirname(abs);
  while (kindOf(up) === 'missing' && dirname(up) !== up) up = dirname(up);
  const upKind = kindOf(up);
  if (upKind !== 'a directory') throw new UsageError(`${flag} ${dir}: cannot be created, ${up} is ${upKind}; expected a path under a directory`);
  if (!writable(up)) throw new UsageError(`${flag} ${dir}: cannot be created, ${up} is not writable by this user; expected a path the run may create`);
}

export interface OutLock {
  dir: string;
  file: string;
  release(): void;
}

/** Create DIR (if missing) and take its lock; a live owner → UsageError, a stale lock is taken over. */
export function lockOutDir(dir: string, who: { lab: string; verb: string }, flag = '--out'): OutLock {
  checkOutDir(dir, flag);
  const abs = resolve(dir);
  mkdirSync(abs, { recursive: true });
  const file = join(abs, OUT_LOCK);
  const info: OutLockInfo = { pid: process.pid, startTime: pidStartTime(process.pid), lab: who.lab, verb: who.verb, createdAt: new Date().toISOString(), host: hostname() };
  // written whole under a private name, then linked into place: O_EXCL semantics, and a reader never sees half a lock
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(info) + '\n');
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(tmp, file);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 3) throw e;
      }
      const owner = outDirOwner(abs);
      if (owner) throw inUse(flag, dir, owner);
      // stale: move it aside (atomic; a concurrent taker's rename fails with ENOENT) and try again
      const aside = `${file}.stale-${process.pid}`;
      try {
        renameSync(file, aside);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        continue;
      }
      // what was moved may be a lock another run created after the check above: put it back
      const moved = lockInfo(aside);
      if (moved && liveOwner(moved)) {
        try {
          linkSync(aside, file);
        } catch {
          /* a third run holds it now */
        }
        rmSync(aside, { force: true });
        throw inUse(flag, dir, moved);
      }
      rmSync(aside, { force: true });
    }
  } finally {
    rmSync(tmp, { force: true });
  }
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    process.off('exit', release);
    try {
      const now = JSON.parse(readFileSync(file, 'utf8')) as OutLockInfo;
      if (now.pid === info.pid && now.startTime === info.startTime && now.host === info.host) rmSync(file, { force: true });
    } catch {
      /* already gone */
    }
  };
  process.on('exit', release);
  return { dir: abs, file, release };
}

/** true when DIR exists and holds a lock file (live or stale) — for tests and `lab ls`-like views */
export function hasOutLock(dir: string): boolean {
  return existsSync(join(resolve(dir), OUT_LOCK));
}
