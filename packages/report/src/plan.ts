import { formatCommandLine, serverCommandLine } from '@llem/domain';
import { formatNumber } from './format';
import { formatTable, type TextOptions } from './text';

/**
 * The parts of `@llem/domain`'s `StudyPlan` the dry-run view reads. Declared structurally so a
 * plan from any version of the planner (or a hand-made one) can be shown.
 */
export interface PlanView {
  name: string;
  designHash: string;
  execution: {
    cycles: number;
    order: string;
    shuffle_seed?: number;
    experiment_gap_s: number;
    cycle_gap_s: number;
    timeout_s?: number | undefined;
    /** GPUs runs go on in parallel (many-GPU studies). */
    devices?: readonly (number | string)[] | undefined;
    devices_per_run?: number | undefined;
  };
  configs: readonly { index: number; label: string; configHash: string; config: unknown }[];
  skipped: readonly {
    label: string;
    reasons: readonly ({ path?: string; message: string; allowed?: string[] } | string)[];
  }[];
  runs: readonly {
    key: string;
    configIndex: number;
    configHash: string;
    cycle: number;
    ordinal: number;
  }[];
}

/** Memory a model needs against what a device has free (GGUF models, from their metadata). */
export interface MemoryEstimate {
  model: string;
  /** Configs this estimate is for (labels); empty means all configs using the model. */
  configs?: readonly string[];
  estimatedMiB: number;
  /** How the estimate was made, e.g. "weights 4.1 GiB + KV cache 256 MiB at context 4096". */
  detail?: string;
  /** Free memory on the target device; `null` when it cannot be read (no NVML: CPU run). */
  freeMiB: number | null;
  /** Which memory `freeMiB` is, e.g. `GPU 0 (NVIDIA H100)` or `system RAM`. */
  device?: string;
}

export interface RenderPlanOptions extends TextOptions {
  /**
   * Seconds one run takes, per config (e.g. from a previous study's durations). When it returns
   * `null` or is absent, the run is estimated from the workload size at `assumedTokensPerS`.
   */
  estimateRunS?: (config: PlanView['configs'][number]) => number | null;
  /** Decode speed assumed for the workload estimate. Default 25 tokens/s (a small model on a CPU). */
  assumedTokensPerS?: number;
  /** Per-run overhead: child start, model load, warmup bookkeeping. Default 10 s. */
  runOverheadS?: number;
  /**
   * A config's dataset file as read (its requests, a trace's span in s), for the workload
   * estimate; `null` or absent: the config's synthetic `n` (× `turns`), else 32.
   */
  datasetSize?: (
    config: PlanView['configs'][number],
  ) => { requests: number; durationS: number | null } | null;
  memory?: readonly MemoryEstimate[];
  /** Print every run (default true); with false only the first and last 5. */
  allRuns?: boolean;
}

export interface PlanEstimate {
  /** How many runs go at once (1 without `execution.devices`). */
  parallel: number;
  /** Seconds of experiment and cycle gaps (exact for one run at a time). */
  gapsS: number;
  /** Seconds of running (estimated). */
  runsS: number;
  totalS: number;
  /** `timeout_s × runs + gaps`: the longest the study can take, when a timeout is set. */
  upperBoundS: number | null;
  /** How the run time was estimated, in words. */
  method: string;
}

type Rec = Record<string, unknown>;
const rec = (v: unknown): Rec => (v !== null && typeof v === 'object' ? (v as Rec) : {});
const numOr = (v: unknown, d: number): number =>
  typeof v === 'number' && Number.isFinite(v) ? v : d;

/**
 * Output tokens a config generates, warmup included: requests × min(max_output, output_len);
 * requests are a dataset file's (when given) or the synthetic `n` × `turns`, once per load point
 * of a sweep.
 */
function workloadTokens(config: unknown, fileRequests: number | null = null): number {
  const c = rec(config);
  const synthetic = rec(rec(c.dataset).synthetic);
  const maxOut = numOr(c.max_output_tokens, numOr(synthetic.output_len, 128));
  const perPrompt = Math.min(maxOut, numOr(synthetic.output_len, maxOut));
  const prompts = fileRequests ?? numOr(synthetic.n, 32) * numOr(synthetic.turns, 1);
  const warmup = numOr(rec(c.warmup).n, 0);
  return (prompts * sweepPoints(c) + warmup) * perPrompt;
}

/** A load sweep runs its workload once per point (`openai.sweep_points`, 8 by default); else 1. */
function sweepPoints(config: Rec): number {
  const openai = rec(config.openai);
  return openai.load === 'sweep' ? numOr(openai.sweep_points, 8) : 1;
}

