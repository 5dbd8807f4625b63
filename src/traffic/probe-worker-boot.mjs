/**
 * Entry of the outage probe's worker thread (started by probe-worker.ts). tsx registers its
 * loader hooks on the main thread only (`node --import tsx` does nothing in a worker), so the
 * worker registers them itself before it loads the TypeScript side. Plain JavaScript on purpose:
 * this file is what Node loads before any TypeScript support exists in the thread.
 */
import { register } from 'tsx/esm/api';

register();
await import('./probe-worker-main.ts');
