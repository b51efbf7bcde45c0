import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import {
  existsSync,
  linkSync,
  mkdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ManifestEntry, ManifestError, ResidualCheck } from '@llem/domain';
import { type CleanupRegistry, type Logger, noopLogger, safeCleanup } from '@llem/resilience';
import { type Clock, type SleepFn, systemClock, systemSleep } from './clock';
import { StudyDesignChangedError, StudyError } from './errors';
import type { Eta, RunEndStatus, StudyEventName, StudyEvents, StudySummary } from './events';
import { writeJsonAtomicSync } from './internal/atomic';
import { type ChildOutcome, runChild, type StopRequests } from './internal/child';
import { ManifestStore, pendingEntry } from './manifest-store';
import { type RunnerPlan, STUDY_FILE, type StoredStudy } from './plan';
import {
  DEFAULT_RESIDUAL_THRESHOLD_MB,
  nvmlResidualCheck,
  type ResidualCheckFn,
  skippedResidualCheck,
} from './residual';
import { createStudyDir } from './study-dir';
import { errorFileFor, TASK_FILE_ENV, type WorkerTask } from './task';
import { runTimeoutS } from './timeout';

/** Default grace between SIGTERM and SIGKILL when a child must stop. */
export const DEFAULT_GRACE_MS = 5_000;

const LOCK_FILE = '.runner.lock';
const INTERRUPTED_BEFORE_FORK = Symbol('interrupted before fork');
const RUNS_DIR = 'runs';

/** The version written into manifests and tasks (this package's own). */
export const STUDY_TOOL_VERSION: string = (
  createRequire(import.meta.url)('../package.json') as { version: string }
).version;

/** What `afterRun` is told about the run that just ended. */
export interface FinishedRunInfo {
  key: string;
  status: RunEndStatus;
  resultFile: string | null;
}

interface CommonOptions {
  /** The worker module to fork for each run (a path or `file:` URL); see `defineWorker`. */
  workerModule: string | URL;
  /** The Node executable that runs each child. Default `process.execPath`. */
  execPath?: string;
  /** Node flags for the child, e.g. `['--import', 'tsx']` to run a TypeScript worker. Default `[]`. */
  execArgv?: readonly string[];
  /** The child's environment (`LLEM_TASK_FILE` is added). Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Resolves `outputDir` and is the child's working directory. Default `process.cwd()`. */
  cwd?: string;
  /** Default `noopLogger`: the runner never prints. */
  logger?: Logger;
  /** Default: `performance.now()` and `new Date()`. */
  clock?: Clock;
  /** Default: `setTimeout`. Inject one that advances a fake clock to test gaps instantly. */
  sleep?: SleepFn;
  /** Default: `@llem/nvml`'s `checkGpuMemoryResidualAll`. */
  residualCheck?: ResidualCheckFn;
  /** Run (`runAll`) after every run, safely: a failing cleanup is logged, never fatal. */
  cleanups?: CleanupRegistry;
  /** Called after every run (after `cleanups`), safely. */
  afterRun?: (run: FinishedRunInfo) => unknown;
  /** Between SIGTERM and SIGKILL on timeout or Ctrl-C. Default 5000. */
  graceMs?: number;
  /** Aborting it is a first Ctrl-C (`interrupt()`). */
  signal?: AbortSignal;
  /** Written into the manifest and tasks. Default: this package's version. */
  toolVersion?: string;
}

/** Start a new study: a fresh `<outputDir>/<name>_<UTC timestamp>/` directory. */
export interface NewStudyOptions<Config> extends CommonOptions {
  plan: RunnerPlan<Config>;
  /** Default `./results` (relative to `cwd`). */
  outputDir?: string;
}

/** Continue a study in an existing directory (`llem run --resume DIR`). */
export interface ResumeStudyOptions<Config> extends CommonOptions {
  resume: string;
  /**
   * The study as it is now (e.g. the study file read again). When its design hash differs from
   * the one the study started with, the runner throws `StudyDesignChangedError` unless `force`.
   * Default: the plan stored in the study directory.
   */
  plan?: RunnerPlan<Config>;
  force?: boolean;
}

export type StudyRunnerOptions<Config = unknown> =
  | NewStudyOptions<Config>
  | ResumeStudyOptions<Config>;

type Listener<E extends StudyEventName> = (event: StudyEvents[E]) => void;

