import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { type Logger, noopLogger } from '@llem/resilience';

// How long one llem run may take: the timeout the CLI hands `@llem/study`'s runner (its
// `timeoutS` option). It lives here, beside the harness, because it reads llem's config (the
// workload, warmup, baseline): the runner itself knows no config.

/** The floor of a derived timeout: model loading alone can take a minute. */
export const TIMEOUT_FLOOR_S = 120;
/** The allowance per generated token: 10 tokens/s, slow for any engine worth measuring. */
export const TIMEOUT_PER_TOKEN_S = 0.1;
/**
 * Prompts assumed when the dataset size cannot be known: a `.jsonl` file the runner cannot read
 * (a warning then suggests `execution.timeout_s`).
 */
export const TIMEOUT_DEFAULT_PROMPTS = 100;

/** Where and how `runTimeoutS` looks at a `.jsonl` dataset. */
export interface TimeoutContext {
  /** Where a relative dataset path resolves (the worker's working directory). Default `process.cwd()`. */
  cwd?: string;
  /** Warned when a dataset file cannot be read. Default `noopLogger`. */
  logger?: Logger;
  /**
   * Prompt counts by absolute path (`null`: unreadable), filled as files are read, so a study
   * reads each file once and warns once. Default: a fresh map per call.
   */
  promptCounts?: Map<string, number | null>;
}

/**
 * The run timeout in seconds: `execution.timeout_s` when set, else derived from the workload as
 * `120 + (prompts + warmup prompts) × max_output_tokens × 0.1 + baseline duration`, plus a managed
 * server's `ready.timeout_s + stop_grace_s`. A sweep (`openai.load: sweep`) counts its prompts
 * once per point (`openai.sweep_points`). Prompts come
 * from `dataset.synthetic.n`, or the non-empty lines of a `.jsonl` dataset (resolved against
 * `context.cwd`; 100 with a warning when it cannot be read). Warmup prompts are `warmup.max_n`
 * when `warmup.cv_threshold` is set (warmup may run that long), else `warmup.n`.
 * `max_output_tokens` defaults to 256. Generous on purpose: a timeout guards against hangs, it
 * does not judge speed.
 *
 * @example
 * runTimeoutS({}, { max_output_tokens: 32, dataset: { synthetic: { n: 10 } } }); // 152
 * runTimeoutS({}, { max_output_tokens: 10, dataset: 'prompts.jsonl' }, { cwd: 'studies' });
 */
export function runTimeoutS(
  execution: { timeout_s?: number | null | undefined },
  config: unknown,
  context: TimeoutContext = {},
): number {
  if (typeof execution.timeout_s === 'number' && execution.timeout_s > 0)
    return execution.timeout_s;
  const c = (typeof config === 'object' && config !== null ? config : {}) as {
    max_output_tokens?: unknown;
    dataset?: unknown;
    warmup?: unknown;
    baseline?: unknown;
    server?: unknown;
    openai?: unknown;
  };
  const num = (v: unknown, d: number): number => (typeof v === 'number' && v >= 0 ? v : d);
  const warmup = c.warmup as { n?: unknown; max_n?: unknown; cv_threshold?: unknown } | undefined;
  const baseline = c.baseline as { enabled?: unknown; duration_s?: unknown } | undefined;
  // A sweep runs the whole workload once per load point.
  const prompts = datasetPrompts(c.dataset, context) * sweepPoints(c.openai);
  const warmN = num(warmup?.n, 0);
  const warm = typeof warmup?.cv_threshold === 'number' ? num(warmup.max_n, warmN) : warmN;
  const tokens = num(c.max_output_tokens, 256);
  const idle = baseline?.enabled === false ? 0 : num(baseline?.duration_s, 0);
  return Math.ceil(
    TIMEOUT_FLOOR_S + (prompts + warm) * tokens * TIMEOUT_PER_TOKEN_S + idle + serverS(c.server),
  );
}

/** `openai.sweep_points` of a sweep (8 when not given), else 1. */
function sweepPoints(openai: unknown): number {
  const o = (typeof openai === 'object' && openai !== null ? openai : {}) as {
    load?: unknown;
    sweep_points?: unknown;
  };
  if (o.load !== 'sweep') return 1;
  return typeof o.sweep_points === 'number' && o.sweep_points > 0 ? o.sweep_points : 8;
}

/**
 * A managed server's share of the run timeout: it may take `ready.timeout_s` to get ready and
 * `stop_grace_s` to stop (600 and 30 when not given).
 */
function serverS(server: unknown): number {
  if (typeof server !== 'object' || server === null) return 0;
  const s = server as { ready?: { timeout_s?: unknown }; stop_grace_s?: unknown };
  const n = (v: unknown, d: number): number => (typeof v === 'number' && v >= 0 ? v : d);
  return n(s.ready?.timeout_s, 600) + n(s.stop_grace_s, 30);
}

function datasetPrompts(dataset: unknown, context: TimeoutContext): number {
  const d = dataset as { synthetic?: { n?: unknown }; path?: unknown } | string | undefined;
  if (typeof d === 'object' && d !== null && typeof d.synthetic?.n === 'number') {
    return Math.max(0, d.synthetic.n);
  }
  const file = typeof d === 'string' ? d : typeof d?.path === 'string' ? d.path : null;
  if (file === null || file === '') return TIMEOUT_DEFAULT_PROMPTS;
  const path = resolve(context.cwd ?? process.cwd(), file);
  const counts = context.promptCounts ?? new Map<string, number | null>();
  if (!counts.has(path)) {
    try {
      // One prompt per non-empty line, as the measurement reads it.
      const lines = readFileSync(path, 'utf8').split('\n');
      counts.set(path, lines.filter((l) => l.trim() !== '').length);
    } catch (error) {
      counts.set(path, null);
      (context.logger ?? noopLogger).warn(
        `cannot count the prompts in ${path} (${(error as Error).message}): the run timeout ` +
          `assumes ${TIMEOUT_DEFAULT_PROMPTS}; set execution.timeout_s if a run needs longer`,
      );
    }
  }
  return counts.get(path) ?? TIMEOUT_DEFAULT_PROMPTS;
}
