/**
 * Builds the docker runtime's appliance image (offline: debootstrap base + pinned Debian
 * packages) if it is not there yet, so the docker e2e files find it cached. `make test` runs it
 * in the background while the typecheck and the unit tests run: the build is about 1.5 minutes of
 * mostly network and dpkg time that would otherwise sit on the e2e phase, where nothing runs
 * beside it. Uses the engine that answers or starts dockerd and stops only a dockerd it started.
 *
 * Usage (root): node --import tsx scripts/warm-appliance.ts
 * Exit 0: the image is there (built or reused); 1: it could not be built (the message says why;
 * the docker e2e files then try themselves and fail with the same cause).
 * SIGTERM/SIGINT abort the build and stop the engine it started.
 */
import Docker from 'dockerode';
import { ensureDockerd, type DockerdHandle } from '../src/providers/runtimes/docker/dockerd.js';
import { ensureApplianceImage } from '../src/providers/runtimes/docker/appliance.js';

const log = (m: string) => console.log(`[warm-appliance] ${m}`);
const ac = new AbortController();
// `on`, not `once`: execa's exit hook (signal-exit) re-raises a signal when it sees itself as the
// only listener left, which a `once` listener is by the time the hook runs
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => ac.abort(new Error(`${sig}`)));

let engine: DockerdHandle | undefined;
let code = 0;
try {
  engine = await ensureDockerd({ log, signal: ac.signal });
  const img = await ensureApplianceImage(new Docker({ socketPath: engine.socket }), { offline: true, log, signal: ac.signal });
  log(`${img.image} ${img.built ? 'built' : 'already there'}`);
} catch (e) {
  log(`failed: ${(e as Error).message}`);
  code = 1;
} finally {
  if (engine?.started) await engine.stop();
}
process.exit(code);
