/**
 * `kill -INT <pid>` of a running `lab run` (how CI systems and scripts stop a job) stops it the way
 * a terminal's Ctrl-C does: the `lab` wrapper forwards SIGINT to the CLI, which aborts the engine,
 * tears the lab down and exits 130 — nothing of the lab is left (namespaces, processes, state,
 * the output directory's lock). Root: the sim provider builds network namespaces.
 */
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../../src/model/load.js';
import { listNetns } from '../../src/state/clean.js';
import { OUT_LOCK } from '../../src/state/out-lock.js';
import { run, sleep } from '../../src/util/proc.js';
import { useTempDirs } from '../helpers/tmp.js';

const mkTemp = useTempDirs();
const BIN = join(REPO_ROOT, 'scripts', 'lab.mjs');

interface Meta {
  id: string;
  prefix: string;
  status: string;
}

/** the labs recorded in a state directory (what `lab ls` reads) */
function labsIn(stateDir: string): Meta[] {
  if (!existsSync(stateDir)) return [];
  return readdirSync(stateDir).flatMap((d) => {
    try {
      return [JSON.parse(readFileSync(join(stateDir, d, 'lab.json'), 'utf8')) as Meta];
    } catch {
      return [];
    }
  });
}

describe('SIGINT to the `lab` process alone', () => {
  it('stops a running lab run after its first measured run: exit 130 within 60 s, what was measured is written (interrupted) and reported, nothing of the lab left', async () => {
    const stateDir = mkTemp('tlx-sig-state-');
    const out = join(mkTemp('tlx-sig-out-'), 'run');
    const child = spawn(process.execPath, [BIN, 'run', 'test/fixtures/labs/ci-minecraft.yaml', '--out', out], {
      cwd: REPO_ROOT,
      env: { ...process.env, CI: 'true', LAB_STATE_DIR: stateDir },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    try {
      // wait until the lab is running (brought up, strategies being applied and measured)
      let lab: Meta | undefined;
      for (let i = 0; i < 1200 && !lab; i++) {
        lab = labsIn(stateDir).find((l) => l.status === 'running');
        if (!lab) {
          expect(child.exitCode, `lab run ended before running:\n${stderr.slice(-3000)}`).toBeNull();
          await sleep(100);
        }
      }
      expect(lab, 'the lab reached status running').toBeDefined();
      expect(existsSync(join(out, OUT_LOCK)), 'the run holds its output directory').toBe(true);
      const ours = async () => (await listNetns()).filter((n) => n === lab!.prefix || n.startsWith(`${lab!.prefix}-`));
      expect((await ours()).length).toBeGreaterThan(0);

      // the first run is measured: results.json holds it (rewritten atomically after every run)
      const resultsFile = join(out, 'results.json');
      const measured = () => (existsSync(resultsFile) ? (JSON.parse(readFileSync(resultsFile, 'utf8')) as { runs: unknown[] }).runs.length : 0);
      for (let i = 0; i < 1800 && measured() === 0; i++) {
        expect(child.exitCode, `lab run ended before its first run was written:\n${stderr.slice(-3000)}`).toBeNull();
        await sleep(100);
      }
      const before = measured();
      expect(before).toBeGreaterThan(0);

      // SIGINT to that pid only (not its process group: what `kill -INT <pid>` does)
      const t0 = Date.now();
      process.kill(child.pid!, 'SIGINT');
      const r = await Promise.race([exited, sleep(60_000).then(() => null)]);
      expect(r, `lab run did not exit within 60 s after SIGINT:\n${stderr.slice(-3000)}`).not.toBeNull();
      expect(r!.code, stderr.slice(-3000)).toBe(130);
      expect(Date.now() - t0).toBeLessThan(60_000);
      expect(stderr).toMatch(/SIGINT: stopping and tearing the lab down/);

      expect(await ours()).toEqual([]);
      const procs = (await run('ps', ['-eo', 'args'])).stdout.split('\n').filter((a) => a.includes(lab!.prefix) || a.includes(`${stateDir}/`));
      expect(procs).toEqual([]);
      const ls = await run(process.execPath, [BIN, 'ls', '--json'], { env: { ...process.env, CI: 'true', LAB_STATE_DIR: stateDir }, cwd: REPO_ROOT });
      expect(JSON.parse(ls.stdout)).toEqual([]);
      expect(existsSync(join(out, OUT_LOCK)), 'the output directory is unlocked').toBe(false);
      // what was measured before the interrupt is kept, said to be interrupted, and reported
      const results = JSON.parse(readFileSync(resultsFile, 'utf8')) as { interrupted?: boolean; runs: { drill: string }[] };
      expect(results.interrupted).toBe(true);
      expect(results.runs.length).toBeGreaterThanOrEqual(before);
      expect(readFileSync(join(out, 'report.md'), 'utf8')).toMatch(/interrupted/i);
      expect(existsSync(join(out, 'report.html'))).toBe(true);
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        // a failed assertion: stop the CLI (its own process group, a child of the wrapper), then the wrapper, then clean this state directory's stale labs (never --all: other labs' namespaces are not ours)
        for (const pid of readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)) {
          try {
            process.kill(-pid, 'SIGKILL');
          } catch {
            /* gone */
          }
        }
        child.kill('SIGKILL');
        await run(process.execPath, [BIN, 'clean'], { env: { ...process.env, CI: 'true', LAB_STATE_DIR: stateDir }, cwd: REPO_ROOT, reject: false, timeoutMs: 120_000 });
      }
    }
  });
});
