/**
 * The whole-cluster files a REAL cluster (docker, qemu, hardware) needs for one strategy, apart
 * from what the two mechanisms render themselves: Talos machine-config patches (one per concern),
 * the routers' frr.conf, and a README.txt saying what to apply where. Pure: topology + strategy in,
 * files out (the three static patches are read from the repo's `patches/talos/`, nothing else).
 *
 * Talos facts used here (checked against the real schemas in test/contract/talos-schema.test.ts):
 *  - cluster endpoint: `cluster.controlPlane.endpoint` (schema: `^https://`, format uri);
 *  - KubePrism: `machine.features.kubePrism {enabled, port}` (on by default since Talos 1.6, port
 *    7445 — Talos docs "KubePrism"); written explicitly so the lab never depends on a default;
 *  - API server certificate SANs: `cluster.apiServer.certSANs`;
 *  - native VIP: Talos ≤ 1.11 `machine.network.interfaces[{interface, vip: {ip}}]`; from 1.12 the
 *    legacy `machine.network.interfaces` is gone from the schema and the VIP is a `Layer2VIPConfig`
 *    document (`name` = the VIP, `link`) — config-v1.12.11.schema.json;
 *  - single-node label pitfall: `machine.nodeLabels.<label>: {$patch: delete}` (Talos docs
 *    "workers on control planes"; configpatcher testdata/patchdelete/strategic2.yaml);
 *  - Cilium as the CNI: `cluster.network.cni.name: none` (Talos docs "Deploying Cilium CNI").
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import type { Node, Router, StrategyRef, Topology } from '../model/types.js';
import type { RenderedFile } from '../strategies/types.js';
import { renderRouterFrr } from './frr.js';

/** Paths (inside a strategy's render dir) of the Talos patches this module writes, by concern. */
export const TALOS_PATCH = {
  endpoint: 'talos/cluster-endpoint.patch.yaml',
  kubePrism: 'talos/kubeprism.patch.yaml',
  certSans: 'talos/api-cert-sans.patch.yaml',
  scheduling: 'talos/allow-scheduling-on-control-planes.patch.yaml',
  excludeLbLabel: 'talos/remove-exclude-lb-label.patch.yaml',
  vip: 'talos/native-vip.patch.yaml',
  cniNone: 'talos/cni-none.patch.yaml',
  containerMode: 'talos/docker/container-mode.patch.yaml',
} as const;

/** Patches whose content changes from one strategy to the next on the same cluster (providers re-apply these at `apply`). */
export const STRATEGY_SPECIFIC_PATCHES: readonly string[] = [TALOS_PATCH.endpoint, TALOS_PATCH.vip];

export const README_PATH = 'README.txt';

/** `router/<name>/frr.conf` */
export function routerFrrPath(r: Router): string {
  return `router/${r.name}/frr.conf`;
}

const PATCH_DIR = fileURLToPath(new URL('../../patches/talos/', import.meta.url));
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
// versions and endpoints

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

/** The cp mechanisms whose API endpoint is the topology's VIP (src/model/catalog.ts CP_TRAITS). */
export function endpointIsVip(ref: StrategyRef): boolean {
  return ref.cp !== 'haproxy';
}

/** The address clients and nodes use for the Kubernetes API under this strategy. */
export function apiEndpointHost(t: Topology, ref: StrategyRef): string {
  if (endpointIsVip(ref)) return t.vip;
  if (!t.loadBalancer) throw new Error(`strategy ${ref.id}: the haproxy endpoint needs the topology's loadBalancer host`);
  return t.loadBalancer.ip;
}

export function apiEndpointUrl(t: Topology, ref: StrategyRef): string {
  return `https://${apiEndpointHost(t, ref)}:${t.apiPort}`;
}

// ---------------------------------------------------------------------------------------------
// patch documents (objects; the providers reuse them with their own link names)

export type VipLink = { interface: string } | { deviceSelector: Record<string, string | boolean> };

/**
 * The native VIP as Talos documents it for `version`. `link` names the interface the way the
 * platform does: the topology's `eth0` on docker and hardware; qemu selects its virtio NIC
 * (≤ 1.11 deviceSelector `{driver: virtio_net}`, merged with talosctl's own entry; ≥ 1.12 the
 * link alias `net0` talosctl creates — pkg/provision/providers/qemu/qemu.go).
 */
