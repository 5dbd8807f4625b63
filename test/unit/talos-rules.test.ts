/**
 * The Talos rules oracle (src/providers/kinds/talos/rules.ts) against small fixtures: every rule
 * is read from siderolabs/talos at v1.11.6, v1.12.11 and v1.13.9 (cited in the module); the
 * fixtures here mirror the upstream ones where there are some
 * (pkg/machinery/config/configpatcher/testdata/patchdelete, patchdeletemissing).
 */
import { describe, expect, it } from 'vitest';
import {
  COVERED_VERSIONS,
  applyTalosPatch,
  checkPatchSequence,
  liveApplicable,
  rulesFor,
  v1alpha1Of,
  type TalosDoc,
} from '../../src/providers/kinds/talos/rules.js';

const VIP = '10.5.0.50';

/** A generated-like v1alpha1 control-plane config (trimmed). */
function base(): TalosDoc {
  return {
    version: 'v1alpha1',
    machine: {
      type: 'controlplane',
      token: 'abc.def',
      certSANs: [],
      kubelet: { image: 'ghcr.io/siderolabs/kubelet:v1.34.1', extraArgs: { 'rotate-server-certificates': 'true' } },
      network: {
        hostname: 'cp1',
        interfaces: [{ interface: 'eth0', addresses: ['10.5.0.2/24'], routes: [{ network: '0.0.0.0/0', gateway: '10.5.0.1' }] }],
      },
      install: { disk: '/dev/sda' },
      features: { rbac: true, stableHostname: true, kubePrism: { enabled: true, port: 7445 } },
      nodeLabels: { 'node.kubernetes.io/exclude-from-external-load-balancers': '' },
    },
    cluster: {
      controlPlane: { endpoint: 'https://10.5.0.2:6443' },
      network: { dnsDomain: 'cluster.local', podSubnets: ['10.244.0.0/16'], serviceSubnets: ['10.96.0.0/12'] },
      apiServer: {
        certSANs: ['10.5.0.2'],
        admissionControl: [{ name: 'PodSecurity', configuration: { apiVersion: 'pod-security.admission.config.k8s.io/v1alpha1', defaults: { enforce: 'baseline' } } }],
      },
    },
  };
}

type Any = Record<string, any>;
function ok(r: ReturnType<typeof applyTalosPatch>): TalosDoc[] {
  if (!r.ok) throw new Error(`expected the patch to apply, Talos refused: ${r.error}`);
  return r.result;
}
function refused(r: ReturnType<typeof applyTalosPatch>): string {
  if (r.ok) throw new Error(`expected Talos to refuse the patch, got ${JSON.stringify(r.result)}`);
  return r.error;
}
const v1 = (docs: TalosDoc[]) => v1alpha1Of(docs) as Any;

// The talos-vip strategy's patches, as src/providers/kinds/talos/files.ts renders them.
const VIP_ADD_111 = `machine:\n  network:\n    interfaces:\n      - interface: eth0\n        vip:\n          ip: ${VIP}\n`;
const VIP_REMOVE_111_BROKEN = `machine:\n  network:\n    interfaces:\n      - interface: eth0\n        vip:\n          $patch: delete\n`;
const VIP_ADD_112 = `apiVersion: v1alpha1\nkind: Layer2VIPConfig\nname: ${VIP}\nlink: eth0\n`;
const VIP_REMOVE_112 = `apiVersion: v1alpha1\nkind: Layer2VIPConfig\nname: ${VIP}\n$patch: delete\n`;

