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

/**
 * The patch that takes the VIP away again (strategy change on a running cluster), in a form Talos
 * accepts (siderolabs/talos pkg/machinery/config/configloader/internal/decoder/delete.go, the same
 * at v1.11.6, v1.12.11 and v1.13.9):
 *  - Talos ≥ 1.12: delete the whole `Layer2VIPConfig` document by apiVersion/kind/name
 *    (configpatcher testdata/patchdelete/strategic1.yaml deletes a named document);
 *  - Talos ≤ 1.11: `interfaces[{interface: eth0, vip: {$patch: delete}}]` is REFUSED — a key
 *    inside a list item cannot be deleted ("cannot delete an inner key in
 *    'machine.network.interfaces.[0].vip'", `ensureNoSeqInChain`). The list item itself can go:
 *    `{interface: eth0, $patch: delete}` selects the entry whose `interface` equals "eth0"
 *    (`makeSequenceSelector`: the first key of the item besides `$patch`, compared as a string),
 *    and deletes run before the merge of the same patch (container.go `Documents()`), so `keep` —
 *    whatever else the link's entry carries besides the VIP (routes, addresses) — is merged back
 *    in the same patch. Without `keep` the entry goes entirely, right when the VIP patch created it.
 *    A device-selector link has no delete form at all (a mapping compares as ""): runtimes that
 *    name links that way replace the whole list (src/providers/kinds/talos/machine-config.ts
 *    `completeInterfaceDeletes`).
 */
export function vipRemovalDocs(vip: string, version: string, link: VipLink | string, keep: Record<string, unknown> = {}): Record<string, unknown>[] {
  if (usesNetworkDocuments(version)) {
    return [{ apiVersion: 'v1alpha1', kind: 'Layer2VIPConfig', name: vip, $patch: 'delete' }];
  }
  const name = typeof link === 'string' ? link : 'interface' in link ? link.interface : undefined;
  if (!name) throw new Error(`Talos ≤ 1.11 cannot delete a machine.network.interfaces entry chosen by ${JSON.stringify(link)}: only an interface name selects one`);
  const rest = Object.fromEntries(Object.entries(keep).filter(([k]) => k !== 'interface' && k !== 'vip'));
  return [{ machine: { network: { interfaces: [{ interface: name, $patch: 'delete' }, ...(Object.keys(rest).length ? [{ interface: name, ...rest }] : [])] } } }];
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
      content: toYamlDocs(vipRemovalDocs(t.vip, t.talos.version, link), [
        `Takes the native VIP ${t.vip} away again when another API mechanism replaces it on a running cluster.`,
        ...(legacy ? [`Talos ≤ 1.11: the whole ${link} entry is deleted (a key inside a list item cannot be); what else the node's config has on ${link} must be merged back in the same patch.`] : []),
      ]),
    },
  ];
}
