import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import {
  BUILTIN_MODELS,
  isBuiltinModel,
  type LlamaCppConfig,
  type LlamaCppExperimentConfig,
} from '@llem/domain';
import { type Logger, RetryableError, retry, safeCleanup } from '@llem/resilience';
import type {
  Llama,
  LlamaContext,
  LlamaContextSequence,
  LlamaLogLevel,
  LlamaModel,
  LlamaOptions,
  Token,
} from 'node-llama-cpp';
import type {
  Engine,
  EngineContext,
  EngineInfo,
  EngineRequest,
  RequestRecord,
  TokenizerProbe,
  WorkloadOutcome,
} from '../engine';
import { inTurnOrder, sendTimes } from '../internal/workload-order';
import { BUILTIN_MODEL_SPECS, ensureTinyModel } from '../tiny/index';
import { LlamaCppEngineError } from './errors';
import {
  contextOptions,
  evaluateOptions,
  modelOptions,
  type ResolvedDecoder,
  resolveDecoder,
} from './internal/options';
import { readGgufMetadata } from './metadata';

/** Options beyond the experiment config; every field has a sensible default. */
export interface LlamaCppEngineOptions {
  /** Folder for generated builtin models. Default: see `defaultModelCacheDir`. */
  cacheDir?: string;
  /** Environment for cache-folder variables. Default: `process.env`. */
  env?: NodeJS.ProcessEnv;
  /**
   * Compute backend for node-llama-cpp. Default: `false` (CPU only) when `gpu_layers` is 0,
   * else `'auto'` (CUDA or Vulkan when a prebuilt binary for it loads, else CPU).
   */
  gpu?: 'auto' | false | 'cuda' | 'vulkan' | 'metal';
  /** Retries of a failed model load (the first attempt not counted). Default: 2. */
  loadRetries?: number;
  /** Delay before the first load retry, doubled each time. Default: 1000 ms. */
  loadRetryDelayMs?: number;
  /**
   * Called with each finished request's generated token ids and text, after its timing is
   * recorded (so it costs nothing measured). For checking outputs; unset by default.
   */
  onOutput?: (output: { id: number; tokens: number[]; text: string }) => void;
  /**
   * Replaces node-llama-cpp's `getLlama` (called with the options llem chooses: prebuilt binaries
   * only, never a build). For tests of the error paths, or to share one Llama instance.
   */
  getLlama?: (options: LlamaOptions) => Promise<Llama>;
}

/** How many recent tokens the repeat penalty looks at (llama.cpp's `penalty_last_n` default). */
const REPEAT_PENALTY_WINDOW = 64;

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * node-llama-cpp takes more than half a second to import, so it is imported when a model is
 * loaded rather than when `@llem/engines` is: other engines and the tiny-model generator never pay.
 */
const loadNodeLlamaCpp = () => import('node-llama-cpp');

function llamaLogForwarder(logger: Logger) {
  return (level: LlamaLogLevel, message: string) => {
    const text = `llama.cpp: ${message.trimEnd()}`;
    if (level === 'error' || level === 'fatal') logger.error(text);
    else if (level === 'warn') logger.warn(text);
    else logger.debug(text);
  };
}

/** The node-llama-cpp version, read from its package.json; `null` if it cannot be found. */
async function nodeLlamaCppVersion(): Promise<string | null> {
  try {
    const { getModuleVersion } = await loadNodeLlamaCpp();
    return await getModuleVersion();
  } catch {
    return null;
  }
}

class LlamaCppEngine implements Engine {
  readonly name = 'llamacpp' as const;
  readonly windowMarking = 'harness' as const;

  /** The config's `llamacpp` section, validated by @llem/domain. */
  private readonly settings: LlamaCppConfig;
  private readonly decoder: ResolvedDecoder;
  private readonly logger: Logger;
  private llama: Llama | undefined;
  private model: LlamaModel | undefined;
  private context: LlamaContext | undefined;
  private sequences: LlamaContextSequence[] = [];
  private info: EngineInfo | undefined;
  private loading: Promise<EngineInfo> | undefined;
  private disposed = false;

