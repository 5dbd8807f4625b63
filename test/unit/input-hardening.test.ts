/**
 * Bad input is refused up front, as exit 2 naming the file, the path inside it and what was
 * expected: YAML resource limits (alias bombs, oversized files, deep nesting), duplicate keys,
 * problems repeated per node collapsed into one line with a count, the capacity check with a fake
 * machine, flag values, the output directory (a regular file, a live run's lock) — and nothing is
 * created when any of them fails. Also: the lab state directory is private and exclusive.
 */
import { describe, expect, it, vi } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { loadLab, collapseIssues, MAX_INPUT_BYTES, MAX_ALIAS_COUNT, REPO_ROOT } from '../../src/model/load.js';
import { checkCapacity, estimateCapacity, HARD_MAX_NODES, type MachineFacts } from '../../src/model/capacity.js';
import { exitCodeOf, main } from '../../src/cli/main.js';
import { capListing, MAX_LINE } from '../../src/cli/progress.js';
import { LabInputError, UsageError, type InputIssue } from '../../src/util/errors.js';
import { LabIdInUseError, LabState } from '../../src/state/state.js';
import { lockOutDir, outDirOwner, OUT_LOCK } from '../../src/state/out-lock.js';
import type { Lab, Node } from '../../src/model/types.js';
import { cpRole, svcRole } from '../../src/strategies/registry.js';
import { run } from '../../src/util/proc.js';
import { labMeta } from '../helpers/state.js';
import { useTempDirs } from '../helpers/tmp.js';

const mkTemp = useTempDirs();
const BIN = resolve(REPO_ROOT, 'scripts/lab.mjs');
const isRoot = process.getuid?.() === 0;

/** a lab file (and its own topology, when given) in a fresh temp dir */
function labDir(lab: string, topology?: string): string {
  const d = mkTemp('tlx-input-');
  writeFileSync(join(d, 'lab.yaml'), lab);
  if (topology !== undefined) writeFileSync(join(d, 'topo.yaml'), topology);
  return join(d, 'lab.yaml');
}

function inputError(f: () => unknown): LabInputError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(LabInputError);
    expect(exitCodeOf(e)).toBe(2);
    return e as LabInputError;
  }
  throw new Error('expected a LabInputError');
}

const LAB_HEAD = 'topology: smb\nstrategies: [talos-vip+metallb-l2]\ndrills: [baseline]\n';
const smbTopology = () => readFileSync(join(REPO_ROOT, 'topologies', 'smb.yaml'), 'utf8');

