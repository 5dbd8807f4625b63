import { describe, expect, it } from 'vitest';
import { ResilientEcmp, RESILIENT_TABLE, SHIM_NEXTHOP_IDS } from '../../src/providers/gear/ecmp.js';
import type { RunResult } from '../../src/util/proc.js';

/** a router whose BGP route for one prefix has the given gateways; records what the shim writes */
function fakeRouter() {
  const state = { gateways: [] as string[], batches: [] as string[][], commands: [] as string[] };
  const ok = (stdout = ''): RunResult => ({ command: 'ip', stdout, stderr: '', exitCode: 0, durationMs: 0 });
  const exec = async (cmd: string, args: string[], opts?: { input?: string }): Promise<RunResult> => {
    state.commands.push([cmd, ...args].join(' '));
    if (args[0] === '-batch') {
      state.batches.push((opts?.input ?? '').trim().split('\n'));
      return ok();
    }
    if (args.join(' ').startsWith('-j -4 route show')) {
      // zebra's route: one multipath route over the gateways, as `ip -j route` prints it
      return ok(JSON.stringify(state.gateways.length ? [{ dst: args[4], protocol: 'bgp', nexthops: state.gateways.map((g) => ({ gateway: g })) }] : []));
    }
    return ok();
  };
  return { state, shim: new ResilientEcmp(exec, 128, 120, () => 'eth0') };
}

const idsIn = (lines: string[]) => lines.flatMap((l) => [...l.matchAll(/\bid (\d+)/g)].map((m) => Number(m[1])));

describe('resilient ECMP shim', () => {
  it('uses nexthop ids no FRR 8.4 zebra or routing daemon allocates, and one group per prefix', async () => {
    const { state, shim } = fakeRouter();
    state.gateways = ['10.0.0.11', '10.0.0.12', '10.0.0.13'];
    await shim.sync('10.0.0.200/32');
    const first = state.batches[0]!;
    expect(first[0]).toBe(`rule add pref ${RESILIENT_TABLE} lookup ${RESILIENT_TABLE}`);
    for (const id of idsIn(first)) {
      // zebra's own ids stay below ZEBRA_NHG_PROTO_LOWER and the daemons' at or below 250,000,000
      expect(id).toBeGreaterThan(250_000_000);
      expect(id).toBeLessThan(2 ** 28);
    }
    const group = first.find((l) => l.includes('type resilient'))!;
    expect(group).toMatch(/group \d+\/\d+\/\d+ type resilient buckets 128 idle_timer 120$/);
    expect(first.at(-1)).toMatch(new RegExp(`^route replace 10\\.0\\.0\\.200/32 nhid ${SHIM_NEXTHOP_IDS.first + 3} table ${RESILIENT_TABLE}$`));
  });

  it('a leaving member is a replace of the same group (surviving buckets stay), nothing when nothing changed', async () => {
    const { state, shim } = fakeRouter();
    state.gateways = ['10.0.0.11', '10.0.0.12', '10.0.0.13'];
    await shim.sync('10.0.0.200/32');
    const groupId = idsIn(state.batches[0]!.filter((l) => l.includes('type resilient')))[0]!;
    const memberIds = idsIn(state.batches[0]!.filter((l) => l.includes(' via ')));
    await shim.sync('10.0.0.200/32');
    expect(state.batches).toHaveLength(1); // our own update echoing back changes nothing
    state.gateways = ['10.0.0.11', '10.0.0.13'];
    await shim.syncAll();
    const leave = state.batches[1]!;
    expect(leave).toEqual([`nexthop replace id ${groupId} group ${memberIds[0]}/${memberIds[2]} type resilient buckets 128 idle_timer 120`]);
    // the member comes back under its old id, in the same group
    state.gateways = ['10.0.0.11', '10.0.0.12', '10.0.0.13'];
    await shim.sync('10.0.0.200/32');
    expect(state.batches[2]).toEqual([`nexthop replace id ${groupId} group ${memberIds.join('/')} type resilient buckets 128 idle_timer 120`]);
  });

  it('the route and its group go when zebra’s route goes', async () => {
    const { state, shim } = fakeRouter();
    state.gateways = ['10.0.0.11'];
    await shim.sync('10.0.0.200/32');
    const groupId = idsIn(state.batches[0]!.filter((l) => l.includes('type resilient')))[0]!;
    state.gateways = [];
    await shim.sync('10.0.0.200/32');
    expect(state.commands.slice(-2)).toEqual([`ip route del 10.0.0.200/32 table ${RESILIENT_TABLE}`, `ip nexthop del id ${groupId}`]);
  });
});
