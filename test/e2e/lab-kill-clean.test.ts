/**
 * Issue 2: `lab clean` after `kill -9` of a running `lab up` leaves no namespace, link or process
 * of that lab; `lab ls` shows it as stale first. Runs the real CLI entry (src/cli/main.ts) with
 * its own state directory.
 */
import { describe, expect, it } from 'vitest';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from '../../src/model/load.js';
import { listNetns } from '../../src/state/clean.js';
import { run, sleep } from '../../src/util/proc.js';
import { useTempDirs } from '../helpers/tmp.js';

const mkTemp = useTempDirs();
const tsx = pathToFileURL(createRequire(join(REPO_ROOT, 'package.json')).resolve('tsx')).href;
const cli = (stateDir: string, args: string[]) =>
  execFileSync(process.execPath, ['--import', tsx, join(REPO_ROOT, 'src', 'cli', 'main.ts'), ...args], { cwd: REPO_ROOT, env: { ...process.env, CI: 'true', LAB_STATE_DIR: stateDir }, encoding: 'utf8' });

describe('kill -9 during `lab up`, then `lab clean`', () => {
  it('leaves no namespace, link or process of the lab', async () => {
    const stateDir = mkTemp('killstate-');
    const child = spawn(process.execPath, ['--import', tsx, join(REPO_ROOT, 'src', 'cli', 'main.ts'), 'up', 'smb'], { cwd: REPO_ROOT, env: { ...process.env, CI: 'true', LAB_STATE_DIR: stateDir }, stdio: 'ignore' });
    // wait until the lab is half built: namespaces exist and daemons (etcd, FRR) were started
    let id = '';
    for (let i = 0; i < 200; i++) {
      await sleep(50);
      const labs = existsSync(stateDir) ? readdirSync(stateDir) : [];
      if (!labs.length) continue;
      id = labs[0]!;
      const res = join(stateDir, id, 'resources.jsonl');
      if (existsSync(res) && readFileSync(res, 'utf8').split('\n').filter((l) => l.includes('"kind":"pid"')).length >= 2) break;
    }
    expect(id, 'the lab recorded its resources').not.toBe('');
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const prefix = (JSON.parse(readFileSync(join(stateDir, id, 'lab.json'), 'utf8')) as { prefix: string }).prefix;
    const ours = async () => (await listNetns()).filter((n) => n.startsWith(prefix));
    expect((await ours()).length, 'the killed run left namespaces (what clean must remove)').toBeGreaterThan(0);

    expect(cli(stateDir, ['ls'])).toMatch(new RegExp(`${id}.*stale`));
    const cleaned = cli(stateDir, ['clean']);
    expect(cleaned).toContain(prefix);

    expect(await ours()).toEqual([]);
    const procs = (await run("ps", ["-eo", "args"])).stdout.split("\n").filter((a) => a.includes(prefix) || a.includes(`/${id}/`));
    expect(procs).toEqual([]);
    expect(existsSync(`/var/run/frr/${prefix}-rtr`)).toBe(false);
    expect(readdirSync(stateDir)).toEqual([]);
  });
});
