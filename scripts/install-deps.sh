#!/usr/bin/env bash
# Install what the lab and its tests need — only what is missing — then return:
#   1. Node.js ≥ 20.5 must be there (we do not install Node; exit 3 with the fix when it is not).
#   2. Debian packages (frr haproxy etcd-server etcd-client iproute2 nftables iputils-arping
#      tcpdump openssl wrk conntrack chromium; with the argument `test` also docker.io and
#      debootstrap, for the emulated nodes on the docker runtime and the appliance image they
#      boot — a sim lab needs neither): as root, `apt-get update` + `apt-get install` of the missing
#      ones only (no update when nothing is missing). Daemons are NOT started by the install (a
#      temporary policy-rc.d, when none exists): the lab runs its own FRR/HAProxy/etcd inside
#      network namespaces. Not root and something missing: exit 3 with the exact sudo command.
#   3. npm packages: `npm ci` when node_modules is missing or older than package-lock.json.
# Used by `make lab`, `make test` (`install-deps.sh test`), `make deps` and (through make) by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[deps] %s\n' "$*" >&2; }
fail3() { printf '%s\n' "$1" >&2; printf '  fix: %s\n' "$2" >&2; exit 3; }

# --- 1. Node.js ------------------------------------------------------------------------------
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  fail3 "Node.js ≥ 20.5 and npm are required" "sudo apt-get install -y nodejs npm   (or install Node 20 from nodejs.org / nvm)"
fi
if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=5)?0:1)'; then
  fail3 "Node.js ≥ 20.5 is required, found $(node --version)" "install Node 20 LTS (nodejs.org, nvm install 20)"
fi

# --- 2. Debian packages ------------------------------------------------------------------------
PKGS=(frr haproxy etcd-server etcd-client iproute2 nftables iputils-arping iputils-ping tcpdump openssl wrk conntrack chromium)
if [ "${1:-}" = test ]; then PKGS+=(docker.io debootstrap); fi
missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
else
  for tool in ip nft arping tcpdump openssl wrk conntrack haproxy etcd etcdctl vtysh; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    fail3 "missing tools (no dpkg here, install them with your package manager): ${missing[*]}" "install: ${PKGS[*]}"
  fi
fi

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    fail3 "missing Debian packages: ${missing[*]}" "sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}"
  fi
  say "installing Debian packages: ${missing[*]}"
  policy=/usr/sbin/policy-rc.d
  made_policy=0
  if [ ! -e "$policy" ]; then
    # keep apt from starting frr/haproxy/etcd on the host: the lab starts its own, in namespaces
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && made_policy=1
  fi
  cleanup() { if [ "$made_policy" = 1 ]; then rm -f "$policy"; fi; }
  trap cleanup EXIT
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  cleanup
  trap - EXIT
fi

# --- 3. npm packages ----------------------------------------------------------------------------
# Stale = some non-optional package of package-lock.json is missing from node_modules or has
# another version (npm's hidden lockfile node_modules/.package-lock.json records what is there).
# Compared by content, not mtime: `npm install` writes the lock after node_modules.
npm_stale() {
  [ -d node_modules ] || return 0
  node -e '
    const fs = require("fs");
    const want = JSON.parse(fs.readFileSync("package-lock.json", "utf8")).packages || {};
    let have;
    try { have = JSON.parse(fs.readFileSync("node_modules/.package-lock.json", "utf8")).packages || {}; }
    catch { process.exit(0); }
    for (const [k, v] of Object.entries(want)) {
      if (!k || v.optional) continue;
      if (!have[k] || have[k].version !== v.version) process.exit(0);
    }
    process.exit(1);'
}
if npm_stale; then
  say "installing npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi
