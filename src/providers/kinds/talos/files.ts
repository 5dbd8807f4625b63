/**
 * The whole-cluster files a REAL Talos cluster needs for one strategy, apart from what the two
 * mechanisms render themselves: Talos machine-config patches (one per concern), the routers'
 * frr.conf, and a README.txt saying what to apply where. Pure: topology + strategy in, files out
 * (the static patches are read from the repo's `patches/talos/`, nothing else).
 */
import type { Node, Router, StrategyRef, Topology } from '../../../model/types.js';
import type { RenderedFile, Strategy } from '../../../strategies/types.js';
import { apiEndpointUrl, clusterCni, composeStrategy, renderStrategy, routerConfs } from '../../../strategies/compose.js';
import { certSansPatchDoc, cniNonePatchDoc, endpointPatchDoc, kubePrismPatchDoc, patchScope, staticPatch, toYamlDocs } from './machine-config.js';
import { echoWorkloadFiles, isWorkloadFile } from './workload.js';

/** Paths (inside a strategy's render dir) of the Talos patches this module writes, by concern. */
export const TALOS_PATCH = {
  endpoint: 'talos/cluster-endpoint.patch.yaml',
  kubePrism: 'talos/kubeprism.patch.yaml',
  certSans: 'talos/api-cert-sans.patch.yaml',
  scheduling: 'talos/allow-scheduling-on-control-planes.patch.yaml',
  excludeLbLabel: 'talos/remove-exclude-lb-label.patch.yaml',
  cniNone: 'talos/cni-none.patch.yaml',
  containerMode: 'talos/docker/container-mode.patch.yaml',
} as const;

/** Patches whose content changes from one strategy to the next on the same cluster (providers re-apply these at `apply`). */
export const STRATEGY_SPECIFIC_PATCHES: readonly string[] = [TALOS_PATCH.endpoint];

export const README_PATH = 'README.txt';

/** `router/<name>/frr.conf` */
export function routerFrrPath(r: Router): string {
  return `router/${r.name}/frr.conf`;
}

// ---------------------------------------------------------------------------------------------
// the renderer

const names = (ns: Node[]) => ns.map((n) => n.name);

/**
 * `roleFiles` are the strategy's own rendered files (renderStrategy): the README lists their
 * Talos patches with the rest.
 */
