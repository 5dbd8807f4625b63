/**
 * The "Recommendation" section: the article's decision table (cluster size × L2-only or
 * BGP-capable network → strategy, as the source article gives it) next to what this run measured, and each
 * of the article's checkable claims with the measured figure and whether they agree. Every number
 * in a sentence comes from the report model (i.e. from results.json); the only constants are the
 * article's own words and the stated thresholds used to read them (NEAR_INSTANT_MS, …).
 */
import type { Group, ReportModel, SizeClass, Target } from './model.js';
import { groupLabel, groupsOf, sizeClass, strategyParts, usesBgp } from './model.js';
import { ARTICLE_PRESETS, rolesOf, type ArticlePreset } from '../strategies/registry.js';
import type { ArticleClaim } from '../strategies/types.js';
import { fmtMs, fmtPct, fmtSpread, fmtBand, fmtLat, fmtInt, plural } from './format.js';

/** "near-instant" (Talos VIP on graceful shutdown) read as at most this */
export const NEAR_INSTANT_MS = 2000;
/** "up to about a minute" (Talos VIP on a crash) read as this range */
export const ABOUT_A_MINUTE_MS = { min: 20_000, max: 75_000 };
/** "30–60 s" (sticky ARP caches that ignore gratuitous ARP) */
export const STICKY_ARP_MS = { min: 30_000, max: 60_000 };
/** in-cluster clients "keep talking to the control plane" read as an internal outage of at most this */
export const KEPT_WORKING_MS = 1000;

export type Verdict = 'agrees' | 'disagrees' | 'mixed' | 'does not apply';

export interface Finding {
  topic: string;
  article: string;
  measured: string[];
  verdict: Verdict;
}

export interface DecisionRow {
  title: string;
  complexity: string;
  api: string;
  services: string;
  recommendedFor: string;
  /** strategies of this run that implement the row (or why none did) */
  inThisRun: string;
  measuredApi: string;
  measuredServices: string;
  apiCrash: string;
  serviceCrash: string;
  /** the article recommends this row for this lab's size and network */
  chosen: boolean;
}

export interface Recommendation {
  size: { cls: SizeClass; why: string };
  network: string;
  article: string[];
  measured: string[];
  rows: DecisionRow[];
  findings: Finding[];
  notMeasured: string[];
  caveat?: string;
}

type ArticleRow = ArticlePreset;
const ARTICLE_ROWS = ARTICLE_PRESETS;
const matches = (row: ArticleRow, cp: string, svc: string) => row.cp.includes(cp) && row.svc.includes(svc);

/** does the article say `claim` about this strategy's API (cp) or Service (svc) mechanism? */
function claims(strategy: string, side: 'cp' | 'svc', claim: ArticleClaim): boolean {
  return rolesOf(strategy)[side]?.articleClaims?.includes(claim) ?? false;
}
/** the mechanisms the article's claim is about, as the report names them (their titles) */
function claimTitles(gs: Group[], side: 'cp' | 'svc'): string {
  return [...new Set(gs.map((g) => rolesOf(g.strategy)[side]?.title).filter(Boolean))].join(', ');
}

function combine(vs: Verdict[]): Verdict {
  const judged = vs.filter((v) => v !== 'does not apply');
  if (!judged.length) return 'does not apply';
  if (judged.every((v) => v === 'agrees')) return 'agrees';
  if (judged.every((v) => v === 'disagrees')) return 'disagrees';
  return 'mixed';
}

const outageText = (g: Group) => `${fmtSpread(g.outage, fmtMs)} over ${plural(g.outage?.n ?? 0, 'repeat')}${g.band ? `, band ${fmtBand(g.band)}` : ''}`;

function shareText(g: Group): string {
  if (!g.nodeShare.length) return 'no node share measured';
  return g.nodeShare.filter(([, f]) => f > 0).slice(0, 4).map(([n, f]) => `${n} ${fmtPct(f)}`).join(', ');
}

function baseline(m: ReportModel, target: Target, strategy: string, etp?: 'Local' | 'Cluster'): Group | undefined {
  const gs = groupsOf(m, target, 'baseline').filter((g) => g.strategy === strategy);
  return (etp ? gs.find((g) => g.externalTrafficPolicy === etp) : undefined) ?? gs[0];
}

function drillGroup(m: ReportModel, target: Target, strategy: string, drill: string): Group | undefined {
  return groupsOf(m, target, drill).find((g) => g.strategy === strategy);
}

