import { performance } from 'node:perf_hooks';
import { type DispatchSummary, percentile, type WaitStats } from '@llem/domain';

/**
 * The open-loop dispatcher: sends request i at its scheduled time whatever the server is doing,
 * and records how late the client itself was. It knows nothing about HTTP: it calls `send` for
 * each request and waits for the promise only to free a `maxConcurrency` slot and to know when
 * everything has drained. Poisson/gamma arrivals, trace replay and load sweeps all hand it a list
 * of send times.
 *
 * How it stays on time, and why it does not collapse past the client's limit:
 * - One pump, no timer per request. Each turn it sends every request that is due, then sleeps
 *   until the next one: a `setTimeout` for whole milliseconds (Node's timers have 1 ms
 *   granularity), `setImmediate` for the last fraction of a millisecond. It never sends early.
 * - It sends at most `batch` requests per turn, then yields with `setImmediate`, so the event
 *   loop reads the answers that have arrived (and returns their connections to the pool) before
 *   the next batch. Without that yield a client that fell behind sent its whole backlog in one
 *   synchronous burst: no response could be read meanwhile, every connection stayed busy, each
 *   request of the burst opened a new one (about one TCP connection per request at 10,000 req/s),
 *   connecting cost more CPU than the requests, so the client fell further behind and the next
 *   burst was larger — it collapsed to a fifth of the rate it sustains (see the engines README).
 *   With the yield, a client beyond its limit sends as fast as it can while still reading: the
 *   achieved rate stays at the limit and the lateness shows in `clientLagMs`.
 * - Open loop: nothing holds a request back except a `maxConcurrency` slot the user asked for.
 */

/** What the dispatcher tells `send` about one request (monotonic ms). */
export interface DispatchTicket {
  /** Position in the schedule (and the workload). */
  index: number;
  /** When the schedule said to send it. */
  scheduledAt: number;
  /**
   * When it could first go: `scheduledAt`, or later when it had to wait for a `maxConcurrency`
   * slot (the moment the slot freed). `readyAt − scheduledAt` is the slot wait.
   */
  readyAt: number;
  /** When the dispatcher handed it to `send` (the client began sending). */
  issuedAt: number;
}

export interface DispatchOptions {
  /** Cap on requests in flight; `null`/absent: none (open loop). */
  maxConcurrency?: number | null;
  /** Stops issuing; requests not yet issued are left out. `send` should honour it too. */
  signal?: AbortSignal;
  /** Most requests issued in one event-loop turn before yielding to I/O. Default 16. */
  batch?: number;
  /** Monotonic clock (ms). Default `performance.now`. */
  now?: () => number;
}

/** What happened to each request of the schedule; arrays are indexed by schedule position. */
export interface DispatchReport<T> {
  /** The clock reading the schedule's offsets count from. */
  startedAt: number;
  /** `send`'s resolved value per request; `undefined` where a request was never issued. */
  results: (T | undefined)[];
  scheduledAt: Float64Array;
  /** `NaN` where never issued. */
  readyAt: Float64Array;
  /** `NaN` where never issued. */
  issuedAt: Float64Array;
  /** How many were issued (all unless aborted). */
  issued: number;
  /** When the last `send` settled (the drain's end). */
  endedAt: number;
}

/** The longest delay `setTimeout` takes as given (2^31 − 1 ms, about 24.8 days). */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/**
 * Sends request `i` at `startedAt + offsetsMs[i]` (non-decreasing offsets) through `send`, never
 * early, at most `maxConcurrency` in flight when set, and resolves once every issued request has
 * settled. `send` must not throw synchronously and its promise should not reject (a rejection is
 * passed through after the drain).
 *
 * @example
 * const report = await dispatch(arrivalSchedule(100, { rate: 50 }), (t) => streamRequest(…), { signal });
 * report.issuedAt[7] - report.readyAt[7]; // how late the client was for request 7 (ms)
 */
