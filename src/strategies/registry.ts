/**
 * The one list of mechanisms. Adding a mechanism = its folder under src/strategies/ + one line
 * here; nothing else in the engine, the providers or the report names it. A duplicate id or a
 * timer group defined twice with different defaults fails at load, and an unknown id's error
 * lists the valid ones.
 *
 * Everything here is plain data and pure functions (validating a lab loads no agent: agents are
 * loaded by module URL inside the agent process only).
 */
import type { CpRole, Mechanism, Role, SettingsGroupDef, SvcRole, TimerGroupDef } from './types.js';
import { talosVip } from './talos-vip/index.js';
import { kubeVipArp } from './kube-vip-arp/index.js';
import { kubeVipBgp } from './kube-vip-bgp/index.js';
import { haproxy } from './haproxy/index.js';
import { metallbL2 } from './metallb-l2/index.js';
import { metallbBgp } from './metallb-bgp/index.js';
import { ciliumBgp } from './cilium-bgp/index.js';
import { ciliumL2 } from './cilium-l2/index.js';

const ALL: Mechanism[] = [talosVip, kubeVipArp, kubeVipBgp, haproxy, metallbL2, metallbBgp, ciliumBgp, ciliumL2];

function index(list: Mechanism[]): ReadonlyMap<string, Mechanism> {
  const m = new Map<string, Mechanism>();
  for (const x of list) {
    if (m.has(x.id)) throw new Error(`mechanism '${x.id}' is registered twice`);
    if (x.cp && (x.cp.id !== x.id || x.cp.kind !== 'cp')) throw new Error(`mechanism '${x.id}': its cp role says id '${x.cp.id}', kind '${x.cp.kind}'`);
    if (x.svc && (x.svc.id !== x.id || x.svc.kind !== 'svc')) throw new Error(`mechanism '${x.id}': its svc role says id '${x.svc.id}', kind '${x.svc.kind}'`);
    m.set(x.id, x);
  }
  return m;
}

export const MECHANISMS: ReadonlyMap<string, Mechanism> = index(ALL);

/** ids that can be the control-plane endpoint mechanism, in registry order */
export const CP_IDS: readonly string[] = ALL.filter((m) => m.cp).map((m) => m.id);
/** ids that can be the Service mechanism, in registry order */
export const SVC_IDS: readonly string[] = ALL.filter((m) => m.svc).map((m) => m.id);

export function mechanism(id: string): Mechanism {
  const m = MECHANISMS.get(id);
  if (!m) throw new Error(`unknown mechanism '${id}'; valid: ${[...MECHANISMS.keys()].join(', ')}`);
  return m;
}

export function cpRole(id: string): CpRole | undefined {
  return MECHANISMS.get(id)?.cp;
}

export function svcRole(id: string): SvcRole | undefined {
  return MECHANISMS.get(id)?.svc;
}

/** The sentence every unknown-strategy error ends with. */
export const STRATEGY_FORMAT = `'<cp>+<svc>' with cp ∈ {${CP_IDS.join(', ')}} and svc ∈ {${SVC_IDS.join(', ')}}`;

/** Parse '<cp>+<svc>'; an error sentence when it is not one. */
export function parseStrategyId(id: string): { cp: CpRole; svc: SvcRole } | { error: string } {
  const parts = id.split('+');
  if (parts.length !== 2) return { error: `'${id}' is not ${STRATEGY_FORMAT}` };
  const [c, s] = parts as [string, string];
  const cp = cpRole(c);
  const svc = svcRole(s);
  const bad: string[] = [];
  if (!cp) bad.push(`unknown control-plane mechanism '${c}' (valid: ${CP_IDS.join(', ')})`);
  if (!svc) bad.push(`unknown service mechanism '${s}' (valid: ${SVC_IDS.join(', ')})`);
  if (bad.length || !cp || !svc) return { error: `strategy '${id}': ${bad.join('; ')}; expected ${STRATEGY_FORMAT}` };
  return { cp, svc };
}

/** Every timer group the mechanisms define, once each (shared groups must agree). */
export function mechanismTimerGroups(): TimerGroupDef[] {
  const out = new Map<string, TimerGroupDef>();
  for (const m of ALL) {
    for (const g of m.timers ?? []) {
      const had = out.get(g.group);
      if (had && had !== g) throw new Error(`timer group '${g.group}' is defined twice (by ${m.id} and another mechanism) with different definitions`);
      out.set(g.group, g);
    }
  }
  return [...out.values()];
}

/** Every settings group the mechanisms define, once each (a group shared by a family is one object). */
export function mechanismSettingsGroups(): SettingsGroupDef[] {
  const out = new Map<string, SettingsGroupDef>();
  for (const m of ALL) {
    const g = m.settings;
    if (!g) continue;
    const had = out.get(g.group);
    if (had && had !== g) throw new Error(`settings group '${g.group}' is defined twice (by ${m.id} and another mechanism) with different definitions`);
    out.set(g.group, g);
  }
  return [...out.values()];
}

/** The module URL of an agent component kind, from the mechanism that provides it. */
export function componentModule(kind: string): string | undefined {
  for (const m of ALL) if (m.components?.[kind]) return m.components[kind];
  return undefined;
}

export function roles(): Role[] {
  return ALL.flatMap((m) => [m.cp, m.svc].filter((r): r is CpRole | SvcRole => !!r));
}

/**
 * The article's decision table (its three strategies plus the external load balancer), as
 * mechanism ids: which registered strategies implement each row. The report lines these up with
 * what was measured; a new mechanism joins a row here, next to its registration.
 */
export interface ArticlePreset {
  title: string;
  complexity: string;
  api: string;
  services: string;
  recommendedFor: string;
  /** the row's Service side is BGP only */
  needsBgp?: boolean;
  cp: string[];
  svc: string[];
}

export const ARTICLE_PRESETS: readonly ArticlePreset[] = [
  { title: 'Talos VIP + MetalLB', complexity: 'low', api: 'active-passive', services: 'high (L2 or BGP)', recommendedFor: 'homelab / small business', cp: ['talos-vip'], svc: ['metallb-l2', 'metallb-bgp'] },
  { title: 'kube-vip alone', complexity: 'medium', api: 'active-active (IPVS)', services: 'medium', recommendedFor: 'minimal systems', cp: ['kube-vip-arp', 'kube-vip-bgp'], svc: ['kube-vip-arp', 'kube-vip-bgp'] },
  { title: 'kube-vip (API) + MetalLB (services)', complexity: 'high', api: 'active-active (IPVS)', services: 'high (L2 or BGP)', recommendedFor: 'high-load clusters', cp: ['kube-vip-arp', 'kube-vip-bgp'], svc: ['metallb-l2', 'metallb-bgp'] },
  {
    title: 'external HAProxy (API) + MetalLB/Cilium BGP (services)',
    complexity: 'high (extra box)',
    api: 'active-active',
    services: 'high (BGP, ECMP)',
    recommendedFor: 'enterprise, >100 nodes',
    needsBgp: true,
    cp: ['haproxy'],
    svc: ['metallb-bgp', 'cilium-bgp'],
  },
];

/** The roles of '<cp>+<svc>', or nulls for an id the registry does not know (results of another build). */
export function rolesOf(strategyId: string): { cp: CpRole | null; svc: SvcRole | null } {
  const [c = '', s = ''] = strategyId.split('+');
  return { cp: cpRole(c) ?? null, svc: svcRole(s) ?? null };
}
