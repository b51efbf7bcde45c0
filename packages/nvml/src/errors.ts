import { LlemError } from '@llem/resilience';
/**
 * NVML return codes (nvml.h `nvmlReturn_t`) by number, named without the `NVML_ERROR_` prefix.
 * 999 is `NVML_ERROR_UNKNOWN`; any number not listed here also maps to `'UNKNOWN'`.
 */
export const NVML_RETURN_CODES = {
  1: 'UNINITIALIZED',
  2: 'INVALID_ARGUMENT',
  3: 'NOT_SUPPORTED',
  4: 'NO_PERMISSION',
  5: 'ALREADY_INITIALIZED',
  6: 'NOT_FOUND',
  7: 'INSUFFICIENT_SIZE',
  8: 'INSUFFICIENT_POWER',
  9: 'DRIVER_NOT_LOADED',
  10: 'TIMEOUT',
  11: 'IRQ_ISSUE',
  12: 'LIBRARY_NOT_FOUND',
  13: 'FUNCTION_NOT_FOUND',
  14: 'CORRUPTED_INFOROM',
  15: 'GPU_IS_LOST',
  16: 'RESET_REQUIRED',
  17: 'OPERATING_SYSTEM',
  18: 'LIB_RM_VERSION_MISMATCH',
  19: 'IN_USE',
  20: 'MEMORY',
  21: 'NO_DATA',
  22: 'VGPU_ECC_NOT_SUPPORTED',
  23: 'INSUFFICIENT_RESOURCES',
  24: 'FREQ_NOT_SUPPORTED',
  25: 'ARGUMENT_VERSION_MISMATCH',
  26: 'DEPRECATED',
  27: 'NOT_READY',
  28: 'GPU_NOT_FOUND',
  29: 'INVALID_STATE',
  999: 'UNKNOWN',
} as const;

/** The typed `code` of an {@link NvmlError}. */
export type NvmlErrorCode = (typeof NVML_RETURN_CODES)[keyof typeof NVML_RETURN_CODES];

/** Map a numeric NVML return code to its name; unknown numbers become `'UNKNOWN'`. */
export function nvmlErrorCode(returnCode: number): NvmlErrorCode {
  return (NVML_RETURN_CODES as Record<number, NvmlErrorCode>)[returnCode] ?? 'UNKNOWN';
}

/**
 * An NVML call returned something other than `NVML_SUCCESS`. `code` is the typed name,
 * `returnCode` the number the driver returned, `functionName` the NVML symbol that failed, and the
 * message carries the driver's own text from `nvmlErrorString`.
 */
export class NvmlError extends LlemError<NvmlErrorCode> {
  override readonly name = 'NvmlError';
  readonly code: NvmlErrorCode;
  readonly source = 'nvml' as const;
  readonly returnCode: number;
  readonly functionName: string;

  constructor(
    functionName: string,
    returnCode: number,
    description: string,
    options?: ErrorOptions,
  ) {
    const code = nvmlErrorCode(returnCode);
    super(
      `${functionName} failed: ${description} (NVML_ERROR_${code}, return code ${returnCode})`,
      options,
    );
    this.code = code;
    this.returnCode = returnCode;
    this.functionName = functionName;
  }
}

/** One path the loader tried, and why it did not load. */
export interface NvmlLibraryAttempt {
  path: string;
  reason: string;
}

/** The dynamic loader's answer for a library that is simply not there. */
const NOT_THERE = /cannot open shared object file|no such file/i;

/**
 * `libnvidia-ml` could not be loaded from any candidate path. `summary` says so in one short
 * line; `attempts` (and the message) list every path tried and why, for `-v` output and logs.
 */
export class NvmlLibraryError extends LlemError<'NVML_LIBRARY_NOT_FOUND'> {
  override readonly name = 'NvmlLibraryError';
  readonly code = 'NVML_LIBRARY_NOT_FOUND' as const;
  readonly source = 'nvml' as const;
  readonly attempts: readonly NvmlLibraryAttempt[];
  readonly triedPaths: readonly string[];
  /**
   * One line for people, without the list of paths: e.g. `no NVIDIA driver found
   * (libnvidia-ml.so.1 is in none of the 18 usual places)`, or for one explicit path
   * `libnvidia-ml could not be loaded from /x/libnvidia-ml.so.1 (invalid ELF header)`.
   */
  readonly summary: string;

  constructor(attempts: readonly NvmlLibraryAttempt[], options?: ErrorOptions) {
    const list = attempts.map((a) => `\n  - ${a.path}: ${a.reason}`).join('');
    super(
      `the NVIDIA Management Library (libnvidia-ml) could not be loaded. Tried:${list}\n` +
        'Install the NVIDIA driver, or set LLEM_NVML_LIBRARY to the path of libnvidia-ml.so.1.',
      options,
    );
    this.attempts = attempts;
    this.triedPaths = attempts.map((a) => a.path);
    this.summary = summarise(attempts);
  }
}

function summarise(attempts: readonly NvmlLibraryAttempt[]): string {
  const [only] = attempts;
  if (attempts.length === 1 && only) {
    return `libnvidia-ml could not be loaded from ${only.path} (${only.reason})`;
  }
  // A library that exists but does not load (wrong architecture, broken install) is the news.
  const broken = attempts.find((a) => !NOT_THERE.test(a.reason));
  if (broken) {
    return `libnvidia-ml could not be loaded: ${broken.path}: ${broken.reason} (tried ${attempts.length} paths)`;
  }
  return `no NVIDIA driver found (libnvidia-ml.so.1 is in none of the ${attempts.length} usual places)`;
}
