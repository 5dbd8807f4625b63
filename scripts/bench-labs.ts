/**
 * Bring-up benchmark of the sim provider: each shipped lab is brought up and torn down
 * REPEATS times through the provider (`simProvider.up` → `down`, what `lab up`/`lab down` run);
 * records the time to a ready lab (network, FRR routers with their BGP sessions, the etcd cluster
 * healthy, PKI, client agents answering), the teardown time, the namespaces and processes, and
 * the resident memory of every process in the lab's namespaces. Writes the bring-up section of
 * docs/bench-labs.md (its own markers only; the whole-lab section belongs to
 * scripts/bench-whole-labs.ts).
 *
 * Usage (root): node --import tsx scripts/bench-labs.ts [--repeat N] [--no-write]
 * Targets: smb ≤ 10 s, minecraft ≤ 4 s, enterprise ≤ 60 s on a 2-core machine.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { loadLab, REPO_ROOT } from '../src/model/load.js';
import { simProvider } from '../src/providers/kinds/emulated/provider.js';
import { LabState } from '../src/state/state.js';
import { run, now } from '../src/util/proc.js';
import { replaceSection } from './lib/bench-doc.js';

const argv = process.argv.slice(2);
const ri = argv.indexOf('--repeat');
const REPEATS = ri >= 0 ? Number(argv[ri + 1]) : 3;
const write = !argv.includes('--no-write');
const TARGET_MS: Record<string, number> = { minecraft: 4000, smb: 10_000, enterprise: 60_000 };

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

async function labMemory(prefix: string): Promise<{ processes: number; rssMiB: number }> {
  const names = (await run('ip', ['netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith(prefix));
  let processes = 0;
  let kb = 0;
  for (const ns of names) {
    for (const pid of (await run('ip', ['netns', 'pids', ns], { reject: false })).stdout.split(/\s+/).filter(Boolean)) {
      try {
        const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
        if (m) {
          kb += Number(m[1]);
          processes++;
        }
      } catch {
        /* exited */
      }
    }
  }
  return { processes, rssMiB: Math.round(kb / 1024) };
}

interface Row {
  lab: string;
  hosts: number;
  up: number[];
  down: number[];
  processes: number;
  rssMiB: number;
}

const rows: Row[] = [];
const stateRoot = mkdtempSync(join(os.tmpdir(), 'bench-labs-'));
try {
  for (const name of ['minecraft', 'smb', 'enterprise']) {
    const lab = loadLab(name, { repoRoot: REPO_ROOT });
    await simProvider.check(lab);
    const row: Row = { lab: name, hosts: 0, up: [], down: [], processes: 0, rssMiB: 0 };
    for (let i = 0; i < REPEATS; i++) {
      const prefix = `tlab-bench${i}-${process.pid}`;
      const state = LabState.create({ id: `bench-${name}-${i}`, prefix, lab: name, labFile: lab.file, provider: 'sim', createdAt: new Date().toISOString(), ownerPid: process.pid, status: 'starting' }, stateRoot);
      const t0 = now();
      const l = await simProvider.up(lab, { id: state.id, prefix, state });
      row.up.push(now() - t0);
      const mem = await labMemory(prefix);
      row.processes = mem.processes;
      row.rssMiB = Math.max(row.rssMiB, mem.rssMiB);
      row.hosts = (await run('ip', ['netns', 'list'])).stdout.split('\n').filter((l) => l.startsWith(prefix)).length;
      const t1 = now();
      await l.down();
      row.down.push(now() - t1);
      process.stderr.write(`[bench-labs] ${name} #${i + 1}: up ${Math.round(row.up.at(-1)!)} ms, down ${Math.round(row.down.at(-1)!)} ms, ${mem.processes} processes, ${mem.rssMiB} MiB\n`);
    }
    rows.push(row);
  }
} finally {
  rmSync(stateRoot, { recursive: true, force: true });
}

const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
let failed = false;
const table = rows.map((r) => {
  const med = median(r.up);
  const ok = med <= TARGET_MS[r.lab]!;
  failed ||= !ok;
  return `| ${r.lab} | ${r.hosts} | ${fmt(med)} (${fmt(Math.min(...r.up))}–${fmt(Math.max(...r.up))}) | ≤ ${fmt(TARGET_MS[r.lab]!)} ${ok ? 'PASS' : 'FAIL'} | ${fmt(median(r.down))} | ${r.processes} | ${r.rssMiB} MiB |`;
});
const kernel = (await run('uname', ['-r'])).stdout.trim();
const md = `## Sim bring-up

Produced by \`npm run bench:labs\` (\`scripts/bench-labs.ts\`, root); numbers below are from the last run.

**Machine:** ${os.cpus().length} CPUs (${os.cpus()[0]?.model.trim()}), ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM, Linux ${kernel}, Node ${process.version}. Date: ${new Date().toISOString()}. ${REPEATS} repeats per lab.

"Up" is \`simProvider.up\` to a ready lab: every namespace, veth and bridge; FRR on the routers with
their router-to-router BGP sessions established and routes exchanged; the etcd cluster on the
control planes healthy (\`etcdctl endpoint health\` on every member); the lab PKI; the traffic agent
on each client answering its RPC. Strategies (node speakers, HAProxy, per-node agents) are applied
later by \`run\` and are not part of this figure. "Down" removes all of it (the same code as
\`lab clean\`). Memory = resident set of every process in the lab's namespaces once up.

| lab | namespaces | up: median (min–max) | target | down (median) | processes | memory (RSS) |
|---|---|---|---|---|---|---|
${table.join('\n')}
`;
process.stdout.write(md);
if (write) {
  const doc = join(REPO_ROOT, 'docs', 'bench-labs.md');
  writeFileSync(doc, replaceSection(existsSync(doc) ? readFileSync(doc, 'utf8') : null, 'bring-up', md));
}
process.exit(failed ? 1 : 0);