// ---------------------------------------------------------------------------------------------
// the article's claims, one function each

function gracefulNearInstant(m: ReportModel): Finding | null {
  const gs = groupsOf(m, 'api', 'graceful-shutdown').filter((g) => claims(g.strategy, 'cp', 'graceful-near-instant') && g.outage);
  if (!gs.length) return null;
  const verdicts = gs.map((g): Verdict => (g.outage!.median <= NEAR_INSTANT_MS ? 'agrees' : 'disagrees'));
  return {
    topic: `${claimTitles(gs, 'cp')}, graceful shutdown`,
    article: `near-instant failover: the holder resigns (read here as at most ${fmtMs(NEAR_INSTANT_MS)})`,
    measured: gs.map((g) => `${g.strategy}: API outage ${outageText(g)}`),
    verdict: combine(verdicts),
  };
}

function crashAboutAMinute(m: ReportModel): Finding | null {
  const gs = groupsOf(m, 'api', 'crash').filter((g) => claims(g.strategy, 'cp', 'crash-about-a-minute') && g.outage);
  if (!gs.length) return null;
  const ttl = (m.results.timers as { talosVip?: { sessionTtlS?: unknown } } | undefined)?.talosVip?.sessionTtlS;
  const ttlText = typeof ttl === 'number' ? ` (etcd session TTL in this run: ${ttl} s)` : '';
  if (m.results.topology.controlPlanes <= 1) {
    return {
      topic: `${claimTitles(gs, 'cp')}, crash`,
      article: 'up to about a minute: the others wait for the holder’s etcd lease to expire',
      measured: gs.map((g) => `${g.strategy}: one control plane, so no peer can take the VIP over; the API was gone for ${outageText(g)}`),
      verdict: 'does not apply',
    };
  }
  const verdicts = gs.map((g): Verdict => (g.outage!.median >= ABOUT_A_MINUTE_MS.min && g.outage!.median <= ABOUT_A_MINUTE_MS.max ? 'agrees' : 'disagrees'));
  return {
    topic: `${claimTitles(gs, 'cp')}, crash`,
    article: `up to about a minute: the others wait for the holder’s etcd lease to expire (read here as ${fmtBand(ABOUT_A_MINUTE_MS)})`,
    measured: gs.map((g) => {
      const dir = g.outage!.median < ABOUT_A_MINUTE_MS.min ? ' — faster than the article says' : g.outage!.median > ABOUT_A_MINUTE_MS.max ? ' — slower than the article says' : '';
      return `${g.strategy}: API outage ${outageText(g)}${ttlText}${dir}`;
    }),
    verdict: combine(verdicts),
  };
}

function activePassiveApi(m: ReportModel): Finding | null {
  const gs = groupsOf(m, 'api', 'baseline').filter((g) => claims(g.strategy, 'cp', 'api-active-passive') && g.nodeShare.length);
  if (!gs.length) return null;
  return {
    topic: `${claimTitles(gs, 'cp')}, API traffic`,
    article: 'active-passive: only the VIP holder takes API traffic',
    measured: gs.map((g) => `${g.strategy}: ${shareText(g)}${g.shareMode === 'single-node' ? ' (one node: nothing to spread over)' : ''}`),
    verdict: combine(gs.map((g) => (g.shareMode === 'single-node' || g.shareMode === 'unknown' ? 'does not apply' : g.shareMode === 'active-passive' ? 'agrees' : 'disagrees'))),
  };
}

function activeActiveApi(m: ReportModel): Finding | null {
  const gs = groupsOf(m, 'api', 'baseline').filter((g) => claims(g.strategy, 'cp', 'api-active-active') && g.nodeShare.length);
  if (!gs.length) return null;
  return {
    topic: `${claimTitles(gs, 'cp')}, API traffic`,
    article: 'active-active: API requests spread over all control planes',
    measured: gs.map((g) => `${g.strategy}: ${shareText(g)}${g.shareMode === 'single-node' ? ' (one node: nothing to spread over)' : ''}`),
    verdict: combine(gs.map((g) => (g.shareMode === 'single-node' || g.shareMode === 'unknown' ? 'does not apply' : g.shareMode === 'active-active' ? 'agrees' : 'disagrees'))),
  };
}

