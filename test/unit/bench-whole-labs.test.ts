/**
 * The pure parts of scripts/bench-whole-labs.ts (scripts/lib/whole-labs.ts) and of the shared
 * section writer of docs/bench-labs.md (scripts/lib/bench-doc.ts). Every expected value below is
 * worked out by hand from the fixture next to it.
 */
import { describe, expect, it } from 'vitest';
import { readSection, replaceSection } from '../../scripts/lib/bench-doc.js';
import {
  cliArgs,
  countRuns,
  decodeRows,
  encodeRows,
  inLab,
  LAB_SPECS,
  mergeRows,
  ownedPrefixes,
  parseDuration,
  parseLabList,
  parsePlanLine,
  parsePssKib,
  parseStatPpid,
  processTree,
  renderRow,
  renderSection,
  verdicts,
  type WholeRow,
} from '../../scripts/lib/whole-labs.js';

const row = (over: Partial<WholeRow> = {}): WholeRow => ({
  spec: 'minecraft',
  date: '2026-11-30T13:45:12.345Z',
  machine: '2 CPUs (AMD EPYC), 24 GiB RAM, Linux 6.18, Node v20.20.2',
  command: 'npm run bench:whole -- --labs minecraft --no-write',
  exitCode: 0,
  signal: null,
  wallMs: 95_400,
  estimateMs: 118_000,
  floorMs: 70_000,
  instances: 1,
  runs: { total: 2, inside: 1, outside: 0, noBand: 1, unrecovered: 0 },
  peakPssKib: 1_572_864, // 1.5 × 1024 × 1024
  peakProcesses: 40,
  leftover: [],
  ...over,
});

describe('lab list and CLI arguments', () => {
  it('defaults to all five labs in table order, keeps the given order, drops repeats, lists the valid names for an unknown one', () => {
    expect(parseLabList(undefined).map((l) => l.spec)).toEqual(['minecraft', 'smb:quick', 'smb', 'enterprise:quick', 'enterprise']);
    expect(parseLabList('smb:quick, minecraft,smb:quick').map((l) => l.spec)).toEqual(['smb:quick', 'minecraft']);
    expect(() => parseLabList('minecraft,smb:fast')).toThrow(/unknown lab 'smb:fast'; expected one of minecraft, smb:quick, smb, enterprise:quick, enterprise/);
    expect(() => parseLabList('')).toThrow(/comma-separated/);
  });

  it('targets: minecraft 2 min, smb --quick 2.5 min, smb 20 min, enterprise --quick 5 min, enterprise 30 min', () => {
    expect(Object.fromEntries(LAB_SPECS.map((l) => [l.spec, l.targetMs]))).toEqual({
      minecraft: 120_000,
      'smb:quick': 150_000,
      smb: 1_200_000,
      'enterprise:quick': 300_000,
      enterprise: 1_800_000,
    });
  });

  it('runs the CLI as a user does, --quick only for the quick specs', () => {
    const [mc, smbQuick] = parseLabList('minecraft,smb:quick');
    expect(cliArgs(mc!, '/tmp/o')).toEqual(['scripts/lab.mjs', 'run', 'minecraft', '--provider', 'sim', '--out', '/tmp/o', '--json']);
    expect(cliArgs(smbQuick!, '/tmp/o')).toEqual(['scripts/lab.mjs', 'run', 'smb', '--quick', '--provider', 'sim', '--out', '/tmp/o', '--json']);
  });

  it("the lab's namespaces: only the instances whose owner is in the CLI's tree, matched by `<prefix>-<host>`", () => {
    const metas = [
      { prefix: 'tlab-minecraf-2d5e4f7f', ownerPid: 12 },
      { prefix: 'tlab-minecraf-4fadf8f8', ownerPid: 77 },
      { prefix: 'tlab-smb-0000aaaa', ownerPid: 15 },
    ];
    const prefixes = ownedPrefixes(metas, new Set([10, 11, 12, 15]));
    expect(prefixes).toEqual(['tlab-minecraf-2d5e4f7f', 'tlab-smb-0000aaaa']);
    expect(inLab('tlab-minecraf-2d5e4f7f-cp1', prefixes)).toBe(true);
    expect(inLab('tlab-smb-0000aaaa-sw', prefixes)).toBe(true);
    // another run of the same lab, and a longer id that merely starts alike
    expect(inLab('tlab-minecraf-4fadf8f8-cp1', prefixes)).toBe(false);
    expect(inLab('tlab-minecraf-2d5e4f7f0-cp1', prefixes)).toBe(false);
  });
});

