/**
 * Builds realistic study directories for tests: a valid manifest.json, one RunResult JSON per
 * completed run (validated by the domain schema), sampler timeseries CSVs and failed entries.
 * Shared with the CLI tests (apps/cli/test) by relative import.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  countManifestEntries,
  type Manifest,
  type ManifestEntry,
  type MeasuredRequest,
  RequestRecordSchema,
  type RunResult,
  RunResultSchema,
  runFiles,
} from '@llem/domain';

export interface FixtureRun {
  cycle: number;
  /** Default 'completed'. */
  status?: ManifestEntry['status'];
  error?: { type: string; message: string };
  /** Headline figures; everything else is derived or fixed. */
  tokensPerS?: number | null;
  energyPerTokenJ?: number | null;
  ttftP50Ms?: number;
  itlP50Ms?: number;
  gpuPeakMiB?: number | null;
  warnings?: { code: string; message: string }[];
  /**
   * Make it an openai run with `extra.steadyState.energy.energyPerOutputTokenJ` set to this
   * (`null`: a steady state too short to measure). Omitted: a llamacpp run with `extra: {}`.
   */
  steadyStateEnergyPerTokenJ?: number | null;
  /** `extra.goodput.share` of an openai run (`null`: `goodput: null`, no SLOs set). */
  goodputShare?: number | null;
  /** Write a timeseries CSV for this run (default true for completed runs). */
  timeseries?: boolean;
  /** `inputs` of the result (omitted: no `inputs` field, as in older results). */
  inputs?: RunResult['inputs'];
  /** `latency.tpotMs.p50` (omitted: no `tpotMs`, as in older results). */
  tpotP50Ms?: number;
  /** Per-request records written to `runs/<key>.requests.jsonl` (omitted: no file). */
  requests?: MeasuredRequest[];
  /**
   * Make it an open-loop openai run: `latency.ttftFromScheduledMs` and `extra.dispatch` (at 100
   * req/s) with these figures; `saturated` adds the `client-saturated` warning the harness would.
   */
  openLoop?: { ttftFromScheduledP50Ms: number; clientLagP99Ms: number; saturated?: boolean };
}

export interface FixtureConfig {
  label: string;
  /** 16 hex; derived from the label when omitted. */
  hash?: string;
  runs: FixtureRun[];
}

export interface FixtureStudy {
  name?: string;
  designHash?: string;
  status?: Manifest['status'];
  configs: FixtureConfig[];
  /** As `llem run` writes `skipped.json` (@llem/domain's `SkippedFileSchema`). */
  skipped?: { label: string; reasons: { path: string; message: string }[] }[];
  /** Parent dir; a fresh temp dir when omitted. */
  parent?: string;
  dirName?: string;
  gpu?: boolean;
}

/** A stable 16-hex hash from text (fixtures only need uniqueness). */
export function fakeHash(text: string): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  for (let i = 0; i < text.length; i++) {
    h1 = Math.imul(h1 ^ text.charCodeAt(i), 0x01000193) >>> 0;
    h2 = Math.imul(h2 ^ text.charCodeAt(i), 0x5bd1e995) >>> 0;
  }
  return (h1.toString(16).padStart(8, '0') + h2.toString(16).padStart(8, '0')).slice(0, 16);
}

const T0 = Date.parse('2026-03-01T12:00:00.000Z');

