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
import { Nvml, PowerSampler } from '../src/index';

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

async function samplerCost(intervalMs: number, seconds: number) {
  const nvml = Nvml.open({ library });
  try {
    const sampler = new PowerSampler({ source: nvml.device(0), intervalMs });
    // Hold the event loop open without doing work (the sampler's timers are unref'd).
    const keepAlive = setInterval(() => undefined, 1 << 30);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    sampler.start();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const samples = sampler.stop();
    const wallUs = (performance.now() - t0) * 1000;
    const cpu = process.cpuUsage(cpu0);
    clearInterval(keepAlive);
    const jitter = samples
      .slice(1, -1) // the last one is stop()'s closing reading, off the grid by design
      .map((s) =>
        Math.abs(s.t - samples[0]!.t - Math.round((s.t - samples[0]!.t) / intervalMs) * intervalMs),
      )
      .sort((a, b) => a - b);
    return {
      samples: samples.length,
      corePct: ((cpu.user + cpu.system) / wallUs) * 100,
      p50JitterMs: percentile(jitter, 50),
      p99JitterMs: percentile(jitter, 99),
      maxJitterMs: jitter.at(-1) ?? 0,
    };
  } finally {
    nvml.close();
  }
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
  nvml.close();
  const python = pythonCtypesNs(Math.min(iterations, 500_000));

  const seconds = Number(process.env.LLEM_BENCH_SAMPLER_SECONDS ?? 5);
  const bare = await bareTimerCorePct(10, seconds);
  const sampler = await samplerCost(10, seconds);
  const load = (await import('node:os')).loadavg()[0]!;

  const fmt = (c: Cost) =>
    `${c.cpu.toFixed(0).padStart(6)} ns CPU (${c.wall.toFixed(0).padStart(5)} ns wall)`;
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
    `  sampler @10 ms       ${sampler.corePct.toFixed(3).padStart(6)} % of one core (${sampler.samples} samples)   target ≤ ${TARGET_SAMPLER_CORE_PCT}%: ${verdict(sampler.corePct <= TARGET_SAMPLER_CORE_PCT)}`,
    `  bare 10 ms timer    ${bare.toFixed(3).padStart(6)} % of one core   (Node's wake-up floor; the sampler's readings add ≈ ${((sample.cpu * 100) / 1e7).toFixed(3)} % = tick CPU × 100/s)`,
    `  sampler jitter       p50 ${sampler.p50JitterMs.toFixed(3)} ms, p99 ${sampler.p99JitterMs.toFixed(3)} ms, max ${sampler.maxJitterMs.toFixed(3)} ms   target p99 ≤ ${TARGET_JITTER_MS} ms: ${verdict(sampler.p99JitterMs <= TARGET_JITTER_MS)}`,
  ];
  lines.push(
    `  machine: ${(await import('node:os')).cpus().length} cores, 1-min load average ${load.toFixed(2)} (contention inflates every figure)`,
  );
  process.stdout.write(`${lines.join('\n')}\n`);
}

await main();
