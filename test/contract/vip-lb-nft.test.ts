/**
 * kube-vip lb_enable as the sim does it (IPVS round robin → nftables `numgen inc` DNAT +
 * masquerade, ../../src/strategies/kube-vip/agent.ts lbRuleset), checked with the real kernel in
 * throwaway `tlx-kvlb-*` namespaces (needs root, like every namespace test): a client behind the
 * VIP holder, three API-server stand-ins (the holder itself + two peers) that answer with their
 * name and the source address they see.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lbRuleset } from '../../src/strategies/kube-vip/agent.js';
import { run, spawnDaemon, stopProcess, sleep, type Daemon } from '../../src/util/proc.js';
import { useTempDirs } from '../helpers/tmp.js';
import { join } from 'node:path';

const mkTemp = useTempDirs();
const P = `tlx-kvlb${process.pid % 10000}`;
const SW = `${P}-sw`;
const VIP = '10.98.0.10';
const HOSTS = { c: '10.98.0.100', h: '10.98.0.11', b2: '10.98.0.12', b3: '10.98.0.13' } as const;
type H = keyof typeof HOSTS;
const ns = (h: H) => `${P}-${h}`;
const servers: Daemon[] = [];

const SERVER = `require('net').createServer((s) => s.end(JSON.stringify({ node: process.env.NODE_NAME, peer: s.remoteAddress }))).listen(6443, '0.0.0.0')`;
const CLIENT = (n: number) => `
const net = require('net');
(async () => {
  const out = [];
  for (let i = 0; i < ${n}; i++) {
    out.push(await new Promise((resolve, reject) => {
      const s = net.connect({ host: '${VIP}', port: 6443 });
      let buf = '';
      s.setTimeout(2000, () => { s.destroy(); reject(new Error('timeout')); });
      s.on('data', (d) => (buf += d)).on('end', () => resolve(JSON.parse(buf))).on('error', reject);
    }));
  }
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e.message); process.exit(1); });`;

async function clientRound(n: number): Promise<{ node: string; peer: string }[]> {
  const r = await run('node', ['-e', CLIENT(n)], { ns: ns('c'), timeoutMs: 20_000 });
  return JSON.parse(r.stdout) as { node: string; peer: string }[];
}

const count = (xs: { node: string }[]) => xs.reduce<Record<string, number>>((m, x) => ((m[x.node] = (m[x.node] ?? 0) + 1), m), {});

beforeAll(async () => {
  await run('ip', ['netns', 'add', SW]);
  await run('ip', ['-n', SW, 'link', 'add', 'br0', 'type', 'bridge']);
  await run('ip', ['-n', SW, 'link', 'set', 'br0', 'up']);
  for (const h of Object.keys(HOSTS) as H[]) {
    await run('ip', ['netns', 'add', ns(h)]);
    await run('ip', ['-n', SW, 'link', 'add', `v-${h}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns(h)]);
    await run('ip', ['-n', SW, 'link', 'set', `v-${h}`, 'master', 'br0', 'up']);
    await run('ip', ['-n', ns(h), 'addr', 'add', `${HOSTS[h]}/24`, 'dev', 'eth0']);
    await run('ip', ['-n', ns(h), 'link', 'set', 'eth0', 'up']);
    await run('ip', ['-n', ns(h), 'link', 'set', 'lo', 'up']);
  }
  // the holder: VIP on its link, forwarding on (kube-vip sets net.ipv4.ip_forward=1 in masquerade mode)
  await run('ip', ['-n', ns('h'), 'addr', 'add', `${VIP}/32`, 'dev', 'eth0']);
  await run('sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1'], { ns: ns('h') });
  const dir = mkTemp('tlx-kvlb-');
  for (const h of ['h', 'b2', 'b3'] as const) {
    servers.push(spawnDaemon({ name: `kvlb/${h}`, cmd: 'env', args: [`NODE_NAME=${h}`, 'node', '-e', SERVER], ns: ns(h), logFile: join(dir, `${h}.log`) }));
  }
  for (const h of ['h', 'b2', 'b3'] as const) {
    for (let i = 0; ; i++) {
      const r = await run('ss', ['-ltnH', 'sport = :6443'], { ns: ns(h), reject: false });
      if (r.stdout.includes('6443')) break;
      if (i > 100) throw new Error(`server on ${h} did not listen`);
      await sleep(50);
    }
  }
}, 60_000);

afterAll(async () => {
  for (const d of servers) await stopProcess(d.pid);
  for (const n of [...(Object.keys(HOSTS) as H[]).map(ns), SW]) await run('ip', ['netns', 'del', n], { reject: false });
});

describe('lb_enable emulation: nftables round robin in the VIP holder', () => {
  it('without the table the holder answers alone (no load balancer yet)', async () => {
    const r = await clientRound(6);
    expect(count(r)).toEqual({ h: 6 });
    expect(r.every((x) => x.peer === HOSTS.c)).toBe(true);
  });

  it('spreads new connections evenly over every backend; remote backends see the holder (masquerade), the holder sees the client', async () => {
    await run('nft', ['-f', '-'], { ns: ns('h'), input: lbRuleset(VIP, 6443, [HOSTS.h, HOSTS.b2, HOSTS.b3]) });
    const r = await clientRound(30);
    expect(count(r)).toEqual({ h: 10, b2: 10, b3: 10 });
    for (const x of r) expect(x.peer).toBe(x.node === 'h' ? HOSTS.c : HOSTS.h);
  });

  it('a rewritten backend set takes effect atomically for new connections', async () => {
    await run('nft', ['-f', '-'], { ns: ns('h'), input: lbRuleset(VIP, 6443, [HOSTS.h, HOSTS.b2]) });
    expect(count(await clientRound(20))).toEqual({ h: 10, b2: 10 });
    await run('nft', ['-f', '-'], { ns: ns('h'), input: lbRuleset(VIP, 6443, []) });
    const r = await run('nft', ['list', 'tables'], { ns: ns('h') });
    expect(r.stdout).not.toContain('kube-vip');
    expect(count(await clientRound(4))).toEqual({ h: 4 });
  });
});
