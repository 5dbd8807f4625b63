/**
 * Schemas of the RAW files (parse, then resolve): `labs/<lab>.yaml` and
 * `topologies/<topology>.yaml`, as people write them. Every object is strict — an unknown key is an
 * error that names the key and the allowed ones. Defaults filled here are the plain ones; anything
 * derived (addresses, interfaces, ASNs per host, timers) is resolve.ts's job. Cross-field rules
 * (VIP inside the LAN, pools not overlapping…) live in resolve.ts too, so every problem can name
 * the exact file and path.
 */
import { z } from 'zod';
import { isCidr, isIpv4 } from './address.js';
import { DRILL_KINDS, VICTIM_RULES, TARGETS } from './catalog.js';
import { parseStrategyId, roles } from '../strategies/registry.js';
import type { TimerGroup } from './timers.js';
import { DEFAULT_TIMERS } from './timer-groups.js';
import { DEFAULT_SETTINGS } from './settings.js';

/** z.object(...).strict() whose unknown-key issue carries the allowed keys (see load.ts). */
function obj<S extends z.ZodRawShape>(shape: S) {
  return z.object(shape).strict({ message: `allowed keys: ${Object.keys(shape).join(', ')}` });
}

const ipv4 = z.string().refine(isIpv4, { message: 'expected an IPv4 address such as 10.10.0.10' });
const cidr = z.string().refine(isCidr, { message: 'expected an IPv4 network in CIDR form with host bits zero, such as 10.10.0.0/24' });
/** RFC 6793 four-octet ASN; 0 is reserved (RFC 7607). Private ranges 64512–65534, 4200000000–4294967294 are fine. */
const asn = z.number().int('expected an integer ASN').min(1, 'expected an ASN in 1–4294967295 (0 is reserved, RFC 7607)').max(4294967295, 'expected an ASN in 1–4294967295');
const port = z.number().int().min(1).max(65535);
/** host names become parts of namespace, container and interface names: short, lowercase */
export const HOST_NAME = /^[a-z][a-z0-9-]{0,11}$/;
const hostName = z.string().regex(HOST_NAME, 'expected a host name: lowercase letters, digits and "-", starting with a letter, at most 12 characters');
const segmentName = z.string().regex(/^[a-z][a-z0-9]{0,7}$/, 'expected a segment name: lowercase letters and digits, starting with a letter, at most 8 characters');
const k8sName = z.string().regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'expected a Kubernetes name (RFC 1123 label: lowercase letters, digits, "-")');
const labName = z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, 'expected a lab name: lowercase letters, digits and "-", starting with a letter');
const ms = z.number().int('expected whole milliseconds').min(0);

// ---------------------------------------------------------------------------------------------
// upper bounds: a lab measures seconds-long failovers on one machine; a number far beyond any lab
// is a typo (an extra zero, ms written for s), and left alone it would build a plan that runs for
// days or allocates without end. Node and rack counts are capped on the whole file by load.ts
// (withinHardSize: at most HARD_MAX_NODES = 2,000 nodes in all — so in every group — and
// HARD_MAX_RACKS = 128 racks, src/model/capacity.ts), with a message that counts the total.

/** the longest timer or drill phase a lab may set: one hour */
export const MAX_TIMER_S = 3600;
export const MAX_TIMER_MS = MAX_TIMER_S * 1000;
/** a multiplier or count inside a timer group (BFD detect-multiplier, HAProxy rise/fall, memberlist suspicion…) */
export const MAX_TIMER_COUNT = 1000;
/** LoadBalancer Services of one topology: each is an address, an announcement and a probe target */
export const MAX_SERVICES = 64;
/** a drill's phase (preMs, holdMs, settleMs, observeMs): at most an hour */
const phaseMs = ms.max(MAX_TIMER_MS, `expected at most ${MAX_TIMER_MS.toLocaleString('en-US')} ms (1 h) for a drill phase`);
/** seconds / milliseconds / count fields of a timer group, by the unit their name ends in */
function timerField(name: string): z.ZodNumber {
  const n = z.number().finite('expected a finite number').min(0, 'expected a non-negative number');
  if (name.endsWith('Ms')) return n.max(MAX_TIMER_MS, `expected at most ${MAX_TIMER_MS.toLocaleString('en-US')} ms (1 h)`);
  if (name.endsWith('S')) return n.max(MAX_TIMER_S, `expected at most ${MAX_TIMER_S.toLocaleString('en-US')} s (1 h)`);
  return n.max(MAX_TIMER_COUNT, `expected at most ${MAX_TIMER_COUNT.toLocaleString('en-US')}`);
}

// ---------------------------------------------------------------------------------------------
// timers: the same shape in both files, every field optional (an override of DEFAULT_TIMERS)

