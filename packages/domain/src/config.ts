import { z } from 'zod';

/**
 * The experiment config: one measurement's complete description. Keys are the YAML's snake_case.
 * Parsing applies every default, so a parsed config is explicit and parsing it again gives the
 * same object (the worker and the hash rely on that).
 */

export const ENGINE_NAMES = ['llamacpp', 'openai', 'command'] as const;
export type EngineName = (typeof ENGINE_NAMES)[number];

/** llama.cpp's KV-cache tensor types (`--cache-type-k/-v`), by their ggml names. */
export const KV_CACHE_TYPES = [
  'f32',
  'f16',
  'bf16',
  'q8_0',
  'q4_0',
  'q4_1',
  'iq4_nl',
  'q5_0',
  'q5_1',
] as const;
export type KvCacheType = (typeof KV_CACHE_TYPES)[number];

export const BUILTIN_TINY_MODEL = 'builtin:tiny';

const positiveInt = z.int().positive();
const nonNegativeInt = z.int().nonnegative();

// ---------------------------------------------------------------------------------------------
// dataset

export const SyntheticDatasetSchema = z
  .strictObject({
    n: positiveInt.default(32).describe('Number of prompts'),
    input_len: positiveInt.default(64).describe('Prompt length in tokens (approximate)'),
    output_len: positiveInt
      .default(32)
      .describe('Output tokens each request asks for (max_output_tokens still caps it)'),
    seed: nonNegativeInt.default(42).describe('Seed of the prompt generator'),
  })
  .describe('Generated prompts: the same seed gives the same prompts on every machine');
export type SyntheticDataset = z.infer<typeof SyntheticDatasetSchema>;

const jsonlPath = z
  .string()
  .min(1)
  .regex(/\.jsonl$/i, 'must be a .jsonl file path');

const datasetObjectShape = {
  synthetic: SyntheticDatasetSchema.optional(),
  path: jsonlPath.optional().describe('A .jsonl file, one JSON object per line'),
  column: z.string().min(1).optional().describe('Field holding the prompt (default "prompt")'),
};

const DatasetObjectSchema = z.strictObject(datasetObjectShape).superRefine((value, ctx) => {
  const hasSynthetic = value.synthetic !== undefined;
  const hasPath = value.path !== undefined;
  if (hasSynthetic === hasPath) {
    ctx.addIssue({
      code: 'custom',
      message: hasSynthetic
        ? 'give either synthetic or path, not both'
        : 'give either synthetic: {n, input_len, output_len, seed} or path: <file>.jsonl',
      params: { allowed: ['synthetic', 'path'] },
    });
  }
  if (hasSynthetic && value.column !== undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['column'],
      message: 'column only applies to a .jsonl path dataset',
    });
  }
});

export type DatasetConfig = { synthetic: SyntheticDataset } | { path: string; column: string };

/** `dataset: prompts.jsonl`, `{path, column}` or `{synthetic: {...}}`, normalised to an object. */
export const DatasetSchema = z
  .union([jsonlPath, DatasetObjectSchema])
  .describe('synthetic: {n, input_len, output_len, seed}, or a .jsonl path (or {path, column})')
  .transform((value): DatasetConfig => {
    if (typeof value === 'string') return { path: value, column: 'prompt' };
    if (value.synthetic) return { synthetic: value.synthetic };
    return { path: value.path ?? '', column: value.column ?? 'prompt' };
  });

// ---------------------------------------------------------------------------------------------
// decoder

export const DECODER_PRESETS = {
  /** Greedy: the same prompt gives the same tokens, so runs are comparable. */
  deterministic: { temperature: 0, top_k: 1, top_p: 1, min_p: 0, repeat_penalty: 1, seed: 0 },
  /** Typical chat sampling (llama.cpp's defaults). */
  standard: { temperature: 0.8, top_k: 40, top_p: 0.95, min_p: 0.05, repeat_penalty: 1.1, seed: 0 },
} as const;
export type DecoderPreset = keyof typeof DECODER_PRESETS;

