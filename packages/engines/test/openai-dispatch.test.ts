import { describe, expect, it } from 'vitest';
import { type DispatchTicket, dispatch, dispatchStats, waitStats } from '../src/openai/index';

/** A send whose "server" answers after `ms` of timer time (0: in the next event-loop turn). */
const answerAfter =
  (ms: number, log?: DispatchTicket[]) =>
  (ticket: DispatchTicket): Promise<number> => {
    log?.push(ticket);
    return new Promise((resolve) => {
      if (ms === 0) setImmediate(() => resolve(ticket.index));
      else setTimeout(() => resolve(ticket.index), ms);
    });
  };

describe('dispatch', () => {
  it('sends every request in order and never before its scheduled time', async () => {
    const offsets = [0, 0, 3, 3.4, 10, 25, 25.2, 40];
    const log: DispatchTicket[] = [];
    const report = await dispatch(offsets, answerAfter(1, log));
    expect(report.issued).toBe(offsets.length);
    expect(report.results).toEqual(offsets.map((_, i) => i));
    expect(log.map((t) => t.index)).toEqual(offsets.map((_, i) => i));
    for (const [i, offset] of offsets.entries()) {
      expect(report.scheduledAt[i]).toBeCloseTo(report.startedAt + offset, 9);
      // Never early; without a cap, ready = scheduled.
      expect(report.issuedAt[i]).toBeGreaterThanOrEqual(report.scheduledAt[i]!);
      expect(report.readyAt[i]).toBe(report.scheduledAt[i]);
    }
    expect(report.endedAt).toBeGreaterThanOrEqual(report.issuedAt[offsets.length - 1]!);
  });

  it('holds at most maxConcurrency in flight; a request waiting for a slot is ready when one frees', async () => {
    let inFlight = 0;
    let peak = 0;
    const offsets = Array.from({ length: 12 }, () => 0);
    const report = await dispatch(
      offsets,
      async (ticket) => {
        inFlight++;
        peak = Math.max(peak, inFlight);
        await new Promise((resolve) => setTimeout(resolve, 15));
        inFlight--;
        return ticket.index;
      },
      { maxConcurrency: 3 },
    );
    expect(peak).toBe(3);
    expect(report.issued).toBe(12);
    for (let i = 0; i < 12; i++) {
      const slotWait = report.readyAt[i]! - report.scheduledAt[i]!;
      // The first three go at once; each later one waited for an earlier one to end (≥ 15 ms).
      if (i < 3) expect(slotWait).toBe(0);
      else expect(slotWait).toBeGreaterThanOrEqual(14);
      // The client sends a request in the same callback that frees its slot: the wait is the
      // slot's, not the client's.
      expect(report.issuedAt[i]! - report.readyAt[i]!).toBeLessThan(20);
    }
  });

  it('past the client’s reach it yields between batches, so answers are read and in-flight stays small', async () => {
    // Every request is overdue at once (as when a client falls behind) and the server answers
    // in the next turn. Sending the whole backlog in one synchronous burst would put all 3,000 in
    // flight before any answer could be read, each on a connection of its own.
    let inFlight = 0;
    let peak = 0;
    const n = 3000;
    const report = await dispatch(
      new Array<number>(n).fill(0),
      (ticket) => {
        inFlight++;
        peak = Math.max(peak, inFlight);
        return new Promise<number>((resolve) =>
          setImmediate(() => {
            inFlight--;
            resolve(ticket.index);
          }),
        );
      },
      { batch: 16 },
    );
    expect(report.issued).toBe(n);
    expect(peak).toBeLessThanOrEqual(32);
  });

  it('stops issuing when aborted and resolves once the issued requests have drained', async () => {
    const controller = new AbortController();
    const offsets = Array.from({ length: 50 }, (_, i) => i * 10);
    setTimeout(() => controller.abort(), 45);
    const report = await dispatch(offsets, answerAfter(5), { signal: controller.signal });
    expect(report.issued).toBeGreaterThan(0);
    expect(report.issued).toBeLessThan(50);
    const never = Array.from(report.results).indexOf(undefined);
    expect(never).toBe(report.issued);
    expect(Number.isNaN(report.issuedAt[never]!)).toBe(true);
  });

  it('resolves at once for an empty schedule and an already aborted signal', async () => {
    expect((await dispatch([], answerAfter(0))).issued).toBe(0);
    const report = await dispatch([0, 1], answerAfter(0), { signal: AbortSignal.abort() });
    expect(report.issued).toBe(0);
  });

  it('refuses decreasing offsets and a cap below 1', () => {
    expect(() => dispatch([0, 5, 4], answerAfter(0))).toThrow(
      /send offsets must not decrease \(offset 2\)/,
    );
    expect(() => dispatch([0], answerAfter(0), { maxConcurrency: 0 })).toThrow(
      /maxConcurrency must be ≥ 1/,
    );
  });

  it('passes a rejected send through after the drain', async () => {
    const boom = new Error('boom');
    await expect(
      dispatch([0, 0, 0], (t) => (t.index === 1 ? Promise.reject(boom) : Promise.resolve(1))),
    ).rejects.toBe(boom);
  });
});