describe('YAML resource limits', () => {
  it('an alias bomb (billion laughs) is refused naming the file, the first alias and the limit', () => {
    const levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    for (const [i, c] of [...'bcdefghi'].entries()) levels.push(`${c}: &${c} [${Array(9).fill(`*${'abcdefghi'[i]}`).join(',')}]`);
    const file = labDir(LAB_HEAD + levels.join('\n') + '\n');
    const t0 = Date.now();
    const e = inputError(() => loadLab(file));
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(e.issues).toHaveLength(1);
    const [i] = e.issues as [InputIssue];
    expect(i.file).toBe(file);
    expect(i.path).toBe('b[0]');
    expect(i.message).toContain(`maxAliasCount ${MAX_ALIAS_COUNT}`);
    expect(i.message).toMatch(/Excessive alias count/); // the yaml library's own words
    expect(i.message).toContain('(first alias at line 5)');
  });

  it('a file above the size cap is refused before parsing, with its size named', () => {
    const size = MAX_INPUT_BYTES + 4096;
    const file = labDir(LAB_HEAD + '# ' + 'x'.repeat(size) + '\n');
    const e = inputError(() => loadLab(file));
    expect(e.issues).toHaveLength(1);
    const bytes = statSync(file).size;
    expect(e.issues[0]!.message).toContain(`(${bytes.toLocaleString('en-US')} bytes)`);
    expect(e.issues[0]!.message).toContain(`at most ${MAX_INPUT_BYTES / 1024} KiB`);
  });

  it('a file nested too deep is refused without letting the parser recurse', () => {
    const depth = 50_000;
    const file = labDir(`topology: smb\nstrategies: ${'['.repeat(depth)}${']'.repeat(depth)}\ndrills: [baseline]\n`);
    const t0 = Date.now();
    const e = inputError(() => loadLab(file));
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(e.message).toContain(`${depth.toLocaleString('en-US')} levels deep (line 2); expected at most`);
  });

  it('duplicate keys name the key path and both lines', () => {
    const file = labDir(`${LAB_HEAD}traffic:\n  rate: 10\n  connections: 2\n  rate: 20\n`);
    const e = inputError(() => loadLab(file));
    expect(e.issues).toEqual([{ file, path: 'traffic.rate', message: "duplicate key 'rate' (first at line 5); expected each key once in a mapping (line 7)" }]);
  });

  it('.inf and .nan are refused where zod would take them (timers have no upper bound in the schema)', () => {
    const file = labDir(`${LAB_HEAD}timers:\n  kubernetes: { nodeMonitorGraceS: .inf }\n  bgp: { holdS: .nan }\n`);
    const e = inputError(() => loadLab(file));
    expect(e.issues).toEqual([
      { file, path: 'timers.kubernetes.nodeMonitorGraceS', message: 'expected a finite number, got .inf (line 5)' },
      { file, path: 'timers.bgp.holdS', message: 'expected a finite number, got .nan (line 6)' },
    ]);
  });

  it('a non-regular file (a device) is refused as input, not read', () => {
    const d = mkTemp('tlx-input-');
    writeFileSync(join(d, 'lab.yaml'), 'topology: ./topo.yaml\nstrategies: [talos-vip+metallb-l2]\ndrills: [baseline]\n');
    execFileSync('ln', ['-s', '/dev/zero', join(d, 'topo.yaml')]);
    const e = inputError(() => loadLab(join(d, 'lab.yaml')));
    expect(e.message).toMatch(/topology: no such file .*topo\.yaml/);
  });
});

describe('problems repeated per node are one line with a count', () => {
  it('a /24 with 600 workers: one line for the LAN, naming the first node and how many more', () => {
    const topo = smbTopology().replace(/workers: \d+/, 'workers: 600');
    const file = labDir('topology: ./topo.yaml\nstrategies: [talos-vip+metallb-l2]\ndrills: [baseline]\n', topo);
    const e = inputError(() => loadLab(file));
    const lan = e.issues.filter((i) => i.path === 'network.lan');
    expect(lan).toHaveLength(1);
    // the address plan: nodes from .11 of a /24 (254 usable) → 244 fit, the other nodes do not
    const nodes = 3 + 600;
    const fit = 254 - 11 + 1;
    const firstMissing = `w${fit - 3 + 1}`;
    expect(lan[0]!.message).toContain(`too few for node ${firstMissing} `);
    expect(lan[0]!.message).toContain(`(and ${(nodes - fit - 1).toLocaleString('en-US')} more like it: w${fit - 3 + 2}, w${fit - 3 + 3}, `);
    expect(e.issues.length).toBeLessThan(5);
  });

  it('collapseIssues keeps single problems, groups by file + path shape + message shape, keeps order', () => {
    const issues: InputIssue[] = [
      { file: 'a.yaml', path: 'network.vip', message: 'expected an address inside the LAN' },
      ...[12, 13, 14, 15, 16, 17, 18, 19, 20].map((n) => ({ file: 'a.yaml', path: 'network.lan', message: `10.0.0.0/24 is too small for node w${n} (host #${n + 10}) (line 3)` })),
      { file: 'b.yaml', path: 'network.lan', message: '10.0.0.0/24 is too small for node w12 (host #22) (line 3)' },
      ...[0, 1, 2].map((n) => ({ file: 'a.yaml', path: `strategies[${n}]`, message: `expected a mapping, got number (line ${4 + n})` })),
    ];
    const out = collapseIssues(issues);
    expect(out).toEqual([
      issues[0],
      { file: 'a.yaml', path: 'network.lan', message: '10.0.0.0/24 is too small for node w12 (host #22) (line 3) (and 8 more like it: w13, w14, w15, w16, w17, w18, …)' },
      issues[10],
      { file: 'a.yaml', path: 'strategies[0]', message: 'expected a mapping, got number (line 4) (and 2 more like it: strategies[1], strategies[2])' },
    ]);
  });

  it('100,000 workers: refused by the hard size cap before anything resolves, fast', () => {
    const topo = smbTopology().replace(/workers: \d+/, 'workers: 100000').replace(/lan: \S+/, 'lan: 10.0.0.0/8');
    const file = labDir('topology: ./topo.yaml\nstrategies: [talos-vip+metallb-l2]\ndrills: [baseline]\n', topo);
    const t0 = Date.now();
    const e = inputError(() => loadLab(file));
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(e.issues).toHaveLength(1);
    expect(e.issues[0]!.file).toBe(join(file, '..', 'topo.yaml'));
    expect(e.issues[0]!.path).toBe('cluster.workers');
    expect(e.issues[0]!.message).toContain(`100,003 nodes (3 control planes + 100,000 workers); expected at most ${HARD_MAX_NODES.toLocaleString('en-US')} nodes`);
    expect(e.issues[0]!.message).toContain('--force does not lift this limit');
  });
});

