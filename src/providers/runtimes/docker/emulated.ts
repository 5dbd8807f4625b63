/**
 * `--provider docker --nodes emulated`: the lab's EMULATED nodes (src/providers/kinds/emulated/)
 * on the docker runtime (./runtime.ts) — the same agents, FRR, etcd and HAProxy as the sim, each
 * host a container of the lab appliance on `--internal` Docker networks. It runs wherever a
 * Linux Docker engine runs, with no Talos image and no talosctl.
 *
 * The kind gets the OVERLAY topology (./overlay.ts): the same hosts and addresses, its links
 * named `tl<ifname>` (Docker owns the `eth<N>` names inside its containers), and each strategy is
 * rendered again for that topology at apply, so the agents' configs name the links that exist.
 *
 * One instance at a time: every instance of a lab uses the lab's own subnets and Docker refuses
 * two networks with overlapping subnets.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import type { Lab } from '../../../model/types.js';
import type { PlanStep, Provider, Support } from '../../types.js';
import { PrerequisiteError } from '../../../util/errors.js';
import { quote, run } from '../../../util/proc.js';
import { composeStrategy, renderStrategy } from '../../../strategies/compose.js';
import { EmulatedLab } from '../../kinds/emulated/lab.js';
import { connectDocker, pingDocker } from './engine.js';
import { brNetfilter } from './dockerd.js';
import { ensureApplianceImage, PUBLIC_BASE } from './appliance.js';
import { allHosts, dockerCliEquivalent } from './network.js';
import { overlayScript, overlayTopology, VXLAN_PORT } from './overlay.js';
import { DockerRuntime, dockerEmulatedContainer, dockerEmulatedNetworkPlans } from './runtime.js';

/** the appliance's tag when TLAB_APPLIANCE_IMAGE names a ready one (no build, no registry probe) */
const presetImage = (env: NodeJS.ProcessEnv = process.env) => env.TLAB_APPLIANCE_IMAGE || '';

/**
 * With br_netfilter (`bridge-nf-call-ip6tables=1`) the overlay's UDP/IPv6 frames cross the host's
 * ip6tables FORWARD chain: moby adds nothing there for networks without IPv6, so only a host
 * firewall whose FORWARD policy drops could stop them. Read-only: `ip6tables -S FORWARD`.
 */
async function overlayBlocked(): Promise<string | null> {
  const br = await brNetfilter();
  if (!br.loaded || br.bridgeNfCallIp6tables !== '1') return null;
  const r = await run('ip6tables', ['-S', 'FORWARD'], { reject: false, timeoutMs: 10_000 }).catch(() => null);
  if (!r || r.exitCode !== 0) return null;
  return /^-P FORWARD (DROP|REJECT)/m.test(r.stdout) && !new RegExp(`--dport ${VXLAN_PORT}\\b.*-j ACCEPT`).test(r.stdout) ? r.stdout.split('\n')[0]! : null;
}

export async function dockerEmulatedCheck(_lab: Lab): Promise<void> {
  if (process.platform !== 'linux') {
    throw new PrerequisiteError(`emulated nodes on docker need a Linux host with a local Docker engine (this is ${process.platform}): the runtime signals its containers' processes and shares the lab state by bind mounts`, 'npm run lab -- <lab> --provider sim');
  }
  if (process.getuid?.() !== 0) {
    throw new PrerequisiteError(
      'emulated nodes on docker need root: the containers write the lab state (etcd data, agent sockets) as root and the runtime signals their processes',
      'sudo npm run lab -- <lab> --provider docker --nodes emulated',
    );
  }
  const d = await connectDocker();
  const ping = await pingDocker(d);
  if (!ping.ok) {
    if (ping.permission) throw new PrerequisiteError(`Docker daemon refuses this user (${ping.why})`, 'sudo usermod -aG docker "$USER" && newgrp docker');
    throw new PrerequisiteError(`Docker daemon not reachable (${process.env.DOCKER_HOST || '/var/run/docker.sock'}: ${ping.why})`, existsSync('/run/systemd/system') ? 'sudo systemctl start docker' : 'sudo sh -c "dockerd > /var/log/dockerd.log 2>&1 &"');
  }
  const image = presetImage();
  if (image) {
    try {
      await d.getImage(image).inspect();
    } catch {
      throw new PrerequisiteError(`image ${image} (TLAB_APPLIANCE_IMAGE) is not present`, `docker pull ${image}   # or unset TLAB_APPLIANCE_IMAGE: the lab builds its appliance`);
    }
  }
  const blocked = await overlayBlocked();
  if (blocked) {
    throw new PrerequisiteError(
      `the host's ip6tables FORWARD chain drops bridged IPv6 (${blocked}; br_netfilter is loaded): the lab's segments ride VXLAN over IPv6 between containers of one Docker network`,
      `ip6tables -I FORWARD -p udp --dport ${VXLAN_PORT} -m physdev --physdev-is-bridged -j ACCEPT`,
    );
  }
}

