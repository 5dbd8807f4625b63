/**
 * Typed errors at the edges. The CLI's one top-level catch maps them to exit
 * codes: LabInputError → 2, PrerequisiteError → 3, anything else → 1.
 */

/** One problem in one input file: where (file + path inside it) and what was expected. */
export interface InputIssue {
  file: string;
  /** dotted path inside the file, e.g. `network.vip` or `nodes[2].name`; '' for the whole file */
  path: string;
  message: string;
}

export class LabError extends Error {
  readonly exitCode: number = 1;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad input (lab/topology file, CLI usage). Carries every issue found, not just the first. */
export class LabInputError extends LabError {
  override readonly exitCode = 2;
  constructor(readonly issues: InputIssue[]) {
    super(LabInputError.format(issues));
  }
  static format(issues: InputIssue[]): string {
    return issues.map((i) => `${i.file}${i.path ? `: ${i.path}` : ''}: ${i.message}`).join('\n');
  }
  static one(file: string, path: string, message: string): LabInputError {
    return new LabInputError([{ file, path, message }]);
  }
}

/** Usage error of the CLI itself (unknown flag value, missing argument). Exit 2 like bad input. */
export class UsageError extends LabError {
  override readonly exitCode = 2;
}

/** Something the machine lacks (root, frr, docker…). `fix` is the exact command that fixes it. */
export class PrerequisiteError extends LabError {
  override readonly exitCode = 3;
  constructor(
    readonly what: string,
    readonly fix: string,
  ) {
    super(`${what}\n  fix: ${fix}`);
  }
}

/** A process the runner started failed: everything needed to understand why. */
export class ProcessError extends LabError {
  constructor(
    readonly command: string,
    readonly exitCode_: number | undefined,
    readonly signal: string | undefined,
    readonly stdout: string,
    readonly stderr: string,
    readonly durationMs: number,
    readonly timedOut = false,
  ) {
    super(
      `command failed${timedOut ? ' (timed out)' : ''}: ${command}` +
        (exitCode_ !== undefined ? ` (exit ${exitCode_})` : '') +
        (signal ? ` (signal ${signal})` : '') +
        (stderr.trim() ? `\n${tail(stderr, 20)}` : stdout.trim() ? `\n${tail(stdout, 20)}` : ''),
    );
  }
}

/** A named readiness check did not pass in time; `logTail` holds the daemon's last log lines. */
export class ReadinessError extends LabError {
  constructor(
    readonly check: string,
    readonly target: string,
    readonly timeoutMs: number,
    readonly logTail = '',
    readonly lastError?: string,
  ) {
    super(
      `${check} for ${target} not ready after ${timeoutMs} ms` +
        (lastError ? `: ${lastError}` : '') +
        (logTail ? `\n--- last log lines ---\n${logTail}` : ''),
    );
  }
}

/** Several things failed in parallel: keep them all (combined, not lost). */
export class CombinedError extends LabError {
  constructor(readonly errors: unknown[]) {
    super(errors.map((e) => (e instanceof Error ? e.message : String(e))).join('\n---\n'));
    const codes = errors.map((e) => (e instanceof LabError ? e.exitCode : 1));
    (this as { exitCode: number }).exitCode = codes.includes(1) ? 1 : Math.max(...codes, 1);
  }
}

export function tail(text: string, lines: number): string {
  const all = text.trimEnd().split('\n');
  return all.slice(-lines).join('\n');
}

/** Run every promise; if any fails, throw all failures together. */
export async function settleAll<T>(ps: Promise<T>[]): Promise<T[]> {
  const rs = await Promise.allSettled(ps);
  const bad = rs.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason);
  if (bad.length === 1) throw bad[0];
  if (bad.length > 1) throw new CombinedError(bad);
  return rs.map((r) => (r as PromiseFulfilledResult<T>).value);
}