  constructor(
    private readonly config: LlamaCppExperimentConfig,
    private readonly ctx: EngineContext,
    private readonly options: LlamaCppEngineOptions,
  ) {
    this.settings = config.llamacpp;
    this.decoder = resolveDecoder(config.decoder, this.settings.seed);
    this.logger = ctx.logger;
  }

  load(): Promise<EngineInfo> {
    if (this.disposed) {
      return Promise.reject(
        new LlamaCppEngineError('NOT_LOADED', 'the llamacpp engine was disposed; create a new one'),
      );
    }
    this.loading ??= this.doLoad();
    return this.loading;
  }

  private async resolveModelPath(): Promise<string> {
    const model = this.config.model;
    if (isBuiltinModel(model)) {
      return ensureTinyModel({
        spec: BUILTIN_MODEL_SPECS[model],
        logger: this.logger,
        ...(this.options.cacheDir === undefined ? {} : { cacheDir: this.options.cacheDir }),
        ...(this.options.env === undefined ? {} : { env: this.options.env }),
      });
    }
    if (model.startsWith('builtin:')) {
      throw new LlamaCppEngineError(
        'MODEL_NOT_FOUND',
        `model: unknown builtin model ${JSON.stringify(model)}; allowed: ${BUILTIN_MODELS.join(', ')}`,
      );
    }
    let isFile = false;
    try {
      isFile = (await stat(model)).isFile();
    } catch {
      isFile = false;
    }
    if (!isFile) {
      throw new LlamaCppEngineError(
        'MODEL_NOT_FOUND',
        `model file not found: ${model} (config field "model"). Give the path of a .gguf file ` +
          '(relative paths are resolved from the working directory: the folder of the study file under llem run), or use builtin:tiny for the ' +
          'generated test model; llem never downloads models.',
      );
    }
    // Absolute, so `details.modelPath` names the file that was loaded whatever the reader's cwd.
    return resolve(model);
  }

  private async getLlamaInstance(): Promise<Llama> {
    const gpu = this.options.gpu ?? (this.settings.gpu_layers === 0 ? false : 'auto');
    const nlc = await loadNodeLlamaCpp();
    const { LlamaLogLevel, NoBinaryFoundError } = nlc;
    const getLlama = this.options.getLlama ?? nlc.getLlama;
    try {
      return await getLlama({
        gpu,
        // Never compile llama.cpp or fetch its sources: use the prebuilt binaries from npm only.
        build: 'never',
        usePrebuiltBinaries: true,
        skipDownload: true,
        progressLogs: false,
        // Without a cap, `threads` on the context is the exact thread count (see node-llama-cpp docs).
        maxThreads: 0,
        logLevel: LlamaLogLevel.warn,
        logger: llamaLogForwarder(this.logger),
      });
    } catch (cause) {
      if (
        cause instanceof NoBinaryFoundError ||
        (cause as Error | undefined)?.name === 'NoBinaryFoundError'
      ) {
        throw new LlamaCppEngineError(
          'ENGINE_BINARY_MISSING',
          `no usable prebuilt llama.cpp binary for ${process.platform}-${process.arch}` +
            (gpu === false ? '' : ` (gpu: ${String(gpu)})`) +
            '. llem never builds llama.cpp from source: reinstall dependencies so the matching ' +
            '@node-llama-cpp/<platform> package is present (pnpm install), or set llamacpp.gpu_layers: 0 to use the CPU binary.',
          { cause },
        );
      }
      throw new LlamaCppEngineError(
        'ENGINE_BINARY_MISSING',
        `cannot start llama.cpp: ${errorText(cause)}`,
        { cause },
      );
    }
  }

