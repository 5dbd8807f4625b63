/**
 * The native VIP as a real Talos machine config carries it, for the Talos version of the lab:
 *  - Talos ≤ 1.11: `machine.network.interfaces[{interface, vip: {ip}}]`;
 *  - Talos ≥ 1.12: the legacy `machine.network.interfaces` is gone from the schema and the VIP is
 *    a `Layer2VIPConfig` document (`name` = the VIP, `link`) — config-v1.12.11.schema.json.
 * Rendered twice: the patch that adds it (`talos/…`, applied with the strategy) and the one that
 * takes it away again (`talos/unapply/…`, applied when the next strategy replaces this one on a
 * running cluster). The link is the topology's interface name; runtimes that name links otherwise
 * (qemu) re-link every patch through the Talos node kind.
 */
import type { Topology } from '../../model/types.js';
import type { RenderedFile } from '../types.js';
import { toYamlDocs, usesNetworkDocuments, type VipLink } from '../../providers/kinds/talos/machine-config.js';
import { controlPlanes } from '../../emulation/net.js';

export const VIP_PATCH = 'talos/native-vip.patch.yaml';
export const VIP_UNAPPLY_PATCH = 'talos/unapply/native-vip.patch.yaml';

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

export function vipFiles(t: Topology): RenderedFile[] {
  const cps = controlPlanes(t);
  const hosts = cps.map((n) => n.name);
  const link = cps[0]?.interfaces[0]?.ifname ?? 'eth0';
  const legacy = !usesNetworkDocuments(t.talos.version);
  return [
    {
      path: VIP_PATCH,
      kind: 'talos-patch',
      delivery: 'talos',
      hosts,
      content: toYamlDocs(vipPatchDocs(t.vip, t.talos.version, link), [
        `Talos native VIP ${t.vip} on ${link} of the control planes (Talos ${t.talos.version}:`,
        legacy ? 'machine.network.interfaces[].vip, Talos ≤ 1.11).' : 'the Layer2VIPConfig document, Talos ≥ 1.12).',
        'Held by one control plane at a time, elected through etcd: it exists only once etcd is bootstrapped.',
      ]),
    },
    {
      path: VIP_UNAPPLY_PATCH,
      kind: 'talos-patch',
      delivery: 'talos',
      hosts,
      content: toYamlDocs(vipRemovalDocs(t.vip, t.talos.version, link), [`Takes the native VIP ${t.vip} away again when another API mechanism replaces it on a running cluster.`]),
    },
  ];
}
