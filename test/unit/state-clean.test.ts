import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { LabState, type LabMeta } from '../../src/state/state.js';
import { cleanAll, cleanLab, killRecordedPid, listLabStates, ownsNamespace, safeToDelete } from '../../src/state/clean.js';
import { isAlive, pidStartTime, sleep } from '../../src/util/proc.js';
import { UsageError } from '../../src/util/errors.js';
import { useTempDirs } from '../helpers/tmp.js';
import { labMeta } from '../helpers/state.js';

const mkTemp = useTempDirs();

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) {
    if (c.pid && isAlive(c.pid)) {
      try {
        process.kill(-c.pid, 'SIGKILL');
      } catch {
        c.kill('SIGKILL');
      }
    }
  }
});

/** a long sleeper in its own process group, like the lab's daemons (spawnDaemon: detached) */
async function sleeper(cmd = 'sleep 60'): Promise<{ pid: number; start: number }> {
  const c = spawn('sh', ['-c', cmd], { detached: true, stdio: 'ignore' });
  children.push(c);
  const pid = c.pid!;
  for (let i = 0; i < 100 && pidStartTime(pid) === null; i++) await sleep(10);
  return { pid, start: pidStartTime(pid)! };
}

async function deadPid(): Promise<number> {
  const c = spawn('true', [], { stdio: 'ignore' });
  await new Promise((r) => c.on('exit', r));
  return c.pid!;
}

const meta = (id: string, extra: Partial<LabMeta> = {}): LabMeta => labMeta(id, { status: 'running', ...extra });

describe('killing recorded processes', () => {
  it('never signals a pid whose start time differs from the record (pid reuse)', async () => {
    const p = await sleeper();
    expect(await killRecordedPid(p.pid, p.start + 1, 200)).toBe('start-time-mismatch');
    expect(await killRecordedPid(p.pid, undefined, 200)).toBe('no-start-time');
    await sleep(50);
    expect(isAlive(p.pid)).toBe(true);
  });

  it('stops the recorded process and its whole process group', async () => {
    const p = await sleeper('sleep 60 & wait');
    let child = 0;
    for (let i = 0; i < 100 && !child; i++) {
      child = Number(readFileSync(`/proc/${p.pid}/task/${p.pid}/children`, 'utf8').trim().split(/\s+/)[0] || 0);
      if (!child) await sleep(10);
    }
    expect(child).toBeGreaterThan(0);
    expect(await killRecordedPid(p.pid, p.start, 1000)).toBe('killed');
    expect(isAlive(p.pid)).toBe(false);
    for (let i = 0; i < 100 && isAlive(child); i++) await sleep(10);
    expect(isAlive(child)).toBe(false);
  });

  it('reports a pid that is already gone', async () => {
    expect(await killRecordedPid(await deadPid(), 12345, 100)).toBe('gone');
  });
});

describe('cleanLab', () => {
  it('removes exactly what was recorded, newest first, then forgets the lab', async () => {
    const root = mkTemp('tlx-clean-');
    const work = mkTemp('tlx-clean-work-');
    const mine = await sleeper();
    const stranger = await sleeper(); // recorded with a wrong start time: must survive
    const s = LabState.create(meta('smb-c001', { ownerPid: await deadPid(), status: 'starting' }), root);
    writeFileSync(join(work, 'haproxy.cfg'), 'x');
    mkdirSync(join(work, 'logs'));
    writeFileSync(join(work, 'logs', 'etcd.log'), 'y');
    s.record({ kind: 'file', name: join(work, 'haproxy.cfg') });
    s.record({ kind: 'dir', name: join(work, 'logs') });
    s.record({ kind: 'pid', name: 'cp1/etcd', pid: mine.pid, startTime: mine.start });
    s.record({ kind: 'pid', name: 'cp2/etcd', pid: stranger.pid, startTime: stranger.start + 7 });
    s.record({ kind: 'file', name: '/' }); // never deleted
    const r = await cleanLab(s, { graceMs: 1000 });
    expect(r.errors).toEqual([]);
    expect(isAlive(mine.pid)).toBe(false);
    expect(isAlive(stranger.pid)).toBe(true);
    expect(existsSync(join(work, 'haproxy.cfg'))).toBe(false);
    expect(existsSync(join(work, 'logs'))).toBe(false);
    expect(r.removed).toEqual(expect.arrayContaining([`process ${mine.pid} (cp1/etcd)`, `file ${join(work, 'haproxy.cfg')}`, `dir ${join(work, 'logs')}`]));
    expect(r.skipped.join('\n')).toMatch(/another process, left alone/);
    expect(r.skipped.join('\n')).toMatch(/file \/: refused/);
    // newest first: the pid records come before the files in what was done
    expect(r.removed.findIndex((x) => x.startsWith('process'))).toBeLessThan(r.removed.findIndex((x) => x.startsWith('dir')));
    expect(r.forgotten).toBe(true);
    expect(existsSync(s.dir)).toBe(false);
  });
});

