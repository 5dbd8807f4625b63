/**
 * The Talos kind's shared cluster steps (src/providers/kinds/talos/cluster.ts), pure parts and the
 * retry logic with a scripted talosctl: the idempotent bootstrap (AlreadyExists after a lost
 * reply), waiting for EVERY node (not `kubectl wait --all`), live patches that Talos applies
 * without a reboot (`--mode=no-reboot`, completed Talos ≤ 1.11 interface deletes checked with the
 * rules oracle), the echo workload and Services, pinned installs with checksums.
 */
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { loadLab } from '../../src/model/index.js';
import type { Lab } from '../../src/model/types.js';
import type { RenderedFile } from '../../src/strategies/types.js';
import {
  bootstrapOnce,
  classifyBootstrapError,
  healthCommand,
  helmInstall,
  kubectlInstall,
  livePatchCalls,
  patchCommand,
  refuseRebootingFiles,
  registeredNodeIps,
  runtimeStrategyFiles,
  strategyApplyCommands,
  strategyUnapplyCommands,
  talosPaths,
  talosctlInstall,
} from '../../src/providers/kinds/talos/cluster.js';
import { completeInterfaceDeletes, toYamlDocs } from '../../src/providers/kinds/talos/machine-config.js';
import { checkCallSequence, checkPatchSequence, applyTalosPatch, v1alpha1Of, type TalosDoc } from '../../src/providers/kinds/talos/rules.js';
import { VIP_UNAPPLY_PATCH, vipPatchDocs, vipRemovalDocs } from '../../src/strategies/talos-vip/talos-patch.js';
import { AGNHOST_IMAGE, SERVICES_PATH, WORKLOAD_PATH, echoWorkloadFiles } from '../../src/providers/kinds/talos/workload.js';
import { composeStrategy } from '../../src/strategies/compose.js';
import { servedBy } from '../../src/traffic/target.js';
import { DOCKER_PROFILE } from '../../src/providers/runtimes/docker/talos.js';
import { QEMU_PROFILE, qemuTopology } from '../../src/providers/runtimes/qemu/index.js';
import { talosMachineConfigYaml } from '../helpers/fake-docker/default-rules.js';

const smb = loadLab('smb');
const mc = loadLab('minecraft');
const at = (l: Lab, version: string): Lab => ({ ...l, topology: { ...l.topology, talos: { ...l.topology.talos, version } } });
const p = talosPaths('/st/docker');
const base = (role: 'controlplane' | 'worker', version: string): TalosDoc[] => [parse(talosMachineConfigYaml(role, { talosVersion: version }))];

describe('bootstrap, once', () => {
  const script = (answers: { exitCode: number; stderr?: string }[]) => {
    const calls: number[] = [];
    return {
      calls,
      exec: async () => {
        const a = answers[Math.min(calls.length, answers.length - 1)]!;
        calls.push(calls.length);
        return { exitCode: a.exitCode, stdout: '', stderr: a.stderr ?? '' };
      },
    };
  };

  it('a retry after a lost reply finds AlreadyExists: etcd was bootstrapped, nothing else is tried', async () => {
    const s = script([
      { exitCode: 1, stderr: 'error executing bootstrap: rpc error: code = Unavailable desc = connection error: desc = "transport: error reading server preface: EOF"' },
      { exitCode: 1, stderr: 'error executing bootstrap: rpc error: code = AlreadyExists desc = etcd data directory is not empty' },
    ]);
    expect(await bootstrapOnce(s.exec, { timeoutMs: 60_000, intervalMs: 1 })).toBe('already');
    expect(s.calls).toHaveLength(2);
  });

  it('waits through FailedPrecondition (CRI not up, clock not in sync), fails on anything else at once', async () => {
    const s = script([{ exitCode: 1, stderr: 'rpc error: code = FailedPrecondition desc = bootstrap is not available yet' }, { exitCode: 1, stderr: 'rpc error: code = FailedPrecondition desc = time is not in sync yet' }, { exitCode: 0 }]);
    expect(await bootstrapOnce(s.exec, { timeoutMs: 60_000, intervalMs: 1 })).toBe('bootstrapped');
    expect(s.calls).toHaveLength(3);
    const bad = script([{ exitCode: 1, stderr: 'rpc error: code = PermissionDenied desc = not authorized' }]);
    await expect(bootstrapOnce(bad.exec, { timeoutMs: 60_000, intervalMs: 1 })).rejects.toThrow(/PermissionDenied/);
    expect(bad.calls).toHaveLength(1);
    expect(classifyBootstrapError('bootstrap can only be performed on a control plane node')).toBe('fatal');
  });
});

