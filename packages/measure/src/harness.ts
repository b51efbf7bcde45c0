import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type {
  EngineName,
  MeasuredRequest,
  ResidualCheck,
  RunDevice,
  RunResult,
  RunServer,
  RunSlurm,
  RunWarning,
  ServerConfig,
  ServerMetricsScrape,
} from '@llem/domain';
import { DEFAULT_SWEEP_POINTS, parseExperimentConfig } from '@llem/domain';
import type { Engine, EngineContext, EngineInfo, SpawnInGroup } from '@llem/engines';
import { CleanupRegistry, sleep as defaultSleep, type Logger, noopLogger } from '@llem/resilience';
import { buildWarmupRequests, type DatasetConfig, loadDataset, summariseSource } from './dataset';
import type { EnergyChannel } from './energy/channel';
import { snapshotEnvironment } from './environment';
import type { GpuProbe } from './gpu';
import { identifyInputs } from './inputs';
import { measureBaseline } from './internal/baseline';
import {
  type EnergySettings,
  type GpuProbeOutcome,
  openEnergySources,
} from './internal/energy-sources';
import { Recorder } from './internal/recorder';
import { buildResult, type ResultInput } from './internal/result';
import {
  MetricsScraper,
  type ServedConfig,
  type StartedServer,
  startServerStep,
  stopServerStep,
} from './internal/server';
import { recordSweep, type SweepPlan, type SweepRecording, sweepPoint } from './internal/sweep';
import { recordWindow, type WindowRecording } from './internal/window';
import { prepareWorkload } from './internal/workload';
import { timeseriesCsv } from './sampler';
import { metricsFileLines } from './server-metrics';
import { runWarmup, type WarmupConfig, warmupRequestCount } from './warmup';
import { DEFAULT_WARNING_THRESHOLDS, type WarningThresholds } from './warnings';

export type { GpuProbeOutcome } from './internal/energy-sources';

/** The parts of an `@llem/domain` `ExperimentConfig` the harness reads (snake_case). */
export interface HarnessConfig {
  engine: EngineName;
  model: string;
  dataset: DatasetConfig;
  max_output_tokens: number;
  warmup?: WarmupConfig | undefined;
  baseline?: { enabled: boolean; duration_s: number } | undefined;
  energy?:
    | {
        backend: 'auto' | 'nvml' | 'rapl' | 'none';
        sample_interval_ms: number;
        devices: number[];
      }
    | undefined;
  /** A managed server (`engine: openai` only): started after the baseline, stopped after the window. */
  server?: ServerConfig | undefined;
  openai?:
    | {
        base_url?: string | undefined;
        /** `sweep`: the run measures a series of load points (`internal/sweep.ts`). */
        load?: 'sweep' | undefined;
        sweep_points?: number | undefined;
        max_concurrency?: number | undefined;
      }
    | undefined;
}

/** One run to measure: identity fields for the result plus the effective config. */
export interface MeasureInput<C extends HarnessConfig = HarnessConfig> {
  runId: string;
  configHash: string;
  cycle: number;
  config: C;
  /** What the runner saw before dispatch; copied into the result. */
  residualCheck?: ResidualCheck | null;
  llemVersion?: string | null;
  /**
   * The GPUs the run was given (a study with `execution.devices`): energy, samples, memory and
   * throttling come from exactly these, in place of `energy.devices`; the result records them.
   * The config (and its hash) keep `energy.devices` as written.
   */
  devices?: RunDevice[] | undefined;
  /**
   * Other runs may run on this host at the same time: host-wide energy (RAPL CPU packages) is
   * marked `shared`, left out of `totalJ`, and a `shared-host-energy` warning says so.
   */
  sharedHost?: boolean | undefined;
  /** The Slurm job the run is measured in (job, array job and task, node); the result records it. */
  slurm?: RunSlurm | undefined;
  /**
   * Where a managed server's stdout and stderr go (`runs/<key>.server.log` in a study). Default:
   * a file in the OS temp directory.
   */
  serverLogFile?: string | undefined;
}

