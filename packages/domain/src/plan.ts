import { type ExperimentConfig, ExperimentConfigSchema } from './config';
import { ConfigError, type ConfigIssue } from './errors';
import { configHash, designHashFromConfigHashes, hashParsedConfig } from './hash';
import { validate } from './internal/issues';
import { mulberry32, seededShuffle } from './random';
import { type ExecutionConfig, type RunOrder, STUDY_OWN_KEYS, StudyFileSchema } from './study';

/** One config of a plan, in generation order (any config type: see `PlanOf`). */
export interface PlannedConfigOf<Config> {
  /** Position in the plan's `configs`. */
  index: number;
  /** Short human label from what varies, e.g. `batch_size=64 threads=1`. */
  label: string;
  configHash: string;
  /** 0 for the first config with this hash, 1, 2… for identical copies after it. */
  copy: number;
  config: Config;
}

/** One valid experiment config of a study, in generation order. */
export type PlannedConfig = PlannedConfigOf<ExperimentConfig>;

/** A generated config that failed validation: listed, not run. */
export interface SkippedConfig {
  label: string;
  /** Paths are relative to the experiment config (e.g. `llamacpp.ubatch_size`). */
  reasons: ConfigIssue[];
  /** The merged config as generated, before validation. */
  input: Record<string, unknown>;
}

/** One run: a config × a cycle, in the order the runner executes them. */
export interface ScheduledRun {
  /** Unique per run: `<configHash>_c<cycle>`, or `<configHash>_<copy>_c<cycle>` for copy ≥ 1. */
  key: string;
  configIndex: number;
  configHash: string;
  copy: number;
  /** 0-based. */
  cycle: number;
  /** 0-based position in `StudyPlan.runs`. */
  ordinal: number;
}

/**
 * A plan over configs of any type: what `@llem/study`'s runner runs (its `RunnerPlan` is this
 * type). llem's own is `StudyPlan`; `planGrid` builds one for a grid of your own.
 */
export interface PlanOf<Config, Execution = ExecutionConfig> {
  name: string;
  designHash: string;
  execution: Execution;
  configs: PlannedConfigOf<Config>[];
  /** Every run, in the order to run them. */
  runs: ScheduledRun[];
}

/** A study file expanded: llem experiment configs, the skipped ones, every run in order. */
export interface StudyPlan extends PlanOf<ExperimentConfig> {
  skipped: SkippedConfig[];
}

export interface PlanOptions {
  /** The file the study came from, named in every error; also the default study name. */
  file: string;
}

type Plain = Record<string, unknown>;

function isPlain(value: unknown): value is Plain {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * Merge `override` over `base`: mappings merge key by key at every depth; anything else
 * (scalars, lists) in `override` replaces what `base` had.
 */
export function deepMerge(base: Plain, override: Plain): Plain {
  const out: Plain = { ...base };
  for (const [key, value] of Object.entries(override)) {
    const current = out[key];
    out[key] = isPlain(current) && isPlain(value) ? deepMerge(current, value) : value;
  }
  return out;
}

/**
 * Set a dotted path in a config, creating sections on the way. A mapping value merges over the
 * section already there, so `llamacpp: [{batch_size: 64, ubatch_size: 64}, …]` sweeps paired
 * values while keeping the other llamacpp fields. Returns an issue when the path runs through
 * a value that is not a mapping.
 */
function setPath(target: Plain, segments: readonly string[], value: unknown): ConfigIssue | null {
  let node = target;
  for (let i = 0; i < segments.length - 1; i++) {
    const segment = segments[i] as string;
    const next = node[segment];
    if (next === undefined) {
      const created: Plain = {};
      node[segment] = created;
      node = created;
    } else if (isPlain(next)) {
      const copy = { ...next };
      node[segment] = copy;
      node = copy;
    } else {
      return {
        path: segments.slice(0, i + 1).join('.'),
        message: `is not a mapping in this config, so sweep key ${segments.join('.')} cannot be set`,
      };
    }
  }
  const last = segments[segments.length - 1] as string;
  const current = node[last];
  node[last] = isPlain(current) && isPlain(value) ? deepMerge(current, value) : value;
  return null;
}

/** Every combination of sweep values; the last key varies fastest. One empty combo without a sweep. */
function cartesian(sweep: Record<string, unknown[]>): [string, unknown][][] {
  let combos: [string, unknown][][] = [[]];
  for (const [key, values] of Object.entries(sweep)) {
    const next: [string, unknown][][] = [];
    for (const combo of combos) for (const value of values) next.push([...combo, [key, value]]);
    combos = next;
  }
  return combos;
}

/** Flatten a value into dotted leaves, for labels. */
function leaves(prefix: string, value: unknown, out: [string, unknown][]): void {
  if (isPlain(value) && Object.keys(value).length > 0) {
    for (const [key, inner] of Object.entries(value))
      leaves(prefix ? `${prefix}.${key}` : key, inner, out);
  } else {
    out.push([prefix, value]);
  }
}

function formatValue(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === undefined) return '∅';
  return JSON.stringify(value);
}

