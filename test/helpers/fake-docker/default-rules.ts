/**
 * Canned answers that let the docker provider get through `up` against the fake engine and the
 * CLI stubs: the stub rules for talosctl/kubectl/helm (the argument shapes of the docker
 * provider, src/providers/runtimes/docker/talos.ts: talosGenCommands, bootstrapCommands,
 * strategyApplyCommands, its kubectl helper and talosAddressHolders), plus the engine-side handlers for the execs it runs in the
 * netbox containers and for its one-shot nft helper containers.
 *
 * The generated files are shaped like what the real tools write (Talos v1alpha1 machine configs as
 * `talosctl gen config --with-docs=false --with-examples=false` writes them, secrets replaced by
 * fixed fake values — the same shape as the generated-like bases of
 * test/contract/talos-schema.test.ts); config patches are NOT applied (`machineconfig patch`
 * copies its input).
 */
import { stringify } from 'yaml';
import type { ExecHandler, StartHandler } from './engine.js';

export interface StubFileWrite {
  /** the file is the argument after this token (`--output`, or a word like `kubeconfig`); a list: first found */
  argAfter: string | string[];
  /** when set, that argument is a directory and the file is `<dir>/<name>` */
  name?: string;
  /** content ({{after:TOKEN[:N]}} / {{env:NAME}} placeholders) */
  content?: string;
  /** copy the file named by the argument after this token instead */
  copyFromArgAfter?: string | string[];
  /** write only when that argument is absent or its comma-separated list holds `item` */
  onlyIfListed?: { argAfter: string | string[]; item: string };
  mode?: number;
}

export interface StubRule {
  cmd?: string | string[];
  /** regular expression over the arguments joined by one space */
  match?: string;
  flags?: string;
  stdout?: string;
  stderr?: string;
  /** printed once per node of $TLAB_STUB_NODES (`{name}`, `{i}` replaced) */
  stdoutPerNode?: string;
  exitCode?: number;
  delayMs?: number;
  writeFiles?: StubFileWrite | StubFileWrite[];
}

/** One line of $TLAB_STUB_LOG. */
export interface StubCall {
  t: string;
  cmd: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  /** index of the rule that answered, null for the default */
  rule: number | null;
  exitCode: number;
}

/**
 * A real self-signed P-256 CA certificate (O=kubernetes, valid until 2126; its key was thrown
 * away), so code that parses the kubeconfig's CA (the provider's writeCa, `new X509Certificate`)
 * gets a certificate, not a placeholder.
 */
export const FAKE_CA_PEM = [
  '-----BEGIN CERTIFICATE-----',
  'MIIBgDCCASegAwIBAgIUZlrWD3q25HTMBil7C7wvE/XPet8wCgYIKoZIzj0EAwIw',
  'FTETMBEGA1UECgwKa3ViZXJuZXRlczAgFw0yNjExMzAwOTMxMzhaGA8yMTI2MTEw',
  'NjA5MzEzOFowFTETMBEGA1UECgwKa3ViZXJuZXRlczBZMBMGByqGSM49AgEGCCqG',
  'SM49AwEHA0IABBlG131WD8bEparx/TGlNfBvZlrzTJBZqBCJWcTSNyGarMkwoKTp',
  'rsj9NJBdWEvVtiGzj84OQcYDiYmD1vixcdqjUzBRMB0GA1UdDgQWBBS+aQiUNHdU',
  'a6cKmElbol8mIsRNizAfBgNVHSMEGDAWgBS+aQiUNHdUa6cKmElbol8mIsRNizAP',
  'BgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0cAMEQCIHRCNpFnl8pZfchXPfT1',
  'wHlw7Q+cIDi0SBDyi73Dj1vqAiAlvHrOR8o/uUdJ2UIrHzjKvRgBUiHCfUFTOlmk',
  'mDcOlQ==',
  '-----END CERTIFICATE-----',
  '',
].join('\n');

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const FAKE_KEY_PEM = '-----BEGIN EC PRIVATE KEY-----\nZmFrZSBrZXkgZm9yIHRlc3Rz\n-----END EC PRIVATE KEY-----\n';

export interface DefaultRulesOptions {
  /** the Talos version the configs are shaped for (≤ 1.11: legacy features and machine.network) */
  talosVersion?: string;
  kubernetesVersion?: string;
  apiPort?: number;
  caPem?: string;
}

