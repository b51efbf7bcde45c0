import { z } from 'zod';

/**
 * The run result: one JSON file per scheduled run, written by the worker in the child process.
 * camelCase (unlike configs, which keep the YAML's snake_case). Any value that was not measured
 * is `null`, never a guess and never a silent 0; `energy.unavailableReason` and `warnings` say why.
 */

/** Bumped whenever a field changes meaning or shape; readers refuse versions they do not know. */
export const RUN_RESULT_SCHEMA_VERSION = 1 as const;

const isoTimestamp = z.iso.datetime({ offset: true });
const nonNegative = z.number().nonnegative();
const nullableNonNegative = nonNegative.nullable();

/**
 * How an energy figure was obtained.
 * - `nvml-counter`: delta of NVML's total-energy counter (mJ), the most accurate source.
 * - `nvml-power-integral`: trapezoidal integral of NVML instant-power samples (counter missing,
 *   unsupported, or seen to reset/wrap during the window).
 * - `rapl`: CPU package energy from `/sys/class/powercap` (Intel/AMD RAPL).
 * - `mixed`: the run total combines devices measured by different methods (see `perDevice`).
 * - `none`: nothing could be measured; `unavailableReason` says why.
 */
export const EnergyMethodSchema = z.enum([
  'nvml-counter',
  'nvml-power-integral',
  'rapl',
  'mixed',
  'none',
]);
export type EnergyMethod = z.infer<typeof EnergyMethodSchema>;

/** Where a device's energy figure belongs: a GPU (NVML index) or a CPU package (RAPL index). */
export const EnergyDeviceKindSchema = z.enum(['gpu', 'cpu-package']);
export type EnergyDeviceKind = z.infer<typeof EnergyDeviceKindSchema>;

export const DeviceEnergySchema = z
  .object({
    /** NVML device index for `gpu`, RAPL package index for `cpu-package`. */
    index: z.int().nonnegative(),
    kind: EnergyDeviceKindSchema,
    method: EnergyMethodSchema.exclude(['mixed']),
    totalJ: nullableNonNegative,
    /**
     * True for host-wide energy (a RAPL CPU package) measured while other runs of the study ran
     * on the same host: it includes their share, so it is listed here and left out of the run's
     * `totalJ`. Absent otherwise.
     */
    shared: z.boolean().optional(),
  })
  .strict();
export type DeviceEnergy = z.infer<typeof DeviceEnergySchema>;

export const RunEnergySchema = z
  .object({
    method: EnergyMethodSchema,
    /** Raw energy over the measurement window, all devices summed. */
    totalJ: nullableNonNegative,
    /** `max(0, totalJ − baselineW × durationS)`; `null` without a baseline. */
    adjustedJ: nullableNonNegative,
    /** Idle power measured before loading the model; `null` when the baseline was off. */
    baselineW: nullableNonNegative,
    perDevice: z.array(DeviceEnergySchema),
    /** Why energy (or part of it) could not be measured; `null` when everything was. */
    unavailableReason: z.string().nullable(),
  })
  .strict();
export type RunEnergy = z.infer<typeof RunEnergySchema>;

/** Summary statistics of one latency distribution, in milliseconds. */
export const LatencyStatsSchema = z
  .object({
    mean: nonNegative,
    p50: nonNegative,
    p95: nonNegative,
    p99: nonNegative,
  })
  .strict();
export type LatencyStats = z.infer<typeof LatencyStatsSchema>;

export const RunLatencySchema = z
  .object({
    /** Time to first token per request. */
    ttftMs: LatencyStatsSchema.nullable(),
    /**
     * Inter-token latency: the gaps between successive chunks that carry tokens (vLLM's
     * definition); never includes the TTFT. A chunk of several tokens is one gap.
     */
    itlMs: LatencyStatsSchema.nullable(),
    /** End-to-end request latency. */
    e2eMs: LatencyStatsSchema.nullable(),
    /**
     * Time per output token, over requests: (E2E − TTFT) / (output tokens − 1) per request, with
     * the request's final token count; requests with fewer than two tokens have none. Absent in
     * results written before this field existed.
     */
    tpotMs: LatencyStatsSchema.nullable().optional(),
    /**
     * Open loop (a run with an arrival schedule): time to first token counted from when the
     * schedule said to send the request, not from when it left, so the client's own lateness
     * and any wait for a connection or a `max_concurrency` slot are in it (the latency a user
     * arriving on schedule would see; no coordinated omission). Absent for runs without a
     * schedule (closed loop, other engines) and in results written before it existed.
     */
    ttftFromScheduledMs: LatencyStatsSchema.nullable().optional(),
    /** End-to-end latency from the scheduled send time (see `ttftFromScheduledMs`). */
    e2eFromScheduledMs: LatencyStatsSchema.nullable().optional(),
  })
  .strict();
