/**
 * Talos machine-config facts every Talos runtime shares (docker, qemu, an existing cluster) and
 * that mechanisms use when they render Talos patches: version generations, patch documents, YAML
 * multi-document output, which generated config a patch belongs to. Pure.
 *
 * Talos facts used here (checked against the real schemas in test/contract/talos-schema.test.ts):
 *  - cluster endpoint: `cluster.controlPlane.endpoint` (schema: `^https://`, format uri);
 *  - KubePrism: `machine.features.kubePrism {enabled, port}` (on by default since Talos 1.6, port
 *    7445 — Talos docs "KubePrism"); written explicitly so the lab never depends on a default;
 *  - API server certificate SANs: `cluster.apiServer.certSANs`;
 *  - single-node label pitfall: `machine.nodeLabels.<label>: {$patch: delete}` (Talos docs
 *    "workers on control planes"; configpatcher testdata/patchdelete/strategic2.yaml);
 *  - a CNI installed by the lab itself (Cilium): `cluster.network.cni.name: none` (Talos docs
 *    "Deploying Cilium CNI").
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, stringify } from 'yaml';
import type { Topology } from '../../../model/types.js';
import type { RenderedFile } from '../../../strategies/types.js';

/** A Talos link: its name, or (Talos ≤ 1.11 only) a device selector. */
export type VipLink = { interface: string } | { deviceSelector: Record<string, string | boolean> };

export function endpointPatchDoc(url: string): Record<string, unknown> {
  return { cluster: { controlPlane: { endpoint: url } } };
}

