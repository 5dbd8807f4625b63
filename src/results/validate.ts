/**
 * results.json against its contract, schemas/results.schema.json (JSON Schema 2020-12; ajv's 2020
 * build + formats for `date-time`). The file is a copy of the contract the report tooling and
 * the checks downstream share, kept in the repository so a clone runs on its own; a contract test
 * fails when the copy drifts from the shared original. LAB_SHARED_DIR points at another directory
 * holding a `results.schema.json` (a newer contract under test).
 */
import { readFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { LabError } from '../util/errors.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function schemaPath(): string {
  return join(process.env.LAB_SHARED_DIR ?? join(REPO, 'schemas'), 'results.schema.json');
}

let compiled: ((data: unknown) => boolean) & { errors?: { instancePath: string; message?: string }[] | null } | undefined;

function validator() {
  if (compiled) return compiled;
  const p = schemaPath();
  if (!existsSync(p)) throw new LabError(`results schema not found at ${p} (a clone of the repository has it; LAB_SHARED_DIR, when set, must hold one)`);
  // CJS modules under NodeNext: the class / function is on `.default` at run time
  type AjvLike = { compile(schema: unknown): unknown };
  const AjvCtor = ((Ajv2020 as unknown as { default?: unknown }).default ?? Ajv2020) as new (o: object) => AjvLike;
  const ajv = new AjvCtor({ allErrors: true, strict: false });
  const fmt = ((addFormats as unknown as { default?: unknown }).default ?? addFormats) as (a: AjvLike) => void;
  fmt(ajv);
  compiled = ajv.compile(JSON.parse(readFileSync(p, 'utf8'))) as typeof compiled;
  return compiled!;
}

/** Validate; every error as `<json path>: <message>` (e.g. `/runs/3/outageMs: must be number,null`). */
export function validateResults(results: unknown): { valid: boolean; errors: string[] } {
  const v = validator();
  const valid = v(results);
  return { valid, errors: valid ? [] : (v.errors ?? []).map((e) => `${e.instancePath || '/'}: ${e.message ?? 'invalid'}`) };
}
