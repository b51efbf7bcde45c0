import type { JsonlDataset, ShareGptDataset, TraceDataset } from '@llem/domain';
import { datasetError, readJsonArray, readJsonLines } from './read';

// The dataset files, read and checked: every row or entry becomes a typed record, bad data is an
// error naming the file, the line or entry and what was expected. No prompt is built here.

/** One row of a `format: jsonl` file. */
export interface JsonlRow {
  line: number;
  prompt: string;
  /** The row's output length (`output_len_column`), `null` without that column. */
  outputLen: number | null;
}

/** One request of a trace (Mooncake's fields), with the line it came from. */
export interface TraceRow {
  line: number;
  timestampMs: number;
  inputLength: number;
  outputLength: number;
  hashIds: number[] | null;
}

/** A ShareGPT conversation's first human turn and its answer. */
export interface ShareGptPair {
  /** 0-based position among the file's entries (array index, or line order for .jsonl). */
  entry: number;
  /** The line of a .jsonl entry; `null` in a .json array. */
  line: number | null;
  prompt: string;
  answer: string;
}

/** Why a ShareGPT entry gave no request (counted in the result). */
export const SHAREGPT_SKIP_REASONS = {
  noList: 'no conversations or messages list',
  noHuman: 'no human turn',
  emptyHuman: 'an empty human turn',
  noAnswer: 'no answer after the first human turn',
  emptyAnswer: 'an empty answer',
} as const;
export type ShareGptSkipReason = (typeof SHAREGPT_SKIP_REASONS)[keyof typeof SHAREGPT_SKIP_REASONS];

