/**
 * A Talos rules oracle: what Talos itself does with a machine-config patch, per Talos minor,
 * written from Talos's own source (siderolabs/talos, read at the tags in TALOS_RULE_SETS). Pure:
 * no I/O, YAML text and plain objects in, results out.
 *
 *  - applyTalosPatch: `talosctl patch machineconfig` / `talosctl gen config --config-patch`
 *    semantics — configpatcher.LoadPatch + StrategicMerge (strategic merge patches, multi-document,
 *    `$patch: delete` where Talos accepts it, refused with Talos's own error text where it does not).
 *  - liveApplicable: the machined ApplyConfiguration decision for `--mode auto` / `no-reboot`
 *    (runtime CanApplyImmediate): which changed fields force a reboot.
 *  - checkPatchSequence: both, over the sequence of patches a strategy change applies.
 *
 * Upstream files (paths inside siderolabs/talos; the tag is given where each rule is used):
 *   [LOAD]   pkg/machinery/config/configpatcher/load.go            (LoadPatch: strategic first, then JSON6902)
 *   [SMP]    pkg/machinery/config/configpatcher/strategic.go       (StrategicMerge: documents by apiVersion/kind/name)
 *   [J6902]  pkg/machinery/config/configpatcher/json6902.go
 *   [DEC]    pkg/machinery/config/configloader/internal/decoder/decoder.go   (parse/decode of patch documents)
 *   [DEL]    pkg/machinery/config/configloader/internal/decoder/delete.go    (where `$patch: delete` is accepted)
 *   [SEL]    pkg/machinery/config/configloader/internal/decoder/selector.go  (how a delete is applied)
 *   [MERGE]  pkg/machinery/config/merge/merge.go                    (the reflective merge)
 *   [TYPES]  pkg/machinery/config/types/v1alpha1/v1alpha1_types.go  (merge tags, custom Merge methods, map fields)
 *   [CNT]    pkg/machinery/config/container/container.go            (document order, duplicates, conflicts)
 *   [REG]    pkg/machinery/config/internal/registry/registry.go     (unknown kinds)
 *   [RT]     internal/app/machined/pkg/runtime/v1alpha1/v1alpha1_runtime.go  (CanApplyImmediate)
 *   [SRV]    internal/app/machined/internal/server/v1alpha1/v1alpha1_server.go (ApplyConfiguration modes)
 *   [L2VIP]  pkg/machinery/config/types/network/layer2_vip.go       (Layer2VIPConfig, from v1.12)
 *
 * What the oracle cannot see: Talos decodes into Go structs, this module works on plain objects.
 * Type knowledge it needs is spelled out below (which fields are Go maps, which are
 * `Unstructured`, which lists have their own merge); unknown fields and type errors that only the
 * Go decoder (or the JSON schema) would catch are NOT checked here — the schema contract tests
 * cover those.
 */
import { isIP } from 'node:net';
import { LineCounter, parseAllDocuments, isMap, isScalar, isSeq } from 'yaml';
import type { Document, Pair, Scalar, YAMLMap, YAMLSeq } from 'yaml';

// ---------------------------------------------------------------------------------------------
// versions

export type TalosMinor = '1.11' | '1.12' | '1.13';
export type TalosDoc = Record<string, unknown>;
/** A machine config: the v1alpha1 document alone, or all documents (multi-doc, Talos ≥ 1.5). */
export type TalosConfig = TalosDoc | TalosDoc[];

export interface TalosRuleSet {
  minor: TalosMinor;
  /** The upstream tag these rules were read at (the newest patch release of the minor in the mirror). */
  tag: string;
  /** pkg/machinery/constants/constants.go DefaultKubernetesVersion at `tag`. */
  defaultKubernetes: string;
  /** Document kinds the config registry knows ([REG] + every `registry.Register` in pkg/machinery/config/types at `tag`). */
  kinds: ReadonlySet<string>;
  /** [DEC] ≥ v1.12: errors carry "at line N" / "(line N)"; v1.11.6 has no line numbers. */
  lineNumbers: boolean;
  /** [DEC] ≥ v1.12: a null YAML document (e.g. a trailing `---`) is skipped; v1.11.6 fails on it. */
  skipsNullDocuments: boolean;
  /** [DEC] ≥ v1.12: a typed document without apiVersion fails with "missing apiVersion". */
  missingApiVersionError: boolean;
  /** [SEL] ≥ v1.12: a nil pointer on a delete path is "lookup failed"; v1.11.6 panics in reflect. */
  nilPointerLookupFailed: boolean;
  /** [SEL] ≥ v1.12: deletes descend into `yaml:",inline"` structs (Unstructured), so keys inside them can be deleted. */
  deleteIntoInline: boolean;
  /** [TYPES] v1.13: `extraArgs` is the `Args` type, merged key by key with maps.Copy (a value may be a list). */
  argsType: boolean;
  /** [RT] CanApplyImmediate: the fields copied from the current config before the DeepEqual. */
  immediate: { readonly top: readonly string[]; readonly machine: readonly string[]; readonly features: readonly string[] };
}

// Registered kinds: every `registry.Register(...)` under pkg/machinery/config/types, resolved to
// its Kind constant, at each tag ("v1alpha1" is the legacy document).
const KINDS_1_11 = [
  'v1alpha1', 'ExistingVolumeConfig', 'RawVolumeConfig', 'SwapVolumeConfig', 'UserVolumeConfig', 'VolumeConfig', 'ZswapConfig',
  'PCIDriverRebindConfig', 'NetworkDefaultActionConfig', 'EthernetConfig', 'KubeSpanEndpointsConfig', 'NetworkRuleConfig',
  'EventSinkConfig', 'ExtensionServiceConfig', 'KmsgLogConfig', 'WatchdogTimerConfig', 'TrustedRootsConfig', 'SideroLinkConfig',
] as const;
const KINDS_1_12 = [
  ...KINDS_1_11, 'RegistryAuthConfig', 'RegistryMirrorConfig', 'RegistryTLSConfig', 'BondConfig', 'BridgeConfig', 'DHCPv4Config',
  'DHCPv6Config', 'DummyLinkConfig', 'HCloudVIPConfig', 'HostnameConfig', 'Layer2VIPConfig', 'LinkConfig', 'LinkAliasConfig',
  'ResolverConfig', 'StaticHostConfig', 'TimeSyncConfig', 'VLANConfig', 'WireguardConfig', 'OOMConfig',
] as const;
const KINDS_1_13 = [
  ...KINDS_1_12, 'ExternalVolumeConfig', 'BlackholeRouteConfig', 'KubeSpanConfig', 'RoutingRuleConfig', 'TCPProbeConfig',
  'VRFConfig', 'EnvironmentConfig', 'ImageVerificationConfig',
] as const;

