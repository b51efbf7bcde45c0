import type { LengthDistribution, RunWorkload } from '@llem/domain';
import { mean, percentile } from '@llem/domain';
import type { Engine, RequestRecord } from '@llem/engines';
import type { Logger } from '@llem/resilience';
import { buildWorkload, type DatasetSource, type Workload } from '../dataset';

/**
 * Build the workload once the engine is loaded: with the engine's tokenizer where it has one
 * (prompts of exact lengths), else approximate lengths and the reason. Outside the window.
 */
export async function prepareWorkload(
  engine: Engine,
  source: DatasetSource,
  maxOutputTokens: number,
  logger: Logger,
): Promise<Workload> {
  const probe = engine.tokenizer
    ? await engine.tokenizer()
    : { unavailable: `the ${engine.name} engine cannot tokenize` };
  const tokenizer = 'unavailable' in probe ? null : probe;
  const workload = await buildWorkload(source, {
    maxOutputTokens,
    tokenizer,
    approximateReason: 'unavailable' in probe ? probe.unavailable : '',
    logger,
  });
  logger.debug(
    `measure: ${workload.requests.length} ${workload.format} requests, lengths ${workload.lengths} (${workload.lengthSource})`,
  );
  return workload;
}

/**
 * count, mean, min, p50, p90, p99, max of per-request lengths; `null` for none.
 *
 * @example
 * lengthDistribution([10, 20, 30]); // { count: 3, mean: 20, min: 10, p50: 20, p90: 28, p99: 29.8, max: 30 }
 */
export function lengthDistribution(values: readonly number[]): LengthDistribution | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return {
    count: sorted.length,
    mean: mean(sorted) as number,
    min: sorted[0] as number,
    p50: percentile(sorted, 50) as number,
    p90: percentile(sorted, 90) as number,
    p99: percentile(sorted, 99) as number,
    max: sorted[sorted.length - 1] as number,
  };
}

/**
 * `result.workload`: what was asked (prompt lengths as built, `max_tokens`) and what the engine
 * reported for the requests that succeeded.
 */
export function workloadSummary(
  workload: Workload,
  records: readonly RequestRecord[],
): RunWorkload {
  const done = records.filter((r) => r.error === undefined);
  const known = (values: Array<number | null>) => values.filter((v): v is number => v !== null);
  return {
    format: workload.format,
    requests: workload.requests.length,
    lengths: workload.lengths,
    lengthSource: workload.lengthSource,
    inputLength: {
      requested: lengthDistribution(workload.inputLengths),
      achieved: lengthDistribution(known(done.map((r) => r.inputTokens))),
    },
    outputLength: {
      requested: lengthDistribution(workload.requests.map((r) => r.maxOutputTokens)),
      achieved: lengthDistribution(known(done.map((r) => r.outputTokens))),
    },
    ...workload.facts,
  };
}
