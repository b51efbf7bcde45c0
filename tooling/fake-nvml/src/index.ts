import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Typed scenarios for the fake `libnvidia-ml.so` in `src/fake_nvml.c`. A scenario is written to a
 * small `key=value` file; point `LLEM_FAKE_NVML_SCENARIO` at it and the fake reads it at the next
 * `nvmlInit` (when NVML goes from uninitialised to initialised).
 */

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** NVML return-code names the fake can inject (nvml.h `NVML_ERROR_*` without the prefix). */
export type FakeNvmlErrorName =
  | 'UNINITIALIZED'
  | 'INVALID_ARGUMENT'
  | 'NOT_SUPPORTED'
  | 'NO_PERMISSION'
  | 'ALREADY_INITIALIZED'
  | 'NOT_FOUND'
  | 'INSUFFICIENT_SIZE'
  | 'INSUFFICIENT_POWER'
  | 'DRIVER_NOT_LOADED'
  | 'TIMEOUT'
  | 'IRQ_ISSUE'
  | 'LIBRARY_NOT_FOUND'
  | 'FUNCTION_NOT_FOUND'
  | 'CORRUPTED_INFOROM'
  | 'GPU_IS_LOST'
  | 'RESET_REQUIRED'
  | 'OPERATING_SYSTEM'
  | 'LIB_RM_VERSION_MISMATCH'
  | 'IN_USE'
  | 'MEMORY'
  | 'NO_DATA'
  | 'ARGUMENT_VERSION_MISMATCH'
  | 'GPU_NOT_FOUND'
  | 'INVALID_STATE'
  | 'UNKNOWN';

/** One fake GPU. Omit `instantPowerMw` for a GPU without the instant-power field (pre-Ampere),
 *  `energyMj` for one without the energy counter (pre-Volta). */
export interface FakeDevice {
  name: string;
  uuid: string;
  memoryTotalBytes: number;
  memoryUsedBytes: number;
  /**
   * A file re-read at every memory query: the bytes it holds are added to `memoryUsedBytes`
   * (missing: 0). The test server's `--fake-gpu-memory-file` writes it, posing as a GPU server.
   */
  memoryUsedFile?: string;
  memoryReservedBytes?: number;
  powerMw: number;
  instantPowerMw?: number;
  powerLimitMw: number;
  temperatureC: number;
  utilGpuPct: number;
  utilMemoryPct: number;
  persistenceMode: boolean;
  smClockMHz: number;
  memClockMHz: number;
  clockEventReasons?: number;
  energyMj?: number;
  /** `usedBytes: null` is NVML_VALUE_NOT_AVAILABLE. */
  processes?: ReadonlyArray<{ pid: number; usedBytes: number | null }>;
  /** NVML function name → error it returns on this device only. */
  errors?: Readonly<Record<string, FakeNvmlErrorName>>;
}

export interface FakeScenario {
  driverVersion?: string;
  nvmlVersion?: string;
  /** As NVML reports it: 12040 means CUDA 12.4. */
  cudaDriverVersion?: number;
  /** `nvmlInit` fails with this code. */
  initError?: FakeNvmlErrorName;
  devices: FakeDevice[];
  /** Report this many devices instead of `devices.length`. */
  deviceCount?: number;
  /** NVML function name → error it returns on every device. */
  errors?: Readonly<Record<string, FakeNvmlErrorName>>;
}

const MiB = 1024 * 1024;

/** An H100 SXM with an idle driver context (~1 MiB used), 700 W limit, every counter present. */
export function h100Profile(overrides: Partial<FakeDevice> = {}): FakeDevice {
  return {
    name: 'NVIDIA H100 80GB HBM3',
    uuid: 'GPU-6f1c2b7e-8a0d-4c3e-9b5a-1d2e3f4a5b6c',
    memoryTotalBytes: 81559 * MiB,
    memoryUsedBytes: 1 * MiB,
    memoryReservedBytes: 544 * MiB,
    powerMw: 71_234,
    instantPowerMw: 72_500,
    powerLimitMw: 700_000,
    temperatureC: 34,
    utilGpuPct: 0,
    utilMemoryPct: 0,
    persistenceMode: true,
    smClockMHz: 1980,
    memClockMHz: 2619,
    clockEventReasons: 0x1,
    energyMj: 9_876_543_210,
    processes: [],
    ...overrides,
  };
}

/** An A100 40 GB: instant power and energy counter present, 400 W limit. */
export function a100Profile(overrides: Partial<FakeDevice> = {}): FakeDevice {
  return {
    name: 'NVIDIA A100-SXM4-40GB',
    uuid: 'GPU-0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9',
    memoryTotalBytes: 40960 * MiB,
    memoryUsedBytes: 4 * MiB,
    memoryReservedBytes: 417 * MiB,
    powerMw: 52_100,
    instantPowerMw: 53_000,
    powerLimitMw: 400_000,
    temperatureC: 29,
    utilGpuPct: 0,
    utilMemoryPct: 0,
    persistenceMode: true,
    smClockMHz: 1410,
    memClockMHz: 1215,
    clockEventReasons: 0x1,
    energyMj: 1_234_567,
    processes: [],
    ...overrides,
  };
}