export type RunLatency = z.infer<typeof RunLatencySchema>;

/** Mirrors `TokenCountSource` in `@llem/engines` (domain must not depend on engines). */
export const TokenCountSourceSchema = z.enum([
  'engine',
  'server-usage',
  'counted-chunks',
  'program-report',
]);

export const RunTokensSchema = z
  .object({
    input: z.int().nonnegative().nullable(),
    output: z.int().nonnegative().nullable(),
    /** Where the counts came from (server `usage`, counted stream chunks, the program's report…). */
    source: TokenCountSourceSchema.nullable(),
  })
  .strict();

export const RunThroughputSchema = z
  .object({
    outputTokensPerS: nullableNonNegative,
    totalTokensPerS: nullableNonNegative,
    requestsPerS: nullableNonNegative,
  })
  .strict();

export const RunMemorySchema = z
  .object({
    /** Peak NVML used memory over the window (max over devices); `null` without NVML. */
    gpuPeakUsedMiB: nullableNonNegative,
    /** Peak resident set size of the child process. */
    rssPeakMiB: nullableNonNegative,
  })
  .strict();

/**
 * FLOPs estimate. `2-params-tokens` is 2 × parameterCount × (input + output tokens), the usual
 * dense-transformer approximation; `none` when the parameter count is unknown.
 */
export const FlopsMethodSchema = z.enum(['2-params-tokens', 'none']);
export const RunFlopsSchema = z
  .object({
    estimate: nullableNonNegative,
    method: FlopsMethodSchema,
    parameterCount: z.int().nonnegative().nullable(),
  })
  .strict();

/** What the runner saw on the GPU(s) right before dispatching the child. */
export const ResidualCheckSchema = z
  .object({
    /** `ok`: under threshold; `exceeded`: a warning was raised; `skipped`: no NVML or no devices. */
    status: z.enum(['ok', 'exceeded', 'skipped']),
    thresholdMb: nonNegative,
    devices: z.array(
      z
        .object({
          index: z.int().nonnegative(),
          usedMb: nonNegative,
          totalMb: nullableNonNegative,
          exceeded: z.boolean(),
        })
        .strict(),
    ),
    /** Why the check was skipped (e.g. "NVML not available"); `null` otherwise. */
    reason: z.string().nullable(),
    checkedAt: isoTimestamp,
  })
  .strict();
export type ResidualCheck = z.infer<typeof ResidualCheckSchema>;

/** A GPU a run was given (many-GPU studies): its NVML index and UUID (`null` when unreadable). */
export const RunDeviceSchema = z
  .object({
    index: z.int().nonnegative(),
    uuid: z.string().nullable(),
  })
  .strict();
export type RunDevice = z.infer<typeof RunDeviceSchema>;

/** The Slurm job a run was measured in: its job id, array job and task, and node. */
export const RunSlurmSchema = z
  .object({
    /** `SLURM_JOB_ID`: the job (for an array task, the task's own job id). */
    jobId: z.string().min(1),
    /** `SLURM_ARRAY_JOB_ID`: the array job (what `llem run --executor slurm` printed). */
    arrayJobId: z.string().min(1).nullable(),
    /** `SLURM_ARRAY_TASK_ID`. */
    arrayTaskId: z.string().min(1).nullable(),
    /** `SLURMD_NODENAME`: the node the run was measured on. */
    nodeName: z.string().min(1).nullable(),
  })
  .strict();
export type RunSlurm = z.infer<typeof RunSlurmSchema>;

/**
 * Well-known warning codes. The schema accepts any non-empty code so a new warning does not
 * break old readers; producers should use these where one fits.
 */
