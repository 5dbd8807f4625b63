/** `lab load <url> --rate R --duration D` — one open-loop load run against any http(s) URL. */
import { Option, type Command } from 'commander';
import { statSync } from 'node:fs';
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
    // the bounds: the lab schema's traffic.rate and traffic.connections; a run of at most a day; a timeout of at most 10 min
    .requiredOption('--rate <r>', 'requests per second (at most 100000)', positiveNumber('--rate', 100_000))
    .requiredOption('--duration <s>', 'seconds (at most 86400)', positiveNumber('--duration', 86_400))
    .option('--connections <c>', 'connections (default 16, at most 1024)', positiveInt('--connections', 1024))
    .addOption(new Option('--mode <mode>', 'reuse connections or open one per request').choices(['keepalive', 'new-connection']))
    .option('--timeout <ms>', 'per-request timeout in ms (default 2000, at most 600000)', positiveInt('--timeout', 600_000))
    .option('--insecure', 'https: do not verify the certificate')
    .option('--ca <file>', 'https: PEM CA file')
    .option('--json', 'print one JSON object')
    .action(async (url: string, f: LoadFlags) => {
      if (!/^https?:\/\//.test(url)) throw new UsageError(`lab load: <url> must start with http:// or https://, got '${url}'`);
      try {
        new URL(url);
      } catch {
        throw new UsageError(`lab load: <url> '${url}' is not a valid URL; expected http(s)://host[:port]/path with a port in 1–65535`);
      }
      if (f.ca !== undefined) {
        let isFile = false;
        try {
          isFile = statSync(f.ca).isFile();
        } catch {
          /* missing */
        }
        if (!isFile) throw new UsageError(`--ca ${f.ca}: no such file; expected a PEM CA certificate file`);
      }
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
