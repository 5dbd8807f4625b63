/**
 * The run's events as a JSONL file, so another process can follow a run it did not start
 * (`lab watch <id>`): the run appends every RunEvent to `<output dir>/live.jsonl` (the lab state records where)
 * (`writeEventLog`), a watcher tails it from its start (`followFile`) into its own RunEvents bus
 * and live server.
 */
import { createWriteStream, statSync, watch, type FSWatcher, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Listener, RunEvent } from '../orchestrator/events.js';

export interface FollowOptions {
  /** how often the file is checked when no change notification came (default 250 ms) */
  pollMs?: number;
  /** a line that is not a RunEvent (default: skipped silently) */
  onBadLine?: (line: string, error: Error) => void;
}

const CHUNK = 1 << 20;

/**
 * Tail `path` from its start: every complete line is parsed and handed to `onEvent`, in order;
 * a line still being written waits for its newline. A file that does not exist yet is waited
 * for; a file that shrinks or is replaced (a new run under the same name) is read again from its
 * start — its first event is then a `run-start`, which resets a live view. Resolves once `signal`
 * is aborted.
 */
export async function followFile(path: string, onEvent: (e: RunEvent) => void, signal: AbortSignal, opts: FollowOptions = {}): Promise<void> {
  const pollMs = opts.pollMs ?? 250;
  let pos = 0;
  let ino: number | null = null;
  let rest = '';
  const decoder = new TextDecoder();
  let watcher: FSWatcher | null = null;
  let wake: (() => void) | null = null;
  const nudge = () => wake?.();
  signal.addEventListener('abort', nudge, { once: true });

  const handle = (line: string) => {
    if (!line.trim()) return;
    let e: RunEvent;
    try {
      e = JSON.parse(line) as RunEvent;
      if (!e || typeof e !== 'object' || typeof e.type !== 'string' || typeof e.t !== 'number') throw new Error('not a RunEvent (needs type and t)');
    } catch (err) {
      opts.onBadLine?.(line, err as Error);
      return;
    }
    onEvent(e);
  };

  try {
    while (!signal.aborted) {
      let st: Stats | null = null;
      try {
        st = statSync(path);
      } catch {
        st = null; // not there (yet)
      }
      if (st && (st.ino !== ino || st.size < pos)) {
        // first sight, replaced, or truncated: from the start
        ino = st.ino;
        pos = 0;
        rest = '';
        watcher?.close();
        watcher = null;
      }
      if (st && !watcher) {
        try {
          watcher = watch(path, { persistent: false }, nudge);
          watcher.on('error', () => {
            watcher?.close();
            watcher = null;
          });
        } catch {
          watcher = null; // polling alone then
        }
      }
      if (st && st.size > pos) {
        const fh = await open(path, 'r');
        try {
          const buf = Buffer.alloc(CHUNK);
          while (!signal.aborted) {
            const { bytesRead } = await fh.read(buf, 0, CHUNK, pos);
            if (!bytesRead) break;
            pos += bytesRead;
            const text = rest + decoder.decode(buf.subarray(0, bytesRead), { stream: true });
            const lines = text.split('\n');
            rest = lines.pop()!;
            for (const l of lines) handle(l);
          }
        } finally {
          await fh.close();
        }
        continue;
      }
      await new Promise<void>((ok) => {
        const timer = setTimeout(done, pollMs);
        function done() {
          clearTimeout(timer);
          wake = null;
          ok();
        }
        wake = done;
        if (signal.aborted) done();
      });
    }
  } finally {
    watcher?.close();
    signal.removeEventListener('abort', nudge);
  }
}

/**
 * The run's side: append every event to `path` as one JSON line (buffered, in order). Subscribe
 * `write` to the run's RunEvents; `close()` flushes and closes the file.
 */
export function writeEventLog(path: string): { write: Listener; close(): Promise<void> } {
  const out = createWriteStream(path, { flags: 'a' });
  let failed: Error | null = null;
  out.on('error', (e) => {
    failed = e;
  });
  return {
    write: (e) => {
      if (failed) throw failed; // RunEvents drops a listener that throws: the run goes on
      out.write(JSON.stringify(e) + '\n');
    },
    close: () => new Promise<void>((ok) => (out.closed ? ok() : out.end(() => ok()))),
  };
}
