#!/usr/bin/env bash
# `make test`: typecheck and every test, in two phases.
#  1. What times nothing, side by side: the typecheck, the unit and contract tests, the e2e files
#     that time nothing (vitest project e2e-untimed), and — as root — the docker runtime's
#     appliance image, built in the background when it is not cached (scripts/warm-appliance.ts).
#     None of them keeps 2 cores busy alone (unit tests wait on real sockets and processes, the
#     image build on the Debian mirror); together they fill them: 4 min 46 s measured on a 2-core
#     machine with nothing cached, where one after another (one vitest worker, vitest's default
#     there) they took about 7 min 20 s.
#  2. The e2e labs, alone: they measure outages that a concurrent CPU-heavy run would disturb on a
#     2-core machine.
# Every background process is this script's own child, ended by its PID if the script stops early.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p test-output
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

warm=''
if [ "$(id -u)" = 0 ]; then
  node --import tsx scripts/warm-appliance.ts > test-output/warm-appliance.log 2>&1 &
  warm=$!
  pids+=("$warm")
fi
npx tsc --noEmit &
tsc=$!
pids+=("$tsc")

# two workers: three or more starve the live probe tests' worker threads on 2 cores
npx vitest run --project unit --project contract --project e2e-untimed --maxWorkers=2
wait "$tsc"
if [ -n "$warm" ]; then
  wait "$warm" || { echo "appliance warm-up failed; the docker e2e files will build it themselves:" >&2; cat test-output/warm-appliance.log >&2; }
fi
pids=()

npx vitest run --project e2e
