/**
 * A Docker engine for a test file (call useDockerd() at the top level): beforeAll uses the engine
 * that answers or starts dockerd (root); afterAll stops it only when this file started it, so a
 * developer's own engine is never touched. Register your own cleanup AFTER calling this: vitest
 * runs afterAll hooks in reverse order, so your containers go before the engine does.
 */
import { afterAll, beforeAll } from 'vitest';
import Docker from 'dockerode';
import { ensureDockerd, type DockerdHandle, type DockerdOptions } from '../../src/providers/runtimes/docker/dockerd.js';

export interface UsedDockerd {
  /** the client (valid from beforeAll on) */
  docker(): Docker;
  handle(): DockerdHandle;
}

export function useDockerd(opts: DockerdOptions = {}): UsedDockerd {
  let handle: DockerdHandle | undefined;
  let docker: Docker | undefined;
  beforeAll(async () => {
    handle = await ensureDockerd({ log: (m) => console.log(m), ...opts });
    docker = new Docker({ socketPath: handle.socket });
  }, (opts.timeoutMs ?? 60_000) + 10_000);
  afterAll(async () => {
    if (handle?.started) await handle.stop();
  }, 60_000);
  return {
    docker() {
      if (!docker) throw new Error('useDockerd: the engine is not ready (use it from beforeAll/it, not at collection time)');
      return docker;
    },
    handle() {
      if (!handle) throw new Error('useDockerd: the engine is not ready');
      return handle;
    },
  };
}
