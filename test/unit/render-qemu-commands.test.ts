/**
 * The qemu provider's rendered commands and decisions (pure): the talosctl command line per Talos
 * version (≤ 1.11 `--provisioner qemu`, ≥ 1.12 `cluster create qemu` with the renamed patch
 * flags), the node addresses talosctl hands out, the VIP patch on talosctl's NIC, `--use-vip` only
 * when talosctl's own VIP address is the topology's, what qemu cannot do and why.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { talosStrategyFiles } from '../../src/providers/kinds/talos/files.js';
import { VIP_PATCH } from '../../src/strategies/talos-vip/talos-patch.js';
import { join } from 'node:path';
import { parse } from 'yaml';
import { loadLab } from '../../src/model/index.js';
import type { Lab, Topology } from '../../src/model/types.js';
import { PrerequisiteError } from '../../src/util/errors.js';
import {
  qemuCheck,
  talosBootAssets,
  qemuCreateCommand,
  qemuDestroyCommand,
  qemuNodeIps,
  qemuPatches,
  qemuPaths,
  qemuPrimitive,
  qemuProvider,
  qemuSupports,
  writeQemuStrategyFiles,
} from '../../src/providers/runtimes/qemu/index.js';
import { useTempDirs } from '../helpers/tmp.js';

const tmp = useTempDirs();
const smb = loadLab('smb');
const mc = loadLab('minecraft');
const ent = loadLab('enterprise');
const p = qemuPaths('/st/qemu');
const v12 = (l: Lab): Lab => ({ ...l, topology: { ...l.topology, talos: { ...l.topology.talos, version: 'v1.12.11' } } });
const flagValues = (cmd: string[], flag: string) => cmd.flatMap((a, i) => (a === flag ? [cmd[i + 1]!] : []));

describe('qemu commands', () => {
  it('Talos ≤ 1.11: talosctl cluster create --provisioner qemu with the lab’s sizes, CIDR, versions and patches', () => {
    const tv = smb.strategies[0]!;
    const cmd = qemuCreateCommand(smb, 'tlab-smb-beef', p, tv);
    expect(cmd.slice(0, 3)).toEqual(['talosctl', '--talosconfig', '/st/qemu/talosconfig']);
    expect(cmd.slice(3, 7)).toEqual(['cluster', 'create', '--provisioner', 'qemu']);
    expect(flagValues(cmd, '--controlplanes')).toEqual(['3']);
    expect(flagValues(cmd, '--workers')).toEqual(['2']);
    expect(flagValues(cmd, '--cidr')).toEqual(['10.32.0.0/24']);
    expect(flagValues(cmd, '--talos-version')).toEqual(['v1.11.6']);
    expect(flagValues(cmd, '--config-patch-control-plane')).toContain('@/st/qemu/patches/api-cert-sans.patch.yaml');
    expect(cmd.join(' ')).not.toContain('native-vip'); // a role's patch: applied at apply
    expect(flagValues(cmd, '--config-patch')).toContain('@/st/qemu/patches/kubeprism.patch.yaml');
    expect(cmd).toContain('--skip-kubeconfig'); // never merges into the user's ~/.kube/config
    expect(cmd).not.toContain('--use-vip'); // the topology VIP .10 is not talosctl's .50
    // talosctl ≤ 1.11 defaults --vmlinuz-path/--initrd-path to _out/… under the working directory
    // (create/command.go@v1.11.6): the release's own files from the lab's cache are passed instead
    const boot = talosBootAssets('v1.11.6');
    expect(flagValues(cmd, '--vmlinuz-path')).toEqual([boot.vmlinuz]);
    expect(flagValues(cmd, '--initrd-path')).toEqual([boot.initramfs]);
    expect(boot.vmlinuz.startsWith('/')).toBe(true);
    expect(boot.vmlinuz).toMatch(/talos\/v1\.11\.6\/vmlinuz-(amd64|arm64)$/);
    expect(boot.initramfs).toMatch(/talos\/v1\.11\.6\/initramfs-(amd64|arm64)\.xz$/);
    expect(qemuDestroyCommand(smb, 'tlab-smb-beef', p)).toEqual(['talosctl', 'cluster', 'destroy', '--name', 'tlab-smb-beef', '--state', '/st/qemu/clusters', '--provisioner', 'qemu']);
  });

  it('Talos ≥ 1.12: talosctl cluster create qemu with the renamed control-plane patch flag', () => {
    const l = v12(smb);
    const cmd = qemuCreateCommand(l, 'tlab-smb-beef', p, l.strategies[0]!);
    expect(cmd.slice(0, 4)).toEqual(['talosctl', 'cluster', 'create', 'qemu']);
    expect(cmd).not.toContain('--provisioner');
    expect(flagValues(cmd, '--config-patch-controlplanes')).toContain('@/st/qemu/patches/api-cert-sans.patch.yaml');
    expect(cmd).not.toContain('--config-patch-control-plane');
    expect(flagValues(cmd, '--talosconfig-destination')).toEqual(['/st/qemu/talosconfig']);
    expect(qemuDestroyCommand(l, 'x', p)).not.toContain('--provisioner');
    // ≥ 1.12 boots the Image Factory's iso preset for --talos-version: no kernel flags exist there
    expect(cmd).not.toContain('--vmlinuz-path');
    expect(cmd).not.toContain('--iso-path');
  });

  it('check() says when the ≤ 1.11 kernel and initramfs are missing, with a download that verifies their sha256', async () => {
    const before = process.env.TLAB_TALOS_ASSETS;
    process.env.TLAB_TALOS_ASSETS = tmp('tlx-qemu-assets-');
    try {
      const err = await qemuCheck(smb).then(() => null, (e: unknown) => e);
      if (process.platform !== 'linux') return;
      expect(err).toBeInstanceOf(PrerequisiteError);
      const e = err as PrerequisiteError;
      expect(e.what).toMatch(/Talos v1\.11\.6 boot artefacts missing/);
      expect(e.fix).toMatch(/vmlinuz-(amd64|arm64) .*initramfs-(amd64|arm64)\.xz .*sha256sum\.txt && sha256sum --ignore-missing -c sha256sum\.txt/);
      expect(await qemuCheck(v12(smb)).then(() => '', (x: Error) => x.message)).not.toMatch(/boot artefacts/);
    } finally {
      if (before === undefined) delete process.env.TLAB_TALOS_ASSETS;
      else process.env.TLAB_TALOS_ASSETS = before;
    }
  });

  it('talosctl numbers the VMs from the 2nd address, control planes first', () => {
    expect(qemuNodeIps(smb.topology)).toEqual({ cp1: '10.32.0.2', cp2: '10.32.0.3', cp3: '10.32.0.4', w1: '10.32.0.5', w2: '10.32.0.6' });
  });

  it('the VIP patch names talosctl’s NIC (deviceSelector ≤ 1.11, the net0 alias ≥ 1.12), and the container-mode patch is left out', () => {
    const tv = smb.strategies[0]!;
    expect(qemuPatches(smb.topology, tv).map((x) => x.file)).not.toContain('container-mode.patch.yaml');
    const dir = mkdtempSync(join(tmpdir(), 'qemu-files-'));
    const vipOf = (t: Topology) => writeQemuStrategyFiles(t, dir, talosStrategyFiles(t, tv)).find((f) => f.path === VIP_PATCH)!;
    expect(parse(vipOf(smb.topology).content)).toEqual({ machine: { network: { interfaces: [{ deviceSelector: { driver: 'virtio_net' }, vip: { ip: smb.topology.vip } }] } } });
    expect(parse(vipOf(v12(smb).topology).content)).toEqual({ apiVersion: 'v1alpha1', kind: 'Layer2VIPConfig', name: smb.topology.vip, link: 'net0' });
    rmSync(dir, { recursive: true, force: true });
  });

  it('never asks talosctl for its own VIP: the strategy’s VIP patch is the one that counts', () => {
    const t: Topology = { ...smb.topology, vip: '10.32.0.50' };
    expect(qemuCreateCommand({ ...smb, topology: t }, 'x', p, smb.strategies[0]!)).not.toContain('--use-vip');
  });
});

describe('what qemu can and cannot do', () => {
  it('runs the L2 strategies; refuses BGP, the external HAProxy and racks, each with its reason', () => {
    for (const s of mc.strategies) expect(qemuSupports(s, mc)).toEqual({ supported: true });
    expect(qemuSupports(smb.strategies.find((s) => s.id === 'talos-vip+metallb-l2')!, smb)).toEqual({ supported: true });
    expect(qemuSupports(smb.strategies.find((s) => s.id === 'haproxy+metallb-bgp')!, smb)).toMatchObject({ supported: false, reason: expect.stringMatching(/BGP router/) });
    expect(qemuSupports({ ...smb.strategies[0]!, cp: 'haproxy', svc: 'metallb-l2', id: 'haproxy+metallb-l2' }, smb)).toMatchObject({ supported: false, reason: expect.stringMatching(/load-balancer host/) });
    for (const s of ent.strategies) expect(qemuSupports(s, ent)).toMatchObject({ supported: false, reason: expect.stringMatching(/one bridge network/) });
  });

  it('refuses a topology whose talosctl-assigned node addresses would take the VIP', () => {
    const t: Topology = { ...smb.topology, vip: '10.32.0.4' };
    expect(qemuSupports(smb.strategies[0]!, { ...smb, topology: t })).toMatchObject({ supported: false, reason: expect.stringMatching(/collides/) });
  });

  it('offers freeze only, and says why the rest cannot be done honestly', () => {
    expect(qemuPrimitive('freeze')).toMatchObject({ how: expect.stringMatching(/SIGSTOP/) });
    for (const x of ['shutdown', 'crash', 'partition', 'link-flap', 'leave', 'join'] as const) expect(qemuPrimitive(x)).toHaveProperty('unsupported');
    expect(qemuProvider.supportsDrill('partition')).toMatchObject({ supported: false, reason: expect.stringMatching(/root namespace/) });
  });

  it('plan() writes the patches and plan.json, listing unsupported strategies with their reason', async () => {
    const dir = tmp('tlx-qemu-plan-');
    const steps = await qemuProvider.plan(smb, { prefix: 'tlab-smb-dryrun', renderDir: dir });
    expect(steps.some((s) => s.command?.startsWith('talosctl --talosconfig'))).toBe(true);
    expect(steps.some((s) => /haproxy\+metallb-bgp: unsupported on qemu/.test(s.what))).toBe(true);
    const plan = JSON.parse(readFileSync(join(dir, 'qemu', 'plan.json'), 'utf8'));
    expect(plan.strategies['haproxy+metallb-bgp'].supported).toBe(false);
    for (const x of plan.patches as { file: string }[]) expect(existsSync(join(dir, 'qemu', x.file))).toBe(true);
    expect(readFileSync(join(dir, 'qemu', 'strategies', 'talos-vip+metallb-l2', 'talos', 'native-vip.patch.yaml'), 'utf8')).toContain('virtio_net');
  });
});