/**
 * Build labels from the label parts of every config: each dotted key is shortened to its last
 * segment unless that would make two different keys look alike.
 */
function buildLabels(parts: [string, unknown][][], fallback: (i: number) => string): string[] {
  const allKeys = new Set(parts.flatMap((p) => p.map(([key]) => key)));
  const byShort = new Map<string, Set<string>>();
  for (const key of allKeys) {
    const short = key.split('.').pop() as string;
    byShort.set(short, (byShort.get(short) ?? new Set()).add(key));
  }
  const shorten = (key: string) => {
    const short = key.split('.').pop() as string;
    return (byShort.get(short)?.size ?? 0) > 1 ? key : short;
  };
  return parts.map((p, i) =>
    p.length === 0
      ? fallback(i)
      : p.map(([key, value]) => `${shorten(key)}=${formatValue(value)}`).join(' '),
  );
}

/** Default study name from the file name: `studies/batch.yaml` → `batch`. */
function nameFromFile(file: string): string {
  const base = file.split(/[\\/]/).pop() ?? '';
  const stem = base.replace(/\.(ya?ml|json)$/i, '');
  return stem && !stem.startsWith('<') ? stem : 'study';
}

/**
 * Order runs: `sequential` runs every cycle of a config before the next (AAA BBB);
 * `interleaved` runs every config once per cycle (AB AB); `shuffled` runs every config once per
 * cycle in an order drawn from one mulberry32 stream seeded with `shuffleSeed` (a fresh
 * Fisher–Yates permutation per cycle, so each cycle still holds every config exactly once).
 *
 * @example
 * orderRuns(2, 2, 'interleaved', 0); // [[0,0],[1,0],[0,1],[1,1]] as [configIndex, cycle]
 */
export function orderRuns(
  configCount: number,
  cycles: number,
  order: RunOrder,
  shuffleSeed: number,
): [configIndex: number, cycle: number][] {
  const indices = Array.from({ length: configCount }, (_, i) => i);
  const out: [number, number][] = [];
  if (order === 'sequential') {
    for (const i of indices) for (let c = 0; c < cycles; c++) out.push([i, c]);
    return out;
  }
  const random = mulberry32(shuffleSeed);
  for (let c = 0; c < cycles; c++) {
    const cycleOrder = order === 'shuffled' ? seededShuffle(indices, random) : indices;
    for (const i of cycleOrder) out.push([i, c]);
  }
  return out;
}

/**
 * How many GPUs of `execution.devices` a run of `config` is given: the config's own
 * `devices_per_run`, else `execution.devices_per_run`, else 1.
 *
 * @example
 * devicesPerRun({ devices_per_run: 2 }, { devices: [0, 1, 2, 3] }); // 2
 */
export function devicesPerRun(
  config: { devices_per_run?: number | undefined },
  execution: { devices_per_run?: number | undefined },
): number {
  return config.devices_per_run ?? execution.devices_per_run ?? 1;
}

