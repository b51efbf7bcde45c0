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

const ms = (v: number): string => v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0);
const perS = (v: number): string => Math.round(v).toLocaleString('en');

/**
 * Why a run's client could not keep its arrival schedule; empty when it kept it. The rule: the
 * p99 of its own lateness (`clientLagMs`: scheduled or slot-free time → send) is above
 * `maxClientLagMs` (`openai.max_client_lag_ms`, default 5), or it sent at under
 * {@link MIN_SEND_RATE_SHARE} of the rate the realised schedule asked for (`slotLimitedRate` with
 * `max_concurrency`, else `scheduledRate`). Waiting for a `max_concurrency` slot held by a slow
 * server is not the client's doing: that wait is `connectionWaitMs`, and the slot-limited rate
 * already allows for it. `@llem/measure` turns the reasons into the `client-saturated` warning;
 * `llem doctor --client-limit` uses them to find the highest rate a machine keeps.
 *
 * @example
 * clientSaturationReasons(summary); // ['it sent 3,900 req/s where the schedule asked for 10,013 req/s (39 %)']
 */
export function clientSaturationReasons(dispatch: DispatchSummary): string[] {
  const reasons: string[] = [];
  const lag = dispatch.clientLagMs;
  if (lag !== null && lag.p99 > dispatch.maxClientLagMs) {
    reasons.push(
      `it sent requests late (clientLagMs p99 ${ms(lag.p99)} ms, max ${ms(lag.max)} ms; openai.max_client_lag_ms ${dispatch.maxClientLagMs})`,
    );
  }
  const asked = dispatch.slotLimitedRate ?? dispatch.scheduledRate;
  const sent = dispatch.achievedSendRate;
  if (asked !== null && sent !== null && sent < MIN_SEND_RATE_SHARE * asked) {
    reasons.push(
      `it sent ${perS(sent)} req/s where the schedule asked for ${perS(asked)} req/s (${((sent / asked) * 100).toFixed(0)} %)`,
    );
  }
  return reasons;
}