export function makeResult(
  configHash: string,
  label: string,
  run: FixtureRun,
  key: string,
  gpu: boolean,
): RunResult {
  const durationS = 20;
  const output = 640;
  const tps = run.tokensPerS === undefined ? output / durationS : run.tokensPerS;
  const ept = run.energyPerTokenJ === undefined ? 0.5 : run.energyPerTokenJ;
  const totalJ = ept === null ? null : ept * output;
  const ttft = run.ttftP50Ms ?? 120;
  const itl = run.itlP50Ms ?? 30;
  const start = new Date(T0 + run.cycle * 60_000);
  const result: RunResult = {
    schemaVersion: 1,
    runId: key,
    configHash,
    cycle: run.cycle,
    engine: 'llamacpp',
    model: 'builtin:tiny',
    config: { label, llamacpp: { batch_size: 256 } },
    window: {
      startedAt: start.toISOString(),
      endedAt: new Date(start.getTime() + durationS * 1000).toISOString(),
      durationS,
    },
    energy: {
      method: totalJ === null ? 'none' : gpu ? 'nvml-counter' : 'rapl',
      totalJ,
      adjustedJ: totalJ === null ? null : totalJ * 0.8,
      baselineW: totalJ === null ? null : 10,
      perDevice:
        totalJ === null
          ? []
          : [
              {
                index: 0,
                kind: gpu ? 'gpu' : 'cpu-package',
                method: gpu ? 'nvml-counter' : 'rapl',
                totalJ,
              },
            ],
      unavailableReason: totalJ === null ? 'RAPL not readable (permission denied)' : null,
    },
    tokens: { input: 2048, output, source: 'engine' },
    throughput: {
      outputTokensPerS: tps,
      totalTokensPerS: tps === null ? null : tps * 4.2,
      requestsPerS: 1.6,
    },
    energyPerOutputTokenJ: ept,
    latency: {
      ttftMs: { mean: ttft * 1.1, p50: ttft, p95: ttft * 1.8, p99: ttft * 2.2 },
      itlMs: { mean: itl * 1.05, p50: itl, p95: itl * 1.5, p99: itl * 2 },
      e2eMs: { mean: 600, p50: 580, p95: 900, p99: 1000 },
      ...(run.tpotP50Ms !== undefined
        ? {
            tpotMs: {
              mean: run.tpotP50Ms,
              p50: run.tpotP50Ms,
              p95: run.tpotP50Ms * 1.2,
              p99: run.tpotP50Ms * 1.3,
            },
          }
        : {}),
    },
    memory: {
      gpuPeakUsedMiB: run.gpuPeakMiB === undefined ? (gpu ? 2048 : null) : run.gpuPeakMiB,
      rssPeakMiB: 512,
    },
    flops: { estimate: 1e12, method: '2-params-tokens', parameterCount: 100_000_000 },
    residualCheck: null,
    ...(run.inputs ? { inputs: run.inputs } : {}),
    warnings: run.warnings ?? [],
    environment: {
      gpus: gpu
        ? [
            {
              index: 0,
              name: 'NVIDIA H100 80GB HBM3',
              uuid: 'GPU-1',
              memoryTotalMiB: 81559,
              persistenceMode: true,
            },
          ]
        : [],
      driverVersion: gpu ? '550.54.15' : null,
      cudaVersion: gpu ? '12.4' : null,
      cpu: { model: 'Test CPU @ 3.0GHz', cores: 2 },
      os: { platform: 'linux', release: '6.1.0', arch: 'x64' },
      nodeVersion: '20.19.0',
      engineVersion: '3.14.0',
      llemVersion: '0.1.0',
    },
    extra: {},
  };
  if (run.openLoop) {
    const { ttftFromScheduledP50Ms: from, clientLagP99Ms: lag, saturated } = run.openLoop;
    result.engine = 'openai';
    result.config = { label, openai: { request_rate: 100 } };
    result.latency.ttftFromScheduledMs = { mean: from, p50: from, p95: from * 2, p99: from * 3 };
    result.latency.e2eFromScheduledMs = { mean: 900, p50: 880, p95: 1500, p99: 1800 };
    const wait = (p99: number) => ({ p50: p99 / 10, p95: p99 / 2, p99, max: p99 * 2 });
    result.extra = {
      dispatch: {
        scheduled: 2000,
        sent: 2000,
        targetRate: 100,
        scheduledRate: 101,
        slotLimitedRate: null,
        achievedSendRate: saturated ? 60 : 100.5,
        sendSpanS: 19.9,
        clientLagMs: wait(lag),
        connectionWaitMs: wait(0.5),
        maxConcurrency: null,
        maxClientLagMs: 5,
        connections: { opened: 4, reused: 1996 },
      },
    };
    if (saturated) {
      result.warnings = [
        ...result.warnings,
        {
          code: 'client-saturated',
          message: `the client could not keep the arrival schedule: it sent requests late (clientLagMs p99 ${lag} ms)`,
        },
      ];
    }
  }
  if (run.steadyStateEnergyPerTokenJ !== undefined || run.goodputShare !== undefined) {
    result.engine = 'openai';
    result.config = { label, openai: { steady_state: true } };
    const sse = run.steadyStateEnergyPerTokenJ ?? null;
    // 400 of the 640 tokens arrived inside a 12 s steady-state window (the shape @llem/measure writes).
    result.extra = {
      steadyState: {
        startMs: 4000,
        endMs: 16000,
        durationS: 12,
        rule: 'target-concurrency',
        targetConcurrency: 8,
        outputTokens: 400,
        requestIds: [],
        requests: 24,
        energy: {
          method: sse === null ? 'none' : 'nvml-counter',
          durationS: 12,
          totalJ: sse === null ? null : sse * 400,
          adjustedJ: sse === null ? null : sse * 400 - 120,
          perDevice: [],
          energyPerOutputTokenJ: sse,
          adjustedEnergyPerOutputTokenJ: sse === null ? null : (sse * 400 - 120) / 400,
          samplesInWindow: sse === null ? 2 : 120,
          unavailableReason: sse === null ? 'steady state held 2 readings (need 3)' : null,
        },
      },
      goodput:
        run.goodputShare === undefined || run.goodputShare === null
          ? null
          : {
              slo: { ttftMs: 500, itlMs: null, e2eMs: null },
              met: Math.round(run.goodputShare * 32),
              total: 32,
              share: run.goodputShare,
              requestsPerS: 1.6 * run.goodputShare,
            },
    };
  }
  return RunResultSchema.parse(result);
}

