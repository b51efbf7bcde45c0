import { arrivalSchedule } from './arrivals';
import type { OpenAILoadMode } from './config';
import { type DispatchReport, dispatch } from './dispatch';
import type { StreamedRecord } from './stream';

/** Sends request `index` of the workload and resolves with its record (never rejects). */
export type SendFn = (index: number) => Promise<StreamedRecord>;

export interface LoadResult {
  /** One record per request issued, in workload order; requests never issued are absent. */
  records: StreamedRecord[];
  /**
   * Open loop: when each request was due, could go, and went (indexed by workload position);
   * `null` in closed loop.
   */
  dispatch: DispatchReport<StreamedRecord> | null;
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
 * Drives `n` requests under the configured load mode and collects their records. Open loop goes
 * through {@link dispatch}: request i leaves at its seeded arrival time whatever the server is
 * doing (what a real user population does), waiting only for a `max_concurrency` slot.
 *
 * @example
 * const { records } = await runLoad(32, { kind: 'concurrency', concurrency: 4 }, send, signal);
 */
export async function runLoad(
  n: number,
  mode: OpenAILoadMode,
  send: SendFn,
  signal: AbortSignal,
): Promise<LoadResult> {
  if (mode.kind === 'concurrency') {
    const records = await closedLoop(n, mode.concurrency, send, signal);
    return { records: records.filter(isRecord), dispatch: null };
  }
  const offsets = arrivalSchedule(n, {
    rate: mode.requestRate,
    burstiness: mode.burstiness,
    seed: mode.arrivalSeed,
  });
  const report = await dispatch(offsets, (ticket) => send(ticket.index), {
    maxConcurrency: mode.maxConcurrency,
    signal,
  });
  return { records: report.results.filter(isRecord), dispatch: report };
}

function isRecord(value: StreamedRecord | undefined): value is StreamedRecord {
  return value !== undefined;
}
