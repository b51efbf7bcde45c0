import { baseTsupConfig } from '@llem/tsup-config';
import { defineConfig } from 'tsup';

// Two entries: the library (started in-process by tests) and the program (`node dist/bin.js`,
// usable as a managed server's argv).
export default defineConfig({ ...baseTsupConfig, entry: ['src/index.ts', 'src/bin.ts'] });
