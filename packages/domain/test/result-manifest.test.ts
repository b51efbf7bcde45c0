import { describe, expect, it } from 'vitest';
import {
  countManifestEntries,
  type Manifest,
  ManifestSchema,
  RESULT_WARNING_CODES,
  type RunResult,
  RunResultSchema,
} from '../src/index';

function sampleResult(): RunResult {
  return {
    schemaVersion: 1,
    runId: '0123456789abcdef_c0',
    configHash: '0123456789abcdef',
    cycle: 0,
    engine: 'llamacpp',
    model: 'builtin:tiny',
    config: { engine: 'llamacpp' },
    window: {
      startedAt: '2026-01-01T00:00:00.000Z',
      endedAt: '2026-01-01T00:00:05.000Z',
      durationS: 5,
    },
    energy: {
      method: 'none',
      totalJ: null,
      adjustedJ: null,
      baselineW: null,
      perDevice: [],
      unavailableReason: 'no NVML and RAPL not readable',
    },
    tokens: { input: 64, output: 32, source: 'engine' },
    throughput: { outputTokensPerS: 6.4, totalTokensPerS: 19.2, requestsPerS: 0.2 },
    energyPerOutputTokenJ: null,
    latency: { ttftMs: { mean: 1, p50: 1, p95: 2, p99: 2 }, itlMs: null, e2eMs: null },
    memory: { gpuPeakUsedMiB: null, rssPeakMiB: 120 },
    flops: { estimate: null, method: 'none', parameterCount: null },
    residualCheck: null,
    warnings: [{ code: 'run-too-short', message: 'window 5 s < 10 s' }],
    environment: {
      gpus: [],
      driverVersion: null,
      cudaVersion: null,
      cpu: { model: null, cores: 2 },
      os: { platform: 'linux', release: null, arch: 'x64' },
      nodeVersion: 'v20.19.0',
      engineVersion: null,
      llemVersion: '0.1.0',
    },
    extra: {},
  };
}

describe('RunResultSchema', () => {
  it('accepts a result with unknown figures as null', () => {
    expect(RunResultSchema.parse(sampleResult())).toEqual(sampleResult());
  });

  it('latency.tpotMs is optional: results written before it existed stay valid', () => {
    const old = sampleResult();
    expect('tpotMs' in old.latency).toBe(false);
    expect(RunResultSchema.safeParse(old).success).toBe(true);
    const withTpot = {
      ...old,
      latency: { ...old.latency, tpotMs: { mean: 20, p50: 20, p95: 21, p99: 22 } },
    };
    expect(RunResultSchema.parse(withTpot).latency.tpotMs).toEqual({
      mean: 20,
      p50: 20,
      p95: 21,
      p99: 22,
    });
    expect(
      RunResultSchema.safeParse({ ...old, latency: { ...old.latency, tpotMs: null } }).success,
    ).toBe(true);
    expect(
      RunResultSchema.safeParse({
        ...old,
        latency: { ...old.latency, tpotMs: { mean: -1, p50: 0, p95: 0, p99: 0 } },
      }).success,
    ).toBe(false);
  });

  it('latency from the scheduled send time is optional: old results stay valid, new ones carry it', () => {
    const old = sampleResult();
    expect('ttftFromScheduledMs' in old.latency).toBe(false);
    const stats = { mean: 30, p50: 25, p95: 60, p99: 80 };
    const open = {
      ...old,
      latency: { ...old.latency, ttftFromScheduledMs: stats, e2eFromScheduledMs: null },
    };
    expect(RunResultSchema.parse(open).latency).toMatchObject({
      ttftFromScheduledMs: stats,
      e2eFromScheduledMs: null,
    });
    expect(
      RunResultSchema.safeParse({
        ...old,
        latency: { ...old.latency, e2eFromScheduledMs: { ...stats, p99: -1 } },
      }).success,
    ).toBe(false);
  });

  it('knows the client-saturated warning code', () => {
    expect(RESULT_WARNING_CODES).toContain('client-saturated');
  });

  it('rejects a missing-value guess of a wrong type and unknown keys', () => {
    const bad = { ...sampleResult(), energyPerOutputTokenJ: 'n/a' };
    expect(RunResultSchema.safeParse(bad).success).toBe(false);
    const extraKey = { ...sampleResult(), error: { type: 'x', message: 'y' } };
    expect(RunResultSchema.safeParse(extraKey).success).toBe(false);
  });

  it('rejects an unknown schema version and an energy method outside the enum', () => {
    expect(RunResultSchema.safeParse({ ...sampleResult(), schemaVersion: 2 }).success).toBe(false);
    const r = sampleResult();
    r.energy.method = 'guess' as never;
    expect(RunResultSchema.safeParse(r).success).toBe(false);
  });
});

describe('ManifestSchema', () => {
  const entry = (status: Manifest['entries'][number]['status']) => ({
    key: '0123456789abcdef_c0',
    configHash: '0123456789abcdef',
    cycle: 0,
    copy: 0,
    label: 'threads=1',
    status,
    resultFile: null,
    error: null,
    startedAt: null,
    endedAt: null,
    attempts: 0,
  });

  it('parses a manifest and counts entries by status', () => {
    const entries = [entry('pending'), entry('completed'), entry('completed'), entry('failed')];
    const manifest: Manifest = {
      schemaVersion: 1,
      toolVersion: '0.1.0',
      studyName: 's',
      designHash: 'fedcba9876543210',
      status: 'running',
      counts: countManifestEntries(entries),
      createdAt: '2026-01-01T00:00:00.000Z',
      updatedAt: '2026-01-01T00:00:00.000Z',
      entries,
    };
    expect(ManifestSchema.parse(manifest).counts).toEqual({
      total: 4,
      pending: 1,
      running: 0,
      completed: 2,
      failed: 1,
    });
    expect(ManifestSchema.safeParse({ ...manifest, status: 'done' }).success).toBe(false);
  });
});