export function vipPatchDocs(vip: string, version: string, link: VipLink | string): Record<string, unknown>[] {
  if (usesNetworkDocuments(version)) {
    const name = typeof link === 'string' ? link : 'interface' in link ? link.interface : undefined;
    if (!name) throw new Error('Talos ≥ 1.12 Layer2VIPConfig needs a link name (a deviceSelector cannot be used)');
    return [{ apiVersion: 'v1alpha1', kind: 'Layer2VIPConfig', name: vip, link: name }];
  }
  const sel = typeof link === 'string' ? { interface: link } : link;
  return [{ machine: { network: { interfaces: [{ ...sel, vip: { ip: vip } }] } } }];
}

/** The patch that takes the VIP away again (strategy change on a running cluster). */
export function vipRemovalDocs(vip: string, version: string, link: VipLink | string): Record<string, unknown>[] {
  if (usesNetworkDocuments(version)) {
    // deleting a whole document: configpatcher testdata/patchdelete/strategic1.yaml
    return [{ apiVersion: 'v1alpha1', kind: 'Layer2VIPConfig', name: vip, $patch: 'delete' }];
  }
  const sel = typeof link === 'string' ? { interface: link } : link;
  return [{ machine: { network: { interfaces: [{ ...sel, vip: { $patch: 'delete' } }] } } }];
}

export function endpointPatchDoc(t: Topology, ref: StrategyRef): Record<string, unknown> {
  return { cluster: { controlPlane: { endpoint: apiEndpointUrl(t, ref) } } };
}

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

