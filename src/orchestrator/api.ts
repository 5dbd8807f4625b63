/**
 * The engine entry points the CLI verbs call (src/cli/commands/*): the CLI parses flags, loads and
 * validates the lab (nothing starts before the whole model validates), then calls exactly one of
 * these. The bodies delegate to the orchestrator flow (./engine.ts, ./run.ts); the signatures and option/return types are the contract with the CLI.
 * `listLabs` and `cleanLabs` only need the state directory, so they already work (src/state/clean.ts).
 */
import type { Lab } from '../model/types.js';
import { UsageError } from '../util/errors.js';
import { stateRoot } from '../state/state.js';
import { loadPlugin } from '../util/plugin.js';
import { runLoadCommand } from '../traffic/cli-load.js';
import { cleanAll, listLabStates, type CleanReport, type LabListing } from '../state/clean.js';

export type { CleanReport, LabListing } from '../state/clean.js';

/** Progress callbacks (the CLI renders them with listr2; plain lines when not a TTY / CI). */
export interface Progress {
  /** a new phase begins, e.g. "strategy talos-vip+metallb-l2: apply" */
  step(title: string): void;
  /** a line of detail inside the current phase */
  log(message: string): void;
}

export interface RunOptions {
  /** 'sim' | 'docker' | 'qemu' | 'auto' (validated by the CLI) */
  provider: string;
  /** --strategies / --drills as given; ALREADY applied to `lab` by the CLI (src/model/select.ts) */
  strategies?: string[];
  drills?: string[];
  /** --quick; ALREADY applied to `lab` (1 repeat, short windows, the lab's quick drills) */
  quick: boolean;
  /** --repeat N; ALREADY applied to `lab.repeats` */
  repeat?: number;
  /** output directory for results.json, report.md, report.html, samples/ */
  out: string;
  /** leave the lab running after the run (`lab down <id>` removes it) */
  keep: boolean;
  /** --json: the CLI prints only the JSON summary on stdout */
  json: boolean;
  /** --dry-run: plan and render artifacts, touch nothing */
  dryRun: boolean;
  /** --render DIR: where dry-run artifacts are written (default <out>/render) */
  renderDir?: string;
  /** lab instances at once (each strategy on its own); default: what the machine holds */
  parallel?: number;
  /** serve the live page (127.0.0.1 unless a host is given) */
  live?: { host?: string; port?: number };
  /** a crash nobody can take over: the node's downtime */
  downtimeMs?: number;
  /** aborted on Ctrl-C / SIGTERM: stop, tear down, then reject */
  signal?: AbortSignal;
  progress: Progress;
}

export interface RunSummary {
  lab: string;
  provider: string;
  /** lab instance id (absent for dry runs) */
  id?: string;
  out: string;
  /** files written (results.json, report.md, report.html, rendered artifacts…) */
  files: string[];
  dryRun: boolean;
  /** runs measured / runs skipped as unsupported, when known */
  runs?: number;
  unsupported?: number;
  /** true when every threshold held (absent when not evaluated) */
  thresholdsOk?: boolean;
}

export interface UpOptions {
  provider: string;
  out: string;
  signal?: AbortSignal;
  progress: Progress;
}

export interface LoadOptions {
  /** req/s */
  rate: number;
  /** seconds */
  durationS: number;
  connections?: number;
  mode?: 'keepalive' | 'new-connection';
  timeoutMs?: number;
  json: boolean;
  insecure?: boolean;
  caFile?: string;
  signal?: AbortSignal;
}

export async function runLab(lab: Lab, opts: RunOptions): Promise<RunSummary> {
  // the engine (and every plug-in behind it) loads only when a verb needs it: --help stays fast
  const { engineRun } = await import('./engine.js');
  const r = await engineRun(lab, {
    provider: opts.provider,
    out: opts.out,
    keep: opts.keep,
    dryRun: opts.dryRun,
    renderDir: opts.renderDir,
    parallel: opts.parallel,
    live: opts.live,
    downtimeMs: opts.downtimeMs,
    signal: opts.signal,
    progress: opts.progress,
  });
  const runs = r.results?.runs ?? [];
  return {
    lab: lab.name,
    provider: r.results?.provider.name ?? opts.provider,
    ...(r.keptId ? { id: r.keptId } : {}),
    out: r.out,
    files: r.files,
    dryRun: opts.dryRun,
    runs: runs.filter((x: { supported?: boolean }) => x.supported !== false).length,
    unsupported: runs.filter((x: { supported?: boolean }) => x.supported === false).length,
  };
}

export async function upLab(lab: Lab, opts: UpOptions): Promise<{ id: string; prefix: string }> {
  const { engineUp } = await import('./engine.js');
  const r = await engineUp(lab, { provider: opts.provider, out: opts.out, signal: opts.signal, progress: opts.progress });
  opts.progress.log(`lab ${r.id} is up in ${Math.round(r.bringUpMs)} ms (prefix ${r.prefix}); remove it with: lab down ${r.id}`);
  return { id: r.id, prefix: r.prefix };
}

export async function downLab(id: string): Promise<void> {
  const known = listLabStates().find((l) => l.id === id);
  if (!known) throw new UsageError(`no lab '${id}' in ${stateRoot()}; running labs: ${listLabStates().map((l) => l.id).join(', ') || 'none'}`);
  await cleanAll({ id });
}

export async function listLabs(): Promise<LabListing[]> {
  return listLabStates();
}

export async function cleanLabs(opts: { id?: string; all?: boolean }): Promise<CleanReport> {
  return cleanAll(opts);
}

export async function regenerateReport(dir: string): Promise<string[]> {
  const regenerateReports = await loadPlugin<(d: string) => Promise<string[]>>('report', 'writer', import.meta.url, '../report/writer.js', 'regenerateReports');
  return regenerateReports(dir);
}

export async function runLoad(url: string, opts: LoadOptions): Promise<void> {
  await runLoadCommand(url, { ...opts });
}