  private async doLoad(): Promise<EngineInfo> {
    const { signal } = this.ctx;
    const modelPath = await this.resolveModelPath();
    const meta = await readGgufMetadata(modelPath);
    signal.throwIfAborted();
    const llama = await this.getLlamaInstance();
    this.llama = llama;
    if (this.disposed)
      throw new LlamaCppEngineError('NOT_LOADED', 'the llamacpp engine was disposed while loading');

    const gpuLayers = this.settings.gpu_layers;
    const wantsGpu = gpuLayers === 'max' || (typeof gpuLayers === 'number' && gpuLayers > 0);
    if (wantsGpu && !llama.supportsGpuOffloading) {
      this.logger.warn(
        `llamacpp.gpu_layers is ${gpuLayers} but no GPU backend is available; all layers run on the CPU`,
      );
    }

    const model = await retry(
      async () => {
        try {
          return await llama.loadModel({
            ...modelOptions(modelPath, this.settings),
            loadSignal: signal,
          });
        } catch (cause) {
          // Memory still held by a previous experiment is released shortly after, so a load that
          // failed for lack of memory (or any other runtime reason) is worth another try.
          throw new RetryableError(`loading ${modelPath} failed: ${errorText(cause)}`, { cause });
        }
      },
      {
        retries: this.options.loadRetries ?? 2,
        delayMs: this.options.loadRetryDelayMs ?? 1000,
        factor: 2,
        logger: this.logger,
        signal,
        name: 'llamacpp model load',
      },
    ).catch((error: unknown) => {
      if (signal.aborted) throw error;
      const cause =
        error instanceof RetryableError && error.cause !== undefined ? error.cause : error;
      throw new LlamaCppEngineError(
        'MODEL_LOAD_FAILED',
        `llama.cpp could not load ${modelPath}: ${errorText(cause)}. Check that the file is a complete ` +
          'GGUF model for an architecture this node-llama-cpp version supports, and that there is enough memory ' +
          '(lower llamacpp.gpu_layers to keep layers on the CPU).',
        { cause },
      );
    });
    this.model = model;
    if (this.disposed)
      throw new LlamaCppEngineError('NOT_LOADED', 'the llamacpp engine was disposed while loading');

    const threads = this.settings.threads === 'auto' ? llama.cpuMathCores : this.settings.threads;
    let context: LlamaContext;
    try {
      context = await model.createContext({
        ...contextOptions(this.settings, threads),
        createSignal: signal,
      });
    } catch (cause) {
      if (signal.aborted) throw cause;
      throw new LlamaCppEngineError(
        'CONTEXT_CREATE_FAILED',
        `llama.cpp could not create a context (context_size ${String(this.settings.context_size)}, ` +
          `parallel ${this.settings.parallel}): ${errorText(cause)}. Lower llamacpp.context_size or llamacpp.parallel.`,
        { cause },
      );
    }
    this.context = context;
    this.sequences = Array.from({ length: this.settings.parallel }, () => context.getSequence());

    const engineVersion = await nodeLlamaCppVersion();
    const backend = llama.gpu === false || model.gpuLayers === 0 ? 'cpu' : llama.gpu;
    const builtin = isBuiltinModel(this.config.model)
      ? BUILTIN_MODEL_SPECS[this.config.model]
      : undefined;
    this.info = {
      engine: 'llamacpp',
      engineVersion:
        engineVersion === null
          ? null
          : `node-llama-cpp ${engineVersion} (llama.cpp ${llama.llamaCppRelease.release})`,
      parameterCount: meta.parameterCount,
      model: this.config.model,
      backend,
      details: {
        modelPath,
        architecture: meta.architecture,
        trainedContextLength: meta.contextLength,
        modelFileBytes: meta.fileBytes,
        ...(builtin ? { builtinSpec: builtin } : {}),
        gpuType: llama.gpu === false ? null : llama.gpu,
        gpuLayers: model.gpuLayers,
        totalLayers: meta.blockCount,
        contextSize: context.contextSize,
        batchSize: context.batchSize,
        ubatchSize: context.batchSize,
        parallel: this.settings.parallel,
        threads,
        flashAttention: context.flashAttention,
        kvCacheTypeK: this.settings.kv_cache_type_k,
        kvCacheTypeV: this.settings.kv_cache_type_v,
        useMmap: model.useMmap,
        useMlock: this.settings.use_mlock,
        decoder: { ...this.decoder },
      },
    };
    this.logger.info(
      `llamacpp: loaded ${this.config.model} (${meta.parameterCount ?? '?'} parameters) on ${backend}, ` +
        `context ${context.contextSize} × ${this.settings.parallel}, ${threads} threads`,
    );
    return this.info;
  }

