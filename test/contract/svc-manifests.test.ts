/**
 * What the service mechanisms render, checked by the real validators: every MetalLB manifest
 * against the CRD's OpenAPI v3 schema of its served version (../shared/schemas/metallb, MetalLB
 * v0.16.1 CRDs), and every node-speaker frr.conf with FRR's own parser (`vtysh -C -f`).
 */
import { describe, expect, it } from 'vitest';
import { ctxOf } from '../helpers/roles.js';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import AjvMod from 'ajv';
import { loadLab, REPO_ROOT } from '../../src/model/load.js';
import type { StrategyRef, Topology } from '../../src/model/types.js';
import type { Mechanism } from '../../src/strategies/types.js';
import { metallbL2 } from '../../src/strategies/metallb-l2/index.js';
import { metallbBgp } from '../../src/strategies/metallb-bgp/index.js';
import { ciliumBgp } from '../../src/strategies/cilium-bgp/index.js';
import { run } from '../../src/util/proc.js';
import { useTempDirs } from '../helpers/tmp.js';

// CJS module under NodeNext: the class is on `.default` when run by plain Node
type AjvClass = typeof AjvMod.default;
const Ajv = ((AjvMod as unknown as { default?: AjvClass }).default ?? AjvMod) as AjvClass;

const SCHEMAS = join(REPO_ROOT, '..', 'shared', 'schemas', 'metallb');
const mkTemp = useTempDirs();

/** kind/apiVersion → validator, from the CRDs' served versions */
function crdValidators(): Map<string, (doc: unknown) => string[]> {
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
  const out = new Map<string, (doc: unknown) => string[]>();
  for (const f of readdirSync(SCHEMAS).filter((x) => x.endsWith('.yaml'))) {
    const crd = parse(readFileSync(join(SCHEMAS, f), 'utf8')) as {
      spec: { group: string; names: { kind: string }; versions: { name: string; served: boolean; schema: { openAPIV3Schema: object } }[] };
    };
    for (const v of crd.spec.versions.filter((x) => x.served)) {
      const validate = ajv.compile(v.schema.openAPIV3Schema);
      out.set(`${crd.spec.group}/${v.name} ${crd.spec.names.kind}`, (doc) => (validate(doc) ? [] : (validate.errors ?? []).map((e: { instancePath: string; message?: string }) => `${e.instancePath} ${e.message}`)));
    }
  }
  return out;
}

const topo = (name: string): Topology => loadLab(name, { repoRoot: REPO_ROOT }).topology;
const ref = (svc: StrategyRef['svc'], options: StrategyRef['options'] = {}): StrategyRef => ({ id: `haproxy+${svc}`, cp: 'haproxy', svc, options });

const cases: [string, Mechanism, StrategyRef['svc'], StrategyRef['options']][] = [
  ['smb', metallbL2, 'metallb-l2', {}],
  ['minecraft', metallbL2, 'metallb-l2', {}],
  ['enterprise', metallbL2, 'metallb-l2', {}],
  ['smb', metallbBgp, 'metallb-bgp', {}],
  ['smb', metallbBgp, 'metallb-bgp', { bfd: true }],
  ['enterprise', metallbBgp, 'metallb-bgp', {}],
];

describe.skipIf(!existsSync(SCHEMAS))('MetalLB manifests validate against the MetalLB CRDs', () => {
  const validators = crdValidators();
  for (const [lab, m, svc, options] of cases) {
    it(`${m.id} on ${lab}${options.bfd ? ' with BFD' : ''}`, () => {
      const files = m.svc!.render(ctxOf(topo(lab), ref(svc, options))).files ?? [];
      const docs = files.filter((f) => f.kind === 'k8s-manifest').flatMap((f) => parseAllDocuments(f.content).map((d) => d.toJS() as { apiVersion: string; kind: string }));
      expect(docs.length).toBeGreaterThanOrEqual(2);
      for (const d of docs) {
        const v = validators.get(`${d.apiVersion} ${d.kind}`);
        expect(v, `no served CRD version for ${d.apiVersion} ${d.kind}`).toBeDefined();
        expect(v!(d), `${d.kind}`).toEqual([]);
      }
    });
  }

  it('the validator does catch a broken manifest', () => {
    const bad = { apiVersion: 'metallb.io/v1beta2', kind: 'BGPPeer', metadata: { name: 'x' }, spec: { peerASN: 'not-a-number', peerAddress: '10.0.0.1' } };
    expect(validators.get('metallb.io/v1beta2 BGPPeer')!(bad).length).toBeGreaterThan(0);
  });
});

describe('node speaker frr.conf passes FRR’s own check', () => {
  const speakerCases: [string, Mechanism, StrategyRef['svc'], StrategyRef['options']][] = [
    ['smb', metallbBgp, 'metallb-bgp', {}],
    ['smb', metallbBgp, 'metallb-bgp', { bfd: true }],
    ['enterprise', ciliumBgp, 'cilium-bgp', {}],
  ];
  for (const [lab, m, svc, options] of speakerCases) {
    it(`${m.id} on ${lab}${options.bfd ? ' with BFD' : ''}`, async () => {
      const speakers = m.svc!.render(ctxOf(topo(lab), ref(svc, options))).sim?.speakers ?? {};
      const names = Object.keys(speakers);
      expect(names.length).toBeGreaterThan(0);
      const dir = mkTemp('svc-frr-');
      for (const n of names.slice(0, 3)) {
        const f = join(dir, `${n}.conf`);
        writeFileSync(f, speakers[n]!.frrConf);
        const r = await run('vtysh', ['-C', '-f', f], { reject: false });
        expect(r.exitCode, `${n}: ${r.stderr}${r.stdout}`).toBe(0);
      }
    });
  }
});
