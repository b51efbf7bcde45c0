import { resolve } from 'node:path';
import {
  canonicalJson,
  type DatasetFormat,
  DatasetSchema,
  type DatasetConfig as DomainDatasetConfig,
  mulberry32,
  type RunWorkload,
  type ShareGptDataset,
  type SyntheticDataset,
} from '@llem/domain';
import type { EngineRequest, EngineTokenizer } from '@llem/engines';
import { type Logger, noopLogger } from '@llem/resilience';
import pLimit from 'p-limit';
import { MeasurementError } from './errors';
import {
  type PlannedRequest,
  sharedBlockCount,
  syntheticPlans,
  tracePlans,
} from './internal/dataset/plans';
import { datasetError } from './internal/dataset/read';
import {
  type RenderedPrompts,
  renderApproximate,
  renderExact,
  TOKENIZE_CONCURRENCY,
  unitWords,
} from './internal/dataset/render';
import { entriesText, pickShareGpt, skippedText } from './internal/dataset/sharegpt';
import {
  type JsonlRow,
  readJsonlRows,
  readShareGptEntries,
  readTraceRows,
  type ShareGptEntries,
  type ShareGptPair,
  type TraceRow,
} from './internal/dataset/sources';
import { drawWords } from './internal/dataset/words';

export type { SyntheticDataset } from '@llem/domain';

/**
 * The dataset forms the harness accepts: `@llem/domain`'s parsed `DatasetConfig`, or what a study
 * file may say (a `.jsonl` path, `{path, column?}`, `{path, format, …}`, `{synthetic: {…}}`),
 * normalised by the domain's `DatasetSchema`.
 */
export type DatasetConfig =
  | DomainDatasetConfig
  | string
  | { path: string; column?: string | undefined }
  | { synthetic: Partial<SyntheticDataset> & { n: number; input_len: number } };

/** Seed of the trace's hash-block word streams (a trace has no seed of its own). */
const TRACE_SEED = 0x7ace_b10c;
/** Seed of the warmup stream for file datasets (their rows are never used for warmup). */
const FILE_WARMUP_SEED = 0x5eed_1e77;

/** A dataset read and checked, before any prompt is built (`loadDataset`). */
export type DatasetSource =
  | { format: 'synthetic'; file: null; spec: SyntheticDataset }
  | { format: 'jsonl'; file: string; rows: JsonlRow[] }
  | { format: 'sharegpt'; file: string; dataset: ShareGptDataset; entries: ShareGptEntries }
  | { format: 'trace'; file: string; rows: TraceRow[]; timeScale: number };

