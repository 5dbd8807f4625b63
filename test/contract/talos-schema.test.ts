/**
 * Every Talos machine-config patch the toolkit renders, applied to a generated-like base machine
 * config with Talos' own merge rules, validates against the real Talos JSON schema of its version
 * (../shared/schemas/talos, ajv's draft 2020-12 build): the whole-cluster patches
 * (src/providers/kinds/talos/files.ts), the mechanisms' patches (renderStrategy), the docker provider's per-node
 * patches and the qemu provider's variants — for every strategy of every lab in labs/ and
 * test/fixtures/labs/, once with the topology's Talos version (≤ 1.11 shape) and once forced to
 * 1.12 (document shape: Layer2VIPConfig, LinkConfig), checked against the 1.12 and 1.13 schemas.
 *
 * Merge rules (Talos docs "Configuration Patches", strategic merge): maps merge, lists append,
 * except `machine.network.interfaces` (merged on `interface:`/`deviceSelector:`) and
 * `cluster.network.podSubnets/serviceSubnets` (replaced); `$patch: delete` removes a key, a list
 * element or a whole document (siderolabs/talos pkg/machinery/config/configpatcher/testdata/
 * patchdelete); documents match on (apiVersion, kind, name) — configpatcher.StrategicMerge.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve, sep } from 'node:path';
import Ajv2020Mod from 'ajv/dist/2020.js';
import addFormatsMod from 'ajv-formats';
import { parseAllDocuments } from 'yaml';
import { loadLab, REPO_ROOT } from '../../src/model/index.js';
import type { Lab, StrategyRef, Topology } from '../../src/model/types.js';
import type { RenderedFile } from '../../src/strategies/types.js';
import { TALOS_PATCH, talosStrategyFiles } from '../../src/providers/kinds/talos/files.js';
const renderStrategyFiles = talosStrategyFiles;
import { patchScope, toYamlDocs } from '../../src/providers/kinds/talos/machine-config.js';
import { vipPatchDocs, vipRemovalDocs } from '../../src/strategies/talos-vip/talos-patch.js';
import { apiEndpointUrl as apiUrl, composeStrategy } from '../../src/strategies/compose.js';

const apiEndpointUrl = (t: Topology, r: StrategyRef) => apiUrl(t, composeStrategy(r).cp);
import { buildDockerPlan, dockerPaths } from '../../src/providers/runtimes/docker/talos.js';
import { staticPodKubeconfigPaths } from '../../src/providers/kinds/talos/cluster.js';
import { qemuPatches, writeQemuStrategyFiles } from '../../src/providers/runtimes/qemu/index.js';
import { VIP_PATCH } from '../../src/strategies/talos-vip/talos-patch.js';

// CJS modules under NodeNext: the class / function is on `.default` when run by plain Node
type Ajv2020Class = typeof Ajv2020Mod.default;
const Ajv2020 = ((Ajv2020Mod as unknown as { default?: Ajv2020Class }).default ?? Ajv2020Mod) as Ajv2020Class;
const addFormats = ((addFormatsMod as unknown as { default?: unknown }).default ?? addFormatsMod) as typeof addFormatsMod.default;

const SCHEMAS = resolve(REPO_ROOT, '..', 'shared', 'schemas', 'talos');
const schemaFile = (v: string) => join(SCHEMAS, `config-${v}.schema.json`);

type Doc = Record<string, unknown>;
const isObj = (x: unknown): x is Doc => !!x && typeof x === 'object' && !Array.isArray(x);
const DELETE = Symbol('delete');

// ---------------------------------------------------------------------------------------------
// Talos strategic merge, as documented

function docKey(d: Doc): string {
  return d.apiVersion === undefined && d.kind === undefined ? 'v1alpha1' : `${d.apiVersion}/${d.kind}/${(d.name as string) ?? ''}`;
}

function ifaceKey(x: unknown): string {
  const o = x as { interface?: string; deviceSelector?: unknown };
  return o.interface !== undefined ? `if:${o.interface}` : `sel:${JSON.stringify(o.deviceSelector)}`;
}

function mergeValue(left: unknown, right: unknown, path: string): unknown {
  if (isObj(right)) {
    if (right.$patch === 'delete') {
      if (left === undefined) throw new Error(`$patch: delete of missing ${path}`);
      return DELETE;
    }
    const out: Doc = isObj(left) ? { ...left } : {};
    for (const [k, v] of Object.entries(right)) {
      if (k === '$patch') continue;
      const m = mergeValue(out[k], v, path ? `${path}.${k}` : k);
      if (m === DELETE) delete out[k];
      else out[k] = m;
    }
    return out;
  }
  if (Array.isArray(right)) {
    if (path === 'cluster.network.podSubnets' || path === 'cluster.network.serviceSubnets') return [...right];
    const out = Array.isArray(left) ? [...left] : [];
    for (const item of right) {
      if (path === 'machine.network.interfaces') {
        const i = out.findIndex((x) => ifaceKey(x) === ifaceKey(item));
        if (isObj(item) && item.$patch === 'delete') {
          if (i < 0) throw new Error(`$patch: delete of missing ${path}[${ifaceKey(item)}]`);
          out.splice(i, 1);
        } else if (i >= 0) out[i] = mergeValue(out[i], item, `${path}[]`);
        else out.push(mergeValue(undefined, item, `${path}[]`));
      } else if (isObj(item) && item.$patch === 'delete') {
        const i = out.findIndex((x) => isObj(x) && x.name === item.name);
        if (i < 0) throw new Error(`$patch: delete of missing ${path}[name=${String(item.name)}]`);
        out.splice(i, 1);
      } else out.push(isObj(item) ? mergeValue(undefined, item, `${path}[]`) : item);
    }
    return out;
  }
  return right;
}

export function mergeTalos(base: Doc[], patch: Doc[]): Doc[] {
  const out = base.map((d) => structuredClone(d));
  for (const p of patch) {
    const i = out.findIndex((d) => docKey(d) === docKey(p));
    if (p.$patch === 'delete') {
      if (i < 0) throw new Error(`$patch: delete of missing document ${docKey(p)}`);
      out.splice(i, 1);
    } else if (i < 0) out.push(mergeValue(undefined, p, '') as Doc);
    else out[i] = mergeValue(out[i], p, '') as Doc;
  }
  return out;
}

function parsePatch(f: { path: string; content: string }): Doc[] {
  const docs = parseAllDocuments(f.content);
  for (const d of docs) if (d.errors.length) throw new Error(`${f.path}: YAML: ${d.errors[0]!.message}`);
  return docs.map((d) => d.toJS() as Doc).filter(isObj);
}

// ---------------------------------------------------------------------------------------------
// generated-like bases (the shape `talosctl gen config` writes, secrets replaced by placeholders)

const PEM = 'LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==';
function baseConfig(role: 'controlplane' | 'worker', version: string, k8s: string): Doc {
  const legacy = version.startsWith('v1.11');
  const features: Doc = {
    ...(legacy ? { rbac: true, stableHostname: true, apidCheckExtKeyUsage: true } : {}),
    diskQuotaSupport: true,
    kubePrism: { enabled: true, port: 7445 },
    hostDNS: { enabled: true, forwardKubeDNSToHost: true },
  };
  const machine: Doc = {
    type: role,
    token: 'abcdef.0123456789abcdef',
    ca: { crt: PEM, key: role === 'controlplane' ? PEM : '' },
    certSANs: [],
    kubelet: { image: `ghcr.io/siderolabs/kubelet:v${k8s}`, defaultRuntimeSeccompProfileEnabled: true, disableManifestsDirectory: true },
    ...(legacy ? { network: {} } : {}),
    install: { disk: '/dev/sda', image: `ghcr.io/siderolabs/installer:${version}`, wipe: false },
    features,
    ...(role === 'controlplane' ? { nodeLabels: { 'node.kubernetes.io/exclude-from-external-load-balancers': '' } } : {}),
  };
  const cluster: Doc = {
    id: 'aWQ=',
    secret: 'c2VjcmV0',
    controlPlane: { endpoint: 'https://192.0.2.1:6443' },
    clusterName: 'lab',
    network: { dnsDomain: 'cluster.local', podSubnets: ['10.244.0.0/16'], serviceSubnets: ['10.96.0.0/12'] },
    token: 'abcdef.0123456789abcdef',
    ca: { crt: PEM, key: role === 'controlplane' ? PEM : '' },
    discovery: { enabled: true, registries: { kubernetes: { disabled: true }, service: {} } },
  };
  if (role === 'controlplane') {
    Object.assign(cluster, {
      secretboxEncryptionSecret: 'c2VjcmV0Ym94',
      aggregatorCA: { crt: PEM, key: PEM },
      serviceAccount: { key: PEM },
      apiServer: { image: `registry.k8s.io/kube-apiserver:v${k8s}`, certSANs: ['192.0.2.1'], ...(legacy ? { disablePodSecurityPolicy: true } : {}) },
      controllerManager: { image: `registry.k8s.io/kube-controller-manager:v${k8s}` },
      proxy: { image: `registry.k8s.io/kube-proxy:v${k8s}` },
      scheduler: { image: `registry.k8s.io/kube-scheduler:v${k8s}` },
      etcd: { ca: { crt: PEM, key: PEM } },
      extraManifests: [],
      inlineManifests: [],
    });
  }
  return { version: 'v1alpha1', debug: false, machine, cluster };
}

// ---------------------------------------------------------------------------------------------
// validators

interface SchemaSet {
  root: (d: unknown) => boolean;
  /** the oneOf branch for a document: v1alpha1.Config, or the branch whose `kind` enum names it */
  branch: (d: Doc) => ((d: unknown) => boolean) & { errors?: { instancePath: string; message?: string; params: unknown }[] | null };
}
const schemaSets = new Map<string, SchemaSet>();
function schemaSet(schemaVersion: string): SchemaSet {
  let set = schemaSets.get(schemaVersion);
  if (!set) {
    const json = JSON.parse(readFileSync(schemaFile(schemaVersion), 'utf8')) as { $id: string; $defs: Record<string, { properties?: { kind?: { enum?: string[] } } }> };
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats(ajv);
    const root = ajv.compile(json);
    const byKind = new Map<string, string>();
    for (const [name, def] of Object.entries(json.$defs)) for (const k of def.properties?.kind?.enum ?? []) byKind.set(k, name);
    set = {
      root: (d) => root(d) as boolean,
      branch: (d) => {
        const def = d.kind === undefined ? 'v1alpha1.Config' : byKind.get(String(d.kind));
        const v = def ? ajv.getSchema(`${json.$id}#/$defs/${def}`) : undefined;
        if (!v) return Object.assign(() => false, { errors: [{ instancePath: '/kind', message: `no document kind '${String(d.kind)}' in this Talos version`, params: {} }] });
        return v as never;
      },
    };
    schemaSets.set(schemaVersion, set);
  }
  return set;
}
/** Each document must match exactly one kind of the schema's oneOf; on failure, the errors of its own kind. */
function validateDocs(docs: Doc[], schemaVersion: string): string[] {
  const set = schemaSet(schemaVersion);
  const errs: string[] = [];
  for (const d of docs) {
    if (set.root(d)) continue;
    const b = set.branch(d);
    const ok = b(d);
    const detail = ok ? 'matches several document kinds' : (b.errors ?? []).slice(0, 6).map((e) => `${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`).join('; ');
    errs.push(`${docKey(d)}: ${detail}`);
  }
  return errs;
}

