import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Manifest, ResidualCheck } from '@llem/domain';
import type { Clock, SleepFn } from '../src/clock';
import type { ResidualCheckFn } from '../src/residual';

export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'llem-study-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A clock whose time moves only when something sleeps on it. */
export function fakeClock(start = Date.parse('2026-01-02T03:04:05.000Z')): {
  clock: Clock;
  sleep: SleepFn;
  sleeps: number[];
} {
  let t = 0;
  const sleeps: number[] = [];
  return {
    clock: { now: () => t, date: () => new Date(start + t) },
    sleeps,
    sleep: async (ms, signal) => {
      sleeps.push(ms);
      if (signal?.aborted) return;
      t += ms;
      await Promise.resolve();
    },
  };
}

export const okResidual: ResidualCheckFn = ({ thresholdMb, deviceIndices }) => ({
  status: 'ok',
  thresholdMb,
  devices: deviceIndices.map((index) => ({ index, usedMb: 12, totalMb: 8000, exceeded: false })),
  reason: null,
  checkedAt: '2026-01-02T03:04:05.000Z',
});

/** A config's `energy.devices` (as the llem CLI injects `runDevices`), else `[0]`. */
export function energyDevices(config: unknown): number[] {
  const devices = (config as { energy?: { devices?: number[] } } | null)?.energy?.devices;
  return Array.isArray(devices) ? devices : [0];
}

export function readManifest(studyDir: string): Manifest {
  return JSON.parse(readFileSync(join(studyDir, 'manifest.json'), 'utf8')) as Manifest;
}

/** Change a run's record file in place (a test doctoring a crash state). */
export function editRecord(studyDir: string, key: string, change: Record<string, unknown>): void {
  const file = join(studyDir, 'runs', `${key}.record.json`);
  writeFileSync(file, JSON.stringify({ ...readJson<object>(file), ...change }));
}

export function readJson<T = unknown>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

export type { ResidualCheck };

/**
 * Whether a process is still running. A zombie (dead, not yet reaped by its new parent, which
 * for an orphan is PID 1 and may take a second) counts as dead: it runs nothing and holds
 * nothing but its pid.
 */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) S …": the state follows the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}
