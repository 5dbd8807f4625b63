/**
 * Drills as Docker operations, for any container of a lab (a real Talos node, an emulated node, a
 * router): stop, kill, pause, a link's network disconnected and reconnected, nftables inside the
 * container — or, for containers without a shell (Talos), in a one-shot helper container joined to
 * its network namespace. Which primitive a node kind does its own way (Talos' graceful shutdown
 * through talosctl) is the kind's business; this module does the Docker side.
 */
import type Docker from 'dockerode';
import type { Topology } from '../../../model/types.js';
import { LabError } from '../../../util/errors.js';
import { sleep } from '../../../util/proc.js';
import {
  disconnectNetwork,
  dockerExec,
  killContainer,
  pauseContainer,
  reconnectNetwork,
  renameLinkScript,
  runInNetns,
  startContainer,
  stopContainer,
  supportsIfnameOpt,
  unpauseContainer,
  waitNotRunning,
} from './engine.js';

/** nftables, in the node's own network namespace: drop everything on the LAN link, both ways, ARP too; processes run on. */
export function partitionNft(ifname: string): string {
  return [
    'table inet tlab_partition {',
    `  chain c_input { type filter hook input priority -300; policy accept; iifname "${ifname}" drop; }`,
    `  chain c_forward { type filter hook forward priority -300; policy accept; iifname "${ifname}" drop; oifname "${ifname}" drop; }`,
    `  chain c_output { type filter hook output priority -300; policy accept; oifname "${ifname}" drop; }`,
    '}',
    'table arp tlab_partition {',
    `  chain c_input { type filter hook input priority -300; policy accept; iifname "${ifname}" drop; }`,
    `  chain c_output { type filter hook output priority -300; policy accept; oifname "${ifname}" drop; }`,
    '}',
    '',
  ].join('\n');
}
export const PARTITION_UNDO = 'delete table inet tlab_partition\ndelete table arp tlab_partition\n';

/**
 * Sticky-ARP gear on the router: drop gratuitous ARP (sender IP = target IP) for the addresses the
 * lab moves (VIP, Service pool). Requests and replies addressed to the router still pass, so the
 * path heals when the router's own neighbour entry expires and it asks again — Linux behaviour.
 */
export function garpIgnoreNft(t: Topology): string {
  const moving = [...new Set([t.vip, ...t.pool.addresses])];
  return [
    'table arp tlab_garp {',
    `  set moving { type ipv4_addr; elements = { ${moving.join(', ')} } }`,
    '  chain c_input { type filter hook input priority -300; policy accept; arp saddr ip @moving arp daddr ip @moving drop; }',
    '}',
    '',
  ].join('\n');
}
export const GARP_UNDO = 'delete table arp tlab_garp\n';

export interface PrimitiveMapping {
  how: string;
  restore: string;
}

/** The Docker side of each fault primitive (what `--dry-run` and the report say). */
export const DOCKER_FAULTS = {
  stop: { how: 'docker stop (the stop signal, then SIGKILL after the grace time)', restore: 'docker start once the container has exited' },
  crash: { how: 'docker kill -s KILL: every process dies at once and the network namespace goes with it (peers notice by timeouts)', restore: 'docker start (same anonymous volumes)' },
  freeze: { how: 'docker pause (cgroup freezer): processes stop, the kernel still answers ARP and completes TCP handshakes', restore: 'docker unpause' },
  partition: {
    how: 'nftables in the container’s network namespace (a helper container on `--network container:<node>` when it has no shell): all traffic on its LAN link dropped both ways, ARP too; the link stays up and processes run on',
    restore: 'delete the nft tables',
  },
  'link-flap': {
    how: 'docker network disconnect (the link disappears), reconnect after the hold time with the same address and interface name (Docker ≥ 28 names it at connect; older engines get it renamed back by MAC)',
    restore: 'docker network connect',
  },
} as const satisfies Record<string, PrimitiveMapping>;