/** The repo's static Talos patches (patches/talos/). */
const PATCH_DIR = fileURLToPath(new URL('../../../../patches/talos/', import.meta.url));
const staticCache = new Map<string, string>();
/** One of the static patches under `patches/talos/` (real Talos patches, usable as they are). */
export function staticPatch(name: 'container-mode' | 'remove-exclude-lb-label' | 'allow-scheduling-on-control-planes'): string {
  let s = staticCache.get(name);
  if (s === undefined) {
    s = readFileSync(`${PATCH_DIR}${name}.yaml`, 'utf8');
    staticCache.set(name, s);
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// versions

/** `v1.11.6` → {major: 1, minor: 11}; throws on anything that is not a Talos version. */
export function talosMinor(version: string): { major: number; minor: number } {
  const m = /^v?(\d+)\.(\d+)(?:\.\d+)?(?:[-+].*)?$/.exec(version.trim());
  if (!m) throw new Error(`not a Talos version: '${version}' (expected vMAJOR.MINOR[.PATCH])`);
  return { major: Number(m[1]), minor: Number(m[2]) };
}

/** Talos 1.12 moved network configuration to documents (Layer2VIPConfig, LinkConfig…). */
export function usesNetworkDocuments(version: string): boolean {
  const v = talosMinor(version);
  return v.major > 1 || (v.major === 1 && v.minor >= 12);
}

// ---------------------------------------------------------------------------------------------
// patch documents

export function kubePrismPatchDoc(t: Topology): Record<string, unknown> {
  return { machine: { features: { kubePrism: { enabled: true, port: t.kubePrismPort } } } };
}

/** Every address clients may use for the API on this cluster (VIP and LB), so the certificate fits whichever strategy runs. */
export function apiCertSans(t: Topology): string[] {
  return [...new Set([t.vip, ...(t.loadBalancer ? [t.loadBalancer.ip] : [])])];
}

export function certSansPatchDoc(t: Topology): Record<string, unknown> {
  return { cluster: { apiServer: { certSANs: apiCertSans(t) } } };
}

export function cniNonePatchDoc(): Record<string, unknown> {
  return { cluster: { network: { cni: { name: 'none' } } } };
}

/**
 * Which generated config a patch belongs to: `controlplane` when every host it names is a control
 * plane (a single-node cluster included — its worker.yaml is never used), `worker` when every one
 * is a worker, else `all`. It matters: Talos refuses a `$patch: delete` of something the config
 * does not have (configpatcher testdata/patchdeletemissing), and only control-plane configs carry
 * the exclude-from-external-load-balancers label.
 */
export function patchScope(t: Topology, f: RenderedFile): 'all' | 'controlplane' | 'worker' {
  const roles = new Set((f.hosts ?? []).map((h) => t.nodes.find((n) => n.name === h)?.role));
  if (!f.hosts?.length || roles.has(undefined)) return 'all';
  if (roles.size === 1) return roles.has('controlplane') ? 'controlplane' : 'worker';
  return 'all';
}

export function toYamlDocs(docs: Record<string, unknown>[], header: string[] = []): string {
  const head = header.map((l) => `# ${l}`.trimEnd()).join('\n');
  const body = docs.map((d) => stringify(d, { lineWidth: 0 })).join('---\n');
  return head ? `${head}\n${body}` : body;
}


/**
 * A patch written for the topology's link name (`eth0`), re-linked for a runtime that names the
 * node's NIC otherwise (qemu: a virtio device selector on Talos ≤ 1.11, the `net0` alias from
 * 1.12): `machine.network.interfaces[].interface` and the `link` of typed network documents
 * (Layer2VIPConfig, LinkConfig `name`) are rewritten; everything else is kept.
 */
export function relinkPatch(content: string, from: string, to: VipLink | string): string {
  const docs = parseAllDocuments(content).map((d) => d.toJS() as Record<string, unknown> | null);
  let changed = false;
  const out = docs.map((doc) => {
    if (!doc) return doc;
    const ifaces = (doc.machine as { network?: { interfaces?: Record<string, unknown>[] } } | undefined)?.network?.interfaces;
    for (const i of ifaces ?? []) {
      if (i.interface !== from) continue;
      delete i.interface;
      Object.assign(i, typeof to === 'string' ? { interface: to } : to);
      changed = true;
    }
    const name = typeof to === 'string' ? to : 'interface' in to ? to.interface : null;
    if (doc.kind === 'Layer2VIPConfig' && doc.link === from) {
      if (!name) throw new Error(`Layer2VIPConfig needs a link name; ${JSON.stringify(to)} is a device selector`);
      doc.link = name;
      changed = true;
    }
    if (doc.kind === 'LinkConfig' && doc.name === from && name) {
      doc.name = name;
      changed = true;
    }
    return doc;
  });
  if (!changed) return content;
  const header = content.split('\n').filter((l) => l.startsWith('#'));
  return toYamlDocs(out.filter((d): d is Record<string, unknown> => d !== null), [...header.map((l) => l.replace(/^# ?/, '')), `re-linked: ${from} → ${JSON.stringify(to)}`]);
}

/**
 * Make a Talos ≤ 1.11 patch that deletes `machine.network.interfaces` entries keep what the
 * RUNTIME's own config has on those links (a docker node's routes through the lab router, a qemu
 * VM's DHCP entry), in forms Talos accepts (siderolabs/talos configloader/internal/decoder/
 * delete.go + selector.go, v1.11.6 = v1.12.11 = v1.13.9):
 *  - entries deleted by `interface` name, runtime entries named the same way: the runtime's entry
 *    is merged back in the SAME patch, right after the delete (deletes of a patch run before its
 *    merge: container.go `Documents()`) — one patch;
 *  - an entry chosen by `deviceSelector` cannot be deleted at all (the selector key is compared as
 *    a string; a mapping prints as "" and never matches: "lookup failed"), so the whole list goes
 *    (`interfaces: {$patch: delete}` — its parent is a mapping, which Talos allows) and the
 *    runtime's entries plus the patch's other items come back in a SECOND patch. Both are given to
 *    ONE `talosctl patch machineconfig --patch @1 --patch @2` call: talosctl applies them in order
 *    locally (cmd/talosctl/cmd/talos/patch.go `configpatcher.Apply`) and sends one config, so the
 *    node never runs without its link configuration.
 * Returns the patch contents in order (the input alone when nothing needs completing).
 */
export function completeInterfaceDeletes(content: string, runtimeInterfaces: Record<string, unknown>[]): string[] {
  const docs = parseAllDocuments(content).map((d) => d.toJS() as Record<string, unknown> | null);
  const isDelete = (i: unknown) => !!i && typeof i === 'object' && (i as Record<string, unknown>).$patch === 'delete';
  const legacy = docs.find((d) => d && d.kind === undefined && Array.isArray((d.machine as { network?: { interfaces?: unknown } } | undefined)?.network?.interfaces));
  const items = ((legacy?.machine as { network: { interfaces: Record<string, unknown>[] } } | undefined)?.network.interfaces ?? []) as Record<string, unknown>[];
  if (!legacy || !items.some(isDelete)) return [content];
  const header = content.split('\n').filter((l) => l.startsWith('#')).map((l) => l.replace(/^# ?/, ''));
  const others = items.filter((i) => !isDelete(i));
  const byName = items.filter(isDelete).every((d) => typeof d.interface === 'string') && runtimeInterfaces.every((e) => typeof e.interface === 'string');
  const network = (legacy.machine as { network: Record<string, unknown> }).network;
  if (byName) {
    const out: Record<string, unknown>[] = [];
    for (const i of items) {
      out.push(i);
      if (!isDelete(i)) continue;
      const back = runtimeInterfaces.find((e) => e.interface === i.interface);
      if (back && !others.some((o) => o.interface === i.interface)) out.push(structuredClone(back));
    }
    if (out.length === items.length) return [content];
    network.interfaces = out;
    return [toYamlDocs(docs.filter((d): d is Record<string, unknown> => d !== null), [...header, 'the runtime’s own settings of the deleted link are merged back in the same patch'])];
  }
  network.interfaces = [...runtimeInterfaces.map((e) => structuredClone(e)), ...others];
  return [
    toYamlDocs([{ machine: { network: { interfaces: { $patch: 'delete' } } } }], [...header, 'part 1 of 2: the whole interfaces list goes (a deviceSelector entry has no delete form)']),
    toYamlDocs(docs.filter((d): d is Record<string, unknown> => d !== null), [...header, 'part 2 of 2: the runtime’s own interface entries come back (same talosctl call as part 1)']),
  ];
}
