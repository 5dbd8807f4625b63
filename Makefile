# `make lab` and `make test` do the whole set-up first (Debian packages when root, npm ci).
LAB ?= minecraft
PROVIDER ?= sim
ARGS ?=

.PHONY: lab test deps typecheck unit e2e bench

deps:
	@bash scripts/install-deps.sh

lab: deps
	npm run lab -- $(LAB) --provider $(PROVIDER) $(ARGS)

test: deps
	npx tsc --noEmit
	npx vitest run

unit: deps
	npx vitest run --project unit

e2e: deps
	npx vitest run --project e2e

bench: deps
	npm run bench
