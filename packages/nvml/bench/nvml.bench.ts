// `pnpm bench`: per-call cost of the readings a sampler takes, the sampler's CPU use and timing
// jitter, all against the fake libnvidia-ml, and a raw Python ctypes call on the same library in
// the same run as the parity reference. Prints figures and ratios; asserts nothing.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ensureFakeNvmlBuilt,
  fakeNvmlLibraryPath,
  h100Profile,
  writeScenario,
} from '@llem/fake-nvml';
import {
  type GpuDevice,
  Nvml,
  type NvmlDevice,
  type PowerSample,
  PowerSampler,
} from '../src/index';

const TARGET_READ_NS = 300;
const TARGET_MEMORY_NS = 1000;
const TARGET_SAMPLER_CORE_PCT = 1;
const TARGET_JITTER_MS = 2;

// LLEM_BENCH_NVML_LIBRARY=/path/libnvidia-ml.so.1 runs the same figures on a real driver.
const realLibrary = process.env.LLEM_BENCH_NVML_LIBRARY;
if (!realLibrary) ensureFakeNvmlBuilt();
const library = realLibrary ?? fakeNvmlLibraryPath();
if (!realLibrary) {
  process.env.LLEM_FAKE_NVML_SCENARIO = writeScenario({ devices: [h100Profile()] });
}
// Tracing appends to a file on every call; it would measure the disk, not the binding.
delete process.env.LLEM_FAKE_NVML_TRACE;

interface Cost {
  /** Wall-clock ns per call (includes time other processes took the core). */
  wall: number;
  /** CPU ns per call (user + system of this process): the binding's own work. */
  cpu: number;
}

/** Median of 5 timed runs, both wall and CPU time: the CPU figure survives a busy machine. */
function nsPerCall(fn: () => unknown, iterations: number): Cost {
  for (let i = 0; i < Math.min(iterations, 50_000); i++) fn(); // warm up the JIT and koffi
  const runs: Cost[] = [];
  for (let r = 0; r < 5; r++) {
    const cpu0 = process.cpuUsage();
    const start = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) fn();
    const wall = Number(process.hrtime.bigint() - start) / iterations;
    const cpu = process.cpuUsage(cpu0);
    runs.push({ wall, cpu: ((cpu.user + cpu.system) * 1000) / iterations });
  }
  const median = (values: number[]) => values.sort((a, b) => a - b)[2]!;
  return { wall: median(runs.map((r) => r.wall)), cpu: median(runs.map((r) => r.cpu)) };
}