/** Write a study directory and return its path. */
export function buildStudyDir(spec: FixtureStudy): string {
  const parent = spec.parent ?? mkdtempSync(join(tmpdir(), 'llem-report-'));
  const name = spec.name ?? 'fixture';
  const dir = join(parent, spec.dirName ?? `${name}_20260301T120000Z`);
  mkdirSync(join(dir, 'runs'), { recursive: true });
  const gpu = spec.gpu ?? true;
  const entries: ManifestEntry[] = [];
  const maxCycle = Math.max(...spec.configs.flatMap((c) => c.runs.map((r) => r.cycle)));
  // Interleaved order: cycle by cycle, config by config, like `order: interleaved`.
  for (let cycle = 0; cycle <= maxCycle; cycle++) {
    for (const config of spec.configs) {
      const hash = config.hash ?? fakeHash(config.label);
      for (const run of config.runs.filter((r) => r.cycle === cycle)) {
        const key = `${hash}_c${cycle}`;
        const status = run.status ?? 'completed';
        const resultFile = status === 'completed' ? `runs/${key}.json` : null;
        if (resultFile) {
          writeFileSync(
            join(dir, resultFile),
            JSON.stringify(makeResult(hash, config.label, run, key, gpu)),
          );
          if (run.requests) {
            const lines = run.requests.map((r) => JSON.stringify(RequestRecordSchema.parse(r)));
            writeFileSync(join(dir, runFiles(key).requests), `${lines.join('\n')}\n`);
          }
          if (run.timeseries ?? true) {
            // The column layout @llem/measure writes: a baseline window, then the measurement.
            const lines = [
              'window,t_ms,device,power_w,memory_used_mib,memory_total_mib,temperature_c,utilization_gpu_pct,sm_clock_mhz,clock_event_reasons,energy_j',
            ];
            for (let i = 0; i <= 20; i++)
              lines.push(`baseline,${i * 100},gpu0,60.000,512,81559,40.0,0,210,0,`);
            for (let i = 0; i <= 200; i++) {
              const p = 250 + 80 * Math.sin(i / 9) + (i % 7);
              const t = 45 + (i / 200) * 20 + Math.sin(i / 15);
              lines.push(
                `measure,${i * 100},gpu0,${p.toFixed(3)},2048,81559,${t.toFixed(1)},${90 + (i % 10)},1980,0,${(i * 25).toFixed(3)}`,
              );
            }
            writeFileSync(join(dir, `runs/${key}.timeseries.csv`), `${lines.join('\n')}\n`);
          }
        }
        const startedAt = status === 'pending' ? null : new Date(T0 + cycle * 60_000).toISOString();
        entries.push({
          key,
          configHash: hash,
          cycle,
          copy: 0,
          label: config.label,
          status,
          resultFile,
          error:
            status === 'failed' ? (run.error ?? { type: 'crash', message: 'exit code 1' }) : null,
          startedAt,
          endedAt:
            status === 'completed' || status === 'failed'
              ? new Date(T0 + cycle * 60_000 + 20_000).toISOString()
              : null,
          attempts: status === 'pending' ? 0 : 1,
        });
      }
    }
  }
  const manifest: Manifest = {
    schemaVersion: 1,
    toolVersion: '0.1.0',
    studyName: name,
    designHash: spec.designHash ?? fakeHash(spec.configs.map((c) => c.label).join('|')),
    status: spec.status ?? 'completed',
    counts: countManifestEntries(entries),
    createdAt: new Date(T0).toISOString(),
    updatedAt: new Date(T0 + 3_600_000).toISOString(),
    entries,
  };
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2));
  if (spec.skipped) writeFileSync(join(dir, 'skipped.json'), JSON.stringify(spec.skipped));
  return dir;
}

