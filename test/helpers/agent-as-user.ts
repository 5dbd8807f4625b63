/**
 * Run by test/e2e/docker-runtime.test.ts as a NON-ROOT user of the docker group (setpriv), the
 * way a user of `--provider docker` runs the CLI: reaches the Docker engine through its socket,
 * optionally starts the lab's traffic agent in a container with the code the Talos-on-docker lab
 * uses (as this process's uid:gid), and calls the agent's RPC socket. Prints one JSON line.
 *
 *   node --import tsx test/helpers/agent-as-user.ts <container> <spec.json> launch|call
 */
import { dirname, join } from 'node:path';
import { readFileSync } from 'node:fs';
import type { AgentSpec } from '../../src/emulation/agent/types.js';
import { call } from '../../src/emulation/agent/rpc.js';
import { connectDocker } from '../../src/providers/runtimes/docker/engine.js';
import { agentUser, launchAgent } from '../../src/providers/runtimes/docker/talos.js';
import { sleep } from '../../src/util/proc.js';

const [container, specFile, mode] = process.argv.slice(2) as [string, string, 'launch' | 'call'];
const spec = JSON.parse(readFileSync(specFile, 'utf8')) as AgentSpec;
const out: Record<string, unknown> = { uid: process.getuid?.(), gid: process.getgid?.(), groups: process.getgroups?.() };
try {
  const d = await connectDocker();
  out.docker = (await d.version()).Version;
  if (mode === 'launch') {
    out.user = agentUser();
    await launchAgent(d, container, specFile, { pidFile: join(dirname(specFile), 'agent.pid'), logFile: join(dirname(specFile), 'agent.log'), user: agentUser() });
  }
  // the agent compiles itself with tsx on its first start: up to a minute on a busy 2-core host
  let last = '';
  for (let i = 0; i < 600; i++) {
    try {
      out.ping = await call(spec.socket, 'ping', null, 2000);
      break;
    } catch (e) {
      last = `${(e as NodeJS.ErrnoException).code ?? ''} ${(e as Error).message}`.trim();
      // a socket that exists and refuses this user will not change its mind
      if (/EACCES|EPERM/.test(last)) break;
      await sleep(100);
    }
  }
  if (out.ping === undefined) out.error = last;
} catch (e) {
  out.error = (e as Error).message;
}
// the engine client's keep-alive connection would hold the process open
process.stdout.write(JSON.stringify(out) + '\n', () => process.exit(0));
