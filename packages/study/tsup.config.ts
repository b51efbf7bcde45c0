import { baseTsupConfig } from '@llem/tsup-config';
import { defineConfig } from 'tsup';

// Two entries: the runner, and `./worker` (what a forked child imports, kept small).
export default defineConfig({ ...baseTsupConfig, entry: ['src/index.ts', 'src/worker-entry.ts'] });