interface Prepared<Config> {
  studyDir: string;
  plan: RunnerPlan<Config>;
  store: ManifestStore;
  resumed: boolean;
  recovered: number;
}

/**
 * Runs every scheduled run of a study, each in its own child process, and keeps
 * `manifest.json` true at every instant so a study survives crashes, hangs, Ctrl-C and
 * `kill -9` and can be resumed without measuring anything twice.
 *
 * Per run, in order: gap → mark running → residual GPU-memory check → fork the worker → wait
 * (timeout: SIGTERM, grace, SIGKILL) → classify → mark completed/failed → cleanups. A failed run
 * never stops the study. The runner never prints: it emits typed events.
 *
 * @example
 * const runner = new StudyRunner({ plan, outputDir: 'results', workerModule: '@llem/measure/worker' });
 * runner.on('run-finished', (e) => console.error(`${e.index}/${e.total} ${e.label}: ${e.status}`));
 * const stop = handleSigint(runner);
 * const summary = await runner.run();   // { status: 'completed' | 'interrupted', studyDir, counts }
 * stop();
 */
export class StudyRunner<Config = unknown> {
  readonly #options: StudyRunnerOptions<Config>;
  readonly #emitter = new EventEmitter();
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #sleep: SleepFn;
  readonly #graceMs: number;
  readonly #toolVersion: string;
  /** 0: running; 1: stop after the current child ends cleanly; 2: kill now. */
  #interruptLevel: 0 | 1 | 2 = 0;
  readonly #interruptAbort = new AbortController();
  readonly #stopListeners = new Set<(mode: 'graceful' | 'now') => void>();
  #skipGap: (() => void) | null = null;
  #started = false;
  #studyDir: string | null = null;
  /** `.jsonl` prompt counts for the derived timeout: each file read (and warned about) once. */
  readonly #promptCounts = new Map<string, number | null>();

  constructor(options: StudyRunnerOptions<Config>) {
    this.#options = options;
    this.#logger = options.logger ?? noopLogger;
    this.#clock = options.clock ?? systemClock;
    this.#sleep = options.sleep ?? systemSleep;
    this.#graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
    this.#toolVersion = options.toolVersion ?? STUDY_TOOL_VERSION;
    if (options.signal) {
      if (options.signal.aborted) this.interrupt();
      else options.signal.addEventListener('abort', () => this.interrupt(), { once: true });
    }
  }

  /** The study directory, once `run()` has created or opened it. */
  get studyDir(): string | null {
    return this.#studyDir;
  }

  on<E extends StudyEventName>(event: E, listener: Listener<E>): this {
    this.#emitter.on(event, listener);
    return this;
  }

  off<E extends StudyEventName>(event: E, listener: Listener<E>): this {
    this.#emitter.off(event, listener);
    return this;
  }