describe('parsing', () => {
  it('reads every form the duration formatter prints', () => {
    expect(parseDuration('430 ms')).toBe(430);
    expect(parseDuration('52.3 s')).toBe(52_300);
    expect(parseDuration('110 s')).toBe(110_000);
    expect(parseDuration('31 min 14 s')).toBe(31 * 60_000 + 14_000);
    expect(parseDuration('—')).toBeNull();
    expect(parseDuration('soon')).toBeNull();
  });

  it('takes the last plan line, with listr2 timestamp and tag in front', () => {
    const out = [
      '[13:40:00] [STARTED] run smb on sim',
      '[13:40:01] [OUTPUT] plan: 9 runs of 3 strategies on 1 lab instance; estimated 2 min 5 s (floor 40.0 s)',
      '[13:40:02] [OUTPUT] plan: 12 runs of 4 strategies on 2 lab instances; estimated 3 min 58 s (floor 1 min 30 s)',
      '[13:40:03] [OUTPUT] lab instance smb-1a2b3c4d up in 1510 ms',
    ].join('\n');
    expect(parsePlanLine(out)).toEqual({ runs: 12, strategies: 4, instances: 2, estimateMs: 238_000, floorMs: 90_000 });
    expect(parsePlanLine('plan: 3 runs of 1 strategy on 1 lab instance; estimated 31.0 s (floor 850 ms)')).toEqual({
      runs: 3,
      strategies: 1,
      instances: 1,
      estimateMs: 31_000,
      floorMs: 850,
    });
    expect(parsePlanLine('no plan here')).toBeNull();
  });

  it('reads the parent pid after the last ")" of a command name with spaces and parentheses', () => {
    expect(parseStatPpid('4321 (node (tsx) x) S 4300 4321 4300 0 -1 4194560 1200 0 0 0')).toBe(4300);
    expect(parseStatPpid('1 (systemd) S 0 1 1 0')).toBe(0);
    expect(parseStatPpid('garbage')).toBeNull();
  });

  it('process tree: the root and everything below it, nothing beside it', () => {
    const parentOf = new Map([
      [10, 1],
      [11, 10],
      [12, 11],
      [13, 1],
      [14, 13],
      [15, 12],
      [16, 10],
    ]);
    expect([...processTree(10, parentOf)].sort((a, b) => a - b)).toEqual([10, 11, 12, 15, 16]);
    expect([...processTree(99, parentOf)]).toEqual([99]);
  });

  it('PSS: the Pss line, not Pss_Anon or Rss', () => {
    const rollup = [
      '55d0a0000000-7ffd12345000 ---p 00000000 00:00 0                          [rollup]',
      'Rss:              117200 kB',
      'Pss:               61234 kB',
      'Pss_Anon:          50000 kB',
      'Pss_File:          11234 kB',
    ].join('\n');
    expect(parsePssKib(rollup)).toBe(61_234);
    expect(parsePssKib('Rss: 10 kB')).toBeNull();
  });
});

describe('runs of a results.json', () => {
  it('counts measured runs, inside/outside band, without band and unrecovered; unsupported runs are not runs', () => {
    const c = countRuns([
      { supported: false, withinBand: null },
      { withinBand: true },
      { supported: true, withinBand: true },
      { withinBand: false, recovered: false },
      { withinBand: null },
      {},
    ]);
    expect(c).toEqual({ total: 5, inside: 2, outside: 1, noBand: 2, unrecovered: 1 });
  });
});

describe('verdicts', () => {
  it('passes inside every target (95.4 s ≤ 120 s, 95.4/70 = 1.36 ≤ 1.5, 1.5 GiB ≤ 8 GiB) and at the exact limits', () => {
    expect(verdicts(row())).toEqual({ time: 'PASS', floor: 'PASS', memory: 'PASS', overall: 'PASS', why: [] });
    // 120 s is the target itself, 105 s = 1.5 × 70 s, 8 GiB = 8 × 1024 × 1024 KiB
    expect(verdicts(row({ wallMs: 105_000, floorMs: 70_000, peakPssKib: 8 * 1024 * 1024 })).overall).toBe('PASS');
    expect(verdicts(row({ wallMs: 120_000, floorMs: 80_000 })).time).toBe('PASS');
  });

  it('fails each target on its own and says why', () => {
    const v = verdicts(row({ spec: 'smb:quick', wallMs: 160_000, floorMs: 100_000, peakPssKib: 9 * 1024 * 1024, exitCode: 1 }));
    expect([v.time, v.floor, v.memory, v.overall]).toEqual(['FAIL', 'FAIL', 'FAIL', 'FAIL']);
    // 160 s > 150 s; 160/100 = 1.60; 9 GiB
    expect(v.why).toEqual(['wall time 2 min 40 s > 2 min 30 s', 'wall time 1.60× its floor', 'peak memory 9.00 GiB > 8.00 GiB', 'CLI exit 1']);
  });

  it('a run without plan line, results or clean teardown is no pass even when fast', () => {
    const v = verdicts(row({ floorMs: null, runs: null, leftover: ['tlab-minecraf-0a0b0c0d-cp1'] }));
    expect(v.floor).toBe('n/a');
    expect(v.overall).toBe('FAIL');
    expect(v.why).toEqual(['no floor (no plan line)', 'no results.json', '1 namespace(s) left']);
    expect(verdicts(row({ exitCode: null, signal: 'SIGKILL' })).why).toEqual(['CLI killed by SIGKILL']);
  });
});

