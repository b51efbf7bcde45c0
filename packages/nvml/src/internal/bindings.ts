// The only file in the repository that imports koffi. Everything else sees plain functions that
// take numbers and typed arrays and return NVML's integer return code.
import koffi from 'koffi';
import { NvmlLibraryError } from '../errors';

/** `NVML_ERROR_NOT_SUPPORTED`: what a function whose symbol the library lacks returns. */
export const RETURN_NOT_SUPPORTED = 3;

/** A bound NVML function: C arguments in, `nvmlReturn_t` out. */
export type NvmlFn = (...args: unknown[]) => number;

/** An opaque `nvmlDevice_t` as koffi hands it back (an External). */
export type DeviceHandle = object;

// Types are anonymous on purpose: koffi registers named types process-wide, and this module can
// be evaluated more than once per process (vitest module isolation), which would clash.
const ptr = 'void *';
const handleOut = koffi.out(koffi.pointer(koffi.pointer(koffi.opaque())));
const u32 = 'uint32_t';
const i32 = 'int';

/**
 * nvml.h struct layouts (LP64). Kept as koffi types so the offsets the wrapper uses come from the
 * same C ABI rules koffi applies, not from hand arithmetic.
 */
const types = {
  memoryV1: koffi.struct({ total: 'uint64_t', free: 'uint64_t', used: 'uint64_t' }),
  memoryV2: koffi.struct({
    version: 'uint32_t',
    total: 'uint64_t',
    reserved: 'uint64_t',
    free: 'uint64_t',
    used: 'uint64_t',
  }),
  utilization: koffi.struct({ gpu: 'uint32_t', memory: 'uint32_t' }),
  fieldValue: koffi.struct({
    fieldId: 'uint32_t',
    scopeId: 'uint32_t',
    timestamp: 'int64_t',
    latencyUsec: 'int64_t',
    valueType: 'int',
    nvmlReturn: 'int',
    value: koffi.union({
      dVal: 'double',
      siVal: 'int',
      uiVal: 'unsigned int',
      ulVal: 'unsigned long',
      ullVal: 'unsigned long long',
      sllVal: 'long long',
      usVal: 'unsigned short',
    }),
  }),
  processInfoV1: koffi.struct({ pid: 'uint32_t', usedGpuMemory: 'uint64_t' }),
  processInfoV2: koffi.struct({
    pid: 'uint32_t',
    usedGpuMemory: 'uint64_t',
    gpuInstanceId: 'uint32_t',
    computeInstanceId: 'uint32_t',
  }),
};

function layoutOf<K extends string>(type: unknown, members: readonly K[]) {
  const offsets = {} as Record<K, number>;
  for (const m of members) offsets[m] = koffi.offsetof(type as string, m);
  return { size: koffi.sizeof(type as string), offsets };
}

/** Sizes and member offsets (bytes) of the structs NVML fills in. */
export const LAYOUT = {
  memoryV1: layoutOf(types.memoryV1, ['total', 'free', 'used']),
  memoryV2: layoutOf(types.memoryV2, ['version', 'total', 'reserved', 'free', 'used']),
  utilization: layoutOf(types.utilization, ['gpu', 'memory']),
  fieldValue: layoutOf(types.fieldValue, [
    'fieldId',
    'scopeId',
    'timestamp',
    'latencyUsec',
    'valueType',
    'nvmlReturn',
    'value',
  ]),
  processInfoV1: layoutOf(types.processInfoV1, ['pid', 'usedGpuMemory']),
  processInfoV2: layoutOf(types.processInfoV2, [
    'pid',
    'usedGpuMemory',
    'gpuInstanceId',
    'computeInstanceId',
  ]),
};

interface FnSpec {
  /** Symbol names, newest first: the first one the library exports is bound. */
  symbols: readonly string[];
  result: string;
  args: readonly unknown[];
}

/**
 * Every NVML entry point llem uses. Variants that share a signature are listed together
 * (`_v3` → `_v2` → plain); variants whose struct differs are separate entries so the wrapper
 * picks the layout that matches the symbol.
 */
