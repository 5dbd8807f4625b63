# `make lab` and `make test` do the whole set-up first (scripts/install-deps.sh: Debian packages
# when root and missing, npm ci when node_modules is missing or stale), then run.
#
#   make lab                      # the minecraft lab on the sim provider
#   LAB=smb make lab              # another lab (or: make lab LAB=smb)
#   make lab LAB=smb ARGS=--quick # extra CLI flags
#   make test                     # typecheck + every test (unit, contract, e2e; e2e needs root)
LAB ?= minecraft
PROVIDER ?= sim
ARGS ?=

.PHONY: lab test deps test-deps typecheck unit contract e2e bench clean-labs

deps:
	@bash scripts/install-deps.sh

test-deps:
	@bash scripts/install-deps.sh test

lab: deps
	npm run lab -- $(LAB) --provider $(PROVIDER) $(ARGS)

# two phases (scripts/test.sh): what times nothing side by side (typecheck, unit, contract, the
# untimed e2e files, the docker appliance image warmed in the background), then the e2e labs alone:
# they measure timings that a concurrent CPU-heavy run would disturb on a 2-core machine
test: test-deps
	@bash scripts/test.sh

typecheck: deps
	npx tsc --noEmit

unit: deps
	npx vitest run --project unit

contract: deps
	npx vitest run --project contract

e2e: test-deps
	npx vitest run --project e2e-untimed
	npx vitest run --project e2e

bench: deps
	npm run bench

# remove every lab left behind (stale state, orphan tlab-* namespaces)
clean-labs: deps
	node scripts/lab.mjs clean --all