/** The parsed dataset; a malformed one is a `CONFIG` error (a config that skipped validation). */
function normalise(dataset: DatasetConfig): DomainDatasetConfig {
  const parsed = DatasetSchema.safeParse(dataset);
  if (!parsed.success)
    throw new MeasurementError(
      `dataset: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
      'CONFIG',
    );
  return parsed.data;
}

/**
 * Reads and checks a dataset (a file's rows or entries; nothing for a synthetic one). Bad data is
 * a `MeasurementError` with code `DATASET_INVALID` naming the file, the line or entry and what
 * was expected; so is a missing file, or one without a usable request. A relative path resolves
 * against `cwd`. Synchronous: files are read in chunks, whatever their size.
 *
 * @example
 * const source = loadDataset({ path: 'sharegpt.json', format: 'sharegpt' }, { cwd: studyDir });
 */
export function loadDataset(
  dataset: DatasetConfig,
  options: { cwd?: string | undefined } = {},
): DatasetSource {
  const config = normalise(dataset);
  if ('synthetic' in config) return { format: 'synthetic', file: null, spec: config.synthetic };
  const file = resolve(options.cwd ?? process.cwd(), config.path);
  if ('format' in config && config.format === 'sharegpt') {
    const entries = readShareGptEntries(file, config);
    if (entries.pairs.length === 0)
      throw datasetError(
        `${file}: no usable request: ${entriesText(entries.entries)} (${skippedText(entries)}); expected conversations whose first human turn is followed by an answer`,
      );
    return { format: 'sharegpt', file, dataset: config, entries };
  }
  if ('format' in config && config.format === 'trace')
    return {
      format: 'trace',
      file,
      rows: readTraceRows(file, config),
      timeScale: config.time_scale,
    };
  return {
    format: 'jsonl',
    file,
    rows: readJsonlRows(file, config as Extract<DomainDatasetConfig, { column: string }>),
  };
}

/** A workload ready to run, and what the result says about it. */
export interface Workload {
  format: 'synthetic' | DatasetFormat;
  requests: EngineRequest[];
  /** Each request's prompt length in tokens: counted by the tokenizer, or estimated. */
  inputLengths: number[];
  lengths: 'exact' | 'approximate';
  /** The tokenizer that counted, or why the lengths are approximate. */
  lengthSource: string;
  /** What `result.workload` adds for this format (conversations, prefix, entries, trace). */
  facts: Pick<RunWorkload, 'conversations' | 'prefix' | 'entries' | 'trace'>;
  /** What warmup prompts are drawn like. */
  warmup: { seed: number; lengths: Array<[number, number]> };
}

export interface BuildWorkloadOptions {
  /** The config's `max_output_tokens`: caps every request's output length. */
  maxOutputTokens: number;
  /** The engine's tokenizer for exact lengths; `null` builds approximate lengths. */
  tokenizer?: EngineTokenizer | null;
  /** Why there is no tokenizer, for `lengthSource`. */
  approximateReason?: string;
  /** Told when a tokenizer fails midway (the workload then falls back to approximate lengths). */
  logger?: Logger;
}

/** How many tokens a file prompt has, without a tokenizer: about 4 characters per token. */
export function estimateTokens(text: string): number {
  return Math.max(1, Math.round(text.length / 4));
}

/**
 * The warmup stream's seed for a synthetic dataset seed: a different mulberry32 stream (not the
 * measured one shifted by a few draws, which `seed + k × 0x6d2b79f5` would be).
 */
export function warmupSeed(seed: number): number {
  return (seed ^ 0x9e3779b9) >>> 0;
}

/**
 * The requests of a dataset. With the engine's tokenizer, generated prompts (synthetic, trace)
 * are built to exactly their planned number of tokens and file prompts (jsonl, ShareGPT) are
 * counted; without one, generated prompts take a word per token and file prompts are estimated
 * at 4 characters per token, and the workload says its lengths are approximate. A tokenizer that
 * fails midway is logged and the workload falls back to approximate lengths.
 *
 * @example
 * const workload = await buildWorkload(loadDataset(config.dataset), { maxOutputTokens: 128 });
 * await engine.run(workload.requests);
 */
export async function buildWorkload(
  source: DatasetSource,
  options: BuildWorkloadOptions,
): Promise<Workload> {
  const tokenizer = options.tokenizer ?? null;
  if (tokenizer !== null) {
    try {
      return await buildWith(source, options.maxOutputTokens, tokenizer);
    } catch (error) {
      if (error instanceof MeasurementError) throw error;
      const reason = `the tokenizer failed: ${(error as Error).message}`;
      (options.logger ?? noopLogger).warn(
        `dataset: ${reason}; building the workload with approximate lengths`,
      );
      return buildWith(source, options.maxOutputTokens, null, reason);
    }
  }
  return buildWith(
    source,
    options.maxOutputTokens,
    null,
    options.approximateReason ?? 'no tokenizer',
  );
}

/** How a workload's lengths are known: the tokenizer, or why they are estimated. */
interface Lengths {
  maxOutputTokens: number;
  tokenizer: EngineTokenizer | null;
  /** Why there is no tokenizer (for `lengthSource`). */
  reason: string;
  /** A text's length in tokens: counted, or estimated at 4 characters a token. */
  count: (text: string) => Promise<number>;
}

function buildWith(
  source: DatasetSource,
  maxOutputTokens: number,
  tokenizer: EngineTokenizer | null,
  reason = '',
): Promise<Workload> {
  const lengths: Lengths = {
    maxOutputTokens,
    tokenizer,
    reason,
    count: tokenizer
      ? async (text) => (await tokenizer.tokenize(text)).length
      : async (text) => estimateTokens(text),
  };
  switch (source.format) {
    case 'synthetic':
      return syntheticWorkload(source.spec, lengths);
    case 'trace':
      return traceWorkload(source, lengths);
    case 'jsonl':
      return jsonlWorkload(source, lengths);
    case 'sharegpt':
      return shareGptWorkload(source, lengths);
  }
}

async function syntheticWorkload(spec: SyntheticDataset, lengths: Lengths): Promise<Workload> {
  const planned = syntheticPlans(spec, lengths.maxOutputTokens);
  const rendered = await renderPlanned(planned, spec.seed, lengths.tokenizer, lengths.reason);
  return {
    ...generatedWorkload('synthetic', planned, rendered),
    facts: {
      ...(spec.turns !== undefined ? { conversations: { count: spec.n, turns: spec.turns } } : {}),
      ...(spec.prefix_len !== undefined
        ? { prefix: { tokens: spec.prefix_len, groups: spec.prefix_groups ?? 1 } }
        : {}),
    },
    warmup: {
      seed: warmupSeed(spec.seed),
      lengths: [[spec.input_len, Math.min(spec.output_len, lengths.maxOutputTokens)]],
    },
  };
}

async function traceWorkload(
  source: Extract<DatasetSource, { format: 'trace' }>,
  lengths: Lengths,
): Promise<Workload> {
  const planned = tracePlans(source.rows, source.timeScale, lengths.maxOutputTokens);
  const rendered = await renderPlanned(planned, TRACE_SEED, lengths.tokenizer, lengths.reason);
  const workload = generatedWorkload('trace', planned, rendered);
  const last = planned[planned.length - 1]?.sendAtMs ?? 0;
  return {
    ...workload,
    facts: {
      trace: {
        durationS: last / 1000,
        timeScale: source.timeScale,
        sharedBlocks: sharedBlockCount(source.rows),
      },
    },
    warmup: fileWarmup(workload),
  };
}

/** `lengths` and `lengthSource` of a file's prompts: counted, or 4 characters a token. */
function fileLengths(lengths: Lengths): Pick<Workload, 'lengths' | 'lengthSource'> {
  return lengths.tokenizer
    ? { lengths: 'exact', lengthSource: lengths.tokenizer.source }
    : {
        lengths: 'approximate',
        lengthSource: `approximate: 4 characters ≈ a token (${lengths.reason})`,
      };
}

async function jsonlWorkload(
  source: Extract<DatasetSource, { format: 'jsonl' }>,
  lengths: Lengths,
): Promise<Workload> {
  const limit = pLimit(TOKENIZE_CONCURRENCY);
  const inputLengths = await Promise.all(
    source.rows.map((row) => limit(() => lengths.count(row.prompt))),
  );
  const { maxOutputTokens } = lengths;
  const requests = source.rows.map((row, id) => ({
    id,
    prompt: row.prompt,
    maxOutputTokens: Math.min(row.outputLen ?? maxOutputTokens, maxOutputTokens),
  }));
  const workload = { format: 'jsonl' as const, requests, inputLengths, ...fileLengths(lengths) };
  return { ...workload, facts: {}, warmup: fileWarmup(workload) };
}

async function shareGptWorkload(
  source: Extract<DatasetSource, { format: 'sharegpt' }>,
  lengths: Lengths,
): Promise<Workload> {
  const limit = pLimit(TOKENIZE_CONCURRENCY);
  const measure = (pairs: readonly ShareGptPair[]) =>
    Promise.all(
      pairs.map((p) =>
        limit(
          async (): Promise<[number, number]> => [
            await lengths.count(p.prompt),
            await lengths.count(p.answer),
          ],
        ),
      ),
    );
  const { entries } = source;
  const { picked, filtered } = await pickShareGpt(source.file, entries, source.dataset, measure);
  const requests = picked.map((p, id) => ({
    id,
    prompt: p.pair.prompt,
    maxOutputTokens: Math.max(1, Math.min(p.answerLength, lengths.maxOutputTokens)),
  }));
  const inputLengths = picked.map((p) => p.inputLength);
  const workload = { format: 'sharegpt' as const, requests, inputLengths, ...fileLengths(lengths) };
  return {
    ...workload,
    facts: {
      entries: {
        total: entries.entries,
        usable: entries.pairs.length,
        used: picked.length,
        skipped: Object.values(entries.skipped).reduce((a, b) => a + (b ?? 0), 0),
        skippedByReason: { ...entries.skipped } as Record<string, number>,
        filtered,
      },
    },
    warmup: fileWarmup(workload),
  };
}

/** Generated prompts: fitted to the tokenizer when there is one and it knows the words. */
async function renderPlanned(
  planned: readonly PlannedRequest[],
  seed: number,
  tokenizer: EngineTokenizer | null,
  reason: string,
): Promise<RenderedPrompts & { lengthSource: string; exact: boolean }> {
  const plans = planned.map((p) => p.plan);
  if (tokenizer !== null) {
    const vocabulary = await unitWords(tokenizer);
    if (vocabulary.length > 0) {
      const rendered = await renderExact(plans, seed, tokenizer, vocabulary);
      return {
        ...rendered,
        exact: rendered.missed === 0,
        lengthSource:
          rendered.missed === 0
            ? tokenizer.source
            : `${tokenizer.source}; ${rendered.missed} of ${plans.length} prompts could not be built to their exact length`,
      };
    }
    reason = `${tokenizer.source} splits every generator word into several tokens`;
  }
  return {
    ...renderApproximate(plans, seed),
    exact: false,
    lengthSource: `approximate: a generated word ≈ a token (${reason})`,
  };
}

function generatedWorkload(
  format: 'synthetic' | 'trace',
  planned: readonly PlannedRequest[],
  rendered: RenderedPrompts & { lengthSource: string; exact: boolean },
): Omit<Workload, 'facts' | 'warmup'> {
  const requests = planned.map((p, id): EngineRequest => {
    const request: EngineRequest = {
      id,
      prompt: rendered.prompts[id] as string,
      maxOutputTokens: p.maxOutputTokens,
    };
    if (p.after !== undefined) request.after = p.after;
    if (p.sendAtMs !== undefined) request.sendAtMs = p.sendAtMs;
    return request;
  });
  return {
    format,
    requests,
    inputLengths: rendered.lengths,
    lengths: rendered.exact ? 'exact' : 'approximate',
    lengthSource: rendered.lengthSource,
  };
}

/** Warmup for a file or trace: the measured requests' (input, output) lengths, from its own seed. */
function fileWarmup(workload: Pick<Workload, 'requests' | 'inputLengths'>): Workload['warmup'] {
  return {
    seed: FILE_WARMUP_SEED,
    lengths: workload.requests.map((r, i) => [
      workload.inputLengths[i] as number,
      r.maxOutputTokens,
    ]),
  };
}

/**
 * Warmup requests: the same shape and lengths as the measured ones, never one of them, so a
 * server or engine that caches prompts is not primed with what is about to be measured (the
 * first measured requests would be cache hits). A synthetic dataset draws from its own seed
 * stream ({@link warmupSeed}) at `input_len` words (no shared prefix, one turn); a file or trace
 * gets generated prompts whose (input, output) lengths are drawn from the measured requests', so
 * no row of the file is used. A draw that equals a measured prompt is drawn again. They are sent
 * at once, in no particular order. Deterministic for the same workload.
 *
 * @example
 * const warm = buildWarmupRequests(workload, 2);
 */
export function buildWarmupRequests(workload: Workload, count: number): EngineRequest[] {
  if (count <= 0 || workload.warmup.lengths.length === 0) return [];
  const exclude = new Set(workload.requests.map((r) => r.prompt));
  const random = mulberry32(workload.warmup.seed);
  const { lengths } = workload.warmup;
  const warm: EngineRequest[] = [];
  // Collisions need prompts of a word or two; the bound only stops a hopeless search.
  for (let draws = 0; warm.length < count; draws++) {
    if (draws >= count * 1000) {
      const shortest = Math.min(...lengths.map(([input]) => input));
      throw new MeasurementError(
        `dataset: cannot generate ${count} warmup prompts that differ from every measured prompt (prompts of ${shortest} token(s) leave too few choices); lengthen the prompts or set warmup.n: 0`,
        'DATASET',
      );
    }
    // One length (synthetic): no draw, so the warmup prompts are exactly the synthetic prompts
    // of `warmupSeed(seed)`, minus any that are measured.
    const [input, output] =
      lengths.length === 1
        ? (lengths[0] as [number, number])
        : (lengths[Math.floor(random() * lengths.length)] as [number, number]);
    const prompt = drawWords(random, input).join(' ');
    if (!exclude.has(prompt)) warm.push({ id: warm.length, prompt, maxOutputTokens: output });
  }
  return warm;
}

/**
 * The prompts of a synthetic dataset, a word per token (what an engine without a tokenizer is
 * sent): deterministic for the seed on any machine. With `turns`, conversations turn-major.
 *
 * @example
 * syntheticPrompts({ n: 2, input_len: 4, seed: 42 }); // ['… … … …', '… … … …']
 */
export function syntheticPrompts(
  spec: Partial<SyntheticDataset> & { n: number; input_len: number },
): string[] {
  const full: SyntheticDataset = { output_len: 32, seed: 0, ...spec };
  return renderApproximate(
    syntheticPlans(full, full.output_len).map((p) => p.plan),
    full.seed,
  ).prompts;
}

/**
 * Turns the config's dataset into engine requests with approximate lengths (no tokenizer): the
 * synthetic `output_len`, a row's output length or a ShareGPT answer's, capped by
 * `max_output_tokens`. A relative path resolves against `cwd`.
 *
 * @example
 * const requests = await buildRequests({ synthetic: { n: 4, input_len: 16 } }, 32);
 */
export async function buildRequests(
  dataset: DatasetConfig,
  maxOutputTokens: number,
  cwd: string = process.cwd(),
): Promise<EngineRequest[]> {
  return (await buildWorkload(loadDataset(dataset, { cwd }), { maxOutputTokens })).requests;
}

/** What a dataset amounts to, without building prompts (`summariseDataset`). */
export interface DatasetSummary {
  format: 'synthetic' | DatasetFormat;
  /** The file read, absolute; `null` for synthetic prompts. */
  file: string | null;
  /** Measured requests (estimated lengths decide a ShareGPT file's length filters). */
  requests: number;
  /** A trace's span in seconds (its last send time, after `time_scale`); `null` otherwise. */
  durationS: number | null;
  /** One line for a console, e.g. `sharegpt sg.json: 812 requests (1000 entries, …)`. */
  description: string;
}

/**
 * Reads and checks a dataset and says what it holds: the number of requests it makes and a
 * trace's span. Throws what `loadDataset` throws (`DATASET_INVALID` for a missing file, bad data
 * or no usable request). What `llem config validate`, `--dry-run` and the run timeout use.
 *
 * @example
 * summariseDataset(config.dataset, { cwd, maxOutputTokens: config.max_output_tokens }).requests;
 */
export async function summariseDataset(
  dataset: DatasetConfig,
  options: { cwd?: string | undefined } = {},
): Promise<DatasetSummary> {
  return summariseSource(loadDataset(dataset, options));
}

/** {@link summariseDataset} for a source already read. */
export async function summariseSource(source: DatasetSource): Promise<DatasetSummary> {
  switch (source.format) {
    case 'synthetic': {
      const { n, turns } = source.spec;
      const requests = n * (turns ?? 1);
      return {
        format: 'synthetic',
        file: null,
        requests,
        durationS: null,
        description: `synthetic: ${count(requests, 'request')}${turns ? ` (${n} conversations of ${turns} turns)` : ''}`,
      };
    }
    case 'jsonl':
      return {
        format: 'jsonl',
        file: source.file,
        requests: source.rows.length,
        durationS: null,
        description: `jsonl ${source.file}: ${count(source.rows.length, 'request')}`,
      };
    case 'trace': {
      const last = source.rows[source.rows.length - 1]?.timestampMs ?? 0;
      const durationS = (last * source.timeScale) / 1000;
      // Timestamps count from the trace's start, not from its first request: a slice cut from a
      // longer trace keeps the window idle until its first request, which the user should see.
      const firstS = ((source.rows[0]?.timestampMs ?? 0) * source.timeScale) / 1000;
      const idle =
        firstS >= 1
          ? `; the first is sent at ${firstS.toFixed(1)} s and the window is idle until then (timestamps count from the trace's start)`
          : '';
      return {
        format: 'trace',
        file: source.file,
        requests: source.rows.length,
        durationS,
        description: `trace ${source.file}: ${count(source.rows.length, 'request')} over ${durationS.toFixed(1)} s (time_scale ${source.timeScale})${idle}`,
      };
    }
    case 'sharegpt': {
      // Lengths are guessed here: the length filters are applied exactly once the engine can
      // tokenize, so a shortfall they cause is reported, not an error (pickShareGpt).
      const { picked, filtered } = await pickShareGpt(
        source.file,
        source.entries,
        source.dataset,
        async (pairs) => pairs.map((p) => [estimateTokens(p.prompt), estimateTokens(p.answer)]),
        { estimated: true },
      );
      const wanted = source.dataset.n ?? source.entries.pairs.length;
      const short =
        picked.length < wanted ? '; lengths are counted exactly when the run starts' : '';
      return {
        format: 'sharegpt',
        file: source.file,
        requests: picked.length,
        durationS: null,
        description: `sharegpt ${source.file}: ${count(picked.length, 'request')} (${entriesText(source.entries.entries)}, ${skippedText(source.entries)}${filtered > 0 ? `, ${filtered} outside the length filters at ~4 characters a token${short}` : ''})`,
      };
    }
  }
}

