import { baseTsupConfig } from '@llem/tsup-config';
import { defineConfig } from 'tsup';

// The sampler's worker thread is its own (private) entry: PowerSampler starts it from
// `new URL('./internal/sampler-worker.js', import.meta.url)` next to dist/index.js; no export
// subpath names it. `readings-entry` is the koffi-free `@llem/nvml/readings` subpath.
export default defineConfig({
  ...baseTsupConfig,
  entry: ['src/index.ts', 'src/internal/sampler-worker.ts', 'src/readings-entry.ts'],
});
