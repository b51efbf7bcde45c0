import { NvmlError } from '../errors';
import {
  type DeviceHandle,
  type LoadOptions,
  loadBindings,
  type NvmlBindings,
  type NvmlFunctionName,
  symbolsOf,
} from './bindings';

/**
 * The typed wrapper: NVML return codes become {@link NvmlError}s, and `init`/`shutdown` are
 * reference-counted so that nested users (a sampler inside a study runner inside a CLI command)
 * share one NVML initialisation, and the last one out shuts it down.
 */
export class NvmlApi {
  private refs = 0;

  constructor(readonly bindings: NvmlBindings) {}

  /** Number of open references (0: NVML is not initialised by llem). */
  get referenceCount(): number {
    return this.refs;
  }

  init(): void {
    if (this.refs === 0) this.check('init', this.bindings.fn('init')());
    this.refs++;
  }

  /** Drop one reference; the last one calls `nvmlShutdown`. Extra calls are ignored. */
  shutdown(): void {
    if (this.refs === 0) return;
    this.refs--;
    if (this.refs === 0) this.check('shutdown', this.bindings.fn('shutdown')());
  }

  /** Throw an NvmlError for a non-zero return code of `name`. */
  check(name: NvmlFunctionName, returnCode: number): void {
    if (returnCode !== 0) throw this.error(name, returnCode);
  }

  error(name: NvmlFunctionName, returnCode: number): NvmlError {
    const symbol = this.bindings.symbol(name) ?? symbolsOf(name)[0] ?? name;
    let description = 'Unknown Error';
    try {
      description = this.bindings.errorString(returnCode) ?? description;
    } catch {
      // nvmlErrorString itself failing must not hide the original error.
    }
    if (this.bindings.symbol(name) === null) {
      description = `${description}; this driver does not export ${symbolsOf(name).join(' or ')}`;
    }
    return new NvmlError(symbol, returnCode, description);
  }

  deviceCount(): number {
    const out = new Uint32Array(1);
    this.check('deviceGetCount', this.bindings.fn('deviceGetCount')(out));
    return out[0] ?? 0;
  }

  handleByIndex(index: number): DeviceHandle {
    const out: unknown[] = [null];
    this.check('deviceGetHandleByIndex', this.bindings.fn('deviceGetHandleByIndex')(index, out));
    return out[0] as DeviceHandle;
  }

  /** Call a `char *buf, unsigned int length` function and decode the NUL-terminated result. */
  string(name: NvmlFunctionName, prefix: unknown[], size = 96): string {
    const buf = Buffer.alloc(size);
    this.check(name, this.bindings.fn(name)(...prefix, buf, size));
    const end = buf.indexOf(0);
    return buf.toString('utf8', 0, end === -1 ? size : end);
  }
}

const apis = new Map<NvmlBindings, NvmlApi>();

/** The shared wrapper for the library these options resolve to (one per loaded library). */
export function getNvmlApi(options: LoadOptions = {}): NvmlApi {
  const bindings = loadBindings(options);
  let api = apis.get(bindings);
  if (!api) {
    api = new NvmlApi(bindings);
    apis.set(bindings, api);
  }
  return api;
}
