import { defineConfig } from 'vitest/config';

// Projects by cost and by what may run beside what: unit (no root, fast), contract (real validators:
// haproxy -c, FRR's check, Talos and MetalLB schemas), e2e-untimed (end to end, but timing nothing:
// the real-Talos docker path against the fake engine, report.html in a browser; they may share
// the machine with unit tests), e2e (real sim and docker labs that measure outages; root; alone).
const UNTIMED_E2E = ['test/e2e/docker-talos-fake.test.ts', 'test/e2e/report-html.test.ts'];

export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'], testTimeout: 20_000 } },
      { test: { name: 'contract', include: ['test/contract/**/*.test.ts'], testTimeout: 60_000 } },
      { test: { name: 'e2e-untimed', include: UNTIMED_E2E, testTimeout: 600_000, hookTimeout: 300_000 } },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          exclude: UNTIMED_E2E,
          testTimeout: 600_000,
          hookTimeout: 300_000,
          // e2e suites build real namespaces and time what they break: one file at a time, nothing beside them
          pool: 'forks',
          poolOptions: { forks: { singleFork: true } },
        },
      },
    ],
  },
});
