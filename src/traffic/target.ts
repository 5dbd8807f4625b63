/**
 * What a generator or probe talks to (`http://…`, `https://…`, `tcp://host:port`, `tls://host:port`),
 * how its failures are named, and how a reply tells which node served it.
 */
import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';

export type TargetProtocol = 'http' | 'https' | 'tcp' | 'tls';

export interface ParsedTarget {
  protocol: TargetProtocol;
  host: string;
  port: number;
  /** path + query for http(s); '' for tcp/tls */
  path: string;
  /** the text given, for reports */
  url: string;
}

/** TLS settings for https:// and tls:// targets (the lab API endpoint uses a lab CA). */
export interface TlsOptions {
  /** PEM text of the CA that signed the server certificate */
  ca?: string;
  /** path of a PEM CA file (read once at start; handy over RPC where Buffers do not travel) */
  caFile?: string;
  /** skip certificate verification; default: true when neither ca nor caFile is given */
  insecure?: boolean;
  /** SNI / name to verify (default: the target host when it is a name, none for an IP) */
  servername?: string;
}

const DEFAULT_PORT: Record<TargetProtocol, number> = { http: 80, https: 443, tcp: 0, tls: 0 };

export function parseTarget(target: string): ParsedTarget {
  let u: URL;
  try {
    u = new URL(target);
  } catch {
    throw new TypeError(`bad target '${target}': expected http://, https://, tcp://host:port or tls://host:port`);
  }
  const protocol = u.protocol.replace(/:$/, '') as TargetProtocol;
  if (!(protocol in DEFAULT_PORT)) {
    throw new TypeError(`bad target '${target}': protocol '${protocol}' is not one of http, https, tcp, tls`);
  }
  const port = u.port ? Number(u.port) : DEFAULT_PORT[protocol];
  if (!port) throw new TypeError(`bad target '${target}': ${protocol}:// needs an explicit port`);
  // URL keeps IPv6 literals in brackets; sockets want them bare
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  const path = protocol === 'http' || protocol === 'https' ? `${u.pathname || '/'}${u.search}` : '';
  return { protocol, host, port, path, url: target };
}

/** Resolve TlsOptions into the fields node:tls / node:https take. */
export function tlsConnectOptions(t: TlsOptions | undefined, host: string): {
  rejectUnauthorized: boolean;
  ca?: string;
  servername?: string;
} {
  const ca = t?.ca ?? (t?.caFile ? readFileSync(t.caFile, 'utf8') : undefined);
  const insecure = t?.insecure ?? !ca;
  const isIp = /^[\d.]+$/.test(host) || host.includes(':');
  const servername = t?.servername ?? (isIp ? undefined : host);
  return { rejectUnauthorized: !insecure, ...(ca ? { ca } : {}), ...(servername ? { servername } : {}) };
}

/**
 * Failure kinds, as counted in `errorsByKind`:
 * - `timeout`: no complete answer before the deadline (for the load generator the deadline counts
 *   from the INTENDED send time, see loadgen.ts)
 * - `refused`: ECONNREFUSED (nothing listens: a node that lost its service, a RST to a SYN)
 * - `reset`: ECONNRESET / EPIPE / ECONNABORTED / a connection closed before a reply
 * - `unreachable`: EHOSTUNREACH / ENETUNREACH / EHOSTDOWN / ENETDOWN (no ARP answer, no route) —
 *   an addition to the brief's list because L2 drills produce exactly this
 * - `http-<status>`: a reply with status >= 400
 * - `other`: anything else (TLS failures, DNS…)
 */
export type ErrorKind = 'timeout' | 'refused' | 'reset' | 'unreachable' | 'other' | `http-${number}`;

/** The error the engine destroys a late request with; classified as `timeout`. */
export class DeadlineError extends Error {
  readonly code = 'ELABDEADLINE';
  constructor() {
    super('deadline passed');
  }
}

export function classifyError(err: unknown): ErrorKind {
  const e = err as { code?: string; message?: string } | undefined;
  const code = e?.code ?? '';
  switch (code) {
    case 'ELABDEADLINE':
    case 'ETIMEDOUT':
    case 'ESOCKETTIMEDOUT':
      return 'timeout';
    case 'ECONNREFUSED':
      return 'refused';
    case 'ECONNRESET':
    case 'EPIPE':
    case 'ECONNABORTED':
    case 'ERR_STREAM_PREMATURE_CLOSE':
    case 'HPE_INVALID_EOF_STATE':
      return 'reset';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EHOSTDOWN':
    case 'ENETDOWN':
      return 'unreachable';
  }
  if (/socket hang up|aborted/i.test(e?.message ?? '')) return 'reset';
  return 'other';
}

export function httpStatusKind(status: number): ErrorKind | null {
  return status >= 400 ? (`http-${status}` as ErrorKind) : null;
}

/** Largest body we parse for `{"node","clientIp"}`; bigger bodies are drained unread. */
export const MAX_PARSED_BODY = 16 * 1024;

export interface ServedBy {
  node?: string;
  clientIp?: string;
}

/**
 * The plain `host:port` body of agnhost netexec's `/clientip` (`fmt.Fprintf(w, r.RemoteAddr)`,
 * kubernetes test/images/agnhost/netexec/netexec.go), the echo workload of real clusters
 * (src/providers/kinds/talos/workload.ts): `10.32.100.10:41234` or `[fd00::1]:41234`.
 */
const REMOTE_ADDR = /^(?:(\d{1,3}(?:\.\d{1,3}){3})|\[([0-9a-fA-F:.]+)\]):\d{1,5}\s*$/;

/**
 * Which node served a reply: the `x-served-by` header (API stand-in, HAProxy-style) or the echo
 * servers' JSON body `{"node":"w1","clientIp":"10.0.0.1"}`. The header wins for the node. A body
 * that is only a remote address (agnhost netexec `/clientip`) gives the client IP, no node.
 */
export function servedBy(headers: IncomingHttpHeaders, body: string | undefined): ServedBy {
  const out: ServedBy = {};
  const h = headers['x-served-by'];
  if (typeof h === 'string' && h) out.node = h;
  const ip = headers['x-client-ip'];
  if (typeof ip === 'string' && ip) out.clientIp = ip;
  if (body && out.clientIp === undefined && body.length < 64) {
    const m = REMOTE_ADDR.exec(body);
    if (m) out.clientIp = (m[1] ?? m[2])!.replace(/^::ffff:/, '');
  }
  if (body && body.charCodeAt(0) === 123 /* { */) {
    try {
      const j = JSON.parse(body) as { node?: unknown; clientIp?: unknown };
      if (out.node === undefined && typeof j.node === 'string') out.node = j.node;
      if (out.clientIp === undefined && typeof j.clientIp === 'string') out.clientIp = j.clientIp;
    } catch {
      /* not JSON: no node */
    }
  }
  return out;
}
