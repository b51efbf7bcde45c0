import { type ClockEventReason, decodeClockEventReasons } from './clock-reasons';
import { NvmlError } from './errors';
import { getNvmlApi, type NvmlApi } from './internal/api';
import { type DeviceHandle, LAYOUT, type NvmlFn, type NvmlFunctionName } from './internal/bindings';
import type { GpuDevice } from './readings';

/** Bytes in a MiB (what nvidia-smi calls "MiB"). */
export const MIB = 1024 * 1024;

/** Convert bytes to MiB (fractional). @example bytesToMiB(1048576); // 1 */
export function bytesToMiB(bytes: number): number {
  return bytes / MIB;
}

/** Where to find libnvidia-ml. */
export interface NvmlOpenOptions {
  /** Path of libnvidia-ml to load; when set it is the only path tried. Default: search. */
  library?: string | undefined;
  /** Environment holding `LLEM_NVML_LIBRARY` (default `process.env`). */
  env?: NodeJS.ProcessEnv | undefined;
}

export interface NvmlMemoryInfo {
  totalBytes: number;
  usedBytes: number;
  freeBytes: number;
  /** Memory the driver reserves (v2 API only); null when only the v1 API is available. */
  reservedBytes: number | null;
  totalMiB: number;
  usedMiB: number;
  freeMiB: number;
  /** Which NVML struct answered: 2 (`nvmlDeviceGetMemoryInfo_v2`) or 1. */
  version: 1 | 2;
}

export interface NvmlUtilization {
  /** Percent of the last sample period a kernel was running. */
  gpuPct: number;
  /** Percent of the last sample period device memory was being read or written. */
  memoryPct: number;
}

export interface NvmlClocks {
  smMHz: number | null;
  memoryMHz: number | null;
}

export interface NvmlClockEvents {
  /** The raw bitmask (`nvmlClocksEventReason*` bits). */
  mask: number;
  reasons: readonly ClockEventReason[];
}

export interface NvmlProcess {
  pid: number;
  /** Null when NVML cannot attribute memory to the process (e.g. inside some containers). */
  usedBytes: number | null;
}

const NVML_FI_DEV_POWER_INSTANT = 186;
const NVML_TEMPERATURE_GPU = 0;
const NVML_CLOCK_SM = 1;
const NVML_CLOCK_MEM = 2;
const RETURN_NOT_SUPPORTED = 3;
const RETURN_INSUFFICIENT_SIZE = 7;
const RETURN_ARGUMENT_VERSION_MISMATCH = 25;
const NVML_VALUE_NOT_AVAILABLE = 0xffffffffffffffffn;
/** nvml.h NVML_STRUCT_VERSION(Memory, 2): the struct size with the version in the top byte. */
const NVML_MEMORY_V2_VERSION = (LAYOUT.memoryV2.size | (2 << 24)) >>> 0;

/**
 * One GPU. Every reading returns `null` when NVML cannot provide it (not supported, no
 * permission, GPU lost, …), never a made-up 0; {@link NvmlDevice.lastError} says why.
 *
 * Readings reuse preallocated buffers, so a call costs one FFI round trip and no garbage
 * beyond the returned value.
 *
 * @example
 * const gpu = nvml.device(0);
 * const watts = gpu.instantPowerW();
 * if (watts === null) console.warn(`power unreadable: ${gpu.lastError?.code}`);
 */
export class NvmlDevice implements GpuDevice {
  /** The error behind the most recent `null` reading (cleared by the next successful one). */
  lastError: NvmlError | null = null;

  // One scratch buffer per device, viewed at the widths NVML writes. 64 bytes holds the
  // largest struct read here (nvmlMemory_v2_t, nvmlFieldValue_t: 40 bytes each).
  private readonly scratch = new ArrayBuffer(64);
  private readonly u32 = new Uint32Array(this.scratch);
  private readonly i32 = new Int32Array(this.scratch);
  private readonly i64 = new BigInt64Array(this.scratch);
  private readonly f64 = new Float64Array(this.scratch);
  private readonly u16 = new Uint16Array(this.scratch);
  private readonly u32One = new Uint32Array(this.scratch, 0, 1);
  private readonly u64One = new BigUint64Array(this.scratch, 0, 1);

