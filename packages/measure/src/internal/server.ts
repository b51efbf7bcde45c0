import type { EnergyMethod, RunServer, RunWarning, ServerConfig } from '@llem/domain';
import type { ManagedServer, ServerStop, SpawnInGroup } from '@llem/engines';
import type { Logger } from '@llem/resilience';
import { channelEnergy, type EnergyChannel } from '../energy/channel';
import type { GpuProbe } from '../gpu';
import { summariseServerMetrics, type TimedScrape } from '../server-metrics';
import { combineEnergy } from './energy-total';
import type { Recorder, Tick } from './recorder';

/** The parts of a config a managed server needs. */
export interface ServedConfig {
  server: ServerConfig;
  openai: { base_url: string };
}

export interface ServerStartInput {
  config: ServedConfig;
  recorder: Recorder;
  channels: readonly EnergyChannel[];
  probe: GpuProbe | null;
  sharedHost: boolean;
  logFile: string;
  cwd: string | undefined;
  /** Variables that win over `server.env` (the run's `CUDA_VISIBLE_DEVICES`). */
  forcedEnv: Record<string, string>;
  spawn: SpawnInGroup | undefined;
  logger: Logger;
  signal: AbortSignal;
  progress: ((message: string) => void) | undefined;
}

/** A started server and what its start-up cost. */
export interface StartedServer {
  server: ManagedServer;
  startupS: number;
  startupJ: number | null;
  startupEnergyMethod: EnergyMethod;
  /** NVML used memory per measured GPU before the server started (MiB, `null` unreadable). */
  memoryBefore: Map<number, number | null>;
}

/**
 * Start the managed server after the idle baseline and before the engine connects: the
 * `startup` window of the timeseries records the run's GPUs (and RAPL) from the first spawn
 * until the server answers `server.ready.path`, and its energy is the start-up energy. Nothing of
 * it is inside the measured window.
 */
export async function startServerStep(input: ServerStartInput): Promise<StartedServer> {
  const { recorder, channels, probe, logger } = input;
  const memoryBefore = usedMemory(probe);
  const { startManagedServer } = await import('@llem/engines');
  const start = () =>
    startManagedServer({
      server: input.config.server,
      baseUrl: input.config.openai.base_url,
      ...(input.cwd !== undefined ? { cwd: input.cwd } : {}),
      forcedEnv: input.forcedEnv,
      logFile: input.logFile,
      logger,
      signal: input.signal,
      ...(input.progress ? { progress: input.progress } : {}),
      ...(input.spawn ? { spawn: input.spawn } : {}),
    });
  if (!recorder.sampling) {
    const server = await start();
    return {
      server,
      startupS: (server.readyAt - server.startedAt) / 1000,
      startupJ: null,
      startupEnergyMethod: 'none',
      memoryBefore,
    };
  }
  const begin = recorder.prepare('startup');
  const s0 = recorder.read();
  const sampler = begin();
  let ticks: Tick[] = [];
  let server: ManagedServer;
  try {
    server = await start();
  } finally {
    ticks = sampler.stop();
  }
  const s1 = recorder.read();
  const all = [s0, ...ticks.filter((t) => t.t > s0.t && t.t < s1.t), s1];
  recorder.record('startup', s0.t, all);
  const energy = combineEnergy(
    channels.map((c, i) => channelEnergy(c, i, all)),
    [],
    input.sharedHost,
  );
  const startupS = (server.readyAt - server.startedAt) / 1000;
  logger.info(
    `server: start-up ${startupS.toFixed(1)} s${energy.totalJ === null ? '' : `, ${energy.totalJ.toFixed(1)} J (${energy.method})`}`,
  );
  return {
    server,
    startupS,
    startupJ: energy.totalJ,
    startupEnergyMethod: energy.method,
    memoryBefore,
  };
}

/** NVML used memory (MiB) on each measured GPU now. */
function usedMemory(probe: GpuProbe | null): Map<number, number | null> {
  const out = new Map<number, number | null>();
  for (const index of probe?.devices ?? [])
    out.set(index, probe?.sample(index).memoryUsedMiB ?? null);
  return out;
}

/**
 * Scrapes the server's metrics path during the measured window: one scrape before the window
 * opens (`start`, awaited: the counters' opening edge), one every `intervalMs` (never two at
 * once), and one after it closes (`stop`). A route the server does not have (404) ends the
 * scraping with a reason; other failures are counted and the first is kept.
 */
export class MetricsScraper {
  readonly #server: ManagedServer;
  readonly #path: string;
  readonly #intervalMs: number;
  readonly #logger: Logger;
  readonly scrapes: TimedScrape[] = [];
  failed = 0;
  unavailableReason: string | null = null;
  #firstError: string | null = null;
  #timer: NodeJS.Timeout | undefined;
  #inFlight: Promise<void> | null = null;
  #stopped = false;

  constructor(
    server: ManagedServer,
    options: { path: string; intervalMs: number; logger: Logger },
  ) {
    this.#server = server;
    this.#path = options.path;
    this.#intervalMs = options.intervalMs;
    this.#logger = options.logger;
  }

