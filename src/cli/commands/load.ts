/** `lab load <url> --rate R --duration D` — one open-loop load run against any http(s) URL. */
import { Option, type Command } from 'commander';
import { runLoad } from '../../orchestrator/api.js';
import { UsageError } from '../../util/errors.js';
import { positiveInt, positiveNumber, withAbort } from '../shared.js';

interface LoadFlags {
  rate: number;
  duration: number;
  connections?: number;
  mode?: 'keepalive' | 'new-connection';
  timeout?: number;
  json?: boolean;
  insecure?: boolean;
  ca?: string;
}

export function registerLoad(program: Command): void {
  program
    .command('load <url>')
    .description('open-loop constant-rate HTTP load (latency from the intended send time, HDR percentiles)')
    .requiredOption('--rate <r>', 'requests per second', positiveNumber('--rate'))
    .requiredOption('--duration <s>', 'seconds', positiveNumber('--duration'))
    .option('--connections <c>', 'connections (default 16)', positiveInt('--connections'))
    .addOption(new Option('--mode <mode>', 'reuse connections or open one per request').choices(['keepalive', 'new-connection']))
    .option('--timeout <ms>', 'per-request timeout in ms (default 2000)', positiveInt('--timeout'))
    .option('--insecure', 'https: do not verify the certificate')
    .option('--ca <file>', 'https: PEM CA file')
    .option('--json', 'print one JSON object')
    .action(async (url: string, f: LoadFlags) => {
      if (!/^https?:\/\//.test(url)) throw new UsageError(`lab load: <url> must start with http:// or https://, got '${url}'`);
      await withAbort((signal) =>
        runLoad(url, {
          rate: f.rate,
          durationS: f.duration,
          connections: f.connections,
          mode: f.mode,
          timeoutMs: f.timeout,
          json: Boolean(f.json),
          insecure: f.insecure,
          caFile: f.ca,
          signal,
        }),
      );
    });
}
