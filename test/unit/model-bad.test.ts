/**
 * Every malformed lab/topology under test/fixtures/bad/ must give ONE LabInputError whose lines each
 * name the file and the path inside it. The table says which file, which path and what is said.
 */
import { describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadLab, REPO_ROOT } from '../../src/model/load.js';
import { LabInputError } from '../../src/util/errors.js';

const DIR = resolve(REPO_ROOT, 'test/fixtures/bad');
const REL = 'test/fixtures/bad';

// fixture (lab file) → [file named in the error, path inside it, words of the message]
const T = (name: string) => `${REL}/${name}.topology.yaml`;
const L = (name: string) => `${REL}/${name}.yaml`;
const CASES: Record<string, [string, string, RegExp]> = {
  // topology problems
  't-vip-outside-lan': [T('vip-outside-lan'), 'network.vip', /inside the control planes' LAN.*10\.99\.0\.10/],
  't-vip-is-node': [T('vip-is-node'), 'network.vip', /already the address of node cp1/],
  't-pool-contains-vip': [T('pool-contains-vip'), 'network.pool.cidr', /contains the VIP/],
  't-pool-overlaps-nodes': [T('pool-overlaps-nodes'), 'network.pool.cidr', /overlaps host addresses/],
  't-pool-network-address': [T('pool-network-address'), 'network.pool.cidr', /network or broadcast address/],
  't-no-control-plane': [T('no-control-plane'), 'cluster.controlPlanes', /at least 1 control plane/],
  't-duplicate-host-name': [T('duplicate-host-name'), 'router.name', /'cp2' is already used/],
  't-asn-equal': [T('asn-equal'), 'cluster.nodeAsn', /eBGP needs different ASNs/],
  't-asn-zero': [T('asn-zero'), 'router.asn', /1–4294967295/],
  't-asn-too-big': [T('asn-too-big'), 'router.asn', /1–4294967295.*4294967296/],
  't-unknown-key': [T('unknown-key'), 'network.colour', /unknown key 'colour'; allowed keys: lan, racks/],
  't-yaml-syntax': [T('yaml-syntax'), '', /YAML syntax error at line \d+, column \d+/],
  't-segments-overlap': [T('segments-overlap'), 'network.uplink', /overlaps segment 'lan'/],
  't-lan-too-small': [T('lan-too-small'), 'network.lan', /too few for node/],
  't-no-workload-node': [T('no-workload-node'), 'cluster.allowSchedulingOnControlPlanes', /must run the workloads/],
  't-single-node-label-kept': [T('single-node-label-kept'), 'cluster.removeExcludeLbLabel', /exclude-from-external-load-balancers/],
  't-services-no-local': [T('services-no-local'), 'services', /externalTrafficPolicy: Local/],
  't-service-ip-outside-pool': [T('service-ip-outside-pool'), 'services[0].ip', /outside the pool/],
  't-duplicate-service': [T('duplicate-service'), 'services[1].name', /listed twice/],
  't-lan-and-racks': [T('lan-and-racks'), 'network.racks', /not both/],
  't-topology-timers-bgp-hold': [T('topology-timers-bgp-hold'), 'timers.bgp.holdS', /3 × bgp.keepaliveS/],
  't-bad-cidr-host-bits': [T('bad-cidr-host-bits'), 'network.lan', /host bits zero.*10\.50\.0\.1\/24/],
  't-bad-ip': [T('bad-ip'), 'network.vip', /IPv4 address.*10\.50\.0\.300/],
  't-racks-tor-asn-equals-edge': [T('racks-tor-asn-equals-edge'), 'network.racks[0].tor.asn', /edge router's ASN/],
  't-racks-without-fabric': [T('racks-without-fabric'), 'network.fabric', /missing; the rack layout needs a fabric/],
  // lab problems
  'unknown-strategy': [L('unknown-strategy'), 'strategies[0].id', /unknown control-plane mechanism 'foo' \(valid: talos-vip, kube-vip-arp, kube-vip-bgp, haproxy\)/],
  'strategy-format': [L('strategy-format'), 'strategies[0].id', /'<cp>\+<svc>'/],
  'haproxy-without-lb': [L('haproxy-without-lb'), 'strategies[0].id', /needs a load-balancer host/],
  'bgp-without-bgp-router': [L('bgp-without-bgp-router'), 'strategies[0].id', /no router with BGP/],
  'node-leave-without-bgp': [L('node-leave-without-bgp'), 'drills[1].kind', /only meaningful with a BGP service mechanism/],
  'unknown-drill': [L('unknown-drill'), 'drills[0].kind', /expected one of baseline, graceful-shutdown.*got "explode"/],
  'duplicate-strategy': [L('duplicate-strategy'), 'strategies[1].id', /listed twice/],
  'kube-vip-renew-ge-lease': [L('kube-vip-renew-ge-lease'), 'timers.kubeVip.renewDeadlineS', /renewDeadlineS \(3 s\) < kubeVip.leaseDurationS \(3 s\)/],
  'probe-interval-too-long': [L('probe-interval-too-long'), 'traffic.probeIntervalMs', /≤ 10 ms.*got 50/],
  'victim-worker-without-workers': [L('victim-worker-without-workers'), 'drills[1].victim', /no workers/],
  'victim-unknown-node': [L('victim-unknown-node'), 'drills[1].victim.node', /no node 'cp9'.*cp1, cp2, cp3, w1, w2/],
  'unknown-topology': [L('unknown-topology'), 'topology', /no topology 'nosuchtopology'.*enterprise, minecraft, smb/],
  'topology-path-missing': [L('topology-path-missing'), 'topology', /no such file/],
  'lab-unknown-key': [L('lab-unknown-key'), 'colour', /unknown key 'colour'; allowed keys: name, description, topology/],
  'class-conflict-without-conflict': [L('class-conflict-without-conflict'), 'drills[0].kind', /useLoadBalancerClass: false/],
  'garp-ignored-bgp-only': [L('garp-ignored-bgp-only'), 'drills[0].kind', /gratuitous ARP/],
  'quick-drill-not-in-lab': [L('quick-drill-not-in-lab'), 'quick.drills[0]', /not one of this lab's drills/],
  'etcd-election-too-short': [L('etcd-election-too-short'), 'timers.etcd.electionMs', /5 × etcd.heartbeatMs/],
  'talos-ttl-below-etcd-min': [L('talos-ttl-below-etcd-min'), 'timers.talosVip.sessionTtlS', /etcd raises/],
  'vip-loss-with-haproxy-only': [L('vip-loss-with-haproxy-only'), 'drills[0].kind', /needs a VIP/],
  'empty-strategies': [L('empty-strategies'), 'strategies', /at least one strategy/],
  'empty-file': [L('empty-file'), '', /expected a mapping/],
  'drill-target-mismatch': [L('drill-target-mismatch'), 'drills[0].target', /expected target: service/],
  'bfd-without-bgp': [L('bfd-without-bgp'), 'strategies[0].options.bfd', /uses no BGP/],
  'bad-victim-rule': [L('bad-victim-rule'), 'drills[0].victim', /expected one of holder, random-controlplane/],
  'many-problems': [L('many-problems'), 'strategies[0].id', /load-balancer host/],
  'both-files-bad': [L('both-files-bad'), 'traffic.rate', /expected a number > 0, got -5/],
  'cp-across-racks-l2-vip': [L('cp-across-racks-l2-vip'), 'strategies[1].id', /talos-vip moves the VIP on one L2 segment.*span rack1, rack2/],
  't-rack-name-reserved': [T('rack-name-reserved'), 'network.racks[1].name', /not 'fabric' or 'uplink'/],
};

function errorOf(fixture: string): LabInputError {
  try {
    loadLab(join(DIR, `${fixture}.yaml`));
  } catch (e) {
    if (e instanceof LabInputError) return e;
    throw e;
  }
  throw new Error(`${fixture}: loaded without error`);
}

describe('bad labs and topologies', () => {
  it('the table covers every lab fixture in test/fixtures/bad/', () => {
    const labs = readdirSync(DIR)
      .filter((f) => f.endsWith('.yaml') && !f.endsWith('.topology.yaml'))
      .map((f) => f.replace(/\.yaml$/, ''))
      .sort();
    expect(labs).toEqual(Object.keys(CASES).sort());
  });

  for (const [fixture, [file, path, words]] of Object.entries(CASES)) {
    it(`${fixture} → ${file}${path ? `: ${path}` : ''}`, () => {
      const e = errorOf(fixture);
      expect(e.exitCode).toBe(2);
      const hit = e.issues.find((i) => i.file === file && i.path === path && words.test(i.message));
      expect(hit, `issues were:\n${e.message}`).toBeDefined();
      // the formatted message carries "file: path: …" for it
      expect(e.message).toContain(path ? `${file}: ${path}: ` : `${file}: `);
      // every issue names a file and says what was expected
      for (const i of e.issues) {
        expect(i.file).toMatch(/\.ya?ml$/);
        expect(i.message.length).toBeGreaterThan(10);
      }
    });
  }

  it('reports every problem of a lab at once, with line numbers', () => {
    const e = errorOf('many-problems');
    const paths = e.issues.map((i) => i.path);
    expect(paths).toEqual(expect.arrayContaining(['strategies[0].id', 'strategies[1].id', 'drills[2].victim', 'timers.kubeVip.renewDeadlineS']));
    expect(e.issues.length).toBeGreaterThanOrEqual(4);
    expect(e.message.split('\n').length).toBe(e.issues.length);
    expect(e.issues.every((i) => /\(line \d+\)$/.test(i.message))).toBe(true);
  });

  it('problems of the lab file and of its topology file come out together', () => {
    const e = errorOf('both-files-bad');
    expect(e.issues.map((i) => `${i.file}: ${i.path}`).sort()).toEqual([`${L('both-files-bad')}: traffic.rate`, `${T('unknown-key')}: network.colour`]);
  });
});
