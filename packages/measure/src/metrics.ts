import type { RunLatency } from '@llem/domain';
import { type RequestRecord, requestTpotMs } from '@llem/engines';
import { latencyStats } from './stats';

/** The engines' TPOT definition, here beside the other per-request latencies. */
export { requestTpotMs };

/** The latency lists of a workload, in ms. Failed requests are left out. */
export interface LatencySamples {
  ttftMs: number[];
  /**
   * Gaps between successive chunks that carry tokens, after the first token (vLLM's ITL); the
   * TTFT is never among them and a chunk of several tokens is one gap.
   */
  itlMs: number[];
  e2eMs: number[];
  /** One per request with at least two output tokens: (E2E − TTFT) / (output tokens − 1). */
  tpotMs: number[];
  /** TTFT and E2E from the scheduled send time, for requests that had one (open loop). */
  ttftFromScheduledMs: number[];
  e2eFromScheduledMs: number[];
}

/**
 * A request's ITL samples: the gaps of `[firstTokenAt, ...chunkTimes]` (or `tokenTimes` for an
 * engine whose every token is its own chunk). Empty when no token arrived.
 *
 * @example
 * chunkGapsMs({ firstTokenAt: 10, chunkTimes: [30, 50], … }); // [20, 20]
 */
export function chunkGapsMs(record: RequestRecord): number[] {
  if (record.firstTokenAt === null) return [];
  const gaps: number[] = [];
  let prev = record.firstTokenAt;
  for (const t of record.chunkTimes ?? record.tokenTimes) {
    gaps.push(t - prev);
    prev = t;
  }
  return gaps;
}

/** Split request records into TTFT, ITL, E2E and TPOT lists (see {@link LatencySamples}). */
export function latencySamples(records: readonly RequestRecord[]): LatencySamples {
  const out: LatencySamples = {
    ttftMs: [],
    itlMs: [],
    e2eMs: [],
    tpotMs: [],
    ttftFromScheduledMs: [],
    e2eFromScheduledMs: [],
  };
  for (const r of records) {
    if (r.error) continue;
    out.e2eMs.push(r.endedAt - r.startedAt);
    const scheduled = r.scheduledAt;
    if (scheduled !== undefined) out.e2eFromScheduledMs.push(r.endedAt - scheduled);
    if (r.firstTokenAt === null) continue;
    out.ttftMs.push(r.firstTokenAt - r.startedAt);
    if (scheduled !== undefined) out.ttftFromScheduledMs.push(r.firstTokenAt - scheduled);
    for (const gap of chunkGapsMs(r)) out.itlMs.push(gap);
    const tpot = requestTpotMs(r);
    if (tpot !== null) out.tpotMs.push(tpot);
  }
  return out;
}

/**
 * TTFT, ITL, E2E and TPOT statistics of a workload; each `null` when there is nothing to
 * measure. TPOT's percentiles are over requests (one value each), ITL's over chunk gaps. When
 * the requests had a schedule (open loop), TTFT and E2E are also counted from the scheduled send
 * time (`ttftFromScheduledMs`, `e2eFromScheduledMs`: the client's lateness and connection waits
 * included, so no coordinated omission); without one those fields are absent.
 */
export function computeLatency(records: readonly RequestRecord[]): RunLatency {
  const s = latencySamples(records);
  const latency: RunLatency = {
    ttftMs: latencyStats(s.ttftMs),
    itlMs: latencyStats(s.itlMs),
    e2eMs: latencyStats(s.e2eMs),
    tpotMs: latencyStats(s.tpotMs),
  };
  if (records.some((r) => r.scheduledAt !== undefined)) {
    latency.ttftFromScheduledMs = latencyStats(s.ttftFromScheduledMs);
    latency.e2eFromScheduledMs = latencyStats(s.e2eFromScheduledMs);
  }
  return latency;
}

export interface Throughput {
  outputTokensPerS: number | null;
  totalTokensPerS: number | null;
  requestsPerS: number | null;
}

/** Rates over the measurement window; `null` where a count is unknown or the window is empty. */
export function computeThroughput(
  durationS: number,
  inputTokens: number | null,
  outputTokens: number | null,
  requests: number | null,
): Throughput {
  const rate = (n: number | null) => (n === null || !(durationS > 0) ? null : n / durationS);
  return {
    outputTokensPerS: rate(outputTokens),
    totalTokensPerS:
      inputTokens === null || outputTokens === null ? null : rate(inputTokens + outputTokens),
    requestsPerS: rate(requests),
  };
}

/** J per output token; `null` when either side is unknown or no token was produced. */
export function energyPerOutputToken(
  energyJ: number | null,
  outputTokens: number | null,
): number | null {
  if (energyJ === null || outputTokens === null || outputTokens <= 0) return null;
  return energyJ / outputTokens;
}

/** Baseline-adjusted energy: `max(0, raw − idle W × duration)`; `null` without both inputs. */
export function baselineAdjusted(
  totalJ: number | null,
  baselineW: number | null,
  durationS: number,
): number | null {
  if (totalJ === null || baselineW === null) return null;
  return Math.max(0, totalJ - baselineW * durationS);
}

/**
 * FLOPs estimate `2 × parameters × tokens` (forward pass of a dense transformer, ignoring
 * attention's quadratic term); method `none` when the parameter count or tokens are unknown.
 */
export function estimateFlops(
  parameterCount: number | null,
  inputTokens: number | null,
  outputTokens: number | null,
): { estimate: number | null; method: '2-params-tokens' | 'none'; parameterCount: number | null } {
  if (parameterCount === null || inputTokens === null || outputTokens === null)
    return { estimate: null, method: 'none', parameterCount };
  return {
    estimate: 2 * parameterCount * (inputTokens + outputTokens),
    method: '2-params-tokens',
    parameterCount,
  };
}
