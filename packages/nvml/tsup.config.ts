import { baseTsupConfig } from '@llem/tsup-config';
import { defineConfig } from 'tsup';

// The sampler's worker thread is its own entry: PowerSampler starts it from
// `new URL('./sampler-worker.js', import.meta.url)` beside dist/index.js. `readings-entry` is the
// koffi-free `@llem/nvml/readings` subpath.
export default defineConfig({
  ...baseTsupConfig,
  entry: ['src/index.ts', 'src/sampler-worker.ts', 'src/readings-entry.ts'],
});