/** A Talos v1alpha1 machine config as `talosctl gen config` writes it; cluster name and endpoint from its arguments. */
export function talosMachineConfigYaml(role: 'controlplane' | 'worker', o: DefaultRulesOptions = {}): string {
  const version = o.talosVersion ?? 'v1.11.6';
  const k8s = (o.kubernetesVersion ?? '1.34.1').replace(/^v/, '');
  const crt = b64(o.caPem ?? FAKE_CA_PEM);
  const key = b64(FAKE_KEY_PEM);
  const cp = role === 'controlplane';
  const legacy = /^v?1\.(\d|1[01])\./.test(version);
  const machine: Record<string, unknown> = {
    type: role,
    token: 'fakeab.0123456789abcdef',
    ca: { crt, key: cp ? key : '' },
    certSANs: [],
    kubelet: { image: `ghcr.io/siderolabs/kubelet:v${k8s}`, defaultRuntimeSeccompProfileEnabled: true, disableManifestsDirectory: true },
    ...(legacy ? { network: {} } : {}),
    install: { disk: '/dev/sda', image: `ghcr.io/siderolabs/installer:${version}`, wipe: false },
    features: {
      ...(legacy ? { rbac: true, stableHostname: true, apidCheckExtKeyUsage: true } : {}),
      diskQuotaSupport: true,
      kubePrism: { enabled: true, port: 7445 },
      hostDNS: { enabled: true, forwardKubeDNSToHost: true },
    },
    ...(cp ? { nodeLabels: { 'node.kubernetes.io/exclude-from-external-load-balancers': '' } } : {}),
  };
  const cluster: Record<string, unknown> = {
    id: b64('fake-cluster-id-0123456789abcdef'),
    secret: b64('fake-cluster-secret-0123456789ab'),
    controlPlane: { endpoint: '{{after:config:2}}' },
    clusterName: '{{after:config}}',
    network: { dnsDomain: 'cluster.local', podSubnets: ['10.244.0.0/16'], serviceSubnets: ['10.96.0.0/12'] },
    token: 'fakecd.0123456789abcdef',
    ca: { crt, key: cp ? key : '' },
    discovery: { enabled: true, registries: { kubernetes: { disabled: true }, service: {} } },
  };
  if (cp) {
    Object.assign(cluster, {
      secretboxEncryptionSecret: b64('fake-secretbox-0123456789abcdef!'),
      aggregatorCA: { crt, key },
      serviceAccount: { key },
      apiServer: { image: `registry.k8s.io/kube-apiserver:v${k8s}`, certSANs: [], ...(legacy ? { disablePodSecurityPolicy: true } : {}) },
      controllerManager: { image: `registry.k8s.io/kube-controller-manager:v${k8s}` },
      proxy: { image: `registry.k8s.io/kube-proxy:v${k8s}` },
      scheduler: { image: `registry.k8s.io/kube-scheduler:v${k8s}` },
      etcd: { ca: { crt, key } },
      extraManifests: [],
      inlineManifests: [],
    });
  }
  return stringify({ version: 'v1alpha1', debug: false, machine, cluster });
}

/** `talosctl gen secrets` output (the secrets bundle: cluster id/secret, tokens, the CAs). */
export function talosSecretsYaml(o: DefaultRulesOptions = {}): string {
  const crt = b64(o.caPem ?? FAKE_CA_PEM);
  const key = b64(FAKE_KEY_PEM);
  return stringify({
    cluster: { id: b64('fake-cluster-id-0123456789abcdef'), secret: b64('fake-cluster-secret-0123456789ab') },
    secrets: { bootstraptoken: 'fakecd.0123456789abcdef', secretboxencryptionsecret: b64('fake-secretbox-0123456789abcdef!') },
    trustdinfo: { token: 'fakeab.0123456789abcdef' },
    certs: { etcd: { crt, key }, k8s: { crt, key }, k8saggregator: { crt, key }, k8sserviceaccount: { key }, os: { crt, key } },
  });
}

export function talosconfigYaml(o: DefaultRulesOptions = {}): string {
  const crt = b64(o.caPem ?? FAKE_CA_PEM);
  return stringify({ context: '{{after:config}}', contexts: { '{{after:config}}': { endpoints: ['127.0.0.1'], ca: crt, crt, key: b64(FAKE_KEY_PEM) } } });
}

