import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from '../../src/model/load.js';
import { AGENT_NODE_FLAGS } from '../../src/providers/gear/agent-bundle.js';

// an agent process: started with the agents' node flags, it collects only when asked and when its heap grew enough
const script = `
import { collectHeap } from ${JSON.stringify(join(REPO_ROOT, 'src/emulation/agent/heap.ts'))};
const out = [collectHeap()];
let keep = [];
for (let i = 0; i < 2e5; i++) keep.push({ i, s: 'x'.repeat(64) });  // ~30 MB, then garbage
keep = null;
out.push(collectHeap(8 * 2 ** 20));  // grew by far more than 8 MB since the first
out.push(collectHeap(8 * 2 ** 20));  // nothing new since
console.log(JSON.stringify(out));
`;
const run = (flags: readonly string[]) =>
  JSON.parse(execFileSync(process.execPath, [...flags, '--import', 'tsx', '--input-type=module', '-e', script], { cwd: REPO_ROOT, encoding: 'utf8' })) as { collected: boolean; heapMB: number }[];

describe('agent heap collection between drills', () => {
  it('collects with the agents’ flags when the heap grew past the threshold, and not again until it grows', () => {
    const [first, grown, again] = run(AGENT_NODE_FLAGS);
    expect(first!.collected).toBe(true);
    expect(grown!.collected).toBe(true);
    expect(grown!.heapMB).toBeLessThan(20);
    expect(again!.collected).toBe(false);
  });
  it('does nothing in a process without --expose-gc', () => {
    expect(run([]).every((c) => !c.collected)).toBe(true);
  });
});