// [RT] CanApplyImmediate at v1.11.6, v1.12.11 and v1.13.9 (identical lists; only lint comments
// changed): the new config is compared with reflect.DeepEqual after copying these from the current one.
const IMMEDIATE = {
  top: ['debug', 'cluster'],
  machine: [
    'ca', 'acceptedCAs', 'time', 'certSANs', 'install', 'network', 'sysfs', 'sysctls', 'logging', 'controlPlane',
    'kubelet', 'kernel', 'registries', 'pods', 'seccompProfiles', 'nodeAnnotations', 'nodeLabels', 'nodeTaints',
  ],
  // copied only when BOTH configs have machine.features ([RT], same tags)
  features: ['kubernetesTalosAPIAccess', 'kubePrism', 'hostDNS', 'imageCache', 'nodeAddressSortAlgorithm'],
} as const;

export const TALOS_RULE_SETS: readonly TalosRuleSet[] = [
  {
    minor: '1.11', tag: 'v1.11.6', defaultKubernetes: '1.34.1', kinds: new Set(KINDS_1_11),
    lineNumbers: false, skipsNullDocuments: false, missingApiVersionError: false, nilPointerLookupFailed: false,
    deleteIntoInline: false, argsType: false, immediate: IMMEDIATE,
  },
  {
    minor: '1.12', tag: 'v1.12.11', defaultKubernetes: '1.35.4', kinds: new Set(KINDS_1_12),
    lineNumbers: true, skipsNullDocuments: true, missingApiVersionError: true, nilPointerLookupFailed: true,
    deleteIntoInline: true, argsType: false, immediate: IMMEDIATE,
  },
  {
    minor: '1.13', tag: 'v1.13.9', defaultKubernetes: '1.36.3', kinds: new Set(KINDS_1_13),
    lineNumbers: true, skipsNullDocuments: true, missingApiVersionError: true, nilPointerLookupFailed: true,
    deleteIntoInline: true, argsType: true, immediate: IMMEDIATE,
  },
];

/** The tags the rules were read at. */
export const COVERED_VERSIONS: readonly string[] = TALOS_RULE_SETS.map((r) => r.tag);

/** Any `v1.X.Y` (optionally without the `v`, with a pre-release suffix) → the rule set of minor X. */
export function rulesFor(version: string): TalosRuleSet {
  const m = /^v?(\d+)\.(\d+)(?:\.\d+)?(?:[-+].*)?$/.exec(version.trim());
  const minor = m ? `${m[1]}.${m[2]}` : undefined;
  const rs = TALOS_RULE_SETS.find((r) => r.minor === minor);
  if (!rs) {
    throw new Error(`no Talos rules for ${JSON.stringify(version)}: covered are ${COVERED_VERSIONS.join(', ')} (minors ${TALOS_RULE_SETS.map((r) => r.minor).join(', ')})`);
  }
  return rs;
}

// ---------------------------------------------------------------------------------------------
// type knowledge the merge and the deletes need (Go types of the v1alpha1 document, [TYPES])

/**
 * Fields that are Go maps (keys are data, not field names): map[string]string / map[string]*T /
 * Env / Args — [TYPES] at v1.11.6 (same at v1.12.11 and v1.13.9, where extraArgs became `Args`).
 * A delete of a missing map key is "lookup failed"; of a missing struct field it is a no-op.
 */
const MAP_FIELDS = new Set([
  'machine.sysctls', 'machine.sysfs', 'machine.nodeLabels', 'machine.nodeAnnotations', 'machine.nodeTaints', 'machine.env',
  'machine.kubelet.extraArgs', 'machine.registries.mirrors', 'machine.registries.config', 'machine.logging.destinations.[].extraTags',
  'cluster.extraManifestHeaders', 'cluster.apiServer.extraArgs', 'cluster.controllerManager.extraArgs', 'cluster.scheduler.extraArgs',
  'cluster.proxy.extraArgs', 'cluster.etcd.extraArgs',
]);
/** extraArgs fields: `Args` with its own Merge (maps.Copy: a key's value is replaced, never merged) from v1.13 ([TYPES] v1.13.9 `func (a *Args) Merge`). */
const ARGS_FIELDS = new Set([
  'machine.kubelet.extraArgs', 'cluster.apiServer.extraArgs', 'cluster.controllerManager.extraArgs', 'cluster.scheduler.extraArgs',
  'cluster.proxy.extraArgs', 'cluster.etcd.extraArgs',
]);
/**
 * `Unstructured` fields (a struct whose only field is `Object map[string]any \`yaml:",inline"\``,
 * v1alpha1_unstructured.go): free-form below; a delete can only reach into them from v1.12
 * ([SEL] v1.12.11 "if there is an embedded struct, descend into it").
 */
const UNSTRUCTURED_FIELDS = new Set([
  'machine.pods.[]', 'machine.baseRuntimeSpecOverrides', 'machine.seccompProfiles.[].value', 'machine.kubelet.extraConfig',
  'machine.kubelet.credentialProviderConfig', 'cluster.apiServer.auditPolicy', 'cluster.apiServer.admissionControl.[].configuration',
  'cluster.apiServer.authorizationConfig.[].webhook', 'cluster.scheduler.config',
  'cluster.apiServer.resources.requests', 'cluster.apiServer.resources.limits', 'cluster.controllerManager.resources.requests',
  'cluster.controllerManager.resources.limits', 'cluster.scheduler.resources.requests', 'cluster.scheduler.resources.limits',
]);
/**
 * `merge:"replace"` fields: the right side replaces the left unless it is empty — [TYPES]
 * (podSubnets, serviceSubnets, auditPolicy) and types/network/rule_config.go (ingress, ports), all three tags.
 */
