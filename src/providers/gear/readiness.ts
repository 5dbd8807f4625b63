/**
 * A named readiness check: poll `probe` until it returns true; on timeout (or the process it
 * waits for exiting) throw a ReadinessError carrying that process's last log lines, so the error
 * says why a daemon never came up.
 */
import type { HostProc, HostRuntime } from '../runtimes/types.js';
import { ReadinessError } from '../../util/errors.js';
import { sleep } from '../../util/proc.js';

export async function waitFor(
  check: string,
  target: string,
  probe: () => Promise<boolean>,
  o: { timeoutMs: number; rt?: Pick<HostRuntime, 'isRunning' | 'logTail'>; proc?: HostProc; intervalMs?: number; signal?: AbortSignal },
): Promise<void> {
  const deadline = Date.now() + o.timeoutMs;
  let last: string | undefined;
  const tail = () => (o.rt && o.proc ? o.rt.logTail(o.proc, 20) : '');
  for (;;) {
    o.signal?.throwIfAborted();
    try {
      if (await probe()) return;
    } catch (e) {
      last = (e as Error).message.split('\n')[0];
    }
    if (o.rt && o.proc && !o.rt.isRunning(o.proc)) {
      await sleep(50);
      throw new ReadinessError(check, target, o.timeoutMs, tail(), `the process exited${last ? ` (${last})` : ''}`);
    }
    if (Date.now() > deadline) throw new ReadinessError(check, target, o.timeoutMs, tail(), last);
    await sleep(o.intervalMs ?? 50);
  }
}