export function dispatch<T>(
  offsetsMs: readonly number[],
  send: (ticket: DispatchTicket) => Promise<T>,
  options: DispatchOptions = {},
): Promise<DispatchReport<T>> {
  const n = offsetsMs.length;
  const now = options.now ?? (() => performance.now());
  const cap = options.maxConcurrency ?? Number.POSITIVE_INFINITY;
  const batch = Math.max(1, Math.floor(options.batch ?? 16));
  const signal = options.signal;
  for (let i = 1; i < n; i++) {
    if (!(offsetsMs[i]! >= offsetsMs[i - 1]!)) {
      throw new RangeError(`dispatch: send offsets must not decrease (offset ${i})`);
    }
  }
  if (!(cap >= 1)) throw new RangeError(`dispatch: maxConcurrency must be ≥ 1, got ${cap}`);

  const startedAt = now();
  const results: (T | undefined)[] = new Array(n);
  const scheduledAt = new Float64Array(n);
  const readyAt = new Float64Array(n).fill(Number.NaN);
  const issuedAt = new Float64Array(n).fill(Number.NaN);
  for (let i = 0; i < n; i++) scheduledAt[i] = startedAt + offsetsMs[i]!;

  return new Promise((resolve, reject) => {
    let next = 0;
    let inFlight = 0;
    let issued = 0;
    let failure: { error: unknown } | null = null;
    let timer: ReturnType<typeof setTimeout> | null = null;
    let immediate: ReturnType<typeof setImmediate> | null = null;
    /** Set while the next request waits for a slot: the moment one freed. */
    let blocked = false;
    let slotFreedAt = Number.NEGATIVE_INFINITY;
    let done = false;

    const finishIfDrained = (): void => {
      if (done || inFlight > 0) return;
      if (next < n && !signal?.aborted) return;
      done = true;
      signal?.removeEventListener('abort', onAbort);
      if (timer !== null) clearTimeout(timer);
      if (immediate !== null) clearImmediate(immediate);
      if (failure !== null) {
        reject(failure.error);
        return;
      }
      resolve({
        startedAt,
        results,
        scheduledAt,
        readyAt,
        issuedAt,
        issued,
        endedAt: now(),
      });
    };

    const settle = (index: number, value: T): void => {
      results[index] = value;
      inFlight--;
      if (blocked) {
        blocked = false;
        slotFreedAt = now();
        pump();
      }
      finishIfDrained();
    };

    const issue = (index: number, ready: number): void => {
      inFlight++;
      issued++;
      const at = now();
      readyAt[index] = ready;
      issuedAt[index] = at;
      let promise: Promise<T>;
      try {
        promise = send({ index, scheduledAt: scheduledAt[index]!, readyAt: ready, issuedAt: at });
      } catch (error) {
        promise = Promise.reject(error);
      }
      promise.then(
        (value) => settle(index, value),
        (error: unknown) => {
          failure ??= { error };
          settle(index, undefined as T);
        },
      );
    };

    const wake = (): void => {
      timer = null;
      immediate = null;
      pump();
    };

    /** Issues what is due (at most `batch`), then arranges the next wake-up. */
    const pump = (): void => {
      if (done || signal?.aborted) return;
      let sent = 0;
      while (next < n) {
        if (inFlight >= cap) {
          blocked = true;
          return; // a settling request calls pump again
        }
        const due = scheduledAt[next]!;
        const t = now();
        if (due > t) {
          sleepUntil(due - t);
          return;
        }
        // Waited for a slot that freed after it was due: it was ready when the slot freed.
        const ready = Math.max(slotFreedAt, due);
        slotFreedAt = Number.NEGATIVE_INFINITY;
        issue(next++, ready);
        if (++sent >= batch && next < n) {
          // Let the event loop read answers (and free connections) before the next batch.
          immediate = setImmediate(wake);
          return;
        }
      }
    };

    const sleepUntil = (waitMs: number): void => {
      if (timer !== null || immediate !== null) return;
      // setTimeout keeps whole milliseconds and may fire up to 1 ms early against this clock;
      // pump re-reads the clock and the last fraction of a millisecond goes through setImmediate,
      // which lets I/O run between checks.
      if (waitMs >= 1) timer = setTimeout(wake, Math.min(Math.floor(waitMs), MAX_TIMEOUT_MS));
      else immediate = setImmediate(wake);
    };

    const onAbort = (): void => {
      if (timer !== null) clearTimeout(timer);
      if (immediate !== null) clearImmediate(immediate);
      timer = null;
      immediate = null;
      finishIfDrained();
    };

    if (signal?.aborted) {
      queueMicrotask(onAbort);
      return;
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    if (n === 0) {
      finishIfDrained();
      return;
    }
    pump();
  });
}

/**
 * How a schedule was kept: the part of `@llem/domain`'s `DispatchSummary` (`extra.dispatch`, where
 * each field is documented) that the dispatcher alone knows; the engine adds its connections and
 * its `client-saturated` threshold.
 */
export type DispatchStats = Omit<DispatchSummary, 'connections' | 'maxClientLagMs'>;

/**
 * p50/p95/p99 (linear interpolation, as numpy) and max of a list; `null` when it is empty.
 *
 * @example
 * waitStats([0.1, 0.2, 5]); // { p50: 0.2, p95: 4.52, p99: 4.904, max: 5 }
 */
export function waitStats(values: ArrayLike<number>): WaitStats | null {
  const sorted = Array.from(values)
    .filter((v) => Number.isFinite(v))
    .sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  return {
    p50: percentile(sorted, 50) as number,
    p95: percentile(sorted, 95) as number,
    p99: percentile(sorted, 99) as number,
    max: sorted[sorted.length - 1] as number,
  };
}

/** Last minus first of `times` (ms), in any order; 0 for fewer than two. */
function spanMs(times: readonly number[]): number {
  if (times.length < 2) return 0;
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const t of times) {
    if (t < lo) lo = t;
    if (t > hi) hi = t;
  }
  return hi - lo;
}

