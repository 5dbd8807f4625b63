import { defineConfig } from 'vitest/config';

// Three projects by cost, so a quick loop runs only what it can afford: unit (no root, fast), contract (real validators:
// haproxy -c, FRR's check, Talos and MetalLB schemas), e2e (real sim labs; root).
export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'], testTimeout: 20_000 } },
      { test: { name: 'contract', include: ['test/contract/**/*.test.ts'], testTimeout: 60_000 } },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          testTimeout: 600_000,
          hookTimeout: 300_000,
          // e2e suites build real namespaces; run them one file at a time on a 2-core box.
          pool: 'forks',
          poolOptions: { forks: { singleFork: true } },
        },
      },
    ],
  },
});