// ---------------------------------------------------------------------------------------------
// capacity

const machine = (x: Partial<MachineFacts> = {}): MachineFacts => ({
  totalMemMiB: 8192,
  availableMemMiB: 6144,
  cpus: 2,
  maxUserProcesses: Infinity,
  pidMax: 32768,
  threadsMax: 60000,
  tasksNow: 500,
  maxNetNamespaces: 100000,
  isRoot: true,
  ...x,
});

/** `lab` with `workers` workers on its (big enough, in this fake) LAN */
function withWorkers(lab: Lab, workers: number): Lab {
  const t = lab.topology;
  const cps = t.nodes.filter((n) => n.role === 'controlplane');
  const w0 = t.nodes.find((n) => n.role === 'worker')!;
  const ws: Node[] = Array.from({ length: workers }, (_, i) => ({ ...w0, name: `w${i + 1}`, index: i + 1, ip: `10.32.${(i >> 8) & 255}.${i & 255}` }));
  return { ...lab, topology: { ...t, nodes: [...cps, ...ws] } };
}

describe('capacity check', () => {
  it('counts one namespace per host plus the switch (the figures of docs/bench-labs.md)', () => {
    const bench = readFileSync(join(REPO_ROOT, 'docs', 'bench-labs.md'), 'utf8');
    for (const name of ['minecraft', 'smb', 'enterprise']) {
      const row = new RegExp(`^\\| ${name} \\| (\\d+) \\|`, 'm').exec(bench);
      expect(row, `docs/bench-labs.md has a row for ${name}`).not.toBeNull();
      const e = estimateCapacity(loadLab(name), 'sim');
      expect(e.namespaces).toBe(Number(row![1]));
      expect(e.nodes).toBe(loadLab(name).topology.nodes.length);
    }
  });

  it('grows with the nodes: processes, threads and memory per node, and the peak strategy decides the FRR speakers', () => {
    const smb = loadLab('smb');
    const a = estimateCapacity(withWorkers(smb, 10), 'sim');
    const b = estimateCapacity(withWorkers(smb, 20), 'sim');
    expect(b.namespaces - a.namespaces).toBe(10);
    expect(b.memoryMiB).toBeGreaterThan(a.memoryMiB);
    // with a BGP service mechanism every worker runs an agent and an FRR speaker (zebra, bgpd, staticd)
    expect(b.processes - a.processes).toBe(10 * 4);
    const l2only = { ...withWorkers(smb, 20), strategies: smb.strategies.filter((s) => !svcRole(s.svc)?.traits.bgp && !cpRole(s.cp)?.traits.bgp) };
    // no speakers (3 FRR daemons on each of the 20 workers) and no HAProxy (only haproxy+metallb-bgp uses it)
    expect(estimateCapacity(l2only, 'sim').processes).toBe(b.processes - 20 * 3 - 1);
  });

  it('the shipped labs fit a small 2-CPU, 8 GiB machine', () => {
    for (const name of ['minecraft', 'smb', 'enterprise']) {
      expect(checkCapacity(loadLab(name), 'sim', machine()).issues, name).toEqual([]);
    }
  });

  it('above a soft limit: exit 2 naming the field and the largest node count that fits; --force runs it; the bound is exact', () => {
    const smb = loadLab('smb');
    const m = machine({ availableMemMiB: 4096, totalMemMiB: 6144 });
    const big = withWorkers(smb, 400);
    const r = checkCapacity(big, 'sim', m, { show: () => 'topologies/smb.yaml', lineOf: () => 13 });
    expect(r.soft.length).toBeGreaterThan(0);
    expect(r.hard).toEqual([]);
    expect(r.issues).toHaveLength(1);
    const i = r.issues[0]!;
    expect(i.file).toBe('topologies/smb.yaml');
    expect(i.path).toBe('cluster.workers');
    expect(i.message).toMatch(/^403 nodes on sim need ~407 namespaces, ~[\d,]+ processes \(~[\d,]+ threads\) and ~[\d.]+ GiB of memory; this machine has 4\.0 GiB of memory available and 2 CPUs — memory: .*; expected at most \d+ nodes here \(--force overrides\) \(line 13\)$/);
    const k = Number(/at most (\d+) nodes here/.exec(i.message)![1]);
    expect(r.maxNodes).toBe(k);
    expect(checkCapacity(big, 'sim', m, { force: true }).issues).toEqual([]);
    // the bound is what it says: k nodes pass, k + 1 do not
    const cps = smb.topology.nodes.filter((n) => n.role === 'controlplane').length;
    expect(checkCapacity(withWorkers(smb, k - cps), 'sim', m).issues).toEqual([]);
    expect(checkCapacity(withWorkers(smb, k - cps + 1), 'sim', m).issues).toHaveLength(1);
  });

  it('the CPU limit of the sim and the per-user process limit of a non-root user are soft limits too', () => {
    const smb = loadLab('smb');
    const cpu = checkCapacity(withWorkers(smb, 60), 'sim', machine({ availableMemMiB: 1 << 20, cpus: 2 }));
    expect(cpu.soft.join()).toMatch(/CPU: more than 24 nodes per CPU/);
    expect(cpu.maxNodes).toBe(48);
    const nproc = checkCapacity(smb, 'sim', machine({ isRoot: false, maxUserProcesses: 100 }));
    expect(nproc.soft.join()).toMatch(/ulimit -u/);
  });

  it('above a hard limit: refused even with --force', () => {
    const smb = loadLab('smb');
    const pids = checkCapacity(withWorkers(smb, 40), 'sim', machine({ availableMemMiB: 1 << 20, pidMax: 900, cpus: 64 }), { force: true });
    expect(pids.issues).toHaveLength(1);
    expect(pids.issues[0]!.message).toMatch(/threads are more than the kernel can give: 400 pids free \(pid_max 900/);
    expect(pids.issues[0]!.message).toContain('--force does not lift this limit');
    const huge = checkCapacity(withWorkers(smb, HARD_MAX_NODES + 1), 'sim', machine({ availableMemMiB: 1 << 30, cpus: 1024, pidMax: 1 << 22, threadsMax: 1 << 22 }), { force: true });
    expect(huge.hard.join()).toContain(`more than ${HARD_MAX_NODES.toLocaleString('en-US')} nodes`);
    expect(huge.issues).toHaveLength(1);
  });

  it('docker and qemu: Talos minimum memory per node, containers / VMs counted', () => {
    const ent = loadLab('enterprise');
    const d = estimateCapacity(ent, 'docker');
    const cps = ent.topology.nodes.filter((n) => n.role === 'controlplane').length;
    const workers = ent.topology.nodes.length - cps;
    expect(d.containers).toBe(d.hosts);
    expect(d.memoryMiB).toBeGreaterThanOrEqual(cps * 2048 + workers * 1024);
    expect(estimateCapacity(ent, 'qemu').containers).toBe(ent.topology.nodes.length);
    expect(checkCapacity(ent, 'docker', machine()).issues[0]!.message).toMatch(new RegExp(`^35 nodes on docker need ${d.hosts} containers and ~[\\d.]+ GiB of memory \\(Talos minimum per node\\)`));
  });
});

describe('the dry-run plan never prints a line of megabytes', () => {
  it('caps a listing at its first entries and says how many more', () => {
    const ns = Array.from({ length: 2003 }, (_, i) => `ip netns add tlab-x-${i}`).join(' && ');
    const capped = capListing(`create 2003 network namespaces\n${ns}`);
    const [head, line] = capped.split('\n') as [string, string];
    expect(head).toBe('create 2003 network namespaces');
    expect(line.length).toBeLessThanOrEqual(MAX_LINE);
    expect(line).toMatch(/^ip netns add tlab-x-0 && .* && … and 1,995 more$/);
    const blob = capListing('x'.repeat(5_000_000));
    expect(blob.length).toBeLessThan(MAX_LINE + 100);
    expect(blob).toContain('(4,999,600 more characters)');
  });
});

// ---------------------------------------------------------------------------------------------
// the CLI: flags and --out, nothing started

/** the real bin, as a user runs it (a separate node: ~1 s, more on a busy machine; async, so the test worker stays responsive) */
async function lab(args: string[], env: Record<string, string> = {}) {
  const stateDir = mkTemp('tlx-input-state-');
  const r = await run(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, env: { ...process.env, CI: 'true', LAB_STATE_DIR: stateDir, ...env } as Record<string, string>, reject: false, timeoutMs: 60_000 });
  return { code: r.exitCode, stdout: r.stdout, stderr: r.stderr, stateDir };
}