/** (count − 1) events over the span of `times` (ms) in events per second; `null` below 2 events. */
function rateOver(times: readonly number[]): number | null {
  const span = spanMs(times);
  return span > 0 ? ((times.length - 1) * 1000) / span : null;
}

/**
 * The figures of {@link DispatchStats} from a dispatch report. `connectionWaitMs[i]`, when
 * given, is request i's wait for a new connection after it was issued (the slot wait is added
 * here); requests never issued are left out.
 *
 * @example
 * const stats = dispatchStats(report, { targetRate: 50, maxConcurrency: null });
 * stats.achievedSendRate / stats.scheduledRate; // ≈ 1 when the client kept up
 */
export function dispatchStats(
  report: Pick<DispatchReport<unknown>, 'scheduledAt' | 'readyAt' | 'issuedAt'>,
  options: {
    targetRate: number | null;
    maxConcurrency: number | null;
    connectionWaitMs?: ArrayLike<number>;
  },
): DispatchStats {
  const scheduled: number[] = [];
  const ready: number[] = [];
  const issued: number[] = [];
  const lag: number[] = [];
  const wait: number[] = [];
  for (let i = 0; i < report.issuedAt.length; i++) {
    const at = report.issuedAt[i]!;
    if (Number.isNaN(at)) continue;
    const s = report.scheduledAt[i]!;
    const r = report.readyAt[i]!;
    scheduled.push(s);
    ready.push(r);
    issued.push(at);
    lag.push(Math.max(0, at - r));
    wait.push(Math.max(0, r - s) + Math.max(0, options.connectionWaitMs?.[i] ?? 0));
  }
  const span = issued.length >= 2 ? spanMs(issued) / 1000 : null;
  return {
    scheduled: report.issuedAt.length,
    sent: issued.length,
    targetRate: options.targetRate,
    scheduledRate: rateOver(scheduled),
    slotLimitedRate: options.maxConcurrency === null ? null : rateOver(ready),
    achievedSendRate: rateOver(issued),
    sendSpanS: span,
    clientLagMs: waitStats(lag),
    connectionWaitMs: waitStats(wait),
    maxConcurrency: options.maxConcurrency,
  };
}
