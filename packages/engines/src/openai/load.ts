import { performance } from 'node:perf_hooks';
import { arrivalSchedule } from './arrivals';
import type { ResolvedOpenAIConfig } from './config';
import type { StreamedRecord } from './stream';

/** Sends request `index` of the workload and resolves with its record (never rejects). */
export type SendFn = (index: number) => Promise<StreamedRecord>;

export interface LoadResult {
  /** One record per request issued, in workload order; requests never issued are absent. */
  records: StreamedRecord[];
  /** Open loop only: how late each request left versus its scheduled arrival (ms). */
  issueLagMs: number[];
}

/**
 * Closed loop: `concurrency` workers, each sending the next request as soon as its previous one
 * ends, so exactly `concurrency` are in flight until the queue runs dry.
 */
async function closedLoop(n: number, concurrency: number, send: SendFn, signal: AbortSignal) {
  const records: (StreamedRecord | undefined)[] = new Array(n);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n && !signal.aborted) {
      const index = next++;
      records[index] = await send(index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return records;
}

/**
 * Open loop: request i leaves at `offsets[i]` ms after the start whatever the server is doing,
 * which is what a real user population does. With `maxConcurrency`, arrivals wait for a free
 * slot and the wait shows up in `issueLagMs`; `startedAt` is when the request actually left.
 */
async function openLoop(
  offsets: readonly number[],
  maxConcurrency: number | null,
  send: SendFn,
  signal: AbortSignal,
) {
  const n = offsets.length;
  const records: (StreamedRecord | undefined)[] = new Array(n);
  const issueLagMs: number[] = [];
  const pending: Promise<void>[] = [];
  const cap = maxConcurrency ?? Number.POSITIVE_INFINITY;
  let inFlight = 0;
  const waiters: (() => void)[] = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    if (signal.aborted) break;
    const due = t0 + offsets[i]!;
    // Node's timers keep whole-millisecond time, so one can fire up to ~1 ms before the
    // fractional due time: re-read the clock after each wake and sleep again if it is early.
    // An arrival due within 1 ms goes out in this tick. A wait past setTimeout's 2^31−1 ms
    // range would become a 1 ms timer (and a warning per wake), so it is slept in pieces.
    for (let wait = due - performance.now(); wait > 1 && !signal.aborted; ) {
      await delay(Math.min(wait, MAX_TIMEOUT_MS), signal);
      wait = due - performance.now();
    }
    while (inFlight >= cap && !signal.aborted) {
      await new Promise<void>((resolve) => waiters.push(resolve));
    }
    if (signal.aborted) break;
    issueLagMs.push(Math.max(0, performance.now() - due));
    inFlight++;
    const index = i;
    pending.push(
      send(index).then((record) => {
        records[index] = record;
        inFlight--;
        waiters.shift()?.();
      }),
    );
  }
  await Promise.all(pending);
  return { records, issueLagMs };
}

/** The longest delay `setTimeout` takes as given (2^31 − 1 ms, about 24.8 days). */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * Drives `n` requests under the configured load mode and collects their records. A `schedule`
 * (a trace's send times, ms from the start, one per request) replaces the mode's arrivals: each
 * request leaves at its time through the open loop (`max_concurrency` does not apply: a trace
 * leaves `request_rate` unset).
 *
 * @example
 * const { records } = await runLoad(32, { kind: 'concurrency', concurrency: 4 }, send, signal);
 */
export async function runLoad(
  n: number,
  mode: ResolvedOpenAIConfig['mode'],
  send: SendFn,
  signal: AbortSignal,
  schedule: readonly number[] | null = null,
): Promise<LoadResult> {
  if (schedule !== null) {
    const { records, issueLagMs } = await openLoop(schedule.slice(0, n), null, send, signal);
    return { records: records.filter(isRecord), issueLagMs };
  }
  if (mode.kind === 'concurrency') {
    const records = await closedLoop(n, mode.concurrency, send, signal);
    return { records: records.filter(isRecord), issueLagMs: [] };
  }
  const offsets = arrivalSchedule(n, {
    rate: mode.requestRate,
    burstiness: mode.burstiness,
    seed: mode.arrivalSeed,
  });
  const { records, issueLagMs } = await openLoop(offsets, mode.maxConcurrency, send, signal);
  return { records: records.filter(isRecord), issueLagMs };
}

function isRecord(value: StreamedRecord | undefined): value is StreamedRecord {
  return value !== undefined;
}
