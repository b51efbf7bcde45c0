import type { Logger } from '../src/logger';

export interface LogEntry {
  level: 'error' | 'warn' | 'info' | 'debug';
  message: string;
  meta: unknown[];
}

/** A logger that keeps every call, so tests can assert count, level and content. */
export function recordingLogger(): Logger & {
  entries: LogEntry[];
  at(level: LogEntry['level']): LogEntry[];
} {
  const entries: LogEntry[] = [];
  const log =
    (level: LogEntry['level']) =>
    (message: string, ...meta: unknown[]) => {
      entries.push({ level, message, meta });
    };
  return {
    entries,
    at: (level) => entries.filter((entry) => entry.level === level),
    error: log('error'),
    warn: log('warn'),
    info: log('info'),
    debug: log('debug'),
  };
}

/** An injected sleep that returns at once and records each requested delay. */
export function instantSleep(): ((ms: number, signal: AbortSignal) => Promise<void>) & {
  delays: number[];
} {
  const delays: number[] = [];
  const sleep = async (ms: number) => {
    delays.push(ms);
  };
  return Object.assign(sleep, { delays });
}

/** Lets pending promise callbacks run (several hops, for chained awaits). */
export async function flushMicrotasks(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}
