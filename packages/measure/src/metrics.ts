import type { RunLatency } from '@llem/domain';
import type { RequestRecord } from '@llem/engines';
import { latencyStats } from './stats';

/** The latency lists of a workload, in ms. Failed requests are left out. */
export interface LatencySamples {
  ttftMs: number[];
  /** Gaps between consecutive tokens after the first; the TTFT is never among them. */
  itlMs: number[];
  e2eMs: number[];
}

/**
 * Split request records into TTFT, ITL and E2E lists. ITLs are the differences of
 * `[firstTokenAt, ...tokenTimes]`, so the first token's wait never counts as an inter-token gap.
 */
export function latencySamples(records: readonly RequestRecord[]): LatencySamples {
  const out: LatencySamples = { ttftMs: [], itlMs: [], e2eMs: [] };
  for (const r of records) {
    if (r.error) continue;
    out.e2eMs.push(r.endedAt - r.startedAt);
    if (r.firstTokenAt === null) continue;
    out.ttftMs.push(r.firstTokenAt - r.startedAt);
    let prev = r.firstTokenAt;
    for (const t of r.tokenTimes) {
      out.itlMs.push(t - prev);
      prev = t;
    }
  }
  return out;
}

/** TTFT, ITL and E2E statistics of a workload; each `null` when there is nothing to measure. */
export function computeLatency(records: readonly RequestRecord[]): RunLatency {
  const s = latencySamples(records);
  return {
    ttftMs: latencyStats(s.ttftMs),
    itlMs: latencyStats(s.itlMs),
    e2eMs: latencyStats(s.e2eMs),
  };
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