function pythonCtypesNs(iterations: number): Cost | string {
  const script = `
import ctypes, time, sys
lib = ctypes.CDLL(sys.argv[1])
class Value(ctypes.Union):
    _fields_ = [("dVal", ctypes.c_double), ("uiVal", ctypes.c_uint), ("ulVal", ctypes.c_ulong),
                ("ullVal", ctypes.c_ulonglong), ("sllVal", ctypes.c_longlong)]
class FieldValue(ctypes.Structure):
    _fields_ = [("fieldId", ctypes.c_uint), ("scopeId", ctypes.c_uint), ("timestamp", ctypes.c_longlong),
                ("latencyUsec", ctypes.c_longlong), ("valueType", ctypes.c_int), ("nvmlReturn", ctypes.c_int),
                ("value", Value)]
assert lib.nvmlInit_v2() == 0
handle = ctypes.c_void_p()
assert lib.nvmlDeviceGetHandleByIndex_v2(0, ctypes.byref(handle)) == 0
fn = lib.nvmlDeviceGetFieldValues
fn.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(FieldValue)]
fn.restype = ctypes.c_int
fv = FieldValue()
ref = ctypes.byref(fv)
n = int(sys.argv[2])
def read():
    fv.fieldId = 186
    fn(handle, 1, ref)
    return fv.value.uiVal / 1000
for _ in range(50000): read()
walls, cpus = [], []
for _ in range(5):
    t = time.perf_counter_ns(); c = time.process_time_ns()
    for _ in range(n): read()
    walls.append((time.perf_counter_ns() - t) / n); cpus.append((time.process_time_ns() - c) / n)
walls.sort(); cpus.sort()
assert sys.argv[3] != 'fake' or abs(read() - 72.5) < 1e-9
lib.nvmlShutdown()
print(walls[2], cpus[2])
`;
  const file = join(tmpdir(), `llem-nvml-bench-${process.pid}.py`);
  writeFileSync(file, script);
  const result = spawnSync(
    'python3',
    [file, library, String(iterations), realLibrary ? 'real' : 'fake'],
    { encoding: 'utf8' },
  );
  if (result.error) return `skipped (python3 not found: ${result.error.message})`;
  if (result.status !== 0)
    return `skipped (python3 failed: ${result.stderr.trim().split('\n').at(-1)})`;
  const [wall, cpu] = result.stdout.trim().split(/\s+/).map(Number);
  return { wall: wall!, cpu: cpu! };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

type Thread = 'main' | 'worker';

interface SamplerFigures {
  samples: number;
  corePct: number;
  p50JitterMs: number;
  p99JitterMs: number;
  maxJitterMs: number;
  /** Longest time between consecutive samples: what a stalled loop leaves unmeasured. */
  maxGapMs: number;
}

/**
 * Keep the calling thread CPU-bound for `ms`: 50 ms slices of pure JS with a macrotask turn
 * between them, the way an engine's callbacks and HTTP streaming occupy the main thread.
 */
async function busyMainThread(ms: number): Promise<void> {
  const end = performance.now() + ms;
  let sink = 0;
  while (performance.now() < end) {
    const slice = Math.min(end, performance.now() + 50);
    while (performance.now() < slice) sink += Math.sqrt(sink + 1);
    await new Promise((r) => setImmediate(r));
  }
  if (sink < 0) throw new Error('unreachable');
}

function figures(samples: readonly PowerSample[], intervalMs: number, corePct: number) {
  const t0 = samples[0]!.t;
  const inner = samples.slice(1, -1); // the last one is stop()'s closing reading, off the grid by design
  const jitter = inner
    .map((s) => Math.abs(s.t - t0 - Math.round((s.t - t0) / intervalMs) * intervalMs))
    .sort((a, b) => a - b);
  let maxGapMs = 0;
  for (let i = 1; i < samples.length - 1; i++) {
    maxGapMs = Math.max(maxGapMs, samples[i]!.t - samples[i - 1]!.t);
  }
  return {
    samples: samples.length,
    corePct,
    p50JitterMs: percentile(jitter, 50),
    p99JitterMs: percentile(jitter, 99),
    maxJitterMs: jitter.at(-1) ?? 0,
    maxGapMs,
  } satisfies SamplerFigures;
}

/**
 * Run a sampler for `seconds` and measure the process's CPU over the run (every thread, so the
 * worker's share is counted) as a percentage of one core. `busy` keeps the main thread CPU-bound
 * meanwhile; the CPU figure is then meaningless, the timing ones are the point.
 */
async function samplerCost(
  thread: Thread,
  intervalMs: number,
  seconds: number,
  options: { busy?: boolean; source?: GpuDevice } = {},
): Promise<SamplerFigures> {
  const nvml = Nvml.open({ library });
  try {
    const sampler = new PowerSampler({
      source: options.source ?? nvml.device(0),
      intervalMs,
      thread,
    });
    // Hold the event loop open without doing work (the sampler's timers are unref'd).
    const keepAlive = setInterval(() => undefined, 1 << 30);
    sampler.start();
    // Measured from after start(): the worker's start-up is paid once, not per sample.
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    if (options.busy) await busyMainThread(seconds * 1000);
    else await new Promise((r) => setTimeout(r, seconds * 1000));
    const samples = sampler.stop();
    const wallUs = (performance.now() - t0) * 1000;
    const cpu = process.cpuUsage(cpu0);
    clearInterval(keepAlive);
    return figures(samples, intervalMs, ((cpu.user + cpu.system) / wallUs) * 100);
  } finally {
    nvml.close();
  }
}

/** CPU of the process doing nothing but holding the loop open: the baseline under everything. */
async function idleCorePct(seconds: number): Promise<number> {
  const keepAlive = setInterval(() => undefined, 1 << 30);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const cpu = process.cpuUsage(cpu0);
  clearInterval(keepAlive);
  return ((cpu.user + cpu.system) / ((performance.now() - t0) * 1000)) * 100;
}

/** CPU of a bare self-rescheduling 10 ms timer: the floor any Node sampler pays for waking up. */
async function bareTimerCorePct(intervalMs: number, seconds: number): Promise<number> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const tick = () => {
    timer = setTimeout(tick, intervalMs);
  };
  tick();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  clearTimeout(timer);
  const cpu = process.cpuUsage(cpu0);
  return ((cpu.user + cpu.system) / ((performance.now() - t0) * 1000)) * 100;
}