export const RESULT_WARNING_CODES = [
  'run-too-short',
  'persistence-mode-off',
  'residual-memory',
  'too-few-samples',
  'temperature-drift',
  'throttling',
  'energy-unavailable',
  'energy-counter-reset',
  'warmup-not-converged',
  'request-failures',
  'shared-host-energy',
  'client-saturated',
  'server-memory-left',
  'over-saturated',
  'saturation-below-sync',
] as const;
export type KnownWarningCode = (typeof RESULT_WARNING_CODES)[number];

export const RunWarningSchema = z
  .object({
    code: z.string().min(1),
    message: z.string(),
  })
  .strict();
export type RunWarning = z.infer<typeof RunWarningSchema>;

export const GpuInfoSchema = z
  .object({
    index: z.int().nonnegative(),
    name: z.string().nullable(),
    uuid: z.string().nullable(),
    memoryTotalMiB: nullableNonNegative,
    persistenceMode: z.boolean().nullable(),
  })
  .strict();

export const EnvironmentSchema = z
  .object({
    gpus: z.array(GpuInfoSchema),
    driverVersion: z.string().nullable(),
    cudaVersion: z.string().nullable(),
    cpu: z
      .object({
        model: z.string().nullable(),
        cores: z.int().nonnegative().nullable(),
      })
      .strict(),
    os: z
      .object({
        platform: z.string(),
        release: z.string().nullable(),
        arch: z.string(),
      })
      .strict(),
    nodeVersion: z.string(),
    /** e.g. node-llama-cpp's version, the served model's server header, the command's argv[0]. */
    engineVersion: z.string().nullable(),
    llemVersion: z.string().nullable(),
  })
  .strict();
export type RunEnvironment = z.infer<typeof EnvironmentSchema>;

/**
 * Which file a run read, so that two results with the same config hash can be checked to have
 * measured the same bytes (the hash covers the config, which names a model by path, not content).
 * `sha256` covers the whole file up to 256 MiB (`coverage: 'full'`); above that it covers the
 * size and three 1 MiB slices (start, middle, end: `'sampled'`), which catches a re-download,
 * re-quantisation or truncation without reading tens of GB before every run. A sampled value is a
 * fingerprint: it will not match `sha256sum`. Files of at most three slices are always hashed whole.
 */
export const FileIdentitySchema = z
  .object({
    /** Absolute path as the worker resolved it. */
    path: z.string().min(1),
    sizeBytes: z.int().nonnegative(),
    modifiedAt: isoTimestamp,
    sha256: z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lowercase hex characters'),
    coverage: z.enum(['full', 'sampled']),
  })
  .strict();
export type FileIdentity = z.infer<typeof FileIdentitySchema>;

/**
 * The run's input files. `null` when the input is not a local file (a synthetic dataset, a
 * model served behind `openai`, a `command` model that names no file) or could not be read.
 */
export const RunInputsSchema = z
  .object({
    model: FileIdentitySchema.nullable(),
    dataset: FileIdentitySchema.nullable(),
  })
  .strict();
export type RunInputs = z.infer<typeof RunInputsSchema>;

/**
 * Prefill vs decode: an **attribution** of the window's energy to the two phases of the requests,
 * not a measurement of either (a GPU reports one power for everything it does at once). Method
 * `request-phase-time-share`: each instant of the window goes to the phases of the requests in
 * flight then — prefill from a request's start to its first token, decode from there to its end —
 * in proportion to how many requests are in each (all of it to one phase when only one runs, as
 * with `llamacpp.parallel: 1`); instants with no request in either are `otherJ`. Each instant is
 * weighted by the power the sampler saw then (the power samples, else the energy counter's
 * deltas), and the three parts are scaled to add up to the window's `energy.totalJ`.
 */