describe('version mapping', () => {
  it('maps any v1.X.Y of a covered minor to that minor, and names the covered tags otherwise', () => {
    expect(COVERED_VERSIONS).toEqual(['v1.11.6', 'v1.12.11', 'v1.13.9']);
    expect(rulesFor('v1.11.0').minor).toBe('1.11');
    expect(rulesFor('v1.12.3').tag).toBe('v1.12.11');
    expect(rulesFor('1.13.9').minor).toBe('1.13');
    expect(rulesFor('v1.13.0-beta.1').minor).toBe('1.13');
    expect(() => rulesFor('v1.10.7')).toThrow(/v1\.11\.6, v1\.12\.11, v1\.13\.9/);
    expect(() => rulesFor('v1.14.0')).toThrow(/no Talos rules/);
    expect(() => rulesFor('latest')).toThrow(/covered are/);
    expect(rulesFor('v1.13.2').defaultKubernetes).toBe('1.36.3');
  });
});

describe('strategic merge (configpatcher + merge.Merge)', () => {
  it('merges maps, overrides scalars, appends lists but replaces podSubnets/serviceSubnets', () => {
    const out = v1(ok(applyTalosPatch(base(), [
      'machine:',
      '  network:',
      '    hostname: cp1-renamed',
      '  certSANs: [10.5.0.50]',
      'cluster:',
      '  network:',
      '    podSubnets: [10.200.0.0/16]',
      '  apiServer:',
      '    certSANs: [10.5.0.50]',
    ].join('\n'), 'v1.11.6')));
    expect(out.machine.network.hostname).toBe('cp1-renamed');
    expect(out.machine.certSANs).toEqual(['10.5.0.50']);
    expect(out.cluster.apiServer.certSANs).toEqual(['10.5.0.2', '10.5.0.50']);
    expect(out.cluster.network.podSubnets).toEqual(['10.200.0.0/16']);
    expect(out.cluster.network.serviceSubnets).toEqual(['10.96.0.0/12']);
    expect(out.machine.kubelet.image).toBe('ghcr.io/siderolabs/kubelet:v1.34.1');
  });

  it('a zero value ("" / 0) does not override, a boolean false does', () => {
    const out = v1(ok(applyTalosPatch(base(), 'machine:\n  network:\n    hostname: ""\n  features:\n    rbac: false\n    kubePrism:\n      port: 0\n', 'v1.12.11')));
    expect(out.machine.network.hostname).toBe('cp1');
    expect(out.machine.features.rbac).toBe(false);
    expect(out.machine.features.kubePrism.port).toBe(7445);
  });

  it('merges network interfaces on `interface`: the VIP lands in the existing eth0 entry', () => {
    const out = v1(ok(applyTalosPatch(base(), VIP_ADD_111, 'v1.11.6')));
    expect(out.machine.network.interfaces).toHaveLength(1);
    expect(out.machine.network.interfaces[0]).toMatchObject({ interface: 'eth0', addresses: ['10.5.0.2/24'], vip: { ip: VIP } });
  });

  it('merges on an equal deviceSelector, but appends when `physical` (a *bool) is set on both', () => {
    const cfg = base() as Any;
    cfg.machine.network.interfaces = [{ deviceSelector: { hardwareAddr: '52:54:*' }, dhcp: true }, { deviceSelector: { physical: true }, dhcp: true }];
    const out = v1(ok(applyTalosPatch(cfg, [
      'machine:',
      '  network:',
      '    interfaces:',
      '      - deviceSelector: {hardwareAddr: "52:54:*"}',
      `        vip: {ip: ${VIP}}`,
      '      - deviceSelector: {physical: true}',
      '        mtu: 9000',
    ].join('\n'), 'v1.11.6')));
    const ifs = out.machine.network.interfaces;
    expect(ifs).toHaveLength(3);
    expect(ifs[0]).toMatchObject({ dhcp: true, vip: { ip: VIP } });
    expect(ifs[1].mtu).toBeUndefined();
    expect(ifs[2]).toEqual({ deviceSelector: { physical: true }, mtu: 9000 });
  });

  it('merges vlans on vlanId and admission plugins on name', () => {
    const cfg = base() as Any;
    cfg.machine.network.interfaces[0].vlans = [{ vlanId: 100, addresses: ['10.100.0.2/24'] }];
    const out = v1(ok(applyTalosPatch(cfg, [
      'machine:',
      '  network:',
      '    interfaces:',
      '      - interface: eth0',
      '        vlans:',
      `          - {vlanId: 100, vip: {ip: 10.100.0.50}}`,
      '          - {vlanId: 200, dhcp: true}',
      'cluster:',
      '  apiServer:',
      '    admissionControl:',
      '      - name: PodSecurity',
      '        configuration: {defaults: {enforce: privileged}}',
    ].join('\n'), 'v1.11.6')));
    expect(out.machine.network.interfaces[0].vlans).toEqual([
      { vlanId: 100, addresses: ['10.100.0.2/24'], vip: { ip: '10.100.0.50' } },
      { vlanId: 200, dhcp: true },
    ]);
    expect(out.cluster.apiServer.admissionControl).toHaveLength(1);
    expect(out.cluster.apiServer.admissionControl[0].configuration.defaults.enforce).toBe('privileged');
  });

  it('extraArgs: v1.13 Args replace a key as a whole (list values), older versions merge the string', () => {
    const p = 'machine:\n  kubelet:\n    extraArgs:\n      feature-gates: [A=true, B=true]\n';
    const cfg = base() as Any;
    cfg.machine.kubelet.extraArgs['feature-gates'] = ['A=false'];
    expect(v1(ok(applyTalosPatch(cfg, p, 'v1.13.9'))).machine.kubelet.extraArgs['feature-gates']).toEqual(['A=true', 'B=true']);
    // map[string]string up to 1.12: a list would not even decode; the oracle's generic merge appends
    expect(v1(ok(applyTalosPatch(cfg, p, 'v1.12.11'))).machine.kubelet.extraArgs['feature-gates']).toEqual(['A=false', 'A=true', 'B=true']);
  });

  it('refuses a type clash and the $patch directives Talos does not have (replace)', () => {
    expect(refused(applyTalosPatch(base(), 'machine:\n  network:\n    interfaces: {eth0: {}}\n', 'v1.12.11'))).toMatch(/cannot merge 'machine.network.interfaces'/);
    const e = refused(applyTalosPatch(base(), 'machine:\n  network:\n    interfaces:\n      - interface: eth0\n        $patch: replace\n        dhcp: true\n', 'v1.12.11'));
    expect(e).toMatch(/field \$patch not found/);
    expect(e).toMatch(/only "\$patch: delete"/);
  });

  it('appends an unknown typed document, refuses an unregistered kind (Layer2VIPConfig before 1.12)', () => {
    const docs = ok(applyTalosPatch(base(), VIP_ADD_112, 'v1.12.11'));
    expect(docs).toHaveLength(2);
    expect(docs[1]).toEqual({ apiVersion: 'v1alpha1', kind: 'Layer2VIPConfig', name: VIP, link: 'eth0' });
    expect(refused(applyTalosPatch(base(), VIP_ADD_112, 'v1.11.6'))).toBe('"Layer2VIPConfig" "v1alpha1": not registered');
    expect(refused(applyTalosPatch(base(), 'kind: Layer2VIPConfig\nname: 10.5.0.50\nlink: eth0\n', 'v1.12.11'))).toMatch(/missing apiVersion$/);
    expect(refused(applyTalosPatch(base(), 'kind: Layer2VIPConfig\nname: 10.5.0.50\nlink: eth0\n', 'v1.11.6'))).toBe('"Layer2VIPConfig" "": not registered');
  });

  it('merges a typed document matched by apiVersion/kind/name, refuses duplicates and conflicting VIP kinds', () => {
    const cfg = ok(applyTalosPatch(base(), VIP_ADD_112, 'v1.13.9'));
    const moved = ok(applyTalosPatch(cfg, `apiVersion: v1alpha1\nkind: Layer2VIPConfig\nname: ${VIP}\nlink: eth1\n`, 'v1.13.9'));
    expect(moved).toHaveLength(2);
    expect(moved[1]!.link).toBe('eth1');
    expect(refused(applyTalosPatch(cfg, `${VIP_ADD_112}---\n${VIP_ADD_112}`, 'v1.13.9'))).toMatch(/^duplicate document v1alpha1\/Layer2VIPConfig\/10\.5\.0\.50 is not allowed \(line 6\)$/);
    expect(refused(applyTalosPatch(cfg, `apiVersion: v1alpha1\nkind: HCloudVIPConfig\nname: ${VIP}\napiToken: x\n`, 'v1.13.9'))).toMatch(/^conflicting documents: Layer2VIPConfig\/10\.5\.0\.50 and HCloudVIPConfig\/10\.5\.0\.50$/);
  });

  it('refuses JSON6902 patches with a clear message (the toolkit does not write them)', () => {
    const e = refused(applyTalosPatch(base(), '- op: remove\n  path: /machine/network/interfaces/0/vip\n', 'v1.11.6'));
    expect(e).toMatch(/JSON6902/);
    expect(e).toMatch(/not supported for multi-document/);
    expect(refused(applyTalosPatch(base(), '[{"op": "add", "path": "/machine/network/hostname", "value": "x"}]', 'v1.12.11'))).toMatch(/JSON6902/);
  });

  it('a trailing `---` (null document) fails on 1.11 and is skipped from 1.12', () => {
    const p = 'machine:\n  network:\n    hostname: cp9\n---\n';
    expect(refused(applyTalosPatch(base(), p, 'v1.11.6'))).toBe('recovered: expected a mapping node');
    expect(v1(ok(applyTalosPatch(base(), p, 'v1.12.11'))).machine.network.hostname).toBe('cp9');
  });
});

