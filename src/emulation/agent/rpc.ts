/**
 * Newline-delimited JSON RPC over a unix socket: `{id, method, params}` → `{id, result}` or
 * `{id, error}`. The socket lives in the lab's state dir (the filesystem is shared by every
 * namespace, so the orchestrator in the root namespace reaches agents inside lab namespaces
 * without any address in the root namespace).
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { LabError } from '../../util/errors.js';

export type Handler = (method: string, params: unknown) => Promise<unknown>;

export function serve(socketPath: string, handler: Handler): Promise<Server> {
  const server = createServer((sock) => {
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (chunk) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line.trim()) continue;
        let req: { id: number; method: string; params: unknown };
        try {
          req = JSON.parse(line);
        } catch {
          continue;
        }
        handler(req.method, req.params).then(
          (result) => reply(sock, { id: req.id, result: result ?? null }),
          (err) => reply(sock, { id: req.id, error: err instanceof Error ? err.message : String(err) }),
        );
      }
    });
    sock.on('error', () => {});
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve(server));
  });
}

function reply(sock: Socket, msg: unknown) {
  if (!sock.destroyed) sock.write(JSON.stringify(msg) + '\n');
}

export class RpcError extends LabError {}

/** One call, one connection: simple and robust across agent restarts. */
export function call<T = unknown>(socketPath: string, method: string, params?: unknown, timeoutMs = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(socketPath);
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new RpcError(`${method} on ${socketPath}: no answer in ${timeoutMs} ms`));
    }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(JSON.stringify({ id: 1, method, params: params ?? null }) + '\n'));
    sock.on('data', (chunk) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      sock.end();
      const msg = JSON.parse(buf.slice(0, nl)) as { result?: T; error?: string };
      if (msg.error !== undefined) reject(new RpcError(`${method}: ${msg.error}`));
      else resolve(msg.result as T);
    });
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(new RpcError(`${method} on ${socketPath}: ${e.message}`));
    });
  });
}