const SPECS = {
  init: { symbols: ['nvmlInit_v2', 'nvmlInit'], result: i32, args: [] },
  shutdown: { symbols: ['nvmlShutdown'], result: i32, args: [] },
  systemGetDriverVersion: {
    symbols: ['nvmlSystemGetDriverVersion'],
    result: i32,
    args: [ptr, u32],
  },
  systemGetNVMLVersion: { symbols: ['nvmlSystemGetNVMLVersion'], result: i32, args: [ptr, u32] },
  systemGetCudaDriverVersion: {
    symbols: ['nvmlSystemGetCudaDriverVersion_v2', 'nvmlSystemGetCudaDriverVersion'],
    result: i32,
    args: [ptr],
  },
  deviceGetCount: {
    symbols: ['nvmlDeviceGetCount_v2', 'nvmlDeviceGetCount'],
    result: i32,
    args: [ptr],
  },
  deviceGetHandleByIndex: {
    symbols: ['nvmlDeviceGetHandleByIndex_v2', 'nvmlDeviceGetHandleByIndex'],
    result: i32,
    args: [u32, handleOut],
  },
  deviceGetName: { symbols: ['nvmlDeviceGetName'], result: i32, args: [ptr, ptr, u32] },
  deviceGetUUID: { symbols: ['nvmlDeviceGetUUID'], result: i32, args: [ptr, ptr, u32] },
  deviceGetMemoryInfoV2: { symbols: ['nvmlDeviceGetMemoryInfo_v2'], result: i32, args: [ptr, ptr] },
  deviceGetMemoryInfo: { symbols: ['nvmlDeviceGetMemoryInfo'], result: i32, args: [ptr, ptr] },
  deviceGetPowerUsage: { symbols: ['nvmlDeviceGetPowerUsage'], result: i32, args: [ptr, ptr] },
  deviceGetFieldValues: {
    symbols: ['nvmlDeviceGetFieldValues'],
    result: i32,
    args: [ptr, i32, ptr],
  },
  deviceGetTotalEnergyConsumption: {
    symbols: ['nvmlDeviceGetTotalEnergyConsumption'],
    result: i32,
    args: [ptr, ptr],
  },
  deviceGetEnforcedPowerLimit: {
    symbols: ['nvmlDeviceGetEnforcedPowerLimit'],
    result: i32,
    args: [ptr, ptr],
  },
  deviceGetTemperature: {
    symbols: ['nvmlDeviceGetTemperature'],
    result: i32,
    args: [ptr, i32, ptr],
  },
  deviceGetUtilizationRates: {
    symbols: ['nvmlDeviceGetUtilizationRates'],
    result: i32,
    args: [ptr, ptr],
  },
  deviceGetPersistenceMode: {
    symbols: ['nvmlDeviceGetPersistenceMode'],
    result: i32,
    args: [ptr, ptr],
  },
  deviceGetClockInfo: { symbols: ['nvmlDeviceGetClockInfo'], result: i32, args: [ptr, i32, ptr] },
  deviceGetClockEventReasons: {
    // Renamed in CUDA 12.2 drivers; older drivers only export the "Throttle" name.
    symbols: [
      'nvmlDeviceGetCurrentClocksEventReasons',
      'nvmlDeviceGetCurrentClocksThrottleReasons',
    ],
    result: i32,
    args: [ptr, ptr],
  },
  deviceGetComputeRunningProcessesV2: {
    // _v3 and _v2 both take the 24-byte nvmlProcessInfo_v2_t layout.
    symbols: ['nvmlDeviceGetComputeRunningProcesses_v3', 'nvmlDeviceGetComputeRunningProcesses_v2'],
    result: i32,
    args: [ptr, ptr, ptr],
  },
  deviceGetComputeRunningProcesses: {
    // The unversioned symbol takes the 16-byte nvmlProcessInfo_v1_t layout.
    symbols: ['nvmlDeviceGetComputeRunningProcesses'],
    result: i32,
    args: [ptr, ptr, ptr],
  },
} satisfies Record<string, FnSpec>;

export type NvmlFunctionName = keyof typeof SPECS;

/** Symbol names of each function, for messages ("nvmlDeviceGetPowerUsage failed: …"). */
export function symbolsOf(name: NvmlFunctionName): readonly string[] {
  return SPECS[name].symbols;
}

/** A loaded libnvidia-ml with lazily bound functions. */
export interface NvmlBindings {
  /** The path (or soname) that loaded. */
  readonly path: string;
  /**
   * The bound function, binding it on first use. When the library exports none of its symbols
   * the result is a stub that returns NOT_SUPPORTED, so one missing reading never breaks the rest.
   */
  fn(name: NvmlFunctionName): NvmlFn;
  /** The symbol that backs a function, or null when the library exports none of its variants. */
  symbol(name: NvmlFunctionName): string | null;
  /** `nvmlErrorString(code)`, or null when the library lacks it. */
  errorString(returnCode: number): string | null;
}