function timersOverrideSchema() {
  const groups: Record<string, z.ZodTypeAny> = {};
  for (const [group, fields] of Object.entries(DEFAULT_TIMERS) as [TimerGroup, Record<string, unknown>][]) {
    const shape: Record<string, z.ZodTypeAny> = {};
    for (const [k, v] of Object.entries(fields)) {
      shape[k] = (typeof v === 'boolean' ? z.boolean() : timerField(k)).optional();
    }
    groups[group] = obj(shape).optional();
  }
  return obj(groups);
}
export const timersOverride = timersOverrideSchema();

// ---------------------------------------------------------------------------------------------
// settings: the same shape in both files, every field optional (an override of DEFAULT_SETTINGS);
// a field takes the type of its default, what values mean is the mechanism's rule (resolve.ts)

function settingsOverrideSchema() {
  const groups: Record<string, z.ZodTypeAny> = {};
  for (const [group, fields] of Object.entries(DEFAULT_SETTINGS as unknown as Record<string, Record<string, unknown>>)) {
    const shape: Record<string, z.ZodTypeAny> = {};
    for (const [k, v] of Object.entries(fields)) {
      shape[k] = (typeof v === 'boolean' ? z.boolean() : typeof v === 'number' ? z.number().finite('expected a finite number') : z.string().min(1)).optional();
    }
    groups[group] = obj(shape).optional();
  }
  return obj(groups);
}
export const settingsOverride = settingsOverrideSchema();

// ---------------------------------------------------------------------------------------------
// topology file

const router = obj({
  name: hostName,
  asn: asn.default(64500),
  /** false: a plain router without bgpd (then no BGP mechanism can run) */
  bgp: z.boolean().default(true),
  /** true: the nodes may use the router's own ASN (iBGP) */
  ibgp: z.boolean().default(false),
});

const tor = obj({
  name: hostName,
  asn,
  ibgp: z.boolean().default(false),
});

const rack = obj({
  name: segmentName,
  cidr,
  controlPlanes: z.number().int().min(0).default(0),
  workers: z.number().int().min(0).default(0),
  tor,
  /** the ASN of this rack's node speakers (default cluster.nodeAsn) */
  nodeAsn: asn.optional(),
});

const service = obj({
  name: k8sName,
  namespace: k8sName.default('default'),
  /** default: the next free pool address, in order */
  ip: ipv4.optional(),
  port: port.default(80),
  targetPort: port.default(8080),
  streamPort: port.default(9000),
  externalTrafficPolicy: z.enum(['Cluster', 'Local']),
  loadBalancerClass: z.string().min(1).optional(),
});

export const topologySchema = obj({
  name: labName.optional(),
  description: z.string().default(''),
  talos: obj({
    version: z.string().regex(/^v\d+\.\d+\.\d+$/, 'expected a Talos version such as v1.13.9').default('v1.13.9'),
    kubernetesVersion: z.string().regex(/^\d+\.\d+\.\d+$/, 'expected a Kubernetes version such as 1.36.3').default('1.36.3'),
  }).default({}),
  cluster: obj({
    /** flat layout only (network.lan); with network.racks the counts are per rack */
    controlPlanes: z.number().int().min(0).optional(),
    workers: z.number().int().min(0).optional(),
    allowSchedulingOnControlPlanes: z.boolean().default(false),
    /** default: = allowSchedulingOnControlPlanes (the single-node pitfall) */
    removeExcludeLbLabel: z.boolean().optional(),
    nodeAsn: asn.default(64600),
  }),
  network: obj({
    /** flat layout: one cluster LAN behind one router */
    lan: cidr.optional(),
    /** rack layout: one LAN per rack, each behind its own ToR router */
    racks: z.array(rack).min(1).optional(),
    /** rack layout: the segment between the ToRs and the edge router */
    fabric: cidr.optional(),
    /** router ↔ client hosts */
    uplink: cidr,
    vip: ipv4,
    apiPort: port.default(6443),
    kubePrismPort: port.default(7445),
    /** host number of the first node in each LAN (cp1 = .11 with the default) */
    firstNodeHost: z.number().int().min(2).max(250).default(11),
    pool: obj({ name: k8sName.default('lab-pool'), cidr }),
    resilientEcmp: obj({
      enabled: z.boolean().default(false),
      // Linux resilient nexthop groups (ip-nexthop(8), kernel ≥ 5.13): buckets and idle timer
      buckets: z.number().int().min(2).max(65535).default(128),
      idleTimerS: z.number().int().min(0).max(MAX_TIMER_S, `expected at most ${MAX_TIMER_S.toLocaleString('en-US')} s (1 h)`).default(120),
    }).default({}),
  }),
  /** flat layout: the one router (LAN + uplink); rack layout: the edge router (fabric + uplink) */
  router,
  clients: z.number().int().min(1).max(8).default(1),
  /** the external load-balancer host (HAProxy for the API); default segment = the control planes' LAN */
  loadBalancer: obj({ name: hostName.default('lb'), segment: segmentName.optional() }).optional(),
  /** default: one ETP Cluster and one ETP Local service from the pool */
  services: z.array(service).min(1).max(MAX_SERVICES, `expected at most ${MAX_SERVICES} services`).optional(),
  timers: timersOverride.optional(),
  /** mechanism settings (e.g. `kubeVip: { version: v1.2.3 }`) */
  settings: settingsOverride.optional(),
});
export type RawTopology = z.infer<typeof topologySchema>;
export type RawRack = z.infer<typeof rack>;
export type RawService = z.infer<typeof service>;

