import { describe, expect, it } from 'vitest';
import { CommanderError } from 'commander';
import { exitCodeOf } from '../../src/cli/main.js';
import { Interrupted, withAbort } from '../../src/cli/shared.js';
import { CombinedError, LabError, LabInputError, PrerequisiteError, UsageError } from '../../src/util/errors.js';
import { sleep } from '../../src/util/proc.js';

describe('exit codes (one top-level catch)', () => {
  it('maps each error family to its code', () => {
    expect(exitCodeOf(LabInputError.one('labs/x.yaml', 'drills', 'bad'))).toBe(2);
    expect(exitCodeOf(new UsageError('bad flag'))).toBe(2);
    expect(exitCodeOf(new PrerequisiteError('not root', 'sudo npm run lab'))).toBe(3);
    expect(exitCodeOf(new LabError('boom'))).toBe(1);
    expect(exitCodeOf(new Error('boom'))).toBe(1);
    expect(exitCodeOf('a string')).toBe(1);
    expect(exitCodeOf(new Interrupted('SIGINT'))).toBe(130);
    expect(exitCodeOf(new CombinedError([new PrerequisiteError('a', 'b'), new Error('x')]))).toBe(1);
    expect(exitCodeOf(new CommanderError(0, 'commander.helpDisplayed', '(outputHelp)'))).toBe(0);
    expect(exitCodeOf(new CommanderError(1, 'commander.unknownOption', 'unknown option'))).toBe(2);
  });
});

describe('Ctrl-C handling', () => {
  it('aborts the engine, waits for its teardown, then fails with Interrupted (exit 130)', async () => {
    let tornDown = false;
    const p = withAbort(async (signal) => {
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
      await sleep(50); // teardown
      tornDown = true;
      throw signal.reason;
    });
    await sleep(10);
    process.emit('SIGINT', 'SIGINT');
    await expect(p).rejects.toBeInstanceOf(Interrupted);
    expect(tornDown).toBe(true);
    expect(process.listenerCount('SIGINT')).toBe(0);
  });

  it('an engine that swallows the abort still ends as interrupted', async () => {
    const p = withAbort(async (signal) => {
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
      return 'finished anyway';
    });
    await sleep(10);
    process.emit('SIGTERM', 'SIGTERM');
    await expect(p).rejects.toThrow(/interrupted by SIGTERM/);
  });
});