const SCHEMA_FOR: Record<string, string[]> = { 'v1.11.6': ['v1.11.6'], 'v1.12.11': ['v1.12.11', 'v1.13.9'] };

// ---------------------------------------------------------------------------------------------
// what is rendered

function labFiles(): string[] {
  const dirs = [join(REPO_ROOT, 'labs'), join(REPO_ROOT, 'test', 'fixtures', 'labs')];
  return dirs.flatMap((d) => (existsSync(d) ? readdirSync(d).filter((f) => /\.ya?ml$/.test(f)).map((f) => join(d, f)) : []));
}

interface Case {
  lab: Lab;
  t: Topology;
  ref: StrategyRef;
  version: string;
}

function cases(): Case[] {
  const out: Case[] = [];
  for (const file of labFiles()) {
    const lab = loadLab(file);
    for (const version of Object.keys(SCHEMA_FOR)) {
      const t: Topology = { ...lab.topology, talos: { ...lab.topology.talos, version } };
      for (const ref of lab.strategies) out.push({ lab: { ...lab, topology: t }, t, ref, version });
    }
  }
  return out;
}

async function mechanismPatches(t: Topology, ref: StrategyRef): Promise<{ files: RenderedFile[]; pending?: string }> {
  try {
    const { composeStrategy, renderStrategy } = await import('../../src/strategies/compose.js');
    const a = await renderStrategy(t, await composeStrategy(ref));
    const mine = new Set<string>(Object.values(TALOS_PATCH));
    // what applying the strategy patches; the patches that take it away again (`talos/unapply/`)
    // only make sense against a config that has it, and are checked as a sequence
    return { files: a.files.filter((f) => f.kind === 'talos-patch' && !mine.has(f.path) && !f.path.includes('/unapply/')) };
  } catch (e) {
    if (/not available in this build/.test((e as Error).message)) return { files: [], pending: (e as Error).message };
    throw e;
  }
}