export const dockerEmulatedProvider: Provider = {
  name: 'docker',
  emulated: true,
  nodes: 'emulated',
  // the lab's own subnets on Docker networks: a second instance's networks would overlap (Docker refuses)
  maxInstances: 1,

  supportsDrill(): Support {
    return { supported: true };
  },

  check: dockerEmulatedCheck,

  supports(): Support {
    // the same kind as the sim: what it cannot run is rejected by the model
    return { supported: true };
  },

  async up(lab, ctx) {
    const d = await connectDocker();
    const apiVersion = (await d.version()).ApiVersion;
    let image = presetImage();
    if (!image) image = (await ensureApplianceImage(d, { log: (m) => ctx.progress?.(m), signal: ctx.signal })).image;
    const t = overlayTopology(lab.topology);
    const rt = new DockerRuntime(t, ctx, { docker: d, image: () => image, apiVersion });
    const running = await EmulatedLab.up({ ...lab, topology: t }, ctx, rt, 'docker');
    // each strategy rendered for the overlay topology: its agents name the links the containers have
    const apply = running.apply.bind(running);
    running.apply = (ref) => apply(ref, renderStrategy(t, composeStrategy(ref)));
    return running;
  },

  async plan(lab, { prefix, renderDir }): Promise<PlanStep[]> {
    const t = overlayTopology(lab.topology);
    const image = presetImage() || 'tlab-appliance:<hash>';
    const steps: PlanStep[] = [
      { what: `check: Linux, root, Docker answers; the lab appliance image (${presetImage() ? `TLAB_APPLIANCE_IMAGE=${image}` : `built once FROM ${PUBLIC_BASE} or an offline Debian base, reused by its hash`})` },
    ];
    const nets = dockerEmulatedNetworkPlans(t, prefix);
    for (const n of nets) steps.push({ what: `network ${n.name} (${n.segment}, internal)`, command: quote(dockerCliEquivalent(n)).replace(' --driver bridge', ' --driver bridge --internal') });
    const dir = renderDir ? join(renderDir, 'docker-emulated') : null;
    for (const h of allHosts(t)) {
      const c = dockerEmulatedContainer(t, h, { prefix, image, stateDir: '<lab state>' });
      steps.push({ what: `container ${c.name} (${h.kind}; ${h.interfaces.map((i) => `${i.ifname} ${i.ip}/${i.prefixLen} on ${i.segment}`).join(', ')}): the lab's links as VXLAN over Docker's link, then the lab's processes through docker exec` });
      if (dir) {
        mkdirSync(join(dir, 'containers'), { recursive: true });
        writeFileSync(join(dir, 'containers', `${c.name}.json`), JSON.stringify(c, null, 2) + '\n');
        writeFileSync(join(dir, 'containers', `${c.name}.net.sh`), overlayScript(t, h));
      }
    }
    const cps = t.nodes.filter((n) => n.role === 'controlplane');
    steps.push({ what: `FRR on the routers, etcd on ${cps.map((n) => n.name).join(', ')}, the lab PKI, a traffic agent on ${t.clients.map((c) => c.name).join(', ')} (docker exec)` });
    for (const s of lab.strategies) steps.push({ what: `strategy ${s.id}: node speakers, daemons, one agent per node (emulated components), then the drills: ${lab.drills.map((x) => x.kind).join(', ')}` });
    steps.push({ what: 'down: every recorded process, container and network removed (the code `lab clean` runs)' });
    return steps;
  },
};
