// Test runner settings: one Postgres for the run (embedded unless
// TEST_DATABASE_URL is set), a migrated template database cloned per test file.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    globalSetup: ['tests/setup/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // The end-to-end files start real processes; two files at a time suits 2-core machines.
    maxWorkers: 2,
  },
});
