/**
 * Benchmark target for scripts/bench.mjs: a minimal node:http server shaped like the lab's echo
 * pods (JSON `{"node","clientIp"}`), on 127.0.0.1, port printed on stdout. One process, one core.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const server = http.createServer((req, res) => {
  const body = `{"node":"bench","clientIp":"${req.socket.remoteAddress}"}`;
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
});
server.keepAliveTimeout = 60_000;
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  process.stdout.write(`${(server.address() as AddressInfo).port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
