import { defineConfig, mergeConfig, type ViteUserConfig } from 'vitest/config';

/**
 * The export condition that points every `@llem/*` package at its TypeScript source, so tests
 * run against `src/` without building first. Listed in `tsconfig.base.json` `customConditions` too.
 */
export const sourceCondition = '@llem/source';

const conditions = [sourceCondition, 'node', 'import', 'module', 'default'];

/** Shared vitest settings for every package. Pass overrides to merge on top. */
export function llemVitestConfig(overrides: ViteUserConfig = {}): ViteUserConfig {
  return mergeConfig(
    defineConfig({
      resolve: { conditions },
      ssr: { resolve: { conditions, externalConditions: [sourceCondition] } },
      test: {
        environment: 'node',
        include: ['test/**/*.test.ts', 'src/**/*.test.ts'],
        testTimeout: 20_000,
        hookTimeout: 60_000,
        restoreMocks: true,
        // CI sums every package's JSON report into one closing "N passed, N failed" line.
        reporters: process.env.LLEM_TEST_REPORT ? ['default', 'json'] : ['default'],
        outputFile: process.env.LLEM_TEST_REPORT ? { json: '.test-results.json' } : undefined,
      },
    }),
    overrides,
  );
}
