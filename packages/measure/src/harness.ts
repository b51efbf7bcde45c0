import type {
  EnergyMethod,
  EngineName,
  MeasuredRequest,
  ResidualCheck,
  RunDevice,
  RunResult,
  RunWarning,
} from '@llem/domain';
import {
  parseExperimentConfig,
  RUN_RESULT_SCHEMA_VERSION,
  RunResultSchema,
  readDispatchSummary,
} from '@llem/domain';
import type { Engine, EngineContext, EngineInfo, RunHooks } from '@llem/engines';
import {
  CleanupRegistry,
  sleep as defaultSleep,
  type Logger,
  noopLogger,
  type RetryOptions,
  retry,
} from '@llem/resilience';
import { buildRequests, buildWarmupRequests, type DatasetConfig } from './dataset';
import {
  type ChannelEnergy,
  type ChannelReading,
  channelEnergy,
  type EnergyChannel,
  readChannels,
} from './energy/channel';
import { DEFAULT_POWERCAP_ROOT, probeRapl } from './energy/rapl';
import { peakRssMiB, snapshotEnvironment } from './environment';
import { MeasurementError } from './errors';
import type { BackgroundGpuSampler, GpuProbe, GpuSample, GpuSampleAt } from './gpu';
import { identifyInputs } from './inputs';
import {
  baselineAdjusted,
  computeLatency,
  computeThroughput,
  energyPerOutputToken,
  estimateFlops,
} from './metrics';
import { measuredRequests } from './requests';
import { startSampler, type TimeseriesRow, timeseriesCsv } from './sampler';
import { steadyStateEnergy, steadyStateSpan } from './steady-state';
import { runWarmup, type WarmupConfig, warmupRequestCount } from './warmup';
import {
  clientSaturationWarning,
  DEFAULT_WARNING_THRESHOLDS,
  measurementWarnings,
  type WarningThresholds,
} from './warnings';

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
}

/** Result of `openGpuProbe`: a probe, or why there is none. */
export type GpuProbeOutcome = { probe: GpuProbe } | { probe: null; reason: string };

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
  /** Retry options for the model load. Default 2 retries, 1 s then 2 s. */
  loadRetry?: RetryOptions;
  warningThresholds?: Partial<WarningThresholds>;
  /**
   * How often (ms) the NVML total-energy counter is read between the window's start and stop
   * reads. Each read costs ~3.86 ms on a real H100 (driver 580) in the engine's own thread, so it
   * is not read every sampler tick; power, memory, temperature and clocks still are. Clamped to
   * at least `energy.sample_interval_ms`. Default {@link DEFAULT_COUNTER_INTERVAL_MS}.
   */
  counterIntervalMs?: number;
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
}

/** A running window sampler; `background` when the GPU readings come from another thread. */
interface TickSampler {
  stop(): Tick[];
  background: boolean;
}

interface Tick extends ChannelReading {
  gpus: GpuSample[];
  rss: number;
  /** Set on a GPU reading from the background sampler (it read no energy counter). */
  background?: true;
}

/** Sum of channel energies, the overall method, and why anything is missing. */
function combineEnergy(
  all: ChannelEnergy[],
  notes: string[],
  sharedHost = false,
): { method: EnergyMethod; totalJ: number | null; reason: string | null } {
  // Host-wide energy measured while other runs ran is theirs too: listed, not counted.
  const perDevice = sharedHost ? all.filter((d) => d.kind !== 'cpu-package') : all;
  const shared =
    perDevice.length < all.length
      ? ['CPU package energy is host-wide and shared with runs going in parallel: not counted']
      : [];
  if (perDevice.length === 0)
    return {
      method: 'none' as const,
      totalJ: null,
      reason: [...notes, ...shared].join('; ') || null,
    };
  const methods = new Set(perDevice.map((d) => d.method));
  const method: EnergyMethod = methods.size === 1 ? ([...methods][0] ?? 'none') : 'mixed';
  const unknown = perDevice.filter((d) => d.totalJ === null);
  const totalJ = unknown.length > 0 ? null : perDevice.reduce((a, d) => a + (d.totalJ ?? 0), 0);
  const reasons = [
    ...notes,
    ...perDevice.filter((d) => d.note !== null).map((d) => `${d.kind} ${d.index}: ${d.note}`),
  ];
  return { method, totalJ, reason: reasons.length > 0 ? reasons.join('; ') : null };
}