const decoderShape = {
  preset: z
    .enum(['deterministic', 'standard'])
    .default('deterministic')
    .describe('Starting values; any field given next to it overrides the preset'),
  temperature: z.number().min(0).max(10).optional(),
  top_k: nonNegativeInt.optional().describe('0 disables top-k'),
  top_p: z.number().gt(0).max(1).optional(),
  min_p: z.number().min(0).max(1).optional(),
  repeat_penalty: z.number().positive().optional(),
  seed: nonNegativeInt.optional(),
};

export const DecoderSchema = z.strictObject(decoderShape).transform((value) => {
  const preset = DECODER_PRESETS[value.preset];
  return {
    preset: value.preset,
    temperature: value.temperature ?? preset.temperature,
    top_k: value.top_k ?? preset.top_k,
    top_p: value.top_p ?? preset.top_p,
    min_p: value.min_p ?? preset.min_p,
    repeat_penalty: value.repeat_penalty ?? preset.repeat_penalty,
    seed: value.seed ?? preset.seed,
  };
});
export type DecoderConfig = z.output<typeof DecoderSchema>;

// ---------------------------------------------------------------------------------------------
// warmup, baseline, energy

const warmupShape = {
  n: nonNegativeInt.default(2).describe('Warmup prompts run before measuring (not measured)'),
  cv_threshold: z
    .number()
    .gt(0)
    .lt(1)
    .optional()
    .describe(
      'Keep warming up until the coefficient of variation of the last `window` latencies is below this',
    ),
  window: z.int().min(2).default(3).describe('Latencies the CV is computed over'),
  max_n: positiveInt.default(20).describe('Upper bound on warmup prompts when cv_threshold is set'),
};

export const WarmupSchema = z.strictObject(warmupShape).superRefine((value, ctx) => {
  if (value.cv_threshold !== undefined && value.max_n < value.window) {
    ctx.addIssue({
      code: 'custom',
      path: ['max_n'],
      message: `must be at least warmup.window (${value.window}) when cv_threshold is set`,
    });
  }
});
export type WarmupConfig = z.output<typeof WarmupSchema>;

export const BaselineSchema = z.strictObject({
  enabled: z.boolean().default(false).describe('Measure idle power before loading the model'),
  duration_s: z.number().positive().max(3600).default(10),
});
export type BaselineConfig = z.output<typeof BaselineSchema>;

export const ENERGY_BACKENDS = ['auto', 'nvml', 'rapl', 'none'] as const;
export const EnergySchema = z.strictObject({
  backend: z
    .enum(ENERGY_BACKENDS)
    .default('auto')
    .describe('auto picks NVML and/or RAPL, whichever this machine has'),
  sample_interval_ms: z.int().min(10).max(10_000).default(100),
  devices: z
    .array(nonNegativeInt)
    .min(1)
    .refine((d) => new Set(d).size === d.length, 'device indices must be unique')
    .default([0])
    .describe('NVML device indices to measure'),
});
export type EnergyConfig = z.output<typeof EnergySchema>;

// ---------------------------------------------------------------------------------------------
// engine sections

const autoOr = <T extends z.ZodType>(schema: T, ...words: string[]) =>
  z.union([z.enum(words as [string, ...string[]]), schema]);

const llamacppShape = {
  gpu_layers: z
    .union([z.enum(['auto', 'max']), nonNegativeInt])
    .default('auto')
    .describe('Layers offloaded to the GPU: auto, max, or a count'),
  context_size: z.int().min(16).default(2048),
  batch_size: positiveInt.default(512).describe('Logical batch size (n_batch)'),
  ubatch_size: positiveInt.optional().describe('Physical batch size (n_ubatch); ≤ batch_size'),
  threads: autoOr(positiveInt, 'auto').default('auto'),
  parallel: positiveInt.default(1).describe('Parallel sequences (concurrent requests)'),
  flash_attention: z.boolean().default(false),
  kv_cache_type_k: z.enum(KV_CACHE_TYPES).default('f16'),
  kv_cache_type_v: z.enum(KV_CACHE_TYPES).default('f16'),
  use_mmap: z.boolean().default(true),
  use_mlock: z.boolean().default(false),
  seed: nonNegativeInt.optional().describe('Context seed; decoder.seed is used when absent'),
};