describe('the section', () => {
  it('renders one row', () => {
    // 118 s and 70.0 s: the formatter keeps "N s" from 100 s and one decimal below; 2 min 0 s = the 120 s target
    expect(renderRow(row())).toBe(
      '| minecraft | 95.4 s | 118 s | 70.0 s | 1.36× | 1 | 1 / 2 (1 without band) | 0 | 1.50 GiB (40 proc.) | ≤ 2 min 0 s PASS | ≤ 1.5× PASS | ≤ 8.00 GiB PASS | PASS | 2026-11-30 13:45 UTC |',
    );
    expect(renderRow(row({ runs: { total: 24, inside: 4, outside: 8, noBand: 12, unrecovered: 6 } })).split(' | ')[6]).toBe('4 / 24 (8 outside, 12 without band)');
    expect(renderRow(row({ runs: { total: 9, inside: 7, outside: 2, noBand: 0, unrecovered: 1 }, peakPssKib: 800 * 1024 })).split(' | ').slice(6, 9)).toEqual([
      '7 / 9 (2 outside)',
      '1',
      '800 MiB (40 proc.)',
    ]);
  });

  it('keeps the rows of labs not run again, in table order; the stored rows survive the comment and its "--"', () => {
    const oldMc = row({ wallMs: 200_000 });
    const smb = row({ spec: 'smb', wallMs: 900_000 });
    const newMc = row({ wallMs: 90_000 });
    const ent = row({ spec: 'enterprise:quick', wallMs: 250_000 });
    const merged = mergeRows([smb, oldMc], [ent, newMc]);
    expect(merged.map((r) => [r.spec, r.wallMs])).toEqual([
      ['minecraft', 90_000],
      ['smb', 900_000],
      ['enterprise:quick', 250_000],
    ]);
    const comment = encodeRows(merged);
    // an HTML comment may not hold "--": only the delimiters do
    expect(comment.slice(4, -3)).not.toContain('--');
    const section = renderSection(merged);
    expect(decodeRows(section)).toEqual(merged);
    expect(decodeRows('## Whole-lab runs\n\nNot measured yet.')).toEqual([]);
    expect(section).toMatch(/^## Whole-lab runs\n/);
    expect(section).toContain('| lab | wall time | estimate | floor | wall/floor | instances | runs inside band / total | unrecovered | peak memory (PSS) |');
    expect(section).toContain('- minecraft: `npm run bench:whole -- --labs minecraft --no-write` → `node scripts/lab.mjs run minecraft --provider sim --out <tmp> --json`');
  });
});

describe('docs/bench-labs.md sections', () => {
  const other = '<!-- bench:bring-up:start -->\n## Sim bring-up\n\n| minecraft | 4 | 1.44 s |\n<!-- bench:bring-up:end -->';

  it('a new document gets the title and the section', () => {
    const doc = replaceSection(null, 'whole-labs', '## Whole-lab runs\n\nA');
    expect(doc.startsWith('# Sim benchmarks\n')).toBe(true);
    expect(doc.endsWith('<!-- bench:whole-labs:start -->\n## Whole-lab runs\n\nA\n<!-- bench:whole-labs:end -->\n')).toBe(true);
  });

  it('replaces only its own section and leaves the other byte for byte', () => {
    const doc = `# T\n\nintro\n\n${other}\n\n<!-- bench:whole-labs:start -->\nold\n<!-- bench:whole-labs:end -->\n\ntail\n`;
    const next = replaceSection(doc, 'whole-labs', 'new\n');
    expect(next).toBe(`# T\n\nintro\n\n${other}\n\n<!-- bench:whole-labs:start -->\nnew\n<!-- bench:whole-labs:end -->\n\ntail\n`);
    expect(readSection(next, 'whole-labs')).toBe('new');
    expect(readSection(next, 'bring-up')).toBe('## Sim bring-up\n\n| minecraft | 4 | 1.44 s |');
  });

  it('appends a missing section after the others and refuses a start marker without its end', () => {
    expect(replaceSection(`# T\n\n${other}\n\n`, 'whole-labs', 'x')).toBe(`# T\n\n${other}\n\n<!-- bench:whole-labs:start -->\nx\n<!-- bench:whole-labs:end -->\n`);
    expect(() => replaceSection('# T\n<!-- bench:whole-labs:start -->\nhalf', 'whole-labs', 'x')).toThrow(/has no <!-- bench:whole-labs:end -->/);
    expect(readSection('# T', 'whole-labs')).toBeNull();
  });
});