/** A typical 4-config GPU study: 3 cycles each, one failed run, a frontier of two configs. */
export function standardStudy(parent?: string): string {
  return buildStudyDir({
    name: 'batch-vs-threads',
    ...(parent ? { parent } : {}),
    skipped: [
      {
        label: 'batch_size=4096',
        reasons: [{ path: 'llamacpp.batch_size', message: 'must be ≤ context_size (1024)' }],
      },
    ],
    configs: [
      {
        label: 'batch_size=64,threads=1',
        runs: [
          { cycle: 0, tokensPerS: 20, energyPerTokenJ: 0.9, ttftP50Ms: 200, itlP50Ms: 50 },
          { cycle: 1, tokensPerS: 22, energyPerTokenJ: 0.8, ttftP50Ms: 210, itlP50Ms: 48 },
          { cycle: 2, tokensPerS: 21, energyPerTokenJ: 0.85, ttftP50Ms: 190, itlP50Ms: 49 },
        ],
      },
      {
        label: 'batch_size=256,threads=1',
        runs: [
          { cycle: 0, tokensPerS: 40, energyPerTokenJ: 0.5, ttftP50Ms: 150, itlP50Ms: 25 },
          { cycle: 1, tokensPerS: 42, energyPerTokenJ: 0.52, ttftP50Ms: 160, itlP50Ms: 24 },
          {
            cycle: 2,
            status: 'failed',
            error: { type: 'timeout', message: 'no result after 600 s; SIGTERM then SIGKILL' },
          },
        ],
      },
      {
        label: 'batch_size=64,threads=2',
        runs: [
          { cycle: 0, tokensPerS: 30, energyPerTokenJ: 0.3, ttftP50Ms: 120, itlP50Ms: 33 },
          { cycle: 1, tokensPerS: 31, energyPerTokenJ: 0.32, ttftP50Ms: 125, itlP50Ms: 32 },
          {
            cycle: 2,
            tokensPerS: 29,
            energyPerTokenJ: 0.31,
            ttftP50Ms: 118,
            itlP50Ms: 34,
            warnings: [
              { code: 'throttling', message: 'clock-event reasons: HW_SLOWDOWN seen in 3 samples' },
            ],
          },
        ],
      },
      {
        label: 'batch_size=256,threads=2',
        runs: [
          { cycle: 0, tokensPerS: 25, energyPerTokenJ: 0.6, ttftP50Ms: 140, itlP50Ms: 40 },
          { cycle: 1, tokensPerS: 26, energyPerTokenJ: 0.62, ttftP50Ms: 142, itlP50Ms: 39 },
          { cycle: 2, tokensPerS: 24, energyPerTokenJ: 0.58, ttftP50Ms: 139, itlP50Ms: 41 },
        ],
      },
    ],
  });
}