  private requireLoaded(): { model: LlamaModel; sequences: LlamaContextSequence[] } {
    if (this.disposed || !this.model || this.sequences.length === 0) {
      throw new LlamaCppEngineError(
        'NOT_LOADED',
        'the llamacpp engine is not loaded; call load() first',
      );
    }
    return { model: this.model, sequences: this.sequences };
  }

  private tokenize(model: LlamaModel, prompt: string): Token[] {
    const tokens = model.tokenize(prompt);
    const bos = model.tokens.bos;
    // llama.cpp models expect BOS first when their metadata says so; it counts as an input token.
    return model.tokens.shouldPrependBosToken && bos !== null ? [bos, ...tokens] : tokens;
  }

  private async runOne(
    model: LlamaModel,
    sequence: LlamaContextSequence,
    request: EngineRequest,
  ): Promise<RequestRecord> {
    const { signal } = this.ctx;
    const startedAt = performance.now();
    const tokenTimes: number[] = [];
    let firstTokenAt: number | null = null;
    let inputTokens: number | null = null;
    let outputTokens = 0;
    try {
      await sequence.clearHistory();
      const input = this.tokenize(model, request.prompt);
      inputTokens = input.length;
      if (input.length + request.maxOutputTokens > sequence.contextSize) {
        throw new LlamaCppEngineError(
          'CONTEXT_OVERFLOW',
          `request ${request.id}: ${input.length} prompt tokens + ${request.maxOutputTokens} output tokens exceed ` +
            `the context size ${sequence.contextSize}; raise llamacpp.context_size or shorten the workload`,
        );
      }
      const history: Token[] = [...input];
      const options = evaluateOptions(this.decoder, request.id, () =>
        history.slice(-REPEAT_PENALTY_WINDOW),
      );
      if (request.maxOutputTokens > 0) {
        for await (const token of sequence.evaluate(input, options)) {
          const now = performance.now();
          if (firstTokenAt === null) firstTokenAt = now;
          else tokenTimes.push(now);
          outputTokens++;
          history.push(token);
          // Stop at the limit before asking for another token, so no extra decode step runs.
          if (outputTokens >= request.maxOutputTokens || signal.aborted) break;
        }
      }
      const endedAt = performance.now();
      signal.throwIfAborted();
      if (this.options.onOutput) {
        const tokens = history.slice(input.length);
        this.options.onOutput({ id: request.id, tokens, text: model.detokenize(tokens) });
      }
      return {
        id: request.id,
        startedAt,
        firstTokenAt,
        tokenTimes,
        endedAt,
        inputTokens,
        outputTokens,
      };
    } catch (error) {
      if (signal.aborted || this.disposed) throw error;
      return {
        id: request.id,
        startedAt,
        firstTokenAt,
        tokenTimes,
        endedAt: performance.now(),
        inputTokens,
        outputTokens,
        error: {
          type:
            error instanceof LlamaCppEngineError
              ? error.code
              : error instanceof Error
                ? error.name
                : 'Error',
          message: errorText(error),
        },
      };
    }
  }

