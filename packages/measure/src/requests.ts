import { closeSync, openSync, renameSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import type { MeasuredRequest } from '@llem/domain';
import type { RequestRecord, TokenCountSource } from '@llem/engines';
import { chunkGapsMs, requestTpotMs } from './metrics';

/** Milliseconds to the microsecond: what a per-request file needs, at a third of the size. */
const us = (ms: number): number => Math.round(ms * 1000) / 1000;

/**
 * The per-request records of a run (`@llem/domain`'s `RequestRecordSchema`), one per measured
 * request in workload order: send time relative to the window's start, TTFT, E2E, chunk gaps,
 * TPOT, token counts and where they came from, retries and the error; in open loop also the
 * scheduled send time, the client's lateness and the connection wait.
 *
 * @example
 * const lines = measuredRequests(outcome.requests, windowStartMs, outcome.tokenCountSource);
 */
export function measuredRequests(
  records: readonly RequestRecord[],
  windowStartMs: number,
  source: TokenCountSource,
): MeasuredRequest[] {
  return records.map((r) => {
    const tpot = requestTpotMs(r);
    const out: MeasuredRequest = {
      id: r.id,
      sentMs: us(r.startedAt - windowStartMs),
      ttftMs: r.firstTokenAt === null ? null : us(Math.max(0, r.firstTokenAt - r.startedAt)),
      e2eMs: us(Math.max(0, r.endedAt - r.startedAt)),
      chunkGapsMs: chunkGapsMs(r).map((g) => us(Math.max(0, g))),
      tpotMs: tpot === null ? null : us(tpot),
      inputTokens: r.inputTokens,
      outputTokens: r.outputTokens,
      tokenSource: r.tokenSource ?? source,
      retries: r.retries ?? 0,
      error: r.error ? { type: r.error.type, message: r.error.message } : null,
    };
    if (r.scheduledAt !== undefined) out.scheduledMs = us(r.scheduledAt - windowStartMs);
    if (r.clientLagMs !== undefined) out.clientLagMs = us(Math.max(0, r.clientLagMs));
    if (r.connectionWaitMs !== undefined) {
      out.connectionWaitMs = us(Math.max(0, r.connectionWaitMs));
    }
    if (r.serverTimings !== undefined) out.serverTimings = { ...r.serverTimings };
    return out;
  });
}

/**
 * Writes the records as JSON lines to `file` atomically (a temporary file renamed over it), one
 * line at a time so a run of many long requests never builds one huge string.
 *
 * @example
 * writeRequestRecords('/study/runs/abc_c0.requests.jsonl', output.requests);
 */
export function writeRequestRecords(file: string, records: readonly MeasuredRequest[]): void {
  const tmp = `${file}.${hostname()}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    for (const record of records) writeSync(fd, `${JSON.stringify(record)}\n`);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}