describe('$patch: delete — where Talos accepts it', () => {
  it('deletes a map key (the exclude-from-external-load-balancers label, upstream strategic2.yaml)', () => {
    const p = 'machine:\n  nodeLabels:\n    node.kubernetes.io/exclude-from-external-load-balancers:\n      $patch: delete\n';
    const out = v1(ok(applyTalosPatch(base(), p, 'v1.11.6')));
    expect(out.machine.nodeLabels).toEqual({});
    // again, on a config that has no such label (a worker): "lookup failed"
    expect(refused(applyTalosPatch([out], p, 'v1.11.6'))).toBe(
      "patch delete: path 'machine.nodeLabels.node.kubernetes.io/exclude-from-external-load-balancers' in document '/v1alpha1': failed to delete path 'machine.nodeLabels.node.kubernetes.io/exclude-from-external-load-balancers': lookup failed",
    );
  });

  it('zeroes a struct field, present or not (machine.files / machine.pods removal patch)', () => {
    const out = v1(ok(applyTalosPatch(base(), 'machine:\n  network:\n    hostname:\n      $patch: delete\n  files:\n    $patch: delete\n  pods:\n    $patch: delete\n', 'v1.12.11')));
    expect(out.machine.network.hostname).toBeUndefined();
    expect(out.machine.network.interfaces).toHaveLength(1);
  });

  it('a path through a missing (nil pointer) struct is "lookup failed" from 1.12 (upstream patchdeletemissing), a panic on 1.11', () => {
    const cfg = { version: 'v1alpha1', machine: {} };
    const p = 'machine:\n  network:\n    hostname:\n      $patch: delete\n';
    expect(refused(applyTalosPatch(cfg, p, 'v1.12.11'))).toBe(
      "patch delete: path 'machine.network.hostname' in document '/v1alpha1': failed to delete path 'machine.network.hostname': lookup failed",
    );
    expect(refused(applyTalosPatch(cfg, p, 'v1.11.6'))).toMatch(/panics here instead: reflect: call of reflect\.Value\.Type on zero Value/);
  });

  it('deletes a list item matched by its first key, deletes before merging (upstream strategic1.yaml)', () => {
    const cfg = base() as Any;
    cfg.machine.network.interfaces.push({ interface: 'eth1', addresses: ['10.3.5.4/32'] });
    const out = v1(ok(applyTalosPatch(cfg, [
      'machine:',
      '  network:',
      '    interfaces:',
      '      - interface: eth0',
      '        $patch: delete',
      '      - interface: eth1',
      '        addresses: [10.3.5.5/32]',
      '      - interface: eth0',
      '        dummy: true',
    ].join('\n'), 'v1.11.6')));
    expect(out.machine.network.interfaces).toEqual([
      { interface: 'eth1', addresses: ['10.3.5.4/32', '10.3.5.5/32'] },
      { interface: 'eth0', dummy: true },
    ]);
  });

  it('cannot match a list item on a deviceSelector (a mapping compares as ""), nor reach a nested list item', () => {
    const cfg = base() as Any;
    cfg.machine.network.interfaces = [{ deviceSelector: { hardwareAddr: '52:54:*' }, dhcp: true, vlans: [{ vlanId: 100, dhcp: true }] }];
    expect(refused(applyTalosPatch(cfg, 'machine:\n  network:\n    interfaces:\n      - deviceSelector: {hardwareAddr: "52:54:*"}\n        $patch: delete\n', 'v1.13.9'))).toMatch(/failed to delete path 'machine\.network\.interfaces\.\[0\]': lookup failed$/);
    expect(refused(applyTalosPatch(cfg, 'machine:\n  network:\n    interfaces:\n      - deviceSelector: {hardwareAddr: "52:54:*"}\n        vlans:\n          - vlanId: 100\n            $patch: delete\n', 'v1.13.9'))).toMatch(/searching for complex paths in slices is not supported$/);
    expect(refused(applyTalosPatch(cfg, 'machine:\n  certSANs:\n    - $patch: delete\n', 'v1.13.9'))).toMatch(/no key:val found in sequence node for path machine\.certSANs\.\[0\]$/);
  });

  it('keys inside an Unstructured field can be deleted from 1.12 only', () => {
    const cfg = base() as Any;
    cfg.machine.kubelet.extraConfig = { serverTLSBootstrap: true, maxPods: 250 };
    const p = 'machine:\n  kubelet:\n    extraConfig:\n      maxPods:\n        $patch: delete\n';
    expect(refused(applyTalosPatch(cfg, p, 'v1.11.6'))).toMatch(/failed to delete path 'machine\.kubelet\.extraConfig\.maxPods': lookup failed$/);
    expect(v1(ok(applyTalosPatch(cfg, p, 'v1.12.11'))).machine.kubelet.extraConfig).toEqual({ serverTLSBootstrap: true });
  });

  it('deletes a whole typed document (multi-doc patch, 1.12+), never the v1alpha1 one', () => {
    const withVip = ok(applyTalosPatch(base(), VIP_ADD_112, 'v1.12.11'));
    const patch = `${VIP_REMOVE_112}---\napiVersion: v1alpha1\nkind: SideroLinkConfig\napiUrl: https://siderolink.example/join?jointoken=x\n---\nmachine:\n  network:\n    hostname: cp1b\n`;
    for (const v of ['v1.12.11', 'v1.13.9']) {
      const docs = ok(applyTalosPatch(withVip, patch, v));
      expect(docs.map((d) => d.kind ?? 'v1alpha1')).toEqual(['v1alpha1', 'SideroLinkConfig']);
      expect(v1(docs).machine.network.hostname).toBe('cp1b');
    }
    // deleting a document the config does not have
    expect(refused(applyTalosPatch(base(), VIP_REMOVE_112, 'v1.12.11'))).toMatch(/Layer2VIPConfig\/10\.5\.0\.50, which the config does not have/);
    // the v1alpha1 document itself
    expect(refused(applyTalosPatch(base(), 'version: v1alpha1\n$patch: delete\n', 'v1.12.11'))).toMatch(/missing apiVersion in document for which \$patch: delete is used$/);
    expect(refused(applyTalosPatch(base(), 'kind: Layer2VIPConfig\nname: x\n$patch: delete\n', 'v1.13.9'))).toMatch(/missing apiVersion in document/);
  });
});