export const LlamacppSchema = z.strictObject(llamacppShape).superRefine((value, ctx) => {
  if (value.ubatch_size !== undefined && value.ubatch_size > value.batch_size) {
    ctx.addIssue({
      code: 'custom',
      path: ['ubatch_size'],
      message: `must be ≤ llamacpp.batch_size (${value.batch_size})`,
    });
  }
  if (!value.flash_attention && !['f16', 'f32', 'bf16'].includes(value.kv_cache_type_v)) {
    // llama.cpp refuses a quantised V cache without flash attention; say so before loading.
    ctx.addIssue({
      code: 'custom',
      path: ['kv_cache_type_v'],
      message: `a quantised V cache (${value.kv_cache_type_v}) requires llamacpp.flash_attention: true`,
    });
  }
});
export type LlamacppConfig = z.output<typeof LlamacppSchema>;

const ENV_VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export const SloSchema = z.strictObject({
  ttft_ms: z.number().positive().optional(),
  itl_ms: z.number().positive().optional(),
  e2e_ms: z.number().positive().optional(),
});

const openaiShape = {
  base_url: z
    .url({ protocol: /^https?$/, error: 'must be an http(s) URL, e.g. http://127.0.0.1:8000/v1' })
    .describe('OpenAI-compatible API root, usually ending in /v1'),
  model: z
    .string()
    .min(1)
    .optional()
    .describe('Served model name; defaults to the top-level model'),
  api_key_env: z
    .string()
    // The message never repeats the value: if someone pasted a key here it must not reach logs.
    .regex(
      ENV_VAR_NAME,
      'must be the NAME of an environment variable (e.g. OPENAI_API_KEY), never the key itself',
    )
    .optional(),
  endpoint: z.enum(['completions', 'chat']).default('completions'),
  concurrency: positiveInt.optional().describe('Closed loop: this many requests in flight'),
  request_rate: z
    .number()
    .positive()
    .optional()
    .describe('Open loop: requests per second with Poisson (or gamma, see burstiness) arrivals'),
  burstiness: z
    .number()
    .positive()
    .default(1)
    .describe('Gamma shape of inter-arrival times; 1 = Poisson'),
  arrival_seed: nonNegativeInt.default(0),
  max_concurrency: positiveInt
    .optional()
    .describe('Cap on in-flight requests in request_rate mode'),
  request_timeout_s: z.number().positive().default(120),
  ignore_eos: z.boolean().default(false),
  steady_state: z.boolean().default(false).describe('Also report the steady-state window'),
  max_failure_rate: z.number().min(0).max(1).default(0),
  slo: SloSchema.prefault({}),
};

export const OpenaiSchema = z
  .strictObject(openaiShape)
  .superRefine((value, ctx) => {
    if (value.concurrency !== undefined && value.request_rate !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['request_rate'],
        message: 'give openai.concurrency or openai.request_rate, not both',
      });
    }
    if (value.max_concurrency !== undefined && value.request_rate === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['max_concurrency'],
        message: 'only applies with openai.request_rate',
      });
    }
  })
  .transform((value) =>
    // Closed loop with one request in flight is the least surprising default.
    value.concurrency === undefined && value.request_rate === undefined
      ? { ...value, concurrency: 1 }
      : value,
  );
export type OpenaiConfig = z.output<typeof OpenaiSchema>;

const commandShape = {
  argv: z
    .array(z.string().min(1))
    .min(1, 'must name the program to run, e.g. [python, bench.py]')
    .describe('Program and arguments, run without a shell'),
  env: z
    .record(
      z.string().regex(ENV_VAR_NAME, 'environment variable names are [A-Za-z_][A-Za-z0-9_]*'),
      z.string(),
    )
    .default({})
    .describe('Extra environment variables for the program'),
  cwd: z.string().min(1).optional().describe('Working directory (relative to the study file)'),
  inherit_env: z.boolean().default(true).describe("Pass llem's own environment to the program"),
};

export const CommandSchema = z.strictObject(commandShape);
export type CommandConfig = z.output<typeof CommandSchema>;

