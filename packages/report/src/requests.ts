import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
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
 * Reads a run's per-request records (`runs/<key>.requests.jsonl`, one JSON line per measured
 * request, written by the llem worker beside the result). `null` when the run has no such file:
 * a run that failed, or one written before the file existed. Every read of the file goes
 * through here.
 *
 * TODO(layout): take the file's path from the study-directory module (issue 10) once it exists.
 *
 * @example
 * const requests = await readRunRequests(study.dir, run);
 * requests?.records.map((r) => r.ttftMs);
 */
export async function readRunRequests(
  studyDir: string,
  run: Pick<RunRecord, 'key' | 'resultFile'>,
): Promise<RunRequests | null> {
  const file = join(
    run.resultFile ? dirname(run.resultFile) : join(studyDir, 'runs'),
    `${run.key}.requests.jsonl`,
  );
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return null;
  }
  return { file, ...parseRequestRecords(text) };
}
