/**
 * The `echo` agent component: the workload "pod" of a node (a real Deployment's pod, stood in for by
 * a process in the node's namespace). It is what the client's probes and streams talk to, through
 * kube-proxy's service routing (./kube-proxy.ts):
 *
 * - HTTP on `0.0.0.0:<port>` (the Service's targetPort, 8080): any GET answers
 *   `{"node":"<node>","clientIp":"<source address it saw>"}` with headers `x-served-by` and
 *   `x-client-ip` (read by src/traffic/target.ts `servedBy`). `clientIp` is what shows whether
 *   the client's address survived: the ingress node's IP under externalTrafficPolicy Cluster
 *   (kube-proxy masquerades), the client's own under Local.
 * - `GET /stream`: a chunked response whose first line is the same JSON, then a tick line every
 *   50 ms until the client goes away (src/traffic/streams.ts http mode).
 * - a raw TCP echo on `<streamPort>` (9000): writes the JSON line on connect, then echoes every
 *   byte back (src/traffic/streams.ts tcp mode).
 *
 * Readiness (what the EndpointSlice controller would publish): when the agent starts stopping (the
 * node is shut down gracefully, `ctx.signal` aborts) the pod tells every node's kube-proxy it is
 * terminating (still serving), BEFORE the node's other components stop — the kubelet's graceful
 * node shutdown terminates regular pods first and node-critical ones (kube-proxy, the MetalLB
 * speaker) last (kubernetes.io/docs/concepts/cluster-administration/node-shutdown/, Kubernetes
 * 1.34) — and that it is gone once its listeners are closed. A crashed, frozen or cut-off node
 * sends nothing; kube-proxy then notices by the missing node heartbeats.
 *
 * Config: `{ port, streamPort, readinessPort? }` (the topology's Service targetPort/streamPort).
 */
import http from 'node:http';
import net from 'node:net';
import dgram from 'node:dgram';
import type { AgentComponent, AgentContext, ComponentFactory } from './agent/types.js';

export interface EchoConfig {
  port: number;
  streamPort: number;
  /** UDP port of kube-proxy's endpoint-readiness listener on every node (default KUBE_PROXY_READINESS_PORT) */
  readinessPort?: number;
  /** stream tick period (default 50 ms) */
  tickMs?: number;
}

/** UDP port kube-proxy listens on for node heartbeats and pod readiness (a sim-internal channel). */
export const KUBE_PROXY_READINESS_PORT = 10250;

/** A pod's lifecycle as the EndpointSlice shows it: ready → terminating (still serving) → stopped (gone). */
export type PodState = 'ready' | 'terminating' | 'stopped';

/** Readiness messages between echo/kube-proxy agents (JSON over UDP). */
export type ReadinessMessage =
  | { t: 'hb'; node: string; renew?: number }
  /** a kubelet Lease renewal (RenewTime, epoch ms) */
  | { t: 'lease'; node: string; renew: number }
  | { t: PodState; node: string; port: number };

const factory: ComponentFactory = (ctx: AgentContext, config: EchoConfig) => new EchoComponent(ctx, config);
export default factory;

/** The client address a socket saw, without the IPv4-mapped IPv6 prefix. */
export function remoteIp(s: net.Socket): string {
  return (s.remoteAddress ?? '').replace(/^::ffff:/, '');
}

export function greeting(node: string, clientIp: string): string {
  return JSON.stringify({ node, clientIp });
}

export class EchoComponent implements AgentComponent {
  readonly kind = 'echo';
  private http?: http.Server;
  private tcp?: net.Server;
  private udp?: dgram.Socket;
  private readonly sockets = new Set<net.Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private requests = 0;
  private streams = 0;
  private terminating = false;
  /** datagrams handed to the socket and not yet sent (the socket closes after them) */
  private pending: Promise<unknown> = Promise.resolve();
  private readonly onAbort = () => void this.announce('terminating');

