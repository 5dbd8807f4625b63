/**
 * The repository's copy of the results contract (schemas/results.schema.json, what
 * src/results/validate.ts checks every results.json against) is byte-for-byte the shared original
 * the downstream checks use, which sits in `shared/` beside the project.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../../src/model/load.js';
import { schemaPath } from '../../src/results/validate.js';

const SHARED = join(REPO_ROOT, '..', 'shared', 'results.schema.json');

describe('results schema copy', () => {
  it('the validator reads the repository copy, and it equals the shared contract', () => {
    expect(schemaPath()).toBe(join(REPO_ROOT, 'schemas', 'results.schema.json'));
    expect(existsSync(SHARED), `the shared contract is expected beside the project at ${SHARED}`).toBe(true);
    expect(readFileSync(schemaPath(), 'utf8')).toBe(readFileSync(SHARED, 'utf8'));
  });
});
