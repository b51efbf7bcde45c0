import type { RequestRecord } from '../engine';
import { requestTpotMs } from '../request';
import type { OpenAILoadMode } from './config';

/**
 * The steady-state part of a run, as monotonic ms on the same clock as the records and the
 * harness's energy window, so the harness can integrate power over it.
 */
export interface SteadyStateWindow {
  startMs: number;
  endMs: number;
  durationS: number;
  /**
   * `target-concurrency`: from the first moment the target number of requests was in flight to
   * the last moment it dropped below it (closed loop; open loop with a reached `max_concurrency`).
   * `arrivals`: open loop without a reached cap, from the first completion (the system is
   * occupied) to the last arrival (after it, load only drains).
   */
  rule: 'target-concurrency' | 'arrivals';
  targetConcurrency: number | null;
  /** Output tokens whose arrival time lies inside the window (timestamped tokens). */
  outputTokens: number;
  /** Ids of the requests that started and ended inside the window. */
  requestIds: number[];
  /** Requests (any outcome) that started and ended inside the window. */
  requests: number;
}

/** Either a window or the reason there is none. */
export type SteadyStateResult = SteadyStateWindow | { unavailable: string };

/**
 * Finds the steady-state window from the records alone: the in-flight count at time t is the
 * number of requests with `startedAt ≤ t < endedAt`.
 *
 * @example
 * steadyStateWindow(records, { kind: 'concurrency', concurrency: 8 });
 */
export function steadyStateWindow(
  records: readonly RequestRecord[],
  mode: OpenAILoadMode,
): SteadyStateResult {
  if (records.length === 0) return { unavailable: 'no requests were issued' };
  const target = mode.kind === 'concurrency' ? mode.concurrency : mode.maxConcurrency;
  let window: { start: number; end: number; rule: SteadyStateWindow['rule'] } | null = null;
  if (target !== null) {
    const found = targetWindow(records, target);
    if (found !== null) window = { ...found, rule: 'target-concurrency' };
    else if (mode.kind === 'concurrency') {
      return {
        unavailable: `the target concurrency ${target} was never reached (${records.length} requests)`,
      };
    }
  }
  if (window === null) {
    let firstEnd = Number.POSITIVE_INFINITY;
    let lastStart = Number.NEGATIVE_INFINITY;
    for (const r of records) {
      if (r.endedAt < firstEnd) firstEnd = r.endedAt;
      if (r.startedAt > lastStart) lastStart = r.startedAt;
    }
    window = { start: firstEnd, end: lastStart, rule: 'arrivals' };
  }
  if (!(window.end > window.start)) {
    return {
      unavailable:
        window.rule === 'arrivals'
          ? 'the last arrival came before the first completion (too few requests for the rate)'
          : 'the target concurrency was held for no measurable time',
    };
  }
  return summarise(records, window.start, window.end, window.rule, target);
}

function targetWindow(
  records: readonly RequestRecord[],
  target: number,
): { start: number; end: number } | null {
  // +1 at each start, -1 at each end; at equal times ends go first so a worker that finishes
  // and immediately re-issues does not count as target+1.
  const events: Array<[number, number]> = [];
  for (const r of records) {
    events.push([r.startedAt, 1], [r.endedAt, -1]);
  }
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let inFlight = 0;
  let start: number | null = null;
  let end: number | null = null;
  for (const [t, delta] of events) {
    const before = inFlight;
    inFlight += delta;
    if (before < target && inFlight >= target && start === null) start = t;
    if (before >= target && inFlight < target && start !== null) end = t;
  }
  return start !== null && end !== null ? { start, end } : null;
}

function summarise(
  records: readonly RequestRecord[],
  start: number,
  end: number,
  rule: SteadyStateWindow['rule'],
  target: number | null,
): SteadyStateWindow {
  let outputTokens = 0;
  const requestIds: number[] = [];
  for (const r of records) {
    if (r.firstTokenAt !== null && r.firstTokenAt >= start && r.firstTokenAt <= end) {
      outputTokens++;
    }
    for (const t of r.tokenTimes) if (t >= start && t <= end) outputTokens++;
    if (r.startedAt >= start && r.endedAt <= end) requestIds.push(r.id);
  }
  return {
    startMs: start,
    endMs: end,
    durationS: (end - start) / 1000,
    rule,
    targetConcurrency: target,
    outputTokens,
    requestIds,
    requests: requestIds.length,
  };
}