function l2Bottleneck(m: ReportModel): Finding | null {
  const gs = groupsOf(m, 'service', 'baseline').filter((g) => claims(g.strategy, 'svc', 'l2-single-entry') && g.externalTrafficPolicy === 'Local' && g.nodeShare.length);
  if (!gs.length) return null;
  return {
    topic: `L2 mode (${claimTitles(gs, 'svc')}), Service traffic`,
    article: 'one node answers ARP for the Service IP and all its traffic enters there (bottleneck)',
    measured: gs.map((g) => `${groupLabel(g)}: ${shareText(g)}${g.shareMode === 'single-node' ? ' (one node: nothing to spread over)' : ''}`),
    verdict: combine(gs.map((g) => (g.shareMode === 'single-node' || g.shareMode === 'unknown' ? 'does not apply' : g.shareMode === 'active-passive' ? 'agrees' : 'disagrees'))),
  };
}

function bgpSpread(m: ReportModel): Finding | null {
  const gs = groupsOf(m, 'service', 'baseline').filter((g) => claims(g.strategy, 'svc', 'bgp-ecmp-spread') && g.externalTrafficPolicy === 'Local' && g.nodeShare.length);
  if (!gs.length) return null;
  return {
    topic: 'BGP mode (ECMP), Service traffic',
    article: 'every node announces the Service IP; the router spreads flows over them (real load balancing)',
    measured: gs.map((g) => `${groupLabel(g)}: ${shareText(g)}`),
    verdict: combine(gs.map((g) => (g.shareMode === 'single-node' || g.shareMode === 'unknown' ? 'does not apply' : g.shareMode === 'active-active' ? 'agrees' : 'disagrees'))),
  };
}

function bgpResets(m: ReportModel): Finding | null {
  const gs = groupsOf(m, 'service').filter((g) => (g.drill === 'node-leave' || g.drill === 'node-join') && claims(g.strategy, 'svc', 'bgp-churn-resets') && g.resets);
  if (!gs.length) return null;
  return {
    topic: 'BGP mode, node leave / join',
    article: 'stateless ECMP re-maps flows when a node joins or leaves: established TCP connections are reset',
    measured: gs.map(
      (g) =>
        `${g.strategy} ${g.drill}: ${fmtSpread(g.resets, fmtInt)} of ${fmtSpread(g.streams, fmtInt)} long-lived connections reset` +
        (g.resetsOnSurvivors ? ` (${fmtSpread(g.resetsOnSurvivors, fmtInt)} on nodes that stayed, ${fmtSpread(g.resetsOnVictim, fmtInt)} on the node that moved)` : '') +
        `, over ${plural(g.resets!.n, 'repeat')}`,
    ),
    verdict: combine(gs.map((g) => (g.resets!.median > 0 ? 'agrees' : 'disagrees'))),
  };
}

function stickyArp(m: ReportModel): Finding | null {
  const gs = [...groupsOf(m, 'api', 'garp-ignored'), ...groupsOf(m, 'service', 'garp-ignored')].filter((g) => g.outage);
  if (!gs.length) return null;
  return {
    topic: 'Clients that ignore gratuitous ARP',
    article: `lose connectivity for 30–60 s after an L2 failover`,
    measured: gs.map((g) => `${g.target === 'api' ? 'API' : 'Service'} ${g.strategy}: outage ${outageText(g)}`),
    verdict: combine(gs.map((g) => (g.outage!.median >= STICKY_ARP_MS.min && g.outage!.median <= STICKY_ARP_MS.max ? 'agrees' : 'disagrees'))),
  };
}

function kubePrism(m: ReportModel): Finding | null {
  const gs = groupsOf(m, 'api', 'vip-loss-internal').filter((g) => g.internalOutage);
  if (!gs.length) return null;
  return {
    topic: 'KubePrism when the VIP is lost',
    article: `in-cluster clients keep reaching the control plane through KubePrism (read here as an internal outage of at most ${fmtMs(KEPT_WORKING_MS)})`,
    measured: gs.map((g) => `${g.strategy}: external clients ${fmtSpread(g.outage, fmtMs)} without the API, in-cluster clients (KubePrism) ${fmtSpread(g.internalOutage, fmtMs)}`),
    verdict: combine(gs.map((g) => (g.internalOutage!.median <= KEPT_WORKING_MS ? 'agrees' : 'disagrees'))),
  };
}

