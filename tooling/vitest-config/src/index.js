// Plain JS (with a .d.ts beside it): vitest loads each package's vitest.config.ts with a bundler
// that leaves workspace packages external, so this file must run as-is in Node 20.
import { defineConfig, mergeConfig } from 'vitest/config';

/**
 * The export condition that points every `@llem/*` package at its TypeScript source, so tests
 * run against `src/` without building first. Listed in `tsconfig.base.json` `customConditions` too.
 */
export const sourceCondition = '@llem/source';

const conditions = [sourceCondition, 'node', 'import', 'module', 'default'];

/**
 * Shared vitest settings for every package. Pass overrides to merge on top.
 * @param {import('vitest/config').ViteUserConfig} [overrides]
 * @returns {import('vitest/config').ViteUserConfig}
 */
export function llemVitestConfig(overrides = {}) {
  const report = Boolean(process.env.LLEM_TEST_REPORT);
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
        // `*.test-d.ts` files hold type tests (`expectTypeOf`): vitest checks them with tsc.
        typecheck: {
          enabled: true,
          include: ['test/**/*.test-d.ts'],
          tsconfig: 'tsconfig.json',
        },
        // CI sums every package's JSON report into one closing "N passed, N failed" line.
        reporters: report ? ['default', 'json'] : ['default'],
        outputFile: report ? { json: '.test-results.json' } : undefined,
      },
    }),
    overrides,
  );
}