  /**
   * First call: finish by cleanly ending the current child (SIGTERM, grace, SIGKILL), mark the
   * study `interrupted` and resolve. Second call: kill the child at once.
   */
  interrupt(): void {
    if (this.#interruptLevel >= 2) return;
    this.#interruptLevel = this.#interruptLevel === 0 ? 1 : 2;
    const mode = this.#interruptLevel === 1 ? 'graceful' : 'now';
    this.#logger.info(
      mode === 'graceful'
        ? 'interrupt: stopping after the current run ends cleanly'
        : 'interrupt: killing the current run now',
    );
    this.#interruptAbort.abort();
    for (const listener of [...this.#stopListeners]) listener(mode);
  }

  /** End the current gap early (the CLI wires Enter to this). A no-op outside a gap. */
  skipGap(): void {
    this.#skipGap?.();
  }

  /** Run (or resume) the study. Resolves once every run has ended or the study was interrupted. */
  async run(): Promise<StudySummary> {
    if (this.#started) throw new StudyError('StudyRunner.run() was already called');
    this.#started = true;
    const startedAt = this.#clock.now();
    // #prepare takes the study's lock before it changes anything; released below.
    const prepared = this.#prepare();
    const { studyDir, plan, store } = prepared;
    this.#studyDir = studyDir;
    try {
      store.setStatus('running');
      // In plan order; a completed run no longer scheduled (forced resume) stays in the
      // manifest but is not run.
      const byKey = new Map(store.manifest.entries.map((e) => [e.key, e]));
      const todo = plan.runs
        .map((r) => byKey.get(r.key))
        .filter((e): e is ManifestEntry => e !== undefined && e.status !== 'completed');
      this.#emit('study-started', {
        studyDir,
        studyName: plan.name,
        total: store.manifest.counts.total,
        toRun: todo.length,
        resumed: prepared.resumed,
        recovered: prepared.recovered,
      });
      await this.#runAll(prepared, todo);
      // An interrupt that came after the last run ended changed nothing: the study is complete.
      const unfinished = store.manifest.counts.pending + store.manifest.counts.running;
      const status = this.#interruptLevel > 0 && unfinished > 0 ? 'interrupted' : 'completed';
      store.setStatus(status);
      const summary: StudySummary = {
        status,
        studyDir,
        counts: store.manifest.counts,
        durationMs: this.#clock.now() - startedAt,
      };
      this.#emit('study-finished', summary);
      return summary;
    } finally {
      releaseLock(studyDir);
    }
  }

  #prepare(): Prepared<Config> {
    const options = this.#options;
    const now = (): Date => this.#clock.date();
    if (!('resume' in options)) {
      const studyDir = createStudyDir({
        outputDir: options.outputDir,
        name: options.plan.name,
        now: now(),
        cwd: options.cwd,
      });
      mkdirSync(join(studyDir, RUNS_DIR), { recursive: true });
      acquireLock(studyDir);
      const stored: StoredStudy<Config> = {
        schemaVersion: 1,
        toolVersion: this.#toolVersion,
        createdAt: now().toISOString(),
        plan: options.plan,
      };
      writeJsonAtomicSync(join(studyDir, STUDY_FILE), stored);
      const store = ManifestStore.create(
        studyDir,
        {
          studyName: options.plan.name,
          designHash: options.plan.designHash,
          toolVersion: this.#toolVersion,
          entries: manifestEntriesFor(options.plan),
        },
        now,
      );
      return { studyDir, plan: options.plan, store, resumed: false, recovered: 0 };
    }

    const studyDir = resolve(options.cwd ?? process.cwd(), options.resume);
    // Validate before locking: a directory that is not a study gets no lock file.
    ManifestStore.load(studyDir, now);
    acquireLock(studyDir);
    try {
      return this.#prepareResume(studyDir, options, now);
    } catch (error) {
      releaseLock(studyDir);
      throw error;
    }
  }