function clientIp(m: ReportModel): Finding | null {
  const gs = groupsOf(m, 'service', 'baseline').filter((g) => g.externalTrafficPolicy && g.clientIpPreserved !== null);
  if (!gs.length) return null;
  const expect = (g: Group) => g.externalTrafficPolicy === 'Local';
  const yes = (v: Group['clientIpPreserved']) => (v === 'mixed' ? 'in some repeats' : v ? 'yes' : 'no');
  return {
    topic: 'Client source IP',
    article: 'externalTrafficPolicy: Local preserves the client source IP (and avoids the asymmetric path); Cluster does not',
    measured: gs.map((g) => `${groupLabel(g)}: preserved ${yes(g.clientIpPreserved)}`),
    verdict: combine(gs.map((g) => (g.clientIpPreserved === 'mixed' ? 'disagrees' : g.clientIpPreserved === expect(g) ? 'agrees' : 'disagrees'))),
  };
}

// ---------------------------------------------------------------------------------------------

function articleAdvice(cls: SizeClass, bgp: boolean): { text: string[]; chosen: number[] } {
  switch (cls) {
    case 'minecraft':
      return {
        text: [
          'Homelab / test size: the article recommends Talos VIP + MetalLB in L2 mode; kube-vip alone is the minimal alternative.',
          'On a single node the control-plane label node.kubernetes.io/exclude-from-external-load-balancers must be removed, or no Service is exposed.',
        ],
        chosen: [0],
      };
    case 'smb':
      return {
        text: [
          'Small/medium business on one L2 segment: the article recommends Talos VIP + MetalLB L2 as the default, and kube-vip (API, active-active) + MetalLB for high-load clusters.',
          bgp ? 'The network can speak BGP here, so MetalLB may run in BGP mode for ECMP spreading; the article says to choose ARP or BGP by what the network hardware does.' : 'The network is L2 only, so the BGP variants are out (the article: choose ARP or BGP by what the network hardware does).',
        ],
        chosen: [0, 2],
      };
    case 'enterprise':
      return {
        text: bgp
          ? ['Enterprise size: the article recommends an external load balancer for the API and BGP (MetalLB or Cilium) with top-of-rack routers for Services; L2 broadcast and etcd-based failover stop being good enough.']
          : ['Enterprise size: the article recommends an external load balancer for the API and BGP for Services, which needs BGP-capable routers; this network is L2 only, so the article’s choice cannot be applied as is.'],
        chosen: bgp ? [3] : [],
      };
  }
}

function figures(m: ReportModel, strategy: string): string {
  const parts: string[] = [];
  const api = baseline(m, 'api', strategy);
  const svc = baseline(m, 'service', strategy, 'Local');
  for (const d of ['graceful-shutdown', 'crash']) {
    const g = drillGroup(m, 'api', strategy, d);
    if (g?.outage) parts.push(`API ${d} ${fmtSpread(g.outage, fmtMs)}`);
  }
  const sc = drillGroup(m, 'service', strategy, 'crash');
  if (sc?.outage) parts.push(`Service crash ${fmtSpread(sc.outage, fmtMs)}`);
  if (api) parts.push(`API baseline p99 ${fmtLat(api.latency.p99?.median)} ms, ${api.shareMode === 'unknown' ? 'share not measured' : `${api.shareMode} (${shareText(api)})`}`);
  if (svc) parts.push(`Service (${svc.service}) ${svc.shareMode === 'unknown' ? 'share not measured' : `${svc.shareMode} (${shareText(svc)})`}`);
  return parts.join('; ');
}

function rowFor(m: ReportModel, row: ArticleRow, chosen: boolean, bgp: boolean): DecisionRow {
  const matching = m.strategies.filter((s) => matches(row, s.cp || strategyParts(s.id).cp, s.svc || strategyParts(s.id).svc));
  const ran = matching.filter((s) => m.groups.some((g) => g.strategy === s.id));
  const refused = matching.filter((s) => !ran.includes(s));
  const inThisRun = matching.length
    ? [...ran.map((s) => s.id), ...refused.map((s) => `${s.id} (not run: ${m.unsupported.find((u) => u.strategy === s.id)?.reason ?? 'no runs'})`)].join('; ')
    : `not in this run${!bgp && row.needsBgp ? ' (needs a BGP-capable network)' : ''}`;
  const pick = (f: (s: string) => string) => (ran.length ? ran.map((s) => (ran.length > 1 ? `${s.id}: ${f(s.id)}` : f(s.id))).join('; ') : '—');
  return {
    title: row.title,
    complexity: row.complexity,
    api: row.api,
    services: row.services,
    recommendedFor: row.recommendedFor,
    inThisRun,
    measuredApi: pick((s) => {
      const g = baseline(m, 'api', s);
      return g ? `${g.shareMode === 'unknown' ? 'not measured' : g.shareMode} (${shareText(g)})` : '—';
    }),
    measuredServices: pick((s) => {
      const g = baseline(m, 'service', s, 'Local');
      return g ? `${g.shareMode === 'unknown' ? 'not measured' : g.shareMode} (${shareText(g)})` : '—';
    }),
    apiCrash: pick((s) => fmtSpread(drillGroup(m, 'api', s, 'crash')?.outage, fmtMs)),
    serviceCrash: pick((s) => fmtSpread(drillGroup(m, 'service', s, 'crash')?.outage, fmtMs)),
    chosen,
  };
}

