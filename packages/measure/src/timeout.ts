import { resolve } from 'node:path';
import { canonicalJson } from '@llem/domain';
import { type Logger, noopLogger } from '@llem/resilience';
import { type DatasetConfig, datasetSize } from './dataset';

// How long one llem run may take: the timeout the CLI hands `@llem/study`'s runner (its
// `timeoutS` option). It lives here, beside the harness, because it reads llem's config (the
// workload, warmup, baseline): the runner itself knows no config.

/** The floor of a derived timeout: model loading alone can take a minute. */
export const TIMEOUT_FLOOR_S = 120;
/** The allowance per generated token: 10 tokens/s, slow for any engine worth measuring. */
export const TIMEOUT_PER_TOKEN_S = 0.1;
/**
 * Requests assumed when the dataset size cannot be known: a file the runner cannot read or use
 * (a warning then suggests `execution.timeout_s`).
 */
export const TIMEOUT_DEFAULT_PROMPTS = 100;

/** Where and how `runTimeoutS` looks at a dataset file. */
export interface TimeoutContext {
  /** Where a relative dataset path resolves (the worker's working directory). Default `process.cwd()`. */
  cwd?: string;
  /** Warned when a dataset file cannot be read. Default `noopLogger`. */
  logger?: Logger;
  /**
   * Dataset sizes by file and settings (`null`: unreadable), filled as files are read, so a study
   * reads each dataset once and warns once. Default: a fresh map per call.
   */
  datasetSizes?: Map<string, DatasetSize | null>;
}

/** What the timeout needs of a dataset: its requests and a trace's span. */
export interface DatasetSize {
  requests: number;
  durationS: number | null;
}

/**
 * The run timeout in seconds: `execution.timeout_s` when set, else derived from the workload as
 * `120 + (requests + warmup prompts) × max_output_tokens × 0.1 + baseline duration + a trace's
 * span + server.ready.timeout_s + server.stop_grace_s` (the last two with a managed server).
 * Requests: `n` (× `turns`) of a synthetic dataset; of a file, its rows, a trace's lines, or a ShareGPT file's `n` (else its usable entries), read once per dataset through
 * `context.datasetSizes` (100 with a warning when the file cannot be read or used). A trace's
 * requests are sent over its span (last timestamp × `time_scale`), which is added whole. Warmup
 * prompts are `warmup.max_n` when `warmup.cv_threshold` is set (warmup may run that long), else
 * `warmup.n`. `max_output_tokens` defaults to 256. Generous on purpose: a timeout guards against
 * hangs, it does not judge speed.
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
  const size = sizeOf(c.dataset, context);
  // A sweep runs the whole workload once per load point.
  const points = sweepPoints(c.openai);
  const warmN = num(warmup?.n, 0);
  const warm = typeof warmup?.cv_threshold === 'number' ? num(warmup.max_n, warmN) : warmN;
  const tokens = num(c.max_output_tokens, 256);
  const idle = baseline?.enabled === false ? 0 : num(baseline?.duration_s, 0);
  return Math.ceil(
    TIMEOUT_FLOOR_S +
      (size.requests * points + warm) * tokens * TIMEOUT_PER_TOKEN_S +
      idle +
      (size.durationS ?? 0) * points +
      serverS(c.server),
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

function sizeOf(dataset: unknown, context: TimeoutContext): DatasetSize {
  const d = dataset as
    | { synthetic?: { n?: unknown; turns?: unknown }; path?: unknown }
    | string
    | undefined;
  if (typeof d === 'object' && d !== null && typeof d.synthetic?.n === 'number') {
    const turns = typeof d.synthetic.turns === 'number' ? d.synthetic.turns : 1;
    return { requests: Math.max(0, d.synthetic.n) * Math.max(1, turns), durationS: null };
  }
  const file = typeof d === 'string' ? d : typeof d?.path === 'string' ? d.path : null;
  const unknownSize = { requests: TIMEOUT_DEFAULT_PROMPTS, durationS: null };
  if (file === null || file === '') return unknownSize;
  const cwd = context.cwd ?? process.cwd();
  const key = `${resolve(cwd, file)}\0${canonicalJson(d)}`;
  const sizes = context.datasetSizes ?? new Map<string, DatasetSize | null>();
  if (!sizes.has(key)) {
    try {
      sizes.set(key, datasetSize(d as DatasetConfig, { cwd }));
    } catch (error) {
      sizes.set(key, null);
      (context.logger ?? noopLogger).warn(
        `cannot count the requests of ${resolve(cwd, file)} (${(error as Error).message}): the run timeout ` +
          `assumes ${TIMEOUT_DEFAULT_PROMPTS}; set execution.timeout_s if a run needs longer`,
      );
    }
  }
  return sizes.get(key) ?? unknownSize;
}
