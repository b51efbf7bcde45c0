import { describe, expect, it } from 'vitest';
import type { EngineRequest } from '../src/engine';
import { inTurnOrder, sendTimes } from '../src/internal/workload-order';

const req = (id: number, extra: Partial<EngineRequest> = {}): EngineRequest => ({
  id,
  prompt: `p${id}`,
  maxOutputTokens: 1,
  ...extra,
});

describe('sendTimes', () => {
  it('is null for a workload without send times, the times in order otherwise', () => {
    expect(sendTimes([req(0), req(1)])).toBeNull();
    expect(
      sendTimes([req(0, { sendAtMs: 0 }), req(1, { sendAtMs: 0 }), req(2, { sendAtMs: 5.5 })]),
    ).toEqual([0, 0, 5.5]);
  });

  it('refuses a mix, a negative time and a time before the previous one', () => {
    expect(() => sendTimes([req(0, { sendAtMs: 0 }), req(1)])).toThrow(
      /1 of 2 requests carry sendAtMs/,
    );
    expect(() => sendTimes([req(0, { sendAtMs: -1 })])).toThrow(/≥ 0 and ascending/);
    expect(() => sendTimes([req(0, { sendAtMs: 10 }), req(1, { sendAtMs: 5 })])).toThrow(
      /request 1: .*got 5 after 10/,
    );
  });
});

describe('inTurnOrder', () => {
  /** Sends with `workers` concurrent workers pulling from the list, like a closed loop. */
  async function drive(requests: EngineRequest[], workers: number, durations: number[]) {
    const events: string[] = [];
    const send = inTurnOrder(
      requests,
      async (index: number) => {
        const id = requests[index]!.id;
        events.push(`start ${id}`);
        await new Promise((resolve) => setTimeout(resolve, durations[index]));
        events.push(`end ${id}`);
        return id;
      },
      new AbortController().signal,
    );
    let next = 0;
    await Promise.all(
      Array.from({ length: workers }, async () => {
        while (next < requests.length) await send(next++);
      }),
    );
    return events;
  }

  it('starts a turn only after the previous turn of its conversation ended', async () => {
    // Two conversations of three turns, turn-major: c0t0 c1t0 c0t1 c1t1 c0t2 c1t2. The first
    // turn of conversation 0 is slow, so with 3 workers its second turn is picked up early.
    const requests = [
      req(0),
      req(1),
      req(2, { after: 0 }),
      req(3, { after: 1 }),
      req(4, { after: 2 }),
      req(5, { after: 3 }),
    ];
    const events = await drive(requests, 3, [60, 5, 5, 5, 5, 5]);
    for (const [turn, previous] of [
      [2, 0],
      [3, 1],
      [4, 2],
      [5, 3],
    ])
      expect(events.indexOf(`start ${turn}`)).toBeGreaterThan(events.indexOf(`end ${previous}`));
    // Conversation 1 did not wait for conversation 0's slow turn.
    expect(events.indexOf('end 3')).toBeLessThan(events.indexOf('end 0'));
  });

  it('returns send unchanged when no request names a predecessor', () => {
    const send = async (index: number) => index;
    expect(inTurnOrder([req(0), req(1)], send, new AbortController().signal)).toBe(send);
  });

  it('stops waiting when the signal aborts', async () => {
    const controller = new AbortController();
    const requests = [req(0), req(1, { after: 0 })];
    const sent: number[] = [];
    const send = inTurnOrder(
      requests,
      async (index: number) => {
        sent.push(index);
        if (index === 0) await new Promise(() => undefined); // never ends
        return index;
      },
      controller.signal,
    );
    void send(0);
    const second = send(1);
    setTimeout(() => controller.abort(), 10);
    await expect(second).resolves.toBe(1);
    expect(sent).toEqual([0, 1]);
  });
});
