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
 * settled. `send`'s promise should not reject: a rejection (or a synchronous throw) is passed
 * through once the others have drained. Throws `RangeError` for decreasing offsets or a cap below 1.
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
  for (let i = 1; i < offsetsMs.length; i++) {
    if (!(offsetsMs[i]! >= offsetsMs[i - 1]!)) {
      throw new RangeError(`dispatch: send offsets must not decrease (offset ${i})`);
    }
  }
  const cap = options.maxConcurrency ?? Number.POSITIVE_INFINITY;
  if (!(cap >= 1)) throw new RangeError(`dispatch: maxConcurrency must be ≥ 1, got ${cap}`);
  return new Promise((resolve, reject) => {
    new Dispatcher(offsetsMs, send, options, cap, resolve, reject).start();
  });
}

/**
 * The state of one `dispatch` call. Its methods run from timers, immediates and settling
 * requests; each reads the state it needs and leaves it consistent.
 */
class Dispatcher<T> {
  readonly #send: (ticket: DispatchTicket) => Promise<T>;
  readonly #now: () => number;
  readonly #cap: number;
  readonly #batch: number;
  readonly #signal: AbortSignal | undefined;
  readonly #resolve: (report: DispatchReport<T>) => void;
  readonly #reject: (error: unknown) => void;
  readonly #n: number;
  readonly #startedAt: number;
  readonly #results: (T | undefined)[];
  readonly #scheduledAt: Float64Array;
  readonly #readyAt: Float64Array;
  readonly #issuedAt: Float64Array;
  #next = 0;
  #inFlight = 0;
  #issued = 0;
  #failure: { error: unknown } | null = null;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #immediate: ReturnType<typeof setImmediate> | null = null;
  /** The next request waits for a slot: a settling request wakes the pump. */
  #blocked = false;
  /** When the slot the next request waited for freed (−∞ when it did not wait). */
  #slotFreedAt = Number.NEGATIVE_INFINITY;
  #done = false;

  constructor(
    offsetsMs: readonly number[],
    send: (ticket: DispatchTicket) => Promise<T>,
    options: DispatchOptions,
    cap: number,
    resolve: (report: DispatchReport<T>) => void,
    reject: (error: unknown) => void,
  ) {
    this.#send = send;
    this.#now = options.now ?? (() => performance.now());
    this.#cap = cap;
    this.#batch = Math.max(1, Math.floor(options.batch ?? 16));
    this.#signal = options.signal;
    this.#resolve = resolve;
    this.#reject = reject;
    this.#n = offsetsMs.length;
    this.#startedAt = this.#now();
    this.#results = new Array(this.#n);
    this.#scheduledAt = new Float64Array(this.#n);
    this.#readyAt = new Float64Array(this.#n).fill(Number.NaN);
    this.#issuedAt = new Float64Array(this.#n).fill(Number.NaN);
    for (let i = 0; i < this.#n; i++) this.#scheduledAt[i] = this.#startedAt + offsetsMs[i]!;
  }

  start(): void {
    if (this.#signal?.aborted) {
      queueMicrotask(this.#onAbort);
      return;
    }
    this.#signal?.addEventListener('abort', this.#onAbort, { once: true });
    if (this.#n === 0) this.#finishIfDrained();
    else this.#pump();
  }

  /** Issues what is due (at most `batch`), then arranges the next wake-up. */
  #pump(): void {
    if (this.#done || this.#signal?.aborted) return;
    let sent = 0;
    while (this.#next < this.#n) {
      if (this.#inFlight >= this.#cap) {
        this.#blocked = true;
        return;
      }
      const due = this.#scheduledAt[this.#next]!;
      const t = this.#now();
      if (due > t) {
        this.#sleep(due - t);
        return;
      }
      // Waited for a slot that freed after it was due: it was ready when the slot freed.
      const ready = Math.max(this.#slotFreedAt, due);
      this.#slotFreedAt = Number.NEGATIVE_INFINITY;
      this.#issue(this.#next++, ready);
      if (++sent >= this.#batch && this.#next < this.#n) {
        // Let the event loop read answers (and free connections) before the next batch.
        this.#immediate = setImmediate(this.#wake);
        return;
      }
    }
  }

  #sleep(waitMs: number): void {
    if (this.#timer !== null || this.#immediate !== null) return;
    // setTimeout keeps whole milliseconds and may fire up to 1 ms early against this clock;
    // the pump re-reads the clock, and the last fraction of a millisecond goes through
    // setImmediate, which lets I/O run between checks (no busy-wait).
    if (waitMs >= 1) {
      this.#timer = setTimeout(this.#wake, Math.min(Math.floor(waitMs), MAX_TIMEOUT_MS));
    } else {
      this.#immediate = setImmediate(this.#wake);
    }
  }

  #wake = (): void => {
    this.#timer = null;
    this.#immediate = null;
    this.#pump();
  };

  #issue(index: number, ready: number): void {
    this.#inFlight++;
    this.#issued++;
    const at = this.#now();
    this.#readyAt[index] = ready;
    this.#issuedAt[index] = at;
    const ticket = { index, scheduledAt: this.#scheduledAt[index]!, readyAt: ready, issuedAt: at };
    let promise: Promise<T>;
    try {
      promise = this.#send(ticket);
    } catch (error) {
      promise = Promise.reject(error);
    }
    promise.then(
      (value) => this.#settle(index, value),
      (error: unknown) => {
        this.#failure ??= { error };
        this.#settle(index, undefined);
      },
    );
  }

  #settle(index: number, value: T | undefined): void {
    this.#results[index] = value;
    this.#inFlight--;
    if (this.#blocked) {
      // The request waiting for this slot goes now, in this callback.
      this.#blocked = false;
      this.#slotFreedAt = this.#now();
      this.#pump();
    }
    this.#finishIfDrained();
  }

  #onAbort = (): void => {
    if (this.#timer !== null) clearTimeout(this.#timer);
    if (this.#immediate !== null) clearImmediate(this.#immediate);
    this.#timer = null;
    this.#immediate = null;
    this.#finishIfDrained();
  };

  #finishIfDrained(): void {
    if (this.#done || this.#inFlight > 0) return;
    if (this.#next < this.#n && !this.#signal?.aborted) return;
    this.#done = true;
    this.#signal?.removeEventListener('abort', this.#onAbort);
    if (this.#timer !== null) clearTimeout(this.#timer);
    if (this.#immediate !== null) clearImmediate(this.#immediate);
    if (this.#failure !== null) {
      this.#reject(this.#failure.error);
      return;
    }
    this.#resolve({
      startedAt: this.#startedAt,
      results: this.#results,
      scheduledAt: this.#scheduledAt,
      readyAt: this.#readyAt,
      issuedAt: this.#issuedAt,
      issued: this.#issued,
      endedAt: this.#now(),
    });
  }
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
