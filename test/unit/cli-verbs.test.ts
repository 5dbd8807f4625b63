/**
 * `npm run lab -- <verb> …` works for every verb (the `lab` npm script dispatches verbs; `run` is
 * the default only when the first word is not one), a lab cannot be named after a verb, and
 * `lab down <name>` / `lab clean <name>` work by lab name when exactly one lab has it.
 */
import { describe, expect, it, vi } from 'vitest';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadLab, REPO_ROOT, RESERVED_LAB_NAMES } from '../../src/model/load.js';
import { buildProgram, main, normalizeArgv, VERBS } from '../../src/cli/main.js';
import { LabState } from '../../src/state/state.js';
import { LabInputError } from '../../src/util/errors.js';
import { run } from '../../src/util/proc.js';
import { labMeta } from '../helpers/state.js';
import { useTempDirs } from '../helpers/tmp.js';

const mkTemp = useTempDirs();

/** the `lab` npm script, split into a command line (it must not carry a verb of its own) */
const LAB_SCRIPT = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts.lab!.split(/\s+/);

function viaScript(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const [cmd, ...rest] = LAB_SCRIPT as [string, ...string[]];
  return new Promise((resolve) => {
    const c = spawn(cmd === 'node' ? process.execPath : cmd, [...rest, ...args], { cwd: REPO_ROOT, env: { ...process.env, CI: 'true', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.stderr.on('data', (d) => (stderr += d));
    c.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** the CLI in this process: exit code and what it printed */
async function cli(args: string[], stateDir: string) {
  const saved = process.env.LAB_STATE_DIR;
  process.env.LAB_STATE_DIR = stateDir;
  let stdout = '';
  let stderr = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => ((stdout += String(c)), true));
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => ((stderr += String(c)), true));
  try {
    return { code: await main(args), stdout, stderr };
  } finally {
    o.mockRestore();
    e.mockRestore();
    if (saved === undefined) delete process.env.LAB_STATE_DIR;
    else process.env.LAB_STATE_DIR = saved;
  }
}

describe('every verb through the `lab` npm script', { timeout: 120_000 }, () => {
  it('the script is the bare entry: no verb baked in', () => {
    expect(LAB_SCRIPT.slice(-1)[0]).toBe('scripts/lab.mjs');
  });

  it('the verbs are exactly the registered commands (and the names a lab may not take)', () => {
    const names = buildProgram().commands.map((c) => c.name());
    expect([...names, 'help'].sort()).toEqual([...VERBS].sort());
    expect([...RESERVED_LAB_NAMES]).toEqual([...VERBS]);
  });

  it('`lab <verb> --help` answers for every verb (the script runs main() with its arguments as given)', async () => {
    // one real process through the script (≈1 s each on a quiet machine), every verb in-process
    const real = await viaScript(['up', '--help']);
    expect(real.code, real.stderr).toBe(0);
    expect(real.stdout).toMatch(/^Usage: lab up /m);
    const stateDir = mkTemp('tlx-verbs-state-');
    for (const verb of VERBS.filter((v) => v !== 'help')) {
      const r = await cli([verb, '--help'], stateDir);
      expect(r.code, `${verb}: ${r.stderr}`).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^Usage: lab ${verb} `, 'm'));
    }
    const help = await cli(['help', 'ls'], stateDir);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: lab ls /m);
  });

  it('`npm run lab -- ls --json` lists the labs (not "unknown lab \'ls\'")', async () => {
    const stateDir = mkTemp('tlx-verbs-state-');
    LabState.create(labMeta('smb-0a0a', { ownerPid: 4194305, status: 'up' }), stateDir);
    const r = await run('npm', ['run', '--silent', 'lab', '--', 'ls', '--json'], { cwd: REPO_ROOT, env: { ...process.env, CI: 'true', LAB_STATE_DIR: stateDir } as Record<string, string>, reject: false, timeoutMs: 60_000 });
    expect(r.exitCode, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { id: string }[]).map((l) => l.id)).toEqual(['smb-0a0a']);
  });

  it('`run` is the default only when the first word is not a verb', () => {
    expect(normalizeArgv([])).toEqual(['run']);
    expect(normalizeArgv(['smb', '--quick'])).toEqual(['run', 'smb', '--quick']);
    expect(normalizeArgv(['--quick', 'smb'])).toEqual(['run', '--quick', 'smb']);
    for (const v of VERBS) expect(normalizeArgv([v, 'x'])).toEqual([v, 'x']);
    expect(normalizeArgv(['--help'])).toEqual(['--help']);
    expect(normalizeArgv(['./ls.yaml'])).toEqual(['run', './ls.yaml']);
  });
});

describe('a lab cannot be named after a verb', () => {
  it('labs/ls.yaml (a lab whose file name is a verb) is refused with the reason', () => {
    const repo = mkTemp('tlx-verbs-repo-');
    mkdirSync(join(repo, 'labs'));
    cpSync(join(REPO_ROOT, 'topologies'), join(repo, 'topologies'), { recursive: true });
    writeFileSync(join(repo, 'labs', 'ls.yaml'), 'topology: smb\nstrategies: [talos-vip+metallb-l2]\ndrills: [baseline]\n');
    let e: unknown;
    try {
      loadLab('ls', { repoRoot: repo });
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(LabInputError);
    expect((e as LabInputError).issues).toEqual([
      { file: 'labs/ls.yaml', path: '', message: expect.stringMatching(/^the lab name 'ls' is a verb of the CLI \(run, up, down, ls, .*\): `lab ls` runs the verb, never this lab; expected another file name$/) },
    ]);
  });

  it('a lab file with `name: clean` is refused at its `name` (exit 2 through the CLI)', async () => {
    const d = mkTemp('tlx-verbs-lab-');
    const file = join(d, 'tidy.yaml');
    writeFileSync(file, 'name: clean\ntopology: smb\nstrategies: [talos-vip+metallb-l2]\ndrills: [baseline]\n');
    const r = await cli(['run', file, '--dry-run'], mkTemp('tlx-verbs-state-'));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${file}: name: the lab name 'clean' is a verb of the CLI`);
    expect(r.stderr).toContain('(line 1)');
  });

  it('a dry run prints the plan the run would follow: runs per strategy, estimate and floor, and starts nothing', async () => {
    // calibration-fast: one strategy; baseline on the API and both Services (3 runs, no repeats),
    // crash on the API and the first Service × 3 repeats (6 runs)
    const r = await cli(['run', 'calibration-fast', '--dry-run', '--out', mkTemp('tlx-verbs-out-')], mkTemp('tlx-verbs-state-'));
    expect(r.code, r.stderr).toBe(0);
    const text = r.stdout + r.stderr;
    expect(text).toMatch(/kube-vip-arp\+cilium-l2: 9 runs, about \d+ s/);
    const m = /plan: 9 runs of 1 strategy on 1 lab instance; estimated (\d+) min (\d+) s \(floor (\d+) min (\d+) s\)/.exec(text);
    expect(m, text).not.toBeNull();
    const [est, floor] = [Number(m![1]) * 60 + Number(m![2]), Number(m![3]) * 60 + Number(m![4])];
    // the floor counts only outages, holds and settle times: below the estimate, above nothing
    expect(floor).toBeGreaterThan(0);
    expect(est).toBeGreaterThan(floor);
  });

  it('`lab run ls` with no such lab says it is a verb', async () => {
    const r = await cli(['run', 'ls'], mkTemp('tlx-verbs-state-'));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown lab 'ls'");
    expect(r.stderr).toContain("'ls' is a verb: run it as `lab ls`");
  });
});

describe('down and clean by lab name', { timeout: 60_000 }, () => {
  // owner pids above the default pid_max: never alive, so nothing of these labs runs
  const dead = 4194305;

  it('one lab of that name: by name; several: exit 2 listing their ids; none: the usual message', async () => {
    const stateDir = mkTemp('tlx-verbs-state-');
    LabState.create(labMeta('minecraft-1111', { lab: 'minecraft', prefix: 'tlab-minecraft-1111', ownerPid: dead, status: 'up' }), stateDir);
    LabState.create(labMeta('smb-aaaa', { lab: 'smb', prefix: 'tlab-smb-aaaa', ownerPid: dead, status: 'up' }), stateDir);
    LabState.create(labMeta('smb-bbbb', { lab: 'smb', prefix: 'tlab-smb-bbbb', ownerPid: dead, status: 'up' }), stateDir);

    const down = await cli(['down', 'minecraft'], stateDir);
    expect(down.code, down.stderr).toBe(0);
    expect(down.stdout).toContain('lab minecraft-1111 is down');
    expect(existsSync(join(stateDir, 'minecraft-1111'))).toBe(false);

    for (const verb of ['down', 'clean']) {
      const r = await cli([verb, 'smb'], stateDir);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`2 labs named 'smb' in .*: smb-aaaa \\(up, created .*\\), smb-bbbb \\(up, created .*\\); expected one: say which with \`lab ${verb} <id>\``));
    }
    expect(readdirSync(stateDir).sort()).toEqual(['smb-aaaa', 'smb-bbbb']);

    const byId = await cli(['clean', 'smb-aaaa'], stateDir);
    expect(byId.code, byId.stderr).toBe(0);
    const byName = await cli(['clean', 'smb'], stateDir);
    expect(byName.code, byName.stderr).toBe(0);
    expect(byName.stdout).toContain('smb-bbbb (tlab-smb-bbbb)');
    expect(readdirSync(stateDir)).toEqual([]);

    const none = await cli(['down', 'smb'], stateDir);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain(`no lab 'smb' in ${stateDir}`);
    const both = await cli(['clean', 'smb', '--all'], stateDir);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('give a lab id or --all, not both');
  });
});
