/**
 * Mechanism settings (`settings.<group>` in lab and topology files), composed like the timers:
 * each mechanism's group and defaults come from the registry, the schema is built from the
 * defaults, files merge defaults ⊕ topology ⊕ lab field by field, a group may derive timer
 * defaults from its settings (under the files' own timers), and problems name the file and path
 * that set them. kube-vip's `version` is the group that exists today.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadLab, REPO_ROOT } from '../../src/model/load.js';
import { DEFAULT_SETTINGS, mergeSettings, settingsIssues, settingsTimerDefaults } from '../../src/model/settings.js';
import { DEFAULT_TIMERS } from '../../src/model/timer-groups.js';
import { LabInputError } from '../../src/util/errors.js';
import { useTempDirs } from '../helpers/tmp.js';

const mkTemp = useTempDirs();

/** a lab on a copy of smb's topology, with extra YAML appended to each file */
function lab(labExtra: string, topoExtra = ''): string {
  const dir = mkTemp('tlx-settings-');
  writeFileSync(join(dir, 'topo.yaml'), readFileSync(join(REPO_ROOT, 'topologies', 'smb.yaml'), 'utf8') + '\n' + topoExtra);
  writeFileSync(join(dir, 'lab.yaml'), `topology: ./topo.yaml\nstrategies: [kube-vip-arp+kube-vip-arp]\ndrills: [baseline]\n${labExtra}`);
  return join(dir, 'lab.yaml');
}

function issuesOf(file: string) {
  try {
    loadLab(file);
  } catch (e) {
    if (e instanceof LabInputError) return e.issues;
    throw e;
  }
  throw new Error('the lab loaded');
}

describe('mechanism settings', () => {
  it('every registered group with its defaults; merge is field by field, later wins, defaults untouched', () => {
    expect(DEFAULT_SETTINGS.kubeVip).toEqual({ version: 'v1.2.3' });
    const s = mergeSettings(DEFAULT_SETTINGS, { kubeVip: { version: 'v0.8.9' } }, { kubeVip: {} }, undefined);
    expect(s.kubeVip.version).toBe('v0.8.9');
    expect(DEFAULT_SETTINGS.kubeVip.version).toBe('v1.2.3');
    expect(settingsIssues(DEFAULT_SETTINGS, DEFAULT_TIMERS)).toEqual([]);
  });

  it('the defaults land in every resolved topology; a lab without settings gets them', () => {
    const t = loadLab('smb', { repoRoot: REPO_ROOT }).topology;
    expect(t.settings).toEqual(DEFAULT_SETTINGS);
  });

  it('defaults ⊕ topology ⊕ lab: the lab wins over its topology', () => {
    expect(loadLab(lab('', 'settings:\n  kubeVip: { version: v1.1.2 }\n')).topology.settings.kubeVip.version).toBe('v1.1.2');
    expect(loadLab(lab('settings:\n  kubeVip: { version: v0.9.2 }\n', 'settings:\n  kubeVip: { version: v1.1.2 }\n')).topology.settings.kubeVip.version).toBe('v0.9.2');
  });

  it('a group derives timer defaults from its settings, under the files\' own timers', () => {
    // kube-vip's lease defaults changed in v1.1.0 (15/10/2 s); v0.8.9 had 5/3/1 s
    expect(settingsTimerDefaults(mergeSettings(DEFAULT_SETTINGS, { kubeVip: { version: 'v0.8.9' } }))).toEqual({
      kubeVip: { leaseDurationS: 5, renewDeadlineS: 3, retryPeriodS: 1, arpRateMs: 3000 },
    });
    expect(loadLab(lab('')).topology.timers.kubeVip).toMatchObject({ leaseDurationS: 15, renewDeadlineS: 10, retryPeriodS: 2 });
    expect(loadLab(lab('settings:\n  kubeVip: { version: v0.8.9 }\n')).topology.timers.kubeVip).toMatchObject({ leaseDurationS: 5, renewDeadlineS: 3, retryPeriodS: 1 });
    // a pinned release in the topology applies to its labs too
    expect(loadLab(lab('', 'settings:\n  kubeVip: { version: v1.0.4 }\n')).topology.timers.kubeVip).toMatchObject({ leaseDurationS: 5 });
    // an explicit timer wins over the release's default, field by field
    const t = loadLab(lab('settings:\n  kubeVip: { version: v0.8.9 }\ntimers:\n  kubeVip: { leaseDurationS: 8 }\n')).topology.timers.kubeVip;
    expect(t).toMatchObject({ leaseDurationS: 8, renewDeadlineS: 3, retryPeriodS: 1 });
  });

  it('the schema is built from the defaults: unknown groups and fields, and wrong types, are refused', () => {
    expect(issuesOf(lab('settings:\n  nope: { x: 1 }\n')).map((i) => i.path)).toContain('settings.nope');
    expect(issuesOf(lab('settings:\n  kubeVip: { release: v1.2.3 }\n')).map((i) => i.path)).toContain('settings.kubeVip.release');
    expect(issuesOf(lab('settings:\n  kubeVip: { version: 1.2 }\n')).map((i) => i.path)).toContain('settings.kubeVip.version');
  });

  it("a group's own rule refuses what it cannot emulate, blamed on the file that set it", () => {
    const fromLab = issuesOf(lab('settings:\n  kubeVip: { version: v9.9.9 }\n'));
    expect(fromLab).toEqual([expect.objectContaining({ file: expect.stringMatching(/lab\.yaml$/), path: 'settings.kubeVip.version', message: expect.stringMatching(/outside the releases .*v0\.8\.0–v1\.2\.3/) })]);
    const fromTopo = issuesOf(lab('', 'settings:\n  kubeVip: { version: latest }\n'));
    expect(fromTopo).toEqual([expect.objectContaining({ file: expect.stringMatching(/topo\.yaml$/), path: 'settings.kubeVip.version', message: expect.stringMatching(/vX\.Y\.Z/) })]);
  });
});