// ---------------------------------------------------------------------------------------------
// the experiment config

const commonShape = {
  name: z
    .string()
    .min(1)
    .optional()
    .describe('A human label for this experiment (presentation only: not part of the hash)'),
  model: z.string().min(1).describe('A .gguf path, builtin:tiny, or a served model name (openai)'),
  dataset: DatasetSchema.prefault({ synthetic: {} }),
  max_output_tokens: positiveInt.default(128),
  decoder: DecoderSchema.prefault({}),
  warmup: WarmupSchema.prefault({}),
  baseline: BaselineSchema.prefault({}),
  energy: EnergySchema.prefault({}),
};

const LlamacppExperimentSchema = z.strictObject({
  ...commonShape,
  engine: z.literal('llamacpp'),
  llamacpp: LlamacppSchema.prefault({}),
});
const OpenaiExperimentSchema = z.strictObject({
  ...commonShape,
  engine: z.literal('openai'),
  openai: OpenaiSchema,
});
const CommandExperimentSchema = z.strictObject({
  ...commonShape,
  engine: z.literal('command'),
  command: CommandSchema,
});

/**
 * A complete experiment config. `engine` selects which section applies; the other sections are
 * rejected, so a config never carries settings that were silently ignored.
 */
export const ExperimentConfigSchema = z
  .discriminatedUnion('engine', [
    LlamacppExperimentSchema,
    OpenaiExperimentSchema,
    CommandExperimentSchema,
  ])
  .superRefine((config, ctx) => {
    if (
      config.engine === 'llamacpp' &&
      config.model !== BUILTIN_TINY_MODEL &&
      !/\.gguf$/i.test(config.model)
    ) {
      ctx.addIssue({
        code: 'custom',
        path: ['model'],
        message: `the llamacpp engine needs a .gguf file path or ${BUILTIN_TINY_MODEL}`,
      });
    }
  })
  .transform((config) =>
    config.engine === 'openai' && config.openai.model === undefined
      ? { ...config, openai: { ...config.openai, model: config.model } }
      : config,
  );

/** A parsed experiment config: every default applied. */
export type ExperimentConfig = z.output<typeof ExperimentConfigSchema>;
/** What a user may write (defaults optional). */
export type ExperimentConfigInput = z.input<typeof ExperimentConfigSchema>;
export type LlamacppExperimentConfig = Extract<ExperimentConfig, { engine: 'llamacpp' }>;
export type OpenaiExperimentConfig = Extract<ExperimentConfig, { engine: 'openai' }>;
export type CommandExperimentConfig = Extract<ExperimentConfig, { engine: 'command' }>;

/** The engine sections, by engine name: used to give a precise error for a misplaced section. */
export const ENGINE_SECTIONS: Readonly<Record<EngineName, z.ZodType>> = {
  llamacpp: LlamacppSchema,
  openai: OpenaiSchema,
  command: CommandSchema,
};

/**
 * The same fields with every one optional and no cross-field rules: what a study file may hold
 * at its top level or in one `experiments` entry before they are merged into full configs.
 * Used to check types at their real place in the file, and for the study's JSON Schema.
 */
export const PartialExperimentSchema = z.strictObject({
  name: commonShape.name,
  model: commonShape.model.optional(),
  engine: z.enum(ENGINE_NAMES).optional().describe('Which engine runs the experiment'),
  dataset: z.union([jsonlPath, z.strictObject(datasetObjectShape)]).optional(),
  max_output_tokens: positiveInt.optional().describe('Output-token cap per request (default 128)'),
  decoder: z.strictObject(decoderShape).partial().optional(),
  warmup: z.strictObject(warmupShape).partial().optional(),
  baseline: BaselineSchema.partial().optional(),
  energy: EnergySchema.partial().optional(),
  llamacpp: z.strictObject(llamacppShape).partial().optional(),
  openai: z.strictObject(openaiShape).partial().optional(),
  command: z.strictObject(commandShape).partial().optional(),
});
export type PartialExperimentInput = z.input<typeof PartialExperimentSchema>;