/** the same CLI in this process (src/cli/main.ts `main`): what it prints on stderr and its exit code */
async function cli(args: string[], env: Record<string, string> = {}) {
  const stateDir = mkTemp('tlx-input-state-');
  const set = { CI: 'true', LAB_STATE_DIR: stateDir, ...env };
  const saved = Object.fromEntries(Object.keys(set).map((k) => [k, process.env[k]]));
  Object.assign(process.env, set);
  let stderr = '';
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
  try {
    const code = await main(args);
    return { code, stderr, stateDir };
  } finally {
    spy.mockRestore();
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}
/** namespaces a minecraft lab would create (`tlab-<first 8 letters of the lab name>-<hex>-…`): other tests may run other labs meanwhile */
const minecraftNetns = () => {
  try {
    return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
      .split('\n')
      .map((l) => l.split(' ')[0]!)
      .filter((n) => n.startsWith('tlab-minecraf-'))
      .sort();
  } catch {
    return [];
  }
};

describe('flags and the output directory are checked before anything starts (exit 2)', { timeout: 120_000 }, () => {
  it.each([
    [['minecraft', '--repeat', '0'], /--repeat expects a whole number ≥ 1 \(at most 100\), got '0'/],
    [['minecraft', '--repeat', 'abc'], /--repeat expects a whole number ≥ 1 \(at most 100\), got 'abc'/],
    [['minecraft', '--repeat', '1000'], /--repeat expects a whole number ≥ 1 \(at most 100\), got '1000'/],
    [['minecraft', '--provider', 'nope'], /--provider <name>' argument 'nope' is invalid\. Allowed choices are sim, docker, qemu, auto/],
    [['minecraft', '--strategies', 'nope+nope'], /--strategies: unknown for lab minecraft: nope\+nope; valid: talos-vip\+metallb-l2/],
    [['minecraft', '--strategies', ','], /--strategies: expected a comma-separated list of strategy ids/],
    [['minecraft', '--drills', 'explode'], /--drills: unknown for lab minecraft: explode; valid: baseline/],
    [['load', 'http://127.0.0.1:70000/', '--rate', '1', '--duration', '1'], /'http:\/\/127\.0\.0\.1:70000\/' is not a valid URL/],
    [['load', 'http://127.0.0.1:1/', '--rate', '10', '--duration', '1', '--connections', '5000'], /--connections expects a whole number ≥ 1 \(at most 1024\)/],
    [['load', 'http://127.0.0.1:1/', '--rate', '10', '--duration', '1', '--ca', '/nonexistent/ca.pem'], /--ca \/nonexistent\/ca\.pem: no such file/],
  ])('%j', async (args, words) => {
    const r = await cli(args as string[]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(words as RegExp);
    expect(readdirSync(r.stateDir)).toEqual([]);
  });

  it('LAB_PROVIDER that is no provider is named, not silently replaced by sim', async () => {
    const r = await cli(['minecraft'], { LAB_PROVIDER: 'vmware' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('LAB_PROVIDER=vmware: expected one of sim, docker, qemu, auto');
  });

  it('--out FILE (a regular file) exits 2 before anything starts: no state directory, no namespace, the file untouched', async () => {
    const d = mkTemp('tlx-input-out-');
    const file = join(d, 'results');
    writeFileSync(file, 'keep me');
    const before = minecraftNetns();
    const r = await lab(['minecraft', '--out', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`--out ${file}: is a regular file; expected a directory`);
    expect(readdirSync(r.stateDir)).toEqual([]);
    expect(readFileSync(file, 'utf8')).toBe('keep me');
    if (isRoot) expect(minecraftNetns()).toEqual(before);
    // a path below a regular file cannot be created either
    const below = await cli(['minecraft', '--out', join(file, 'sub')]);
    expect(below.code).toBe(2);
    expect(below.stderr).toContain(`cannot be created, ${file} is a regular file`);
  });

  it('--out of a live run is refused (its lock names the pid); a dead run\'s lock is taken over', async () => {
    const d = mkTemp('tlx-input-lock-');
    const lock = lockOutDir(d, { lab: 'smb', verb: 'run' });
    expect(outDirOwner(d)?.pid).toBe(process.pid);
    const r = await cli(['minecraft', '--out', d]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`--out ${d}: in use by another run (pid ${process.pid}, \`lab run smb\``);
    expect(readdirSync(r.stateDir)).toEqual([]);
    expect(() => lockOutDir(d, { lab: 'x', verb: 'run' })).toThrow(UsageError);
    lock.release();
    expect(existsSync(join(d, OUT_LOCK))).toBe(false);
    // stale: a pid that is not running (above the default pid_max) → taken over
    writeFileSync(join(d, OUT_LOCK), JSON.stringify({ pid: 4194305, startTime: 1, lab: 'old', verb: 'run', createdAt: '2020-01-01T00:00:00Z', host: hostname() }));
    expect(outDirOwner(d)).toBeNull();
    const again = lockOutDir(d, { lab: 'new', verb: 'run' });
    expect(JSON.parse(readFileSync(join(d, OUT_LOCK), 'utf8'))).toMatchObject({ pid: process.pid, lab: 'new' });
    again.release();
    expect(readdirSync(d)).toEqual([]);
  });
});

describe('lab state directory', () => {
  it('is private (0700, lab.json 0600), exclusive per id, and removed with the lab', () => {
    const root = join(mkTemp('tlx-input-root-'), 'labs');
    const s = LabState.create(labMeta('smb-perm'), root);
    expect(statSync(root).mode & 0o777).toBe(0o700);
    expect(statSync(s.dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(s.dir, 'lab.json')).mode & 0o777).toBe(0o600);
    expect(statSync(s.subdir('pki')).mode & 0o777).toBe(0o700);
    s.record({ kind: 'file', name: '/x' });
    expect(statSync(join(s.dir, 'resources.jsonl')).mode & 0o777).toBe(0o600);
    // a second lab that drew the same id gets an error, not the first lab's directory
    expect(() => LabState.create(labMeta('smb-perm', { lab: 'other' }), root)).toThrow(LabIdInUseError);
    expect(() => LabState.create(labMeta('smb-perm', { lab: 'other' }), root)).toThrow(/lab id smb-perm is already in use/);
    expect(s.meta().lab).toBe('smb');
    s.remove();
    expect(existsSync(s.dir)).toBe(false);
  });
});