  private memoryVersion: 1 | 2 | 0 = 0;
  private instantSupported = true;
  private readonly fns: Record<string, NvmlFn> = {};

  /** @internal Use {@link Nvml.device}. */
  constructor(
    private readonly api: NvmlApi,
    readonly index: number,
    private readonly handle: DeviceHandle,
  ) {}

  private fn(name: NvmlFunctionName): NvmlFn {
    // biome-ignore lint/suspicious/noAssignInExpressions: a one-line lazy cache
    return this.fns[name] ?? (this.fns[name] = this.api.bindings.fn(name));
  }

  /**
   * Read an unsigned 64-bit value as two 32-bit halves: a BigUint64Array read allocates a
   * BigInt on every call, and memoryInfo() reads four of them. Exact below 2^53.
   */
  private u64At(byteOffset: number): number {
    const i = byteOffset >>> 2;
    return this.u32[i]! + this.u32[i + 1]! * 4294967296;
  }

  private fail(name: NvmlFunctionName, rc: number): null {
    this.lastError = this.api.error(name, rc);
    return null;
  }

  private ok<T>(value: T): T {
    this.lastError = null;
    return value;
  }

  private string(name: 'deviceGetName' | 'deviceGetUUID'): string | null {
    try {
      return this.ok(this.api.string(name, [this.handle]));
    } catch (error) {
      if (!(error instanceof NvmlError)) throw error;
      this.lastError = error;
      return null;
    }
  }

  /** Product name, e.g. `NVIDIA H100 80GB HBM3`. */
  name(): string | null {
    return this.string('deviceGetName');
  }

  /** Globally unique id, e.g. `GPU-6f1c2b7e-…`. */
  uuid(): string | null {
    return this.string('deviceGetUUID');
  }

  /**
   * Memory in bytes (and MiB). Uses `nvmlDeviceGetMemoryInfo_v2` where the driver has it, whose
   * `used` excludes driver-reserved memory (matching nvidia-smi), else the v1 call.
   */
  memoryInfo(): NvmlMemoryInfo | null {
    if (this.memoryVersion !== 1) {
      this.u32[0] = NVML_MEMORY_V2_VERSION;
      const rc = this.fn('deviceGetMemoryInfoV2')(this.handle, this.u32);
      if (rc === 0) {
        this.memoryVersion = 2;
        const o = LAYOUT.memoryV2.offsets;
        return this.ok(
          memory(
            this.u64At(o.total),
            this.u64At(o.used),
            this.u64At(o.free),
            this.u64At(o.reserved),
            2,
          ),
        );
      }
      // Missing symbol or an old driver that knows the name but not the struct: use v1 from now on.
      if (rc === RETURN_NOT_SUPPORTED || rc === RETURN_ARGUMENT_VERSION_MISMATCH) {
        this.memoryVersion = 1;
      } else {
        return this.fail('deviceGetMemoryInfoV2', rc);
      }
    }
    const rc = this.fn('deviceGetMemoryInfo')(this.handle, this.u32);
    if (rc !== 0) return this.fail('deviceGetMemoryInfo', rc);
    const o = LAYOUT.memoryV1.offsets;
    return this.ok(memory(this.u64At(o.total), this.u64At(o.used), this.u64At(o.free), null, 1));
  }

  /** Used memory in bytes, the cheapest memory read (for samplers and residual checks). */
  memoryUsedBytes(): number | null {
    return this.memoryInfo()?.usedBytes ?? null;
  }

