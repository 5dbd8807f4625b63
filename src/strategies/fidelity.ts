/**
 * Which fidelity notes apply to one run: the notes of the strategy's two roles (`Role.fidelity`)
 * and of the emulation kit (src/emulation/fidelity.ts), each asked whether it applies to the
 * drill and target, and kept only where what it describes runs (the emulation's notes only when
 * the nodes are emulated). Pure; the orchestrator stores the result in the run record and the
 * report shows it per run, linked to docs/fidelity.md#<id>.
 */
import type { Topology } from '../model/types.js';
import type { FidelityRecord } from '../results/types.js';
import type { FidelityDrill, FidelityNote, Role, Strategy } from './types.js';
import { KIT_NOTES } from '../emulation/fidelity.js';
import { roles } from './registry.js';

/** the long form of every note, by anchor: `${FIDELITY_DOC}#<id>` (path from the repository root) */
export const FIDELITY_DOC = 'docs/fidelity.md';

const ownTarget = (role: Role): FidelityDrill['target'] => (role.kind === 'cp' ? 'api' : 'service');

export function fidelityNotes(s: Pick<Strategy, 'ref' | 'cp' | 'svc'>, drill: FidelityDrill, env: { topology: Topology; emulated: boolean }): FidelityRecord[] {
  const out = new Map<string, FidelityRecord>();
  const consider = (n: FidelityNote, byDefault: boolean) => {
    if ((n.scope ?? 'emulated') === 'emulated' && !env.emulated) return;
    const yes = n.applies ? n.applies(drill, { ref: s.ref, topology: env.topology }) : byDefault;
    // a note two roles share (kube-vip for the API and for Services) is listed once
    if (yes && !out.has(n.id)) out.set(n.id, { id: n.id, text: n.text });
  };
  for (const role of [s.cp, s.svc]) for (const n of role.fidelity ?? []) consider(n, drill.target === ownTarget(role));
  for (const n of KIT_NOTES) consider(n, true);
  return [...out.values()];
}

/** every note the kit and the registered roles declare, once per id (docs/fidelity.md has an anchor for each) */
export function allFidelityNotes(): FidelityNote[] {
  const out = new Map<string, FidelityNote>();
  for (const n of [...roles().flatMap((r) => r.fidelity ?? []), ...KIT_NOTES]) if (!out.has(n.id)) out.set(n.id, n);
  return [...out.values()];
}