const REPLACE_FIELDS = new Set([
  'cluster.network.podSubnets', 'cluster.network.serviceSubnets', 'cluster.apiServer.auditPolicy',
  'NetworkRuleConfig.ingress', 'NetworkRuleConfig.portSelector.ports',
]);
/** Lists with their own Merge method: items with the same key are merged, others appended. */
type ListMerge = 'device' | { key: string; replaceItem?: boolean; since?: TalosMinor };
const LIST_MERGES: Record<string, ListMerge> = {
  // [TYPES] NetworkDeviceList.Merge: match on `interface`, else on `*deviceSelector == *deviceSelector`
  'machine.network.interfaces': 'device',
  // [TYPES] VlanList.Merge: match on vlanId
  'machine.network.interfaces.[].vlans': { key: 'vlanId' },
  // [TYPES] AdmissionPluginConfigList.Merge: match on name
  'cluster.apiServer.admissionControl': { key: 'name' },
  // types/runtime/extensions/service_config.go ConfigFileList.Merge: match on mountPath (all three tags)
  'ExtensionServiceConfig.configFiles': { key: 'mountPath' },
  // types/security/image_verification.go ImageVerificationRules.Merge (v1.13.9): same image → the rule is replaced
  'ImageVerificationConfig.rules': { key: 'image', replaceItem: true, since: '1.13' },
};

// ---------------------------------------------------------------------------------------------
// helpers

type Obj = Record<string, unknown>;
const isObj = (x: unknown): x is Obj => typeof x === 'object' && x !== null && !Array.isArray(x);
const clone = <T>(x: T): T => (x === undefined ? x : (JSON.parse(JSON.stringify(x)) as T));
const kindOfValue = (x: unknown): string => (Array.isArray(x) ? 'list' : isObj(x) ? 'map' : x === null || x === undefined ? 'null' : typeof x);

class TalosError extends Error {}

/** Is `doc` the legacy v1alpha1 document? ([DEC] decode: no kind, version from machine/cluster/debug/persist keys). */
function isV1alpha1(doc: Obj): boolean {
  return doc.kind === undefined || doc.kind === '' || doc.kind === null;
}

/** [SMP] v1.11.6 documentID: apiVersion + "/" + kind (+ "/" + name for named documents). v1alpha1: "/v1alpha1". */
function documentId(doc: Obj): string {
  if (isV1alpha1(doc)) return '/v1alpha1';
  const base = `${String(doc.apiVersion ?? '')}/${String(doc.kind)}`;
  return doc.name !== undefined ? `${base}/${String(doc.name)}` : base;
}

/** Config → documents in [CNT] Documents() order: the v1alpha1 document first, then the others in order. */
function toDocs(config: TalosConfig): Obj[] {
  const docs = (Array.isArray(config) ? config : [config]).map((d) => clone(d) as Obj);
  return [...docs.filter(isV1alpha1), ...docs.filter((d) => !isV1alpha1(d))];
}

/** The v1alpha1 document of a config (undefined when it has none). */
export function v1alpha1Of(config: TalosConfig): TalosDoc | undefined {
  return (Array.isArray(config) ? config : [config]).find(isV1alpha1);
}

// ---------------------------------------------------------------------------------------------
// patch loading: [LOAD] + [DEC] + [DEL]

interface Selector {
  sel: true;
  path: string[];
  apiVersion: string;
  kind: string;
  name: string;
  key: string;
  value: string;
}
interface PatchDoc {
  sel: false;
  doc: Obj;
}
type PatchEntry = Selector | PatchDoc;

const selectorDocId = (s: Selector): string => `${s.apiVersion}/${s.kind}${s.name ? `/${s.name}` : ''}`;

/** yaml.v3 Node.Value of a node: the scalar's text (plain scalars as written), "" for collections / null. */
function nodeValue(n: unknown, src: string): string {
  if (!isScalar(n)) return '';
  const s = n as Scalar;
  if (s.value === null) return '';
  if (s.type === 'PLAIN' && s.range) return src.slice(s.range[0], s.range[1]);
  return String(s.value);
}

/** [DEL] findValue: a key's scalar value in a mapping node (panics on a non-mapping). */
function findValue(root: unknown, key: string, required: boolean, src: string): string {
  if (!isMap(root)) throw new TalosError('expected a mapping node');
  for (const p of (root as YAMLMap).items) {
    if (isScalar(p.key) && nodeValue(p.key, src) === key) return nodeValue(p.value, src);
  }
  if (required) throw new TalosError(`missing ${key} in document for which $patch: delete is used`);
  return '';
}

type ParentKind = 'doc' | 'map' | 'seq';

/**
 * [DEL] processNode (v1.11.6 = v1.12.11 = v1.13.9 apart from yaml library names): walk a patch
 * document, turn every `$patch: delete` into a delete selector and cut it out of the document.
 *  - a mapping holding `$patch: delete` is deleted as a whole (keys after `$patch` are ignored);
 *  - if that mapping's parent is NOT a sequence, no sequence item may be on its path:
 *    "cannot delete an inner key in '<path>'" — the talos-vip ≤ 1.11 removal defect;
 *  - a mapping emptied by cut-outs is removed too, up to the document.
 */
function processNode(parentKind: ParentKind, v: unknown, path: string[], src: string, emit: (path: string[], parent: ParentKind, node: YAMLMap) => void): boolean {
  if (isMap(v)) {
    const m = v as YAMLMap;
    for (let i = 0; i < m.items.length; i++) {
      const pair = m.items[i] as Pair;
      const key = nodeValue(pair.key, src);
      if (isScalar(pair.value) && key === '$patch' && nodeValue(pair.value, src) === 'delete') {
        if (parentKind !== 'seq') ensureNoSeqInChain(path);
        emit(path, parentKind, m);
        return true;
      }
      if (processNode('map', pair.value, [...path, key], src, emit)) {
        m.items.splice(i, 1);
        i--;
        if (m.items.length === 0) return true;
      }
    }
  } else if (isSeq(v)) {
    const s = v as YAMLSeq;
    for (let i = 0; i < s.items.length; i++) {
      if (processNode('seq', s.items[i], [...path, `[${i}]`], src, emit)) {
        s.items.splice(i, 1);
        i--;
        if (s.items.length === 0) return true;
      }
    }
  }
  return false;
}

