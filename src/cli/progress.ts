/**
 * listr2 progress for the long verbs (run, up, render). Output goes to stderr so stdout stays for
 * results (`--json` prints only the JSON summary there). On a TTY: the default renderer (live title
 * + the last lines of detail). Not a TTY, CI=true or TERM=dumb: the verbose renderer, one plain
 * timestamped line per event ([STARTED] / [TITLE] / [OUTPUT] / [COMPLETED] / [FAILED]).
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
              task.output = m;
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
