/**
 * The sim provider (the default): Linux network namespaces, real kernel networking, real FRR,
 * HAProxy and etcd from Debian packages, and the project's own agents emulating Talos VIP,
 * kube-vip, MetalLB, KubePrism and the API server (see ./lab.ts). Needs root and
 * the Debian packages; `check` says exactly which command fixes what is missing (exit 3).
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Lab } from '../../../model/types.js';
import type { PlanStep, Provider, Support } from '../../types.js';
import { PrerequisiteError } from '../../../util/errors.js';
import { renderRouterFrr } from '../../../render/frr.js';
import { renderNetworkPlan } from '../../runtimes/netns/network.js';
import { EmulatedLab } from './lab.js';
import { NetnsRuntime } from '../../runtimes/netns/runtime.js';
import { MECHANISMS } from '../../../strategies/registry.js';

/** binary → the Debian package that has it */
const NEEDS: [string, string][] = [
  ['/usr/sbin/ip', 'iproute2'],
  ['/usr/sbin/nft', 'nftables'],
  ['/usr/lib/frr/zebra', 'frr'],
  ['/usr/lib/frr/bgpd', 'frr'],
  ['/usr/bin/vtysh', 'frr'],
  ['/usr/bin/etcd', 'etcd-server'],
  ['/usr/bin/etcdctl', 'etcd-client'],
  ['/usr/sbin/arping', 'iputils-arping'],
  ['/usr/bin/tcpdump', 'tcpdump'],
  ['/usr/bin/openssl', 'openssl'],
];

function which(bin: string): boolean {
  const name = bin.split('/').pop()!;
  return existsSync(bin) || (process.env.PATH ?? '').split(':').some((d) => existsSync(join(d, name)));
}

/** the Debian packages missing for the lab: the emulated nodes' own needs and those of the lab's mechanisms (HAProxy…) */
export function missingPackages(lab?: Lab): string[] {
  const needs = [...NEEDS];
  for (const ref of lab?.strategies ?? []) {
    for (const id of [ref.cp, ref.svc]) for (const n of MECHANISMS.get(id)?.hostNeeds ?? []) needs.push([n.bin, n.debian]);
  }
  return [...new Set(needs.filter(([bin]) => !which(bin)).map(([, pkg]) => pkg))];
}

export const simProvider: Provider = {
  name: 'sim',
  emulated: true,
  nodes: 'emulated',
  // every instance lives in its own namespaces: the same addresses never meet
  maxInstances: 64,

  async check(lab: Lab): Promise<void> {
    const missing = missingPackages(lab);
    if (process.getuid?.() !== 0) {
      throw new PrerequisiteError(
        'the sim provider builds network namespaces: it needs root',
        `sudo npm run lab -- …   (or: sudo make lab)${missing.length ? `; and first: sudo apt-get install -y ${missing.join(' ')}` : ''}`,
      );
    }
    if (missing.length) throw new PrerequisiteError(`missing Debian packages for the sim provider: ${missing.join(', ')}`, `apt-get update && apt-get install -y --no-install-recommends ${missing.join(' ')}`);
  },

  supports(): Support {
    // what the sim cannot run is rejected by the model (BGP without a BGP router, L2 across racks…)
    return { supported: true };
  },

  async up(lab, ctx) {
    return EmulatedLab.up(lab, ctx, new NetnsRuntime(lab.topology, ctx), 'sim');
  },

  async plan(lab, { prefix, renderDir }): Promise<PlanStep[]> {
    const t = lab.topology;
    const net = renderNetworkPlan(t, prefix);
    const steps: PlanStep[] = [{ what: `create ${net.namespaces.length} network namespaces (${net.switchNs} holds one bridge per segment: ${t.segments.map((s) => s.name).join(', ')})`, command: net.namespaces.map((n) => `ip netns add ${n}`).join(' && ') }];
    for (const [h, lines] of Object.entries(net.hostBatches)) steps.push({ what: `${h}: links, addresses, routes`, command: `ip -n ${net.hostNs[h]} -batch - <<< '${lines.join('; ')}'` });
    for (const r of t.routers.filter((x) => x.bgp !== false)) {
      const conf = renderRouterFrr(r, t);
      if (renderDir) {
        mkdirSync(join(renderDir, 'sim'), { recursive: true });
        writeFileSync(join(renderDir, 'sim', `frr-${r.name}.conf`), conf);
      }
      steps.push({ what: `${r.name}: FRR (zebra, bgpd, staticd) as instance ${net.hostNs[r.name]}`, command: `ip netns exec ${net.hostNs[r.name]} /usr/lib/frr/bgpd -N ${net.hostNs[r.name]} -f /var/run/frr/${net.hostNs[r.name]}/frr.conf` });
    }
    const cps = t.nodes.filter((n) => n.role === 'controlplane');
    steps.push({ what: `etcd cluster on ${cps.map((n) => n.name).join(', ')} (heartbeat ${t.timers.etcd.heartbeatMs} ms, election ${t.timers.etcd.electionMs} ms)` });
    steps.push({ what: `lab CA and API server certificates; a traffic agent on ${t.clients.map((c) => c.name).join(', ')}` });
    for (const s of lab.strategies) steps.push({ what: `strategy ${s.id}: node speakers, HAProxy, one agent per node (emulated components), then the drills: ${lab.drills.map((d) => d.kind).join(', ')}` });
    return steps;
  },
};