const notSupported: NvmlFn = () => RETURN_NOT_SUPPORTED;

class KoffiNvmlBindings implements NvmlBindings {
  private readonly bound = new Map<NvmlFunctionName, { fn: NvmlFn; symbol: string | null }>();
  private errorStringFn: ((code: number) => string | null) | null | undefined;

  constructor(
    readonly path: string,
    private readonly lib: koffi.IKoffiLib,
  ) {}

  private bind(name: NvmlFunctionName) {
    let entry = this.bound.get(name);
    if (entry) return entry;
    const spec: FnSpec = SPECS[name];
    entry = { fn: notSupported, symbol: null };
    for (const symbol of spec.symbols) {
      try {
        const fn = this.lib.func(symbol, spec.result, spec.args as string[]) as NvmlFn;
        entry = { fn, symbol };
        break;
      } catch {
        // Not exported by this driver: try the older variant, else fall back to NOT_SUPPORTED.
      }
    }
    this.bound.set(name, entry);
    return entry;
  }

  fn(name: NvmlFunctionName): NvmlFn {
    return this.bind(name).fn;
  }

  symbol(name: NvmlFunctionName): string | null {
    return this.bind(name).symbol;
  }

  errorString(returnCode: number): string | null {
    if (this.errorStringFn === undefined) {
      try {
        this.errorStringFn = this.lib.func('nvmlErrorString', 'const char *', ['int']) as (
          code: number,
        ) => string | null;
      } catch {
        this.errorStringFn = null;
      }
    }
    return this.errorStringFn ? this.errorStringFn(returnCode) : null;
  }
}

/** Directories where distributions and containers put the driver's user-space libraries. */
export const DEFAULT_LIBRARY_DIRS: readonly string[] = [
  '/usr/lib/x86_64-linux-gnu',
  '/usr/lib/aarch64-linux-gnu',
  '/usr/lib64',
  '/usr/lib',
  '/usr/local/nvidia/lib64',
  '/usr/local/nvidia/lib',
  '/usr/lib/wsl/lib',
  '/run/opengl-driver/lib',
];

const SONAMES = ['libnvidia-ml.so.1', 'libnvidia-ml.so'];

export interface LoadOptions {
  /** Explicit library path; when set, only this path is tried. */
  library?: string | undefined;
  /** Environment to read `LLEM_NVML_LIBRARY` from (default `process.env`). */
  env?: NodeJS.ProcessEnv | undefined;
}

/**
 * The candidate paths in order. An explicit path (option, else `LLEM_NVML_LIBRARY`) is the only
 * candidate: measuring with some other libnvidia-ml than the one asked for would be wrong
 * silently, so a bad explicit path is an error rather than a fallback.
 */
export function nvmlLibraryCandidates(options: LoadOptions = {}): string[] {
  const explicit = options.library ?? (options.env ?? process.env).LLEM_NVML_LIBRARY;
  if (explicit) return [explicit];
  return [...SONAMES, ...DEFAULT_LIBRARY_DIRS.flatMap((dir) => SONAMES.map((s) => `${dir}/${s}`))];
}

// A dlopen'ed library stays loaded for the life of the process; sharing one bindings object per
// path also means one reference count per library in the wrapper.
const loaded = new Map<string, NvmlBindings>();

/**
 * Load libnvidia-ml. Throws {@link NvmlLibraryError} listing every path tried when none loads.
 */
export function loadBindings(options: LoadOptions = {}): NvmlBindings {
  const attempts: Array<{ path: string; reason: string }> = [];
  for (const path of nvmlLibraryCandidates(options)) {
    const cached = loaded.get(path);
    if (cached) return cached;
    try {
      const lib = koffi.load(path);
      const bindings = new KoffiNvmlBindings(path, lib);
      loaded.set(path, bindings);
      return bindings;
    } catch (error) {
      attempts.push({ path, reason: firstLine(error) });
    }
  }
  throw new NvmlLibraryError(attempts);
}

function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  const line = text.split('\n')[0] ?? text;
  return line.replace(/^Failed to load shared library: /, '');
}