/**
 * Measure one experiment, in the order SPEC.md gives: environment snapshot → idle baseline (if
 * enabled) → load (with retry) → warmup (not measured) → energy window and sampler → workload
 * → stop → metrics. Returns the validated `RunResult` and the sampler timeseries as CSV.
 *
 * Energy comes from NVML (counter, else power integral) and/or RAPL as `energy.backend` says;
 * whatever cannot be measured is `null` with a reason, never 0. The engine is disposed through a
 * `CleanupRegistry` whatever happens.
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
  const sleep = deps.sleep ?? defaultSleep;
  const thresholds = { ...DEFAULT_WARNING_THRESHOLDS, ...deps.warningThresholds };
  const { config } = input;
  const sharedHost = input.sharedHost === true;
  const energyCfg = {
    ...(config.energy ?? { backend: 'auto', sample_interval_ms: 100, devices: [0] }),
    // A run given GPUs is measured on exactly those.
    ...(input.devices ? { devices: input.devices.map((d) => d.index) } : {}),
  };
  const intervalMs = energyCfg.sample_interval_ms;
  const counterEveryMs = Math.max(
    intervalMs,
    Number.isFinite(deps.counterIntervalMs)
      ? (deps.counterIntervalMs as number)
      : DEFAULT_COUNTER_INTERVAL_MS,
  );
  const cleanups = new CleanupRegistry({ logger });
  const warnings: RunWarning[] = [];
  const notes: string[] = [];

  // Requests first: a bad dataset should fail before anything is opened. Warmup prompts are
  // generated apart from them, so a prompt cache is never primed with a measured prompt.
  const requests = buildRequests(config.dataset, config.max_output_tokens, deps.cwd);
  const warmupRequests = buildWarmupRequests(
    config.dataset,
    config.max_output_tokens,
    warmupRequestCount(config.warmup),
    requests,
  );

  try {
    // --- energy sources and the environment snapshot ----------------------------------------
    let probe: GpuProbe | null = null;
    if (energyCfg.backend !== 'rapl') {
      const opened = await (deps.openGpuProbe ?? defaultOpenGpuProbe)(energyCfg.devices, logger);
      if (opened.probe) {
        probe = opened.probe;
        const p = probe;
        cleanups.register('nvml', () => p.close());
      } else if (energyCfg.backend === 'nvml') {
        throw new MeasurementError(
          `energy.backend is nvml but NVML is not usable: ${opened.reason}. Use backend auto or none to run without GPU energy`,
          'ENERGY_UNAVAILABLE',
        );
      } else if (energyCfg.backend === 'auto') notes.push(`NVML: ${opened.reason}`);
    }
    const channels: EnergyChannel[] = [];
    if (probe && (energyCfg.backend === 'auto' || energyCfg.backend === 'nvml')) {
      const p = probe;
      for (const index of p.devices)
        channels.push({
          kind: 'gpu',
          index,
          counterMethod: 'nvml-counter',
          readCounterJ: () => {
            const mj = p.energyCounterMj(index);
            return mj === null ? null : mj / 1000;
          },
          counterRangeJ: null,
          counterReadCostly: true,
          readPowerW: () => p.powerW(index),
          // Above any single GPU's power limit (B200 ~1.2 kW) with headroom.
          maxPlausibleW: 3000,
        });
    }
    if (energyCfg.backend === 'rapl' || energyCfg.backend === 'auto') {
      const rapl = probeRapl(deps.powercapRoot ?? DEFAULT_POWERCAP_ROOT);
      if (rapl.available) channels.push(...rapl.channels);
      else if (energyCfg.backend === 'rapl')
        throw new MeasurementError(
          `energy.backend is rapl but ${rapl.reason}. Use backend auto or none`,
          'ENERGY_UNAVAILABLE',
        );
      else notes.push(rapl.reason);
    }
    if (energyCfg.backend === 'none') notes.push('energy.backend is none');
    const environment = snapshotEnvironment(probe, {
      engineVersion: null,
      llemVersion: input.llemVersion ?? null,
    });
    logger.debug(
      `measure: energy channels ${channels.map((c) => `${c.kind}${c.index}`).join(', ') || 'none'}`,
    );

    const timeseries: TimeseriesRow[] = [];
    let maxRss = process.memoryUsage.rss();
    // When the costly counters were last read; every edge read (window start/stop, baseline
    // ends) reads them, the sampler only once `counterEveryMs` has passed since the last read.
    let lastCounterT = Number.NEGATIVE_INFINITY;
    // The channels as the main-thread tick reads them while a background sampler takes the GPU
    // readings: counters (NVML every `counterEveryMs`, RAPL every tick) but no GPU power.
    const countersOnly: EnergyChannel[] = channels.map((c) => {
      if (c.kind !== 'gpu') return c;
      const { readPowerW: _power, ...rest } = c;
      return rest;
    });
    const readTick = (t: number, counters = true, gpus = true): Tick => {
      const rss = process.memoryUsage.rss();
      if (rss > maxRss) maxRss = rss;
      if (counters) lastCounterT = t;
      return {
        ...readChannels(gpus ? channels : countersOnly, t, counters),
        gpus: probe && gpus ? probe.devices.map((i) => (probe as GpuProbe).sample(i)) : [],
        rss,
      };
    };
    // Half a tick of slack: timer lateness must not push every counter read one tick later.
    const counterDue = (t: number) => t - lastCounterT >= counterEveryMs - intervalMs / 2;
    const sampleTick = (t: number): Tick => readTick(t, counterDue(t));
    const sampling = channels.length > 0 || probe !== null;
    /** A background GPU reading as a tick: that device's sample and power, nothing else. */
    const gpuTick = ({ t, sample }: GpuSampleAt): Tick => ({
      t,
      counterJ: channels.map(() => null),
      powerW: channels.map((c) =>
        c.kind === 'gpu' && c.index === sample.index ? sample.powerW : null,
      ),
      gpus: [sample],
      rss: 0,
      background: true,
    });
    /**
     * Prepare the tick sampler for one window; the returned function starts it. When the probe
     * can sample the GPUs off this thread (the NVML probe's worker), GPU readings come from
     * there, so an engine busy on this thread (SSE parsing, token callbacks) cannot delay them;
     * this thread's tick keeps the energy counters and RAPL. The worker is started here, before
     * the caller reads the window's opening edge, so its start-up (tens to hundreds of ms) is
     * not a hole at the start of the window. It stamps samples with `performance.now()`, so it
     * is used only on the default clock. Both series are merged by time; a tick of this thread
     * that read nothing is dropped. Without the capability this is the plain tick sampler.
     */
    const prepareTicks = (window: string): (() => TickSampler) => {
      let background: BackgroundGpuSampler | null = null;
      if (probe?.startBackgroundSampler && probe.devices.length > 0 && deps.now === undefined) {
        try {
          background = probe.startBackgroundSampler(intervalMs);
        } catch (error) {
          logger.debug(
            `measure: ${window} window: the background GPU sampler did not start (${(error as Error).message}); sampling GPUs on the main thread`,
          );
        }
      }
      if (background === null)
        return () => {
          const main = startSampler(sampleTick, { intervalMs, now });
          return { stop: () => main.stop(), background: false };
        };
      const bg = background;
      logger.debug(`measure: ${window} window: GPU samples taken on a worker thread`);
      return () => {
        const main = startSampler((t) => readTick(t, counterDue(t), false), { intervalMs, now });
        return {
          background: true,
          stop: () => {
            const own = main
              .stop()
              .filter(
                (k) => k.counterJ.some((j) => j !== null) || k.powerW.some((w) => w !== null),
              );
            let gpu: GpuSampleAt[] = [];
            try {
              gpu = bg.stop();
            } catch (error) {
              logger.debug(
                `measure: stopping the background GPU sampler failed: ${(error as Error).message}`,
              );
            }
            return [...own, ...gpu.map(gpuTick)].sort((a, b) => a.t - b.t);
          },
        };
      };
    };
    const record = (window: string, t0: number, ticks: readonly Tick[]) => {
      for (const tick of ticks) {
        for (const g of tick.gpus) {
          const pos = channels.findIndex((c) => c.kind === 'gpu' && c.index === g.index);
          const { index: _i, ...sample } = g;
          timeseries.push({
            window,
            tMs: tick.t - t0,
            device: `gpu${g.index}`,
            sample,
            energyJ: pos >= 0 ? (tick.counterJ[pos] ?? null) : null,
          });
        }
        channels.forEach((c, pos) => {
          // A main-thread tick beside a background GPU sampler: the GPU counter read it took
          // gets its own row (without the readings the worker took).
          const counter = tick.counterJ[pos] ?? null;
          if (c.kind === 'gpu' && counter !== null && !tick.gpus.some((g) => g.index === c.index))
            timeseries.push({
              window,
              tMs: tick.t - t0,
              device: `gpu${c.index}`,
              sample: {},
              energyJ: counter,
            });
          if (c.kind === 'cpu-package' && !tick.background)
            timeseries.push({
              window,
              tMs: tick.t - t0,
              device: `cpu-package${c.index}`,
              sample: {},
              energyJ: tick.counterJ[pos] ?? null,
            });
        });
      }
    };

    // --- idle baseline --------------------------------------------------------------------
    let baselineW: number | null = null;
    if (config.baseline?.enabled) {
      if (channels.length === 0) {
        notes.push('baseline: no energy source to measure idle power with');
      } else {
        const begin = prepareTicks('baseline');
        const b0 = readTick(now());
        const sampler = begin();
        let ticks: Tick[] = [];
        try {
          await sleep(config.baseline.duration_s * 1000, signal);
        } finally {
          ticks = sampler.stop();
        }
        const b1 = readTick(now());
        const all = [b0, ...ticks.filter((t) => t.t > b0.t && t.t < b1.t), b1];
        record('baseline', b0.t, all);
        const per = channels.map((c, i) => channelEnergy(c, i, all));
        const combined = combineEnergy(per, [], sharedHost);
        const seconds = (b1.t - b0.t) / 1000;
        baselineW = combined.totalJ === null || seconds <= 0 ? null : combined.totalJ / seconds;
        if (baselineW === null) notes.push(`baseline: ${combined.reason ?? 'no reading'}`);
        logger.info(
          `baseline: ${baselineW === null ? 'not measurable' : `${baselineW.toFixed(1)} W idle`} over ${seconds.toFixed(1)} s`,
        );
      }
    }

    // --- load -----------------------------------------------------------------------------
    const engineCtx: EngineContext = {
      logger,
      signal,
      ...(deps.progress ? { progress: deps.progress } : {}),
    };
    const makeEngine = deps.createEngine ?? defaultCreateEngine;
    const engine = await makeEngine(config, engineCtx);
    cleanups.register('engine', () => engine.dispose());
    const info: EngineInfo = await retry(() => engine.load(), {
      retries: 2,
      delayMs: 1000,
      logger,
      signal,
      name: `load ${config.engine} ${config.model}`,
      ...deps.loadRetry,
    });
    environment.engineVersion = info.engineVersion;
    logger.debug(`measure: loaded ${info.model} on ${info.backend}`);
    // After the load (the model is in the page cache), before the window: what bytes were measured.
    const inputs = await identifyInputs(config, info, { cwd: deps.cwd, logger });

    // --- warmup (not measured) ------------------------------------------------------------
    const warm = await runWarmup(engine, warmupRequests, config.warmup, signal);
    if (config.warmup?.cv_threshold !== undefined && !warm.converged)
      warnings.push({
        code: 'warmup-not-converged',
        message: `warmup stopped after ${warm.requests} requests without the latency CV falling under ${config.warmup.cv_threshold} (last CV ${warm.finalCv === null ? 'unknown' : warm.finalCv.toFixed(3)})`,
      });

    // --- energy window, sampler, workload -------------------------------------------------
    let start: Tick | null = null;
    let stop: Tick | null = null;
    const hooks: RunHooks = {
      onWindowStart: () => {
        start = readTick(now());
      },
      onWindowStop: () => {
        stop = readTick(now());
      },
    };
    const begin = sampling ? prepareTicks('measure') : null;
    const runStart = readTick(now());
    const sampler = begin?.() ?? null;
    let ticks: Tick[] = [];
    let outcome: Awaited<ReturnType<Engine['run']>>;
    try {
      outcome = await engine.run(requests, engine.windowMarking === 'engine' ? hooks : undefined);
    } finally {
      ticks = sampler?.stop() ?? [];
    }
    const runEnd = readTick(now());
    const w0: Tick = start ?? runStart;
    const w1: Tick = stop ?? runEnd;
    const inWindow = ticks.filter((t) => t.t > w0.t && t.t < w1.t);
    const windowReadings = [w0, ...inWindow, w1];
    record('measure', w0.t, windowReadings);
    const durationS = Math.max(0, (w1.t - w0.t) / 1000);
    // With a background GPU sampler the window holds each device's readings plus this thread's
    // counter ticks; the reading count that matters is the GPU's (the sparsest device).
    const samplesInWindow = !sampling
      ? null
      : sampler?.background && probe
        ? Math.min(
            ...probe.devices.map(
              (i) => inWindow.filter((k) => k.gpus.some((g) => g.index === i)).length,
            ),
          )
        : inWindow.length;
    const wallAtMono = (t: number) => new Date(wallNow() - (now() - t)).toISOString();

    // --- metrics --------------------------------------------------------------------------
    const perDevice = channels.map((c, i) => channelEnergy(c, i, windowReadings));
    for (const d of perDevice)
      if (d.counterDiscarded)
        warnings.push({
          code: 'energy-counter-reset',
          message: `${d.kind} ${d.index}: ${d.note ?? 'counter discarded'}`,
        });
    const energy = combineEnergy(perDevice, notes, sharedHost);
    if (sharedHost && perDevice.some((d) => d.kind === 'cpu-package'))
      warnings.push({
        code: 'shared-host-energy',
        message:
          'runs went in parallel on this host: the CPU package energy (RAPL) is host-wide, so it is listed per device (shared) and left out of this run’s total',
      });
    if (energy.totalJ === null)
      warnings.push({
        code: 'energy-unavailable',
        message: `energy was not measured: ${energy.reason ?? 'no source'}`,
      });
    const saturated = clientSaturationWarning(readDispatchSummary(outcome.extra ?? {}));
    if (saturated !== null) {
      warnings.push(saturated);
      logger.warn(`measure: ${saturated.code}: ${saturated.message}`);
    }
    const failed = outcome.requests.filter((r) => r.error).length;
    if (failed > 0)
      warnings.push({
        code: 'request-failures',
        message: `${failed} of ${outcome.requests.length} requests failed`,
      });
    // Requests/s counts completed requests, as the latencies do: a failed request is no throughput.
    const requestCount =
      typeof outcome.extra?.requestCount === 'number'
        ? outcome.extra.requestCount
        : outcome.requests.length - failed;
    const gpuPeak = inWindow
      .concat([w0, w1])
      .flatMap((t) => t.gpus.map((g) => g.memoryUsedMiB))
      .filter((m): m is number => m !== null);
    warnings.push(
      ...measurementWarnings(
        {
          durationS,
          samplesInWindow,
          sampleIntervalMs: intervalMs,
          gpus: environment.gpus,
          gpuSamples: windowReadings.map((t) => t.gpus),
          residualCheck: input.residualCheck ?? null,
        },
        thresholds,
      ),
    );
    const { extra: engineExtra = {} } = outcome;
    const { requestCount: _rc, ...extraRest } = engineExtra;
    // The engine's steady-state window (openai) is on this process's clock, so the energy
    // inside it comes from the same readings as the full window's, with the same methods.
    const span = steadyStateSpan(engineExtra);
    if (span !== null) {
      const readings = [...new Set([runStart, w0, ...ticks, w1, runEnd])].sort((a, b) => a.t - b.t);
      const steady = steadyStateEnergy({
        span,
        channels,
        readings,
        methods: perDevice.map((d) => d.method),
        baselineW,
        fullWindowReason: energy.reason,
      });
      if (steady.warning) warnings.push(steady.warning);
      extraRest.steadyState = {
        ...(engineExtra.steadyState as Record<string, unknown>),
        energy: steady.energy,
      };
    }
    const result: RunResult = {
      schemaVersion: RUN_RESULT_SCHEMA_VERSION,
      runId: input.runId,
      configHash: input.configHash,
      cycle: input.cycle,
      engine: config.engine,
      model: config.model,
      config: config as unknown as Record<string, unknown>,
      window: { startedAt: wallAtMono(w0.t), endedAt: wallAtMono(w1.t), durationS },
      energy: {
        method: energy.method,
        totalJ: energy.totalJ,
        adjustedJ: baselineAdjusted(energy.totalJ, baselineW, durationS),
        baselineW,
        perDevice: perDevice.map(({ index, kind, method, totalJ }) => ({
          index,
          kind,
          method,
          totalJ,
          ...(sharedHost && kind === 'cpu-package' ? { shared: true } : {}),
        })),
        unavailableReason: energy.reason,
      },
      tokens: {
        input: outcome.inputTokens,
        output: outcome.outputTokens,
        source: outcome.tokenCountSource,
      },
      throughput: computeThroughput(
        durationS,
        outcome.inputTokens,
        outcome.outputTokens,
        requestCount,
      ),
      energyPerOutputTokenJ: energyPerOutputToken(energy.totalJ, outcome.outputTokens),
      latency: computeLatency(outcome.requests),
      memory: {
        gpuPeakUsedMiB: gpuPeak.length > 0 ? Math.max(...gpuPeak) : null,
        // A `command` program does its work in its own process: the worker's RSS would be a
        // number about the wrong process, so it is unknown rather than a guess.
        rssPeakMiB: config.engine === 'command' ? null : peakRssMiB(maxRss),
      },
      flops: estimateFlops(info.parameterCount, outcome.inputTokens, outcome.outputTokens),
      residualCheck: input.residualCheck ?? null,
      ...(input.devices ? { devices: input.devices } : {}),
      inputs,
      warnings,
      environment,
      extra: {
        ...extraRest,
        requests: requestCount,
        warmup: { requests: warm.requests, converged: warm.converged, finalCv: warm.finalCv },
        engineInfo: { backend: info.backend, details: info.details },
        samplesInWindow,
      },
    };
    const parsed = RunResultSchema.safeParse(result);
    if (!parsed.success)
      throw new Error(
        `measure: the result does not match the RunResult schema (a bug): ${parsed.error.message}`,
      );
    return {
      result: parsed.data,
      timeseriesCsv: timeseriesCsv(timeseries),
      requests: measuredRequests(outcome.requests, w0.t, outcome.tokenCountSource),
    };
  } finally {
    await cleanups.runAll();
  }
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