/** Goodput: the share of requests that succeeded and met every SLO that is set. */
export interface Goodput {
  slo: {
    ttftMs: number | null;
    itlMs: number | null;
    e2eMs: number | null;
    /** Absent in configs resolved before TPOT targets existed: no target. */
    tpotMs?: number | null;
  };
  met: number;
  total: number;
  /** `met / total`; `null` when no request was issued. */
  share: number | null;
  /** Requests meeting the SLOs per second of the whole run. */
  requestsPerS: number | null;
}

/**
 * Counts the requests meeting the SLOs. ITL is judged on the request's mean inter-token latency
 * (time per output token after the first, as vLLM's goodput does): a single slow gap should not
 * fail a request whose stream as a whole kept pace. TPOT is the request's (E2E − TTFT) / (output
 * tokens − 1) (`requestTpotMs`). A request with fewer than two tokens has no ITL or TPOT and
 * passes those criteria.
 *
 * @example
 * goodput(records, { ttftMs: 200, itlMs: 50, e2eMs: null }, 12.5);
 */
export function goodput(
  records: readonly RequestRecord[],
  slo: Goodput['slo'],
  durationS: number | null,
): Goodput {
  let met = 0;
  for (const r of records) {
    if (r.error !== undefined || r.firstTokenAt === null) continue;
    if (slo.ttftMs !== null && r.firstTokenAt - r.startedAt > slo.ttftMs) continue;
    if (slo.e2eMs !== null && r.endedAt - r.startedAt > slo.e2eMs) continue;
    if (slo.itlMs !== null && r.tokenTimes.length > 0) {
      const last = r.tokenTimes[r.tokenTimes.length - 1]!;
      const meanItl = (last - r.firstTokenAt) / r.tokenTimes.length;
      if (meanItl > slo.itlMs) continue;
    }
    if (slo.tpotMs != null) {
      const tpot = requestTpotMs(r);
      if (tpot !== null && tpot > slo.tpotMs) continue;
    }
    met++;
  }
  const total = records.length;
  return {
    slo,
    met,
    total,
    share: total === 0 ? null : met / total,
    requestsPerS: durationS !== null && durationS > 0 ? met / durationS : null,
  };
}

/** Counts failed requests by `error.type`. */
export function errorsByType(records: readonly RequestRecord[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of records) {
    if (r.error !== undefined) counts[r.error.type] = (counts[r.error.type] ?? 0) + 1;
  }
  return counts;
}

/** The server's own timings over a run (llama-server's `timings`), summed and averaged. */
export interface ServerTimingsSummary {
  /** Successful requests that carried timings. */
  requests: number;
  promptTokens: number;
  /** Prompt tokens the server found in its prompt cache. */
  cachedPromptTokens: number;
  /** Mean prompt-evaluation time per request (ms). */
  promptMsMean: number | null;
  predictedTokens: number;
  /** Mean generation time per request (ms). */
  predictedMsMean: number | null;
  /** Generation time per generated token, as llama-server computes it (Σ predicted_ms ÷ Σ predicted_n). */
  predictedPerTokenMs: number | null;
}

/**
 * Sums the server-reported timings of the successful requests; `null` when none carried any
 * (every server but llama-server).
 *
 * @example
 * serverTimingsSummary(records)?.predictedPerTokenMs; // e.g. 21.7
 */
export function serverTimingsSummary(
  records: readonly RequestRecord[],
): ServerTimingsSummary | null {
  let requests = 0;
  let promptTokens = 0;
  let cached = 0;
  let promptMs = 0;
  let promptTimed = 0;
  let predictedTokens = 0;
  let predictedMs = 0;
  let predictedTimed = 0;
  let perTokenMs = 0;
  let perTokenN = 0;
  for (const r of records) {
    const t = r.serverTimings;
    if (r.error !== undefined || t === undefined) continue;
    requests++;
    promptTokens += t.promptN ?? 0;
    cached += t.cacheN ?? 0;
    predictedTokens += t.predictedN ?? 0;
    if (t.promptMs !== null) {
      promptMs += t.promptMs;
      promptTimed++;
    }
    if (t.predictedMs !== null) {
      predictedMs += t.predictedMs;
      predictedTimed++;
      if (t.predictedN !== null && t.predictedN > 0) {
        perTokenMs += t.predictedMs;
        perTokenN += t.predictedN;
      }
    }
  }
  if (requests === 0) return null;
  return {
    requests,
    promptTokens,
    cachedPromptTokens: cached,
    promptMsMean: promptTimed > 0 ? promptMs / promptTimed : null,
    predictedTokens,
    predictedMsMean: predictedTimed > 0 ? predictedMs / predictedTimed : null,
    predictedPerTokenMs: perTokenN > 0 ? perTokenMs / perTokenN : null,
  };
}