/** Which CNI the cluster must be built with for this strategy (Cilium BGP needs Cilium as the CNI). */
export function clusterCni(ref: StrategyRef): 'flannel' | 'cilium' {
  return ref.svc === 'cilium-bgp' ? 'cilium' : 'flannel';
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

// ---------------------------------------------------------------------------------------------
// the renderer

const names = (ns: Node[]) => ns.map((n) => n.name);

export function renderStrategyFiles(t: Topology, ref: StrategyRef): RenderedFile[] {
  const cps = t.nodes.filter((n) => n.role === 'controlplane');
  const all = t.nodes;
  const files: RenderedFile[] = [];
  const talos = (path: string, hosts: Node[], content: string) => files.push({ path, content, kind: 'talos-patch', hosts: names(hosts) });

  talos(
    TALOS_PATCH.endpoint,
    all,
    toYamlDocs([endpointPatchDoc(t, ref)], [
      `Kubernetes API endpoint for ${ref.id}: ${endpointIsVip(ref) ? `the VIP (${ref.cp})` : 'the external load balancer'}.`,
      'Nodes and kubectl use it; talosctl must NOT (pitfall 1: use node IPs as talosconfig endpoints).',
    ]),
  );
  talos(
    TALOS_PATCH.kubePrism,
    all,
    toYamlDocs([kubePrismPatchDoc(t)], [
      'KubePrism: a local API load balancer on every node (localhost:' + t.kubePrismPort + '), independent of the VIP/LB.',
      'Talos docs "KubePrism" (enabled by default since 1.6, port 7445); set explicitly.',
    ]),
  );
  talos(
    TALOS_PATCH.certSans,
    cps,
    toYamlDocs([certSansPatchDoc(t)], ['Extra SANs of the API server certificate: every address clients may use for the API.']),
  );
  if (t.allowSchedulingOnControlPlanes) talos(TALOS_PATCH.scheduling, cps, staticPatch('allow-scheduling-on-control-planes'));
  if (t.removeExcludeLbLabel) talos(TALOS_PATCH.excludeLbLabel, cps, staticPatch('remove-exclude-lb-label'));
  if (ref.cp === 'talos-vip') {
    const link = cps[0]?.interfaces[0]?.ifname ?? 'eth0';
    talos(
      TALOS_PATCH.vip,
      cps,
      toYamlDocs(vipPatchDocs(t.vip, t.talos.version, link), [
        `Talos native VIP ${t.vip} on ${link} of the control planes (Talos ${t.talos.version}:`,
        usesNetworkDocuments(t.talos.version)
          ? 'the Layer2VIPConfig document, Talos ≥ 1.12).'
          : 'machine.network.interfaces[].vip, Talos ≤ 1.11).',
        'Held by one control plane at a time, elected through etcd: it exists only once etcd is bootstrapped.',
      ]),
    );
  }
  if (clusterCni(ref) === 'cilium') {
    talos(
      TALOS_PATCH.cniNone,
      all,
      toYamlDocs([cniNonePatchDoc()], ['Cilium is the CNI (its BGP control plane announces the Services): Talos installs none.', 'Talos docs "Deploying Cilium CNI".']),
    );
  }
  talos(TALOS_PATCH.containerMode, all, staticPatch('container-mode'));

  const bgp = (ref.svc === 'cilium-bgp' ? t.timers.cilium : t.timers.bgp);
  const bfd = ref.options.bfd === undefined ? undefined : ref.options.bfd ? t.timers.bfd : null;
  for (const r of t.routers.filter((x) => x.bgp !== false)) {
    files.push({ path: routerFrrPath(r), kind: 'frr', hosts: [r.name], content: renderRouterFrr(r, t, { timers: bgp, ...(bfd !== undefined ? { bfd } : {}) }) });
  }
  files.push({ path: README_PATH, kind: 'other', content: readme(t, ref, files) });
  return files;
}

function readme(t: Topology, ref: StrategyRef, files: RenderedFile[]): string {
  const role = (f: RenderedFile) => ({ all: 'all nodes', controlplane: 'control planes', worker: 'workers' })[patchScope(t, f)];
  const flag = (f: RenderedFile) => ({ all: '--config-patch', controlplane: '--config-patch-control-plane', worker: '--config-patch-worker' })[patchScope(t, f)];
  const cps = t.nodes.filter((n) => n.role === 'controlplane').map((n) => `${n.name} ${n.ip}`);
  const ws = t.nodes.filter((n) => n.role === 'worker').map((n) => `${n.name} ${n.ip}`);
  const patches = files.filter((f) => f.kind === 'talos-patch');
  const L: string[] = [
    `Strategy ${ref.id} on topology ${t.name} (Talos ${t.talos.version}, Kubernetes ${t.talos.kubernetesVersion})`,
    '',
    `API endpoint: ${apiEndpointUrl(t, ref)}    control planes: ${cps.join(', ')}`,
    ws.length ? `workers: ${ws.join(', ')}` : 'workers: none',
    '',
    'Talos machine-config patches (strategic merge patches, one concern each):',
    ...patches.map((f) => `  ${f.path.padEnd(52)} ${f.path === TALOS_PATCH.containerMode ? 'all nodes, ONLY when Talos runs in a container (docker provider)' : role(f)}`),
    '',
    'Generate the configs (talosctl ≥ the Talos version above; use the node IPs, never the VIP, as talosctl endpoints):',
    `  talosctl gen config ${t.name} ${apiEndpointUrl(t, ref)} --talos-version ${t.talos.version} --kubernetes-version ${t.talos.kubernetesVersion} \\`,
    ...patches
      .filter((f) => f.path !== TALOS_PATCH.containerMode)
      .map((f) => `    ${flag(f)} @${f.path} \\`),
    '    --output-types controlplane,worker,talosconfig',
    `  talosctl --talosconfig talosconfig config endpoint ${t.nodes.filter((n) => n.role === 'controlplane').map((n) => n.ip).join(' ')}`,
    'On a running cluster apply a patch with: talosctl --talosconfig talosconfig patch machineconfig --nodes <ips> --patch @<file>',
    `Bootstrap etcd once, through a node IP: talosctl --talosconfig talosconfig bootstrap --nodes ${t.nodes.find((n) => n.role === 'controlplane')?.ip ?? '<cp ip>'}`,
    '',
  ];
  const frr = files.filter((f) => f.kind === 'frr');
  if (frr.length) {
    L.push('Routers (FRR 8.4, integrated config: copy to /etc/frr/frr.conf and enable bgpd (and bfdd) in /etc/frr/daemons):');
    for (const f of frr) L.push(`  ${f.path.padEnd(52)} on ${f.hosts?.join(', ')}`);
  } else {
    L.push('Routers: no BGP in this topology (plain IP forwarding; nothing to configure for FRR).');
  }
  const plain = t.routers.filter((r) => r.bgp === false).map((r) => r.name);
  if (frr.length && plain.length) L.push(`  (${plain.join(', ')}: no BGP, plain IP forwarding)`);
  L.push(
    '',
    `The mechanisms' own files (${ref.cp}, ${ref.svc}: manifests, HAProxy, speaker configs) sit beside these in the same directory.`,
    clusterCni(ref) === 'cilium' ? 'Cilium must be installed as the CNI before the Cilium BGP manifests (Talos docs "Deploying Cilium CNI").' : '',
  );
  return L.filter((l, i, a) => !(l === '' && a[i - 1] === '')).join('\n').trimEnd() + '\n';
}