describe('waiting for every node', () => {
  it('talosctl health names every control plane and worker by IP', () => {
    const cmd = healthCommand(p, smb.topology.nodes);
    const at = (f: string) => cmd[cmd.indexOf(f) + 1]!;
    expect(at('--control-plane-nodes').split(',')).toEqual(smb.topology.nodes.filter((n) => n.role === 'controlplane').map((n) => n.ip));
    expect(at('--worker-nodes').split(',')).toEqual(smb.topology.nodes.filter((n) => n.role === 'worker').map((n) => n.ip));
    expect(cmd).toContain('health');
    expect(healthCommand(p, mc.topology.nodes)).not.toContain('--worker-nodes');
  });

  it('counts registered nodes by InternalIP, so 2 of 5 is 2 of 5 even when both are Ready', () => {
    const ips = smb.topology.nodes.map((n) => n.ip);
    const two = JSON.stringify({ items: ips.slice(0, 2).map((ip) => ({ status: { addresses: [{ type: 'InternalIP', address: ip }, { type: 'Hostname', address: 'x' }], conditions: [{ type: 'Ready', status: 'True' }] } })) });
    expect(registeredNodeIps(two, ips)).toEqual(ips.slice(0, 2));
    expect(registeredNodeIps('not json', ips)).toEqual([]);
  });
});

