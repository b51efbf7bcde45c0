import { join } from 'node:path';
import {
  ensureFakeNvmlBuilt,
  fakeNvmlLibraryPath,
  h100Profile,
  writeScenario,
} from '@llem/fake-nvml';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { foldObservations, nvmlResidualCheck } from '../src/residual';
import { StudyRunner } from '../src/runner';
import { makePlan } from './fixtures/plan';
import { fakeClock, readJson, readManifest, tempDir } from './helpers';

const MiB = 1024 * 1024;
const saved = { ...process.env };

function recordingLogger() {
  const records: Array<[string, string]> = [];
  const at = (level: string) => (message: string) => {
    records.push([level, message]);
  };
  return {
    records,
    logger: { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') },
  };
}

beforeAll(() => {
  ensureFakeNvmlBuilt();
});
afterEach(() => {
  process.env = { ...saved };
});

describe('the default residual check (@llem/nvml, against the fake libnvidia-ml)', () => {
  it('residual memory on one device: exceeded, one warning, unreadable devices keep their reason', async () => {
    process.env.LLEM_NVML_LIBRARY = fakeNvmlLibraryPath();
    process.env.LLEM_FAKE_NVML_SCENARIO = writeScenario({
      devices: [h100Profile({ memoryUsedBytes: 500 * MiB }), h100Profile()],
    });
    const { logger, records } = recordingLogger();
    const seen = await nvmlResidualCheck({ deviceIndices: [0, 1, 5], thresholdMb: 100, logger });
    expect(seen).toMatchObject({
      status: 'exceeded',
      thresholdMb: 100,
      devices: [
        { index: 0, usedMb: 500, totalMb: 81559, exceeded: true },
        { index: 1, usedMb: 1, totalMb: 81559, exceeded: false },
      ],
    });
    expect(seen.reason).toContain('device 5');
    const warnings = records.filter(([level]) => level === 'warn');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.[1]).toMatch(/device 0.*500 MB.*threshold: 100 MB/);
  });

  it('without NVML the check is skipped silently (debug only) and never throws', async () => {
    process.env.LLEM_NVML_LIBRARY = '/nonexistent/libnvidia-ml.so.1';
    const { logger, records } = recordingLogger();
    const seen = await nvmlResidualCheck({ deviceIndices: [0], thresholdMb: 100, logger });
    expect(seen.status).toBe('skipped');
    expect(seen.devices).toEqual([]);
    expect(seen.reason).toBeTruthy();
    expect(records.filter(([level]) => level !== 'debug')).toEqual([]);
  });

  it('a runner with the default check hands the observation to the child, which returns it', async () => {
    process.env.LLEM_NVML_LIBRARY = fakeNvmlLibraryPath();
    process.env.LLEM_FAKE_NVML_SCENARIO = writeScenario({
      devices: [h100Profile({ memoryUsedBytes: 500 * MiB })],
    });
    const tmp = tempDir();
    try {
      const fake = fakeClock();
      const summary = await new StudyRunner({
        plan: makePlan([{ energy: { devices: [0] } }], { residual_memory_threshold_mb: 250 }),
        outputDir: tmp.dir,
        workerModule: new URL('./fixtures/plain-worker.mjs', import.meta.url),
        clock: fake.clock,
        sleep: fake.sleep,
        runDevices: () => [0],
      }).run();
      const entry = readManifest(summary.studyDir).entries[0]!;
      const result = readJson<{ residualCheck: unknown }>(
        join(summary.studyDir, entry.resultFile!),
      );
      expect(result.residualCheck).toMatchObject({
        status: 'exceeded',
        thresholdMb: 250,
        devices: [{ index: 0, usedMb: 500, exceeded: true }],
      });
    } finally {
      tmp.cleanup();
    }
  });
});

describe('foldObservations', () => {
  const now = new Date('2026-01-02T03:04:05.000Z');
  it('is ok when every readable device is under the threshold', () => {
    expect(
      foldObservations(
        [{ checked: true, deviceIndex: 3, usedMb: 10, totalMb: null, exceeded: false }],
        100,
        now,
      ),
    ).toEqual({
      status: 'ok',
      thresholdMb: 100,
      devices: [{ index: 3, usedMb: 10, totalMb: null, exceeded: false }],
      reason: null,
      checkedAt: '2026-01-02T03:04:05.000Z',
    });
  });

  it('is skipped, with the reasons, when no device could be read', () => {
    const folded = foldObservations(
      [
        {
          checked: false,
          deviceIndex: 0,
          usedMb: null,
          totalMb: null,
          exceeded: false,
          reason: 'NVML_ERROR_GPU_IS_LOST',
        },
      ],
      100,
      now,
    );
    expect(folded).toMatchObject({ status: 'skipped', devices: [] });
    expect(folded.reason).toBe('device 0: NVML_ERROR_GPU_IS_LOST');
  });
});
