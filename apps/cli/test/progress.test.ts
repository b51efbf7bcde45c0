import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { ProgressEvent } from '../src/commands/run';
import { createProgressDisplay, formatClock, listenForEnter } from '../src/progress';
import { captureStream } from './support/llem';

function sink(isTTY: boolean) {
  return captureStream({
    isTTY,
    columns: 140,
    cursorTo: () => true,
    clearLine: () => true,
    moveCursor: () => true,
  });
}

const residualCheck = {
  status: 'skipped' as const,
  thresholdMb: 100,
  devices: [],
  reason: 'NVML not available',
  checkedAt: '2026-03-01T12:00:00.000Z',
};

function runStarted(index: number, label: string, cycle: number): ProgressEvent {
  return {
    type: 'run-started',
    key: `k${index}`,
    label,
    configHash: '0123456789abcdef',
    cycle,
    index,
    total: 4,
    attempt: 1,
    timeoutS: 600,
    pid: 1234,
    residualCheck,
  };
}

function runFinished(
  index: number,
  status: 'completed' | 'failed',
  remainingMs: number | null,
): ProgressEvent {
  return {
    type: 'run-finished',
    key: `k${index}`,
    label: 'x',
    index,
    total: 4,
    status,
    durationMs: 12_000,
    error: status === 'failed' ? { type: 'timeout', message: 'no result after 600 s\nmore' } : null,
    eta: { remainingRuns: 4 - index, remainingMs },
  };
}

const studyStarted = (toRun = 4, total = 4): ProgressEvent => ({
  type: 'study-started',
  studyDir: '/r/s_1',
  studyName: 's',
  total,
  toRun,
  resumed: toRun !== total,
  recovered: 0,
});

describe('formatClock', () => {
  it('formats durations compactly', () => {
    expect(formatClock(0)).toBe('0s');
    expect(formatClock(75_000)).toBe('1m15s');
    expect(formatClock(3_725_000)).toBe('1h02m05s');
    expect(formatClock(null)).toBe('?');
  });
});

describe('progress on a pipe (plain lines)', () => {
  it('prints one line per run start/finish with elapsed time, ETA, errors and one line per gap', () => {
    let t = 0;
    const out = sink(false);
    const p = createProgressDisplay({ stderr: out.stream }, { now: () => t });
    p(studyStarted(3, 4)); // resumed: one run already done
    p({ type: 'gap-countdown', kind: 'cycle', secondsLeft: 30, totalSeconds: 30 });
    p({ type: 'gap-countdown', kind: 'cycle', secondsLeft: 29, totalSeconds: 30 });
    p({ type: 'gap-finished', skipped: false, interrupted: false });
    t = 30_000;
    p(runStarted(1, 'batch_size=64', 1));
    t = 42_000;
    p(runFinished(1, 'completed', 24_000));
    p(runStarted(2, 'batch_size=256', 1));
    t = 54_000;
    p(runFinished(2, 'failed', 12_000));
    p.stop();
    expect(out.text()).toBe(
      [
        '[0s] Resuming s: 3 of 4 runs to do → /r/s_1',
        '[0s] waiting 30 s (cycle gap)',
        '[30s] [2/4] batch_size=64 (cycle 2)…',
        '[42s] [2/4 done] completed in 12s, ETA 24s',
        '[42s] [3/4] batch_size=256 (cycle 2)…',
        '[54s] [3/4 done] failed in 12s (timeout: no result after 600 s), ETA 12s',
        '',
      ].join('\n'),
    );
    expect(out.text()).not.toContain('\u001b[');
  });

  it('a run stopped by Ctrl-C is said to run again on resume, is not counted done, and names no error type', () => {
    const out = sink(false);
    const p = createProgressDisplay({ stderr: out.stream }, { now: () => 0 });
    p(studyStarted(4, 4));
    p(runStarted(1, 'batch_size=64', 0));
    p({
      ...runFinished(1, 'completed', null),
      status: 'interrupted',
      error: { type: 'interrupted', message: 'interrupted; it runs again on resume' },
    } as ProgressEvent);
    p.stop();
    const last = out.text().trimEnd().split('\n').at(-1);
    expect(last).toBe('[0s] [0/4 done] stopped after 12s; it runs again on resume');
    expect(out.text()).not.toMatch(/interrupted: interrupted/);
  });
});