/** Everything the harness touches outside itself; every field has a production default. */
export interface MeasureDeps<C extends HarnessConfig = HarnessConfig> {
  logger?: Logger;
  signal?: AbortSignal;
  /** Lines for the user's console while the run goes on (the engine waiting for a server). */
  progress?: (message: string) => void;
  /**
   * Build the engine. Default: `createEngine` from `@llem/engines`, on the config validated by
   * `@llem/domain` (an engine takes the whole `ExperimentConfig`, not just the fields above).
   */
  createEngine?: (config: C, ctx: EngineContext) => Promise<Engine>;
  /** Open the GPU driver for these devices. Default: NVML through `@llem/nvml`. */
  openGpuProbe?: (
    devices: readonly number[],
    logger: Logger,
  ) => GpuProbeOutcome | Promise<GpuProbeOutcome>;
  /** The powercap sysfs root for RAPL. Default `/sys/class/powercap`. */
  powercapRoot?: string;
  /** Monotonic ms. Default `performance.now`. */
  now?: () => number;
  /** Wall clock (epoch ms). Default `Date.now`. */
  wallNow?: () => number;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Where a relative dataset path resolves. Default `process.cwd()`. */
  cwd?: string;
  warningThresholds?: Partial<WarningThresholds>;
  /**
   * How often (ms) the NVML total-energy counter is read between the window's start and stop
   * reads. Each read costs ~3.86 ms on a real H100 (driver 580) in the engine's own thread, so it
   * is not read every sampler tick; power, memory, temperature and clocks still are. Clamped to
   * at least `energy.sample_interval_ms`. Default {@link DEFAULT_COUNTER_INTERVAL_MS}.
   */
  counterIntervalMs?: number;
  /**
   * Starts a managed server in its own process group. Default: `spawn` detached, the group
   * killed when this process exits. The llem worker passes `WorkerContext.spawnGroup`, so the
   * runner kills the server's group even when the worker is SIGKILLed.
   */
  spawnServer?: SpawnInGroup;
}

/** Default `counterIntervalMs`: one NVML energy-counter read per second between the edges. */
export const DEFAULT_COUNTER_INTERVAL_MS = 1000;

export interface MeasureOutput {
  result: RunResult;
  /** The sampler timeseries (baseline and measurement windows) as CSV. */
  timeseriesCsv: string;
  /**
   * One record per measured request (`@llem/domain`'s `RequestRecordSchema`), in workload order;
   * the worker writes them to `runs/<key>.requests.jsonl`. Warmup requests are not among them.
   */
  requests: MeasuredRequest[];
  /**
   * A managed server's scrapes of its metrics path, times in ms from the window's start (the
   * timeseries' clock); `null` without a managed server or with `server.metrics: false`. The
   * worker writes them to `runs/<key>.metrics.jsonl`.
   */
  serverMetrics: ServerMetricsScrape[] | null;
}

/**
 * Measure one experiment, in the order SPEC.md gives, one named step after another:
 * dataset → energy sources and environment snapshot → idle baseline (if enabled) → a managed
 * server's start (with a `server` section) → load → workload (exact lengths where the engine tokenizes) → warmup (not measured) → the measured
 * window (sampler + workload) → the result. Returns the
 * validated `RunResult`, the sampler timeseries as CSV and one record per measured request.
 *
 * Energy comes from NVML (counter, else power integral) and/or RAPL as `energy.backend` says;
 * whatever cannot be measured is `null` with a reason, never 0. The engine and NVML are released
 * through a `CleanupRegistry` whatever happens.
 *
 * @example
 * const { result, timeseriesCsv } = await measureRun(
 *   { runId: 'abc_c1', configHash: 'abcdef0123456789', cycle: 1, config },
 *   { logger },
 * );
 */
