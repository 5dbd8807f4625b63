/**
 * Upper bounds on every number a lab or topology file gives (src/model/schema.ts, and the node and
 * rack caps load.ts applies to the raw topology): one case per kind of bound, each a LabInputError
 * (exit 2) whose issue names the file, the path inside it and what was expected. Each case also
 * checks the value just at the bound is accepted where the file is otherwise valid, so the bound
 * is where the message says.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadLab, REPO_ROOT } from '../../src/model/load.js';
import { LabInputError } from '../../src/util/errors.js';
import { useTempDirs } from '../helpers/tmp.js';

const mkTemp = useTempDirs();
const smbTopology = readFileSync(join(REPO_ROOT, 'topologies', 'smb.yaml'), 'utf8');
const HEAD = 'topology: ./topo.yaml\nstrategies: [talos-vip+metallb-l2]\n';
const DRILLS = 'drills: [baseline]\n';

/** a lab (and its topology: smb unless given) in a fresh temp dir → [lab file, topology file] */
function files(lab: string, topology = smbTopology): [string, string] {
  const d = mkTemp('tlx-bounds-');
  writeFileSync(join(d, 'lab.yaml'), lab);
  writeFileSync(join(d, 'topo.yaml'), topology);
  return [join(d, 'lab.yaml'), join(d, 'topo.yaml')];
}

function inputError(labFile: string): LabInputError {
  try {
    loadLab(labFile);
  } catch (e) {
    if (e instanceof LabInputError) return e;
    throw e;
  }
  throw new Error(`${labFile}: loaded without error`);
}

/** the issue at `path` of `file`, with the exit code and the formatted "file: path: …" line checked */
function issueAt(lab: string, topology: string | undefined, which: 'lab' | 'topology', path: string, words: RegExp) {
  const [labFile, topoFile] = files(lab, topology);
  const e = inputError(labFile);
  expect(e.exitCode).toBe(2);
  const file = which === 'lab' ? labFile : topoFile;
  const hit = e.issues.find((i) => i.file === file && i.path === path && words.test(i.message));
  expect(hit, `issues were:\n${e.message}`).toBeDefined();
  expect(e.message).toContain(`${file}: ${path}: `);
}

const accepted = (lab: string, topology?: string) => expect(() => loadLab(files(lab, topology)[0])).not.toThrow();

describe('upper bounds of a lab file', () => {
  it('a timer in seconds: at most 3,600 s', () => {
    issueAt(`${HEAD}${DRILLS}timers:\n  bgp: { keepaliveS: 3, holdS: 36000 }\n`, undefined, 'lab', 'timers.bgp.holdS', /expected at most 3,600 s \(1 h\), got 36000/);
    accepted(`${HEAD}${DRILLS}timers:\n  bgp: { keepaliveS: 1200, holdS: 3600 }\n`);
  });

  it('a timer in milliseconds: at most 3,600,000 ms', () => {
    issueAt(`${HEAD}${DRILLS}timers:\n  haproxy: { checkIntervalMs: 3600001 }\n`, undefined, 'lab', 'timers.haproxy.checkIntervalMs', /expected at most 3,600,000 ms \(1 h\), got 3600001/);
    accepted(`${HEAD}${DRILLS}timers:\n  haproxy: { checkIntervalMs: 3600000 }\n`);
  });

  it('a count inside a timer group: at most 1,000', () => {
    issueAt(`${HEAD}${DRILLS}timers:\n  haproxy: { fall: 5000 }\n`, undefined, 'lab', 'timers.haproxy.fall', /expected at most 1,000, got 5000/);
    accepted(`${HEAD}${DRILLS}timers:\n  haproxy: { fall: 1000 }\n`);
  });

  it('a drill phase (preMs, holdMs, settleMs, observeMs): at most 1 h', () => {
    for (const field of ['preMs', 'holdMs', 'settleMs', 'observeMs']) {
      issueAt(`${HEAD}drills:\n  - baseline\n  - { kind: crash, ${field}: 7200000 }\n`, undefined, 'lab', `drills[1].${field}`, /expected at most 3,600,000 ms \(1 h\) for a drill phase, got 7200000/);
    }
    accepted(`${HEAD}drills:\n  - { kind: crash, observeMs: 3600000 }\n`);
  });

  it('the --quick phases and repeats are bounded like the full run', () => {
    issueAt(`${HEAD}${DRILLS}quick: { settleMs: 86400000 }\n`, undefined, 'lab', 'quick.settleMs', /expected at most 3,600,000 ms \(1 h\) for a drill phase/);
    issueAt(`${HEAD}${DRILLS}quick: { repeats: 1000 }\n`, undefined, 'lab', 'quick.repeats', /expected a number ≤ 100, got 1000/);
    issueAt(`${HEAD}${DRILLS}quick: { timers: { etcd: { electionMs: 1e9 } } }\n`, undefined, 'lab', 'quick.timers.etcd.electionMs', /expected at most 3,600,000 ms/);
  });

  it('repeats: at most 100', () => {
    issueAt(`${HEAD}${DRILLS}repeats: 101\n`, undefined, 'lab', 'repeats', /expected a number ≤ 100, got 101/);
    accepted(`${HEAD}${DRILLS}repeats: 100\n`);
  });

  it('traffic: rate, connections, streams, recovery run and both timeouts have maxima', () => {
    const cases: [string, string, RegExp][] = [
      ['rate: 1000000', 'traffic.rate', /expected a number ≤ 100000, got 1000000/],
      ['connections: 5000', 'traffic.connections', /expected a number ≤ 1024, got 5000/],
      ['streams: 1000', 'traffic.streams', /expected a number ≤ 256, got 1000/],
      ['recoverSuccesses: 5000', 'traffic.recoverSuccesses', /expected a number ≤ 1000, got 5000/],
      ['timeoutMs: 600000', 'traffic.timeoutMs', /expected at most 60,000 ms for a request timeout, got 600000/],
      ['probeTimeoutMs: 60000', 'traffic.probeTimeoutMs', /expected at most 10,000 ms for the outage probe timeout, got 60000/],
    ];
    for (const [line, path, words] of cases) issueAt(`${HEAD}${DRILLS}traffic:\n  ${line}\n`, undefined, 'lab', path, words);
    accepted(`${HEAD}${DRILLS}traffic:\n  rate: 100000\n  connections: 1024\n  streams: 256\n  timeoutMs: 60000\n  probeTimeoutMs: 10000\n`);
  });
});

