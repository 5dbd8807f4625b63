/**
 * The lab PKI: one CA and one serving certificate per control-plane node for the kube-apiserver
 * stand-in (src/emulation/apiserver.ts). Clients (the `traffic` component on client hosts, the
 * `kubelet-client` on every node, HAProxy is TCP pass-through so it needs none) verify against
 * `caCert` (public certificate only: the client-usable CA path).
 *
 * What the lab certificate carries as subjectAltNames is what a kube-apiserver serving certificate
 * carries on a real cluster: the node name and address, the in-cluster names `kubernetes`,
 * `kubernetes.default`, `kubernetes.default.svc(.cluster.local)` (kubeadm prints exactly this set
 * when it generates "apiserver": kubeadm init, phase certs, k8s v1.2x), plus what Talos adds for its
 * endpoints: the cluster endpoint (here the VIP and the external load balancer) and
 * localhost/127.0.0.1, which KubePrism on a control plane dials (`https://localhost:6443`, Talos
 * docs kubernetes-guides/configuration/kubeprism.md, v1.12).
 *
 * Keys are EC P-256 (fast to generate on a small CI box). Generation goes through `openssl` via the one
 * process runner (src/util/proc.ts). Idempotent: existing files are kept; a node certificate is
 * re-issued only when its SAN list changed or the CA was re-created.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Topology } from '../model/types.js';
import { run } from '../util/proc.js';

export interface PkiPaths {
  /** `<stateDir>/pki` */
  dir: string;
  /** the CA certificate (PEM): what clients trust */
  caCert: string;
  caKey: string;
  /** serving certificate of a control-plane node's API server */
  cert(host: string): string;
  key(host: string): string;
}

export function pkiPaths(stateDir: string): PkiPaths {
  const dir = join(stateDir, 'pki');
  return {
    dir,
    caCert: join(dir, 'ca.crt'),
    caKey: join(dir, 'ca.key'),
    cert: (host: string) => join(dir, `apiserver-${host}.crt`),
    key: (host: string) => join(dir, `apiserver-${host}.key`),
  };
}

/** The subjectAltNames of a control-plane node's API server certificate (stable order). */
export function apiServerSans(t: Topology, host: string): { ips: string[]; dns: string[] } {
  const n = t.nodes.find((x) => x.name === host);
  if (!n) throw new Error(`pki: ${host} is not a node of topology ${t.name}`);
  const ips = [...new Set([...n.interfaces.map((i) => i.ip), t.vip, ...(t.loadBalancer ? [t.loadBalancer.ip] : []), '127.0.0.1'])];
  const dns = [...new Set([n.name, 'localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local'])];
  return { ips, dns };
}

const DAYS = '3650';
// EC P-256 keys (see the header)
const KEY_ARGS = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** Create (or reuse) the lab CA and a serving certificate for every control-plane node. */
export async function makePki(stateDir: string, t: Topology): Promise<PkiPaths> {
  const p = pkiPaths(stateDir);
  mkdirSync(p.dir, { recursive: true, mode: 0o700 });
  let caNew = false;
  if (!existsSync(p.caCert) || !existsSync(p.caKey)) {
    await makeCa(p, t);
    caNew = true;
  }
  for (const n of t.nodes.filter((x) => x.role === 'controlplane')) {
    const sans = apiServerSans(t, n.name);
    const sanLine = [...sans.ips.map((ip) => `IP:${ip}`), ...sans.dns.map((d) => `DNS:${d}`)].join(',');
    const sanFile = join(p.dir, `apiserver-${n.name}.san`);
    const fresh = existsSync(p.cert(n.name)) && existsSync(p.key(n.name)) && existsSync(sanFile) && readFileSync(sanFile, 'utf8') === sanLine;
    if (fresh && !caNew) continue;
    await makeServerCert(p, n.name, sanLine);
    writeFileSync(sanFile, sanLine);
  }
  return p;
}

async function makeCa(p: PkiPaths, t: Topology): Promise<void> {
  const tmpKey = `${p.caKey}.tmp-${process.pid}`;
  const tmpCrt = `${p.caCert}.tmp-${process.pid}`;
  try {
    await run('openssl', [
      'req', '-x509', '-new', ...KEY_ARGS,
      '-keyout', tmpKey, '-out', tmpCrt, '-days', DAYS,
      '-subj', `/O=talos-ha-lab/CN=talos-ha-lab ${t.name} CA`,
      '-addext', 'basicConstraints=critical,CA:TRUE',
      '-addext', 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
      '-addext', 'subjectKeyIdentifier=hash',
    ]);
    chmodSync(tmpKey, 0o600);
    chmodSync(tmpCrt, 0o644);
    renameSync(tmpKey, p.caKey);
    renameSync(tmpCrt, p.caCert);
  } finally {
    rmSync(tmpKey, { force: true });
    rmSync(tmpCrt, { force: true });
  }
}

async function makeServerCert(p: PkiPaths, host: string, sanLine: string): Promise<void> {
  const base = join(p.dir, `apiserver-${host}.tmp-${process.pid}`);
  const [key, csr, crt, ext] = ['key', 'csr', 'crt', 'ext'].map((s) => `${base}.${s}`) as [string, string, string, string];
  try {
    await run('openssl', ['req', '-new', ...KEY_ARGS, '-keyout', key, '-out', csr, '-subj', `/O=system:masters/CN=kube-apiserver`]);
    writeFileSync(
      ext,
      [
        'basicConstraints=critical,CA:FALSE',
        'keyUsage=critical,digitalSignature',
        'extendedKeyUsage=serverAuth',
        `subjectAltName=${sanLine}`,
        'authorityKeyIdentifier=keyid,issuer',
        'subjectKeyIdentifier=hash',
        '',
      ].join('\n'),
    );
    await run('openssl', [
      'x509', '-req', '-in', csr, '-CA', p.caCert, '-CAkey', p.caKey,
      '-set_serial', `0x${randomBytes(12).toString('hex')}`, '-days', DAYS, '-sha256',
      '-extfile', ext, '-out', crt,
    ]);
    chmodSync(key, 0o600);
    chmodSync(crt, 0o644);
    renameSync(key, p.key(host));
    renameSync(crt, p.cert(host));
  } finally {
    for (const f of [key, csr, crt, ext]) rmSync(f, { force: true });
  }
}
