// Plain JS (with a .d.ts beside it): tsup loads each package's tsup.config.ts through
// bundle-require, which leaves workspace packages external, so this file must run as-is in Node.

/**
 * The one build configuration every package spreads: ESM only, `.d.ts` beside it, Node 20.
 * Dependencies stay external (tsup's default for `dependencies`/`peerDependencies`).
 * @type {import('tsup').Options}
 */
export const baseTsupConfig = {
  entry: ['src/index.ts'],
  format: ['esm'],
  platform: 'node',
  target: 'node20',
  dts: true,
  sourcemap: true,
  clean: true,
  splitting: false,
  treeshake: true,
};