describe('dispatchStats', () => {
  const report = (scheduled: number[], ready: number[], issued: number[]) => ({
    scheduledAt: Float64Array.from(scheduled),
    readyAt: Float64Array.from(ready),
    issuedAt: Float64Array.from(issued),
  });

  it('rates over the send span, lateness from ready to issue, waits from scheduled to ready plus connecting', () => {
    // 5 requests scheduled 100 ms apart (10/s) sent 200 ms apart (5/s), each later than the last.
    const stats = dispatchStats(
      report([0, 100, 200, 300, 400], [0, 100, 200, 300, 400], [0, 200, 400, 600, 800]),
      { targetRate: 12, maxConcurrency: null, connectionWaitMs: [3, 0, 0, 0, 0] },
    );
    expect(stats).toMatchObject({
      scheduled: 5,
      sent: 5,
      targetRate: 12,
      scheduledRate: 10,
      slotLimitedRate: null,
      achievedSendRate: 5,
      sendSpanS: 0.8,
      maxConcurrency: null,
    });
    expect(stats.clientLagMs).toEqual({ p50: 200, p95: 380, p99: 396, max: 400 });
    expect(stats.connectionWaitMs).toMatchObject({ p50: 0, max: 3 });
  });

  it('with a cap, slot waits are connection waits and the achieved rate is judged against the ready times', () => {
    const stats = dispatchStats(report([0, 0, 0, 0], [0, 50, 100, 150], [0, 50.1, 100.2, 150.1]), {
      targetRate: 1000,
      maxConcurrency: 1,
    });
    expect(stats.slotLimitedRate).toBeCloseTo(20, 9);
    expect(stats.achievedSendRate).toBeCloseTo(3000 / 150.1, 9);
    expect(stats.connectionWaitMs).toMatchObject({ max: 150 });
    expect(stats.clientLagMs!.max).toBeCloseTo(0.2, 9);
    expect(stats.scheduledRate).toBeNull();
  });

  it('leaves out requests never sent and has no rates below two sends', () => {
    const stats = dispatchStats(report([0, 10], [0, Number.NaN], [1, Number.NaN]), {
      targetRate: 100,
      maxConcurrency: null,
    });
    expect(stats).toMatchObject({
      scheduled: 2,
      sent: 1,
      achievedSendRate: null,
      scheduledRate: null,
      sendSpanS: null,
    });
    expect(stats.clientLagMs).toEqual({ p50: 1, p95: 1, p99: 1, max: 1 });
  });

  it('waitStats interpolates percentiles as numpy does and ignores non-finite values', () => {
    expect(waitStats([0.1, 0.2, 5])).toEqual({
      p50: 0.2,
      p95: expect.closeTo(4.52, 9),
      p99: expect.closeTo(4.904, 9),
      max: 5,
    });
    expect(waitStats([Number.NaN])).toBeNull();
  });
});