describe('live patches', () => {
  it('every live patch goes with --mode=no-reboot (talosctl defaults to auto, which reboots)', () => {
    const tv = smb.strategies.find((s) => s.cp === 'talos-vip')!;
    const files = runtimeStrategyFiles(smb.topology, tv, DOCKER_PROFILE);
    const cmds = [...strategyApplyCommands(smb, tv, p, files, '/r', { profile: DOCKER_PROFILE }), ...strategyUnapplyCommands(smb, tv, p, files, '/r', { profile: DOCKER_PROFILE })].filter((c) => c.includes('patch'));
    expect(cmds.length).toBeGreaterThanOrEqual(3);
    for (const c of cmds) expect(c).toContain('--mode=no-reboot');
  });

  it('the Talos ≤ 1.11 VIP removal Talos used to refuse is now a delete of the eth0 item that re-adds docker’s routes, accepted live', () => {
    const l = at(smb, 'v1.11.6');
    const cp1 = l.topology.nodes[0]!;
    const tv = l.strategies.find((s) => s.cp === 'talos-vip')!;
    const files = runtimeStrategyFiles(l.topology, tv, DOCKER_PROFILE);
    const [call] = livePatchCalls(l, files, '/r', 'unapply', { profile: DOCKER_PROFILE, liveDir: '/live' });
    expect(call!.files).toHaveLength(1);
    expect(call!.files[0]!.path.startsWith('/live/')).toBe(true);
    const items = parse(call!.files[0]!.content).machine.network.interfaces;
    expect(items[0]).toEqual({ interface: 'eth0', $patch: 'delete' });
    expect(items[1]).toEqual(DOCKER_PROFILE.nodeInterfaces(l.topology, cp1)[0]);
    // the history of a control plane: generated + docker's routes, VIP on, VIP off
    let cfg = base('controlplane', 'v1.11.6');
    cfg = (applyTalosPatch(cfg, DOCKER_PROFILE.nodeConfigPatch(l.topology, cp1), 'v1.11.6') as { ok: true; result: TalosDoc[] }).result;
    const on = livePatchCalls(l, files, '/r', 'apply', { profile: DOCKER_PROFILE }).find((c) => c.name.includes('native-vip'))!;
    const r = checkCallSequence(cfg, [{ name: 'vip on', yamls: on.files.map((f) => f.content), live: true }, { name: 'vip off', yamls: call!.files.map((f) => f.content), live: true }], 'v1.11.6');
    expect(r.problems).toEqual([]);
    const ifs = (v1alpha1Of(r.result) as any).machine.network.interfaces;
    expect(ifs).toEqual(DOCKER_PROFILE.nodeInterfaces(l.topology, cp1));
    // the form rendered before: Talos refuses it
    const old = toYamlDocs([{ machine: { network: { interfaces: [{ interface: 'eth0', vip: { $patch: 'delete' } }] } } }]);
    expect(checkCallSequence(cfg, [{ name: 'vip on', yamls: on.files.map((f) => f.content), live: true }, { name: 'old vip off', yamls: [old], live: true }], 'v1.11.6').problems.join('\n')).toMatch(/cannot delete an inner key/);
  });

  it('qemu ≤ 1.11 (deviceSelector NIC): the whole list goes and talosctl’s entry comes back, two patches in ONE call', () => {
    const l = { ...at(smb, 'v1.11.6'), topology: qemuTopology(at(smb, 'v1.11.6').topology) };
    const tv = l.strategies.find((s) => s.cp === 'talos-vip')!;
    const files = runtimeStrategyFiles(l.topology, tv, QEMU_PROFILE);
    const off = livePatchCalls(l, files, '/r', 'unapply', { profile: QEMU_PROFILE, liveDir: '/live' });
    expect(off).toHaveLength(1);
    expect(off[0]!.files).toHaveLength(2);
    expect(patchCommand(p, off[0]!).filter((a) => a === '--patch')).toHaveLength(2);
    const on = livePatchCalls(l, files, '/r', 'apply', { profile: QEMU_PROFILE }).find((c) => c.name.includes('native-vip'))!;
    let cfg = base('controlplane', 'v1.11.6');
    cfg = (applyTalosPatch(cfg, QEMU_PROFILE.nodeConfigPatch(l.topology, l.topology.nodes[0]!), 'v1.11.6') as { ok: true; result: TalosDoc[] }).result;
    const r = checkCallSequence(cfg, [{ name: 'on', yamls: on.files.map((f) => f.content), live: true }, { name: 'off', yamls: off[0]!.files.map((f) => f.content), live: true }], 'v1.11.6');
    expect(r.problems).toEqual([]);
    expect((v1alpha1Of(r.result) as any).machine.network.interfaces).toEqual(QEMU_PROFILE.nodeInterfaces(l.topology, l.topology.nodes[0]!));
    // each part alone would be applied with the node's link gone in between: talosctl sends one config per call
    expect(checkPatchSequence(cfg, [{ name: 'on', yaml: on.files[0]!.content, live: true }, { name: 'relinked old form', yaml: files.find((f) => f.path === VIP_UNAPPLY_PATCH)!.content, live: true }], 'v1.11.6').join('\n')).toMatch(/lookup failed/);
  });

  it('completion leaves patches without interface deletes alone, and Talos ≥ 1.12 removals are document deletes', () => {
    const add = toYamlDocs(vipPatchDocs('10.0.0.10', 'v1.11.6', 'eth0'));
    expect(completeInterfaceDeletes(add, [{ interface: 'eth0', routes: [] }])).toEqual([add]);
    expect(vipRemovalDocs('10.0.0.10', 'v1.13.9', 'eth0')).toEqual([{ apiVersion: 'v1alpha1', kind: 'Layer2VIPConfig', name: '10.0.0.10', $patch: 'delete' }]);
    expect(() => vipRemovalDocs('10.0.0.10', 'v1.11.6', { deviceSelector: { driver: 'virtio_net' } })).toThrow(/only an interface name/);
  });

  it('a static pod that needs a kubeconfig file is refused: machine.files would reboot the nodes', () => {
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x', namespace: 'kube-system' }, spec: { volumes: [{ name: 'k', hostPath: { path: '/var/local/x/kubeconfig', type: 'File' } }] } };
    const f: RenderedFile = { path: 'talos/x.patch.yaml', kind: 'talos-patch', content: toYamlDocs([{ machine: { pods: [pod] } }]) };
    expect(() => refuseRebootingFiles([f])).toThrow(/machine\.files.*reboot.*DaemonSet/);
    expect(() => strategyApplyCommands(smb, smb.strategies[0]!, p, [f], '/r')).toThrow(/reboot/);
  });
});

