import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { mulberry32 } from '@llem/domain';
import type { EngineRequest } from '@llem/engines';
import { MeasurementError } from './errors';

/** `dataset.synthetic` in the experiment config. */
export interface SyntheticDataset {
  n: number;
  input_len: number;
  output_len?: number | undefined;
  seed?: number | undefined;
}

/** The dataset forms the harness accepts: synthetic, or a `.jsonl` file with a `prompt` field. */
export type DatasetConfig =
  | { synthetic: SyntheticDataset }
  | string
  | { path: string; column?: string | undefined };

// Short, common English words: most tokenizers map each to one token, so N words ≈ N tokens.
const WORDS = (
  'the of and to in is it that for on with as was at by be this from or have an are not but ' +
  'what all were when we there can more one use each which she do how their if will up other ' +
  'about out many then them these so some her would make like him into time has look two go ' +
  'see way could people my than first water been call who its now find long down day did get ' +
  'come made may part over new sound take only little work know place year live me back give ' +
  'most very after thing our just name good sentence man think say great where help through'
).split(' ');

/** A prompt of `length` words drawn from `random`. */
function wordsPrompt(random: () => number, length: number): string {
  const words: string[] = [];
  for (let w = 0; w < length; w++) words.push(WORDS[Math.floor(random() * WORDS.length)] as string);
  return words.join(' ');
}

/**
 * `n` deterministic prompts of `input_len` words (roughly that many tokens), the same for the
 * same seed on any machine, so every config of a study sees the same workload.
 *
 * @example
 * syntheticPrompts({ n: 2, input_len: 4, seed: 42 }); // ['… … … …', '… … … …']
 */
export function syntheticPrompts(spec: SyntheticDataset): string[] {
  const random = mulberry32(spec.seed ?? 0);
  const prompts: string[] = [];
  for (let i = 0; i < spec.n; i++) prompts.push(wordsPrompt(random, spec.input_len));
  return prompts;
}

/**
 * The warmup stream's seed for a synthetic dataset seed: a different mulberry32 stream (not the
 * measured one shifted by a few draws, which `seed + k × 0x6d2b79f5` would be).
 */
export function warmupSeed(seed: number): number {
  return (seed ^ 0x9e3779b9) >>> 0;
}

/** Seed of the warmup stream for file datasets (their rows are never used for warmup). */
const FILE_WARMUP_SEED = 0x5eed_1e77;

/** How many tokens a file prompt has, without a tokenizer: about 4 characters per token. */
export function estimateTokens(text: string): number {
  return Math.max(1, Math.round(text.length / 4));
}

/**
 * Warmup prompts: the same shape and length as the measured ones, never one of them, so a
 * server or engine that caches prompts is not primed with what is about to be measured (the
 * first measured requests would be cache hits). Synthetic datasets draw from their own seed
 * stream ({@link warmupSeed}) at `input_len` words; file datasets get generated prompts whose
 * lengths are drawn from the file's (estimated) prompt lengths, so no file row is used. A draw
 * that equals a measured prompt is drawn again. Deterministic for the same dataset.
 *
 * @example
 * warmupPrompts({ synthetic: { n: 8, input_len: 16, seed: 42 } }, 2, measured);
 */
export function warmupPrompts(
  dataset: DatasetConfig,
  count: number,
  measured: readonly string[],
): string[] {
  if (count <= 0) return [];
  const exclude = new Set(measured);
  const synthetic = typeof dataset === 'object' && 'synthetic' in dataset;
  const random = mulberry32(synthetic ? warmupSeed(dataset.synthetic.seed ?? 0) : FILE_WARMUP_SEED);
  const lengths = synthetic ? [dataset.synthetic.input_len] : measured.map(estimateTokens);
  if (lengths.length === 0) return [];
  const prompts: string[] = [];
  // Collisions need prompts of a word or two; the bound only stops a hopeless search.
  for (let draws = 0; prompts.length < count; draws++) {
    if (draws >= count * 1000) {
      throw new MeasurementError(
        `dataset: cannot generate ${count} warmup prompts that differ from every measured prompt (prompts of ${Math.min(...lengths)} token(s) leave too few choices); lengthen the prompts or set warmup.n: 0`,
        'DATASET',
      );
    }
    // One length (synthetic): no draw, so the warmup prompts are exactly the synthetic prompts
    // of `warmupSeed(seed)`, minus any that are measured.
    const length =
      lengths.length === 1
        ? (lengths[0] as number)
        : (lengths[Math.floor(random() * lengths.length)] as number);
    const prompt = wordsPrompt(random, length);
    if (!exclude.has(prompt)) prompts.push(prompt);
  }
  return prompts;
}

/** Read prompts from a JSON-lines file; every line must be an object with a string `field`. */
export function jsonlPrompts(file: string, field = 'prompt'): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new MeasurementError(
      `dataset: cannot read ${file}: ${(error as Error).message}`,
      'DATASET',
      {
        cause: error,
      },
    );
  }
  const prompts: string[] = [];
  for (const [i, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch {
      throw new MeasurementError(`${file}:${i + 1}: not valid JSON`, 'DATASET');
    }
    const value = (row as Record<string, unknown> | null)?.[field];
    if (typeof value !== 'string')
      throw new MeasurementError(
        `${file}:${i + 1}: expected an object with a string "${field}" field`,
        'DATASET',
      );
    prompts.push(value);
  }
  if (prompts.length === 0)
    throw new MeasurementError(`${file}: no prompts in the file`, 'DATASET');
  return prompts;
}

/** Output tokens each request asks for: the synthetic `output_len` capped by `max_output_tokens`. */
function outputLength(dataset: DatasetConfig, maxOutputTokens: number): number {
  return typeof dataset === 'object' && 'synthetic' in dataset
    ? Math.min(dataset.synthetic.output_len ?? maxOutputTokens, maxOutputTokens)
    : maxOutputTokens;
}

/**
 * Turn the config's dataset into engine requests. Each asks for the synthetic `output_len`
 * capped by the config's `max_output_tokens` (or `max_output_tokens` for a file dataset).
 * A relative `.jsonl` path resolves against `cwd`.
 */
export function buildRequests(
  dataset: DatasetConfig,
  maxOutputTokens: number,
  cwd: string = process.cwd(),
): EngineRequest[] {
  let prompts: string[];
  if (typeof dataset === 'string') {
    prompts = jsonlPrompts(resolve(cwd, dataset));
  } else if ('synthetic' in dataset) {
    prompts = syntheticPrompts(dataset.synthetic);
  } else {
    prompts = jsonlPrompts(resolve(cwd, dataset.path), dataset.column ?? 'prompt');
  }
  const outLen = outputLength(dataset, maxOutputTokens);
  return prompts.map((prompt, id) => ({ id, prompt, maxOutputTokens: outLen }));
}

/**
 * `count` warmup requests for a workload (see {@link warmupPrompts}): the measured requests'
 * output length, prompts that are none of theirs.
 *
 * @example
 * const warm = buildWarmupRequests(config.dataset, config.max_output_tokens, 2, requests);
 */
export function buildWarmupRequests(
  dataset: DatasetConfig,
  maxOutputTokens: number,
  count: number,
  measured: readonly EngineRequest[],
): EngineRequest[] {
  const outLen = outputLength(dataset, maxOutputTokens);
  return warmupPrompts(
    dataset,
    count,
    measured.map((r) => r.prompt),
  ).map((prompt, id) => ({ id, prompt, maxOutputTokens: outLen }));
}
