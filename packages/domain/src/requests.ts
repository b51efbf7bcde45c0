import { z } from 'zod';
import { TokenCountSourceSchema } from './result';

/**
 * Per-request records: one JSON object per line in `runs/<key>.requests.jsonl`, one line per
 * measured request (warmup requests are never written), in workload order. camelCase; times in
 * ms; unknown values are `null`. Written by the llem worker beside the run's result; read by the
 * report (TTFT and E2E over the window).
 */

const nonNegative = z.number().nonnegative();
const count = z.int().nonnegative();

/** The server's own timings for one request (llama-server's `timings` block, camelCase). */
export const ServerTimingsSchema = z
  .object({
    /** Prompt tokens evaluated, and the time that took (ms). */
    promptN: count.nullable(),
    promptMs: nonNegative.nullable(),
    /** Prompt tokens found in the server's prompt cache. */
    cacheN: count.nullable(),
    /** Tokens generated, and the server's generation time (ms). */
    predictedN: count.nullable(),
    predictedMs: nonNegative.nullable(),
  })
  .strict();
export type ServerTimingsRecord = z.infer<typeof ServerTimingsSchema>;

export const RequestRecordSchema = z
  .object({
    /** Position of the request in the workload, 0-based. */
    id: count,
    /**
     * When the request was first sent, in ms from the start of the measurement window (0 = the
     * window opened). Retries do not move it.
     */
    sentMs: z.number(),
    /**
     * Open loop: when the arrival schedule said to send it, in ms from the window's start.
     * Absent without a schedule (closed loop, other engines) and in files written before it existed.
     */
    scheduledMs: z.number().optional(),
    /** Open loop: how late the client itself was to send it (ms; slot and connection waits excluded). */
    clientLagMs: nonNegative.optional(),
    /** Open loop: time spent waiting for a `max_concurrency` slot or a new connection (ms). */
    connectionWaitMs: nonNegative.optional(),
    /** Time to first token; `null` when no token arrived. */
    ttftMs: nonNegative.nullable(),
    /** End-to-end latency, from the first send to the end of the response (or the failure). */
    e2eMs: nonNegative,
    /**
     * The gaps between successive chunks that carry tokens, after the first token (the ITL
     * samples, as vLLM defines ITL); a chunk of several tokens is one gap.
     */
    chunkGapsMs: z.array(nonNegative),
    /** (E2E − TTFT) / (output tokens − 1); `null` with fewer than two output tokens or a failure. */
    tpotMs: nonNegative.nullable(),
    inputTokens: count.nullable(),
    outputTokens: count.nullable(),
    /** Where the token counts came from (the server's usage, counted chunks, the engine…). */
    tokenSource: TokenCountSourceSchema,
    /** Times the request was sent again on a fresh connection after getting no response byte. */
    retries: count,
    /** Why the request failed; `null` when it succeeded. */
    error: z
      .object({ type: z.string().min(1), message: z.string() })
      .strict()
      .nullable(),
    /** The server's own timings, when it sent them (llama-server); else absent. */
    serverTimings: ServerTimingsSchema.optional(),
  })
  .strict();
/**
 * One measured request as written to `runs/<key>.requests.jsonl`. (Named apart from
 * `@llem/engines`' in-memory `RequestRecord`, which holds monotonic timestamps.)
 */
export type MeasuredRequest = z.infer<typeof RequestRecordSchema>;

/** A line of a requests file that is not a valid record. */
export interface InvalidRequestLine {
  /** 1-based line number. */
  line: number;
  message: string;
}

/**
 * Parses the text of a requests file: every non-empty line must be a `RequestRecordSchema`
 * object. Pure (the caller reads the file); bad lines are returned, not thrown, so a reader can
 * use what is valid and say what was not.
 *
 * @example
 * const { records, invalid } = parseRequestRecords(text);
 */
export function parseRequestRecords(text: string): {
  records: MeasuredRequest[];
  invalid: InvalidRequestLine[];
} {
  const records: MeasuredRequest[] = [];
  const invalid: InvalidRequestLine[] = [];
  text.split('\n').forEach((raw, i) => {
    if (raw.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      invalid.push({ line: i + 1, message: 'not valid JSON' });
      return;
    }
    const parsed = RequestRecordSchema.safeParse(value);
    if (parsed.success) records.push(parsed.data);
    else {
      const issue = parsed.error.issues[0];
      invalid.push({
        line: i + 1,
        message: `${issue?.path.map(String).join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`,
      });
    }
  });
  return { records, invalid };
}
