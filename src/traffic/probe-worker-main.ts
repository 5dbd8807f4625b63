/**
 * The worker-thread side of probe-worker.ts: hosts outage probes (outage.ts) on an event loop of
 * their own, so the load generator and the stream probes on the agent's main thread cannot delay
 * the probe's timers. Every probe of this worker draws its source ports from ONE PortCycle, which
 * starts where the previous worker of the process left it (workerData.portStart); each answer to
 * `stop` carries the cycle's next port so the host can hand it on.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { PortCycle, startOutageProbe, type OutageProbe } from './outage.js';
import type { ProbeWorkerData, WorkerReply, WorkerRequest } from './probe-worker.js';

const port = parentPort;
if (!port) throw new Error('probe-worker-main.ts runs inside a worker thread (see probe-worker.ts)');

const data = (workerData ?? {}) as ProbeWorkerData;
const cycle = data.portStart === undefined ? new PortCycle() : new PortCycle(undefined, undefined, data.portStart);
const probes = new Map<number, OutageProbe>();

function probe(id: number): OutageProbe {
  const p = probes.get(id);
  if (!p) throw new Error(`probe worker: no probe ${id}`);
  return p;
}

async function handle(m: WorkerRequest): Promise<unknown> {
  switch (m.op) {
    case 'start': {
      if (probes.has(m.id)) throw new Error(`probe worker: probe ${m.id} already running`);
      const { sourcePorts, ...rest } = m.options;
      const p = startOutageProbe({ ...rest, sourcePorts: sourcePorts === 'kernel' ? 'kernel' : cycle });
      probes.set(m.id, p);
      return { startedAt: p.startedAt, intervalMs: p.intervalMs };
    }
    case 'status': {
      const p = probe(m.id);
      const st: Record<string, unknown> = { ...p.status(m.since) };
      if (typeof m.cursor === 'number') {
        const all = p.samples();
        st.samples = all.slice(m.cursor).map((x) => ({ t: x.t, ok: x.ok, latencyMs: x.latencyMs }));
        st.cursor = all.length;
      }
      return st;
    }
    case 'samples':
      return probe(m.id).samples();
    case 'stop': {
      const p = probe(m.id);
      const samples = await p.stop();
      probes.delete(m.id);
      return { samples, nextPort: cycle.nextPort };
    }
  }
}

port.on('message', (m: WorkerRequest) => {
  handle(m).then(
    (value) => port.postMessage({ req: m.req, ok: true, value } satisfies WorkerReply),
    (e: unknown) => port.postMessage({ req: m.req, ok: false, error: e instanceof Error ? e.message : String(e) } satisfies WorkerReply),
  );
});
port.postMessage({ req: 0, ok: true, value: 'ready' } satisfies WorkerReply);