  async start(): Promise<void> {
    await this.#scrape();
    this.#schedule();
  }

  #schedule(): void {
    if (this.#stopped || this.unavailableReason !== null) return;
    this.#timer = setTimeout(() => {
      this.#inFlight = this.#scrape().finally(() => {
        this.#inFlight = null;
        this.#schedule();
      });
    }, this.#intervalMs);
  }

  async #scrape(): Promise<void> {
    if (this.unavailableReason !== null) return;
    const outcome = await this.#server.scrapeMetrics(
      this.#path,
      Math.max(1000, Math.min(10_000, this.#intervalMs * 2)),
    );
    if (outcome.ok) {
      this.scrapes.push({ t: outcome.t, types: outcome.types, samples: outcome.samples });
      return;
    }
    this.failed++;
    if (outcome.status === 404) {
      this.unavailableReason = `GET ${this.#path} answered HTTP 404: the server serves no metrics there (server.metrics.path; false turns scraping off)`;
      this.#logger.warn(`server: ${this.unavailableReason}`);
      return;
    }
    if (this.#firstError === null) {
      this.#firstError = `GET ${this.#path}: ${outcome.message}`;
      this.#logger.warn(`server: scraping metrics failed: ${this.#firstError}`);
    }
  }

  /** Stop scraping and take the closing scrape. */
  async stop(): Promise<TimedScrape[]> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#inFlight;
    await this.#scrape();
    if (this.unavailableReason === null && this.scrapes.length === 0)
      this.unavailableReason = `every scrape of ${this.#path} failed (first: ${this.#firstError ?? 'unknown'})`;
    return this.scrapes;
  }
}

export interface ServerStopInput {
  started: StartedServer;
  scraper: MetricsScraper | null;
  /** The measured window's edges (monotonic ms), for the metric summary. */
  window: { startT: number; endT: number } | null;
  metricsConfig: ServerConfig['metrics'];
  probe: GpuProbe | null;
  thresholdMiB: number;
  logger: Logger;
  sleep: (ms: number) => Promise<void>;
  now: () => number;
}

/**
 * Stop the server (SIGTERM, SIGKILL after `stop_grace_s`), then read each measured GPU's memory
 * until it falls back under the residual threshold above what was in use before the server
 * started (up to 5 s: a driver frees a dead process's memory with a delay). What is still in
 * use raises `server-memory-left`; the next run's residual check will see it too.
 */
export async function stopServerStep(
  input: ServerStopInput,
): Promise<{ block: RunServer; warnings: RunWarning[] }> {
  const { started, probe, thresholdMiB } = input;
  const exit: ServerStop = await started.server.stop();
  input.logger.info(
    `server: stopped in ${exit.stopS.toFixed(1)} s (${exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`}${exit.forced ? ', SIGKILL after server.stop_grace_s' : ''})`,
  );
  const left = (): { index: number; before: number | null; after: number | null }[] =>
    [...started.memoryBefore].map(([index, before]) => ({
      index,
      before,
      after: probe?.sample(index).memoryUsedMiB ?? null,
    }));
  const over = (d: { before: number | null; after: number | null }) =>
    d.after !== null && d.after - (d.before ?? 0) > thresholdMiB;
  let memory = left();
  const deadline = input.now() + 5000;
  while (memory.some(over) && input.now() < deadline) {
    await input.sleep(250);
    memory = left();
  }
  const warnings: RunWarning[] = memory.filter(over).map((d) => ({
    code: 'server-memory-left',
    message: `GPU ${d.index}: ${Math.round(d.after as number)} MiB in use after the server stopped (${d.before === null ? 'unknown' : Math.round(d.before)} MiB before it started, threshold ${thresholdMiB} MiB): a process of the server may still hold it; the next run's residual-memory check will see it`,
  }));
  for (const w of warnings) input.logger.warn(`server: ${w.message}`);

  const scraper = input.scraper;
  const metrics =
    input.metricsConfig === false || scraper === null
      ? null
      : {
          file: null,
          path: input.metricsConfig.path,
          intervalMs: input.metricsConfig.interval_ms,
          scrapes: scraper.scrapes.length,
          failedScrapes: scraper.failed,
          unavailableReason: scraper.unavailableReason,
          series:
            input.window === null
              ? {}
              : summariseServerMetrics(scraper.scrapes, input.window.startT, input.window.endT),
        };
  const { server } = started;
  return {
    block: {
      argv: [...server.argv],
      pid: server.pid,
      port: server.port,
      attempts: server.attempts,
      startupS: started.startupS,
      startupJ: started.startupJ,
      startupEnergyMethod: started.startupEnergyMethod,
      exit: { code: exit.code, signal: exit.signal, forced: exit.forced, stopS: exit.stopS },
      gpuMemory: memory.map((d) => ({
        index: d.index,
        beforeStartMiB: d.before,
        afterStopMiB: d.after,
      })),
      metrics,
    },
    warnings,
  };
}