describe('progress lines from a running worker', () => {
  const progress = (message: string): ProgressEvent => ({
    type: 'run-progress',
    key: 'k1',
    label: 'x',
    message,
  });

  it('on a pipe: one indented line each, under the run they belong to', () => {
    const out = sink(false);
    const p = createProgressDisplay({ stderr: out.stream }, { now: () => 1000 });
    p(studyStarted());
    p(runStarted(1, 'served', 0));
    p(progress('openai engine: http://h/v1 not ready after 1.2 s of 30 s: connection refused'));
    p.stop();
    expect(out.text().split('\n')[2]).toBe(
      '[0s]     openai engine: http://h/v1 not ready after 1.2 s of 30 s: connection refused',
    );
  });

  it('on a TTY: beside the bar, shortened, and gone when the run ends', () => {
    const out = sink(true);
    const p = createProgressDisplay({ stderr: out.stream }, { now: () => 0 });
    p(studyStarted());
    p(runStarted(1, 'served', 0));
    const long = `openai engine: not ready after 1.2 s of 30 s: ${'connection refused '.repeat(5)}`;
    p(progress(long));
    // Cut to 70 characters, an ellipsis last.
    expect(out.text()).toContain(`| ${long.slice(0, 69)}…`);
    expect(out.text()).not.toContain(long.slice(0, 71));
    const before = out.text().length;
    p(runFinished(1, 'failed', null));
    expect(out.text().slice(before)).not.toContain('not ready');
    p.stop();
  });
});

describe('progress on a TTY (bar)', () => {
  it('draws a bar with done/total, the config, elapsed, ETA and the gap countdown', () => {
    let t = 0;
    const out = sink(true);
    const p = createProgressDisplay({ stderr: out.stream }, { now: () => t });
    p(studyStarted());
    p(runStarted(1, 'batch_size=64', 0));
    t = 10_000;
    p(runFinished(1, 'completed', 30_000));
    p({ type: 'gap-countdown', kind: 'experiment', secondsLeft: 5, totalSeconds: 5 });
    const mid = out.text();
    expect(mid).toContain('1/4 runs');
    expect(mid).toContain('batch_size=64 · cycle 1');
    expect(mid).toContain('10s elapsed');
    expect(mid).toContain('ETA 30s');
    expect(mid).toContain('experiment gap 5s (Enter skips)');
    p(runStarted(2, 'batch_size=256', 0));
    t = 20_000;
    p(runFinished(2, 'failed', 20_000));
    expect(out.text()).toContain('2/4 runs (1 failed)');
    p({
      type: 'study-finished',
      status: 'completed',
      studyDir: '/r/s_1',
      counts: { total: 4, pending: 2, running: 0, completed: 1, failed: 1 },
      durationMs: 20_000,
    });
    expect(out.text()).toContain('study completed');
    // The bar stopped: no timer keeps the process alive, stop() again is harmless.
    p.stop();
  });
});

describe('listenForEnter', () => {
  function fakeInput(isTTY: boolean) {
    const emitter = new EventEmitter();
    let flowing = false;
    return Object.assign(emitter, {
      isTTY,
      resume: () => {
        flowing = true;
      },
      pause: () => {
        flowing = false;
      },
      flowing: () => flowing,
    });
  }

  it('calls back on Enter while listening, and stops (pausing the input) when told', () => {
    const input = fakeInput(true);
    let skips = 0;
    const stop = listenForEnter(input, () => skips++);
    expect(input.flowing()).toBe(true);
    input.emit('data', 'x');
    input.emit('data', '\n');
    input.emit('data', Buffer.from('\r'));
    expect(skips).toBe(2);
    stop();
    expect(input.flowing()).toBe(false);
    input.emit('data', '\n');
    expect(skips).toBe(2);
    expect(input.listenerCount('data')).toBe(0);
  });

  it('ignores a non-terminal input entirely', () => {
    const input = fakeInput(false);
    const stop = listenForEnter(input, () => {
      throw new Error('must not be called');
    });
    expect(input.listenerCount('data')).toBe(0);
    expect(input.flowing()).toBe(false);
    stop();
  });
});
