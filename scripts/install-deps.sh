#!/usr/bin/env bash
# Installs what the lab and its tests need, only what is missing: Debian packages (as root) and
# npm packages (npm ci). Exit 3 with the exact command when something is missing and we cannot
# install it ourselves (not root).
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(frr haproxy etcd-server etcd-client iproute2 nftables iputils-arping tcpdump openssl wrk chromium)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: ${missing[*]}" >&2
    echo "  fix: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 3
  fi
  echo "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm ci when node_modules is missing or older than the lock file
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "installing npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi
