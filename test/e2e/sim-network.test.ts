/**
 * The sim network on the real kernel (root): every host of the smb and enterprise labs gets its
 * namespace, segments are bridges in the switch namespace, client traffic crosses the router, the
 * root namespace is untouched, and teardown leaves nothing behind.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { loadLab, REPO_ROOT } from '../../src/model/load.js';
import { buildNetwork, destroyNetwork, renderNetworkPlan, type NetworkPlan } from '../../src/providers/runtimes/netns/network.js';
import { LabState } from '../../src/state/state.js';
import { run } from '../../src/util/proc.js';
import { useTempDirs } from '../helpers/tmp.js';

const mkTemp = useTempDirs();
const plans: NetworkPlan[] = [];
afterAll(async () => {
  for (const p of plans) await destroyNetwork(p);
});

const rootLinks = async () => (await run('ip', ['-o', 'link', 'show'])).stdout.split('\n').map((l) => l.split(':')[1]?.trim()).sort();
const netns = async () => (await run('ip', ['netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0]).filter(Boolean);
const ping = (ns: string, ip: string) => run('ping', ['-c', '1', '-W', '2', ip], { ns, reject: false }).then((r) => r.exitCode);

describe('sim network', () => {
  it('smb: hosts reach each other across the router; the root namespace is untouched; nothing is left', async () => {
    expect(process.getuid?.()).toBe(0); // the e2e project needs root, as CI has
    const lab = loadLab('smb', { repoRoot: REPO_ROOT });
    const prefix = `tlab-nettest-${process.pid}`;
    const plan = renderNetworkPlan(lab.topology, prefix);
    plans.push(plan);
    const state = LabState.create({ id: 'nettest', prefix, lab: 'smb', labFile: lab.file, provider: 'sim', createdAt: new Date().toISOString(), ownerPid: process.pid, status: 'starting' }, mkTemp('netstate-'));
    const before = await rootLinks();

    await buildNetwork(plan, state);

    expect(state.resources().filter((r) => r.kind === 'netns').map((r) => r.name).sort()).toEqual([...plan.namespaces].sort());
    const t = lab.topology;
    const client = plan.hostNs[t.clients[0]!.name]!;
    // client → router → every node (routed: the client is on the uplink segment)
    for (const n of t.nodes) expect(await ping(client, n.ip), `client1 → ${n.name}`).toBe(0);
    // node ↔ load balancer on the LAN
    expect(await ping(plan.hostNs[t.nodes[0]!.name]!, t.loadBalancer!.ip)).toBe(0);
    // the router forwards with L4 multipath hashing
    const rtr = plan.hostNs[t.routers[0]!.name]!;
    expect((await run('cat', ['/proc/sys/net/ipv4/fib_multipath_hash_policy'], { ns: rtr })).stdout.trim()).toBe('1');
    expect(await rootLinks()).toEqual(before);

    await destroyNetwork(plan);
    expect((await netns()).filter((n) => n.startsWith(prefix))).toEqual([]);
    expect(await rootLinks()).toEqual(before);
  });

  it('enterprise: ~40 hosts in racks behind ToRs come up and go away', async () => {
    const lab = loadLab('enterprise', { repoRoot: REPO_ROOT });
    const prefix = `tlab-entnet-${process.pid}`;
    const plan = renderNetworkPlan(lab.topology, prefix);
    plans.push(plan);
    const state = LabState.create({ id: 'entnet', prefix, lab: 'enterprise', labFile: lab.file, provider: 'sim', createdAt: new Date().toISOString(), ownerPid: process.pid, status: 'starting' }, mkTemp('entstate-'));
    await buildNetwork(plan, state);
    const names = await netns();
    expect(plan.namespaces.every((ns) => names.includes(ns))).toBe(true);
    expect(plan.namespaces.length).toBe(lab.topology.nodes.length + lab.topology.routers.length + lab.topology.clients.length + (lab.topology.loadBalancer ? 1 : 0) + 1);
    // within one rack, a node reaches its ToR gateway
    const n = lab.topology.nodes[0]!;
    expect(await ping(plan.hostNs[n.name]!, n.gateway!)).toBe(0);
    await destroyNetwork(plan);
    expect((await netns()).filter((x) => x.startsWith(prefix))).toEqual([]);
  });
});