export const PhaseEnergySchema = z
  .object({
    kind: z.literal('attribution'),
    method: z.literal('request-phase-time-share'),
    /**
     * What weighted the instants: the power samples (GPUs), the energy counter's deltas (RAPL
     * packages), both (`mixed`), or time alone (constant power) when neither was read.
     */
    weightedBy: z.enum(['power-samples', 'counter-deltas', 'mixed', 'time']),
    prefillJ: nullableNonNegative,
    decodeJ: nullableNonNegative,
    /** The window's energy while no request was in either phase (tokenising, between requests). */
    otherJ: nullableNonNegative,
    /** Seconds with at least one request in prefill, and in decode. */
    prefillS: nonNegative,
    decodeS: nonNegative,
    /** Prompt tokens of the requests attributed (those that produced a first token). */
    inputTokens: z.int().nonnegative().nullable(),
    /** Output tokens decoded after each request's first (the first comes out of the prefill). */
    decodedTokens: z.int().nonnegative().nullable(),
    /** `prefillJ ÷ inputTokens`. */
    energyPerInputTokenJ: nullableNonNegative,
    /** `decodeJ ÷ decodedTokens`. */
    energyPerOutputTokenJ: nullableNonNegative,
    /** Why the figures are `null`; `null` when they are there. */
    unavailableReason: z.string().nullable(),
  })
  .strict();
export type PhaseEnergy = z.infer<typeof PhaseEnergySchema>;

/**
 * The distribution of a per-request length in tokens: over the requests that have one. Integer
 * bounds; percentiles by linear interpolation.
 */
export const LengthDistributionSchema = z
  .object({
    count: z.int().nonnegative(),
    mean: nonNegative,
    min: nonNegative,
    p50: nonNegative,
    p90: nonNegative,
    p99: nonNegative,
    max: nonNegative,
  })
  .strict();
export type LengthDistribution = z.infer<typeof LengthDistributionSchema>;

/** What the workload asked for and what the engine reported, for one length. */
export const WorkloadLengthSchema = z
  .object({
    /**
     * The lengths the workload asked for: prompt tokens as built (exact, or estimated when
     * `lengths` is `approximate`) and `max_tokens` for output. `null` when unknown.
     */
    requested: LengthDistributionSchema.nullable(),
    /** The engine's counts over the successful requests; `null` when it reported none. */
    achieved: LengthDistributionSchema.nullable(),
  })
  .strict();

/**
 * The workload a run replayed: its format, how exact its lengths are, the requested and achieved
 * length distributions, and what the dataset file gave (entries skipped, a trace's span).
 * Optional: results written before it existed have none.
 */
export const RunWorkloadSchema = z
  .object({
    format: z.enum(['synthetic', 'jsonl', 'sharegpt', 'trace']),
    /** Measured requests. */
    requests: z.int().nonnegative(),
    /**
     * `exact`: prompt lengths were counted by the engine's own tokenizer (llama.cpp in-process, a
     * server's `/tokenize`) and generated prompts built to them; `approximate`: estimated (a
     * generated word ≈ a token; file text ≈ 4 characters a token).
     */
    lengths: z.enum(['exact', 'approximate']),
    /** Which tokenizer counted them, or why the lengths are approximate. */
    lengthSource: z.string(),
    /**
     * Input lengths count the prompt's text; what an engine reports may add the special tokens it
     * puts in front (BOS), so `achieved` can exceed `requested` by one or two.
     */
    inputLength: WorkloadLengthSchema,
    outputLength: WorkloadLengthSchema,
    /** Synthetic: conversations and turns, and shared prefixes. */
    conversations: z
      .object({ count: z.int().positive(), turns: z.int().positive() })
      .strict()
      .optional(),
    prefix: z
      .object({ tokens: z.int().positive(), groups: z.int().positive() })
      .strict()
      .optional(),
    /** A dataset file: entries read, used, skipped (no usable request, by reason) and filtered out. */
    entries: z
      .object({
        total: z.int().nonnegative(),
        usable: z.int().nonnegative(),
        used: z.int().nonnegative(),
        skipped: z.int().nonnegative(),
        skippedByReason: z.record(z.string(), z.int().nonnegative()),
        filtered: z.int().nonnegative(),
      })
      .strict()
      .optional(),
    /** A trace: its span (last send time, after `time_scale`) and the scale applied. */
    trace: z
      .object({
        durationS: nonNegative,
        timeScale: z.number().positive(),
        sharedBlocks: z.int().nonnegative(),
      })
      .strict()
      .optional(),
  })
  .strict();
export type RunWorkload = z.infer<typeof RunWorkloadSchema>;

export const RunWindowSchema = z
  .object({
    startedAt: isoTimestamp,
    endedAt: isoTimestamp,
    durationS: nonNegative,
  })
  .strict();