  /**
   * Board power in W from `nvmlDeviceGetPowerUsage`. On Ampere and newer this is a 1-second
   * moving average; use {@link instantPowerW} for sampling.
   */
  powerUsageW(): number | null {
    const rc = this.fn('deviceGetPowerUsage')(this.handle, this.u32One);
    if (rc !== 0) return this.fail('deviceGetPowerUsage', rc);
    return this.ok(this.u32[0]! / 1000);
  }

  /**
   * Instantaneous board power in W, read through `nvmlDeviceGetFieldValues` with
   * `NVML_FI_DEV_POWER_INSTANT`. Falls back to {@link powerUsageW} where the field is not
   * supported (pre-Ampere GPUs, old drivers), and remembers that so the fallback costs one call.
   */
  instantPowerW(): number | null {
    if (this.instantSupported) {
      const u32 = this.u32;
      u32[0] = NVML_FI_DEV_POWER_INSTANT; // fieldId
      u32[1] = 0; // scopeId
      const rc = this.fn('deviceGetFieldValues')(this.handle, 1, u32);
      if (rc === 0) {
        const fieldRc = this.i32[LAYOUT.fieldValue.offsets.nvmlReturn / 4]!;
        if (fieldRc === 0) return this.ok(this.fieldValue() / 1000);
        if (fieldRc !== RETURN_NOT_SUPPORTED) return this.fail('deviceGetFieldValues', fieldRc);
      } else if (rc !== RETURN_NOT_SUPPORTED) {
        return this.fail('deviceGetFieldValues', rc);
      }
      this.instantSupported = false;
    }
    return this.powerUsageW();
  }

  /** Decode nvmlFieldValue_t.value by its valueType (nvmlValueType_t). */
  private fieldValue(): number {
    const v = LAYOUT.fieldValue.offsets.value;
    switch (this.i32[LAYOUT.fieldValue.offsets.valueType / 4]) {
      case 0:
        return this.f64[v / 8]!;
      case 1:
        return this.u32[v / 4]!;
      case 2:
      case 3:
        return this.u64At(v);
      case 4:
        return Number(this.i64[v / 8]);
      case 5:
        return this.i32[v / 4]!;
      case 6:
        return this.u16[v / 2]!;
      default:
        return this.u32[v / 4]!;
    }
  }

  /**
   * Energy consumed since the driver was loaded, in millijoules (Volta and newer). Returned as a
   * `number`: exact up to 2^53 mJ (about 285 years at 1 kW), so no bigint is needed.
   */
  totalEnergyMj(): number | null {
    const rc = this.fn('deviceGetTotalEnergyConsumption')(this.handle, this.u64One);
    if (rc !== 0) return this.fail('deviceGetTotalEnergyConsumption', rc);
    return this.ok(this.u64At(0));
  }

  /** GPU core temperature in °C. */
  temperatureC(): number | null {
    const rc = this.fn('deviceGetTemperature')(this.handle, NVML_TEMPERATURE_GPU, this.u32One);
    if (rc !== 0) return this.fail('deviceGetTemperature', rc);
    return this.ok(this.u32[0]!);
  }

  /** GPU and memory utilisation in percent over the driver's last sample period. */
  utilization(): NvmlUtilization | null {
    const rc = this.fn('deviceGetUtilizationRates')(this.handle, this.u32);
    if (rc !== 0) return this.fail('deviceGetUtilizationRates', rc);
    const o = LAYOUT.utilization.offsets;
    return this.ok({ gpuPct: this.u32[o.gpu / 4]!, memoryPct: this.u32[o.memory / 4]! });
  }

  /** Whether persistence mode is on (true), off (false), or unknown (null; e.g. Windows). */
  persistenceMode(): boolean | null {
    const rc = this.fn('deviceGetPersistenceMode')(this.handle, this.u32One);
    if (rc !== 0) return this.fail('deviceGetPersistenceMode', rc);
    return this.ok(this.u32[0] === 1);
  }