/** [DEL] ensureNoSeqInChain (all three tags). */
function ensureNoSeqInChain(path: string[]): void {
  if (path.some((p) => p.startsWith('['))) throw new TalosError(`cannot delete an inner key in '${path.join('.')}'`);
}

/** [DEL] isEmptyDoc: only scalar `version`/`kind`/`name` keys left (note: `apiVersion` is not among them). */
function isEmptyDoc(n: unknown, src: string): boolean {
  if (!isMap(n)) return false;
  return (n as YAMLMap).items.every((p) => isScalar(p.key) && isScalar(p.value) && ['version', 'kind', 'name'].includes(nodeValue(p.key, src)));
}

/** [DEL] makeSelector / makeSequenceSelector. */
function makeSelector(path: string[], root: unknown, src: string, key = '', value = ''): Selector {
  const required = path.length === 0;
  const apiVersion = findValue(root, 'apiVersion', required, src);
  let kind = findValue(root, 'kind', required, src);
  if (kind === '' && apiVersion === '') kind = 'v1alpha1'; // legacy document
  else if (kind === '' || apiVersion === '') throw new TalosError(`kind and apiVersion must be both set for path ${path.join('.')}`);
  return { sel: true, path: [...path], apiVersion, kind, name: findValue(root, 'name', false, src), key, value };
}

function makeSequenceSelector(path: string[], root: unknown, node: YAMLMap, src: string): Selector {
  // "collect the first key:val aside from $patch:delete as selector" — the match key is simply the
  // item's first key, compared later as a string ([SEL] deleteStructFrom)
  for (const p of node.items) {
    const k = nodeValue(p.key, src);
    if (isScalar(p.value) && k === '$patch' && nodeValue(p.value, src) === 'delete') continue;
    return makeSelector(path, root, src, k, nodeValue(p.value, src));
  }
  throw new TalosError(`no key:val found in sequence node for path ${path.join('.')}`);
}

/** A leftover `$patch` key (anything but `delete`) fails to decode into a Go struct (KnownFields) — Talos has no `$patch: replace`. */
function rejectOtherDirectives(x: unknown, path: string[]): void {
  if (Array.isArray(x)) x.forEach((v, i) => rejectOtherDirectives(v, [...path, `[${i}]`]));
  else if (isObj(x)) {
    for (const [k, v] of Object.entries(x)) {
      if (k === '$patch') {
        throw new TalosError(
          `field $patch not found at '${path.join('.')}' ("$patch: ${String(v)}" is not a Talos directive: only "$patch: delete" is — ` +
            'configloader/internal/decoder/delete.go; in a Go map it would even become a literal key)',
        );
      }
      rejectOtherDirectives(v, [...path, k]);
    }
  }
}

const J6902_REFUSAL =
  'JSON6902 (RFC 6902) patches are not modelled by this oracle: the toolkit writes strategic merge patches only. ' +
  'Talos accepts them for single-document configs only (configpatcher/json6902.go: "JSON6902 patches are not supported for multi-document machine configuration").';

type Loaded = { kind: 'strategic'; entries: PatchEntry[] } | { kind: 'json6902' } | { kind: 'empty' };

/** [LOAD] LoadPatch: try the strategic loader (configloader with deletes allowed) first, then JSON6902. */
function loadPatch(text: string, rs: TalosRuleSet): Loaded {
  const lc = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lc, uniqueKeys: true }) as Document.Parsed[];
  const line = (off: number | undefined) => (off === undefined ? 0 : lc.linePos(off).line);
  const entries: PatchEntry[] = [];
  const known = new Set<string>();
  // a YAML/JSON list: the strategic loader fails on it ("expected a mapping node" / "expected a
  // YAML document") and LoadPatch decodes it as a JSON6902 patch
  if (docs.length && isSeq(docs[0]!.contents)) return { kind: 'json6902' };
  {
    for (const d of docs) {
      if (d.errors.length) throw new TalosError(`decode error: ${d.errors[0]!.message.split('\n')[0]}`);
      const docLine = line(d.directives?.docStart ? d.range[0] : (d.contents?.range?.[0] ?? d.range[0]));
      const at = rs.lineNumbers ? ` at line ${docLine}` : '';
      // [DEL] AppendDeletesTo; errors are panics recovered there, wrapped from v1.12 ([DEC] v1.12.11)
      let zeroed = false;
      try {
        const root = d.contents;
        const emit = (path: string[], parent: ParentKind, node: YAMLMap) => {
          entries.push(parent === 'seq' ? makeSequenceSelector(path, root, node, text) : makeSelector(path, root, text));
        };
        const del = processNode('doc', root, [], text, emit);
        zeroed = del || isEmptyDoc(root, text);
      } catch (e) {
        if (!(e instanceof TalosError)) throw e;
        throw new TalosError(rs.lineNumbers ? `error processing patch delete statements${at}: ${e.message}` : e.message);
      }
      if (zeroed) continue;
      const root = d.contents;
      if (!isMap(root)) {
        // [DEC] v1.12.11 "skip null documents", other non-mappings refused; v1.11.6 findValue panics
        if (rs.skipsNullDocuments && (root === null || (isScalar(root) && (root as Scalar).value === null))) continue;
        throw new TalosError(rs.lineNumbers ? `expected a YAML document at line ${line(root?.range?.[0] ?? d.range[0])}` : 'recovered: expected a mapping node');
      }
      const doc = d.toJS() as Obj;
      const mline = line(root.range?.[0]);
      const id = { apiVersion: String(doc.apiVersion ?? ''), kind: String(doc.kind ?? '') || 'v1alpha1', name: doc.name === undefined ? '' : String(doc.name) };
      const idStr = `${id.apiVersion}/${id.kind}/${id.name}`;
      if (known.has(idStr)) throw new TalosError(`duplicate document ${idStr} is not allowed${rs.lineNumbers ? ` (line ${mline})` : ''}`);
      known.add(idStr);
      try {
        decodeCheck(doc, rs);
        rejectOtherDirectives(doc, []);
      } catch (e) {
        if (!(e instanceof TalosError)) throw e;
        throw new TalosError(rs.lineNumbers ? `error decoding document ${idStr} (line ${mline}): ${e.message}` : e.message);
      }
      entries.push({ sel: false, doc });
    }
  }
  // [DEC] newConfig: no documents → ErrNoConfig; LoadPatch then decodes the text as an (empty) YAML JSON patch
  if (entries.length === 0) return { kind: 'empty' };
  return { kind: 'strategic', entries };
}

