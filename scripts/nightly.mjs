#!/usr/bin/env node
/**
 * The nightly driver (.github/workflows/nightly.yml): the labs the docker provider runs, on real
 * Talos in containers. Run with tsx so it can read the lab model and the Talos kind's pinned
 * install commands (the same ones `lab` prints when a tool is missing):
 *
 *   node --import tsx scripts/nightly.mjs [facts|modules|install|pull|run|all]   (default: all)
 *
 *  facts    Docker version, kernel, br_netfilter, kernel modules, memory and disk (into the log)
 *  modules  loads br_netfilter (Docker's bridges) and ip_vs/ip_vs_rr (kube-vip's lb_enable: Talos
 *           in a container uses the host's kernel and cannot load modules into it)
 *  install  talosctl, kubectl, helm for the labs' versions, each checked against its published sha256
 *  pull     the labs' Talos images and the appliance's public base (routers, load balancer, clients)
 *  run      `npm run lab -- <lab> --provider docker --quick --out $NIGHTLY_OUT/<lab>` for each lab;
 *           fails when a lab run errors (non-zero exit, no valid results.json) or when a run the
 *           docker provider claims to support has no successful request; writes summary.json
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { $ } from 'zx';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const LABS = ['minecraft', 'smb'];
const OUT = process.env.NIGHTLY_OUT || join(ROOT, 'nightly-out');
$.verbose = true;

/** The Talos/Kubernetes versions of the labs, from the lab model (what the provider will use). */
export async function labVersions(labs = LABS) {
  const { loadLab } = await import(pathToFileURL(join(ROOT, 'src/model/index.ts')).href);
  const out = [];
  for (const name of labs) {
    const lab = loadLab(name);
    out.push({ lab: name, talos: lab.topology.talos.version, kubernetes: lab.topology.talos.kubernetesVersion });
  }
  return out;
}

const vnum = (v) => v.replace(/^v/, '').split('.').map(Number);
const newest = (vs) => [...vs].sort((a, b) => { const x = vnum(a); const y = vnum(b); return x[0] - y[0] || x[1] - y[1] || x[2] - y[2]; }).at(-1);

/**
 * Which runs of a results.json count as errors: a record the provider claims to support (not
 * `supported: false`) whose requests all failed or that sent none — the target never answered.
 */
export function failedRuns(results) {
  const bad = [];
  for (const r of results?.runs ?? []) {
    if (r.supported === false) continue;
    const ok = (r.requests ?? 0) - (r.errors ?? 0);
    if (!r.requests || ok <= 0) bad.push(`${r.strategy} ${r.target} ${r.drill}#${r.repeat ?? 0}: ${r.requests ?? 0} requests, ${r.errors ?? 0} errors`);
  }
  return bad;
}

async function facts() {
  await $`docker version`.nothrow();
  await $`uname -a`.nothrow();
  await $`sh -c ${'lsmod | grep -E "^(br_netfilter|ip_vs|ip_vs_rr|overlay) " || true'}`.nothrow();
  await $`sh -c ${'cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null || echo "br_netfilter not loaded"'}`.nothrow();
  await $`free -m`.nothrow();
  await $`df -h ${ROOT}`.nothrow();
  await $`nproc`.nothrow();
}

async function modules() {
  await $`sudo modprobe br_netfilter`;
  await $`sudo modprobe ip_vs`;
  await $`sudo modprobe ip_vs_rr`;
}

async function install() {
  const { talosctlInstall, kubectlInstall, helmInstall } = await import(pathToFileURL(join(ROOT, 'src/providers/kinds/talos/cluster.ts')).href);
  const vs = await labVersions();
  // talosctl talks to older Talos releases; one client of the newest version serves every lab
  await $`bash -c ${talosctlInstall(newest(vs.map((v) => v.talos)))}`;
  await $`bash -c ${kubectlInstall(newest(vs.map((v) => v.kubernetes)))}`;
  await $`bash -c ${helmInstall()}`;
  await $`talosctl version --client --short`.nothrow();
  await $`kubectl version --client`.nothrow();
  await $`helm version --short`.nothrow();
}

async function pull() {
  const { PUBLIC_BASE } = await import(pathToFileURL(join(ROOT, 'src/providers/runtimes/docker/appliance.ts')).href);
  const { dockerImages } = await import(pathToFileURL(join(ROOT, 'src/providers/runtimes/docker/talos.ts')).href);
  const { loadLab } = await import(pathToFileURL(join(ROOT, 'src/model/index.ts')).href);
  const images = new Set([PUBLIC_BASE, ...LABS.map((n) => dockerImages(loadLab(n).topology).talos)]);
  for (const img of images) await $`docker pull ${img}`;
}

async function runLabs() {
  mkdirSync(OUT, { recursive: true });
  const summary = [];
  for (const lab of LABS) {
    const out = join(OUT, lab);
    const p = await $({ cwd: ROOT, nothrow: true })`npm run lab -- ${lab} --provider docker --quick --out ${out}`;
    const file = join(out, 'results.json');
    const problems = [];
    if (p.exitCode !== 0) problems.push(`npm run lab -- ${lab} exited ${p.exitCode}`);
    if (!existsSync(file)) problems.push(`no ${file}`);
    else {
      try {
        problems.push(...failedRuns(JSON.parse(readFileSync(file, 'utf8'))));
      } catch (e) {
        problems.push(`${file}: ${e.message}`);
      }
    }
    summary.push({ lab, exitCode: p.exitCode, out, problems });
  }
  writeFileSync(join(OUT, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  const failed = summary.filter((s) => s.problems.length);
  for (const s of failed) console.error(`${s.lab}:\n  ${s.problems.join('\n  ')}`);
  if (failed.length) process.exit(1);
}

const PHASES = { facts, modules, install, pull, run: runLabs };
/** the phases the workflow may name */
export const NIGHTLY_PHASES = [...Object.keys(PHASES), 'all'];

async function main(phase = 'all') {
  if (phase === 'all') {
    for (const f of [facts, modules, install, pull, runLabs]) await f();
    return;
  }
  const f = PHASES[phase];
  if (!f) {
    console.error(`unknown phase '${phase}'; valid: ${Object.keys(PHASES).join(', ')}, all`);
    process.exit(2);
  }
  await f();
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) await main(process.argv[2]);