/** Prometheus metric types as a server declares them (`# TYPE`); `untyped` when it does not. */
export const PROMETHEUS_TYPES = ['counter', 'gauge', 'histogram', 'summary', 'untyped'] as const;
export const PrometheusTypeSchema = z.enum(PROMETHEUS_TYPES);
export type PrometheusType = z.infer<typeof PrometheusTypeSchema>;

/**
 * One scraped series over the measured window: a gauge's mean and max over the scrapes inside
 * the window (an `untyped` series not named `…_total` counts as a gauge); a counter's increase
 * between the scrapes at the window's edges and that per second; a histogram's or summary's
 * increase in observations (`count`) and their total (`sum`), and so the mean observation over
 * the window (e.g. vLLM's mean TTFT as the server saw it). `null` when the series was missing.
 */
export const ServerMetricSummarySchema = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('gauge'),
      mean: z.number().nullable(),
      max: z.number().nullable(),
    })
    .strict(),
  z
    .object({
      type: z.literal('counter'),
      delta: z.number().nullable(),
      perS: z.number().nullable(),
    })
    .strict(),
  z
    .object({
      type: z.enum(['histogram', 'summary']),
      count: z.number().nullable(),
      sum: z.number().nullable(),
      mean: z.number().nullable(),
    })
    .strict(),
]);
export type ServerMetricSummary = z.infer<typeof ServerMetricSummarySchema>;

/** How a managed server's process ended (`llem` stops it after the window). */
export const ServerExitSchema = z
  .object({
    /** Exit code, or `null` when a signal ended it. */
    code: z.int().nullable(),
    signal: z.string().nullable(),
    /** True when it outlived `server.stop_grace_s` after SIGTERM and was SIGKILLed. */
    forced: z.boolean(),
    /** Seconds from SIGTERM to its exit. */
    stopS: nonNegative,
  })
  .strict();
export type ServerExit = z.infer<typeof ServerExitSchema>;

/**
 * The managed server of a run (`server:` in the config); absent for runs without one. Its
 * start-up is outside the measured window: `startupS` from the spawn of the attempt that got
 * ready to the first 2xx on `server.ready.path`, `startupJ` the energy of the run's devices over
 * that span (same methods as `energy`; `null` when not measured).
 */
export const RunServerSchema = z
  .object({
    /** The command line that ran (`server.argv` + `server.args`, `{port}` filled in). */
    argv: z.array(z.string()),
    pid: z.int().nullable(),
    /** The port llem picked for `{port}`, else the port of `openai.base_url`. */
    port: z.int().nullable(),
    /** Start attempts: more than 1 when the port was taken and another one tried. */
    attempts: z.int().min(1),
    startupS: nonNegative,
    startupJ: nullableNonNegative,
    startupEnergyMethod: EnergyMethodSchema,
    exit: ServerExitSchema,
    /**
     * NVML used memory on each measured GPU before the server started and after it stopped; a
     * `server-memory-left` warning when what it left exceeds the residual-memory threshold.
     */
    gpuMemory: z.array(
      z
        .object({
          index: z.int().nonnegative(),
          beforeStartMiB: nullableNonNegative,
          afterStopMiB: nullableNonNegative,
        })
        .strict(),
    ),
    /** The scraped `/metrics`; `null` with `server.metrics: false`. */
    metrics: z
      .object({
        /** The metrics file beside the result (`runs/<key>.metrics.jsonl`), when written. */
        file: z.string().nullable(),
        path: z.string(),
        intervalMs: z.int().positive(),
        scrapes: z.int().nonnegative(),
        failedScrapes: z.int().nonnegative(),
        /** Why there is no summary (no `/metrics` route, every scrape failed); `null` otherwise. */
        unavailableReason: z.string().nullable(),
        /** By series (`name{label="value",…}`), histogram buckets left out (they are in the file). */
        series: z.record(z.string(), ServerMetricSummarySchema),
      })
      .strict()
      .nullable(),
  })
  .strict();
export type RunServer = z.infer<typeof RunServerSchema>;

/** What a sweep point is: the synchronous one, the saturation one, or an open-loop rate. */
export const SWEEP_POINT_KINDS = ['sync', 'saturation', 'rate'] as const;
export const SweepPointKindSchema = z.enum(SWEEP_POINT_KINDS);
export type SweepPointKind = z.infer<typeof SweepPointKindSchema>;