  #prepareResume(
    studyDir: string,
    options: ResumeStudyOptions<Config>,
    now: () => Date,
  ): Prepared<Config> {
    // Loaded again under the lock: another runner may have written it since.
    const store = ManifestStore.load(studyDir, now);
    const stored = readStoredStudy<Config>(studyDir);
    const manifest = store.manifest;
    const plan = options.plan ?? stored.plan;
    const changes = describeDesignChange(stored.plan, manifest.entries, plan);
    const changed = plan.designHash !== manifest.designHash || changes !== null;
    if (changed && !options.force) {
      throw new StudyDesignChangedError(
        studyDir,
        manifest.designHash,
        plan.designHash,
        changes ?? undefined,
      );
    }
    mkdirSync(join(studyDir, RUNS_DIR), { recursive: true });
    let recovered = 0;
    for (const entry of manifest.entries) {
      if (entry.status === 'completed') continue;
      const resultFile = resultPathFor(studyDir, entry.key);
      if (existsSync(resultFile)) {
        // The child finished and renamed its result into place, but the runner died before
        // recording it: keep it rather than measure it again.
        recovered += 1;
        store.updateEntry(entry.key, {
          status: 'completed',
          resultFile: relativeResult(entry.key),
          error: null,
          endedAt: entry.endedAt ?? statSync(resultFile).mtime.toISOString(),
        });
        this.#logger.info(`recovered the result of ${entry.key} written before the runner stopped`);
      } else if (entry.status === 'running') {
        store.updateEntry(entry.key, {
          status: 'pending',
          error: { type: 'interrupted', message: 'the runner stopped while this run was running' },
        });
      }
    }
    if (changed) {
      // --force: the new plan is the study from now on. Its runs missing from the manifest are
      // added as pending; runs it no longer schedules are dropped unless they completed (a
      // measured result is never thrown away: it stays in the manifest and is not run again).
      const merged = mergedEntries(store.manifest.entries, plan);
      store.replaceEntries(merged.entries, plan.designHash);
      writeJsonAtomicSync(join(studyDir, STUDY_FILE), { ...stored, plan });
      this.#logger.warn(
        `resuming ${studyDir} with the new design because of --force ` +
          `(${manifest.designHash} → ${plan.designHash}${changes ? `; ${changes}` : ''}): ` +
          `${merged.added} runs added, ${merged.dropped} not-completed runs dropped, ` +
          `${merged.keptUnscheduled} completed runs no longer scheduled kept`,
      );
    }
    return { studyDir, plan, store, resumed: true, recovered };
  }

  async #runAll(prepared: Prepared<Config>, todo: ManifestEntry[]): Promise<void> {
    const { plan } = prepared;
    const runsByKey = new Map(plan.runs.map((r) => [r.key, r]));
    const configsByIndex = new Map(plan.configs.map((c) => [c.index, c]));
    const gaps = gapSettings(plan);
    const durations: number[] = [];
    let previousCycle: number | null = null;

    for (const [i, entry] of todo.entries()) {
      if (this.#interruptLevel > 0) break;
      const run = runsByKey.get(entry.key);
      const planned = run ? configsByIndex.get(run.configIndex) : undefined;
      if (!run || !planned) {
        throw new StudyError(`run ${entry.key} is in the manifest but not in the study plan`);
      }
      if (previousCycle !== null) {
        const gap = await this.#gap(gaps, previousCycle !== run.cycle);
        if (gap === 'interrupted') break;
      }
      previousCycle = run.cycle;

      const index = i + 1;
      const started = this.#clock.now();
      const outcome = await this.#runOne(prepared, entry, run, planned, index, todo.length);
      const durationMs = this.#clock.now() - started;
      if (outcome !== 'interrupted') durations.push(durationMs);

      const remaining = todo.slice(i + 1);
      const eta: Eta = {
        remainingRuns: remaining.length,
        remainingMs:
          durations.length === 0
            ? null
            : (durations.reduce((a, b) => a + b, 0) / durations.length) * remaining.length +
              remainingGapMs(remaining, runsByKey, gaps, run.cycle),
      };
      const after = prepared.store.entry(entry.key);
      this.#emit('run-finished', {
        key: entry.key,
        label: planned.label,
        index,
        total: todo.length,
        status: outcome,
        durationMs,
        error: after?.error ?? null,
        eta,
      });
      await this.#cleanup(prepared, entry.key, outcome);
    }
  }

  /** Returns how the run ended; never throws for anything the child does. */
  async #runOne(
    prepared: Prepared<Config>,
    entry: ManifestEntry,
    run: RunnerPlan<Config>['runs'][number],
    planned: RunnerPlan<Config>['configs'][number],
    index: number,
    total: number,
  ): Promise<RunEndStatus> {
    const { studyDir, plan, store } = prepared;
    const resultFile = resultPathFor(studyDir, entry.key);
    // A previous attempt's error file must not explain this attempt's failure.
    rmSync(errorFileFor(resultFile), { force: true });
    const attempt = entry.attempts + 1;
    store.updateEntry(entry.key, {
      status: 'running',
      attempts: attempt,
      startedAt: this.#clock.date().toISOString(),
      endedAt: null,
      error: null,
      resultFile: null,
    });

    const thresholdMb =
      plan.execution.residual_memory_threshold_mb ?? DEFAULT_RESIDUAL_THRESHOLD_MB;
    const residualCheck = await this.#residual(planned.config, thresholdMb);

    const timeoutS = runTimeoutS(plan.execution, planned.config, {
      cwd: this.#options.cwd ?? process.cwd(),
      logger: this.#logger,
      promptCounts: this.#promptCounts,
    });
    const task: WorkerTask<Config> = {
      key: entry.key,
      configHash: run.configHash,
      cycle: run.cycle,
      copy: run.copy,
      config: planned.config,
      studyDir,
      resultFile,
      timeseriesFile: join(studyDir, RUNS_DIR, `${entry.key}.timeseries.jsonl`),
      residualCheck,
      toolVersion: this.#toolVersion,
      attempt,
    };
    const taskFile = join(studyDir, RUNS_DIR, `${entry.key}.task.json`);
    // Complete before the fork, and rewritten on every attempt: no fsync needed.
    writeFileSync(taskFile, JSON.stringify(task));

    const options = this.#options;
    const stopRequests: StopRequests = {
      subscribe: (listener) => {
        this.#stopListeners.add(listener);
        return () => this.#stopListeners.delete(listener);
      },
    };
    let outcome: ChildOutcome;
    try {
      // A Ctrl-C during the residual check: do not start a child only to stop it.
      if (this.#interruptLevel > 0) throw INTERRUPTED_BEFORE_FORK;
      outcome = await runChild({
        workerModule: modulePath(options.workerModule),
        execArgv: options.execArgv ?? [],
        ...(options.execPath === undefined ? {} : { execPath: options.execPath }),
        env: { ...(options.env ?? process.env), [TASK_FILE_ENV]: taskFile },
        cwd: options.cwd ?? process.cwd(),
        logFile: join(studyDir, RUNS_DIR, `${entry.key}.log`),
        resultFile,
        timeoutMs: timeoutS * 1000,
        graceMs: this.#graceMs,
        stopRequests,
        onSpawn: (pid) =>
          this.#emit('run-started', {
            key: entry.key,
            label: planned.label,
            configHash: run.configHash,
            cycle: run.cycle,
            index,
            total,
            attempt,
            timeoutS,
            pid,
            residualCheck,
          }),
      });
    } catch (error) {
      if (error === INTERRUPTED_BEFORE_FORK) {
        outcome = { kind: 'stopped', exitCode: null, signal: null };
      } else {
        // fork itself failed (bad module path, EAGAIN): a failed run, not a failed study.
        const message = error instanceof Error ? error.message : String(error);
        outcome = {
          kind: 'failed',
          error: { type: 'spawn', message: `cannot start the worker: ${message}` },
          exitCode: null,
          signal: null,
        };
      }
    }

    const endedAt = this.#clock.date().toISOString();
    if (outcome.kind === 'completed') {
      store.updateEntry(entry.key, {
        status: 'completed',
        resultFile: relativeResult(entry.key),
        error: null,
        endedAt,
      });
      return 'completed';
    }
    if (outcome.kind === 'stopped') {
      store.updateEntry(entry.key, {
        status: 'pending',
        error: { type: 'interrupted', message: 'interrupted; it runs again on resume' },
        endedAt,
      });
      return 'interrupted';
    }
    const error: ManifestError = { type: outcome.error.type, message: outcome.error.message };
    this.#logger.warn(
      `run ${entry.key} (${planned.label}) failed: ${error.type}: ${error.message}`,
    );
    store.updateEntry(entry.key, { status: 'failed', error, endedAt });
    return 'failed';
  }

  async #residual(config: Config, thresholdMb: number): Promise<ResidualCheck> {
    const check = this.#options.residualCheck ?? nvmlResidualCheck;
    const deviceIndices = energyDevices(config);
    try {
      // The check itself logs the warning (device, MB used, threshold): seed 000.
      const observation = await check({ deviceIndices, thresholdMb, logger: this.#logger });
      return observation;
    } catch (error) {
      // The check must never block a run (seed 000): record why it was skipped instead.
      const reason = `the residual check failed: ${error instanceof Error ? error.message : String(error)}`;
      this.#logger.debug(reason);
      return skippedResidualCheck(thresholdMb, reason, this.#clock.date());
    }
  }

  async #gap(
    gaps: { experimentS: number; cycleS: number },
    cycleStarts: boolean,
  ): Promise<'done' | 'skipped' | 'interrupted'> {
    const parts: Array<{ kind: 'experiment' | 'cycle'; seconds: number }> = [];
    if (gaps.experimentS > 0) parts.push({ kind: 'experiment', seconds: gaps.experimentS });
    if (cycleStarts && gaps.cycleS > 0) parts.push({ kind: 'cycle', seconds: gaps.cycleS });
    if (parts.length === 0) return 'done';
    const totalSeconds = parts.reduce((a, p) => a + p.seconds, 0);
    const kind = cycleStarts && gaps.cycleS > 0 ? 'cycle' : 'experiment';
    const skip = new AbortController();
    this.#skipGap = () => skip.abort();
    const either = AbortSignal.any([skip.signal, this.#interruptAbort.signal]);
    try {
      let left = totalSeconds;
      while (left > 0) {
        this.#emit('gap-countdown', { kind, secondsLeft: left, totalSeconds });
        const step = Math.min(1, left);
        await this.#sleep(step * 1000, either);
        if (this.#interruptLevel > 0) {
          this.#emit('gap-finished', { skipped: false, interrupted: true });
          return 'interrupted';
        }
        if (skip.signal.aborted) {
          this.#emit('gap-finished', { skipped: true, interrupted: false });
          return 'skipped';
        }
        left = Math.max(0, left - step);
      }
      this.#emit('gap-finished', { skipped: false, interrupted: false });
      return 'done';
    } finally {
      this.#skipGap = null;
    }
  }

  async #cleanup(prepared: Prepared<Config>, key: string, status: RunEndStatus): Promise<void> {
    const { cleanups, afterRun } = this.#options;
    if (cleanups) {
      await safeCleanup(() => cleanups.runAll(), { logger: this.#logger, name: 'cleanups' });
    }
    if (afterRun) {
      const entry = prepared.store.entry(key);
      await safeCleanup(() => afterRun({ key, status, resultFile: entry?.resultFile ?? null }), {
        logger: this.#logger,
        name: 'afterRun',
      });
    }
  }

  #emit<E extends StudyEventName>(event: E, payload: StudyEvents[E]): void {
    try {
      this.#emitter.emit(event, payload);
    } catch (error) {
      // A progress display that throws must not break the study.
      this.#logger.warn(`a ${event} listener threw: ${String(error)}`);
    }
  }
}

function manifestEntriesFor(plan: RunnerPlan<unknown>) {
  const labels = new Map(plan.configs.map((c) => [c.index, c.label]));
  return plan.runs.map((run) => ({
    key: run.key,
    configHash: run.configHash,
    cycle: run.cycle,
    copy: run.copy,
    label: labels.get(run.configIndex) ?? run.configHash,
  }));
}

/**
 * What differs between the runs the manifest holds and the runs `plan` schedules, in words
 * (`3 runs added, 2 removed (cycles 2 → 4)`), or `null` when the run keys are the same.
 */
function describeDesignChange(
  storedPlan: RunnerPlan<unknown>,
  entries: readonly ManifestEntry[],
  plan: RunnerPlan<unknown>,
): string | null {
  const had = new Set(entries.map((e) => e.key));
  const wants = new Set(plan.runs.map((r) => r.key));
  const added = [...wants].filter((k) => !had.has(k)).length;
  const removed = [...had].filter((k) => !wants.has(k)).length;
  if (added === 0 && removed === 0) return null;
  const parts = [`${added} runs added, ${removed} removed`];
  const cyclesOf = (p: RunnerPlan<unknown>): number =>
    p.execution.cycles ?? new Set(p.runs.map((r) => r.cycle)).size;
  const [c0, c1] = [cyclesOf(storedPlan), cyclesOf(plan)];
  const detail: string[] = [];
  if (c0 !== c1) detail.push(`cycles ${c0} → ${c1}`);
  const hadConfigs = new Set(entries.map((e) => e.configHash));
  const wantsConfigs = new Set(plan.runs.map((r) => r.configHash));
  const configsAdded = [...wantsConfigs].filter((h) => !hadConfigs.has(h)).length;
  const configsRemoved = [...hadConfigs].filter((h) => !wantsConfigs.has(h)).length;
  if (configsAdded > 0 || configsRemoved > 0) {
    detail.push(`configs: ${configsAdded} added, ${configsRemoved} removed`);
  }
  const copies = (runs: ReadonlyArray<{ copy: number }>): number =>
    runs.reduce((max, r) => Math.max(max, r.copy + 1), 0);
  const [k0, k1] = [copies(entries), copies(plan.runs)];
  if (k0 !== k1) detail.push(`duplicate copies ${k0} → ${k1}`);
  return detail.length > 0 ? `${parts[0]} (${detail.join('; ')})` : (parts[0] ?? '');
}

/**
 * The manifest entries for a forced resume with `plan`: the plan's runs in order (kept entries
 * as they are, new ones pending), then the completed entries the plan no longer schedules.
 */
function mergedEntries(
  entries: readonly ManifestEntry[],
  plan: RunnerPlan<unknown>,
): { entries: ManifestEntry[]; added: number; dropped: number; keptUnscheduled: number } {
  const byKey = new Map(entries.map((e) => [e.key, e]));
  const wants = new Set(plan.runs.map((r) => r.key));
  let added = 0;
  const merged: ManifestEntry[] = manifestEntriesFor(plan).map((init) => {
    const existing = byKey.get(init.key);
    if (existing) return existing;
    added += 1;
    return pendingEntry(init);
  });
  const unscheduled = entries.filter((e) => !wants.has(e.key));
  const kept = unscheduled.filter((e) => e.status === 'completed');
  return {
    entries: [...merged, ...kept],
    added,
    dropped: unscheduled.length - kept.length,
    keptUnscheduled: kept.length,
  };
}

function readStoredStudy<Config>(studyDir: string): StoredStudy<Config> {
  const path = join(studyDir, STUDY_FILE);
  try {
    const stored = JSON.parse(readFileSync(path, 'utf8')) as StoredStudy<Config>;
    if (!stored?.plan || !Array.isArray(stored.plan.runs)) throw new Error('no plan in it');
    return stored;
  } catch (error) {
    throw new StudyError(`cannot read the stored study ${path}: ${String(error)}`, {
      cause: error,
    });
  }
}

function relativeResult(key: string): string {
  return `${RUNS_DIR}/${key}.json`;
}

function resultPathFor(studyDir: string, key: string): string {
  return join(studyDir, RUNS_DIR, `${key}.json`);
}

function modulePath(module: string | URL): string {
  if (module instanceof URL) return fileURLToPath(module);
  return module.startsWith('file:') ? fileURLToPath(module) : module;
}

function gapSettings(plan: RunnerPlan<unknown>): { experimentS: number; cycleS: number } {
  const e = plan.execution;
  return {
    experimentS: typeof e.experiment_gap_s === 'number' ? Math.max(0, e.experiment_gap_s) : 0,
    cycleS: typeof e.cycle_gap_s === 'number' ? Math.max(0, e.cycle_gap_s) : 0,
  };
}

function remainingGapMs(
  remaining: readonly ManifestEntry[],
  runs: ReadonlyMap<string, { cycle: number }>,
  gaps: { experimentS: number; cycleS: number },
  currentCycle: number,
): number {
  let ms = 0;
  let cycle = currentCycle;
  for (const entry of remaining) {
    const next = runs.get(entry.key)?.cycle ?? cycle;
    ms += gaps.experimentS * 1000 + (next !== cycle ? gaps.cycleS * 1000 : 0);
    cycle = next;
  }
  return ms;
}

/** `energy.devices` of an llem config; `[0]` when the config has none. */
function energyDevices(config: unknown): number[] {
  const devices = (config as { energy?: { devices?: unknown } } | null)?.energy?.devices;
  if (Array.isArray(devices) && devices.every((d) => Number.isInteger(d) && d >= 0)) {
    return devices as number[];
  }
  return [0];
}

/**
 * Take the study's `.runner.lock`, atomically: the pid goes into a private temp file that is then
 * hard-linked to the lock path, which fails with EEXIST when the lock exists — so the lock never
 * exists without its pid, and of two runners starting at once exactly one gets it. A lock whose
 * pid is dead is stale (a runner that was `kill -9`ed): it is removed and taking it is retried
 * once. A lock with this process's own pid is held too (another runner in this process).
 */
function acquireLock(studyDir: string): void {
  const path = join(studyDir, LOCK_FILE);
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(tmp, `${process.pid}\n`);
  try {
    for (let attempt = 0; attempt < 2; attempt += 1) {
      try {
        linkSync(tmp, path);
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw new StudyError(`cannot create the lock file ${path}: ${String(error)}`, {
            cause: error,
          });
        }
      }
      let pid = Number.NaN;
      try {
        pid = Number(readFileSync(path, 'utf8').trim());
      } catch {
        // Removed by its runner since the link failed: just retry.
        continue;
      }
      if (Number.isInteger(pid) && pid > 0 && (pid === process.pid || isAlive(pid))) {
        throw new StudyError(
          `another runner (pid ${pid}) is running the study in ${studyDir}; wait for it to end ` +
            `(or, if that process is not llem, delete ${path})`,
        );
      }
      rmSync(path, { force: true });
    }
    throw new StudyError(
      `cannot take the lock ${path}: another runner took it at the same time; wait for it to end`,
    );
  } finally {
    rmSync(tmp, { force: true });
  }
}

function releaseLock(studyDir: string): void {
  rmSync(join(studyDir, LOCK_FILE), { force: true });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