  /**
   * Runs requests on the context's sequences, each sequence taking the next request when free. A
   * trace's request waits for its send time (`sendAtMs`) before it starts; a later turn of a
   * conversation waits for the previous turn (`after`).
   */
  private async runAll(requests: EngineRequest[]): Promise<RequestRecord[]> {
    const { model, sequences } = this.requireLoaded();
    const { signal } = this.ctx;
    signal.throwIfAborted();
    const schedule = sendTimes(requests);
    const run = inTurnOrder(
      requests,
      (index: number, sequence: LlamaContextSequence) =>
        this.runOne(model, sequence, requests[index] as EngineRequest),
      signal,
    );
    const records: RequestRecord[] = new Array(requests.length);
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      sequences.map(async (sequence) => {
        while (next < requests.length) {
          const index = next++;
          if (schedule !== null) await sleepUntil(t0 + (schedule[index] as number), signal);
          records[index] = await run(index, sequence);
        }
      }),
    );
    return records;
  }

  /** The model's own tokenizer (without BOS), for prompts of exact lengths. */
  async tokenizer(): Promise<TokenizerProbe> {
    const { model } = this.requireLoaded();
    return {
      source: `llama.cpp tokenizer (${this.config.model})`,
      tokenize: async (text) => Array.from(model.tokenize(text), Number),
    };
  }

  warmup(requests: EngineRequest[]): Promise<RequestRecord[]> {
    return this.runAll(requests);
  }

  async run(requests: EngineRequest[]): Promise<WorkloadOutcome> {
    const records = await this.runAll(requests);
    let inputTokens = 0;
    let outputTokens = 0;
    for (const r of records) {
      inputTokens += r.inputTokens ?? 0;
      outputTokens += r.outputTokens ?? 0;
    }
    return {
      requests: records,
      inputTokens,
      outputTokens,
      tokenCountSource: 'engine',
      extra: { parallel: this.sequences.length },
    };
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    // Wait for an in-flight load so nothing it creates afterwards leaks.
    await this.loading?.catch(() => undefined);
    const steps: Array<[string, (() => Promise<void>) | undefined]> = [
      ['llamacpp context', this.context && (() => this.context?.dispose() ?? Promise.resolve())],
      ['llamacpp model', this.model && (() => this.model?.dispose() ?? Promise.resolve())],
      ['llamacpp runtime', this.llama && (() => this.llama?.dispose() ?? Promise.resolve())],
    ];
    for (const [name, step] of steps) {
      if (step) await safeCleanup(step, { logger: this.logger, name });
    }
    this.sequences = [];
    this.context = undefined;
    this.model = undefined;
    this.llama = undefined;
  }
}

/** Resolves at monotonic time `at` (or at once if it has passed); rejects when `signal` aborts. */
function sleepUntil(at: number, signal: AbortSignal): Promise<void> {
  const wait = at - performance.now();
  if (wait <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(done, wait);
    function done(): void {
      signal.removeEventListener('abort', abort);
      resolve();
    }
    function abort(): void {
      clearTimeout(timer);
      reject(signal.reason);
    }
    signal.addEventListener('abort', abort, { once: true });
  });
}

/**
 * Creates the llamacpp engine: node-llama-cpp's prebuilt llama.cpp, a `.gguf` model or
 * `builtin:tiny`, and the config's `llamacpp` and `decoder` sections. The config is
 * `@llem/domain`'s validated `ExperimentConfig` for `engine: llamacpp` (from
 * `parseExperimentConfig` or a study plan): the domain's schema has already rejected a bad value,
 * naming the field and the allowed values. Nothing is loaded until `load()`.
 *
 * @example
 * const config = parseExperimentConfig({
 *   model: 'builtin:tiny',
 *   engine: 'llamacpp',
 *   llamacpp: { threads: 2 },
 * });
 * const engine = createLlamaCppEngine(config, {
 *   logger: noopLogger,
 *   signal: new AbortController().signal,
 * });
 * await engine.load();
 * const outcome = await engine.run([{ id: 0, prompt: 'Hello', maxOutputTokens: 16 }]);
 * await engine.dispose();
 */
export function createLlamaCppEngine(
  config: LlamaCppExperimentConfig,
  ctx: EngineContext,
  options: LlamaCppEngineOptions = {},
): Engine {
  return new LlamaCppEngine(config, ctx, options);
}