describe('the echo workload and Services of a real cluster', () => {
  it('agnhost netexec (pinned), one pod per workload node, every path answering the client address', () => {
    const files = echoWorkloadFiles(smb.topology, composeStrategy(smb.strategies[0]!));
    const dep = parseAllDocuments(files.find((f) => f.path === WORKLOAD_PATH)!.content).map((d) => d.toJS())[0];
    expect(AGNHOST_IMAGE).toMatch(/^registry\.k8s\.io\/e2e-test-images\/agnhost:\d+\.\d+$/);
    expect(dep.spec.replicas).toBe(smb.topology.nodes.filter((n) => n.runsWorkloads).length);
    const c = dep.spec.template.spec.containers[0];
    expect(c.image).toBe(AGNHOST_IMAGE);
    expect(c.args).toEqual(['netexec', '--http-port=8080', '--udp-port=-1', '--http-override=/clientip']);
    expect(dep.spec.template.spec.topologySpreadConstraints[0]).toMatchObject({ maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'DoNotSchedule' });
    expect(mc.topology.nodes.filter((n) => n.runsWorkloads)).toHaveLength(1);
  });

  it('web (ETP Cluster) and web-local (ETP Local) on their pool addresses, class kept, the address where the roles read it', () => {
    const s = composeStrategy(smb.strategies[0]!);
    const withAnn = { ...s, svc: { ...s.svc, real: { ...s.svc.real, addressAnnotation: 'example.io/ips' } } };
    const svcs = parseAllDocuments(echoWorkloadFiles(smb.topology, withAnn).find((f) => f.path === SERVICES_PATH)!.content).map((d) => d.toJS());
    expect(svcs.map((x) => [x.metadata.name, x.spec.externalTrafficPolicy, x.metadata.annotations['example.io/ips'], x.spec.loadBalancerIP])).toEqual(
      smb.topology.services.map((x) => [x.name, x.externalTrafficPolicy, x.ip, undefined]),
    );
    const bare = { ...s, cp: { ...s.cp, real: undefined }, svc: { ...s.svc, real: undefined } };
    const plain = parseAllDocuments(echoWorkloadFiles(smb.topology, bare).find((f) => f.path === SERVICES_PATH)!.content).map((d) => d.toJS());
    expect(plain.map((x) => x.spec.loadBalancerIP)).toEqual(smb.topology.services.map((x) => x.ip));
    const classed = { ...smb.topology, services: smb.topology.services.map((x, i) => (i === 0 ? { ...x, loadBalancerClass: 'kube-vip.io/kube-vip-class' } : x)) };
    const cl = parseAllDocuments(echoWorkloadFiles(classed, s).find((f) => f.path === SERVICES_PATH)!.content).map((d) => d.toJS());
    expect(cl[0].spec.loadBalancerClass).toBe('kube-vip.io/kube-vip-class');
    expect(cl[1].spec.loadBalancerClass).toBeUndefined();
  });

  it('apply applies the workload after the mechanism’s manifests and waits for it; unapply deletes the Services first', () => {
    const ref = smb.strategies[0]!;
    const files = runtimeStrategyFiles(smb.topology, ref, DOCKER_PROFILE);
    const cmds = strategyApplyCommands(smb, ref, p, files, '/r', { profile: DOCKER_PROFILE }).map((c) => c.join(' '));
    const iWork = cmds.findIndex((c) => c.includes(WORKLOAD_PATH));
    expect(iWork).toBeGreaterThan(cmds.findIndex((c) => c.includes('metallb/')));
    expect(cmds.at(-1)).toMatch(/rollout status deployment\/tlab-echo/);
    const undo = strategyUnapplyCommands(smb, ref, p, files, '/r', { profile: DOCKER_PROFILE }).map((c) => c.join(' '));
    expect(undo[0]).toContain(SERVICES_PATH);
    expect(undo[1]).toContain(WORKLOAD_PATH);
  });

  it('the traffic client reads netexec’s /clientip answer as the client address it saw', () => {
    expect(servedBy({}, '10.32.100.10:43512')).toEqual({ clientIp: '10.32.100.10' });
    expect(servedBy({}, '[fd00::a]:80')).toEqual({ clientIp: 'fd00::a' });
    expect(servedBy({}, 'NOW: 2026-01-01 00:00:00')).toEqual({});
    expect(servedBy({}, '{"node":"w1","clientIp":"10.0.0.1"}')).toEqual({ node: 'w1', clientIp: '10.0.0.1' });
  });
});

describe('pinned installs', () => {
  it('talosctl, kubectl and helm are downloaded by version and checked against their published sha256', () => {
    expect(talosctlInstall('v1.13.9')).toMatch(/releases\/download\/v1\.13\.9\/talosctl-linux-(amd64|arm64).*sha256sum\.txt.*sha256sum --ignore-missing -c/);
    expect(kubectlInstall('1.36.3')).toMatch(/dl\.k8s\.io\/release\/v1\.36\.3\/.*kubectl\.sha256.*sha256sum -c/);
    expect(helmInstall()).toMatch(/helm-v\d+\.\d+\.\d+-linux-.*\.sha256sum && sha256sum -c/);
  });
});
