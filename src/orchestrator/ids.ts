/** Lab instance ids and reproducible randomness. */
import { randomBytes } from 'node:crypto';

/** `<lab>-<4 hex>` and the prefix that names every namespace, process and container of the lab. */
export function newLabId(labName: string): { id: string; prefix: string } {
  // 4 bytes: two runs of one lab (parallel lanes, two terminals) never draw the same id in practice, and
  // the exclusive creation of the state directory catches the rest (src/state/state.ts)
  const hex = randomBytes(4).toString('hex');
  const short = labName.replace(/[^a-z0-9]/gi, '').slice(0, 8).toLowerCase() || 'lab';
  return { id: `${short}-${hex}`, prefix: `tlab-${short}-${hex}` };
}

/** mulberry32: a small seeded PRNG so "random" victims are reproducible per run */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
