import { baseTsupConfig } from '@llem/tsup-config';
import { defineConfig } from 'tsup';

export default defineConfig({ ...baseTsupConfig, entry: ['src/index.ts', 'src/bin.ts'] });
