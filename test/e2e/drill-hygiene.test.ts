/**
 * Lab hygiene between drills (root, real sim lab): a Service crash drill (the victim a node with a
 * pod, not the address holder) leaves connection tracking entries behind — SYNs the ingress
 * node's kube-proxy DNATed to the dead node's pod stay
 * in SYN_SENT for nf_conntrack_tcp_timeout_syn_sent (120 s), far beyond the drill — and the next
 * drill must start without them: measureDrill flushes every host's conntrack and neighbour cache
 * (RunningLab.flushTransientState) before its pre-window. Checked at the moment the next drill's
 * traffic starts, through the run's own measureDrill.
 * Namespaces tlx-hyg<pid>-*, removed in afterAll.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadLab, REPO_ROOT } from '../../src/model/load.js';
import { simProvider } from '../../src/providers/kinds/emulated/provider.js';
import type { EmulatedLab } from '../../src/providers/kinds/emulated/lab.js';
import type { RunningLab } from '../../src/providers/types.js';
import type { Lab } from '../../src/model/types.js';
import { LabState } from '../../src/state/state.js';
import { composeStrategy, renderStrategy } from '../../src/strategies/compose.js';
import { planRuns } from '../../src/orchestrator/plan.js';
import { measureDrill } from '../../src/orchestrator/measure.js';
import { seeded } from '../../src/orchestrator/ids.js';
import { allHosts } from '../../src/providers/runtimes/netns/network.js';
import { useTempDirs } from '../helpers/tmp.js';

const mkTemp = useTempDirs();
let lab: Lab;
let l: EmulatedLab | undefined;

afterAll(async () => {
  await l?.down().catch(() => undefined);
});

/** conntrack entries, on every host, of client flows whose reply comes from ip:port (a DNAT to that endpoint) */
async function towards(running: RunningLab, ip: string, port: number): Promise<string[]> {
  const client = lab.topology.clients[0]!.interfaces[0]!.ip;
  const out: string[] = [];
  for (const h of allHosts(lab.topology)) {
    const r = await running.exec(h.name, 'conntrack', ['-L']);
    for (const line of r.stdout.split('\n')) {
      // original tuple first (src=client …), then the reply tuple (src=<endpoint> … sport=<targetPort>)
      const srcs = [...line.matchAll(/src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+)/g)];
      if (srcs.length >= 2 && srcs[0]![1] === client && srcs[1]![1] === ip && Number(srcs[1]![3]) === port) out.push(`${h.name}: ${line.trim()}`);
    }
  }
  return out;
}

describe('drill hygiene (sim, smb)', () => {
  beforeAll(async () => {
    expect(process.getuid?.()).toBe(0);
    lab = loadLab('test/fixtures/labs/ci-smb.yaml', { repoRoot: REPO_ROOT });
    await simProvider.check(lab);
    const prefix = `tlx-hyg${process.pid}`;
    const state = LabState.create({ id: `hyg${process.pid}`, prefix, lab: lab.name, labFile: lab.file, provider: 'sim', createdAt: new Date().toISOString(), ownerPid: process.pid, status: 'starting' }, mkTemp('hygstate-'));
    l = (await simProvider.up(lab, { id: state.id, prefix, state })) as EmulatedLab;
    const ref = lab.strategies[0]!;
    await l.apply(ref, renderStrategy(lab.topology, composeStrategy(ref)));
  });

  it('after a Service crash drill and its restore, the next drill starts with no conntrack entry towards the dead endpoint', async () => {
    const running = l!;
    const ref = lab.strategies[0]!;
    const { runs } = planRuns(lab);
    const crash = runs.find((r) => r.strategy === ref.id && r.target === 'service' && r.drill === 'crash');
    const next = runs.find((r) => r.strategy === ref.id && r.target === 'service' && r.drill === 'baseline');
    expect(crash && next).toBeTruthy();
    // the victim: a node with a pod that does NOT hold the Service address, so the holder's
    // kube-proxy keeps DNATing part of the client's SYNs to the dead pod until its endpoint goes
    const holder = (await running.holders('service'))[0];
    const other = lab.topology.nodes.find((n) => n.runsWorkloads && n.name !== holder);
    expect(holder && other, `holder ${holder}`).toBeTruthy();
    const plan = { ...crash!, spec: { ...crash!.spec, victim: { node: other!.name } } };
    const log: string[] = [];
    const m = await measureDrill({ lab: running, plan, random: seeded(1), log: (x) => log.push(x) });
    const victim = lab.topology.nodes.find((n) => n.name === m.record.victim);
    expect(victim?.name).toBe(other!.name);
    const port = crash!.service?.targetPort ?? lab.topology.services[0]!.targetPort;
    // the premise: the drill left client flows DNATed to the pod of the node that was dead
    const left = await towards(running, victim!.ip, port);
    expect(left.length, `entries towards ${victim!.ip}:${port} after the crash drill:\n${log.join('\n')}`).toBeGreaterThan(0);
    // the next drill, watched at the moment its traffic starts
    let atStart: string[] | null = null;
    const spy = new Proxy(running, {
      get(target, prop) {
        if (prop === 'call') {
          return async (host: string, method: string, params?: unknown, timeoutMs?: number) => {
            if (method === 'traffic.start' && atStart === null) atStart = await towards(target, victim!.ip, port);
            return target.call(host, method, params, timeoutMs);
          };
        }
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    }) as RunningLab;
    const after = await measureDrill({ lab: spy, plan: next!, random: seeded(2), log: () => undefined });
    expect(atStart).not.toBeNull();
    expect(atStart).toEqual([]);
    expect(after.record.outageMs).toBeNull();
  });
});
