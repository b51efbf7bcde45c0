import { mulberry32, type ShareGptDataset, seededShuffle } from '@llem/domain';
import { datasetError } from './read';
import type { ShareGptEntries, ShareGptPair } from './sources';

// Picking ShareGPT requests as vLLM's loader does: in file order (or shuffled with `seed`), each
// pair's prompt and answer lengths measured, pairs outside the length filters skipped, until `n`
// are taken (all when `n` is absent).

/** A picked pair with its prompt and answer lengths in tokens. */
export interface PickedPair {
  pair: ShareGptPair;
  inputLength: number;
  answerLength: number;
}

export interface ShareGptPick {
  picked: PickedPair[];
  /** Pairs looked at and left out by `min_input_len`, `max_input_len` or `max_output_len`. */
  filtered: number;
}

/** Candidates in the order they are considered. */
function ordered(
  pairs: readonly ShareGptPair[],
  dataset: ShareGptDataset,
): readonly ShareGptPair[] {
  return dataset.seed === undefined ? pairs : seededShuffle(pairs, mulberry32(dataset.seed));
}

function passes(dataset: ShareGptDataset, inputLength: number, answerLength: number): boolean {
  return !(
    (dataset.min_input_len !== undefined && inputLength < dataset.min_input_len) ||
    (dataset.max_input_len !== undefined && inputLength > dataset.max_input_len) ||
    (dataset.max_output_len !== undefined && answerLength > dataset.max_output_len)
  );
}

/**
 * Picks the requests, measuring lengths in batches (a tokenizer over HTTP is asked for the pairs
 * it needs, a batch at a time, not for the whole file). `lengths` gives [prompt, answer] lengths.
 * With `estimated` (lengths guessed before the engine can tokenize: validate, dry-run, the run's
 * first check), fewer picks than `n` because of the length filters is no error: the engine's
 * tokenizer decides when the run builds its workload. `n` beyond the usable conversations is one.
 */
export async function pickShareGpt(
  file: string,
  source: ShareGptEntries,
  dataset: ShareGptDataset,
  lengths: (pairs: readonly ShareGptPair[]) => Promise<Array<[number, number]>>,
  options: { batch?: number; estimated?: boolean } = {},
): Promise<ShareGptPick> {
  const batch = options.batch ?? 64;
  const candidates = ordered(source.pairs, dataset);
  const want = dataset.n ?? candidates.length;
  const picked: PickedPair[] = [];
  let filtered = 0;
  for (let start = 0; start < candidates.length && picked.length < want; start += batch) {
    const slice = candidates.slice(start, start + batch);
    const measured = await lengths(slice);
    for (const [i, pair] of slice.entries()) {
      if (picked.length >= want) break;
      const [inputLength, answerLength] = measured[i] as [number, number];
      if (passes(dataset, inputLength, answerLength))
        picked.push({ pair, inputLength, answerLength });
      else filtered++;
    }
  }
  if (options.estimated === true) checkUsable(file, source, dataset);
  else checkPick(file, source, dataset, picked.length, filtered);
  return { picked, filtered };
}

/** `1 entry`, `2 entries`. */
export function entriesText(n: number): string {
  return `${n} ${n === 1 ? 'entry' : 'entries'}`;
}

/** Entries skipped, by reason, in words. */
export function skippedText(source: ShareGptEntries): string {
  const parts = Object.entries(source.skipped).map(([reason, count]) => `${count} with ${reason}`);
  return parts.length === 0 ? 'none skipped' : `skipped ${parts.join(', ')}`;
}

/** `n` within the usable conversations, whatever their lengths. */
function checkUsable(file: string, source: ShareGptEntries, dataset: ShareGptDataset): void {
  if (dataset.n !== undefined && source.pairs.length < dataset.n)
    throw datasetError(
      `${file}: dataset.n asks for ${dataset.n} requests and only ${source.pairs.length} are usable: ${entriesText(source.entries)}, ${source.pairs.length} usable (${skippedText(source)})`,
    );
}

function checkPick(
  file: string,
  source: ShareGptEntries,
  dataset: ShareGptDataset,
  picked: number,
  filtered: number,
): void {
  const filters = [
    dataset.min_input_len !== undefined ? `min_input_len ${dataset.min_input_len}` : null,
    dataset.max_input_len !== undefined ? `max_input_len ${dataset.max_input_len}` : null,
    dataset.max_output_len !== undefined ? `max_output_len ${dataset.max_output_len}` : null,
  ].filter((f) => f !== null);
  const facts = `${entriesText(source.entries)}, ${source.pairs.length} usable (${skippedText(source)})${
    filters.length > 0 ? `, ${filtered} outside the length filters (${filters.join(', ')})` : ''
  }`;
  if (picked === 0)
    throw datasetError(
      `${file}: no usable request: ${facts}; expected conversations whose first human turn ({"from": "human", "value": …} or {"role": "user", "content": …}) is followed by an answer (from gpt or role assistant)`,
    );
  if (dataset.n !== undefined && picked < dataset.n)
    throw datasetError(
      `${file}: dataset.n asks for ${dataset.n} requests and only ${picked} are usable: ${facts}`,
    );
}
