import { readFile } from 'node:fs/promises';
import { type InvalidRequestLine, type MeasuredRequest, parseRequestRecords } from '@llem/domain';
import type { RunRecord } from './load';

/** A run's per-request records as the report read them. */
export interface RunRequests {
  /** Absolute path of the file read. */
  file: string;
  records: MeasuredRequest[];
  /** Lines that were not valid records (left out). */
  invalid: InvalidRequestLine[];
}

/**
 * Reads a run's per-request records (`runs/<key>.requests.jsonl` as the study layout names it,
 * one JSON line per measured request, written by the llem worker). `null` when the run has no
 * such file: a run that failed, or one written before the file existed. Every read of the file
 * goes through here.
 *
 * @example
 * const requests = await readRunRequests(run);
 * requests?.records.map((r) => r.ttftMs);
 */
export async function readRunRequests(
  run: Pick<RunRecord, 'requestsFile'>,
): Promise<RunRequests | null> {
  const file = run.requestsFile;
  const text = await readIfPresent(file);
  return text === null || file === null ? null : { file, ...parseRequestRecords(text) };
}

/** A run's side file as text; `null` when the run has none or it cannot be read. */
export async function readIfPresent(file: string | null): Promise<string | null> {
  if (file === null) return null;
  try {
    return await readFile(file, 'utf8');
  } catch {
    return null;
  }
}