/** A config that cannot run on the study's devices: the issue naming both fields, or null. */
function checkDevices(config: ExperimentConfig, execution: ExecutionConfig): ConfigIssue | null {
  if (!execution.devices) return null;
  const perRun = devicesPerRun(config, execution);
  const field =
    config.devices_per_run === undefined ? 'execution.devices_per_run' : 'devices_per_run';
  if (perRun > execution.devices.length) {
    return {
      path: field === 'devices_per_run' ? 'devices_per_run' : '(root)',
      message: `${field} is ${perRun}, but execution.devices lists only ${execution.devices.length} GPU${execution.devices.length === 1 ? '' : 's'}`,
    };
  }
  if (config.engine === 'command' && config.command.env?.CUDA_VISIBLE_DEVICES !== undefined) {
    return {
      path: 'command.env.CUDA_VISIBLE_DEVICES',
      message:
        'with execution.devices each run is given its GPUs (CUDA_VISIBLE_DEVICES holds their UUIDs): leave command.env.CUDA_VISIBLE_DEVICES out, or list the GPUs in execution.devices',
    };
  }
  if (config.energy.devices.length > perRun) {
    return {
      path: 'energy.devices',
      message: `lists ${config.energy.devices.length} devices, but each run is given ${perRun} GPU${perRun === 1 ? '' : 's'} from execution.devices (${field}); with execution.devices a run is measured on the GPUs it is given: leave energy.devices out or raise ${field}`,
    };
  }
  return null;
}

/**
 * The run key of a config × cycle (see `ScheduledRun.key`).
 *
 * @example
 * runKey('0123456789abcdef', 0, 2); // '0123456789abcdef_c2'
 */
export function runKey(configHash: string, copy: number, cycle: number): string {
  return copy === 0 ? `${configHash}_c${cycle}` : `${configHash}_${copy}_c${cycle}`;
}

/**
 * Expand a study file (as parsed from YAML/JSON) into its plan: the shared top-level fields,
 * each `experiments` entry merged over them, and the `sweep`'s Cartesian product applied last
 * (dotted keys reach into sections at any depth). Every generated config is validated; invalid
 * ones land in `skipped` with their reasons. Identical configs are kept, each with its own
 * `copy` number and runs. Throws `ConfigError` (code `CONFIG_INVALID`) when the file itself is
 * malformed, and (code `STUDY_EMPTY`) when no generated config is valid.
 *
 * @example
 * const plan = planStudy(parseStudyText(text, { file }), { file });
 * console.log(`${plan.configs.length} configs × ${plan.execution.cycles} cycles = ${plan.runs.length} runs`);
 */
export function planStudy(raw: unknown, options: PlanOptions): StudyPlan {
  const { file } = options;
  if (!isPlain(raw)) {
    throw new ConfigError('CONFIG_INVALID', file, [
      { path: '(root)', message: 'a study file must be a mapping (name, model, engine, sweep, …)' },
    ]);
  }
  const checked = validate(StudyFileSchema, raw);
  if (!checked.ok) throw new ConfigError('CONFIG_INVALID', file, checked.issues);
  const execution = checked.value.execution;

  const shared: Plain = {};
  for (const [key, value] of Object.entries(raw)) if (!STUDY_OWN_KEYS.has(key)) shared[key] = value;
  const experiments = (raw.experiments as Plain[] | undefined) ?? [{}];
  const sweep = (raw.sweep as Record<string, unknown[]> | undefined) ?? {};
  const combos = cartesian(sweep);

  interface Generated {
    input: Plain;
    parts: [string, unknown][];
    problem: ConfigIssue | null;
  }
  const generated: Generated[] = [];
  for (const experiment of experiments) {
    const experimentParts: [string, unknown][] = [];
    if (typeof experiment.name === 'string') experimentParts.push(['experiment', experiment.name]);
    else if (experiments.length > 1) leaves('', experiment, experimentParts);
    for (const combo of combos) {
      const input = deepMerge(shared, experiment);
      let problem: ConfigIssue | null = null;
      const sweepParts: [string, unknown][] = [];
      for (const [key, value] of combo) {
        problem ??= setPath(input, key.split('.'), value);
        leaves(key, value, sweepParts);
      }
      // The sweep is applied last, so an experiment value it overrides is not in the label.
      const overridden = (key: string) =>
        combo.some(([sweepKey]) => key === sweepKey || key.startsWith(`${sweepKey}.`));
      const parts = [...experimentParts.filter(([key]) => !overridden(key)), ...sweepParts];
      generated.push({ input, parts, problem });
    }
  }

  const labels = buildLabels(
    generated.map((g) => g.parts),
    (i) => {
      const input = generated[i]?.input;
      return typeof input?.model === 'string' ? input.model : 'config';
    },
  );

  const configs: PlannedConfig[] = [];
  const skipped: SkippedConfig[] = [];
  const copies = new Map<string, number>();
  generated.forEach((g, i) => {
    const label = labels[i] as string;
    if (g.problem) {
      skipped.push({ label, reasons: [g.problem], input: g.input });
      return;
    }
    const result = validate(ExperimentConfigSchema, g.input);
    if (!result.ok) {
      skipped.push({ label, reasons: result.issues, input: g.input });
      return;
    }
    const deviceIssue = checkDevices(result.value, execution);
    if (deviceIssue) {
      skipped.push({ label, reasons: [deviceIssue], input: g.input });
      return;
    }
    const configHash = hashParsedConfig(result.value);
    const copy = copies.get(configHash) ?? 0;
    copies.set(configHash, copy + 1);
    configs.push({
      index: configs.length,
      label: copy === 0 ? label : `${label} (copy ${copy + 1})`,
      configHash,
      copy,
      config: result.value,
    });
  });

  if (configs.length === 0 && generated.length === 1) {
    // One config and it is invalid: that is simply an invalid file.
    throw new ConfigError('CONFIG_INVALID', file, skipped[0]?.reasons ?? []);
  }
  if (configs.length === 0) {
    throw new ConfigError('STUDY_EMPTY', file, [
      ...skipped.flatMap((s) =>
        s.reasons.map((reason) => ({
          ...reason,
          message: `${reason.message} (in generated config ${JSON.stringify(s.label)})`,
        })),
      ),
      {
        path: '(root)',
        message: `none of the ${generated.length} generated configs is valid, so the study has nothing to run`,
      },
    ]);
  }

  const runs: ScheduledRun[] = orderRuns(
    configs.length,
    execution.cycles,
    execution.order,
    execution.shuffle_seed,
  ).map(([configIndex, cycle], ordinal) => {
    const planned = configs[configIndex] as PlannedConfig;
    return {
      key: runKey(planned.configHash, planned.copy, cycle),
      configIndex,
      configHash: planned.configHash,
      copy: planned.copy,
      cycle,
      ordinal,
    };
  });

  return {
    name: typeof raw.name === 'string' ? raw.name : nameFromFile(file),
    designHash: designHashFromConfigHashes(configs.map((c) => c.configHash)),
    execution,
    configs,
    skipped,
    runs,
  };
}