/**
 * Estimated duration of a study: gaps are exact (they come from `execution`); run time comes
 * from `estimateRunS` or the workload size at an assumed decode speed, plus an overhead per run.
 *
 * @example
 * estimatePlanDuration(plan).totalS; // e.g. 312
 */
/** GPUs one run of `config` is given from `execution.devices` (its own `devices_per_run` first). */
function gpusPerRun(plan: PlanView, config: unknown): number {
  const own = rec(config).devices_per_run;
  return typeof own === 'number' ? own : (plan.execution.devices_per_run ?? 1);
}

/** How many runs go at once: the device pool over the mean GPUs a run takes (at least 1). */
export function planParallelism(plan: PlanView): number {
  const devices = plan.execution.devices?.length ?? 0;
  if (devices === 0 || plan.runs.length === 0) return 1;
  const mean =
    plan.runs.reduce((a, r) => a + gpusPerRun(plan, plan.configs[r.configIndex]?.config), 0) /
    plan.runs.length;
  return Math.max(1, Math.floor(devices / Math.max(1, mean)));
}

export function estimatePlanDuration(
  plan: PlanView,
  options: RenderPlanOptions = {},
): PlanEstimate {
  const tps = options.assumedTokensPerS ?? 25;
  const overhead = options.runOverheadS ?? 10;
  let gapsS = 0;
  let runsS = 0;
  let usedCustom = false;
  let prevCycle: number | null = null;
  for (const run of plan.runs) {
    // As the runner does: no gap before the first run; a cycle gap whenever the cycle changes.
    if (prevCycle !== null) {
      gapsS += plan.execution.experiment_gap_s;
      if (run.cycle !== prevCycle) gapsS += plan.execution.cycle_gap_s;
    }
    prevCycle = run.cycle;
    const config = plan.configs[run.configIndex];
    const custom = config && options.estimateRunS ? options.estimateRunS(config) : null;
    if (custom !== null && custom !== undefined) {
      usedCustom = true;
      runsS += custom;
    } else {
      // A trace takes at least its span, whatever the decode speed.
      const size = config && options.datasetSize ? options.datasetSize(config) : null;
      runsS +=
        overhead +
        workloadTokens(config?.config, size?.requests ?? null) / tps +
        (size?.durationS ?? 0);
    }
  }
  const timeout = plan.execution.timeout_s;
  // Runs on several GPUs go in parallel, and so do their gaps (per device set).
  const parallel = planParallelism(plan);
  gapsS /= parallel;
  runsS /= parallel;
  return {
    parallel,
    gapsS,
    runsS,
    totalS: gapsS + runsS,
    upperBoundS: timeout ? (timeout * plan.runs.length) / parallel + gapsS : null,
    method: usedCustom
      ? 'run times from the previous measurements given'
      : `assuming ${tps} output tokens/s and ${overhead} s overhead per run`,
  };
}

/**
 * The command line of each config's managed server (`server:`), `{port}` as written (llem picks
 * the port when the run starts); configs without a server are left out.
 *
 * @example
 * planServerCommands(plan); // [{ index: 0, label: 'max-num-seqs=64', argv: ['vllm', 'serve', …] }]
 */
export function planServerCommands(
  plan: Pick<PlanView, 'configs'>,
): { index: number; label: string; argv: string[]; env: Record<string, string> }[] {
  return plan.configs.flatMap((c) => {
    const server = rec(c.config).server as
      | {
          argv?: unknown;
          args?: Record<string, string | number | boolean | null>;
          env?: Record<string, unknown>;
        }
      | undefined;
    if (!server || !Array.isArray(server.argv)) return [];
    return [
      {
        index: c.index,
        label: c.label,
        argv: serverCommandLine({ argv: server.argv.map(String), args: server.args }, null),
        env: Object.fromEntries(Object.entries(server.env ?? {}).map(([k, v]) => [k, String(v)])),
      },
    ];
  });
}

/** `3723` → `1 h 2 min 3 s`. */
export function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  return [h ? `${h} h` : '', m ? `${m} min` : '', r || (!h && !m) ? `${r} s` : '']
    .filter(Boolean)
    .join(' ');
}

