/** The execution fields the runner reads (snake_case, as in the study file). */
export interface ExecutionSettings {
  cycles?: number;
  experiment_gap_s?: number | null;
  cycle_gap_s?: number | null;
  timeout_s?: number | null;
  residual_memory_threshold_mb?: number | null;
}

/** The floor of a derived timeout: model loading alone can take a minute. */
export const TIMEOUT_FLOOR_S = 120;
/** The allowance per generated token: 10 tokens/s, slow for any engine worth measuring. */
export const TIMEOUT_PER_TOKEN_S = 0.1;
/** Prompts assumed when the dataset size is not known from the config (a `.jsonl` file). */
export const TIMEOUT_DEFAULT_PROMPTS = 100;

/**
 * The run timeout in seconds: `execution.timeout_s` when set, else derived from the workload as
 * `120 + (prompts + warmup prompts) × max_output_tokens × 0.1 + baseline duration`. Prompts come
 * from `dataset.synthetic.n` (100 when the dataset is a file); `max_output_tokens` defaults to
 * 256. Generous on purpose: a timeout guards against hangs, it does not judge speed.
 *
 * @example
 * runTimeoutS({}, { max_output_tokens: 32, dataset: { synthetic: { n: 10 } } }); // 152
 */
export function runTimeoutS(execution: ExecutionSettings, config: unknown): number {
  if (typeof execution.timeout_s === 'number' && execution.timeout_s > 0)
    return execution.timeout_s;
  const c = (typeof config === 'object' && config !== null ? config : {}) as {
    max_output_tokens?: unknown;
    dataset?: { synthetic?: { n?: unknown } } | unknown;
    warmup?: { n?: unknown } | unknown;
    baseline?: { enabled?: unknown; duration_s?: unknown } | unknown;
  };
  const num = (v: unknown, d: number): number => (typeof v === 'number' && v >= 0 ? v : d);
  const dataset = c.dataset as { synthetic?: { n?: unknown } } | undefined;
  const warmup = c.warmup as { n?: unknown } | undefined;
  const baseline = c.baseline as { enabled?: unknown; duration_s?: unknown } | undefined;
  const prompts = num(dataset?.synthetic?.n, TIMEOUT_DEFAULT_PROMPTS);
  const warm = num(warmup?.n, 0);
  const tokens = num(c.max_output_tokens, 256);
  const idle = baseline?.enabled === false ? 0 : num(baseline?.duration_s, 0);
  return Math.ceil(TIMEOUT_FLOOR_S + (prompts + warm) * tokens * TIMEOUT_PER_TOKEN_S + idle);
}