/**
 * A plan for a grid of configs of your own (any JSON-able values), for `@llem/study`'s runner:
 * config hashes (SHA-256 of canonical JSON, first 16 hex), the design hash, copies of identical
 * configs, run keys and the run order, as `planStudy` computes them for llem's configs.
 *
 * @example
 * const plan = planGrid([{ batch: 8 }, { batch: 64 }], { name: 'batches', cycles: 3, label: (c) => `batch=${c.batch}` });
 * new StudyRunner({ plan, workerModule: './my-worker.js' });
 */
export function planGrid<Config>(
  configs: readonly Config[],
  options: {
    name: string;
    cycles?: number;
    order?: RunOrder;
    shuffleSeed?: number;
    /** A label per config; default `config <n>`. */
    label?: (config: Config, index: number) => string;
    /** Gaps, timeout… as `@llem/study`'s runner reads them (`execution_gap_s`, `timeout_s`…). */
    execution?: Record<string, unknown>;
  },
): PlanOf<Config, Record<string, unknown> & { cycles: number }> {
  const cycles = options.cycles ?? 1;
  const copies = new Map<string, number>();
  const planned = configs.map((config, index): PlannedConfigOf<Config> => {
    const hash = configHash(config);
    const copy = copies.get(hash) ?? 0;
    copies.set(hash, copy + 1);
    return {
      index,
      label: options.label?.(config, index) ?? `config ${index + 1}`,
      configHash: hash,
      copy,
      config,
    };
  });
  const runs = orderRuns(
    planned.length,
    cycles,
    options.order ?? 'interleaved',
    options.shuffleSeed ?? 0,
  ).map(([configIndex, cycle], ordinal): ScheduledRun => {
    const p = planned[configIndex] as PlannedConfigOf<Config>;
    return {
      key: runKey(p.configHash, p.copy, cycle),
      configIndex,
      configHash: p.configHash,
      copy: p.copy,
      cycle,
      ordinal,
    };
  });
  return {
    name: options.name,
    designHash: designHashFromConfigHashes(planned.map((p) => p.configHash)),
    execution: { ...options.execution, cycles },
    configs: planned,
    runs,
  };
}
