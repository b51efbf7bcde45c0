import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { BuiltinModelName } from '@llem/domain';
import { type Logger, noopLogger } from '@llem/resilience';
import { layoutGguf, writeGguf } from './internal/gguf-writer';
import { buildTinyModelDocument } from './internal/model';
import { microModelSpec, type TinyModelSpec, tinyModelSpec } from './spec';

export type { TinyModelSpec } from './spec';
export { microModelSpec, tinyModelSpec } from './spec';

/**
 * The generated model behind each of `@llem/domain`'s `BUILTIN_MODELS` names (the domain owns
 * the names, so a config validated there always finds its spec here).
 */
export const BUILTIN_MODEL_SPECS = {
  'builtin:tiny': tinyModelSpec,
  'builtin:tiny-micro': microModelSpec,
} as const satisfies Record<BuiltinModelName, TinyModelSpec>;

export interface EnsureTinyModelOptions {
  /**
   * Folder for generated models. Default: `$LLEM_CACHE_DIR/models` when that variable is set,
   * else `$XDG_CACHE_HOME/llem/models`, else `~/.cache/llem/models`.
   */
  cacheDir?: string;
  /** Which model to generate. Default: `tinyModelSpec` (builtin:tiny). */
  spec?: TinyModelSpec;
  logger?: Logger;
  /** Environment to read the cache variables from. Default: `process.env`. */
  env?: NodeJS.ProcessEnv;
}

/**
 * Default folder for generated models (see {@link EnsureTinyModelOptions.cacheDir}).
 *
 * @example
 * defaultModelCacheDir({ LLEM_CACHE_DIR: '/data/llem' }); // '/data/llem/models'
 */
export function defaultModelCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.LLEM_CACHE_DIR) return join(env.LLEM_CACHE_DIR, 'models');
  const base = env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'llem', 'models');
}

/**
 * Version string of a spec: generator version plus a hash of every field, so any change to the
 * shape, seed or generator gives a new file name and the old cache is never reused by mistake.
 *
 * @example
 * tinyModelVersion(tinyModelSpec); // 'v1-ada95e7cf0'
 */
export function tinyModelVersion(spec: TinyModelSpec): string {
  const hash = createHash('sha256').update(JSON.stringify(spec)).digest('hex').slice(0, 10);
  return `v${spec.generatorVersion}-${hash}`;
}

/**
 * File name of a spec's cached model.
 *
 * @example
 * tinyModelFileName(tinyModelSpec); // 'tiny-v1-ada95e7cf0.gguf' (the hash follows the spec)
 */
export function tinyModelFileName(spec: TinyModelSpec): string {
  return `${spec.variant}-${tinyModelVersion(spec)}.gguf`;
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function isValidCache(path: string, expectedBytes: number): Promise<boolean> {
  try {
    const [info, recorded] = await Promise.all([stat(path), readFile(`${path}.sha256`, 'utf8')]);
    if (info.size !== expectedBytes) return false;
    return (await sha256File(path)) === recorded.trim();
  } catch {
    return false;
  }
}

/**
 * Returns the path of the generated builtin:tiny GGUF model, writing it first if the cache does
 * not hold a valid copy. The model is a llama-architecture GGUF v3 file with deterministic random
 * weights; the cache is checked by size and SHA-256 (recorded beside it at write time) and
 * regenerated when either differs. Writes are atomic (temp file + rename), so concurrent callers
 * at worst both generate the same bytes.
 *
 * @example
 * const path = await ensureTinyModel({ cacheDir: '/tmp/llem-models' });
 * // → '/tmp/llem-models/tiny-v1-….gguf'
 */
export async function ensureTinyModel(options: EnsureTinyModelOptions = {}): Promise<string> {
  const spec = options.spec ?? tinyModelSpec;
  const logger = options.logger ?? noopLogger;
  const dir = options.cacheDir ?? defaultModelCacheDir(options.env);
  const version = tinyModelVersion(spec);
  const path = join(dir, tinyModelFileName(spec));
  const doc = buildTinyModelDocument(spec, version);
  const { totalBytes } = layoutGguf(doc);
  if (await isValidCache(path, totalBytes)) return path;

  logger.info(
    `generating builtin:${spec.variant} model (${spec.parameterCount} parameters) at ${path}`,
  );
  await mkdir(dir, { recursive: true });
  await rm(`${path}.sha256`, { force: true });
  await writeGguf(path, doc);
  const digest = await sha256File(path);
  const tmp = `${path}.sha256.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, `${digest}\n`);
  await rename(tmp, `${path}.sha256`);
  return path;
}