const READINGS = [
  'instantPowerW',
  'memoryInfo',
  'temperatureC',
  'utilization',
  'smClockMHz',
  'clockEventReasonsMask',
] as const;

/**
 * What the six readings cost where the sampler takes them: once per interval, after the thread
 * slept (cold caches, a driver call after idle), not back to back in a hot loop. Sleeps with a
 * blocking Atomics.wait on this thread, so the figures have no event loop in them; the same loop
 * without readings is the sleep floor to subtract.
 */
function inSituReadings(gpu: NvmlDevice, intervalMs: number, seconds: number) {
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  const ticks = Math.round((seconds * 1000) / intervalMs);
  const loop = (read: boolean) => {
    const us = READINGS.map(() => [] as number[]);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (let k = 0; k < ticks; k++) {
      Atomics.wait(sleeper, 0, 0, intervalMs);
      if (!read) continue;
      for (let i = 0; i < READINGS.length; i++) {
        const t = performance.now();
        gpu[READINGS[i]!]();
        us[i]!.push((performance.now() - t) * 1000);
      }
    }
    const cpu = process.cpuUsage(cpu0);
    const corePct = ((cpu.user + cpu.system) / ((performance.now() - t0) * 1000)) * 100;
    return {
      corePct,
      medianUs: us.map((v) =>
        percentile(
          v.sort((a, b) => a - b),
          50,
        ),
      ),
    };
  };
  const floor = loop(false);
  const withReadings = loop(true);
  return {
    floorPct: floor.corePct,
    readingsPct: withReadings.corePct,
    medianUs: withReadings.medianUs,
  };
}

/** The main-thread loop with no FFI at all: what the scheduling itself costs. */
const constantSource: GpuDevice = {
  instantPowerW: () => 100,
  memoryInfo: () => null,
  temperatureC: () => 40,
  utilization: () => null,
  smClockMHz: () => 1980,
  clockEventReasonsMask: () => 0,
};

function verdict(ok: boolean): string {
  return ok ? 'meets target' : 'MISSES target';
}

