/**
 * The Talos rules oracle (src/providers/kinds/talos/rules.ts, read from siderolabs/talos at
 * v1.11.6 / v1.12.11 / v1.13.9) over what a run really sends to the nodes: for every lab (labs/ and
 * test/fixtures/labs/, and any lab given to `checkLiveSequences`), every Talos version covered,
 * both Talos runtimes (docker, qemu) and EVERY order of the lab's strategies the runtime supports,
 * each node's history — the config generated for the first strategy (cluster-wide patches + the
 * runtime's per-node patch), then the live patches of each apply and unapply, a new cluster when
 * the next strategy needs another CNI — must be one Talos accepts patch by patch, and applies live
 * (no reboot) call by call. The base is a generated-like machine config of the version (the shape
 * `talosctl gen config` writes; test/helpers/fake-docker/default-rules.ts).
 *
 * Also: what `--dry-run --render DIR` writes (each strategy's `talos/unapply/*.patch.yaml` and the
 * runtime's completed live patches) is exactly what this check ran; and the check does catch the
 * patches it exists for — the ≤ 1.11 VIP removal the toolkit used to render, a live machine.files.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { loadLab, REPO_ROOT } from '../../src/model/index.js';
import type { Lab } from '../../src/model/types.js';
import { checkLiveSequences, strategyOrders, type SequenceProfile } from '../../src/providers/kinds/talos/sequence.js';
import { livePatchCalls, runtimeStrategyFiles, strategyDirs, talosPaths } from '../../src/providers/kinds/talos/cluster.js';
import { toYamlDocs } from '../../src/providers/kinds/talos/machine-config.js';
import type { TalosDoc } from '../../src/providers/kinds/talos/rules.js';
import { VIP_PATCH, VIP_UNAPPLY_PATCH } from '../../src/strategies/talos-vip/talos-patch.js';
import { DOCKER_PROFILE, dockerSupports } from '../../src/providers/runtimes/docker/talos.js';
import { QEMU_PROFILE, qemuSupports, qemuTopology } from '../../src/providers/runtimes/qemu/index.js';
import { talosMachineConfigYaml } from '../helpers/fake-docker/default-rules.js';

const VERSIONS = ['v1.11.6', 'v1.12.11', 'v1.13.9'] as const;
const K8S: Record<string, string> = { 'v1.11.6': '1.34.1', 'v1.12.11': '1.35.4', 'v1.13.9': '1.36.3' };

function labFiles(): string[] {
  const dirs = [join(REPO_ROOT, 'labs'), join(REPO_ROOT, 'test', 'fixtures', 'labs')];
  return dirs.flatMap((d) => (existsSync(d) ? readdirSync(d).filter((f) => /\.ya?ml$/.test(f)).map((f) => join(d, f)) : []));
}
const at = (lab: Lab, version: string): Lab => ({ ...lab, topology: { ...lab.topology, talos: { version, kubernetesVersion: K8S[version]! } } });
const base = (version: string) => (role: 'controlplane' | 'worker'): TalosDoc[] => [parse(talosMachineConfigYaml(role, { talosVersion: version, kubernetesVersion: K8S[version] })) as TalosDoc];

interface Runtime {
  name: string;
  profile: SequenceProfile;
  lab(l: Lab): Lab;
  supports(l: Lab): (ref: Lab['strategies'][number]) => boolean;
}
const RUNTIMES: Runtime[] = [
  { name: 'docker', profile: DOCKER_PROFILE, lab: (l) => l, supports: (l) => (r) => dockerSupports(r, l).supported },
  { name: 'qemu', profile: QEMU_PROFILE, lab: (l) => ({ ...l, topology: qemuTopology(l.topology) }), supports: (l) => (r) => qemuSupports(r, l).supported },
];

describe('every live patch sequence of every lab passes the Talos rules oracle', () => {
  const labs = labFiles().map((f) => loadLab(f));
  it('finds the labs', () => {
    expect(labs.map((l) => l.name)).toEqual(expect.arrayContaining(['minecraft', 'smb', 'enterprise']));
  });
  for (const file of labFiles()) {
    for (const version of VERSIONS) {
      it(`${file.slice(REPO_ROOT.length + 1)} at Talos ${version}: docker and qemu, every strategy order`, () => {
        const lab = at(loadLab(file), version);
        let checked = 0;
        let supported = 0;
        for (const rt of RUNTIMES) {
          const supports = rt.supports(lab);
          const r = checkLiveSequences(rt.lab(lab), rt.profile, base(version), { supports });
          expect(r.problems, `${rt.name}: ${r.problems.slice(0, 5).join('\n')}`).toEqual([]);
          const n = lab.strategies.filter(supports).length;
          supported += n;
          expect(r.orders).toBe(n ? strategyOrders(lab.strategies.filter(supports)).length : 1);
          checked += r.calls;
        }
        // every supported strategy sends at least its cluster endpoint live on apply
        if (supported) expect(checked).toBeGreaterThanOrEqual(supported);
        else expect(checked).toBe(0);
      });
    }
  }
});

describe('the check catches what it exists for', () => {
  const smb = loadLab('smb');
  const oldRemoval = toYamlDocs([{ machine: { network: { interfaces: [{ interface: 'eth0', vip: { $patch: 'delete' } }] } } }]);

  it('the Talos ≤ 1.11 VIP removal the toolkit rendered before (a delete inside a list item) fails it', () => {
    const legacy: SequenceProfile = { ...DOCKER_PROFILE, adapt: (_t, f) => (f.path === VIP_UNAPPLY_PATCH ? { ...f, content: oldRemoval } : f) };
    const r = checkLiveSequences(at(smb, 'v1.11.6'), legacy, base('v1.11.6'), { supports: (x) => dockerSupports(x, smb).supported });
    expect(r.problems.length).toBeGreaterThan(0);
    expect(r.problems.join('\n')).toMatch(/cannot delete an inner key in 'machine\.network\.interfaces\.\[0\]\.vip'/);
    // while the form rendered now passes (the 'every lab' cases above)
  });

  it('a live patch Talos can only apply with a reboot (machine.files, the old static-pod kubeconfig) fails it', () => {
    const files: SequenceProfile = {
      ...DOCKER_PROFILE,
      // the native VIP patch (a role's, applied live at apply; a Layer2VIPConfig on 1.13) with a file beside it
      adapt: (_t, f) => (f.path === VIP_PATCH ? { ...f, content: `${f.content}---\n${toYamlDocs([{ machine: { files: [{ path: '/var/local/x/kubeconfig', content: 'x', permissions: 0o600, op: 'create' }] } }])}` } : f),
    };
    const r = checkLiveSequences(at(smb, 'v1.13.9'), files, base('v1.13.9'), { supports: (x) => dockerSupports(x, smb).supported, maxFull: 1 });
    expect(r.problems.join('\n')).toMatch(/cannot apply a change of machine\.files without a reboot/);
  });
});

describe('what `--dry-run --render DIR` writes is what the check ran', () => {
  it('docker: the strategies’ Talos patches and the completed live patches in DIR equal the ones checked', async () => {
    const { engineRun } = await import('../../src/orchestrator/engine.js');
    for (const name of ['minecraft', 'smb']) {
      for (const version of ['v1.11.6', 'v1.13.9']) {
        const lab = at(loadLab(name), version);
        const dir = mkdtempSync(join(tmpdir(), 'tlx-seq-render-'));
        try {
          await engineRun(lab, { provider: 'docker', out: dir, dryRun: true, renderDir: dir, progress: { step() {}, log() {} } });
          let compared = 0;
          for (const ref of lab.strategies.filter((r) => dockerSupports(r, lab).supported)) {
            const files = runtimeStrategyFiles(lab.topology, ref, DOCKER_PROFILE);
            for (const f of files.filter((x) => x.kind === 'talos-patch')) {
              expect(readFileSync(join(dir, ref.id, f.path), 'utf8'), `${name} ${version} ${ref.id} ${f.path}`).toBe(f.content);
              compared++;
            }
            const liveDir = join(dir, 'docker', 'live', ref.id);
            for (const phase of ['apply', 'unapply'] as const) {
              for (const c of livePatchCalls(lab, files, join(dir, ref.id), phase, { profile: DOCKER_PROFILE, liveDir })) {
                for (const f of c.files) {
                  expect(readFileSync(f.path, 'utf8'), f.path).toBe(f.content);
                  compared++;
                }
              }
            }
          }
          expect(compared).toBeGreaterThan(lab.strategies.length);
          // the unapply patches are there for every strategy that has any
          expect(readdirSync(join(dir, lab.strategies.find((r) => r.cp === 'talos-vip')!.id, 'talos', 'unapply'))).toContain('native-vip.patch.yaml');
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      }
    }
    expect(strategyDirs(talosPaths('/b'), loadLab('smb').strategies[0]!).dir).toBe(`/b/strategies/${loadLab('smb').strategies[0]!.id}`);
  });
});
