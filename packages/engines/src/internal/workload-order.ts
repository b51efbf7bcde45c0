import type { EngineRequest } from '../engine';

// What every engine honours of a workload's order, in one place: a trace's send times and a
// conversation's turn order (`EngineRequest.sendAtMs`, `EngineRequest.after`).

/**
 * The requests' send times (ms after the workload starts, in request order), or `null` when they
 * carry none. Requests either all carry one or none does, in ascending order: a workload that
 * mixes them is a bug in whatever built it.
 *
 * @example
 * sendTimes([{ id: 0, prompt: 'a', maxOutputTokens: 1, sendAtMs: 0 }]); // [0]
 */
export function sendTimes(requests: readonly EngineRequest[]): number[] | null {
  const timed = requests.filter((r) => r.sendAtMs !== undefined).length;
  if (timed === 0) return null;
  if (timed !== requests.length)
    throw new RangeError(
      `${timed} of ${requests.length} requests carry sendAtMs: a trace gives every request its send time`,
    );
  const times = requests.map((r) => r.sendAtMs as number);
  for (let i = 0; i < times.length; i++) {
    const t = times[i] as number;
    if (!(Number.isFinite(t) && t >= 0) || (i > 0 && t < (times[i - 1] as number)))
      throw new RangeError(
        `request ${requests[i]?.id}: sendAtMs must be finite, ≥ 0 and ascending (got ${t} after ${times[i - 1] ?? 'the start'})`,
      );
  }
  return times;
}

/**
 * Wraps `send` so that a request naming an earlier one in `after` (the previous turn of its
 * conversation) is sent only once that one has ended, whichever worker or slot picks it up. The
 * predecessor comes earlier in the list, so whoever waits never holds up what it waits for. An
 * `after` naming no request of the list is ignored; an abort ends every wait.
 *
 * @example
 * const ordered = inTurnOrder(requests, (index) => sendOne(index), signal);
 */
export function inTurnOrder<R, A extends unknown[]>(
  requests: readonly EngineRequest[],
  send: (index: number, ...rest: A) => Promise<R>,
  signal: AbortSignal,
): (index: number, ...rest: A) => Promise<R> {
  if (!requests.some((r) => r.after !== undefined)) return send;
  const ended = new Map<number, { promise: Promise<void>; resolve: () => void }>();
  for (const r of requests) {
    let resolve!: () => void;
    const promise = new Promise<void>((res) => {
      resolve = res;
    });
    ended.set(r.id, { promise, resolve });
  }
  const aborted = new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
  return async (index, ...rest) => {
    const request = requests[index] as EngineRequest;
    const before = request.after === undefined ? undefined : ended.get(request.after);
    if (before) await Promise.race([before.promise, aborted]);
    try {
      return await send(index, ...rest);
    } finally {
      ended.get(request.id)?.resolve();
    }
  };
}