export async function measureRun<C extends HarnessConfig>(
  input: MeasureInput<C>,
  deps: MeasureDeps<C> = {},
): Promise<MeasureOutput> {
  const logger = deps.logger ?? noopLogger;
  const signal = deps.signal ?? new AbortController().signal;
  const now = deps.now ?? (() => performance.now());
  const wallNow = deps.wallNow ?? (() => Date.now());
  const { config } = input;
  const sharedHost = input.sharedHost === true;
  const energy = energySettings(config, input.devices);
  const cleanups = new CleanupRegistry({ logger });

  // The dataset first: a bad or empty one (or a ShareGPT `n` beyond what is usable) fails before
  // anything is opened; the prompts are built once the engine can say how it tokenizes.
  const source = loadDataset(config.dataset, { cwd: deps.cwd });
  const dataset = await summariseSource(source);
  logger.debug(`measure: dataset ${dataset.description}`);
  try {
    const sources = await openEnergySources(
      energy,
      { openGpuProbe: deps.openGpuProbe ?? defaultOpenGpuProbe, powercapRoot: deps.powercapRoot },
      logger,
      cleanups,
    );
    const environment = snapshotEnvironment(sources.probe, {
      engineVersion: null,
      llemVersion: input.llemVersion ?? null,
    });
    const recorder = new Recorder({
      channels: sources.channels,
      probe: sources.probe,
      intervalMs: energy.sample_interval_ms,
      counterEveryMs: counterInterval(energy.sample_interval_ms, deps.counterIntervalMs),
      now,
      // The background sampler stamps samples with performance.now(): default clock only.
      backgroundAllowed: deps.now === undefined,
      logger,
    });
    const notes = [...sources.notes];

    const baseline = config.baseline?.enabled
      ? await measureBaseline({
          recorder,
          channels: sources.channels,
          durationS: config.baseline.duration_s,
          sharedHost,
          sleep: deps.sleep ?? defaultSleep,
          signal,
          logger,
        })
      : { baselineW: null, note: null };
    if (baseline.note) notes.push(baseline.note);

    // A managed server starts after the idle baseline, outside the window; from here on a
    // server that dies fails the run at once (`died`), whatever step is waiting.
    const server = await startServer(input, deps, {
      recorder,
      sources,
      sharedHost,
      logger,
      signal,
    });
    if (server) cleanups.register('server', () => server.started.server.stop());
    const guard = serverGuard(server?.started ?? null, signal);

    const { engine, info } = await guard.race(
      loadEngine(
        server ? withBaseUrl(config, server.started.server.baseUrl) : config,
        deps,
        { logger, signal: guard.signal },
        cleanups,
      ),
    );
    environment.engineVersion = info.engineVersion;
    // After the load (the model is in the page cache), before the window: what bytes were measured.
    const inputs = await identifyInputs(config, info, { cwd: deps.cwd, logger });

    // The prompts, at exact lengths where the engine can tokenize. Warmup prompts are generated
    // apart from them, so a prompt cache is never primed with a measured prompt.
    const workload = await guard.race(
      prepareWorkload(engine, source, config.max_output_tokens, logger),
    );
    const warmupRequests = buildWarmupRequests(workload, warmupRequestCount(config.warmup));
    const warm = await guard.race(runWarmup(engine, warmupRequests, config.warmup, guard.signal));
    const warnings: RunWarning[] = [];
    if (config.warmup?.cv_threshold !== undefined && !warm.converged)
      warnings.push({
        code: 'warmup-not-converged',
        message: `warmup stopped after ${warm.requests} requests without the latency CV falling under ${config.warmup.cv_threshold} (last CV ${warm.finalCv === null ? 'unknown' : warm.finalCv.toFixed(3)})`,
      });

    const plan = sweepPlan(config);
    let sweep: SweepRecording | null = null;
    const measured = await measureWindow({
      record: () =>
        guard.race(
          plan
            ? recordSweep({
                engine,
                requests: workload.requests,
                recorder,
                probe: sources.probe,
                plan,
                logger,
                progress: deps.progress,
              }).then((recording) => {
                sweep = recording;
                return recording.window;
              })
            : recordWindow(engine, workload.requests, recorder, sources.probe),
        ),
      server,
      probe: sources.probe,
      thresholdMiB: input.residualCheck?.thresholdMb ?? 100,
      logger,
      sleep: (ms) => (deps.sleep ?? defaultSleep)(ms, signal),
      now,
    });
    const { window } = measured;
    warnings.push(...measured.warnings);
    // (Assigned inside the callback above: TypeScript cannot see it, hence the cast.)
    warnings.push(...((sweep as SweepRecording | null)?.warnings ?? []));

    const resultInput: ResultInput = {
      identity: { runId: input.runId, configHash: input.configHash, cycle: input.cycle },
      config: config as unknown as ResultInput['config'],
      window,
      channels: sources.channels,
      notes,
      baselineW: baseline.baselineW,
      sharedHost,
      environment,
      info,
      inputs,
      workload,
      warm,
      warnings,
      residualCheck: input.residualCheck ?? null,
      devices: input.devices,
      slurm: input.slurm,
      server: measured.server,
      maxRss: recorder.maxRss,
      intervalMs: energy.sample_interval_ms,
      thresholds: { ...DEFAULT_WARNING_THRESHOLDS, ...deps.warningThresholds },
      wallAt: (t) => new Date(wallNow() - (now() - t)).toISOString(),
    };
    const { result, requests: records } = buildResult({
      ...resultInput,
      sweep: sweepResult(sweep, resultInput),
    });
    // The client's own lateness says what the latencies are worth: say it in the run's log too.
    for (const w of result.warnings)
      if (w.code === 'client-saturated') logger.warn(`measure: ${w.code}: ${w.message}`);
    return {
      result,
      timeseriesCsv: timeseriesCsv(recorder.timeseries),
      requests: records,
      serverMetrics: measured.serverMetrics,
    };
  } finally {
    await cleanups.runAll();
  }
}

