import { describe, expect, it } from 'vitest';
import { type MeasuredRequest, parseRequestRecords, RequestRecordSchema } from '../src/index';

const record = (over: Partial<MeasuredRequest> = {}): MeasuredRequest => ({
  id: 0,
  sentMs: 1.5,
  ttftMs: 12,
  e2eMs: 100,
  chunkGapsMs: [20, 20, 40],
  tpotMs: 22,
  inputTokens: 8,
  outputTokens: 5,
  tokenSource: 'server-usage',
  retries: 0,
  error: null,
  ...over,
});

describe('RequestRecordSchema', () => {
  it('accepts a measured request, with or without server timings', () => {
    expect(RequestRecordSchema.parse(record())).toEqual(record());
    const timed = record({
      serverTimings: { promptN: 8, promptMs: 5, cacheN: 0, predictedN: 5, predictedMs: 80 },
    });
    expect(RequestRecordSchema.parse(timed)).toEqual(timed);
  });

  it('accepts the open-loop timing of a request and rejects a negative wait', () => {
    const open = record({ scheduledMs: 1.2, clientLagMs: 0.3, connectionWaitMs: 0 });
    expect(RequestRecordSchema.parse(open)).toEqual(open);
    expect(RequestRecordSchema.safeParse(record({ connectionWaitMs: -0.5 })).success).toBe(false);
  });

  it('accepts a failed request: no token, the error and its retries', () => {
    const failed = record({
      ttftMs: null,
      tpotMs: null,
      chunkGapsMs: [],
      outputTokens: null,
      retries: 2,
      error: { type: 'connection_refused', message: 'ECONNREFUSED: connect' },
    });
    expect(RequestRecordSchema.safeParse(failed).success).toBe(true);
  });

  it.each([
    ['a negative latency', { e2eMs: -1 }],
    ['fractional tokens', { outputTokens: 1.5 }],
    ['an unknown token source', { tokenSource: 'guess' }],
    ['an unknown key', { extra: 1 }],
  ])('rejects %s', (_what, over) => {
    expect(RequestRecordSchema.safeParse({ ...record(), ...over }).success).toBe(false);
  });
});

describe('parseRequestRecords', () => {
  it('reads one record per line, skips blank lines and names the bad ones by line', () => {
    const text = [
      JSON.stringify(record({ id: 0 })),
      '',
      '{not json',
      JSON.stringify({ ...record({ id: 2 }), retries: -1 }),
      JSON.stringify(record({ id: 3 })),
      '',
    ].join('\n');
    const { records, invalid } = parseRequestRecords(text);
    expect(records.map((r) => r.id)).toEqual([0, 3]);
    expect(invalid).toEqual([
      { line: 3, message: 'not valid JSON' },
      { line: 4, message: expect.stringMatching(/^retries: /) },
    ]);
  });
});