export interface GgufMemoryInput {
  /** Size of the .gguf file: the weights as stored. */
  fileSizeBytes: number;
  /** `<arch>.block_count`: transformer layers. */
  blockCount: number | null;
  /** `<arch>.embedding_length`. */
  embeddingLength: number | null;
  /** `<arch>.attention.head_count`; `null` → KV cache estimated without GQA (upper bound). */
  headCount: number | null;
  /** `<arch>.attention.head_count_kv` (GQA); defaults to `headCount`. */
  headCountKv?: number | null;
  contextSize: number;
  /** Bytes per KV-cache element: 2 for f16 (default), 1 for q8_0 (≈1.06), 0.5625 for q4_0. */
  kvBytesPerElement?: number;
  /** Parallel sequences sharing the context (llama.cpp allocates one KV cache for all). */
  sequences?: number;
}

/**
 * Memory a llama-style GGUF model needs: the weights (file size) plus the KV cache,
 * `2 × layers × context × embedding × (kv heads / heads) × bytes`. Compute buffers are not
 * included (typically a few hundred MiB), so treat it as a lower bound.
 *
 * @example
 * estimateGgufMemory({ fileSizeBytes: 4.1e9, blockCount: 32, embeddingLength: 4096,
 *   headCount: 32, headCountKv: 8, contextSize: 4096 }).totalMiB; // ≈ 4422
 */
export function estimateGgufMemory(input: GgufMemoryInput): {
  weightsMiB: number;
  kvCacheMiB: number | null;
  totalMiB: number;
  detail: string;
} {
  const MiB = 1024 * 1024;
  const weightsMiB = input.fileSizeBytes / MiB;
  const { blockCount, embeddingLength, headCount } = input;
  let kvCacheMiB: number | null = null;
  if (blockCount && embeddingLength) {
    // Without head counts, assume no grouped-query attention: an upper bound on the KV cache.
    const kvRatio = headCount ? (input.headCountKv ?? headCount) / headCount : 1;
    kvCacheMiB =
      (2 *
        blockCount *
        input.contextSize *
        embeddingLength *
        kvRatio *
        (input.kvBytesPerElement ?? 2)) /
      MiB;
  }
  const totalMiB = weightsMiB + (kvCacheMiB ?? 0);
  return {
    weightsMiB,
    kvCacheMiB,
    totalMiB,
    detail: `weights ${formatNumber(weightsMiB)} MiB + KV cache ${
      kvCacheMiB === null ? 'unknown (metadata incomplete)' : `${formatNumber(kvCacheMiB)} MiB`
    } at context ${input.contextSize}; compute buffers not included`,
  };
}

/**
 * One reason a config was skipped, as a line: `path: message (allowed: …)`.
 *
 * @example
 * formatSkipReason({ path: 'max_output_tokens', message: 'must be ≥ 1' }); // 'max_output_tokens: must be ≥ 1'
 */
export function formatSkipReason(r: PlanView['skipped'][number]['reasons'][number]): string {
  if (typeof r === 'string') return r;
  const allowed = r.allowed?.length ? ` (allowed: ${r.allowed.join(', ')})` : '';
  return `${r.path ? `${r.path}: ` : ''}${r.message}${allowed}`;
}

/**
 * The `llem run --dry-run` view of a plan: configs with label and hash, every run in order,
 * cycles and order, skipped configs with their reasons, an estimated duration, and the memory
 * estimates given against free device memory.
 *
 * @example
 * process.stdout.write(renderPlan(planStudy(raw, { file }), { memory }));
 */
