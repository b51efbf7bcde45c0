/** Time as the runner sees it; inject a fake one in tests. */
export interface Clock {
  /** Monotonic milliseconds, for intervals. */
  now(): number;
  /** Wall-clock time, for timestamps. */
  date(): Date;
}

/** Waits `ms`; resolves early (never rejects) when `signal` aborts. */
export type SleepFn = (ms: number, signal?: AbortSignal) => Promise<void>;

export const systemClock: Clock = {
  now: () => performance.now(),
  date: () => new Date(),
};

export const systemSleep: SleepFn = (ms, signal) =>
  new Promise((resolve) => {
    if (signal?.aborted) {
      resolve();
      return;
    }
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