const hostRole = (t: Topology, h: string) => t.nodes.find((n) => n.name === h)?.role;
const scopeHosts = (t: Topology, scope: 'all' | 'controlplane' | 'worker') => (scope === 'all' ? undefined : t.nodes.filter((n) => n.role === scope).map((n) => n.name));

function check(c: Case, f: { path: string; content: string; hosts?: string[] }): string[] {
  const roles = new Set((f.hosts?.length ? f.hosts : c.t.nodes.map((n) => n.name)).map((h) => hostRole(c.t, h)).filter(Boolean) as ('controlplane' | 'worker')[]);
  const errs: string[] = [];
  for (const role of roles) {
    const merged = mergeTalos([baseConfig(role, c.version, c.t.talos.kubernetesVersion)], parsePatch(f));
    for (const s of SCHEMA_FOR[c.version]!) for (const e of validateDocs(merged, s)) errs.push(`${c.lab.name} ${c.ref.id} ${f.path} (${role}, Talos ${c.version}, schema ${s}): ${e}`);
  }
  return errs;
}

// ---------------------------------------------------------------------------------------------

describe('Talos machine-config patches against the real Talos schemas', () => {
  it('finds the schemas beside the repository (../shared/schemas/talos)', () => {
    for (const v of ['v1.11.6', 'v1.12.11', 'v1.13.9']) expect(existsSync(schemaFile(v)), `${schemaFile(v)} is missing: contract tests read ../shared/schemas beside the clone`).toBe(true);
  });

  it('the generated-like bases validate on their own (so failures below are the patches’)', () => {
    for (const [version, schemas] of Object.entries(SCHEMA_FOR)) {
      for (const role of ['controlplane', 'worker'] as const) for (const s of schemas) expect(validateDocs([baseConfig(role, version, '1.34.1')], s)).toEqual([]);
    }
  });

  it('the validator and the merge are strict: known-bad patches fail', () => {
    const cp = (v: string) => [baseConfig('controlplane', v, '1.34.1')];
    // a misspelt VIP field
    expect(validateDocs(mergeTalos(cp('v1.11.6'), [{ machine: { network: { interfaces: [{ interface: 'eth0', vip: { address: '10.0.0.10' } }] } } }]), 'v1.11.6')).not.toEqual([]);
    // the label "removed" without Talos' $patch semantics leaves an object where a string belongs
    expect(validateDocs([mergeValue(cp('v1.11.6')[0], { machine: { nodeLabels: { 'node.kubernetes.io/exclude-from-external-load-balancers': { deleted: true } } } }, '') as Doc], 'v1.11.6')).not.toEqual([]);
    // the ≤ 1.11 VIP shape is not valid Talos 1.12 config: picking the shape by version matters
    const legacyVip = vipPatchDocs('10.0.0.10', 'v1.11.6', 'eth0');
    expect(validateDocs(mergeTalos(cp('v1.12.11'), legacyVip), 'v1.12.11')).not.toEqual([]);
    // Layer2VIPConfig does not exist in the 1.11 schema
    expect(validateDocs(mergeTalos(cp('v1.11.6'), vipPatchDocs('10.0.0.10', 'v1.12.11', 'eth0')), 'v1.11.6')).not.toEqual([]);
    // deleting what is not there is an error in Talos (testdata/patchdeletemissing)
    expect(() => mergeTalos([baseConfig('worker', 'v1.11.6', '1.34.1')], [{ machine: { nodeLabels: { nope: { $patch: 'delete' } } } }])).toThrow(/missing/);
  });

  const all = cases();
  it(`covers every strategy of every lab (${all.length / 2} strategies × 2 Talos versions)`, () => {
    expect(all.length).toBeGreaterThanOrEqual(2 * 9);
  });

  it('every patch a strategy gives a real cluster (Talos kind and roles) validates once merged, with the intended effect', () => {
    const errs: string[] = [];
    for (const c of all) {
      // the patches that take the strategy away again are checked with the sequence below
      const files = renderStrategyFiles(c.t, c.ref).filter((f) => f.kind === 'talos-patch' && !f.path.includes('/unapply/'));
      expect(files.length).toBeGreaterThanOrEqual(4);
      for (const f of files) errs.push(...check(c, f));
      // the effect, on a control plane with every cluster-wide patch applied
      const cpDocs = files
        .filter((f) => f.hosts?.some((h) => hostRole(c.t, h) === 'controlplane'))
        .reduce((docs, f) => mergeTalos(docs, parsePatch(f)), [baseConfig('controlplane', c.version, c.t.talos.kubernetesVersion)]);
      const v1 = cpDocs.find((d) => docKey(d) === 'v1alpha1') as { machine: Doc & { nodeLabels?: Doc; features: Doc; network?: { interfaces?: Doc[] } }; cluster: Doc & { controlPlane: Doc; apiServer: Doc } };
      expect(v1.cluster.controlPlane.endpoint).toBe(apiEndpointUrl(c.t, c.ref));
      expect(v1.machine.features.kubePrism).toEqual({ enabled: true, port: c.t.kubePrismPort });
      expect(v1.cluster.apiServer.certSANs).toContain(c.t.vip);
      expect(v1.machine.features.hostDNS).toEqual({ enabled: true, forwardKubeDNSToHost: true });
      expect('node.kubernetes.io/exclude-from-external-load-balancers' in (v1.machine.nodeLabels ?? {})).toBe(!c.t.removeExcludeLbLabel);
      expect(v1.cluster.allowSchedulingOnControlPlanes === true).toBe(c.t.allowSchedulingOnControlPlanes);
      const l2 = cpDocs.filter((d) => d.kind === 'Layer2VIPConfig');
      const legacyVip = (v1.machine.network?.interfaces ?? []).filter((i) => isObj(i.vip));
      if (c.ref.cp === 'talos-vip') {
        if (c.version.startsWith('v1.11')) expect(legacyVip.map((i) => (i.vip as Doc).ip)).toEqual([c.t.vip]);
        else expect(l2.map((d) => [d.name, d.link])).toEqual([[c.t.vip, 'eth0']]);
      } else expect(l2.length + legacyVip.length).toBe(0);
    }
    expect(errs).toEqual([]);
  });

  it('the VIP removal patch takes the VIP away again (strategy change on a running cluster)', () => {
    for (const version of Object.keys(SCHEMA_FOR)) {
      const base = [baseConfig('controlplane', version, '1.34.1')];
      const withVip = mergeTalos(base, vipPatchDocs('10.0.0.10', version, 'eth0'));
      const without = mergeTalos(withVip, vipRemovalDocs('10.0.0.10', version, 'eth0'));
      expect(JSON.stringify(without)).not.toContain('10.0.0.10');
      for (const s of SCHEMA_FOR[version]!) expect(validateDocs(without, s)).toEqual([]);
      // ≤ 1.11: with what else the link carries (a docker node's routes), merged back in the same patch
      if (!version.startsWith('v1.11')) continue;
      const routes = { routes: [{ network: '10.9.0.0/24', gateway: '10.0.0.1' }] };
      const routed = mergeTalos(base, [{ machine: { network: { interfaces: [{ interface: 'eth0', ...routes }] } } }]);
      const kept = mergeTalos(mergeTalos(routed, vipPatchDocs('10.0.0.10', version, 'eth0')), vipRemovalDocs('10.0.0.10', version, 'eth0', routes));
      expect(JSON.stringify(kept)).not.toContain('10.0.0.10');
      expect(JSON.stringify(kept)).toContain('10.9.0.0/24');
      for (const s of SCHEMA_FOR[version]!) expect(validateDocs(kept, s)).toEqual([]);
    }
  });

  it('no strategy needs a file on the node’s disk (machine.files): Talos applies that only with a reboot', () => {
    for (const c of all) {
      const files = renderStrategyFiles(c.t, c.ref).filter((f) => f.kind === 'talos-patch');
      expect(staticPodKubeconfigPaths(files), `${c.lab.name} ${c.ref.id}`).toEqual([]);
      for (const f of files) for (const d of parsePatch(f)) expect((d as { machine?: { files?: unknown } }).machine?.files, `${c.ref.id} ${f.path}`).toBeUndefined();
    }
  });

  it('every mechanism patch (renderStrategy) validates once merged', async () => {
    const errs: string[] = [];
    const pending = new Set<string>();
    let checked = 0;
    for (const c of all) {
      const m = await mechanismPatches(c.t, c.ref);
      if (m.pending) pending.add(m.pending);
      for (const f of m.files) {
        errs.push(...check(c, f));
        checked++;
      }
    }
    if (pending.size) console.warn(`mechanism modules not in this build yet: ${[...pending].join('; ')}`);
    expect(errs).toEqual([]);
    // when the mechanisms exist, kube-vip's static pod patch is among what was checked
    if (!pending.size && all.some((c) => c.ref.cp.startsWith('kube-vip'))) expect(checked).toBeGreaterThan(0);
  });

  it('the docker provider’s per-node patches (routes through the lab router) validate once merged', () => {
    const errs: string[] = [];
    for (const c of all) {
      const plan = buildDockerPlan(c.lab, { prefix: 'tlab-x-0000', paths: dockerPaths('/tmp/x', '/tmp/x') });
      for (const [group, content] of Object.entries(plan.talos.nodePatches)) {
        const role = group.startsWith('controlplane-') ? 'controlplane' : 'worker';
        const f = { path: `docker/talos/nodes/${group}.patch.yaml`, content, hosts: c.t.nodes.filter((n) => n.role === role).map((n) => n.name) };
        if (content) errs.push(...check(c, f));
      }
      for (const x of plan.talos.patches) errs.push(...check(c, { path: x.file, content: x.content, hosts: scopeHosts(c.t, x.scope) }));
    }
    expect(errs).toEqual([]);
  });

  it('the qemu provider’s patches (VIP on talosctl’s virtio NIC / net0) validate once merged', () => {
    const errs: string[] = [];
    for (const c of all) {
      for (const x of qemuPatches(c.t, c.ref)) errs.push(...check(c, { path: `qemu/${x.file}`, content: x.content, hosts: scopeHosts(c.t, x.scope) }));
    }
    expect(errs).toEqual([]);
    // and merges into talosctl's own qemu interface entry instead of adding a second one (≤ 1.11)
    const qemuBase = mergeTalos([baseConfig('controlplane', 'v1.11.6', '1.34.1')], [{ machine: { network: { interfaces: [{ deviceSelector: { driver: 'virtio_net' }, dhcp: true }] } } }]);
    const lab = loadLab('smb');
    const dir = mkdtempSync(join(tmpdir(), 'tlx-qemu-'));
    const tv = lab.strategies.find((s) => s.cp === 'talos-vip')!;
    const vip = writeQemuStrategyFiles(lab.topology, dir, talosStrategyFiles(lab.topology, tv)).find((x) => x.path === VIP_PATCH)!;
    rmSync(dir, { recursive: true, force: true });
    const merged = mergeTalos(qemuBase, parsePatch({ path: vip.path, content: vip.content }));
    const ifs = (merged[0] as { machine: { network: { interfaces: Doc[] } } }).machine.network.interfaces;
    expect(ifs).toHaveLength(1);
    expect(ifs[0]).toMatchObject({ dhcp: true, vip: { ip: lab.topology.vip } });
  });

  it('`lab render --provider docker|qemu --render DIR`: every Talos patch file in DIR validates merged into a control plane and a worker', async () => {
    const { engineRun } = await import('../../src/orchestrator/engine.js');
    const walk = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)]));
    const errs: string[] = [];
    let n = 0;
    for (const name of ['minecraft', 'smb', 'enterprise']) {
      const lab = loadLab(name);
      for (const provider of ['docker', 'qemu']) {
        const dir = mkdtempSync(join(tmpdir(), 'tlx-render-'));
        try {
          await engineRun(lab, { provider, out: dir, dryRun: true, renderDir: dir, progress: { step() {}, log() {} } });
          const patches = walk(dir).filter((f) => /\.ya?ml$/.test(f) && relative(dir, f).split(sep).includes('talos'));
          expect(patches.length).toBeGreaterThan(3);
          // which config each file belongs to, from what the renderers and the plans say
          const scopeOf = new Map<string, 'all' | 'controlplane' | 'worker'>();
          for (const ref of lab.strategies) {
            for (const f of talosStrategyFiles(lab.topology, ref)) {
              scopeOf.set(join(ref.id, f.path), patchScope(lab.topology, f));
              scopeOf.set(join(provider, 'strategies', ref.id, f.path), patchScope(lab.topology, f));
            }
          }
          const planJson = JSON.parse(readFileSync(join(dir, provider, 'plan.json'), 'utf8')) as { talos?: { patches: { file: string; scope: 'all' }[] }; patches?: { file: string; scope: 'all' }[] };
          for (const x of planJson.talos?.patches ?? []) scopeOf.set(join('docker', 'talos', 'patches', x.file), x.scope);
          for (const x of planJson.patches ?? []) scopeOf.set(join('qemu', x.file), x.scope);
          for (const f of patches) {
            const rel = relative(dir, f);
            // <provider>/live/: the runtime's completed live patches (part of one talosctl call, the
            // runtime's own link entries merged back): checked as call sequences with Talos' own
            // rules in test/contract/talos-live-sequence.test.ts
            if (rel.split(sep)[1] === 'live') continue;
            n++;
            const group = /nodes[/\\](controlplane|worker)-/.exec(rel)?.[1] as 'controlplane' | 'worker' | undefined;
            const scope = group ?? scopeOf.get(rel);
            expect(scope, `${provider} ${rel}: no renderer claims this file`).toBeDefined();
            const roles = scope === 'all' ? (['controlplane', 'worker'] as const) : [scope!];
            for (const role of roles) {
              // a patch that takes a strategy away is applied to a config that has it
              const base = [baseConfig(role, lab.topology.talos.version, lab.topology.talos.kubernetesVersion)];
              const undoes = rel.includes(`${sep}unapply${sep}`) ? readFileSync(f.replace(`${sep}unapply${sep}`, sep), 'utf8') : null;
              const before = undoes ? mergeTalos(base, parsePatch({ path: f, content: undoes })) : base;
              const merged = mergeTalos(before, parsePatch({ path: f, content: readFileSync(f, 'utf8') }));
              for (const s of SCHEMA_FOR[lab.topology.talos.version]!) for (const e of validateDocs(merged, s)) errs.push(`${provider} ${rel} (${role}): ${e}`);
            }
          }
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      }
    }
    expect(n).toBeGreaterThan(20);
    expect(errs).toEqual([]);
  });

  it('finds the kubeconfig a static pod would mount (what the Talos kind refuses to deliver live)', () => {
    const pod = toYamlDocs([{ machine: { pods: [{ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x' }, spec: { volumes: [{ name: 'k', hostPath: { path: '/var/local/x/kubeconfig', type: 'File' } }] } }] } }]);
    expect(staticPodKubeconfigPaths([{ path: 'p', kind: 'talos-patch', content: pod }])).toEqual(['/var/local/x/kubeconfig']);
  });
});