/** A linear trend over a point's send times: its slope and how sure it is (t = slope ÷ its SE). */
export const TrendSchema = z
  .object({
    /** Per second of send time (ms/s for TTFT, requests/s for in-flight requests). */
    slopePerS: z.number(),
    /** The slope's t statistic; `null` with fewer than 3 requests or no spread. */
    t: z.number().nullable(),
    /** How much the trend grows over the point, as a share of the mean (slope × span ÷ mean). */
    relativeGrowth: z.number().nullable(),
  })
  .strict();
export type Trend = z.infer<typeof TrendSchema>;

/**
 * Over-saturation of an open-loop point: the server cannot keep up with the rate when the TTFT
 * and the requests in flight both trend up significantly over the point's send times (the queue
 * grows for as long as the point lasts). `detected` says whether both did; `reason` says so in
 * words (`null` when not detected).
 */
export const OverSaturationSchema = z
  .object({
    detected: z.boolean(),
    ttftMs: TrendSchema.nullable(),
    inFlight: TrendSchema.nullable(),
    reason: z.string().nullable(),
  })
  .strict();
export type OverSaturation = z.infer<typeof OverSaturationSchema>;

/**
 * One load point of an `openai.load: sweep` run: which load, its own energy window and the same
 * metrics block as a run (`window`, `energy`, `tokens`, `throughput`, `energyPerOutputTokenJ`,
 * `latency`, `memory`, `warnings`, `extra`).
 */
export const SweepPointSchema = z
  .object({
    /** 0-based position in the sweep: 0 synchronous, 1 saturation, then the rates in order. */
    index: z.int().nonnegative(),
    kind: SweepPointKindSchema,
    /** Requests in flight (closed loop: `sync` 1, `saturation` its cap); `null` for a rate point. */
    concurrency: z.int().positive().nullable(),
    /** Open-loop target (requests/s); `null` for the closed-loop points. */
    targetRate: nullableNonNegative,
    /** Completed requests per second of the point's window (what the plots put on the x axis). */
    achievedRequestRate: nullableNonNegative,
    window: RunWindowSchema,
    energy: RunEnergySchema,
    tokens: RunTokensSchema,
    throughput: RunThroughputSchema,
    energyPerOutputTokenJ: nullableNonNegative,
    latency: RunLatencySchema,
    memory: RunMemorySchema,
    /** Rate points: the over-saturation check; `null` for the closed-loop points. */
    overSaturation: OverSaturationSchema.nullable(),
    warnings: z.array(RunWarningSchema),
    extra: z.record(z.string(), z.unknown()),
  })
  .strict();
export type SweepPoint = z.infer<typeof SweepPointSchema>;

/** How a sweep went: the throughputs its rates came from, the rates, and why it stopped early. */
export const SweepSummarySchema = z
  .object({
    /** `openai.sweep_points`: the points planned. */
    plannedPoints: z.int().positive(),
    /** Achieved request rates of the synchronous and saturation points (requests/s). */
    syncRequestRate: nullableNonNegative,
    saturationRequestRate: nullableNonNegative,
    /** The open-loop rates planned between them, in order (requests/s). */
    rates: z.array(nonNegative),
    /** The point at which the rate stopped rising (over-saturated); `null` when it did not stop. */
    stoppedAtPoint: z.int().nonnegative().nullable(),
    /** Why rates were skipped (over-saturation, or no rate to plan); `null` when none were. */
    stopReason: z.string().nullable(),
  })
  .strict();
export type SweepSummary = z.infer<typeof SweepSummarySchema>;

