/**
 * A full garbage collection on request, between measurements. Agents live for the whole lab and
 * the garbage of every drill (sockets, TLS sessions, samples) is promoted to V8's old generation
 * until a mark-compact collects it, stopping the process for tens to hundreds of milliseconds: in
 * the client that is a stall of every probe (158 ms measured inside a baseline), in a node agent
 * a stall of the echo "pod", kube-proxy and API server it hosts. Collecting while no drill
 * measures puts that pause where it costs nothing. Needs `--expose-gc` (the agents are started
 * with it: src/providers/gear/agent-bundle.ts); without it nothing happens.
 */
import { getHeapStatistics } from 'node:v8';

const gc = (globalThis as { gc?: () => void }).gc;
let usedAfterLast = 0;

export interface Collected {
  collected: boolean;
  /** how long the collection stopped the process */
  ms: number;
  /** heap in use afterwards, MB */
  heapMB: number;
}

/** Collect when the heap grew by at least `minGrowthBytes` since the last collection here. */
export function collectHeap(minGrowthBytes = 0): Collected {
  const used = getHeapStatistics().used_heap_size;
  if (!gc || used - usedAfterLast < minGrowthBytes) return { collected: false, ms: 0, heapMB: Math.round(used / 2 ** 20) };
  const t = performance.now();
  gc();
  usedAfterLast = getHeapStatistics().used_heap_size;
  return { collected: true, ms: Math.round(performance.now() - t), heapMB: Math.round(usedAfterLast / 2 ** 20) };
}