/** A Pascal-era card: no instant-power field, no energy counter, persistence off. */
export function preVoltaProfile(overrides: Partial<FakeDevice> = {}): FakeDevice {
  return {
    name: 'Tesla P100-PCIE-16GB',
    uuid: 'GPU-11111111-2222-3333-4444-555555555555',
    memoryTotalBytes: 16280 * MiB,
    memoryUsedBytes: 0,
    powerMw: 25_000,
    powerLimitMw: 250_000,
    temperatureC: 31,
    utilGpuPct: 0,
    utilMemoryPct: 0,
    persistenceMode: false,
    smClockMHz: 405,
    memClockMHz: 715,
    clockEventReasons: 0x1,
    processes: [],
    ...overrides,
  };
}

function checkValue(where: string, value: string): string {
  if (/[\r\n]/.test(value)) throw new Error(`fake-nvml: ${where} must not contain a line break`);
  return value;
}

/** The scenario as the C fake reads it: one `key=value` per line. */
export function scenarioText(scenario: FakeScenario): string {
  const lines: string[] = [];
  const put = (key: string, value: string | number | boolean | undefined) => {
    if (value === undefined) return;
    const text = typeof value === 'boolean' ? (value ? '1' : '0') : String(value);
    lines.push(`${key}=${checkValue(key, text)}`);
  };
  put('init_error', scenario.initError);
  put('driver_version', scenario.driverVersion);
  put('nvml_version', scenario.nvmlVersion);
  put('cuda_driver_version', scenario.cudaDriverVersion);
  put('device_count', scenario.deviceCount ?? scenario.devices.length);
  for (const [fn, code] of Object.entries(scenario.errors ?? {})) put(`error.${fn}`, code);
  scenario.devices.forEach((d, i) => {
    const p = `device.${i}.`;
    put(`${p}name`, d.name);
    put(`${p}uuid`, d.uuid);
    put(`${p}memory_total`, d.memoryTotalBytes);
    put(`${p}memory_used`, d.memoryUsedBytes);
    put(`${p}memory_used_file`, d.memoryUsedFile);
    put(`${p}memory_reserved`, d.memoryReservedBytes);
    put(`${p}power_mw`, d.powerMw);
    put(`${p}instant_power_mw`, d.instantPowerMw);
    put(`${p}power_limit_mw`, d.powerLimitMw);
    put(`${p}temperature_c`, d.temperatureC);
    put(`${p}util_gpu`, d.utilGpuPct);
    put(`${p}util_memory`, d.utilMemoryPct);
    put(`${p}persistence_mode`, d.persistenceMode);
    put(`${p}sm_clock_mhz`, d.smClockMHz);
    put(`${p}mem_clock_mhz`, d.memClockMHz);
    put(`${p}clock_event_reasons`, d.clockEventReasons);
    put(`${p}energy_mj`, d.energyMj);
    for (const proc of d.processes ?? [])
      put(`${p}process`, `${proc.pid}:${proc.usedBytes ?? 'na'}`);
    for (const [fn, code] of Object.entries(d.errors ?? {})) put(`${p}error.${fn}`, code);
  });
  return `${lines.join('\n')}\n`;
}

let scenarioDir: string | undefined;

function workDir(): string {
  scenarioDir ??= mkdtempSync(join(tmpdir(), 'llem-fake-nvml-'));
  return scenarioDir;
}
let scenarioSeq = 0;

/**
 * Write a scenario file and return its path (for `LLEM_FAKE_NVML_SCENARIO`).
 * @example
 * process.env.LLEM_FAKE_NVML_SCENARIO = writeScenario({ devices: [h100Profile()] });
 */
export function writeScenario(scenario: FakeScenario, dir?: string): string {
  const target = dir ?? workDir();
  const path = join(target, `scenario-${process.pid}-${++scenarioSeq}.txt`);
  writeFileSync(path, scenarioText(scenario));
  return path;
}

/** A fresh, empty trace file path for `LLEM_FAKE_NVML_TRACE`. */
export function traceFilePath(dir?: string): string {
  const target = dir ?? workDir();
  return join(target, `trace-${process.pid}-${++scenarioSeq}.txt`);
}

/**
 * Path of the built fake library. `legacy` is the old-driver build whose newer symbols
 * (`_v2`/`_v3` variants, field values, energy counter, ClocksEventReasons) are really absent.
 */
export function fakeNvmlLibraryPath(variant: 'full' | 'legacy' = 'full'): string {
  return variant === 'legacy'
    ? join(root, 'build', 'legacy', 'libnvidia-ml.so.1')
    : join(root, 'build', 'libnvidia-ml.so.1');
}

/** Build the fake libraries if their C source changed (a no-op otherwise). Throws on failure. */
export function ensureFakeNvmlBuilt(): void {
  const result = spawnSync(process.execPath, [join(root, 'scripts', 'build.mjs')], {
    encoding: 'utf8',
  });
  if (result.status !== 0) {
    throw new Error(`fake-nvml build failed:\n${result.stdout}\n${result.stderr}`);
  }
}