/** [DEC] decode: which Go type a patch document becomes ([REG] for the kind). */
function decodeCheck(doc: Obj, rs: TalosRuleSet): void {
  let version = '';
  let kind = '';
  for (const k of Object.keys(doc)) {
    if (k === 'kind') kind = String(doc.kind ?? '');
    else if (k === 'apiVersion') version = String(doc.apiVersion ?? '');
    else if (['machine', 'cluster', 'debug', 'persist'].includes(k)) version = 'v1alpha1';
  }
  if (version === 'v1alpha1' && kind === '') return;
  if (kind === '') throw new TalosError('missing kind');
  if (version === '' && rs.missingApiVersionError) throw new TalosError('missing apiVersion');
  // every registered document type answers only to apiVersion v1alpha1 (its factory returns nil otherwise)
  if (!rs.kinds.has(kind) || kind === 'v1alpha1' || version !== 'v1alpha1') throw new TalosError(`"${kind}" "${version}": not registered`);
}

// ---------------------------------------------------------------------------------------------
// the merge: [MERGE] + [TYPES]

function isZeroScalar(x: unknown): boolean {
  return x === '' || x === 0;
}

/** Is a pattern a Go map / Unstructured (its keys are data)? */
function keysAreData(pat: string, free: boolean): boolean {
  return free || MAP_FIELDS.has(pat) || UNSTRUCTURED_FIELDS.has(pat);
}
const child = (pat: string, seg: string) => (pat ? `${pat}.${seg}` : seg);

/**
 * [MERGE] merge(): maps key by key, structs field by field, scalars replaced unless the right is
 * the zero value ("" / 0; a boolean is always taken), slices appended, `merge:"replace"` fields
 * replaced, lists with a Merge method merged on their key, a nil right side ignored. A type clash
 * (map vs list vs scalar) is an error: Talos would fail to decode the patch into the field's type,
 * or (in Unstructured) "merge type mismatch".
 * Not modelled: from v1.12 ([MERGE] v1.12.11 `overwrite`) a zero value behind a Go pointer
 * (e.g. `*int`) does replace the left — the oracle keeps the v1.11 rule for all scalars.
 */
function mergeValue(left: unknown, right: unknown, pat: string, free: boolean, rs: TalosRuleSet): unknown {
  if (right === null || right === undefined) return left;
  if (isObj(right)) {
    if (left === null || left === undefined) return clone(right);
    if (!isObj(left)) throw new TalosError(`cannot merge '${pat}': the config has a ${kindOfValue(left)}, the patch a map`);
    if (REPLACE_FIELDS.has(pat)) return Object.keys(right).length ? clone(right) : left;
    const out: Obj = { ...left };
    const data = keysAreData(pat, free);
    const inner = free || UNSTRUCTURED_FIELDS.has(pat);
    for (const [k, rv] of Object.entries(right)) {
      if (rs.argsType && ARGS_FIELDS.has(pat)) {
        out[k] = clone(rv); // v1.13.9 Args.Merge: maps.Copy
        continue;
      }
      out[k] = mergeValue(left[k], rv, child(pat, data ? '*' : k), inner, rs);
    }
    return out;
  }
  if (Array.isArray(right)) {
    if (left === null || left === undefined) return clone(right);
    if (!Array.isArray(left)) throw new TalosError(`cannot merge '${pat}': the config has a ${kindOfValue(left)}, the patch a list`);
    if (right.length === 0) return left;
    if (REPLACE_FIELDS.has(pat)) return clone(right);
    const lm = free ? undefined : LIST_MERGES[pat];
    const itemPat = child(pat, '[]');
    const itemFree = free || UNSTRUCTURED_FIELDS.has(itemPat);
    if (lm && (lm === 'device' || !lm.since || rs.minor >= lm.since)) {
      const out = [...left];
      const originalLen = out.length;
      for (const r of right) {
        const idx = lm === 'device' ? findDevice(out, r) : findByKey(out, r, lm.key, lm.replaceItem ? originalLen : out.length);
        if (idx < 0) out.push(clone(r));
        else out[idx] = lm !== 'device' && lm.replaceItem ? clone(r) : mergeValue(out[idx], r, itemPat, itemFree, rs);
      }
      return out;
    }
    return [...left, ...clone(right)];
  }
  if (isObj(left) || Array.isArray(left)) throw new TalosError(`cannot merge '${pat}': the config has a ${kindOfValue(left)}, the patch a ${typeof right}`);
  if (typeof right === 'boolean') return right;
  if (isZeroScalar(right)) return left === undefined ? right : left;
  return right;
}

/**
 * [TYPES] NetworkDeviceList.mergeDevice (all three tags): a device with `interface` matches the
 * same interface name; otherwise a device with a `deviceSelector` matches one whose selector is
 * equal as a Go struct — `physical` is a *bool there, so two selectors that both set `physical`
 * never compare equal (pointer comparison) and the patch device is appended instead.
 */