/**
 * The measured window, and with a managed server what goes around it: its metrics scraped before,
 * during and after the window, then its stop and the GPU memory it left (`stopServerStep`).
 */
async function measureWindow(step: {
  record: () => Promise<WindowRecording>;
  server: { started: StartedServer; served: ServedConfig } | null;
  probe: GpuProbe | null;
  thresholdMiB: number;
  logger: Logger;
  sleep: (ms: number) => Promise<void>;
  now: () => number;
}): Promise<{
  window: WindowRecording;
  server: RunServer | undefined;
  warnings: RunWarning[];
  serverMetrics: ServerMetricsScrape[] | null;
}> {
  const { server } = step;
  const metrics = server?.served.server.metrics;
  const scraper =
    server && metrics
      ? new MetricsScraper(server.started.server, {
          path: metrics.path,
          intervalMs: metrics.interval_ms,
          logger: step.logger,
        })
      : null;
  await scraper?.start();
  let window: WindowRecording;
  try {
    window = await step.record();
  } finally {
    await scraper?.stop();
  }
  if (!server) return { window, server: undefined, warnings: [], serverMetrics: null };
  const stopped = await stopServerStep({
    started: server.started,
    scraper,
    window: { startT: window.w0.t, endT: window.w1.t },
    metricsConfig: server.served.server.metrics,
    probe: step.probe,
    thresholdMiB: step.thresholdMiB,
    logger: step.logger,
    sleep: step.sleep,
    now: step.now,
  });
  return {
    window,
    server: stopped.block,
    warnings: stopped.warnings,
    serverMetrics: scraper ? metricsFileLines(scraper.scrapes, window.w0.t) : null,
  };
}

/** Start the config's managed server, if it has one (`startServerStep`); `null` otherwise. */
async function startServer<C extends HarnessConfig>(
  input: MeasureInput<C>,
  deps: MeasureDeps<C>,
  run: {
    recorder: Recorder;
    sources: { channels: EnergyChannel[]; probe: GpuProbe | null };
    sharedHost: boolean;
    logger: Logger;
    signal: AbortSignal;
  },
): Promise<{ started: StartedServer; served: ServedConfig } | null> {
  const served = servedConfig(input.config);
  if (!served) return null;
  const started = await startServerStep({
    config: served,
    recorder: run.recorder,
    channels: run.sources.channels,
    probe: run.sources.probe,
    sharedHost: run.sharedHost,
    logFile: input.serverLogFile ?? join(tmpdir(), `llem-server-${process.pid}-${Date.now()}.log`),
    cwd: deps.cwd,
    forcedEnv: runGpuEnv(served, input.devices, run.logger),
    spawn: deps.spawnServer,
    logger: run.logger,
    signal: run.signal,
    progress: deps.progress,
  });
  return { started, served };
}

/** The config's managed server, when it has one (`engine: openai` with a `server` section). */
function servedConfig(config: HarnessConfig): ServedConfig | null {
  const baseUrl = config.openai?.base_url;
  if (config.engine !== 'openai' || !config.server || baseUrl === undefined) return null;
  return { server: config.server, openai: { base_url: baseUrl } };
}

/**
 * The config the engine gets: `openai.base_url` with the port filled in, and no `server` section
 * (the server is already running; its `{port}` templates beside a filled-in port would not parse).
 */
function withBaseUrl<C extends HarnessConfig>(config: C, baseUrl: string): C {
  const { server: _started, ...rest } = config;
  return { ...rest, openai: { ...config.openai, base_url: baseUrl } } as C;
}

/**
 * A run given GPUs (`execution.devices`) keeps them for its server: `CUDA_VISIBLE_DEVICES`
 * from the runner wins over one in `server.env`, which would measure GPUs other than the run's.
 */
function runGpuEnv(
  served: ServedConfig,
  devices: RunDevice[] | undefined,
  logger: Logger,
): Record<string, string> {
  const given = process.env.CUDA_VISIBLE_DEVICES;
  if (!devices || given === undefined) return {};
  const own = served.server.env.CUDA_VISIBLE_DEVICES;
  if (own !== undefined && own !== given)
    logger.warn(
      `server.env.CUDA_VISIBLE_DEVICES (${own}) is ignored: this run was given GPUs ${given} and is measured on them`,
    );
  return { CUDA_VISIBLE_DEVICES: given };
}