export function renderTalosFiles(t: Topology, s: Strategy, roleFiles: RenderedFile[] = []): RenderedFile[] {
  const ref = s.ref;
  const cps = t.nodes.filter((n) => n.role === 'controlplane');
  const all = t.nodes;
  const files: RenderedFile[] = [];
  const talos = (path: string, hosts: Node[], content: string) => files.push({ path, content, kind: 'talos-patch', delivery: 'talos', hosts: names(hosts) });

  talos(
    TALOS_PATCH.endpoint,
    all,
    toYamlDocs([endpointPatchDoc(apiEndpointUrl(t, s.cp))], [
      `Kubernetes API endpoint for ${ref.id}: ${s.cp.traits.endpoint === 'vip' ? `the VIP (${s.cp.title})` : 'the external load balancer'}.`,
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
  if (clusterCni(s) === 'cilium') {
    talos(
      TALOS_PATCH.cniNone,
      all,
      toYamlDocs([cniNonePatchDoc()], ['Cilium is the CNI (its BGP control plane announces the Services): Talos installs none.', 'Talos docs "Deploying Cilium CNI".']),
    );
  }
  talos(TALOS_PATCH.containerMode, all, staticPatch('container-mode'));

  const confs = routerConfs(t, s);
  for (const r of t.routers.filter((x) => x.bgp !== false)) {
    files.push({ path: routerFrrPath(r), kind: 'frr', delivery: 'router', hosts: [r.name], content: confs[r.name]! });
  }
  // the echo Deployment and the Services the client measures (a real cluster has no emulated echo pods)
  files.push(...echoWorkloadFiles(t, s));
  files.push({ path: README_PATH, kind: 'other', delivery: 'doc', content: readme(t, s, [...roleFiles, ...files]) });
  return files;
}

function readme(t: Topology, s: Strategy, files: RenderedFile[]): string {
  const ref = s.ref;
  const role = (f: RenderedFile) => ({ all: 'all nodes', controlplane: 'control planes', worker: 'workers' })[patchScope(t, f)];
  const flag = (f: RenderedFile) => ({ all: '--config-patch', controlplane: '--config-patch-control-plane', worker: '--config-patch-worker' })[patchScope(t, f)];
  const cps = t.nodes.filter((n) => n.role === 'controlplane').map((n) => `${n.name} ${n.ip}`);
  const ws = t.nodes.filter((n) => n.role === 'worker').map((n) => `${n.name} ${n.ip}`);
  const patches = files.filter((f) => f.kind === 'talos-patch' && !f.path.includes('/unapply/'));
  const unapply = files.filter((f) => f.kind === 'talos-patch' && f.path.includes('/unapply/'));
  const L: string[] = [
    `Strategy ${ref.id} on topology ${t.name} (Talos ${t.talos.version}, Kubernetes ${t.talos.kubernetesVersion})`,
    '',
    `API endpoint: ${apiEndpointUrl(t, s.cp)}    control planes: ${cps.join(', ')}`,
    ws.length ? `workers: ${ws.join(', ')}` : 'workers: none',
    '',
    'Talos machine-config patches (strategic merge patches, one concern each):',
    ...patches.map((f) => `  ${f.path.padEnd(52)} ${f.path === TALOS_PATCH.containerMode ? 'all nodes, ONLY when Talos runs in a container (docker provider)' : role(f)}`),
    '',
    'Generate the configs (talosctl ≥ the Talos version above; use the node IPs, never the VIP, as talosctl endpoints):',
    `  talosctl gen config ${t.name} ${apiEndpointUrl(t, s.cp)} --talos-version ${t.talos.version} --kubernetes-version ${t.talos.kubernetesVersion} \\`,
    ...patches
      .filter((f) => f.path !== TALOS_PATCH.containerMode)
      .map((f) => `    ${flag(f)} @${f.path} \\`),
    '    --output-types controlplane,worker,talosconfig',
    `  talosctl --talosconfig talosconfig config endpoint ${t.nodes.filter((n) => n.role === 'controlplane').map((n) => n.ip).join(' ')}`,
    'On a running cluster apply a patch with: talosctl --talosconfig talosconfig patch machineconfig --nodes <ips> --patch @<file>',
    ...(unapply.length ? ['When another strategy replaces this one on a running cluster, apply these the same way:', ...unapply.map((f) => `  ${f.path.padEnd(52)} ${role(f)}`)] : []),
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
  const own = files.filter((f) => f.kind !== 'talos-patch' && f.kind !== 'frr' && f.path !== README_PATH && !isWorkloadFile(f));
  const workload = files.filter(isWorkloadFile);
  const how: Record<string, string> = { kubectl: 'kubectl apply -f (after the cluster is up)', 'lb-host': 'on the load-balancer box', talos: 'through the Talos machine config', router: 'on the routers', doc: 'to read' };
  if (own.length) {
    L.push('', `The mechanisms' own files (${s.cp.title}, ${s.svc.title}):`);
    for (const f of own) L.push(`  ${f.path.padEnd(52)} ${how[f.delivery ?? 'kubectl']}`);
  }
  if (workload.length) {
    L.push('', 'The echo workload and the Services the client measures (applied after the mechanisms’ files):');
    for (const f of workload) L.push(`  ${f.path.padEnd(52)} ${how[f.delivery ?? 'kubectl']}`);
  }
  L.push(
    '',
    clusterCni(s) === 'cilium' ? 'Cilium must be installed as the CNI before the Cilium manifests (Talos docs "Deploying Cilium CNI").' : '',
  );
  return L.filter((l, i, a) => !(l === '' && a[i - 1] === '')).join('\n').trimEnd() + '\n';
}

/** Every file a real Talos cluster gets for a strategy: the roles' own and the Talos kind's (sorted by path). */
export function talosStrategyFiles(t: Topology, ref: StrategyRef): RenderedFile[] {
  const s = composeStrategy(ref);
  const own = renderStrategy(t, s).files;
  return [...own, ...renderTalosFiles(t, s, own)];
}
