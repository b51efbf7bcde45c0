import type { ViteUserConfig } from 'vitest/config';

/** The export condition that points every `@llem/*` package at its TypeScript source. */
export declare const sourceCondition: '@llem/source';

/** Shared vitest settings for every package. Pass overrides to merge on top. */
export declare function llemVitestConfig(overrides?: ViteUserConfig): ViteUserConfig;
