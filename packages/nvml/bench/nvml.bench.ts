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

ensureFakeNvmlBuilt();
const library = fakeNvmlLibraryPath();
process.env.LLEM_FAKE_NVML_SCENARIO = writeScenario({ devices: [h100Profile()] });
// Tracing appends to a file on every call; it would measure the disk, not the binding.
delete process.env.LLEM_FAKE_NVML_TRACE;

function nsPerCall(fn: () => unknown, iterations: number): number {
  for (let i = 0; i < Math.min(iterations, 50_000); i++) fn(); // warm up the JIT and koffi
  const runs: number[] = [];
  for (let r = 0; r < 5; r++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) fn();
    runs.push(Number(process.hrtime.bigint() - start) / iterations);
  }
  runs.sort((a, b) => a - b);
  return runs[2]!; // median of 5
}

function pythonCtypesNs(iterations: number): number | string {
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
runs = []
for _ in range(5):
    t = time.perf_counter_ns()
    for _ in range(n): read()
    runs.append((time.perf_counter_ns() - t) / n)
runs.sort()
assert abs(read() - 72.5) < 1e-9
lib.nvmlShutdown()
print(runs[2])
`;
  const file = join(tmpdir(), `llem-nvml-bench-${process.pid}.py`);
  writeFileSync(file, script);
  const result = spawnSync('python3', [file, library, String(iterations)], { encoding: 'utf8' });
  if (result.error) return `skipped (python3 not found: ${result.error.message})`;
  if (result.status !== 0)
    return `skipped (python3 failed: ${result.stderr.trim().split('\n').at(-1)})`;
  return Number(result.stdout.trim());
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
  if (gpu.instantPowerW() !== 72.5)
    throw new Error('bench: unexpected instant power from the fake');
  const instant = nsPerCall(() => gpu.instantPowerW(), iterations);
  const power = nsPerCall(() => gpu.powerUsageW(), iterations);
  const memory = nsPerCall(() => gpu.memoryInfo(), iterations);
  const temperature = nsPerCall(() => gpu.temperatureC(), iterations);
  nvml.close();
  const python = pythonCtypesNs(Math.min(iterations, 500_000));

  const seconds = Number(process.env.LLEM_BENCH_SAMPLER_SECONDS ?? 5);
  const bare = await bareTimerCorePct(10, seconds);
  const sampler = await samplerCost(10, seconds);
  const load = (await import('node:os')).loadavg()[0]!;

  const lines = [
    '@llem/nvml benchmark (fake libnvidia-ml, koffi FFI; median of 5 runs)',
    `  instantPowerW()      ${instant.toFixed(0).padStart(6)} ns/call   target ≤ ${TARGET_READ_NS} ns: ${verdict(instant <= TARGET_READ_NS)}`,
    typeof python === 'number'
      ? `  python ctypes read   ${python.toFixed(0).padStart(6)} ns/call   ratio llem/python = ${(instant / python).toFixed(2)} (parity target ≤ 1.0: ${verdict(instant <= python)})`
      : `  python ctypes read   ${python}`,
    `  powerUsageW()        ${power.toFixed(0).padStart(6)} ns/call`,
    `  temperatureC()       ${temperature.toFixed(0).padStart(6)} ns/call`,
    `  memoryInfo()         ${memory.toFixed(0).padStart(6)} ns/call   target ≤ ${TARGET_MEMORY_NS} ns: ${verdict(memory <= TARGET_MEMORY_NS)} (ratio ${(memory / TARGET_MEMORY_NS).toFixed(2)})`,
    `  sampler @10 ms       ${sampler.corePct.toFixed(3).padStart(6)} % of one core (${sampler.samples} samples)   target ≤ ${TARGET_SAMPLER_CORE_PCT}%: ${verdict(sampler.corePct <= TARGET_SAMPLER_CORE_PCT)}`,
    `  bare 10 ms timer     ${bare.toFixed(3).padStart(6)} % of one core   (event-loop wake-up floor; sampler's own share ≈ ${(sampler.corePct - bare).toFixed(3)} %)`,
    `  sampler jitter       p50 ${sampler.p50JitterMs.toFixed(3)} ms, p99 ${sampler.p99JitterMs.toFixed(3)} ms, max ${sampler.maxJitterMs.toFixed(3)} ms   target p99 ≤ ${TARGET_JITTER_MS} ms: ${verdict(sampler.p99JitterMs <= TARGET_JITTER_MS)}`,
  ];
  lines.push(
    `  machine: ${(await import('node:os')).cpus().length} cores, 1-min load average ${load.toFixed(2)} (contention inflates every figure)`,
  );
  process.stdout.write(`${lines.join('\n')}\n`);
}

await main();
