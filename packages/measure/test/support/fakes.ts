import type {
  Engine,
  EngineInfo,
  EngineRequest,
  RequestRecord,
  WorkloadOutcome,
} from '@llem/engines';
import { GPU_READINGS, type GpuReadings } from '@llem/nvml/readings';
import type { GpuProbe, GpuSample } from '../../src/gpu';

/** An engine that "generates" tokens on a timer: 10 ms TTFT, then one token every 2 ms. */
export function fakeEngine(
  opts: { runMs?: number; parameterCount?: number | null; failLoads?: number } = {},
): Engine & {
  loads: number;
  disposed: number;
} {
  const runMs = opts.runMs ?? 300;
  let failLoads = opts.failLoads ?? 0;
  const records = (requests: EngineRequest[], t0: number): RequestRecord[] =>
    requests.map((r, i) => {
      const startedAt = t0 + i;
      const firstTokenAt = startedAt + 10;
      const tokenTimes = Array.from(
        { length: r.maxOutputTokens - 1 },
        (_, k) => firstTokenAt + 2 * (k + 1),
      );
      return {
        id: r.id,
        startedAt,
        firstTokenAt,
        tokenTimes,
        endedAt: tokenTimes.at(-1) ?? firstTokenAt,
        inputTokens: 8,
        outputTokens: r.maxOutputTokens,
      };
    });
  const engine = {
    name: 'llamacpp' as const,
    windowMarking: 'harness' as const,
    loads: 0,
    disposed: 0,
    async load(): Promise<EngineInfo> {
      engine.loads++;
      if (failLoads-- > 0) {
        const { RetryableError } = await import('@llem/resilience');
        throw new RetryableError('transient load failure');
      }
      return {
        engine: 'llamacpp',
        engineVersion: 'fake 1.0',
        parameterCount: opts.parameterCount ?? 1000,
        model: 'fake',
        backend: 'cpu',
        details: {},
      };
    },
    async warmup(requests: EngineRequest[]) {
      return records(requests, performance.now());
    },
    async run(requests: EngineRequest[]): Promise<WorkloadOutcome> {
      const t0 = performance.now();
      await new Promise((r) => setTimeout(r, runMs));
      const recs = records(requests, t0);
      return {
        requests: recs,
        inputTokens: 8 * requests.length,
        outputTokens: requests.reduce((a, r) => a + r.maxOutputTokens, 0),
        tokenCountSource: 'engine',
      };
    },
    async dispose() {
      engine.disposed++;
    },
  };
  return engine;
}

export interface ScriptedGpu {
  powerW: number;
  counter: 'supported' | 'not-supported' | 'reset';
  temperatureC?: (elapsedMs: number) => number;
  clockEventReasons?: number;
  persistenceMode?: boolean;
  memoryUsedMiB?: number;
}

/** A GPU probe whose energy counter advances with real time at a constant power. */
export function scriptedProbe(gpu: ScriptedGpu): GpuProbe & { closed: number } {
  const t0 = performance.now();
  let resetDone = false;
  const sample = (index: number): GpuSample => ({
    // Every reading of the table, unreadable unless scripted below.
    ...(Object.fromEntries(GPU_READINGS.map((r) => [r.key, null])) as GpuReadings),
    index,
    powerW: gpu.powerW,
    memoryUsedMiB: gpu.memoryUsedMiB ?? 1024,
    memoryTotalMiB: 81920,
    temperatureC: gpu.temperatureC ? gpu.temperatureC(performance.now() - t0) : 40,
    utilizationGpuPct: 90,
    smClockMHz: 1980,
    clockEventReasons: gpu.clockEventReasons ?? 0,
  });
  const probe = {
    devices: [0],
    driverVersion: '550.54.15',
    cudaVersion: '12.4',
    closed: 0,
    info: (index: number) => ({
      index,
      name: 'Fake H100',
      uuid: 'GPU-fake',
      memoryTotalMiB: 81920,
      persistenceMode: gpu.persistenceMode ?? true,
    }),
    energyCounterMj: () => {
      if (gpu.counter === 'not-supported') return null;
      const mj = (performance.now() - t0) * gpu.powerW; // W × ms = mJ
      if (gpu.counter === 'reset' && performance.now() - t0 > 250) {
        if (!resetDone) resetDone = true;
        return mj - 200 * gpu.powerW; // the counter fell back (driver reload)
      }
      return mj;
    },
    powerW: () => gpu.powerW,
    sample,
    close: () => {
      probe.closed++;
    },
  };
  return probe;
}