/** "API crash, median outage: a 2.1 s ≤ b 5.6 s ≤ c 52.3 s" for every failover drill measured on ≥ 2 strategies */
function rankings(m: ReportModel): string[] {
  const out: string[] = [];
  for (const target of m.targets) {
    for (const d of m.drills) {
      if (d === 'baseline') continue;
      const gs = groupsOf(m, target, d).filter((g) => g.outage);
      const strategies = new Set(gs.map((g) => g.strategy));
      if (strategies.size < 2) continue;
      const sorted = [...gs].sort((a, b) => a.outage!.median - b.outage!.median);
      out.push(`${target === 'api' ? 'API' : 'Service'} ${d}, median outage: ${sorted.map((g) => `${groupLabel(g)} ${fmtMs(g.outage!.median)}`).join(' ≤ ')}`);
    }
  }
  return out;
}

export function recommend(m: ReportModel): Recommendation {
  const size = sizeClass(m.results);
  const bgp = m.network.bgp;
  const network = bgp
    ? `BGP-capable (${m.network.inferred ? 'BGP strategies ran in this run' : 'the lab has a BGP router'})`
    : `L2 only (${m.network.inferred ? 'no BGP strategy ran in this run' : 'the lab’s router speaks no BGP'})`;
  const advice = articleAdvice(size.cls, bgp);
  const rows = ARTICLE_ROWS.map((r, i) => rowFor(m, r, advice.chosen.includes(i), bgp));

  const measured: string[] = [];
  for (const i of advice.chosen) {
    const row = ARTICLE_ROWS[i]!;
    const ran = m.strategies.filter((s) => matches(row, s.cp || strategyParts(s.id).cp, s.svc || strategyParts(s.id).svc) && m.groups.some((g) => g.strategy === s.id));
    const usable = ran.filter((s) => bgp || !usesBgp(s.id));
    if (!usable.length) {
      measured.push(`${row.title} (the article’s choice here) was not measured in this run.`);
      continue;
    }
    for (const s of usable) measured.push(`${s.id} (${row.title}, the article’s choice here): ${figures(m, s.id) || 'no figures measured'}.`);
  }
  measured.push(...rankings(m).map((s) => `${s}.`));

  const claims: [(m: ReportModel) => Finding | null, string][] = [
    [gracefulNearInstant, 'near-instant graceful failover of the API VIP (graceful-shutdown drill on the API)'],
    [crashAboutAMinute, 'about a minute of API outage after a crash (crash drill on the API)'],
    [activePassiveApi, 'active-passive API (API baseline with node share)'],
    [activeActiveApi, 'active-active API (API baseline with node share)'],
    [l2Bottleneck, 'L2 single entry node (Service baseline, ETP Local, L2 strategy)'],
    [bgpSpread, 'BGP ECMP spreading (Service baseline, ETP Local, BGP strategy)'],
    [bgpResets, 'BGP resets on node leave/join (node-leave / node-join drills)'],
    [stickyArp, 'sticky ARP caches (garp-ignored drill)'],
    [kubePrism, 'KubePrism keeps in-cluster clients working (vip-loss-internal drill)'],
    [clientIp, 'client source IP by externalTrafficPolicy (Service baseline)'],
  ];
  const findings: Finding[] = [];
  const notMeasured: string[] = [];
  for (const [claim, what] of claims) {
    const r = claim(m);
    if (r) findings.push(r);
    else notMeasured.push(what);
  }
  return {
    size,
    network,
    article: advice.text,
    measured,
    rows,
    findings,
    notMeasured,
    ...(m.results.provider.emulated
      ? { caveat: `These figures come from the ${m.results.provider.name} provider: an emulated Talos control plane (the lab’s own agents with the real components’ election semantics and timers) on real networking. They show the mechanisms’ timing, not a Talos measurement.` }
      : {}),
  };
}
