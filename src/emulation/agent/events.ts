/** Read the JSONL event files of a lab (one per host, plus the provider's wire/router file). */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { AgentEvent } from './types.js';

/** every event at/after sinceT in `dir/*.jsonl`, oldest first; a torn last line is skipped */
export function readEvents(dir: string, sinceT: number): AgentEvent[] {
  const out: AgentEvent[] = [];
  if (!existsSync(dir)) return out;
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.jsonl'))) {
    for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) {
      if (!line) continue;
      try {
        const e = JSON.parse(line) as AgentEvent;
        if (e.t >= sinceT) out.push(e);
      } catch {
        /* a line being written */
      }
    }
  }
  return out.sort((a, b) => a.t - b.t);
}