  /** The power limit the driver enforces now, in W. */
  enforcedPowerLimitW(): number | null {
    const rc = this.fn('deviceGetEnforcedPowerLimit')(this.handle, this.u32One);
    if (rc !== 0) return this.fail('deviceGetEnforcedPowerLimit', rc);
    return this.ok(this.u32[0]! / 1000);
  }

  private clock(type: number): number | null {
    const rc = this.fn('deviceGetClockInfo')(this.handle, type, this.u32One);
    if (rc !== 0) return this.fail('deviceGetClockInfo', rc);
    return this.ok(this.u32[0]!);
  }

  /** Current SM clock in MHz. */
  smClockMHz(): number | null {
    return this.clock(NVML_CLOCK_SM);
  }

  /** Current SM and memory clocks in MHz (each null when unreadable). */
  clocks(): NvmlClocks {
    return { smMHz: this.clock(NVML_CLOCK_SM), memoryMHz: this.clock(NVML_CLOCK_MEM) };
  }

  /** The raw clock-event (throttle) reason bitmask. */
  clockEventReasonsMask(): number | null {
    const rc = this.fn('deviceGetClockEventReasons')(this.handle, this.u64One);
    if (rc !== 0) return this.fail('deviceGetClockEventReasons', rc);
    return this.ok(this.u64At(0));
  }

  /**
   * Why the clocks are below maximum right now, decoded. Uses
   * `nvmlDeviceGetCurrentClocksEventReasons`, or the older `…ThrottleReasons` name.
   */
  clockEventReasons(): NvmlClockEvents | null {
    const mask = this.clockEventReasonsMask();
    return mask === null ? null : { mask, reasons: decodeClockEventReasons(mask) };
  }

  /**
   * Processes with a compute context on this GPU and the memory each uses. Uses
   * `nvmlDeviceGetComputeRunningProcesses_v3`/`_v2` (24-byte records), else the unversioned call
   * (16-byte records).
   */
  computeProcesses(): NvmlProcess[] | null {
    const v2 = this.api.bindings.symbol('deviceGetComputeRunningProcessesV2') !== null;
    const name = v2 ? 'deviceGetComputeRunningProcessesV2' : 'deviceGetComputeRunningProcesses';
    const layout = v2 ? LAYOUT.processInfoV2 : LAYOUT.processInfoV1;
    const count = new Uint32Array(1);
    let capacity = 16;
    // The process list can grow between the sizing call and the read; retry a few times.
    for (let attempt = 0; attempt < 4; attempt++) {
      const buf = new ArrayBuffer(layout.size * capacity);
      count[0] = capacity;
      const rc = this.fn(name)(this.handle, count, new Uint8Array(buf));
      if (rc === RETURN_INSUFFICIENT_SIZE) {
        capacity = Math.max(count[0]! + 4, capacity * 2);
        continue;
      }
      if (rc !== 0) return this.fail(name, rc);
      const view = new DataView(buf);
      const out: NvmlProcess[] = [];
      for (let i = 0; i < count[0]!; i++) {
        const base = i * layout.size;
        const used = view.getBigUint64(base + layout.offsets.usedGpuMemory, true);
        out.push({
          pid: view.getUint32(base + layout.offsets.pid, true),
          usedBytes: used === NVML_VALUE_NOT_AVAILABLE ? null : Number(used),
        });
      }
      return this.ok(out);
    }
    return this.fail(name, RETURN_INSUFFICIENT_SIZE);
  }
}

function memory(
  totalBytes: number,
  usedBytes: number,
  freeBytes: number,
  reservedBytes: number | null,
  version: 1 | 2,
): NvmlMemoryInfo {
  return {
    totalBytes,
    usedBytes,
    freeBytes,
    reservedBytes,
    totalMiB: totalBytes / MIB,
    usedMiB: usedBytes / MIB,
    freeMiB: freeBytes / MIB,
    version,
  };
}

