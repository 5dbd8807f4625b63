/**
 * Every settings group a lab can set (`settings.<group>` in lab and topology files): the groups the
 * mechanisms define in their folders (taken from the mechanism registry), with their defaults and
 * rules — the settings counterpart of ./timer-groups.ts. A lab's effective settings = these defaults
 * ⊕ the topology's `settings:` ⊕ the lab's `settings:` (later wins, field by field). A group may
 * derive timer defaults from its settings (an older release's defaults, say): those sit between
 * the registry's timer defaults and the files' own `timers:` (see `settingsTimerDefaults`).
 */
import type { Settings, Timers } from './types.js';
import type { TimersOverride } from './timers.js';
import { mechanismSettingsGroups } from '../strategies/registry.js';

export type SettingsGroup = keyof Settings;
/** A partial override as written in a lab or topology file. */
export type SettingsOverride = { [G in SettingsGroup]?: Partial<Settings[G]> };

function compose(): Settings {
  const out: Record<string, unknown> = {};
  for (const g of mechanismSettingsGroups()) {
    out[g.group] = { ...g.defaults };
  }
  return out as unknown as Settings;
}

export const DEFAULT_SETTINGS: Settings = compose();

/** defaults ⊕ overrides…, field by field (later layers win); unknown groups are ignored (the schema reports them). */
export function mergeSettings(base: Settings, ...layers: (SettingsOverride | undefined)[]): Settings {
  const out = structuredClone(base) as unknown as Record<string, Record<string, unknown>>;
  for (const layer of layers) {
    for (const [group, fields] of Object.entries(layer ?? {})) {
      if (!fields || !(group in out)) continue;
      for (const [k, v] of Object.entries(fields)) if (v !== undefined) out[group]![k] = v;
    }
  }
  return out as unknown as Settings;
}

/** One settings problem; `fields` are settings paths (group.field) or timer paths (`timers.group.field`); the first is blamed. */
export interface SettingsIssue {
  fields: string[];
  message: string;
}

export function settingsIssues(s: Settings, t: Timers): SettingsIssue[] {
  return mechanismSettingsGroups().flatMap((g) => g.issues?.(s, t) ?? []);
}

/** The timer defaults the settings imply, every group's merged (to be layered under the files' timers). */
export function settingsTimerDefaults(s: Settings): TimersOverride {
  const out: Record<string, Record<string, unknown>> = {};
  for (const g of mechanismSettingsGroups()) {
    for (const [group, fields] of Object.entries(g.timerDefaults?.(s) ?? {})) out[group] = { ...out[group], ...fields };
  }
  return out as TimersOverride;
}
