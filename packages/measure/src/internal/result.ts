import {
  type MeasuredRequest,
  type ResidualCheck,
  RUN_RESULT_SCHEMA_VERSION,
  type RunDevice,
  type RunEnvironment,
  type RunInputs,
  type RunResult,
  RunResultSchema,
  type RunServer,
  type RunSlurm,
  type RunWarning,
  readDispatchSummary,
  type SweepPoint,
  type SweepSummary,
} from '@llem/domain';
import type { EngineInfo } from '@llem/engines';
import type { Workload } from '../dataset';
import { channelEnergy, type EnergyChannel } from '../energy/channel';
import { peakRssMiB } from '../environment';
import {
  baselineAdjusted,
  computeLatency,
  computeThroughput,
  energyPerOutputToken,
  estimateFlops,
} from '../metrics';
import { phaseEnergy } from '../phases';
import { measuredRequests } from '../requests';
import { steadyStateEnergy, steadyStateSpan } from '../steady-state';
import type { WarmupOutcome } from '../warmup';
import { clientSaturationWarning, measurementWarnings, type WarningThresholds } from '../warnings';
import { combineEnergy } from './energy-total';
import type { WindowRecording } from './window';
import { workloadSummary } from './workload';

/** Everything the result is built from, once the window has closed. */
export interface ResultInput {
  identity: { runId: string; configHash: string; cycle: number };
  config: { engine: RunResult['engine']; model: string } & Record<string, unknown>;
  window: WindowRecording;
  channels: readonly EnergyChannel[];
  notes: readonly string[];
  baselineW: number | null;
  sharedHost: boolean;
  environment: RunEnvironment;
  info: EngineInfo;
  inputs: RunInputs;
  /** The workload that ran (for `result.workload`). */
  workload: Workload;
  warm: WarmupOutcome;
  /** Warnings raised before the window (warmup). */
  warnings: readonly RunWarning[];
  residualCheck: ResidualCheck | null;
  devices: RunDevice[] | undefined;
  /** The Slurm job the run was measured in, when it was. */
  slurm?: RunSlurm | undefined;
  /** The managed server's block, when the run had one. */
  server?: RunServer | undefined;
  maxRss: number;
  intervalMs: number;
  thresholds: WarningThresholds;
  /** Wall-clock ISO time of a monotonic instant. */
  wallAt: (t: number) => string;
  /** `openai.load: sweep`: the points (each built from its own window) and how the sweep went. */
  sweep?: { points: SweepPoint[]; summary: SweepSummary } | undefined;
}

/**
 * Turn a recorded window into the validated `RunResult` and its per-request records: energy per
 * channel and in total (shared host energy listed, not counted), the quality warnings, latency
 * and throughput, the steady-state window's energy (openai), memory, FLOPs.
 */
export function buildResult(input: ResultInput): {
  result: RunResult;
  requests: MeasuredRequest[];
} {
  const { window: win, channels, sharedHost, config } = input;
  const { outcome, w0, w1, inWindow, durationS } = win;
  const windowReadings = [w0, ...inWindow, w1];
  const warnings: RunWarning[] = [...input.warnings];

  // --- energy -----------------------------------------------------------------------------
  const perDevice = channels.map((c, i) => channelEnergy(c, i, windowReadings));
  for (const d of perDevice)
    if (d.counterDiscarded)
      warnings.push({
        code: 'energy-counter-reset',
        message: `${d.kind} ${d.index}: ${d.note ?? 'counter discarded'}`,
      });
  const energy = combineEnergy(perDevice, input.notes, sharedHost);
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

  // --- prefill vs decode (in-process llama.cpp: the engine's phase timestamps are the model's) --
  const phases =
    config.engine === 'llamacpp'
      ? phaseEnergy({
          requests: outcome.requests,
          startMs: w0.t,
          endMs: w1.t,
          totalJ: energy.totalJ,
          totalReason: energy.reason,
          channels,
          counted: perDevice.map((d) => !(sharedHost && d.kind === 'cpu-package')),
          readings: windowReadings,
        })
      : null;

  // --- requests and quality warnings --------------------------------------------------------
  // Open loop: the client could not keep its arrival schedule (its own lateness, not the server's).
  const saturated = clientSaturationWarning(readDispatchSummary(outcome.extra ?? {}));
  if (saturated !== null) warnings.push(saturated);
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
  warnings.push(
    ...measurementWarnings(
      {
        durationS,
        samplesInWindow: win.samplesInWindow,
        sampleIntervalMs: input.intervalMs,
        gpus: input.environment.gpus,
        gpuSamples: windowReadings.map((t) => t.gpus),
        residualCheck: input.residualCheck,
      },
      input.thresholds,
    ),
  );

  // --- the engine's steady-state window (openai) ----------------------------------------------
  const { extra: engineExtra = {} } = outcome;
  const { requestCount: _rc, ...extraRest } = engineExtra;
  // On this process's clock, so its energy comes from the same readings as the window's.
  const span = steadyStateSpan(engineExtra);
  if (span !== null) {
    const steady = steadyStateEnergy({
      span,
      channels: [...channels],
      readings: win.readings,
      methods: perDevice.map((d) => d.method),
      baselineW: input.baselineW,
      fullWindowReason: energy.reason,
    });
    if (steady.warning) warnings.push(steady.warning);
    extraRest.steadyState = {
      ...(engineExtra.steadyState as Record<string, unknown>),
      energy: steady.energy,
    };
  }

  const gpuPeak = windowReadings
    .flatMap((t) => t.gpus.map((g) => g.memoryUsedMiB))
    .filter((m): m is number => m !== null);
  const result: RunResult = {
    schemaVersion: RUN_RESULT_SCHEMA_VERSION,
    ...input.identity,
    engine: config.engine,
    model: config.model,
    config,
    window: { startedAt: input.wallAt(w0.t), endedAt: input.wallAt(w1.t), durationS },
    energy: {
      method: energy.method,
      totalJ: energy.totalJ,
      adjustedJ: baselineAdjusted(energy.totalJ, input.baselineW, durationS),
      baselineW: input.baselineW,
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
      rssPeakMiB: config.engine === 'command' ? null : peakRssMiB(input.maxRss),
    },
    flops: estimateFlops(input.info.parameterCount, outcome.inputTokens, outcome.outputTokens),
    residualCheck: input.residualCheck,
    ...(input.devices ? { devices: input.devices } : {}),
    ...(input.slurm ? { slurm: input.slurm } : {}),
    inputs: input.inputs,
    ...(phases ? { phaseEnergy: phases } : {}),
    workload: workloadSummary(input.workload, outcome.requests),
    ...(input.server ? { server: input.server } : {}),
    ...(input.sweep ? { points: input.sweep.points, sweep: input.sweep.summary } : {}),
    warnings,
    environment: input.environment,
    extra: {
      ...extraRest,
      requests: requestCount,
      warmup: {
        requests: input.warm.requests,
        converged: input.warm.converged,
        finalCv: input.warm.finalCv,
      },
      engineInfo: { backend: input.info.backend, details: input.info.details },
      samplesInWindow: win.samplesInWindow,
    },
  };
  const parsed = RunResultSchema.safeParse(result);
  if (!parsed.success)
    throw new Error(
      `measure: the result does not match the RunResult schema (a bug): ${parsed.error.message}`,
    );
  return {
    result: parsed.data,
    requests: measuredRequests(outcome.requests, w0.t, outcome.tokenCountSource),
  };
}