export const RunResultSchema = z
  .object({
    schemaVersion: z.literal(RUN_RESULT_SCHEMA_VERSION),
    /** The scheduled run's key (`ScheduledRun.key`), unique within the study. */
    runId: z.string().min(1),
    configHash: z.string().regex(/^[0-9a-f]{16}$/, 'expected 16 lowercase hex characters'),
    cycle: z.int().nonnegative(),
    engine: z.enum(['llamacpp', 'openai', 'command']),
    model: z.string(),
    /** The effective experiment config (snake_case, defaults applied) that was measured. */
    config: z.record(z.string(), z.unknown()),
    window: RunWindowSchema,
    energy: RunEnergySchema,
    tokens: RunTokensSchema,
    throughput: RunThroughputSchema,
    energyPerOutputTokenJ: nullableNonNegative,
    latency: RunLatencySchema,
    memory: RunMemorySchema,
    flops: RunFlopsSchema,
    residualCheck: ResidualCheckSchema.nullable(),
    /**
     * The GPUs the run was given when the study assigns devices (`execution.devices`): energy,
     * samples, memory and throttling come from exactly these. Absent otherwise.
     */
    devices: z.array(RunDeviceSchema).optional(),
    /**
     * The Slurm job the run was measured in (`llem run --executor slurm`, or any runner inside a
     * Slurm job). Absent otherwise, and in results written before this field existed.
     */
    slurm: RunSlurmSchema.optional(),
    /** The model and dataset files the run read; absent in results written before this field existed. */
    inputs: RunInputsSchema.optional(),
    /**
     * In-process llama.cpp runs: the window's energy attributed to prefill and decode (see
     * `PhaseEnergySchema`). Absent for other engines and in results written before it existed.
     */
    phaseEnergy: PhaseEnergySchema.optional(),
    /**
     * The workload replayed: format, exact or approximate lengths, requested and achieved length
     * distributions. Absent in results written before this field existed.
     */
    workload: RunWorkloadSchema.optional(),
    /** The managed server (`server:` in the config); absent for runs without one. */
    server: RunServerSchema.optional(),
    /**
     * `openai.load: sweep`: each load point with its own window and metrics, in the order they
     * ran; the run's top-level figures then cover the whole sweep. Absent for other runs and in
     * results written before sweeps existed.
     */
    points: z.array(SweepPointSchema).optional(),
    /** `openai.load: sweep`: how the sweep was planned and why it stopped early, if it did. */
    sweep: SweepSummarySchema.optional(),
    warnings: z.array(RunWarningSchema),
    environment: EnvironmentSchema,
    /** Engine-specific figures (openai: goodput, steady-state window and its energy per token). */
    extra: z.record(z.string(), z.unknown()),
  })
  .strict();
export type RunResult = z.infer<typeof RunResultSchema>;

/** The result schema of every `schemaVersion` this llem reads (all of them, so far only 1). */
export const RUN_RESULT_SCHEMAS: Readonly<Record<number, typeof RunResultSchema>> = {
  1: RunResultSchema,
};

/** What `checkRunResult` found. */
export type RunResultCheck =
  | { status: 'valid'; result: RunResult }
  /** Not a result this or any earlier llem wrote: why, in words (first issues with field paths). */
  | { status: 'invalid'; reason: string }
  /** Written by a newer llem (a `schemaVersion` this one does not know): valid, not readable here. */
  | { status: 'newer'; version: number };

/**
 * Check a parsed result file against the schema of the version that wrote it (its
 * `schemaVersion`). Resume re-runs a run whose result is `invalid`; a `newer` result is left as
 * it is (it is some later llem's valid measurement).
 *
 * @example
 * const check = checkRunResult(JSON.parse(text));
 * if (check.status === 'invalid') console.error(check.reason); // "energy.totalJ: expected number…"
 */
export function checkRunResult(raw: unknown): RunResultCheck {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { status: 'invalid', reason: 'not a JSON object' };
  }
  const version = (raw as { schemaVersion?: unknown }).schemaVersion;
  if (typeof version !== 'number' || !Number.isInteger(version)) {
    return { status: 'invalid', reason: 'schemaVersion: missing or not an integer' };
  }
  const schema = RUN_RESULT_SCHEMAS[version];
  if (!schema) {
    const known = Math.max(...Object.keys(RUN_RESULT_SCHEMAS).map(Number));
    if (version > known) return { status: 'newer', version };
    return { status: 'invalid', reason: `schemaVersion: ${version} was never written by llem` };
  }
  const parsed = schema.safeParse(raw);
  if (parsed.success) return { status: 'valid', result: parsed.data };
  const reason = parsed.error.issues
    .slice(0, 3)
    .map((i) => `${i.path.length > 0 ? i.path.map(String).join('.') : '(root)'}: ${i.message}`)
    .join('; ');
  return { status: 'invalid', reason };
}
