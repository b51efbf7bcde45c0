import { z } from 'zod';

/**
 * `extra.dispatch` of a run with an arrival schedule (the openai engine's open loop): how well
 * the client kept the schedule. `extra` is free-form in `RunResultSchema` (results written before
 * this existed have `extra.issueLagMs` instead and stay valid); this schema is what the producer
 * (`@llem/engines`) writes and what every reader (`@llem/measure`'s `client-saturated` warning,
 * `@llem/report`) parses, so they agree on one shape. Unknown keys are dropped when reading, so a
 * later version may add fields.
 */

const nonNegative = z.number().nonnegative();
const count = z.int().nonnegative();

/** p50/p95/p99/max of a list of waits, in ms. */
export const WaitStatsSchema = z.object({
  p50: nonNegative,
  p95: nonNegative,
  p99: nonNegative,
  max: nonNegative,
});
export type WaitStats = z.infer<typeof WaitStatsSchema>;

export const DispatchSummarySchema = z.object({
  /** Requests in the schedule, and how many were sent (fewer only when the run was cancelled). */
  scheduled: count,
  sent: count,
  /** The configured mean rate (req/s); `null` for a schedule that has none (a replayed trace). */
  targetRate: nonNegative.nullable(),
  /** The realised schedule's rate: (sent − 1) over the span of their scheduled times (req/s). */
  scheduledRate: nonNegative.nullable(),
  /**
   * With `max_concurrency`: the rate at which requests became ready to go, slot waits included;
   * the achieved rate is judged against it. `null` without a cap.
   */
  slotLimitedRate: nonNegative.nullable(),
  /** (sent − 1) over the span from the first send to the last (req/s): the drain is not in it. */
  achievedSendRate: nonNegative.nullable(),
  /** From the first send to the last (s). */
  sendSpanS: nonNegative.nullable(),
  /**
   * How late the client itself was: from when a request could go (its scheduled time, or the
   * moment a `max_concurrency` slot freed) to when the client began sending it.
   */
  clientLagMs: WaitStatsSchema.nullable(),
  /** Time waiting for a `max_concurrency` slot or for a new connection to open. */
  connectionWaitMs: WaitStatsSchema.nullable(),
  maxConcurrency: z.int().positive().nullable(),
  /** `openai.max_client_lag_ms` of the run: the `client-saturated` threshold on `clientLagMs.p99`. */
  maxClientLagMs: z.number().positive(),
  /** Connections the pool opened for the measured requests, and requests that reused one. */
  connections: z.object({ opened: count, reused: count }),
});
export type DispatchSummary = z.infer<typeof DispatchSummarySchema>;

/**
 * The achieved send rate below which a run is `client-saturated`, as a share of the rate its
 * realised schedule asked for (`slotLimitedRate` when set, else `scheduledRate`).
 */
export const MIN_SEND_RATE_SHARE = 0.95;

/**
 * `extra.dispatch` of a result when it holds a valid summary; `null` for runs without a schedule
 * and for results written before it existed.
 *
 * @example
 * readDispatchSummary(result.extra)?.clientLagMs?.p99; // 0.4
 */
export function readDispatchSummary(extra: Record<string, unknown>): DispatchSummary | null {
  const parsed = DispatchSummarySchema.safeParse(extra.dispatch);
  return parsed.success ? parsed.data : null;
}