/**
 * How many requests a dataset makes at most and a trace's span, synchronously (the runner's
 * timeout callback is synchronous): a ShareGPT file counts `n`, or every usable entry, before
 * its length filters.
 *
 * @example
 * datasetSize('prompts.jsonl', { cwd }); // { requests: 250, durationS: null }
 */
export function datasetSize(
  dataset: DatasetConfig,
  options: { cwd?: string | undefined } = {},
): { requests: number; durationS: number | null } {
  const source = loadDataset(dataset, options);
  switch (source.format) {
    case 'synthetic':
      return { requests: source.spec.n * (source.spec.turns ?? 1), durationS: null };
    case 'jsonl':
      return { requests: source.rows.length, durationS: null };
    case 'trace': {
      const last = source.rows[source.rows.length - 1]?.timestampMs ?? 0;
      return { requests: source.rows.length, durationS: (last * source.timeScale) / 1000 };
    }
    case 'sharegpt':
      return {
        requests: Math.min(
          source.dataset.n ?? Number.POSITIVE_INFINITY,
          source.entries.pairs.length,
        ),
        durationS: null,
      };
  }
}

/** A dataset of a study and the configs that use it (`checkDatasets`). */
export interface StudyDataset {
  /** Labels of the configs that use it. */
  labels: string[];
  summary: DatasetSummary;
}