  constructor(
    private readonly ctx: AgentContext,
    private readonly config: EchoConfig,
  ) {
    if (!config || !Number.isInteger(config.port) || !Number.isInteger(config.streamPort)) {
      throw new Error(`echo: config needs integer {port, streamPort}, got ${JSON.stringify(config)}`);
    }
  }

  async start(): Promise<void> {
    const node = this.ctx.host;
    const tickMs = this.config.tickMs ?? 50;
    this.http = http.createServer((req, res) => {
      this.requests++;
      const clientIp = remoteIp(req.socket);
      const body = greeting(node, clientIp);
      const headers = { 'content-type': 'application/json', 'x-served-by': node, 'x-client-ip': clientIp };
      if (req.method === 'GET' && (req.url === '/stream' || req.url?.startsWith('/stream?'))) {
        this.streams++;
        res.writeHead(200, { ...headers, 'cache-control': 'no-store' });
        res.write(body + '\n');
        let n = 0;
        const t = setInterval(() => res.write(`tick ${n++}\n`), tickMs);
        this.timers.add(t);
        const end = () => {
          clearInterval(t);
          this.timers.delete(t);
        };
        res.on('close', end);
        return;
      }
      res.writeHead(200, { ...headers, 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
    this.http.keepAliveTimeout = 60_000;
    this.http.on('connection', (s) => this.track(s));
    this.tcp = net.createServer((s) => {
      this.track(s);
      this.streams++;
      s.setNoDelay(true);
      s.on('error', () => {});
      s.write(greeting(node, remoteIp(s)) + '\n');
      s.pipe(s);
    });
    await Promise.all([listen(this.http, this.config.port), listen(this.tcp, this.config.streamPort)]);
    this.udp = dgram.createSocket('udp4');
    this.udp.on('error', (e) => this.ctx.log('echo', `readiness socket: ${e.message}`));
    this.ctx.signal.addEventListener('abort', this.onAbort, { once: true });
    this.announce('ready');
    this.ctx.log('echo', `serving http :${this.config.port}, tcp echo :${this.config.streamPort}`);
  }

  async stop(): Promise<void> {
    await this.announce('terminating');
    this.ctx.signal.removeEventListener('abort', this.onAbort);
    for (const t of this.timers) clearInterval(t);
    this.timers.clear();
    const closing = [this.http, this.tcp].map((s) => new Promise<void>((r) => (s ? s.close(() => r()) : r())));
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await Promise.all(closing);
    await this.announce('stopped');
    await new Promise<void>((r) => (this.udp ? this.udp.close(() => r()) : r()));
  }

  status(): Record<string, unknown> {
    return { port: this.config.port, streamPort: this.config.streamPort, requests: this.requests, streams: this.streams, open: this.sockets.size, terminating: this.terminating };
  }

  private track(s: net.Socket): void {
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
  }

  /** tell every node's kube-proxy whether this pod can serve (EndpointSlice readiness) */
  private announce(kind: PodState): Promise<unknown> {
    if (kind === 'terminating') {
      if (this.terminating) return this.pending;
      this.terminating = true;
    }
    const udp = this.udp;
    if (!udp) return this.pending;
    const port = this.config.readinessPort ?? KUBE_PROXY_READINESS_PORT;
    const msg = Buffer.from(JSON.stringify({ t: kind, node: this.ctx.host, port: this.config.port } satisfies ReadinessMessage));
    const sends = (this.ctx.topology?.nodes ?? []).map(
      (n) =>
        new Promise<void>((resolve) => {
          try {
            udp.send(msg, port, n.ip, () => resolve());
          } catch {
            resolve(); // socket already closed
          }
        }),
    );
    this.pending = Promise.all([this.pending, ...sends]);
    return this.pending;
  }
}

function listen(server: net.Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => reject(new Error(`echo: cannot listen on 0.0.0.0:${port}: ${e.message}`));
    server.once('error', onError);
    server.listen({ port, host: '0.0.0.0', backlog: 1024 }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}
