import { baseTsupConfig } from '@llem/tsup-config';
import { defineConfig } from 'tsup';

export default defineConfig({ ...baseTsupConfig });