/**
 * Reads and checks every distinct file dataset of a study's configs (each once): what
 * `llem config validate`, `llem run --dry-run` and `llem run` do before anything runs. A bad one
 * throws `DATASET_INVALID` (exit 2) naming the study file, the configs that use it, and the
 * dataset's own problem (file, line or entry, what was expected).
 *
 * @example
 * const datasets = await checkDatasets(plan.configs, { file: 'study.yaml', cwd: baseDir });
 */
export async function checkDatasets(
  configs: ReadonlyArray<{ label: string; config: { dataset: DatasetConfig } }>,
  options: { file: string; cwd: string },
): Promise<StudyDataset[]> {
  const groups = new Map<string, { dataset: DatasetConfig; labels: string[] }>();
  for (const { label, config } of configs) {
    if (typeof config.dataset === 'object' && 'synthetic' in config.dataset) continue;
    const key = canonicalJson(config.dataset);
    const group = groups.get(key);
    if (group) group.labels.push(label);
    else groups.set(key, { dataset: config.dataset, labels: [label] });
  }
  const checked: StudyDataset[] = [];
  for (const { dataset, labels } of groups.values()) {
    try {
      checked.push({ labels, summary: await summariseDataset(dataset, { cwd: options.cwd }) });
    } catch (error) {
      if (!(error instanceof MeasurementError)) throw error;
      const which =
        labels.length === configs.length && configs.length > 1
          ? ' (every config)'
          : configs.length > 1
            ? ` (${labels.join(', ')})`
            : '';
      throw new MeasurementError(`${options.file}: dataset${which}: ${error.message}`, error.code, {
        cause: error,
      });
    }
  }
  return checked;
}

/** `1 request`, `2 requests`. */
function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
