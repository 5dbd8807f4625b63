import { afterAll, describe, expect, it } from 'vitest';
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LabState, stateRoot, type LabMeta } from '../../src/state/state.js';
import { useTempDirs } from '../helpers/tmp.js';
import { labMeta } from '../helpers/state.js';

const mkTemp = useTempDirs();

const meta = labMeta;

describe('lab state records', () => {
  it('lives under LAB_STATE_DIR when set', () => {
    const old = process.env.LAB_STATE_DIR;
    process.env.LAB_STATE_DIR = '/tmp/somewhere';
    try {
      expect(stateRoot()).toBe('/tmp/somewhere');
    } finally {
      if (old === undefined) delete process.env.LAB_STATE_DIR;
      else process.env.LAB_STATE_DIR = old;
    }
  });

  it('records resources in order and lists labs', () => {
    const root = mkTemp('tlx-state-');
    const s = LabState.create(meta('smb-0001'), root);
    s.record({ kind: 'netns', name: 'tlab-smb-0001-cp1' });
    s.record({ kind: 'pid', name: 'cp1/etcd', pid: 1234, startTime: 99 });
    expect(s.resources().map((r) => r.name)).toEqual(['tlab-smb-0001-cp1', 'cp1/etcd']);
    expect(s.resources()[1]).toMatchObject({ pid: 1234, startTime: 99 });
    expect(typeof s.resources()[0]!.t).toBe('number');
    expect(LabState.list(root).map((x) => x.id)).toEqual(['smb-0001']);
  });

  it('ignores a torn last line and does not lose the next record to it', () => {
    const root = mkTemp('tlx-state-');
    const s = LabState.create(meta('smb-0002'), root);
    s.record({ kind: 'netns', name: 'a' });
    appendFileSync(s.path('resources.jsonl'), '{"kind":"netns","na'); // SIGKILL mid-write
    expect(s.resources().map((r) => r.name)).toEqual(['a']);
    s.record({ kind: 'netns', name: 'b' });
    expect(s.resources().map((r) => r.name)).toEqual(['a', 'b']);
    expect(readFileSync(s.path('resources.jsonl'), 'utf8').split('\n').filter(Boolean)).toHaveLength(3);
  });

  it('rewrites lab.json atomically (no temp file left) and forgets on remove', () => {
    const root = mkTemp('tlx-state-');
    const s = LabState.create(meta('smb-0003'), root);
    s.setStatus('up');
    expect(s.meta().status).toBe('up');
    expect(readdirSync(s.dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    s.remove();
    expect(existsSync(s.dir)).toBe(false);
    expect(LabState.list(root)).toEqual([]);
  });
});
