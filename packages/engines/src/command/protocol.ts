import type { RequestRecord } from '../engine';

/**
 * The line protocol between llem and a `command` program, on the program's stdout:
 *
 * - `{"llem":"start"}` / `{"llem":"stop"}` mark the measurement window (optional).
 * - One report line: `{"input_tokens": N, "output_tokens": N, "requests": N}` with an optional
 *   `"latencies": [ProgramLatency, ...]` (one entry per request).
 * - Any other line is ignored (logged at debug), so programs may print freely.
 */
export interface ProgramReport {
  input_tokens: number;
  output_tokens: number;
  requests: number;
  latencies?: ProgramLatency[];
}

/**
 * Per-request timing a program may report, in milliseconds.
 * - `start_ms`: when the request was issued, relative to the window start (default 0).
 * - `ttft_ms`: time to first token from the request's start (`null` if none arrived).
 * - `itl_ms`: gaps between consecutive output tokens after the first (never the TTFT).
 * - `e2e_ms`: request start to its last token.
 * - `input_tokens` / `output_tokens`: this request's counts, if known.
 */
export interface ProgramLatency {
  start_ms?: number;
  ttft_ms: number | null;
  itl_ms?: number[];
  e2e_ms: number;
  input_tokens?: number;
  output_tokens?: number;
}

export type ProgramLine =
  | { kind: 'start' }
  | { kind: 'stop' }
  | { kind: 'report'; report: ProgramReport }
  | { kind: 'invalid-report'; problem: string }
  | { kind: 'other' };

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;
const isMs = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;

function latencyProblem(entry: unknown, i: number): string | null {
  if (typeof entry !== 'object' || entry === null) return `latencies[${i}] must be an object`;
  const e = entry as Record<string, unknown>;
  if (e.start_ms !== undefined && !isMs(e.start_ms))
    return `latencies[${i}].start_ms must be a number ≥ 0`;
  if (e.ttft_ms !== null && !isMs(e.ttft_ms))
    return `latencies[${i}].ttft_ms must be a number ≥ 0 or null`;
  if (!isMs(e.e2e_ms)) return `latencies[${i}].e2e_ms must be a number ≥ 0`;
  if (e.itl_ms !== undefined && !(Array.isArray(e.itl_ms) && e.itl_ms.every(isMs)))
    return `latencies[${i}].itl_ms must be an array of numbers ≥ 0`;
  for (const k of ['input_tokens', 'output_tokens'] as const)
    if (e[k] !== undefined && !isCount(e[k])) return `latencies[${i}].${k} must be an integer ≥ 0`;
  return null;
}

/**
 * Classify one stdout line. A JSON object with any of the report keys is a report attempt and is
 * validated strictly, so a typo in a program's output is an error rather than silently ignored.
 */
export function parseProgramLine(line: string): ProgramLine {
  const trimmed = line.trim();
  if (!trimmed.startsWith('{')) return { kind: 'other' };
  let value: unknown;
  try {
    value = JSON.parse(trimmed);
  } catch {
    return { kind: 'other' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { kind: 'other' };
  const obj = value as Record<string, unknown>;
  if (obj.llem === 'start') return { kind: 'start' };
  if (obj.llem === 'stop') return { kind: 'stop' };
  if (!('output_tokens' in obj || 'input_tokens' in obj || 'requests' in obj))
    return { kind: 'other' };
  for (const k of ['input_tokens', 'output_tokens', 'requests'] as const) {
    if (!isCount(obj[k]))
      return {
        kind: 'invalid-report',
        problem: `"${k}" must be an integer ≥ 0 (got ${JSON.stringify(obj[k])})`,
      };
  }
  if (obj.latencies !== undefined) {
    if (!Array.isArray(obj.latencies))
      return { kind: 'invalid-report', problem: '"latencies" must be an array' };
    for (const [i, entry] of obj.latencies.entries()) {
      const problem = latencyProblem(entry, i);
      if (problem) return { kind: 'invalid-report', problem };
    }
  }
  return { kind: 'report', report: obj as unknown as ProgramReport };
}

/**
 * Turn reported latencies into the engine contract's records, anchored at `windowStart`
 * (monotonic ms). Only differences matter to the metrics, so the anchor is harmless.
 */
export function latenciesToRecords(
  latencies: ProgramLatency[],
  windowStart: number,
): RequestRecord[] {
  return latencies.map((l, id) => {
    const startedAt = windowStart + (l.start_ms ?? 0);
    const firstTokenAt = l.ttft_ms === null ? null : startedAt + l.ttft_ms;
    const tokenTimes: number[] = [];
    if (firstTokenAt !== null) {
      let t = firstTokenAt;
      for (const gap of l.itl_ms ?? []) {
        t += gap;
        tokenTimes.push(t);
      }
    }
    return {
      id,
      startedAt,
      firstTokenAt,
      tokenTimes,
      endedAt: startedAt + l.e2e_ms,
      inputTokens: l.input_tokens ?? null,
      outputTokens: l.output_tokens ?? null,
    };
  });
}
