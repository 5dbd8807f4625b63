/**
 * listr2 progress for the long verbs (run, up, render). Output goes to stderr so stdout stays for
 * results (`--json` prints only the JSON summary there). On a TTY: the default renderer (live title
 * + the last lines of detail). Not a TTY, CI=true or TERM=dumb: the verbose renderer, one plain
 * timestamped line per event ([STARTED] / [TITLE] / [OUTPUT] / [COMPLETED] / [FAILED]).
 * Every line is capped (capListing): a plan step of a big topology lists one command per
 * namespace, and a terminal or CI log is no place for a line of megabytes.
 */
import { Listr, ListrLogger, LISTR_LOGGER_STDERR_LEVELS, PRESET_TIMESTAMP, ProcessOutput } from 'listr2';
import type { Progress } from '../orchestrator/api.js';

export function plainOutput(): boolean {
  return !process.stderr.isTTY || process.env.CI === 'true' || process.env.CI === '1' || process.env.TERM === 'dumb';
}

/** both of listr2's streams on stderr: stdout is for results */
function toStderr(): ProcessOutput {
  return new ProcessOutput(process.stderr, process.stderr);
}

/** longest line shown; a listing keeps its first MAX_ITEMS entries */
export const MAX_LINE = 400;
export const MAX_ITEMS = 8;

/** A long listing (`a && b && …`, `a; b; …`, `a, b, …`) → its first entries and "… and N more"; anything still too long is cut with the count of characters left out. */
export function capListing(text: string): string {
  return text
    .split('\n')
    .map((line) => {
      if (line.length <= MAX_LINE) return line;
      for (const sep of [' && ', '; ', ', ']) {
        const parts = line.split(sep);
        if (parts.length > MAX_ITEMS + 1) line = `${parts.slice(0, MAX_ITEMS).join(sep)}${sep}… and ${(parts.length - MAX_ITEMS).toLocaleString('en-US')} more`;
        if (line.length <= MAX_LINE) return line;
      }
      return `${line.slice(0, MAX_LINE)} … (${(line.length - MAX_LINE).toLocaleString('en-US')} more characters)`;
    })
    .join('\n');
}

/** Run `fn` as one listr2 task whose title follows the engine's steps and whose output shows its log. */
export async function withProgress<T>(title: string, fn: (progress: Progress) => Promise<T>): Promise<T> {
  let result: T | undefined;
  const list = new Listr(
    [
      {
        title,
        task: async (_ctx, task) => {
          const progress: Progress = {
            step: (s) => {
              task.title = `${title} · ${s}`;
            },
            log: (m) => {
              task.output = capListing(m);
            },
          };
          result = await fn(progress);
          task.title = `${title} · done`;
        },
        rendererOptions: { outputBar: 6, persistentOutput: false },
      },
    ],
    {
      renderer: 'default',
      fallbackRenderer: 'verbose',
      fallbackRendererCondition: plainOutput,
      // the CLI owns SIGINT/SIGTERM (abort → teardown → exit 130)
      registerSignalListeners: false,
      exitOnError: true,
      rendererOptions: { logger: new ListrLogger({ useIcons: true, toStderr: [], processOutput: toStderr() }), showErrorMessage: false },
      fallbackRendererOptions: {
        logTitleChange: true,
        timestamp: PRESET_TIMESTAMP,
        logger: new ListrLogger({ useIcons: false, toStderr: LISTR_LOGGER_STDERR_LEVELS, processOutput: toStderr() }),
      },
    },
  );
  await list.run();
  return result as T;
}
