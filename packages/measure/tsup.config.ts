import { baseTsupConfig } from '@llem/tsup-config';
import { defineConfig } from 'tsup';

// Two entries: the library, and the worker module the study runner forks.
export default defineConfig({ ...baseTsupConfig, entry: ['src/index.ts', 'src/worker.ts'] });