describe('listing and cleaning many labs', () => {
  it('a lab is stale when its owner is dead and it is not up', async () => {
    const root = mkTemp('tlx-clean-');
    const dead = await deadPid();
    LabState.create(meta('a-0001', { ownerPid: dead, status: 'starting' }), root);
    LabState.create(meta('b-0002', { ownerPid: dead, status: 'up' }), root);
    LabState.create(meta('c-0003', { ownerPid: process.pid, status: 'running' }), root);
    const byId = Object.fromEntries(listLabStates(root).map((l) => [l.id, l]));
    expect(byId['a-0001']).toMatchObject({ stale: true, ownerAlive: false, prefix: 'tlab-a-0001' });
    expect(byId['b-0002']).toMatchObject({ stale: false, status: 'up' });
    expect(byId['c-0003']).toMatchObject({ stale: false, ownerAlive: true });

    const report = await cleanAll({}, root);
    expect(report.labs.map((l) => l.id)).toEqual(['a-0001']);
    expect(listLabStates(root).map((l) => l.id).sort()).toEqual(['b-0002', 'c-0003']);

    const one = await cleanAll({ id: 'b-0002' }, root);
    expect(one.labs.map((l) => l.id)).toEqual(['b-0002']);
    await expect(cleanAll({ id: 'zzz-9999' }, root)).rejects.toBeInstanceOf(UsageError);
  });

  it('an unreadable lab.json still lists (as stale) and cleans by the id-derived prefix', async () => {
    const root = mkTemp('tlx-clean-');
    const s = LabState.create(meta('d-0004'), root);
    writeFileSync(s.path('lab.json'), '{"id": "d-00'); // torn
    const [l] = listLabStates(root);
    expect(l).toMatchObject({ id: 'd-0004', status: 'unknown', stale: true, prefix: 'tlab-d-0004' });
    const r = await cleanAll({}, root);
    expect(r.labs[0]!.forgotten).toBe(true);
  });

  it('guards: namespace ownership by prefix, paths never deleted', () => {
    expect(ownsNamespace('tlab-smb-3f2a', 'tlab-smb-3f2a-cp1')).toBe(true);
    expect(ownsNamespace('tlab-smb-3f2a', 'tlab-smb-3f2a')).toBe(true);
    expect(ownsNamespace('tlab-smb-3f2a', 'tlab-smb-3f2ab-cp1')).toBe(false);
    expect(ownsNamespace('tlab-smb-3f2a', 'tlx-other')).toBe(false);
    expect(ownsNamespace('', 'anything')).toBe(false);
    expect(safeToDelete('/')).toBe(false);
    expect(safeToDelete(homedir())).toBe(false);
    expect(safeToDelete(process.cwd())).toBe(false);
    expect(safeToDelete('/tmp')).toBe(false);
    expect(safeToDelete('relative/path')).toBe(false);
    expect(safeToDelete('/tmp/tlab-x/state')).toBe(true);
  });
});
