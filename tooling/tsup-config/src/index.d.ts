import type { Options } from 'tsup';

/** The one build configuration every package spreads: ESM only, `.d.ts` beside it, Node 20. */
export declare const baseTsupConfig: Options;
