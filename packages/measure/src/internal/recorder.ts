import type { Logger } from '@llem/resilience';
import { type ChannelReading, type EnergyChannel, readChannels } from '../energy/channel';
import type { BackgroundGpuSampler, GpuProbe, GpuSample, GpuSampleAt } from '../gpu';
import { startSampler, type TimeseriesRow } from '../sampler';

/** One reading of every channel (and every GPU) at one instant. */
export interface Tick extends ChannelReading {
  gpus: GpuSample[];
  rss: number;
  /** Set on a GPU reading from the background sampler (it read no energy counter). */
  background?: true;
}

/** A running window sampler; `background` when the GPU readings come from another thread. */
export interface TickSampler {
  stop(): Tick[];
  background: boolean;
}

export interface RecorderOptions {
  channels: readonly EnergyChannel[];
  probe: GpuProbe | null;
  intervalMs: number;
  /** How often the costly counters (NVML energy) are read between edges. */
  counterEveryMs: number;
  now: () => number;
  /** A background GPU sampler stamps with `performance.now()`: only on the default clock. */
  backgroundAllowed: boolean;
  logger: Logger;
}

/**
 * Reads the energy channels and GPUs: an edge read (`read`), a sampler for a window (`prepare`
 * → start → stop) and the timeseries rows of what was read (`record`). It owns what the reads
 * share: when the costly counters were last read, the peak RSS, the rows so far.
 */
export class Recorder {
  readonly #o: RecorderOptions;
  readonly #countersOnly: EnergyChannel[];
  readonly #timeseries: TimeseriesRow[] = [];
  #lastCounterT = Number.NEGATIVE_INFINITY;
  #maxRss = process.memoryUsage.rss();

  constructor(options: RecorderOptions) {
    this.#o = options;
    // The channels as the main-thread tick reads them while a background sampler takes the GPU
    // readings: counters (NVML every `counterEveryMs`, RAPL every tick) but no GPU power.
    this.#countersOnly = options.channels.map((c) => {
      if (c.kind !== 'gpu') return c;
      const { readPowerW: _power, ...rest } = c;
      return rest;
    });
  }

  /** True when there is anything to sample. */
  get sampling(): boolean {
    return this.#o.channels.length > 0 || this.#o.probe !== null;
  }

  /** The highest RSS of this process seen by any read. */
  get maxRss(): number {
    return this.#maxRss;
  }

  /** Every row recorded so far (baseline, then measure). */
  get timeseries(): readonly TimeseriesRow[] {
    return this.#timeseries;
  }

  /** An edge read: every counter, every GPU, now. */
  read(t: number = this.#o.now()): Tick {
    return this.#tick(t, true, true);
  }

  #tick(t: number, counters: boolean, gpus: boolean): Tick {
    const rss = process.memoryUsage.rss();
    if (rss > this.#maxRss) this.#maxRss = rss;
    if (counters) this.#lastCounterT = t;
    const probe = this.#o.probe;
    return {
      ...readChannels(gpus ? this.#o.channels : this.#countersOnly, t, counters),
      gpus: probe && gpus ? probe.devices.map((i) => probe.sample(i)) : [],
      rss,
    };
  }

  /** Half a tick of slack: timer lateness must not push every counter read one tick later. */
  #counterDue(t: number): boolean {
    return t - this.#lastCounterT >= this.#o.counterEveryMs - this.#o.intervalMs / 2;
  }

  /** A background GPU reading as a tick: that device's sample and power, nothing else. */
  #gpuTick({ t, sample }: GpuSampleAt): Tick {
    return {
      t,
      counterJ: this.#o.channels.map(() => null),
      powerW: this.#o.channels.map((c) =>
        c.kind === 'gpu' && c.index === sample.index ? sample.powerW : null,
      ),
      gpus: [sample],
      rss: 0,
      background: true,
    };
  }

  /**
   * Prepare the tick sampler for one window; the returned function starts it. When the probe
   * can sample the GPUs off this thread (the NVML probe's worker), GPU readings come from there,
   * so an engine busy on this thread (SSE parsing, token callbacks) cannot delay them; this
   * thread's tick keeps the energy counters and RAPL. The worker is started here, before the
   * caller reads the window's opening edge, so its start-up (tens to hundreds of ms) is not a
   * hole at the start of the window. Both series are merged by time; a tick of this thread that
   * read nothing is dropped. Without the capability this is the plain tick sampler.
   */
  prepare(window: string): () => TickSampler {
    const { probe, intervalMs, now, logger } = this.#o;
    let background: BackgroundGpuSampler | null = null;
    if (probe?.startBackgroundSampler && probe.devices.length > 0 && this.#o.backgroundAllowed) {
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
        const main = startSampler((t) => this.#tick(t, this.#counterDue(t), true), {
          intervalMs,
          now,
        });
        return { stop: () => main.stop(), background: false };
      };
    const bg = background;
    logger.debug(`measure: ${window} window: GPU samples taken on a worker thread`);
    return () => {
      const main = startSampler((t) => this.#tick(t, this.#counterDue(t), false), {
        intervalMs,
        now,
      });
      return {
        background: true,
        stop: () => {
          const own = main
            .stop()
            .filter((k) => k.counterJ.some((j) => j !== null) || k.powerW.some((w) => w !== null));
          let gpu: GpuSampleAt[] = [];
          try {
            gpu = bg.stop();
          } catch (error) {
            logger.debug(
              `measure: stopping the background GPU sampler failed: ${(error as Error).message}`,
            );
          }
          return [...own, ...gpu.map((g) => this.#gpuTick(g))].sort((a, b) => a.t - b.t);
        },
      };
    };
  }

  /** Add a window's readings to the timeseries (times relative to `t0`). */
  record(window: string, t0: number, ticks: readonly Tick[]): void {
    const { channels } = this.#o;
    const rows = this.#timeseries;
    for (const tick of ticks) {
      for (const g of tick.gpus) {
        const pos = channels.findIndex((c) => c.kind === 'gpu' && c.index === g.index);
        const { index: _i, ...sample } = g;
        rows.push({
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
          rows.push({
            window,
            tMs: tick.t - t0,
            device: `gpu${c.index}`,
            sample: {},
            energyJ: counter,
          });
        if (c.kind === 'cpu-package' && !tick.background)
          rows.push({
            window,
            tMs: tick.t - t0,
            device: `cpu-package${c.index}`,
            sample: {},
            energyJ: tick.counterJ[pos] ?? null,
          });
      });
    }
  }
}