describe('$patch: delete — the talos-vip removal on Talos ≤ 1.11', () => {
  const withVip = () => ok(applyTalosPatch(base(), VIP_ADD_111, 'v1.11.6'));

  it('REFUSES `interfaces[{interface: eth0, vip: {$patch: delete}}]` (a delete under a list item)', () => {
    expect(refused(applyTalosPatch(withVip(), VIP_REMOVE_111_BROKEN, 'v1.11.6'))).toBe("cannot delete an inner key in 'machine.network.interfaces.[0].vip'");
    // the same rule on later versions, with the line number v1.12 adds
    expect(refused(applyTalosPatch(withVip(), VIP_REMOVE_111_BROKEN, 'v1.12.11'))).toBe(
      "error processing patch delete statements at line 1: cannot delete an inner key in 'machine.network.interfaces.[0].vip'",
    );
    expect(checkPatchSequence(base(), [
      { name: 'native-vip', yaml: VIP_ADD_111, live: true },
      { name: 'native-vip-removal', yaml: VIP_REMOVE_111_BROKEN, live: true },
    ], 'v1.11.4')).toEqual(["native-vip-removal: Talos v1.11.6 refuses this patch: cannot delete an inner key in 'machine.network.interfaces.[0].vip'"]);
  });

  it('accepts deleting the whole eth0 item and re-adding it without the VIP, in one patch (live, no reboot)', () => {
    const cfg = withVip();
    const removal = [
      'machine:',
      '  network:',
      '    interfaces:',
      '      - interface: eth0', // re-added first: deletes are applied before the merge anyway
      '        addresses: [10.5.0.2/24]',
      '        routes: [{network: 0.0.0.0/0, gateway: 10.5.0.1}]',
      '      - interface: eth0',
      '        $patch: delete',
    ].join('\n');
    const out = ok(applyTalosPatch(cfg, removal, 'v1.11.6'));
    expect(v1(out).machine.network.interfaces).toEqual([{ interface: 'eth0', addresses: ['10.5.0.2/24'], routes: [{ network: '0.0.0.0/0', gateway: '10.5.0.1' }] }]);
    expect(liveApplicable(cfg, out, 'v1.11.6')).toEqual({ immediate: true });
    expect(checkPatchSequence(base(), [
      { name: 'native-vip', yaml: VIP_ADD_111, live: true },
      { name: 'native-vip-removal', yaml: removal, live: true },
    ], 'v1.11.6')).toEqual([]);
  });

  it('on 1.12+ the VIP is a Layer2VIPConfig document: added and removed live as a document', () => {
    for (const v of ['v1.12.0', 'v1.13.9']) {
      expect(checkPatchSequence(base(), [
        { name: 'native-vip', yaml: VIP_ADD_112, live: true },
        { name: 'native-vip-removal', yaml: VIP_REMOVE_112, live: true },
      ], v)).toEqual([]);
    }
    expect(checkPatchSequence(base(), [{ name: 'vip', yaml: 'apiVersion: v1alpha1\nkind: Layer2VIPConfig\nname: not-an-ip\nlink: eth0\n', live: true }], 'v1.12.11'))
      .toEqual(['vip: Talos v1.12.11 refuses the patched config: Layer2VIPConfig: name must be a valid IP address ("not-an-ip")']);
  });
});

