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
  for (let i = 0; i < spec.n; i++) {
    const words: string[] = [];
    for (let w = 0; w < spec.input_len; w++)
      words.push(WORDS[Math.floor(random() * WORDS.length)] as string);
    prompts.push(words.join(' '));
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
  let outLen = maxOutputTokens;
  if (typeof dataset === 'string') {
    prompts = jsonlPrompts(resolve(cwd, dataset));
  } else if ('synthetic' in dataset) {
    prompts = syntheticPrompts(dataset.synthetic);
    // output_len is what each request asks for; max_output_tokens still caps it.
    outLen = Math.min(dataset.synthetic.output_len ?? maxOutputTokens, maxOutputTokens);
  } else {
    prompts = jsonlPrompts(resolve(cwd, dataset.path), dataset.column ?? 'prompt');
  }
  return prompts.map((prompt, id) => ({ id, prompt, maxOutputTokens: outLen }));
}
