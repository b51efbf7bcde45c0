import { describe, expect, it } from 'vitest';
import {
  clientSaturationReasons,
  type DispatchSummary,
  DispatchSummarySchema,
  readDispatchSummary,
} from '../src/index';

const summary = (over: Partial<DispatchSummary> = {}): DispatchSummary => ({
  scheduled: 100,
  sent: 100,
  targetRate: 50,
  scheduledRate: 49.5,
  slotLimitedRate: null,
  achievedSendRate: 49.4,
  sendSpanS: 2,
  clientLagMs: { p50: 0.1, p95: 0.6, p99: 1.2, max: 3 },
  connectionWaitMs: { p50: 0, p95: 0, p99: 0.4, max: 1 },
  maxConcurrency: null,
  maxClientLagMs: 5,
  connections: { opened: 2, reused: 98 },
  ...over,
});

describe('extra.dispatch', () => {
  it('reads a valid summary, and null for results without one (older results had issueLagMs)', () => {
    expect(readDispatchSummary({ dispatch: summary() })).toEqual(summary());
    expect(readDispatchSummary({ issueLagMs: { mean: 0.1, max: 3 } })).toBeNull();
    expect(readDispatchSummary({ dispatch: null })).toBeNull();
    expect(readDispatchSummary({ dispatch: { ...summary(), sent: -1 } })).toBeNull();
  });

  it('drops keys it does not know, so a later version may add fields', () => {
    expect(DispatchSummarySchema.parse({ ...summary(), later: 1 })).toEqual(summary());
  });

  it('clientSaturationReasons: lateness above the run’s threshold, or a send rate under 95 %', () => {
    expect(clientSaturationReasons(summary())).toEqual([]);
    expect(
      clientSaturationReasons(summary({ clientLagMs: { p50: 2, p95: 6, p99: 7.5, max: 9 } })),
    ).toEqual([
      'it sent requests late (clientLagMs p99 7.50 ms, max 9.00 ms; openai.max_client_lag_ms 5)',
    ]);
    expect(clientSaturationReasons(summary({ achievedSendRate: 40 }))).toEqual([
      'it sent 40 req/s where the schedule asked for 50 req/s (81 %)',
    ]);
    // With max_concurrency the yardstick is the rate requests became ready at.
    expect(
      clientSaturationReasons(
        summary({ maxConcurrency: 2, slotLimitedRate: 10, achievedSendRate: 9.9 }),
      ),
    ).toEqual([]);
    // Without two sends there is no rate to judge.
    expect(clientSaturationReasons(summary({ achievedSendRate: null, sent: 1 }))).toEqual([]);
  });
});
