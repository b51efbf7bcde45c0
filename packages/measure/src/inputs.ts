import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { type FileHandle, open, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { FileIdentity, RunInputs } from '@llem/domain';
import type { EngineInfo } from '@llem/engines';
import type { Logger } from '@llem/resilience';
import type { DatasetConfig } from './dataset';

/** Files up to this size are hashed whole; larger ones are sampled. */
export const FULL_HASH_LIMIT_BYTES = 256 * 1024 * 1024;
/** The size of each slice a sampled fingerprint reads (start, middle, end). */
export const SAMPLE_SLICE_BYTES = 1024 * 1024;

const CHUNK = 4 * 1024 * 1024;

async function readSlice(handle: FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(buffer, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return buffer.subarray(0, done);
}

/**
 * The identity of one file: absolute path, size, mtime and a SHA-256 over the whole file when it
 * is at most `fullHashLimitBytes` (`coverage: 'full'`), else over its size and three
 * `SAMPLE_SLICE_BYTES` slices at the start, middle and end (`'sampled'`). Throws when the path
 * is not a readable regular file.
 *
 * @example
 * const id = await fileIdentity('models/llama-3-8b.Q4_K_M.gguf');
 * id.coverage; // 'sampled' (4.9 GB)
 */
export async function fileIdentity(
  path: string,
  options: { fullHashLimitBytes?: number } = {},
): Promise<FileIdentity> {
  const limit = options.fullHashLimitBytes ?? FULL_HASH_LIMIT_BYTES;
  const absolute = resolve(path);
  // Checked before opening: opening a FIFO would block until a writer appears.
  if (!(await stat(absolute)).isFile()) throw new Error(`${absolute} is not a regular file`);
  const handle = await open(absolute, 'r');
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new Error(`${absolute} is not a regular file`);
    const hash = createHash('sha256');
    let coverage: FileIdentity['coverage'];
    // Three slices would read the whole file anyway: then hash it whole and say so.
    if (info.size <= Math.max(limit, 3 * SAMPLE_SLICE_BYTES)) {
      coverage = 'full';
      for (let position = 0; position < info.size; position += CHUNK) {
        const chunk = await readSlice(handle, position, Math.min(CHUNK, info.size - position));
        hash.update(chunk);
        if (chunk.length === 0) break;
      }
    } else {
      coverage = 'sampled';
      const slice = SAMPLE_SLICE_BYTES;
      hash.update(`llem-sampled-v1:${info.size}:`);
      for (const at of [0, Math.floor((info.size - slice) / 2), info.size - slice]) {
        hash.update(await readSlice(handle, at, slice));
      }
    }
    return {
      path: absolute,
      sizeBytes: info.size,
      modifiedAt: info.mtime.toISOString(),
      sha256: hash.digest('hex'),
      coverage,
    };
  } finally {
    await handle.close();
  }
}

/** The dataset's file path, or `null` for a synthetic dataset. */
function datasetPath(dataset: DatasetConfig): string | null {
  if (typeof dataset === 'string') return dataset;
  if ('synthetic' in dataset) return null;
  return dataset.path;
}

/**
 * Identify the run's model and dataset files. The model file is the one the engine says it
 * loaded (`details.modelPath`, e.g. the cached `builtin:tiny`), else `config.model` when that
 * names an existing file (a `command` engine's model, relative to the program's `command.cwd`);
 * a model served behind an endpoint has none. Never throws: an input that cannot be identified is `null`, with a debug line.
 */
export async function identifyInputs(
  config: { engine: string; model: string; dataset: DatasetConfig },
  info: Pick<EngineInfo, 'details'> | null,
  options: { cwd?: string; logger?: Logger; fullHashLimitBytes?: number } = {},
): Promise<RunInputs> {
  const cwd = options.cwd ?? process.cwd();
  const identify = async (what: string, path: string | null, quiet: boolean) => {
    if (path === null) return null;
    try {
      return await fileIdentity(resolve(cwd, path), options);
    } catch (error) {
      if (!quiet)
        options.logger?.debug(
          `measure: cannot identify the ${what} file ${path}: ${(error as Error).message}`,
        );
      return null;
    }
  };
  const loaded = info?.details.modelPath;
  const modelFromEngine = typeof loaded === 'string' ? loaded : null;
  // An openai model is a served name, never a local file. A command model may or may not be
  // one; its program runs in `command.cwd`, so a relative path means a file there.
  const programCwd = info?.details.cwd;
  const modelCandidate =
    modelFromEngine ??
    (config.engine === 'openai' || !config.model
      ? null
      : typeof programCwd === 'string'
        ? resolve(cwd, programCwd, config.model)
        : config.model);
  const [model, dataset] = await Promise.all([
    identify('model', modelCandidate, modelFromEngine === null),
    identify('dataset', datasetPath(config.dataset), false),
  ]);
  return { model, dataset };
}

/** A config input that names a local file which is not there. */
export interface MissingInput {
  /** The config field: `model` or `dataset`. */
  field: string;
  /** As written in the config. */
  value: string;
  /** Where it was looked for. */
  resolved: string;
}

/**
 * The input files a config names that do not exist, checked before anything is run: a
 * `llamacpp` model path (not `builtin:…`; a `command` or `openai` model is a name the program or
 * server interprets) and a `.jsonl` dataset. Relative paths resolve against `cwd`, the worker's
 * working directory (the study file's folder under `llem run`).
 *
 * @example
 * missingInputFiles({ engine: 'llamacpp', model: 'm.gguf', dataset: 'p.jsonl' }, '/studies');
 * // [{ field: 'model', value: 'm.gguf', resolved: '/studies/m.gguf' }, …]
 */
export function missingInputFiles(
  config: { engine: string; model: string; dataset: DatasetConfig },
  cwd: string,
): MissingInput[] {
  const missing: MissingInput[] = [];
  const check = (field: string, value: string | null) => {
    if (value === null) return;
    const resolved = resolve(cwd, value);
    if (!existsSync(resolved)) missing.push({ field, value, resolved });
  };
  if (config.engine === 'llamacpp' && !config.model.startsWith('builtin:'))
    check('model', config.model);
  check('dataset', datasetPath(config.dataset));
  return missing;
}