export function renderPlan(plan: PlanView, options: RenderPlanOptions = {}): string {
  const ex = plan.execution;
  const out: string[] = [];
  out.push(
    `study ${plan.name} (design ${plan.designHash}): ${plan.configs.length} config${plan.configs.length === 1 ? '' : 's'} × ${ex.cycles} cycle${ex.cycles === 1 ? '' : 's'} = ${plan.runs.length} run${plan.runs.length === 1 ? '' : 's'}, order ${ex.order}${ex.order === 'shuffled' ? ` (seed ${ex.shuffle_seed ?? 0})` : ''}`,
  );
  out.push(
    `Gaps: ${ex.experiment_gap_s} s before each run, +${ex.cycle_gap_s} s when a cycle starts; timeout ${ex.timeout_s ? `${ex.timeout_s} s` : 'derived from the workload'}`,
  );
  if (ex.devices?.length) {
    const per = [...new Set(plan.configs.map((c) => gpusPerRun(plan, c.config)))].sort();
    out.push(
      `Devices: ${ex.devices.join(', ')}; ${per.join(' or ')} GPU${per.length === 1 && per[0] === 1 ? '' : 's'} per run, ${planParallelism(plan) === 1 ? 'one run at a time' : `up to ${planParallelism(plan)} runs at a time`}, each on its own GPUs (gaps per device set)`,
    );
  }
  out.push('');
  out.push('Configs');
  out.push(
    formatTable(
      [{ header: '#', align: 'right' }, { header: 'config hash' }, { header: 'label' }],
      plan.configs.map((c) => [String(c.index + 1), c.configHash, c.label]),
      options,
    ).trimEnd(),
  );
  const servers = planServerCommands(plan);
  if (servers.length > 0) {
    out.push('');
    out.push(
      'Servers (llem starts one per run, in its own process group; {port}: a free port picked then)',
    );
    // As a shell would take it: the server's own variables first (Ollama is set up by them).
    for (const s of servers)
      out.push(
        `  ${s.index + 1}  ${formatCommandLine([...Object.entries(s.env).map(([k, v]) => `${k}=${v}`), ...s.argv])}`,
      );
  }
  out.push('');
  out.push('Runs (in execution order)');
  const rows = plan.runs.map((r) => [
    String(r.ordinal + 1),
    String(r.cycle + 1),
    r.key,
    plan.configs[r.configIndex]?.label ?? r.configHash,
  ]);
  const shownRows =
    options.allRuns === false && rows.length > 10
      ? [...rows.slice(0, 5), ['…', '…', `${rows.length - 10} more`, ''], ...rows.slice(-5)]
      : rows;
  out.push(
    formatTable(
      [
        { header: 'run', align: 'right' },
        { header: 'cycle', align: 'right' },
        { header: 'key' },
        { header: 'config' },
      ],
      shownRows,
      options,
    ).trimEnd(),
  );
  out.push('');
  if (plan.skipped.length) {
    out.push(`Skipped configs (${plan.skipped.length}): generated but invalid, will not run`);
    for (const s of plan.skipped)
      out.push(`  - ${s.label}: ${s.reasons.map(formatSkipReason).join('; ')}`);
  } else {
    out.push('Skipped configs: none');
  }
  out.push('');
  const est = estimatePlanDuration(plan, options);
  out.push(
    `Estimated duration: ≈ ${formatDuration(est.totalS)} (runs ≈ ${formatDuration(est.runsS)} ${est.method}; gaps ${formatDuration(est.gapsS)})${est.upperBoundS !== null ? `; at most ${formatDuration(est.upperBoundS)} if every run hits the timeout` : ''}`,
  );
  if (options.memory?.length) {
    out.push('');
    out.push('Memory (estimated from model metadata)');
    for (const m of options.memory) {
      const scope = m.configs?.length ? ` [${m.configs.join(', ')}]` : '';
      const verdict =
        m.freeMiB === null
          ? `free ${m.device ?? 'device'} memory unknown`
          : m.estimatedMiB <= m.freeMiB
            ? `fits: ${formatNumber(m.freeMiB)} MiB free on ${m.device ?? 'the device'}`
            : `DOES NOT FIT: only ${formatNumber(m.freeMiB)} MiB free on ${m.device ?? 'the device'}`;
      out.push(
        `  ${m.model}${scope}: ≈ ${formatNumber(m.estimatedMiB)} MiB${m.detail ? ` (${m.detail})` : ''}; ${verdict}`,
      );
    }
  }
  out.push('');
  out.push('Dry run: nothing was run. Drop --dry-run to start.');
  return `${out.join('\n')}\n`;
}

/**
 * The dry-run view as JSON (`llem run --dry-run --json`): stable keys, no formatting.
 *
 * @example
 * JSON.stringify(planToJson(plan));
 */
export function planToJson(
  plan: PlanView,
  options: RenderPlanOptions = {},
): Record<string, unknown> {
  const est = estimatePlanDuration(plan, options);
  return {
    name: plan.name,
    designHash: plan.designHash,
    execution: plan.execution,
    configs: plan.configs.map((c) => {
      const server = planServerCommands({ configs: [c] })[0];
      return {
        index: c.index,
        label: c.label,
        configHash: c.configHash,
        ...(server ? { serverArgv: server.argv, serverEnv: server.env } : {}),
      };
    }),
    runs: plan.runs.map((r) => ({
      ordinal: r.ordinal,
      key: r.key,
      configHash: r.configHash,
      label: plan.configs[r.configIndex]?.label ?? null,
      cycle: r.cycle,
    })),
    skipped: plan.skipped.map((s) => ({
      label: s.label,
      reasons: s.reasons.map(formatSkipReason),
    })),
    estimate: est,
    memory: options.memory ?? [],
  };
}