// ---------------------------------------------------------------------------------------------
// lab file

const strategyId = z.string().superRefine((s, ctx) => {
  const r = parseStrategyId(s);
  if ('error' in r) ctx.addIssue({ code: z.ZodIssueCode.custom, message: r.error });
});

/**
 * `options`: `bfd` (BFD on the BGP sessions of any BGP mechanism) and every option a registered
 * mechanism declares (Role.options); whether an option means something for the strategy it is set
 * on is resolve.ts's check.
 */
const strategyOptions = obj({
  bfd: z.boolean().optional(),
  ...Object.fromEntries(roles().flatMap((r) => Object.keys(r.options ?? {})).map((k) => [k, z.boolean().optional()])),
});

const strategy = z.preprocess(
  (v) => (typeof v === 'string' ? { id: v } : v),
  obj({
    id: strategyId,
    label: z.string().min(1).optional(),
    recommended: z.boolean().default(false),
    options: strategyOptions.default({}),
  }),
);

const victim = z.union([z.enum(VICTIM_RULES), obj({ node: hostName })], {
  errorMap: () => ({ message: `expected one of ${VICTIM_RULES.join(', ')} or { node: <host name> }` }),
});

const drill = z.preprocess(
  (v) => (typeof v === 'string' ? { kind: v } : v),
  obj({
    kind: z.enum(DRILL_KINDS),
    /** default per kind (resolve.ts) */
    target: z.enum(TARGETS).optional(),
    victim: victim.optional(),
    preMs: phaseMs.optional(),
    holdMs: phaseMs.optional(),
    settleMs: phaseMs.optional(),
    observeMs: phaseMs.optional(),
  }),
);
export type RawDrill = z.infer<typeof drill>;

const traffic = obj({
  rate: z.number().positive().max(100_000).default(200),
  connections: z.number().int().min(1).max(1024).default(8),
  mode: z.enum(['keepalive', 'new-connection']).default('keepalive'),
  // a reply later than a minute is no latency a lab reports; the open-loop queue holds rate × timeout
  timeoutMs: ms.min(1).max(60_000, 'expected at most 60,000 ms for a request timeout').default(1000),
  // the outage probe runs at a fixed short interval, ≤ 10 ms, so a failover is resolved to 10 ms
  probeIntervalMs: z.number().int().min(1).max(10, 'expected ≤ 10 ms: the outage probe must resolve failovers to 10 ms').default(10),
  // the probe resolves failovers to 10 ms; a probe allowed 10 s says nothing about the first of them
  probeTimeoutMs: ms.min(1).max(10_000, 'expected at most 10,000 ms for the outage probe timeout').default(200),
  recoverSuccesses: z.number().int().min(1).max(1000).default(5),
  streams: z.number().int().min(0).max(256).default(4),
});

export const labSchema = obj({
  name: labName.optional(),
  description: z.string().default(''),
  /** a name under topologies/ or a path relative to this lab file */
  topology: z.string().min(1, 'expected a topology name (under topologies/) or a path relative to the lab file'),
  strategies: z.array(strategy).min(1, 'expected at least one strategy'),
  drills: z.array(drill).min(1, 'expected at least one drill'),
  traffic: traffic.default({}),
  repeats: z.number().int().min(1).max(100).default(3),
  thresholds: z.record(z.string(), z.number()).default({}),
  timers: timersOverride.optional(),
  /** mechanism settings (e.g. `kubeVip: { version: v1.2.3 }`) */
  settings: settingsOverride.optional(),
  /** what `--quick` does for this lab */
  quick: obj({
    drills: z.array(z.enum(DRILL_KINDS)).min(1).optional(),
    repeats: z.number().int().min(1).max(100).default(1),
    preMs: phaseMs.default(1500),
    settleMs: phaseMs.default(1000),
    observeMs: phaseMs.default(5000),
    timers: timersOverride.optional(),
  }).default({}),
});
export type RawLab = z.infer<typeof labSchema>;
