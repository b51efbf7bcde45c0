import { readFileSync } from 'node:fs';
import {
  type FakeScenario,
  fakeNvmlLibraryPath,
  traceFilePath,
  writeScenario,
} from '@llem/fake-nvml';
import type { Logger } from '@llem/resilience';

export const FULL = fakeNvmlLibraryPath('full');
export const LEGACY = fakeNvmlLibraryPath('legacy');
export const MiB = 1024 * 1024;

/**
 * Point the fake at a scenario and a fresh trace file. The fake reads both at the next nvmlInit,
 * so every test must close what it opens (the afterEach in each file checks that).
 */
export function useScenario(scenario: FakeScenario): { trace: () => string[] } {
  process.env.LLEM_FAKE_NVML_SCENARIO = writeScenario(scenario);
  const tracePath = traceFilePath();
  process.env.LLEM_FAKE_NVML_TRACE = tracePath;
  return {
    trace: () => {
      try {
        return readFileSync(tracePath, 'utf8').split('\n').filter(Boolean);
      } catch {
        return [];
      }
    },
  };
}

export interface LogRecord {
  level: 'error' | 'warn' | 'info' | 'debug';
  message: string;
}

export function recordingLogger(): Logger & { records: LogRecord[] } {
  const records: LogRecord[] = [];
  const at =
    (level: LogRecord['level']) =>
    (message: string): void => {
      records.push({ level, message });
    };
  return { records, error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') };
}