/** The admin kubeconfig `talosctl kubeconfig <path> --nodes <ip>` writes (server = that node). */
export function kubeconfigYaml(o: DefaultRulesOptions = {}): string {
  const ca = b64(o.caPem ?? FAKE_CA_PEM);
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'talos-fake', cluster: { server: `https://{{after:--nodes}}:${o.apiPort ?? 6443}`, 'certificate-authority-data': ca } }],
    users: [{ name: 'admin@talos-fake', user: { 'client-certificate-data': ca, 'client-key-data': b64(FAKE_KEY_PEM) } }],
    contexts: [{ name: 'admin@talos-fake', context: { cluster: 'talos-fake', namespace: 'default', user: 'admin@talos-fake' } }],
    'current-context': 'admin@talos-fake',
  });
}

const word = (w: string) => `(^| )${w}( |$)`;

/** What the provider needs from talosctl, kubectl and helm to succeed (first match wins; default: exit 0, no output). */
export function defaultStubRules(o: DefaultRulesOptions = {}): StubRule[] {
  const tv = o.talosVersion ?? 'v1.11.6';
  const kv = (o.kubernetesVersion ?? '1.34.1').replace(/^v/, '');
  const out = ['--output', '-o'];
  return [
    { cmd: 'talosctl', match: word('version'), stdout: `Client:\n\tTag:         ${tv}\n` },
    { cmd: 'talosctl', match: word('gen secrets'), writeFiles: { argAfter: ['--output-file', '-o'], content: talosSecretsYaml(o), mode: 0o600 } },
    {
      cmd: 'talosctl',
      match: word('gen config'),
      stdout: 'generating PKI and tokens\n',
      writeFiles: [
        { argAfter: out, name: 'controlplane.yaml', content: talosMachineConfigYaml('controlplane', o), onlyIfListed: { argAfter: '--output-types', item: 'controlplane' }, mode: 0o600 },
        { argAfter: out, name: 'worker.yaml', content: talosMachineConfigYaml('worker', o), onlyIfListed: { argAfter: '--output-types', item: 'worker' }, mode: 0o600 },
        { argAfter: out, name: 'talosconfig', content: talosconfigYaml(o), onlyIfListed: { argAfter: '--output-types', item: 'talosconfig' }, mode: 0o600 },
      ],
    },
    { cmd: 'talosctl', match: word('machineconfig patch'), writeFiles: { argAfter: out, copyFromArgAfter: 'patch', mode: 0o600 } },
    { cmd: 'talosctl', match: word('kubeconfig'), writeFiles: { argAfter: 'kubeconfig', content: kubeconfigYaml(o), mode: 0o600 } },
    { cmd: 'talosctl', match: word('get addresses'), stdout: '' },
    { cmd: 'kubectl', match: word('version'), stdout: `Client Version: v${kv}\nKustomize Version: v5.7.1\n` },
    { cmd: 'kubectl', match: word('get nodes -o name'), stdoutPerNode: 'node/{name}\n' },
    { cmd: 'kubectl', match: word('get servicel2statuses.metallb.io'), stdout: '{"apiVersion":"v1","items":[],"kind":"List","metadata":{"resourceVersion":""}}\n' },
    { cmd: 'kubectl', match: word('wait'), stdout: '' },
    { cmd: 'kubectl', match: word('apply'), stdout: '' },
    { cmd: 'helm', match: word('version'), stdout: 'v3.19.0+g3d8990f\n' },
    { cmd: 'helm', stdout: '' },
  ];
}

/**
 * The execs the provider runs in its netbox containers, answered as a healthy lab would:
 * `curl -w %{http_code}` → 200, `haproxy -v`, `vtysh -c 'show version'`, `vtysh … json` → `{}`;
 * anything else exits 0 with no output.
 */
export const labExecHandler: ExecHandler = (_c, cmd) => {
  const joined = cmd.join(' ');
  if (cmd[0] === 'curl' && cmd.includes('%{http_code}')) return { stdout: '200', exitCode: 0 };
  if (cmd[0] === 'haproxy' && cmd.includes('-v')) return { stdout: 'HAProxy version 2.6.12-1+deb12u2 2025/04/18 - https://haproxy.org/\n' };
  if (cmd[0] === 'vtysh' && /show version/.test(joined)) return { stdout: 'FRRouting 8.4.4 (fake) on Linux(6.1.0).\n' };
  if (cmd[0] === 'vtysh' && / json$/.test(joined)) return { stdout: '{}\n' };
  return { exitCode: 0 };
};

/** The provider's nft helper containers (`tlab.kind=helper`) run a script and exit 0; everything else runs until stopped. */
export const labStartHandler: StartHandler = (c) => (c.labels['tlab.kind'] === 'helper' ? { exitCode: 0 } : undefined);