describe('live application (CanApplyImmediate)', () => {
  const FILES = 'machine:\n  files:\n    - path: /var/lib/kube-vip/kubeconfig\n      permissions: 0o600\n      op: create\n      content: "apiVersion: v1"\n';

  it('a machine.files change is NOT immediate on any covered version (and neither is its removal)', () => {
    for (const v of COVERED_VERSIONS) {
      const withFiles = ok(applyTalosPatch(base(), FILES, v));
      expect(liveApplicable(base(), withFiles, v)).toEqual({ immediate: false, reboot: ['machine.files'] });
      const removed = ok(applyTalosPatch(withFiles, 'machine:\n  files:\n    $patch: delete\n', v));
      expect(liveApplicable(withFiles, removed, v)).toEqual({ immediate: false, reboot: ['machine.files'] });
    }
  });

  it('network, kubelet extraArgs, static pods, cluster.*, kubePrism and typed documents are immediate', () => {
    const live = [
      VIP_ADD_111,
      'machine:\n  kubelet:\n    extraArgs:\n      max-pods: "250"\n',
      'machine:\n  pods:\n    - apiVersion: v1\n      kind: Pod\n      metadata: {name: kube-vip, namespace: kube-system}\n      spec: {hostNetwork: true, containers: [{name: kube-vip, image: ghcr.io/kube-vip/kube-vip:v1.2.3}]}\n',
      'cluster:\n  controlPlane:\n    endpoint: https://10.5.0.50:6443\n  extraManifests: [https://example.invalid/m.yaml]\n',
      'machine:\n  features:\n    kubePrism:\n      port: 7446\n',
      'machine:\n  install:\n    disk: /dev/vda\n',
    ];
    for (const v of COVERED_VERSIONS) {
      for (const p of live) {
        const after = ok(applyTalosPatch(base(), p, v));
        expect(liveApplicable(base(), after, v), `${v}: ${p}`).toEqual({ immediate: true });
      }
    }
    const withVip = ok(applyTalosPatch(base(), VIP_ADD_112, 'v1.12.11'));
    expect(liveApplicable(base(), withVip, 'v1.12.11')).toEqual({ immediate: true });
  });

  it('lists each non-live field: features outside the allowed five, env, persist (debug is live)', () => {
    const after = ok(applyTalosPatch(base(), 'machine:\n  env:\n    HTTP_PROXY: http://proxy:3128\n  features:\n    rbac: false\n    hostDNS: {enabled: true}\n', 'v1.13.9'));
    expect(liveApplicable(base(), after, 'v1.13.9')).toEqual({ immediate: false, reboot: ['machine.env', 'machine.features.rbac'] });
    const persist = ok(applyTalosPatch(base(), 'persist: false\ndebug: true\n', 'v1.11.6'));
    expect(liveApplicable(base(), persist, 'v1.11.6')).toEqual({ immediate: false, reboot: ['persist'] });
    // features present on one side only: the whole struct is compared ([RT] copies the five only when both exist)
    const noFeatures = base() as Any;
    delete noFeatures.machine.features;
    const addPrism = ok(applyTalosPatch(noFeatures, 'machine:\n  features:\n    kubePrism: {enabled: true, port: 7445}\n', 'v1.11.6'));
    expect(liveApplicable(noFeatures, addPrism, 'v1.11.6')).toEqual({ immediate: false, reboot: ['machine.features'] });
  });

  it('checkPatchSequence flags a live static-pod + kubeconfig-file patch and its removal', () => {
    const pods = 'machine:\n  pods:\n    - apiVersion: v1\n      kind: Pod\n      metadata: {name: kube-vip}\n';
    const problems = checkPatchSequence(base(), [
      { name: 'kube-vip static pod', yaml: pods, live: true },
      { name: 'kube-vip kubeconfig', yaml: FILES, live: true },
      { name: 'unapply kube-vip', yaml: 'machine:\n  pods:\n    $patch: delete\n  files:\n    $patch: delete\n', live: true },
    ], 'v1.12.11');
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/^kube-vip kubeconfig: applied live, but Talos v1\.12\.11 cannot apply a change of machine\.files without a reboot/);
    expect(problems[1]).toMatch(/^unapply kube-vip: .*machine\.files/);
    // the same file patch at config generation time (not live) is fine
    expect(checkPatchSequence(base(), [{ name: 'gen', yaml: FILES, live: false }], 'v1.12.11')).toEqual([]);
  });
});
