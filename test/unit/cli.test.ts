/**
 * The CLI as a user runs it: `node scripts/lab.mjs …` (which re-execs node --import tsx
 * src/cli/main.ts). Bad input exits 2 with file + path, and nothing is created: no state directory
 * (LAB_STATE_DIR points at a temp dir) and, when root, no new network namespace.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { REPO_ROOT } from '../../src/model/load.js';
import { LabState } from '../../src/state/state.js';
import { useTempDirs } from '../helpers/tmp.js';

const mkTemp = useTempDirs();

const BIN = resolve(REPO_ROOT, 'scripts/lab.mjs');

function lab(args: string[], env: Record<string, string> = {}, cwd = tmpdir()) {
  const stateDir = env.LAB_STATE_DIR ?? mkTemp('tlx-cli-state-');
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd,
    env: { ...process.env, CI: 'true', LAB_STATE_DIR: stateDir, ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, stateDir };
}

function netns(): string[] {
  try {
    return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').filter(Boolean).sort();
  } catch {
    return [];
  }
}
const isRoot = process.getuid?.() === 0;

// each case spawns node + tsx (≈1 s, more on a busy 2-core CI box)
describe('lab CLI', { timeout: 90_000 }, () => {
  it('--help lists the verbs and the exit codes (from any working directory)', () => {
    const r = lab(['--help'], {}, '/');
    expect(r.code).toBe(0);
    for (const verb of ['run', 'up', 'down', 'ls', 'clean', 'report', 'load', 'render']) expect(r.stdout).toMatch(new RegExp(`^  ${verb} `, 'm'));
    expect(r.stdout).toContain('Exit codes: 0 ok, 1 failure, 2 bad lab input or usage, 3 missing prerequisite');
  });

  it('run --help shows the run flags', () => {
    const r = lab(['run', '--help']);
    expect(r.code).toBe(0);
    for (const flag of ['--provider', '--strategies', '--drills', '--quick', '--repeat', '--out', '--keep', '--json', '--dry-run', '--render']) {
      expect(r.stdout).toContain(flag);
    }
  });

  it('an unknown lab exits 2 and lists the labs', () => {
    const r = lab(['no-such-lab']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown lab 'no-such-lab'.*enterprise, minecraft, smb/);
  });

  it('a bad lab file exits 2 naming file and path, and creates nothing', () => {
    const before = netns();
    const r = lab(['run', resolve(REPO_ROOT, 'test/fixtures/bad/t-vip-outside-lan.yaml')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('test/fixtures/bad/vip-outside-lan.topology.yaml: network.vip: expected an address inside');
    expect(r.stderr).toContain('nothing was started');
    expect(existsSync(r.stateDir) ? readdirSync(r.stateDir) : []).toEqual([]);
    if (isRoot) expect(netns()).toEqual(before);
  });

  it('every problem of a bad lab is printed, one file: path: line each', () => {
    const r = lab([resolve(REPO_ROOT, 'test/fixtures/bad/many-problems.yaml')]);
    expect(r.code).toBe(2);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('test/fixtures/bad/many-problems.yaml: '));
    expect(lines.length).toBeGreaterThanOrEqual(4);
  });

  it('--json on bad input prints one JSON object with the issues on stdout', () => {
    const r = lab(['smb', '--json', '--strategies', 'nope+nope']);
    expect(r.code).toBe(2);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ ok: false, exitCode: 2 });
    expect(j.error).toContain('valid: talos-vip+metallb-l2');
  });

  it('unknown --strategies / --drills exit 2 listing the valid ones', () => {
    const s = lab(['run', 'smb', '--strategies', 'talos-vip+metallb-l2,kube-vip-bgp+metallb-bgp']);
    expect(s.code).toBe(2);
    expect(s.stderr).toContain('--strategies: unknown for lab smb: kube-vip-bgp+metallb-bgp; valid: talos-vip+metallb-l2, kube-vip-arp+kube-vip-arp, kube-vip-arp+metallb-l2, haproxy+metallb-bgp');
    const d = lab(['smb', '--drills', 'explode']);
    expect(d.code).toBe(2);
    expect(d.stderr).toMatch(/--drills: unknown for lab smb: explode; valid: baseline, /);
  });

  it.each([
    [['smb', '--provider', 'vmware'], /Allowed choices are sim, docker, qemu, auto/],
    [['smb', '--repeat', '0'], /--repeat expects a whole number ≥ 1/],
    [['load', 'ftp://x', '--rate', '1', '--duration', '1'], /must start with http/],
    [['load', 'http://127.0.0.1:1/', '--rate', 'fast', '--duration', '1'], /--rate expects a number > 0/],
    [['report', '/nonexistent/run'], /results\.json.*no such file/],
    [['frobnicate-this/lab.yaml'], /no such file/],
  ])('usage error %j exits 2', (args, words) => {
    const r = lab(args as string[]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(words as RegExp);
  });

  it('ls and clean work from the state directory alone', async () => {
    const stateDir = mkTemp('tlx-cli-state-');
    expect(JSON.parse(lab(['ls', '--json'], { LAB_STATE_DIR: stateDir }).stdout)).toEqual([]);
    // a lab whose owner died during bring-up (pid 2^22+1 is above pid_max's default: never alive)
    LabState.create(
      { id: 'smb-dead', prefix: 'tlab-smb-dead', lab: 'smb', labFile: 'labs/smb.yaml', provider: 'sim', createdAt: new Date().toISOString(), ownerPid: 4194305, status: 'starting' },
      stateDir,
    );
    const ls = lab(['ls'], { LAB_STATE_DIR: stateDir });
    expect(ls.code).toBe(0);
    expect(ls.stdout).toMatch(/smb-dead\s+smb\s+sim\s+starting \(stale\)/);
    const clean = lab(['clean'], { LAB_STATE_DIR: stateDir });
    expect(clean.code).toBe(0);
    expect(clean.stdout).toContain('smb-dead (tlab-smb-dead)');
    expect(readdirSync(stateDir)).toEqual([]);
    expect(lab(['clean', 'smb-dead'], { LAB_STATE_DIR: stateDir }).code).toBe(2);
  });
});