export interface ShareGptEntries {
  entries: number;
  pairs: ShareGptPair[];
  skipped: Partial<Record<ShareGptSkipReason, number>>;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Reads a `format: jsonl` file: a prompt (and optionally an output length) per line. */
export function readJsonlRows(file: string, dataset: JsonlDataset): JsonlRow[] {
  const rows: JsonlRow[] = [];
  const { column, output_len_column: outColumn } = dataset;
  readJsonLines(file, (value, line) => {
    const prompt = isObject(value) ? value[column] : undefined;
    if (typeof prompt !== 'string')
      throw datasetError(
        `${file}:${line}: expected an object with a string "${column}" field (dataset.column)`,
      );
    let outputLen: number | null = null;
    if (outColumn !== undefined) {
      const out = (value as Record<string, unknown>)[outColumn];
      if (typeof out !== 'number' || !Number.isInteger(out) || out < 1)
        throw datasetError(
          `${file}:${line}: "${outColumn}" must be an integer ≥ 1, the row's output length in tokens (dataset.output_len_column)`,
        );
      outputLen = out;
    }
    rows.push({ line, prompt, outputLen });
  });
  if (rows.length === 0)
    throw datasetError(`${file}: no usable request: the file holds no prompts`);
  return rows;
}

const nonNegative = (v: unknown): v is number =>
  typeof v === 'number' && Number.isFinite(v) && v >= 0;
const positiveInt = (v: unknown): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= 1;

/**
 * Reads a Mooncake-style trace: `{timestamp, input_length, output_length, hash_ids?}` per line,
 * in send order (stably sorted by timestamp).
 */
export function readTraceRows(file: string, _dataset: TraceDataset): TraceRow[] {
  const rows: TraceRow[] = [];
  readJsonLines(file, (value, line) => {
    const at = `${file}:${line}`;
    if (!isObject(value))
      throw datasetError(
        `${at}: expected an object {timestamp, input_length, output_length, hash_ids?}`,
      );
    const { timestamp, input_length, output_length, hash_ids } = value;
    if (!nonNegative(timestamp))
      throw datasetError(`${at}: "timestamp" must be a number ≥ 0 (ms from the trace's start)`);
    if (!positiveInt(input_length))
      throw datasetError(`${at}: "input_length" must be an integer ≥ 1 (prompt tokens)`);
    if (!positiveInt(output_length))
      throw datasetError(`${at}: "output_length" must be an integer ≥ 1 (output tokens)`);
    if (
      hash_ids !== undefined &&
      hash_ids !== null &&
      !(Array.isArray(hash_ids) && hash_ids.every((h) => Number.isInteger(h) && h >= 0))
    )
      throw datasetError(
        `${at}: "hash_ids" must be a list of integers ≥ 0 (one per 512-token block of the prompt)`,
      );
    rows.push({
      line,
      timestampMs: timestamp,
      inputLength: input_length,
      outputLength: output_length,
      hashIds: Array.isArray(hash_ids) ? (hash_ids as number[]) : null,
    });
  });
  if (rows.length === 0) throw datasetError(`${file}: no usable request: the trace holds no lines`);
  // Sorted by time (stable: equal timestamps keep the file's order), as they will be sent.
  return rows
    .map((row, i) => ({ row, i }))
    .sort((a, b) => a.row.timestampMs - b.row.timestampMs || a.i - b.i)
    .map(({ row }) => row);
}

const HUMAN = new Set(['human', 'user']);
const ANSWER = new Set(['gpt', 'chatgpt', 'bard', 'bing', 'assistant', 'model']);

/** The role of a ShareGPT message (`from` or `role`) and its text (`value` or `content`). */
function message(m: unknown): { role: string | null; text: string | null } {
  if (!isObject(m)) return { role: null, text: null };
  const role = typeof m.from === 'string' ? m.from : typeof m.role === 'string' ? m.role : null;
  const raw = m.value ?? m.content;
  let text: string | null = null;
  if (typeof raw === 'string') text = raw;
  else if (Array.isArray(raw))
    // OpenAI-style content parts: the text parts, in order.
    text = raw
      .map((part) => (isObject(part) && typeof part.text === 'string' ? part.text : ''))
      .join('');
  return { role: role?.toLowerCase() ?? null, text };
}

function pairOf(
  entry: Record<string, unknown>,
): { prompt: string; answer: string } | ShareGptSkipReason {
  const list = entry.conversations ?? entry.messages ?? entry.conversation;
  if (!Array.isArray(list)) return SHAREGPT_SKIP_REASONS.noList;
  const h = list.findIndex((m) => HUMAN.has(message(m).role ?? ''));
  if (h === -1) return SHAREGPT_SKIP_REASONS.noHuman;
  const human = message(list[h]);
  if (human.text === null || human.text.trim() === '') return SHAREGPT_SKIP_REASONS.emptyHuman;
  const next = message(list[h + 1]);
  if (next.role === null || !ANSWER.has(next.role)) return SHAREGPT_SKIP_REASONS.noAnswer;
  if (next.text === null || next.text.trim() === '') return SHAREGPT_SKIP_REASONS.emptyAnswer;
  return { prompt: human.text, answer: next.text };
}

/**
 * Reads ShareGPT conversations from a `.json` array or a `.jsonl` file. Each entry must be an
 * object (anything else is bad data, named by entry or line); an object without a first human
 * turn followed by an answer is skipped and counted by reason. Both message shapes are read:
 * `{from: human|gpt, value}` and `{role: user|assistant, content}`, under `conversations` or
 * `messages`.
 */
export function readShareGptEntries(file: string, _dataset: ShareGptDataset): ShareGptEntries {
  const pairs: ShareGptPair[] = [];
  const skipped: Partial<Record<ShareGptSkipReason, number>> = {};
  let entries = 0;
  const take = (value: unknown, entry: number, line: number | null): void => {
    entries++;
    if (!isObject(value))
      throw datasetError(
        `${file}${line === null ? `: entry ${entry}` : `:${line}`}: expected a conversation object with a "conversations" (or "messages") list`,
      );
    const pair = pairOf(value);
    if (typeof pair === 'string') skipped[pair] = (skipped[pair] ?? 0) + 1;
    else pairs.push({ entry, line, ...pair });
  };
  if (/\.jsonl$/i.test(file)) readJsonLines(file, (value, line) => take(value, entries, line));
  else readJsonArray(file, (value, index) => take(value, index, null));
  return { entries, pairs, skipped };
}
