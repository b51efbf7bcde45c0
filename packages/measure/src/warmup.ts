import { coefficientOfVariation } from '@llem/domain';
import type { Engine, EngineRequest, RequestRecord } from '@llem/engines';

/** `warmup` in the experiment config. */
export interface WarmupConfig {
  /** Fixed number of warmup requests; with `cv_threshold`, the minimum. Default 0. */
  n?: number | undefined;
  /** Stop once the CV of the last `window` request latencies is below this (e.g. 0.05). */
  cv_threshold?: number | undefined;
  /** Latencies the CV is computed over. Default 3. */
  window?: number | undefined;
  /** Cap on warmup requests when converging. Default 20. */
  max_n?: number | undefined;
}

export interface WarmupOutcome {
  requests: number;
  /** CV of the last window, `null` when not computed. */
  finalCv: number | null;
  /** `true` when the CV criterion was met (always `true` for a fixed count). */
  converged: boolean;
  records: RequestRecord[];
}

/**
 * Warmup requests the config may run: `n`, or up to `max(n, max_n)` when converging by CV.
 *
 * @example
 * warmupRequestCount({ n: 2, cv_threshold: 0.05, max_n: 30 }); // 30
 */
export function warmupRequestCount(config: WarmupConfig = {}): number {
  const n = config.n ?? 0;
  return config.cv_threshold === undefined ? n : Math.max(n, config.max_n ?? 20);
}

/**
 * Unmeasured warmup. A fixed `n` runs n requests in one call. With `cv_threshold`, requests run
 * one at a time until the coefficient of variation of the last `window` end-to-end latencies is
 * below the threshold, at least `n` and at most `max_n`. `prompts` are the warmup requests
 * (`buildWarmupRequests`: never the measured prompts), cycled if there are fewer than needed.
 *
 * @example
 * await runWarmup(engine, warmupRequests, { n: 2, cv_threshold: 0.05, max_n: 30 });
 */
export async function runWarmup(
  engine: Engine,
  prompts: readonly EngineRequest[],
  config: WarmupConfig = {},
  signal?: AbortSignal,
): Promise<WarmupOutcome> {
  const n = config.n ?? 0;
  if (prompts.length === 0) return { requests: 0, finalCv: null, converged: true, records: [] };
  const pick = (i: number) => ({ ...(prompts[i % prompts.length] as EngineRequest), id: i });
  if (config.cv_threshold === undefined) {
    if (n === 0) return { requests: 0, finalCv: null, converged: true, records: [] };
    const records = await engine.warmup(Array.from({ length: n }, (_, i) => pick(i)));
    return { requests: n, finalCv: null, converged: true, records };
  }
  const window = Math.max(2, config.window ?? 3);
  const max = Math.max(n, config.max_n ?? 20);
  const records: RequestRecord[] = [];
  const latencies: number[] = [];
  let cv: number | null = null;
  for (let i = 0; i < max; i++) {
    signal?.throwIfAborted();
    const got = await engine.warmup([pick(i)]);
    // An engine that cannot warm up per request (the `command` engine) returns nothing.
    if (got.length === 0) return { requests: i, finalCv: null, converged: false, records };
    for (const r of got) {
      records.push(r);
      latencies.push(r.endedAt - r.startedAt);
    }
    if (i + 1 >= n && latencies.length >= window) {
      cv = coefficientOfVariation(latencies.slice(-window));
      if (cv !== null && cv < config.cv_threshold)
        return { requests: i + 1, finalCv: cv, converged: true, records };
    }
  }
  return { requests: max, finalCv: cv, converged: false, records };
}
