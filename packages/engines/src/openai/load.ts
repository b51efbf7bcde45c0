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
 * doing (what a real user population does), waiting only for a `max_concurrency` slot. A
 * `schedule` (a trace's send times, ms from the start, one per request: `EngineRequest.sendAtMs`)
 * replaces the mode's arrivals and goes through the same dispatcher, with no slot cap (a trace
 * leaves `request_rate`, and so `max_concurrency`, unset).
 *
 * @example
 * const { records } = await runLoad(32, { kind: 'concurrency', concurrency: 4 }, send, signal);
 */
export async function runLoad(
  n: number,
  mode: OpenAILoadMode,
  send: SendFn,
  signal: AbortSignal,
  schedule: readonly number[] | null = null,
): Promise<LoadResult> {
  const open = openLoopPlan(n, mode, schedule);
  if (open === null) {
    // Closed loop (openLoopPlan is null only for the concurrency mode).
    const concurrency = mode.kind === 'concurrency' ? mode.concurrency : 1;
    const records = await closedLoop(n, concurrency, send, signal);
    return { records: records.filter(isRecord), dispatch: null };
  }
  const report = await dispatch(open.offsets, (ticket) => send(ticket.index), {
    maxConcurrency: open.maxConcurrency,
    signal,
  });
  return { records: report.results.filter(isRecord), dispatch: report };
}

/** The open loop's send times and slot cap: the trace's, or the seeded arrivals'; `null` in closed loop. */
function openLoopPlan(
  n: number,
  mode: OpenAILoadMode,
  schedule: readonly number[] | null,
): { offsets: readonly number[]; maxConcurrency: number | null } | null {
  if (schedule !== null) return { offsets: schedule.slice(0, n), maxConcurrency: null };
  if (mode.kind === 'concurrency') return null;
  const offsets = arrivalSchedule(n, {
    rate: mode.requestRate,
    burstiness: mode.burstiness,
    seed: mode.arrivalSeed,
  });
  return { offsets, maxConcurrency: mode.maxConcurrency };
}

function isRecord(value: StreamedRecord | undefined): value is StreamedRecord {
  return value !== undefined;
}