export interface DockerFaultsOptions {
  docker: Docker;
  /** a container's name from a host name */
  container(host: string): string;
  /** image of the helper containers (needs sh, nft, ip) */
  helperImage(): string;
  labels: Record<string, string>;
  /** called before a helper container is created (the lab state records it) */
  record(name: string): void;
  /** the engine's API version (decides how a reconnected link keeps its name) */
  apiVersion?(): string | undefined;
  signal?: AbortSignal;
  say?(m: string): void;
}

/** Docker operations on a lab's containers, as the drills need them. */
export class DockerFaults {
  constructor(private readonly o: DockerFaultsOptions) {}

  private get d(): Docker {
    return this.o.docker;
  }

  /** run a script in the host's network namespace: in the container itself when it has a shell, else from a helper */
  async inNetns(host: string, script: string, hasShell: boolean): Promise<void> {
    const name = this.o.container(host);
    if (hasShell) {
      const r = await dockerExec(this.d, name, ['sh', '-c', script]);
      if (r.exitCode !== 0) throw new LabError(`on ${host}: ${r.stderr || r.stdout}`);
      return;
    }
    await runInNetns(this.d, name, this.o.helperImage(), script, {
      name: `${name}-helper-${Date.now().toString(36)}`,
      labels: { ...this.o.labels, 'tlab.kind': 'helper' },
      record: this.o.record,
    });
  }

  /** an nftables script, loaded through stdin-less `nft -f` of an environment variable (no quoting issues) */
  async nft(host: string, script: string, hasShell: boolean): Promise<void> {
    const name = this.o.container(host);
    if (hasShell) {
      const r = await dockerExec(this.d, name, ['sh', '-c', 'printf "%s" "$NFT" | nft -f -'], { env: [`NFT=${script}`] });
      if (r.exitCode !== 0) throw new LabError(`nft on ${host}: ${r.stderr}`);
      return;
    }
    await runInNetns(this.d, name, this.o.helperImage(), 'printf "%s" "$NFT" | nft -f -', {
      name: `${name}-nft-${Date.now().toString(36)}`,
      labels: { ...this.o.labels, 'tlab.kind': 'helper' },
      record: this.o.record,
      env: [`NFT=${script}`],
    });
  }

  stop(host: string, graceS: number): Promise<void> {
    return stopContainer(this.d, this.o.container(host), graceS);
  }
  crash(host: string): Promise<void> {
    return killContainer(this.d, this.o.container(host), 'SIGKILL');
  }
  freeze(host: string): Promise<void> {
    return pauseContainer(this.d, this.o.container(host));
  }
  thaw(host: string): Promise<void> {
    return unpauseContainer(this.d, this.o.container(host));
  }
  partition(host: string, ifname: string, hasShell: boolean): Promise<void> {
    return this.nft(host, partitionNft(ifname), hasShell);
  }
  heal(host: string, hasShell: boolean): Promise<void> {
    return this.nft(host, PARTITION_UNDO, hasShell);
  }

  /**
   * Start a container again after a shutdown or crash. A graceful shutdown may still be under way
   * (the container runs until its init exits): starting a running container is a no-op (304), and
   * the container would then exit for good. So: wait until it has exited, at most `exitWaitMs`;
   * if it has not, stop it (graceful, then SIGKILL); then start.
   */
  async startAgain(host: string, exitWaitMs: number): Promise<void> {
    const name = this.o.container(host);
    if (!(await waitNotRunning(this.d, name, exitWaitMs))) {
      this.o.say?.(`${host}: still running ${Math.round(exitWaitMs / 1000)} s after its shutdown: docker stop`);
      await stopContainer(this.d, name, 30);
    }
    await startContainer(this.d, name);
  }

  /** the link down for `downMs`, then back with the same address and name */
  async linkFlap(host: string, network: string, ip: string, ifname: string, downMs: number, hasShell: boolean): Promise<void> {
    const name = this.o.container(host);
    await disconnectNetwork(this.d, network, name);
    await sleep(downMs, this.o.signal);
    const api = this.o.apiVersion?.();
    const mac = await reconnectNetwork(this.d, network, name, ip, ifname, api);
    // an engine that names the interface at connect (Docker ≥ 28) already did; older ones get it renamed by MAC
    if (mac && !supportsIfnameOpt(api)) await this.inNetns(host, renameLinkScript(mac, ifname), hasShell);
  }
}