function findDevice(list: unknown[], r: unknown): number {
  if (!isObj(r)) return -1;
  if (typeof r.interface === 'string' && r.interface !== '') return list.findIndex((d) => isObj(d) && d.interface === r.interface);
  if (isObj(r.deviceSelector)) {
    const rs = r.deviceSelector;
    return list.findIndex((d) => isObj(d) && isObj(d.deviceSelector) && selectorEqual(d.deviceSelector, rs));
  }
  return -1;
}
function selectorEqual(a: Obj, b: Obj): boolean {
  if (a.physical !== undefined || b.physical !== undefined) return a.physical === undefined && b.physical === undefined;
  for (const k of ['busPath', 'hardwareAddr', 'permanentAddr', 'pciID', 'driver']) if ((a[k] ?? '') !== (b[k] ?? '')) return false;
  return true;
}
function findByKey(list: unknown[], r: unknown, key: string, searchLen: number): number {
  const rv = isObj(r) ? (r[key] ?? zeroOf(key)) : undefined;
  for (let i = 0; i < searchLen; i++) {
    const d = list[i];
    if (isObj(d) && (d[key] ?? zeroOf(key)) === rv) return i;
  }
  return -1;
}
const zeroOf = (key: string) => (key === 'vlanId' ? 0 : '');

// ---------------------------------------------------------------------------------------------
// the deletes: [SEL]

const LOOKUP_FAILED = 'lookup failed';

/**
 * [SEL] selector.ApplyTo / deleteForPath / deleteStructFrom on a document. Returns 'zeroed' when
 * the whole (typed) document goes.
 */
function applySelector(doc: Obj, s: Selector, rs: TalosRuleSet): 'zeroed' | 'ok' {
  const docName = `${isV1alpha1(doc) ? '' : String(doc.apiVersion ?? '')}/${isV1alpha1(doc) ? 'v1alpha1' : String(doc.kind)}`;
  const p = s.path.join('.');
  const fail = (err: string): never => {
    if (s.name) throw new TalosError(`named patch delete: document ${docName}: ${err}`);
    throw new TalosError(`patch delete: path '${p}' in document '${docName}': ${err}`);
  };
  if (s.path.length === 0) {
    if (!isV1alpha1(doc)) return 'zeroed';
    fail("can't delete the root of the legacy document");
  }
  try {
    deleteForPath(doc, s.path, isV1alpha1(doc) ? '' : String(doc.kind), false, s, rs);
  } catch (e) {
    if (!(e instanceof TalosError)) throw e;
    fail(`failed to delete path '${p}': ${e.message}`);
  }
  return 'ok';
}

function deleteForPath(val: unknown, path: string[], pat: string, free: boolean, s: Selector, rs: TalosRuleSet): void {
  const [seg, ...rest] = path as [string, ...string[]];
  if (Array.isArray(val)) return deleteStructFrom(val, seg, rest, pat, s);
  if (!isObj(val)) throw new TalosError(LOOKUP_FAILED);
  const unstructured = !free && UNSTRUCTURED_FIELDS.has(pat);
  if (unstructured && !rs.deleteIntoInline) throw new TalosError(LOOKUP_FAILED); // v1.11.6: no yaml tag matches inside Unstructured
  const isMapField = free || unstructured || MAP_FIELDS.has(pat);
  const inner = free || unstructured;
  if (isMapField) {
    if (!(seg in val)) throw new TalosError(LOOKUP_FAILED);
    if (rest.length === 0) {
      delete val[seg];
      return;
    }
    return deleteForPath(val[seg], rest, child(pat, '*'), inner, s, rs);
  }
  // a struct field: zeroed even if already zero
  if (rest.length === 0) {
    delete val[seg];
    return;
  }
  const next = val[seg];
  if (next === undefined || next === null) {
    // a nil slice or map on the way is "lookup failed"; a nil pointer (most nested v1alpha1
    // structs are pointers) is too from v1.12 ([SEL] v1.12.11 `if val.IsNil()`), while v1.11.6
    // calls val.Type() on the zero reflect.Value there and panics
    const collection = rest[0]!.startsWith('[') || MAP_FIELDS.has(child(pat, seg)) || UNSTRUCTURED_FIELDS.has(child(pat, seg));
    throw new TalosError(rs.nilPointerLookupFailed || collection ? LOOKUP_FAILED : `${LOOKUP_FAILED} (Talos ${rs.tag} panics here instead: reflect: call of reflect.Value.Type on zero Value)`);
  }
  return deleteForPath(next, rest, child(pat, seg), false, s, rs);
}

/**
 * [SEL] deleteStructFrom: a list item is found by the selector key — the FIRST key of the patch
 * item (besides `$patch`) — compared as a string with the item's field of that yaml name; only
 * string fields can match (other kinds print as "<T Value>"; v1.12+ also uses fmt.Stringer,
 * which no v1alpha1 list-key field implements), so a `deviceSelector` (a mapping: value "") or a
 * `vlanId` (a number) never matches. Items that are not structs (Unstructured, e.g. machine.pods)
 * are skipped. The first match is removed.
 */
function deleteStructFrom(list: unknown[], seg: string, rest: string[], pat: string, s: Selector): void {
  if (rest.length !== 0) throw new TalosError('searching for complex paths in slices is not supported');
  if (seg === '') throw new TalosError("searching for '' in a slice is not supported");
  if (!seg.startsWith('[')) throw new TalosError('searching for non-integer keys in slices is not supported');
  if (UNSTRUCTURED_FIELDS.has(child(pat, '[]'))) throw new TalosError(LOOKUP_FAILED);
  for (let i = 0; i < list.length; i++) {
    const item = list[i];
    if (!isObj(item)) continue;
    const f = item[s.key];
    const str = f === undefined ? '' : typeof f === 'string' ? f : undefined;
    if (str === undefined || str !== s.value) continue;
    list.splice(i, 1);
    return;
  }
  throw new TalosError(LOOKUP_FAILED);
}

// ---------------------------------------------------------------------------------------------
// applyTalosPatch

export type PatchOutcome = { ok: true; result: TalosDoc[] } | { ok: false; error: string };

