/** The rendered HAProxy configs pass HAProxy's own check (`haproxy -c`, the 2.6 the sim runs). */
import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadLab, REPO_ROOT } from '../../src/model/load.js';
import { renderHaproxyCfg } from '../../src/strategies/haproxy/config.js';
import { run } from '../../src/util/proc.js';
import { useTempDirs } from '../helpers/tmp.js';

const mkTemp = useTempDirs();

describe('haproxy -c on the rendered config', () => {
  for (const name of ['smb', 'enterprise']) {
    it(`${name}: valid`, async () => {
      const cfg = join(mkTemp('tlx-haproxy-'), 'haproxy.cfg');
      writeFileSync(cfg, renderHaproxyCfg(loadLab(name, { repoRoot: REPO_ROOT }).topology));
      const r = await run('haproxy', ['-c', '-f', cfg], { reject: false });
      expect(r.stdout + r.stderr).toContain('Configuration file is valid');
      expect(r.exitCode).toBe(0);
      // no warnings either (a warning is a setting HAProxy would ignore or change)
      expect(r.stdout + r.stderr).not.toMatch(/\[WARNING\]/);
    });
  }

  it('rejects a broken config (the check can fail)', async () => {
    const cfg = join(mkTemp('tlx-haproxy-'), 'haproxy.cfg');
    writeFileSync(cfg, renderHaproxyCfg(loadLab('smb', { repoRoot: REPO_ROOT }).topology).replace('option httpchk GET /readyz', 'option httpchk GET /readyz\n    frobnicate yes'));
    const r = await run('haproxy', ['-c', '-f', cfg], { reject: false });
    expect(r.exitCode).not.toBe(0);
  });
});
