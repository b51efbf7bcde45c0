import type { DispatchSummary } from '@llem/domain';
import { describe, expect, it } from 'vitest';
import { clientSaturationWarning } from '../src/warnings';

const wait = (p99: number, max = p99) => ({ p50: p99 / 4, p95: p99 / 2, p99, max });

/** A run that kept a 1,000 req/s schedule: the client was never more than 0.8 ms late. */
const kept = (over: Partial<DispatchSummary> = {}): DispatchSummary => ({
  scheduled: 4000,
  sent: 4000,
  targetRate: 1000,
  scheduledRate: 1003,
  slotLimitedRate: null,
  achievedSendRate: 1001,
  sendSpanS: 3.99,
  clientLagMs: wait(0.4, 0.8),
  connectionWaitMs: wait(0.2),
  maxConcurrency: null,
  maxClientLagMs: 5,
  connections: { opened: 3, reused: 3997 },
  ...over,
});

describe('clientSaturationWarning', () => {
  it('says nothing when the client kept its schedule, or when the run had none', () => {
    expect(clientSaturationWarning(kept())).toBeNull();
    expect(clientSaturationWarning(null)).toBeNull();
  });

  it('warns when the p99 of the client’s lateness is above openai.max_client_lag_ms', () => {
    const warning = clientSaturationWarning(kept({ clientLagMs: wait(12.5, 40) }));
    expect(warning?.code).toBe('client-saturated');
    expect(warning?.message).toMatch(
      /clientLagMs p99 12\.5 ms, max 40\.0 ms; openai\.max_client_lag_ms 5/,
    );
    expect(warning?.message).toMatch(/latency\.ttftFromScheduledMs/);
    // The threshold is the run's own.
    expect(
      clientSaturationWarning(kept({ clientLagMs: wait(12.5, 40), maxClientLagMs: 20 })),
    ).toBeNull();
  });

  it('warns when it sent under 95 % of the rate the realised schedule asked for', () => {
    expect(clientSaturationWarning(kept({ achievedSendRate: 960 }))).toBeNull();
    const warning = clientSaturationWarning(kept({ achievedSendRate: 940 }));
    expect(warning?.message).toMatch(/it sent 940 req\/s where the schedule asked for 1,003/);
    expect(warning?.message).not.toMatch(/clientLagMs/);
  });

  it('is not fooled by a slow server: slot waits are connection waits and the slot-limited rate is the yardstick', () => {
    // max_concurrency 4 against a slow server: requests waited up to 2 s for slots and went out
    // at 40 req/s against a schedule of 1,000; the client sent each the moment its slot freed.
    const slowServer = kept({
      maxConcurrency: 4,
      slotLimitedRate: 40.2,
      achievedSendRate: 40.1,
      clientLagMs: wait(0.3, 1.1),
      connectionWaitMs: wait(1900, 2000),
    });
    expect(clientSaturationWarning(slowServer)).toBeNull();
    // The same run where the client was also late to use its slots is saturated.
    expect(clientSaturationWarning({ ...slowServer, achievedSendRate: 30 })?.code).toBe(
      'client-saturated',
    );
  });
});