/**
 * Apply one patch (YAML text, one or more documents) the way Talos `rs` does:
 *  1. [LOAD] LoadPatch: strategic merge patch (configloader with `$patch: delete` allowed), else
 *     JSON6902 (refused here, see J6902_REFUSAL);
 *  2. [CNT] Documents() order of the patch: v1alpha1 deletes first, then the v1alpha1 document,
 *     then the other documents and their deletes in file order;
 *  3. [SMP] StrategicMerge: each patch document is matched to a config document by
 *     apiVersion/kind(/name) — a delete selector is applied to it (a whole typed document can go,
 *     the v1alpha1 one cannot), a document is merged into it; unmatched documents are appended;
 *  4. [CNT] New(): duplicate and conflicting documents are refused.
 * Result: the documents, v1alpha1 first.
 */
export function applyTalosPatch(config: TalosConfig, patch: string, version: string): PatchOutcome {
  const rs = rulesFor(version);
  const left = toDocs(config);
  try {
    const loaded = loadPatch(patch, rs);
    if (loaded.kind === 'json6902') return { ok: false, error: J6902_REFUSAL };
    if (loaded.kind === 'empty') {
      // an empty JSON patch: a no-op on a single-document config ([J6902] refuses multi-document ones)
      if (left.length !== 1) return { ok: false, error: 'JSON6902 patches are not supported for multi-document machine configuration' };
      return { ok: true, result: left };
    }
    const entries = loaded.entries;
    const v1Sel = entries.filter((e): e is Selector => e.sel && e.kind === 'v1alpha1');
    const v1Doc = entries.filter((e): e is PatchDoc => !e.sel && isV1alpha1(e.doc));
    const rest = entries.filter((e) => !(e.sel ? e.kind === 'v1alpha1' : isV1alpha1(e.doc)));
    const ordered: PatchEntry[] = [...v1Sel, ...v1Doc, ...rest];

    const index = new Map<string, Obj>(left.map((d) => [documentId(d), d]));
    for (const e of ordered) {
      const id = e.sel ? selectorDocId(e) : documentId(e.doc);
      const target = index.get(id);
      if (!target) {
        if (e.sel) {
          // [SMP]: an unmatched right-hand document is appended — a delete selector too; [CNT] New()
          // skips its checks for selectors, so Talos keeps a bogus document instead of an error
          throw new TalosError(
            `$patch: delete of document ${id}${e.path.length ? ` (path '${e.path.join('.')}')` : ''}, which the config does not have: ` +
              'Talos appends the delete selector itself as a document (configpatcher/strategic.go) and the patched config is broken',
          );
        }
        left.push(clone(e.doc));
        continue;
      }
      if (e.sel) {
        if (applySelector(target, e, rs) === 'zeroed') {
          index.delete(id);
          left.splice(left.indexOf(target), 1);
        }
      } else {
        const merged = mergeValue(target, e.doc, isV1alpha1(target) ? '' : String(target.kind), false, rs) as Obj;
        left[left.indexOf(target)] = merged;
        index.set(id, merged);
      }
    }
    containerCheck(left);
    return { ok: true, result: toDocs(left) };
  } catch (e) {
    if (e instanceof TalosError) return { ok: false, error: e.message };
    throw e;
  }
}

/** [CNT] New(): one v1alpha1 document, no duplicate Kind/name, no conflicting kinds with the same name. */
function containerCheck(docs: Obj[]): void {
  if (docs.filter(isV1alpha1).length > 1) throw new TalosError('duplicate v1alpha1.Config');
  // [L2VIP] Layer2VIPConfig.ConflictsWithKinds = HCloudVIPConfig and vice versa (v1.12.11, v1.13.9)
  const conflicts: Record<string, string> = { Layer2VIPConfig: 'HCloudVIPConfig', HCloudVIPConfig: 'Layer2VIPConfig' };
  const seen = new Set<string>();
  for (const d of docs.filter((x) => !isV1alpha1(x))) {
    const id = `${String(d.kind)}/${d.name === undefined ? '' : String(d.name)}`;
    if (seen.has(id)) throw new TalosError(`duplicate document: ${id}`);
    const other = conflicts[String(d.kind)];
    if (other && seen.has(`${other}/${d.name === undefined ? '' : String(d.name)}`)) {
      throw new TalosError(`conflicting documents: ${other}/${String(d.name)} and ${id}`);
    }
    seen.add(id);
  }
}

// ---------------------------------------------------------------------------------------------
// liveApplicable: [RT] CanApplyImmediate + [SRV] ApplyConfiguration

export type LiveOutcome = { immediate: true } | { immediate: false; reboot: string[] };

/**
 * Normalise like the YAML round trip talosctl → machined does before the DeepEqual: `omitempty`
 * drops nil/empty slices, maps and "" strings, so absent, null, [] and "" compare equal. Empty
 * objects are kept: a pointer to an empty struct (`features: {}`) survives the round trip.
 */
function norm(x: unknown): unknown {
  if (Array.isArray(x)) {
    const a = x.map(norm);
    return a.length ? a : undefined;
  }
  if (isObj(x)) {
    const o: Obj = {};
    for (const [k, v] of Object.entries(x)) {
      const n = norm(v);
      if (n !== undefined) o[k] = n;
    }
    return o;
  }
  return x === null || x === '' ? undefined : x;
}
const same = (a: unknown, b: unknown) => JSON.stringify(sortKeys(norm(a))) === JSON.stringify(sortKeys(norm(b)));
function sortKeys(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(sortKeys);
  if (isObj(x)) return Object.fromEntries(Object.keys(x).sort().map((k) => [k, sortKeys(x[k])]));
  return x;
}

/**
 * Can `after` replace `before` without a reboot (`talosctl patch/apply/edit --mode auto` then
 * applies it live; `--mode no-reboot` refuses otherwise)? [RT] CanApplyImmediate at v1.11.6,
 * v1.12.11 and v1.13.9: only the v1alpha1 document is compared, after copying from the current
 * config `debug`, `cluster`, the machine fields in `immediate.machine` and — only when both
 * configs have `machine.features` — the feature fields in `immediate.features`. Every other
 * document (Layer2VIPConfig, …) is not compared at all, so changing it is always immediate.
 * `reboot` lists the fields that differ and force the reboot.
 */