/**
 * While a managed server runs, each step races its death: a server that exits fails the run at
 * once with `SERVER_EXITED` (type `server`), and the engine's signal is aborted so its requests
 * stop too. Without a server, steps run as they are.
 */
function serverGuard(
  started: StartedServer | null,
  signal: AbortSignal,
): { signal: AbortSignal; race: <T>(step: Promise<T>) => Promise<T> } {
  if (!started) return { signal, race: (step) => step };
  const controller = new AbortController();
  const forward = (): void => controller.abort(signal.reason);
  if (signal.aborted) forward();
  else signal.addEventListener('abort', forward, { once: true });
  const { died } = started.server;
  died.catch((error: unknown) => controller.abort(error));
  return {
    signal: controller.signal,
    race: async (step) => {
      try {
        return await Promise.race([step, died]);
      } catch (error) {
        // Requests to a server that crashed fail (connection reset) a moment before its exit is
        // seen: a step that fails is the server's failure when the server is gone soon after.
        const death = await settledWithin(died, SERVER_DEATH_GRACE_MS);
        throw death ?? error;
      }
    },
  };
}

/** How long a failed step waits to see whether the server's exit explains it. */
const SERVER_DEATH_GRACE_MS = 1500;

/** The rejection of `promise` if it rejects within `ms`, else `null`. */
async function settledWithin(promise: Promise<never>, ms: number): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise.then(
        () => null,
        (error: unknown) => error,
      ),
      new Promise<null>((r) => {
        timer = setTimeout(() => r(null), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** The sweep a config asks for (`openai.load: sweep`), or `null` for a run of one load. */
function sweepPlan(config: HarnessConfig): SweepPlan | null {
  if (config.engine !== 'openai' || config.openai?.load !== 'sweep') return null;
  return {
    points: config.openai.sweep_points ?? DEFAULT_SWEEP_POINTS,
    maxConcurrency: config.openai.max_concurrency ?? null,
  };
}

/** Each point's metrics block, built from its own window as a run's would be, and the summary. */
function sweepResult(
  sweep: SweepRecording | null,
  input: ResultInput,
): ResultInput['sweep'] | undefined {
  if (sweep === null) return undefined;
  return {
    points: sweep.points.map((point) =>
      sweepPoint(point, buildResult({ ...input, window: point.window, server: undefined }).result),
    ),
    summary: sweep.summary,
  };
}

/** `energy` with the run's own GPUs in place of `energy.devices` (a many-GPU study). */
function energySettings(config: HarnessConfig, devices: RunDevice[] | undefined): EnergySettings {
  return {
    ...(config.energy ?? { backend: 'auto', sample_interval_ms: 100, devices: [0] }),
    ...(devices ? { devices: devices.map((d) => d.index) } : {}),
  };
}

/** How often the costly NVML counter is read between edges: at least once per sample interval. */
function counterInterval(intervalMs: number, requested: number | undefined): number {
  return Math.max(
    intervalMs,
    Number.isFinite(requested) ? (requested as number) : DEFAULT_COUNTER_INTERVAL_MS,
  );
}

/**
 * Build and load the engine; it is disposed by `cleanups` whatever happens next. A load failure
 * is final here: engines retry what is worth retrying inside `load()` (llamacpp retries a
 * transient model-load failure; openai waits for its server within `ready_timeout_s`).
 */
async function loadEngine<C extends HarnessConfig>(
  config: C,
  deps: MeasureDeps<C>,
  ctx: Pick<EngineContext, 'logger' | 'signal'>,
  cleanups: CleanupRegistry,
): Promise<{ engine: Engine; info: EngineInfo }> {
  const makeEngine = deps.createEngine ?? defaultCreateEngine;
  const engine = await makeEngine(config, {
    ...ctx,
    ...(deps.progress ? { progress: deps.progress } : {}),
  });
  cleanups.register('engine', () => engine.dispose());
  const info = await engine.load();
  ctx.logger.debug(`measure: loaded ${info.model} on ${info.backend}`);
  return { engine, info };
}

async function defaultCreateEngine(config: HarnessConfig, ctx: EngineContext): Promise<Engine> {
  const { createEngine } = await import('@llem/engines');
  return createEngine(parseExperimentConfig(config), ctx);
}

async function defaultOpenGpuProbe(
  devices: readonly number[],
  logger: Logger,
): Promise<GpuProbeOutcome> {
  const { openNvmlGpuProbe } = await import('./nvml-probe');
  return openNvmlGpuProbe(devices, logger);
}