describe('upper bounds of a topology file', () => {
  it('a timer set in the topology is named in the topology file', () => {
    const topo = `${smbTopology}timers:\n  kubernetes: { nodeMonitorGraceS: 86400 }\n`;
    issueAt(`${HEAD}${DRILLS}`, topo, 'topology', 'timers.kubernetes.nodeMonitorGraceS', /expected at most 3,600 s \(1 h\), got 86400/);
  });

  it('the resilient ECMP idle timer: at most 3,600 s', () => {
    issueAt(`${HEAD}${DRILLS}`, smbTopology.replace('idleTimerS: 120', 'idleTimerS: 100000'), 'topology', 'network.resilientEcmp.idleTimerS', /expected at most 3,600 s \(1 h\), got 100000/);
  });

  it('services: at most 64', () => {
    const list = (n: number) => Array.from({ length: n }, (_, i) => `  - { name: s${i}, externalTrafficPolicy: ${i === 0 ? 'Local' : 'Cluster'} }`).join('\n');
    const topo = (n: number) => smbTopology.replace(/services:[\s\S]*$/, `services:\n${list(n)}\n`).replace('cidr: 10.32.0.192/27', 'cidr: 10.32.0.128/26');
    issueAt(`${HEAD}${DRILLS}`, topo(65), 'topology', 'services', /expected at most 64 services, got \[/);
    accepted(`${HEAD}${DRILLS}`, topo(64));
  });

  it('nodes in one group: at most 2,000 (the lab-wide node cap, counted in the message)', () => {
    const flat = smbTopology.replace('controlPlanes: 3', 'controlPlanes: 2001').replace('lan: 10.32.0.0/24', 'lan: 10.32.0.0/16');
    issueAt(`${HEAD}${DRILLS}`, flat, 'topology', 'cluster.controlPlanes', /2,003 nodes \(2,001 control planes \+ 2 workers\); expected at most 2,000 nodes in one lab/);
    const racks = `${rackTopology(1).replace('workers: 1', 'workers: 2001')}`;
    issueAt(`${HEAD}${DRILLS}`, racks, 'topology', 'network.racks[0].workers', /2,002 nodes \(1 control planes \+ 2,001 workers\); expected at most 2,000 nodes in one lab/);
  });

  it('racks: at most 128', () => {
    issueAt(`${HEAD}${DRILLS}`, rackTopology(129), 'topology', 'network.racks', /129 racks; expected at most 128 racks in one lab/);
  });
});

/** a rack topology with `n` racks (the first holds one control plane), each rack a /24 with one worker */
function rackTopology(n: number): string {
  const racks = Array.from({ length: n }, (_, i) =>
    [`    - name: r${i + 1}`, `      cidr: 10.${40 + (i >> 8)}.${i & 255}.0/24`, i === 0 ? '      controlPlanes: 1' : '', '      workers: 1', `      tor: { name: tor${i + 1}, asn: ${65101 + i} }`].filter(Boolean).join('\n'),
  ).join('\n');
  return `cluster:\n  nodeAsn: 64600\nnetwork:\n  racks:\n${racks}\n  fabric: 10.39.250.0/24\n  uplink: 10.39.100.0/24\n  vip: 10.40.0.10\n  pool: { cidr: 10.40.0.192/27 }\nrouter: { name: edge, asn: 65000 }\n`;
}