async function main(): Promise<void> {
  const iterations = Number(process.env.LLEM_BENCH_ITERATIONS ?? 1_000_000);
  const nvml = Nvml.open({ library });
  const gpu = nvml.device(0);
  if (!realLibrary && gpu.instantPowerW() !== 72.5)
    throw new Error('bench: unexpected instant power from the fake');
  const instant = nsPerCall(() => gpu.instantPowerW(), iterations);
  const power = nsPerCall(() => gpu.powerUsageW(), iterations);
  const memory = nsPerCall(() => gpu.memoryInfo(), iterations);
  const temperature = nsPerCall(() => gpu.temperatureC(), iterations);
  const probe = new PowerSampler({ source: gpu });
  const sample = nsPerCall(() => probe.sampleNow(), Math.ceil(iterations / 10));
  const seconds = Number(process.env.LLEM_BENCH_SAMPLER_SECONDS ?? 5);
  const inSitu = inSituReadings(gpu, 10, seconds);
  nvml.close();
  const python = pythonCtypesNs(Math.min(iterations, 500_000));

  const idle = await idleCorePct(seconds);
  const bare = await bareTimerCorePct(10, seconds);
  const loopOnly = await samplerCost('main', 10, seconds, { source: constantSource });
  const main = await samplerCost('main', 10, seconds);
  const worker = await samplerCost('worker', 10, seconds);
  const mainBusy = await samplerCost('main', 10, seconds, { busy: true });
  const workerBusy = await samplerCost('worker', 10, seconds, { busy: true });
  const load = (await import('node:os')).loadavg()[0]!;

  const fmt = (c: Cost) =>
    `${c.cpu.toFixed(0).padStart(6)} ns CPU (${c.wall.toFixed(0).padStart(5)} ns wall)`;
  const pct = (v: number) => `${v.toFixed(3).padStart(6)} %`;
  const ms = (v: number) => `${v.toFixed(3)} ms`;
  const timing = (f: SamplerFigures) =>
    `p50 ${ms(f.p50JitterMs)}, p99 ${ms(f.p99JitterMs)}, max ${ms(f.maxJitterMs)}, longest gap ${ms(f.maxGapMs)}`;
  const ratio = (a: number, b: number) => (b > 0 ? (a / b).toFixed(2) : 'n/a');
  const lines = [
    `@llem/nvml benchmark (${realLibrary ? `real driver ${realLibrary}` : 'fake libnvidia-ml'}, koffi FFI; median of 5 runs; verdicts use CPU ns)`,
    `  instantPowerW()     ${fmt(instant)}   target ≤ ${TARGET_READ_NS} ns: ${verdict(instant.cpu <= TARGET_READ_NS)}`,
    typeof python === 'string'
      ? `  python ctypes read  ${python}`
      : `  python ctypes read  ${fmt(python)}   ratio llem/python = ${(instant.cpu / python.cpu).toFixed(2)} (parity ≤ 1.0: ${verdict(instant.cpu <= python.cpu)})`,
    `  powerUsageW()       ${fmt(power)}`,
    `  temperatureC()      ${fmt(temperature)}`,
    `  memoryInfo()        ${fmt(memory)}   target ≤ ${TARGET_MEMORY_NS} ns: ${verdict(memory.cpu <= TARGET_MEMORY_NS)} (ratio ${(memory.cpu / TARGET_MEMORY_NS).toFixed(2)})`,
    `  one sampler tick    ${fmt(sample)}   (six readings + the sample object)`,
    `  sampler CPU @10 ms, % of one core, whole process (${seconds} s each; readings alone ≈ ${((sample.cpu * 100) / 1e7).toFixed(3)} % = tick CPU × 100/s):`,
    `    idle process        ${pct(idle)}   (baseline: an idle Node process holding its loop open)`,
    `    bare 10 ms timer    ${pct(bare)}   (a self-rescheduling setTimeout: the main-thread wake-up floor)`,
    `    main, no FFI        ${pct(loopOnly.corePct)}   (the main-thread loop with a constant JS source)`,
    `    main thread         ${pct(main.corePct)} (${main.samples} samples)   target ≤ ${TARGET_SAMPLER_CORE_PCT}%: ${verdict(main.corePct <= TARGET_SAMPLER_CORE_PCT)}`,
    `    worker thread       ${pct(worker.corePct)} (${worker.samples} samples)   target ≤ ${TARGET_SAMPLER_CORE_PCT}%: ${verdict(worker.corePct <= TARGET_SAMPLER_CORE_PCT)}   ratio worker/main = ${ratio(worker.corePct, main.corePct)}`,
    `  the six readings once per 10 ms after a sleep (where a sampler takes them), blocking Atomics.wait loop on one thread:`,
    `    sleep only ${pct(inSitu.floorPct)}, sleep + readings ${pct(inSitu.readingsPct)}: readings in situ ≈ ${(inSitu.readingsPct - inSitu.floorPct).toFixed(3)} % vs ${((sample.cpu * 100) / 1e7).toFixed(3)} % predicted from the hot loop`,
    `    median µs per reading in situ: ${READINGS.map((n, i) => `${n} ${inSitu.medianUs[i]!.toFixed(1)}`).join(', ')}`,
    `  sampler jitter @10 ms (target p99 ≤ ${TARGET_JITTER_MS} ms):`,
    `    main thread, idle   ${timing(main)}: ${verdict(main.p99JitterMs <= TARGET_JITTER_MS)}`,
    `    worker, idle        ${timing(worker)}: ${verdict(worker.p99JitterMs <= TARGET_JITTER_MS)}   p99 ratio worker/main = ${ratio(worker.p99JitterMs, main.p99JitterMs)}`,
    `    main thread, busy   ${timing(mainBusy)} (${mainBusy.samples} samples): ${verdict(mainBusy.p99JitterMs <= TARGET_JITTER_MS)}`,
    `    worker, busy        ${timing(workerBusy)} (${workerBusy.samples} samples): ${verdict(workerBusy.p99JitterMs <= TARGET_JITTER_MS)}   longest-gap ratio worker/main = ${ratio(workerBusy.maxGapMs, mainBusy.maxGapMs)}`,
    '    (busy: the main thread runs 50 ms CPU-bound slices back to back; jitter is the distance to the nearest 10 ms slot, so a stall shows as a long gap)',
  ];
  lines.push(
    `  machine: ${(await import('node:os')).cpus().length} cores, 1-min load average ${load.toFixed(2)} (contention inflates every figure)`,
  );
  process.stdout.write(`${lines.join('\n')}\n`);
}

await main();
