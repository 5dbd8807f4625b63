/**
 * A probe for the Service tests that run agents by hand: one fresh HTTP connection every 10 ms from
 * a client namespace, recording per request which pod answered AND the source address that pod
 * saw (`{node, clientIp}` of the echo body). The lab's own outage probe (src/traffic/outage.ts)
 * keeps only the node per sample, and these tests assert on the client IP of every answer.
 */
import { run } from '../../src/util/proc.js';

export interface PodSample {
  t: number;
  ok: boolean;
  node?: string;
  clientIp?: string;
}

const SCRIPT = `
const http = require('node:http');
const [url, dur] = [process.argv[1], Number(process.argv[2])];
const out = []; const t0 = Date.now(); let pending = 0; let done = false;
const tick = setInterval(() => {
  if (Date.now() - t0 >= dur) { clearInterval(tick); done = true; if (!pending) finish(); return; }
  const t = Date.now(); pending++;
  const req = http.get(url, { agent: false, timeout: 200 }, (res) => {
    let b = ''; res.on('data', (d) => (b += d));
    res.on('end', () => { let j = {}; try { j = JSON.parse(b); } catch {} out.push({ t, ok: res.statusCode === 200, node: j.node, clientIp: j.clientIp }); end(); });
  });
  req.on('timeout', () => req.destroy(new Error('timeout')));
  req.on('error', () => { out.push({ t, ok: false }); end(); });
}, 10);
function end() { pending--; if (done && !pending) finish(); }
function finish() { console.log(JSON.stringify(out)); process.exit(0); }`;

/** probe `url` from namespace `ns` for `durationMs` (bounded: it stops by itself) */
export async function probePods(ns: string, url: string, durationMs: number): Promise<PodSample[]> {
  const r = await run('node', ['-e', SCRIPT, url, String(durationMs)], { ns, timeoutMs: durationMs + 15_000 });
  return JSON.parse(r.stdout) as PodSample[];
}