export function liveApplicable(before: TalosConfig, after: TalosConfig, version: string): LiveOutcome {
  const rs = rulesFor(version);
  const cur = v1alpha1Of(before);
  const next = v1alpha1Of(after);
  if (!cur || !next) return { immediate: false, reboot: [cur ? 'the new config has no v1alpha1 document' : 'the current config has no v1alpha1 document'] };
  const reboot: string[] = [];
  const keys = (a: unknown, b: unknown) => [...new Set([...Object.keys(isObj(a) ? a : {}), ...Object.keys(isObj(b) ? b : {})])];
  for (const k of keys(cur, next)) {
    if (rs.immediate.top.includes(k)) continue;
    if (k === 'machine' && isObj(cur.machine) && isObj(next.machine)) {
      const cm = cur.machine;
      const nm = next.machine;
      for (const mk of keys(cm, nm)) {
        if (rs.immediate.machine.includes(mk)) continue;
        if (mk === 'features' && isObj(cm.features) && isObj(nm.features)) {
          for (const fk of keys(cm.features, nm.features)) {
            if (rs.immediate.features.includes(fk)) continue;
            if (!same(cm.features[fk], nm.features[fk])) reboot.push(`machine.features.${fk}`);
          }
          continue;
        }
        if (!same(cm[mk], nm[mk])) reboot.push(`machine.${mk}`);
      }
      continue;
    }
    if (!same(cur[k], next[k])) reboot.push(k);
  }
  return reboot.length ? { immediate: false, reboot: reboot.sort() } : { immediate: true };
}

// ---------------------------------------------------------------------------------------------
// validation machined does before applying ([SRV] ApplyConfiguration → Validate)

function validate(docs: Obj[], rs: TalosRuleSet): string[] {
  const problems: string[] = [];
  // [SRV] v1.11.6/v1.12.11 (and v1.13.9 outside maintenance mode)
  if (!docs.some(isV1alpha1)) problems.push("the applied machine configuration doesn't contain v1alpha1 config, did you mean to patch the machine config instead?");
  for (const d of docs) {
    if (d.kind !== 'Layer2VIPConfig' || rs.minor === '1.11') continue;
    // [L2VIP] Validate (v1.12.11, v1.13.9)
    const name = typeof d.name === 'string' ? d.name : '';
    if (!name) problems.push('Layer2VIPConfig: name must be specified');
    else if (!isIP(name)) problems.push(`Layer2VIPConfig: name must be a valid IP address (${JSON.stringify(name)})`);
    if (!d.link) problems.push(`Layer2VIPConfig ${name}: link must be specified`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// checkPatchSequence

export interface PatchStep {
  name: string;
  yaml: string;
  /** Applied to a running node (`talosctl patch machineconfig`, default --mode auto) rather than at config generation. */
  live: boolean;
}

/**
 * Run the patches in order from `base` and list what Talos would object to (empty = all good):
 * a patch Talos refuses (the config then stays as it was for the next step), a config machined
 * would not accept, and a live patch that cannot be applied without a reboot (talosctl's default
 * --mode auto would reboot the node; --mode no-reboot fails).
 */
export function checkPatchSequence(base: TalosConfig, patches: PatchStep[], version: string): string[] {
  const rs = rulesFor(version);
  const problems: string[] = [];
  let cur = toDocs(base);
  for (const p of patches) {
    const r = applyTalosPatch(cur, p.yaml, version);
    if (!r.ok) {
      problems.push(`${p.name}: Talos ${rs.tag} refuses this patch: ${r.error}`);
      continue;
    }
    for (const v of validate(r.result, rs)) problems.push(`${p.name}: Talos ${rs.tag} refuses the patched config: ${v}`);
    if (p.live) {
      const l = liveApplicable(cur, r.result, version);
      if (!l.immediate) {
        problems.push(
          `${p.name}: applied live, but Talos ${rs.tag} cannot apply a change of ${l.reboot.join(', ')} without a reboot ` +
            '(talosctl patch --mode auto reboots the node, --mode no-reboot refuses it)',
        );
      }
    }
    cur = r.result;
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// checkCallSequence: several patch files in one talosctl call

export interface PatchCall {
  name: string;
  /** the patch files of ONE `talosctl patch machineconfig --patch @a --patch @b` call, in order */
  yamls: string[];
  /** applied to a running node (ApplyConfiguration) rather than at config generation */
  live: boolean;
}

/**
 * Like checkPatchSequence, for calls that carry several patches: talosctl applies a call's patches
 * one after the other locally (cmd/talosctl/cmd/talos/patch.go: configpatcher.LoadPatches +
 * configpatcher.Apply, v1.11.6 … v1.13.9) and sends ONE config, so what machined validates and
 * compares with the running config ([RT] CanApplyImmediate) is the result of the whole call; an
 * intermediate state is never applied. A refused patch fails the whole call (the config stays).
 */
export function checkCallSequence(base: TalosConfig, calls: PatchCall[], version: string): { problems: string[]; result: TalosDoc[] } {
  const rs = rulesFor(version);
  const problems: string[] = [];
  let cur = toDocs(base);
  for (const c of calls) {
    let next: TalosDoc[] = cur;
    let refused = false;
    for (const [i, y] of c.yamls.entries()) {
      const r = applyTalosPatch(next, y, version);
      if (!r.ok) {
        problems.push(`${c.name}${c.yamls.length > 1 ? ` (patch ${i + 1}/${c.yamls.length})` : ''}: Talos ${rs.tag} refuses this patch: ${r.error}`);
        refused = true;
        break;
      }
      next = r.result;
    }
    if (refused) continue;
    for (const v of validate(next, rs)) problems.push(`${c.name}: Talos ${rs.tag} refuses the patched config: ${v}`);
    if (c.live) {
      const l = liveApplicable(cur, next, version);
      if (!l.immediate) {
        problems.push(
          `${c.name}: applied live, but Talos ${rs.tag} cannot apply a change of ${l.reboot.join(', ')} without a reboot ` +
            '(talosctl patch --mode auto reboots the node, --mode no-reboot refuses it)',
        );
      }
    }
    cur = next;
  }
  return { problems, result: cur };
}