/**
 * Two openai configs with steady-state energy and goodput, and one llamacpp config without
 * either. Config B's cycle 1 had a steady state too short to measure (its figure is `null`).
 */
export function openaiStudy(parent?: string): string {
  return buildStudyDir({
    name: 'openai-concurrency',
    ...(parent ? { parent } : {}),
    configs: [
      {
        label: 'concurrency=8',
        runs: [
          { cycle: 0, steadyStateEnergyPerTokenJ: 0.4, goodputShare: 0.75 },
          { cycle: 1, steadyStateEnergyPerTokenJ: 0.5, goodputShare: 0.875 },
          { cycle: 2, steadyStateEnergyPerTokenJ: 0.6, goodputShare: 1 },
        ],
      },
      {
        label: 'concurrency=16',
        runs: [
          { cycle: 0, steadyStateEnergyPerTokenJ: 0.3, goodputShare: 0.5 },
          { cycle: 1, steadyStateEnergyPerTokenJ: null, goodputShare: 0.625 },
          { cycle: 2, steadyStateEnergyPerTokenJ: 0.35, goodputShare: 0.75 },
        ],
      },
      { label: 'llamacpp', runs: [{ cycle: 0 }, { cycle: 1 }, { cycle: 2 }] },
    ],
  });
}

/**
 * `n` measured requests spread over a 20 s window: TTFT 100–200 ms, E2E about 1 s, one failure
 * when `failed` is set.
 */
export function fixtureRequests(n: number, failed = false): MeasuredRequest[] {
  return Array.from({ length: n }, (_, id) => ({
    id,
    sentMs: (id * 20_000) / n,
    ttftMs: failed && id === n - 1 ? null : 100 + (id % 5) * 25,
    e2eMs: 900 + (id % 7) * 30,
    chunkGapsMs: [20, 20, 21],
    tpotMs: failed && id === n - 1 ? null : 20.5,
    inputTokens: 64,
    outputTokens: failed && id === n - 1 ? null : 4,
    tokenSource: 'server-usage' as const,
    retries: id === 3 ? 1 : 0,
    error: failed && id === n - 1 ? { type: 'connection_refused', message: 'ECONNREFUSED' } : null,
  }));
}

/**
 * Two open-loop openai configs: `rate=100` kept its schedule in every cycle; `rate=5000` was
 * beyond the client in two of its three cycles (`client-saturated`). Shared with the CLI tests.
 */
export function openLoopStudy(parent?: string): string {
  return buildStudyDir({
    name: 'open-loop',
    ...(parent ? { parent } : {}),
    configs: [
      {
        label: 'rate=100',
        runs: [0, 1, 2].map((cycle) => ({
          cycle,
          ttftP50Ms: 100,
          openLoop: { ttftFromScheduledP50Ms: 101, clientLagP99Ms: 0.4 },
        })),
      },
      {
        label: 'rate=5000',
        runs: [
          { cycle: 0, ttftP50Ms: 90, openLoop: { ttftFromScheduledP50Ms: 95, clientLagP99Ms: 2 } },
          {
            cycle: 1,
            ttftP50Ms: 90,
            openLoop: { ttftFromScheduledP50Ms: 900, clientLagP99Ms: 800, saturated: true },
          },
          {
            cycle: 2,
            ttftP50Ms: 90,
            openLoop: { ttftFromScheduledP50Ms: 1100, clientLagP99Ms: 950, saturated: true },
          },
        ],
      },
    ],
  });
}