/**
 * An open NVML session. `Nvml.open()` loads libnvidia-ml and takes one reference on NVML's
 * initialisation; `close()` gives it back (the last reference calls `nvmlShutdown`). Sessions
 * nest safely.
 *
 * @example
 * const nvml = Nvml.open();
 * try {
 *   const gpu = nvml.device(0);
 *   console.log(gpu.name(), gpu.instantPowerW(), gpu.memoryInfo()?.usedMiB);
 * } finally {
 *   nvml.close();
 * }
 */
export class Nvml {
  private closed = false;
  private readonly deviceCache = new Map<number, NvmlDevice>();

  private constructor(private readonly api: NvmlApi) {}

  /**
   * Load libnvidia-ml and initialise NVML.
   * @throws {NvmlLibraryError} when no library loads (lists every path tried)
   * @throws {NvmlError} when `nvmlInit` fails (e.g. `DRIVER_NOT_LOADED`)
   */
  static open(options: NvmlOpenOptions = {}): Nvml {
    const api = getNvmlApi(options);
    api.init();
    return new Nvml(api);
  }

  /** The library path (or soname) that was loaded. */
  get libraryPath(): string {
    return this.api.bindings.path;
  }

  /** How many llem sessions currently hold NVML initialised in this process (this library). */
  get referenceCount(): number {
    return this.api.referenceCount;
  }

  /** True once {@link close} ran. */
  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Release this session's reference; the last one calls `nvmlShutdown`. Idempotent.
   * @throws {NvmlError} when `nvmlShutdown` fails
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.deviceCache.clear();
    this.api.shutdown();
  }

  private assertOpen(): void {
    if (this.closed) {
      throw new NvmlError('nvml', 1, 'this Nvml session is closed');
    }
  }

  /** Number of GPUs NVML sees. @throws {NvmlError} */
  deviceCount(): number {
    this.assertOpen();
    return this.api.deviceCount();
  }

  /** The GPU at `index` (NVML enumeration order). @throws {NvmlError} e.g. INVALID_ARGUMENT */
  device(index: number): NvmlDevice {
    this.assertOpen();
    let device = this.deviceCache.get(index);
    if (!device) {
      device = new NvmlDevice(this.api, index, this.api.handleByIndex(index));
      this.deviceCache.set(index, device);
    }
    return device;
  }

  /** Every GPU. @throws {NvmlError} */
  devices(): NvmlDevice[] {
    const count = this.deviceCount();
    return Array.from({ length: count }, (_, i) => this.device(i));
  }

  private optionalString(name: 'systemGetDriverVersion' | 'systemGetNVMLVersion'): string | null {
    this.assertOpen();
    try {
      return this.api.string(name, [], 80);
    } catch (error) {
      if (error instanceof NvmlError) return null;
      throw error;
    }
  }

  /** Kernel driver version, e.g. `550.54.15`; null when unreadable. */
  driverVersion(): string | null {
    return this.optionalString('systemGetDriverVersion');
  }

  /** NVML library version, e.g. `12.550.54.15`; null when unreadable. */
  nvmlVersion(): string | null {
    return this.optionalString('systemGetNVMLVersion');
  }

  /** The CUDA version the driver supports as NVML encodes it (12040 for 12.4); null when unreadable. */
  cudaDriverVersionNumber(): number | null {
    this.assertOpen();
    const out = new Int32Array(1);
    const rc = this.api.bindings.fn('systemGetCudaDriverVersion')(out);
    return rc === 0 ? out[0]! : null;
  }

  /** The CUDA version the driver supports, formatted like nvidia-smi: `"12.4"`. */
  cudaDriverVersion(): string | null {
    const v = this.cudaDriverVersionNumber();
    return v === null ? null : formatCudaVersion(v);
  }
}

/**
 * Format NVML's integer CUDA version (1000 × major + 10 × minor).
 * @example formatCudaVersion(12040); // '12.4'
 */
export function formatCudaVersion(version: number): string {
  return `${Math.floor(version / 1000)}.${Math.floor((version % 1000) / 10)}`;
}
