import { EventEmitter } from 'node:events';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type ResidualCheck,
  type RunDevice,
  type RunOwner,
  type RunRecord,
  type RunSlurm,
  resourceName,
  runFiles,
  STUDY_FILES,
} from '@llem/domain';
import { type CleanupRegistry, type Logger, noopLogger, safeCleanup } from '@llem/resilience';
import { type Clock, type SleepFn, systemClock, systemSleep } from './clock';
import { cudaVisibleDevices, nvmlResolveDevices, type ResolveDevicesFn } from './devices';
import {
  currentOwner,
  DEFAULT_HEARTBEAT_MS,
  type HeldClaim,
  type HeldResource,
  type RunState,
  recordOrPending,
  StudyDirectory,
  type StudyState,
} from './directory';
import { StudyDesignChangedError, StudyDevicesError, StudyError } from './errors';
import type { Eta, RunEndStatus, StudyEventName, StudyEvents, StudySummary } from './events';
import { type ChildOutcome, runChild, type StopRequests } from './internal/child';
import type { LivenessProbe } from './liveness';
import type { RunnerPlan, StoredStudy } from './plan';
import {
  DEFAULT_RESIDUAL_THRESHOLD_MB,
  nvmlResidualCheck,
  type ResidualCheckFn,
  skippedResidualCheck,
} from './residual';
import { TASK_FILE_ENV, type WorkerTask } from './task';
import { runTimeout } from './timeout';
import { WorkerExitCode } from './worker';

/** Default grace between SIGTERM and SIGKILL when a child must stop. */
export const DEFAULT_GRACE_MS = 5_000;

/** The manifest is rebuilt at most this often while runs go on (always at start and end). */
const MANIFEST_INTERVAL_MS = 1_000;

const INTERRUPTED_BEFORE_FORK = Symbol('interrupted before fork');

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

/** What `verifyResult` says of a result file on resume. */
export type ResultVerdict =
  | { ok: true }
  /** The result cannot be used; the run is measured again (the file is kept aside). */
  | { ok: false; reason: string };

interface CommonOptions<Config> {
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
  /**
   * Checks a completed run's result file (parsed JSON) on resume; a result that fails is set
   * aside (`runs/<key>.json.damaged-<time>`) and its run measured again. Default: any JSON
   * value passes (the runner does not know the worker's result type; llem passes a check
   * against the schema of the version that wrote the result).
   */
  verifyResult?: (value: unknown) => ResultVerdict;
  /** Who this runner is, in claims and records. Default: this host and pid (and Slurm job). */
  owner?: RunOwner;
  /** Whether the owner of another claim is alive. Default: this host's processes. */
  liveness?: LivenessProbe;
  /** How often held claims are touched. Default 10 s. */
  heartbeatMs?: number;
  /** A claim without a heartbeat for this long is stale. Default 5 min. */
  staleClaimMs?: number;
  /**
   * How many GPUs of `execution.devices` a run of `config` is given. Default:
   * `execution.devices_per_run`, else 1. (llem passes the config's own `devices_per_run`.)
   */
  devicesPerRun?: (config: Config) => number | undefined;
  /**
   * Runs whose configs map to the same non-null key never run at the same time (llem: `openai`
   * runs against an external server, which would measure each other's load). Default: none.
   */
  exclusiveGroup?: (config: Config) => string | null;
  /** Turns `execution.devices` into NVML indices and UUIDs. Default `nvmlResolveDevices`. */
  resolveDevices?: ResolveDevicesFn;
  /**
   * The GPU indices the residual check looks at for a run given no devices (no
   * `execution.devices`). Default: none, so a runner without GPUs never loads the NVML binding
   * (the check is recorded as skipped). llem passes the config's `energy.devices`.
   */
  runDevices?: (config: Config) => number[];
  /**
   * Work only on these runs (still in plan order), e.g. the runs of one Slurm array task; on
   * resume only their results are checked. A failed run among them is retried only while its
   * record's attempts are still `attempts` (what they were when it was chosen), so two runners
   * handed one failed run retry it once. Default: every run the study still needs.
   */
  runs?: ReadonlyArray<{ key: string; attempts: number }>;
  /**
   * The GPUs this runner may use, already resolved (a Slurm task: the GPUs Slurm allocated it,
   * see `slurmAllocatedDevices`); replaces `execution.devices`. `null`: none (one run at a time
   * on its config's `energy.devices`). Default: `execution.devices` through `resolveDevices`.
   */
  devices?: RunDevice[] | null;
  /**
   * Leave the environment's `CUDA_VISIBLE_DEVICES` alone for a run given every GPU of
   * `devices` (Slurm set it for them: never rewrite it). A run given fewer gets its GPUs'
   * UUIDs. Default `false`: every run gets its GPUs' UUIDs.
   */
  inheritCudaVisibleDevices?: boolean;
  /**
   * Under a batch scheduler (Slurm) whose SIGTERM (scancel, time limit, preemption) reaches
   * every process of the job at once, the worker maybe before the runner: a worker ended by a
   * SIGTERM the runner did not send, or a run that failed while the runner was being
   * interrupted as `preempted` (within a second of it), is left pending with error type
   * `preempted`, not failed, and the runner stops. Default `false`.
   */
  preemptible?: boolean;
  /**
   * A run's timeout in seconds when `execution.timeout_s` is not set (llem derives it from the
   * workload: `@llem/measure`'s `runTimeoutS`). Default: `DEFAULT_RUN_TIMEOUT_S` (1 h).
   */
  timeoutS?: (config: Config) => number;
}

/** Why the runner was interrupted; the interrupted run's record keeps it as its error. */
export interface InterruptReason {
  /** `interrupted` (Ctrl-C, an abort signal) or `preempted` (the batch scheduler stopped it). */
  type: 'interrupted' | 'preempted';
  /** Default: `interrupted; it runs again on resume`. */
  message?: string;
}

/** How long a failed run waits for a `preempted` interrupt racing it (`preemptible`). */
const PREEMPTION_SETTLE_MS = 1_000;

/** Start a new study: a fresh `<outputDir>/<name>_<UTC timestamp>/` directory. */
export interface NewStudyOptions<Config> extends CommonOptions<Config> {
  plan: RunnerPlan<Config>;
  /** Default `./results` (relative to `cwd`). */
  outputDir?: string;
}

/**
 * Continue a study in an existing directory (`llem run --resume DIR`), or join one that other
 * runners are working on: runs are claimed one at a time, so several runners share a study.
 */
export interface ResumeStudyOptions<Config> extends CommonOptions<Config> {
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
  directory: StudyDirectory;
  /** The GPUs runs are dispatched on in parallel (`execution.devices`); null: one run at a time. */
  pool: RunDevice[] | null;
  plan: RunnerPlan<Config>;
  resumed: boolean;
  recovered: number;
  /** Failed runs this runner may retry: key → the attempts their record had at start. */
  retryable: Map<string, number>;
}

/** How long a run waits before looking again for GPUs another runner holds. */
const RESOURCE_RETRY_MS = 1_000;

/** What a run took before it was dispatched: its GPUs (with a pool) and every hold. */
interface Acquired {
  devices: RunDevice[] | null;
  holds: HeldResource[];
}

/** What the dispatch of one run tells the ETA and the gaps. */
interface Progress {
  total: number;
  index: number;
  durations: number[];
  /** How many runs go at once (1 without a device pool). */
  parallelism: number;
  gaps: { experimentS: number; cycleS: number };
  /** The cycle each device (or `-1`: the runner itself, without a pool) last ran. */
  history: Map<number, number>;
}

/** The mean GPUs per run over `todo`, for the ETA's parallelism. */
function perRunMean<Config>(
  todo: ReadonlyArray<ScheduledRun<Config>>,
  configs: ReadonlyMap<number, PlannedConfig<Config>>,
  perRun: (config: Config) => number,
): number {
  if (todo.length === 0) return 1;
  let sum = 0;
  for (const run of todo) {
    const planned = configs.get(run.configIndex);
    sum += planned ? perRun(planned.config) : 1;
  }
  return sum / todo.length;
}

/** Fields of a run record to change. */
type RecordChange = Partial<Omit<RunRecord, 'schemaVersion' | 'key' | 'updatedAt'>>;

type ScheduledRun<Config> = RunnerPlan<Config>['runs'][number];
type PlannedConfig<Config> = RunnerPlan<Config>['configs'][number];

/**
 * Runs every scheduled run of a study, each in its own child process. The state of each run is
 * its own record file in the study directory, written atomically; a run is claimed before it is
 * dispatched, so several runners (processes on one machine, Slurm tasks on many) can share one
 * study without locks, and each run is done once. Results are published without clobbering. The
 * manifest is an index rebuilt from the records. A study survives crashes, hangs, Ctrl-C and
 * `kill -9` and can be resumed without measuring anything twice.
 *
 * Per run, in order: claim → gap → record running → residual GPU-memory check → fork the worker
 * → wait (timeout: SIGTERM, grace, SIGKILL) → classify → record completed/failed → release →
 * cleanups. A failed run never stops the study. The runner never prints: it emits typed events.
 *
 * @example
 * const runner = new StudyRunner({ plan, outputDir: 'results', workerModule: '@llem/measure/worker' });
 * runner.on('run-finished', (e) => console.error(`${e.index}/${e.total} ${e.label}: ${e.status}`));
 * const stop = handleSigint(runner);
 * const summary = await runner.run();   // { status: 'completed' | 'interrupted' | 'running', studyDir, counts }
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
  readonly #owner: RunOwner;
  /** 0: running; 1: stop after the current child ends cleanly; 2: kill now. */
  #interruptLevel: 0 | 1 | 2 = 0;
  #interruptReason: InterruptReason = { type: 'interrupted' };
  readonly #interruptAbort = new AbortController();
  readonly #stopListeners = new Set<(mode: 'graceful' | 'now') => void>();
  /** The gaps under way (several with a device pool); `skipGap()` ends them all. */
  readonly #gapSkips = new Set<AbortController>();
  #started = false;
  /** `prepare()`: the directory is made ready, no run is dispatched. */
  #prepareOnly = false;
  #studyDir: string | null = null;
  readonly #held = new Set<HeldClaim>();
  /** GPUs and groups this runner holds for its runs (touched with the claims). */
  readonly #heldResources: HeldResource[] = [];
  /** True when runs of this study can overlap (a device pool with room for two). */
  #parallel = false;
  #manifestWrittenAt = Number.NEGATIVE_INFINITY;
  #manifestTimer: NodeJS.Timeout | null = null;

  constructor(options: StudyRunnerOptions<Config>) {
    this.#options = options;
    this.#logger = options.logger ?? noopLogger;
    this.#clock = options.clock ?? systemClock;
    this.#sleep = options.sleep ?? systemSleep;
    this.#graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
    this.#toolVersion = options.toolVersion ?? STUDY_TOOL_VERSION;
    this.#owner = options.owner ?? currentOwner(options.env ?? process.env);
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
   * study `interrupted` and resolve. Second call: kill the child at once. The run it stops is
   * left pending with `reason` as its error (default type `interrupted`; a batch scheduler's
   * stop is `preempted`).
   */
  interrupt(reason?: InterruptReason): void {
    if (reason && (this.#interruptLevel === 0 || reason.type === 'preempted')) {
      this.#interruptReason = reason;
    }
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
    for (const skip of this.#gapSkips) skip.abort();
  }

  /** Run (or resume) the study. Resolves once every run has ended or the study was interrupted. */
  /**
   * Create the study directory, or open it and check it as a resume does (the design, every
   * completed result, a legacy manifest), and write the manifest, without dispatching any run.
   * Emits `study-started` like `run()`; resolves the study's summary (status `running` while
   * other runners or queued Slurm jobs hold runs). Call either this or `run()`, once.
   *
   * @example
   * const { studyDir } = await new StudyRunner({ plan, workerModule, devices: null }).prepare();
   */
  prepare(): Promise<StudySummary> {
    this.#prepareOnly = true;
    return this.run();
  }

  async run(): Promise<StudySummary> {
    if (this.#started) throw new StudyError('StudyRunner.run() or prepare() was already called');
    this.#started = true;
    const startedAt = this.#clock.now();
    // Devices first: a study naming a GPU this machine lacks is refused before anything is written.
    const pool = await this.#devicePool();
    const prepared = { ...this.#prepare(), pool };
    const { directory, plan } = prepared;
    this.#studyDir = directory.dir;
    const heartbeat = setInterval(() => {
      for (const held of this.#held) directory.touch(held);
    }, this.#options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS);
    heartbeat.unref();
    try {
      const initial = this.#writeManifest(directory, true);
      const selected = this.#options.runs ? new Set(this.#options.runs.map((r) => r.key)) : null;
      const todo = this.#prepareOnly
        ? []
        : plan.runs.filter(
            (r) =>
              (selected === null || selected.has(r.key)) &&
              this.#eligible(prepared, r.key, initial),
          );
      this.#emit('study-started', {
        studyDir: directory.dir,
        studyName: plan.name,
        total: plan.runs.length,
        toRun: todo.length,
        resumed: prepared.resumed,
        recovered: prepared.recovered,
      });
      await this.#runAll(prepared, todo);
      const state = this.#writeManifest(directory, true);
      const others = state.owners.filter((o) => o.runnerId !== this.#owner.runnerId);
      const unfinished = state.counts.pending + state.counts.running;
      // An interrupt that came after the last run ended changed nothing: the study is complete.
      // Runs other runners still hold: the study goes on without this one.
      const status: StudySummary['status'] =
        this.#interruptLevel > 0 && unfinished > 0
          ? 'interrupted'
          : others.length > 0
            ? 'running'
            : unfinished > 0
              ? 'interrupted'
              : 'completed';
      const summary: StudySummary = {
        status,
        studyDir: directory.dir,
        counts: state.counts,
        durationMs: this.#clock.now() - startedAt,
      };
      this.#emit('study-finished', summary);
      return summary;
    } finally {
      clearInterval(heartbeat);
      if (this.#manifestTimer) clearTimeout(this.#manifestTimer);
      this.#manifestTimer = null;
      for (const held of this.#held) directory.release(held);
      this.#held.clear();
      this.#releaseResources(directory, [...this.#heldResources]);
    }
  }

  #directoryOptions() {
    const o = this.#options;
    return {
      ...(o.liveness ? { liveness: o.liveness } : {}),
      ...(o.staleClaimMs === undefined ? {} : { staleClaimMs: o.staleClaimMs }),
      now: () => this.#clock.date(),
    };
  }

  /** `execution.devices` of the plan this run will use, resolved; null when there are none. */
  async #devicePool(): Promise<RunDevice[] | null> {
    const options = this.#options;
    if (options.devices !== undefined) {
      return options.devices && options.devices.length > 0 ? options.devices : null;
    }
    const plan =
      options.plan ??
      (() => {
        try {
          const dir = resolve(
            options.cwd ?? process.cwd(),
            (options as ResumeStudyOptions<Config>).resume,
          );
          return new StudyDirectory(dir).readStored<Config>().plan;
        } catch {
          return null; // #prepare says what is wrong with the directory
        }
      })();
    const specs = plan?.execution.devices;
    if (!specs || specs.length === 0) return null;
    const resolveDevices = options.resolveDevices ?? nvmlResolveDevices;
    const pool = await resolveDevices(specs, this.#logger, options.env ?? process.env);
    const indices = pool.map((d) => d.index);
    if (new Set(indices).size !== indices.length) {
      throw new StudyDevicesError(
        `execution.devices names one GPU twice (as an index and a UUID): ${specs.join(', ')} → indices ${indices.join(', ')}`,
      );
    }
    return pool;
  }

  #prepare(): Omit<Prepared<Config>, 'pool'> {
    const options = this.#options;
    if (!('resume' in options)) {
      const stored: StoredStudy<Config> = {
        schemaVersion: 1,
        toolVersion: this.#toolVersion,
        createdAt: this.#clock.date().toISOString(),
        plan: options.plan,
      };
      const directory = StudyDirectory.create(
        {
          outputDir: options.outputDir,
          name: options.plan.name,
          now: this.#clock.date(),
          cwd: options.cwd,
          stored,
        },
        this.#directoryOptions(),
      );
      return { directory, plan: options.plan, resumed: false, recovered: 0, retryable: new Map() };
    }
    const dir = resolve(options.cwd ?? process.cwd(), options.resume);
    const directory = StudyDirectory.open(dir, this.#directoryOptions());
    return this.#prepareResume(directory, options);
  }

  #prepareResume(
    directory: StudyDirectory,
    options: ResumeStudyOptions<Config>,
  ): Omit<Prepared<Config>, 'pool'> {
    const migrated = directory.migrateLegacyManifest();
    if (migrated > 0) {
      this.#logger.info(`wrote per-run records for ${migrated} runs of a study made before them`);
    }
    const manifest = directory.readManifest();
    let stored: StoredStudy<Config>;
    try {
      stored = directory.readStored<Config>();
    } catch (error) {
      if (!options.plan) throw error;
      // The plan given now is the study: a directory whose study.json was lost keeps its runs.
      this.#logger.warn(
        `${(error as Error).message}; using the study given now (design ${options.plan.designHash})`,
      );
      stored = {
        schemaVersion: 1,
        toolVersion: this.#toolVersion,
        createdAt: manifest.manifest?.createdAt ?? this.#clock.date().toISOString(),
        plan: options.plan,
      };
      directory.writeStored(stored);
    }
    if (manifest.problem !== null) {
      this.#logger.warn(
        `${directory.path(STUDY_FILES.manifest)} ${manifest.problem === 'missing' ? 'is missing' : `is unreadable (${manifest.problem})`}: rebuilt from the run records`,
      );
    }
    const before = directory.state(stored as StoredStudy);
    const plan = options.plan ?? stored.plan;
    const changes = describeDesignChange(stored.plan, before.runs, plan);
    const changed = plan.designHash !== stored.plan.designHash || changes !== null;
    if (changed && !options.force) {
      throw new StudyDesignChangedError(
        directory.dir,
        stored.plan.designHash,
        plan.designHash,
        changes ?? undefined,
      );
    }
    if (changed) {
      const others = before.owners.filter((o) => o.runnerId !== this.#owner.runnerId);
      if (others.length > 0) {
        throw new StudyError(
          `cannot change the design of ${directory.dir} while other runners work on it (${others.map(describeOwner).join(', ')}); wait for them to end`,
        );
      }
      // --force: the new plan is the study from now on. Completed runs it no longer schedules
      // keep their records and results (a measured result is never thrown away).
      const wants = new Set(plan.runs.map((r) => r.key));
      const had = new Set(before.runs.map((r) => r.key));
      const added = plan.runs.filter((r) => !had.has(r.key)).length;
      const unscheduled = before.runs.filter((r) => !wants.has(r.key));
      const kept = unscheduled.filter((r) => r.status === 'completed').length;
      directory.writeStored({ ...stored, plan });
      this.#logger.warn(
        `resuming ${directory.dir} with the new design because of --force ` +
          `(${stored.plan.designHash} → ${plan.designHash}${changes ? `; ${changes}` : ''}): ` +
          `${added} runs added, ${unscheduled.length - kept} not-completed runs dropped, ` +
          `${kept} completed runs no longer scheduled kept`,
      );
    }
    // A runner given some runs (a Slurm task) checks only those: not every result of the study
    // once per task.
    const recovered = this.#verifyCompleted(
      directory,
      options.runs ? new Set(options.runs.map((r) => r.key)) : null,
    );
    const state = directory.state();
    const retryable = options.runs
      ? new Map(options.runs.map((r) => [r.key, r.attempts]))
      : new Map(state.runs.filter((r) => r.status === 'failed').map((r) => [r.key, r.attempts]));
    return { directory, plan, resumed: true, recovered, retryable };
  }

  /**
   * Check every result on disk: one that fails `verifyResult` is set aside and its run made
   * pending (with a line saying which and why); one whose record does not say completed (the
   * runner died between publish and record) is recorded as completed. Returns that count.
   */
  #verifyCompleted(directory: StudyDirectory, only: ReadonlySet<string> | null): number {
    let recovered = 0;
    for (const run of directory.state().runs) {
      if (run.liveOwner || (only && !only.has(run.key))) continue;
      // A first look on the snapshot: nothing to do for most runs.
      const first = this.#resultVerdict(directory, run.key, run.record);
      if (first === null) {
        // Its runner died between recording it and releasing its claim: close the claim, so
        // every run of an ended study has a released one.
        if (run.status === 'completed' && run.claim === 'stale') {
          const held = directory.claim(run.key, this.#owner);
          if (held) directory.release(held);
        }
        continue;
      }
      const held = directory.claim(run.key, this.#owner);
      if (!held) continue; // someone else is on it
      try {
        // Look again under the claim: another runner may have re-run it since the snapshot.
        const record = directory.readRecord(run.key).record;
        const verdict = this.#resultVerdict(directory, run.key, record);
        if (verdict === null) continue;
        if (!verdict.ok) {
          const aside = directory.setResultAside(run.key, 'damaged');
          this.#logger.warn(
            `re-running ${run.key} (${run.label}, cycle ${run.cycle + 1}): its result ${runFiles(run.key).result} ${verdict.reason}${aside ? `; the file is kept as ${aside}` : ''}`,
          );
          this.#record(
            directory,
            { ...run, record },
            {
              status: 'pending',
              error: { type: 'no-result', message: `its result was unusable: ${verdict.reason}` },
              resultFile: null,
            },
          );
        } else {
          // The child published its result, but the runner died before recording it: keep it
          // rather than measure it again.
          recovered += 1;
          this.#record(
            directory,
            { ...run, record },
            {
              status: 'completed',
              error: null,
              resultFile: runFiles(run.key).result,
              endedAt: record?.endedAt ?? this.#clock.date().toISOString(),
            },
          );
          this.#logger.info(`recovered the result of ${run.key} written before the runner stopped`);
        }
      } finally {
        directory.release(held);
      }
    }
    return recovered;
  }

  /**
   * What resume must do about a run's result, as the disk says now: `null` when nothing (a
   * valid result its record calls completed, or no result and a record that does not claim
   * one); `{ ok: true }` for a valid result whose record does not say so; `{ ok: false }` for a
   * result that is unusable or missing while its record says completed.
   */
  #resultVerdict(
    directory: StudyDirectory,
    key: string,
    record: RunRecord | null,
  ): ResultVerdict | null {
    if (!directory.hasResult(key)) {
      return record?.status === 'completed' ? { ok: false, reason: 'is missing' } : null;
    }
    const verify = this.#options.verifyResult ?? (() => ({ ok: true }) as const);
    let verdict: ResultVerdict;
    try {
      verdict = verify(JSON.parse(readFileSync(directory.runPaths(key).result, 'utf8')));
    } catch (error) {
      verdict = {
        ok: false,
        reason:
          error instanceof SyntaxError
            ? `is not valid JSON (${error.message})`
            : `cannot be read (${String(error)})`,
      };
    }
    return verdict.ok && record?.status === 'completed' ? null : verdict;
  }

  /** Write `change` over the run's record (or a fresh one), keeping the rest. */
  #record(
    directory: StudyDirectory,
    run: Pick<RunState, 'key' | 'configHash' | 'cycle' | 'copy' | 'label'> & {
      record?: RunRecord | null;
    },
    change: RecordChange,
  ): RunRecord {
    const current = run.record === undefined ? directory.readRecord(run.key).record : run.record;
    return directory.writeRecord({
      ...recordOrPending(run, current),
      ...change,
    });
  }

  /**
   * Whether this runner should try a run now: no result yet, and its record is pending, running
   * (the claim decides whether its owner is alive), or failed before this runner started and
   * not retried since (resume only).
   */
  #eligible(prepared: Prepared<Config>, key: string, state?: StudyState): boolean {
    const { directory } = prepared;
    const known = state?.runs.find((r) => r.key === key);
    if (known ? known.status === 'completed' : directory.hasResult(key)) return false;
    const record = known ? known.record : directory.readRecord(key).record;
    if (record?.status !== 'failed') return true;
    return prepared.retryable.get(key) === record.attempts;
  }

  /**
   * Dispatch the runs in plan order. Without a device pool: one at a time, each waiting for the
   * previous. With one: as many at once as free, disjoint device sets allow (the next run in
   * order waits until its `devicesPerRun` GPUs are free, so order is dispatch order); runs of
   * one `exclusiveGroup` never overlap. A failed run frees its devices like any other.
   */
  async #runAll(prepared: Prepared<Config>, todo: ScheduledRun<Config>[]): Promise<void> {
    const { plan, pool } = prepared;
    const configsByIndex = new Map(plan.configs.map((c) => [c.index, c]));
    const perRun = (config: Config): number =>
      this.#options.devicesPerRun?.(config) ?? plan.execution.devices_per_run ?? 1;
    const free = new Set(pool?.map((d) => d.index) ?? []);
    const busyGroups = new Set<string>();
    const inFlight = new Set<Promise<void>>();
    const progress: Progress = {
      total: todo.length,
      index: 0,
      durations: [],
      parallelism: pool
        ? Math.max(
            1,
            Math.floor(pool.length / Math.max(1, perRunMean(todo, configsByIndex, perRun))),
          )
        : 1,
      gaps: gapSettings(plan),
      history: new Map(),
    };

    const groupOf = (config: Config): string | null =>
      this.#options.exclusiveGroup?.(config) ?? null;
    if (pool) {
      const wants = todo.map((r) => {
        const planned = configsByIndex.get(r.configIndex);
        return planned ? perRun(planned.config) : 1;
      });
      const most = Math.max(0, ...wants);
      if (most > pool.length) {
        throw new StudyDevicesError(
          `a run needs ${most} GPUs (devices_per_run), but execution.devices lists ${pool.length}`,
        );
      }
      const groups = new Map<string | null, number>();
      for (const r of todo) {
        const planned = configsByIndex.get(r.configIndex);
        const group = planned ? groupOf(planned.config) : null;
        groups.set(group, (groups.get(group) ?? 0) + 1);
      }
      // Host-wide figures (RAPL) are shared when two runs can go at once: room for two on the
      // GPUs, and not every run in one exclusive group.
      const oneGroup = groups.size === 1 && !groups.has(null);
      this.#parallel = wants.length > 1 && 2 * Math.min(...wants) <= pool.length && !oneGroup;
      for (const [group, n] of groups) {
        if (group !== null && n > 1)
          this.#logger.warn(`${n} runs (${group}) never overlap each other: they go one at a time`);
      }
    }

    let failure: { error: unknown } | null = null;
    for (const [i, run] of todo.entries()) {
      if (this.#interruptLevel > 0 || failure) break;
      const planned = configsByIndex.get(run.configIndex);
      if (!planned) {
        throw new StudyError(`run ${run.key} names config ${run.configIndex}, not in the plan`);
      }
      const want = pool ? perRun(planned.config) : 0;
      const group = groupOf(planned.config);
      // Wait for what this run needs: runs go in plan order. This runner's own runs free their
      // GPUs when they end; another runner's hold on a GPU or group is seen when taking it.
      let acquired: Acquired | null = null;
      let gone = false;
      while (this.#interruptLevel === 0 && failure === null) {
        const busyHere =
          (!pool && inFlight.size > 0) ||
          (pool !== null && free.size < want) ||
          (group !== null && busyGroups.has(group));
        if (busyHere && inFlight.size > 0) {
          await Promise.race(inFlight);
          continue;
        }
        if (!this.#eligible(prepared, run.key)) {
          gone = true;
          break;
        }
        acquired = this.#acquire(prepared, run.key, planned.config, group, want, free);
        if (acquired) break;
        // Another runner holds a GPU or the group this run needs: look again in a while.
        await this.#pause(RESOURCE_RETRY_MS + Math.floor(Math.random() * RESOURCE_RETRY_MS), [
          ...inFlight,
        ]);
      }
      if (gone) {
        progress.total -= 1;
        continue;
      }
      if (!acquired) break;
      const held = this.#claim(prepared, run.key);
      if (!held) {
        // Done or taken by another runner since the study started.
        this.#releaseResources(prepared.directory, acquired.holds);
        progress.total -= 1;
        continue;
      }
      const devices = acquired.devices;
      for (const d of devices ?? []) free.delete(d.index);
      if (group !== null) busyGroups.add(group);
      const remaining = todo.slice(i + 1);
      const dispatched: Promise<void> = this.#dispatch(
        prepared,
        held,
        run,
        planned,
        devices,
        progress,
        remaining,
      )
        .catch((error: unknown) => {
          // One run's failure to be recorded (a full disk) stops dispatching; the runs still
          // going end as they would, then the error is thrown.
          failure ??= { error };
        })
        .finally(() => {
          this.#releaseResources(prepared.directory, acquired.holds);
          for (const d of devices ?? []) free.add(d.index);
          if (group !== null) busyGroups.delete(group);
          inFlight.delete(dispatched);
        });
      inFlight.add(dispatched);
    }
    await Promise.all(inFlight);
    if (failure) throw (failure as { error: unknown }).error;
  }

  /**
   * Take what a run needs, across every runner of the study: its exclusive group, and its GPUs
   * (`want` of this runner's free pool devices, each held in the study directory so another
   * runner cannot use it; without a pool, the GPUs the residual check looks at, so two runners
   * never measure one GPU at once). All or nothing: `null` when anything is held elsewhere.
   */
  #acquire(
    prepared: Prepared<Config>,
    key: string,
    config: Config,
    group: string | null,
    want: number,
    free: ReadonlySet<number>,
  ): Acquired | null {
    const { directory, pool } = prepared;
    const holds: HeldResource[] = [];
    const take = (resource: string): boolean => {
      const held = directory.holdResource(resource, key, this.#owner);
      if (held) holds.push(held);
      return held !== null;
    };
    const fail = (): null => {
      this.#releaseResources(directory, holds);
      return null;
    };
    if (group !== null && !take(resourceName({ group }))) return fail();
    const host = this.#owner.host;
    if (pool) {
      const devices: RunDevice[] = [];
      for (const device of pool) {
        if (devices.length === want) break;
        if (free.has(device.index) && take(resourceName({ gpu: device, host }))) {
          devices.push(device);
        }
      }
      if (devices.length < want) return fail();
      this.#heldResources.push(...holds);
      return { devices, holds };
    }
    const checked = this.#options.runDevices?.(config) ?? [];
    for (const index of checked) {
      if (!take(resourceName({ gpu: { index, uuid: null }, host }))) return fail();
    }
    this.#heldResources.push(...holds);
    return { devices: null, holds };
  }

  #releaseResources(directory: StudyDirectory, holds: readonly HeldResource[]): void {
    for (const held of holds) {
      directory.releaseResource(held);
      const at = this.#heldResources.indexOf(held);
      if (at !== -1) this.#heldResources.splice(at, 1);
    }
  }

  /** Sleep `ms` (in real time), or less when one of `wake` settles or the study is interrupted. */
  async #pause(ms: number, wake: readonly Promise<unknown>[]): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const slept = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
      this.#interruptAbort.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    try {
      await Promise.race([slept, ...wake]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** One claimed run on its devices: gap, run, events, cleanups, release. */
  async #dispatch(
    prepared: Prepared<Config>,
    held: HeldClaim,
    run: ScheduledRun<Config>,
    planned: PlannedConfig<Config>,
    devices: RunDevice[] | null,
    progress: Progress,
    remaining: ScheduledRun<Config>[],
  ): Promise<void> {
    const { directory } = prepared;
    try {
      // The gap is per device set: the cool-down after the run these GPUs (or, without a
      // pool, the runner) ran last, plus the cycle gap when that run was of another cycle.
      const slots = devices ? devices.map((d) => d.index) : [-1];
      const before = slots.map((s) => progress.history.get(s)).filter((c) => c !== undefined);
      if (before.length > 0) {
        const gap = await this.#gap(
          progress.gaps,
          before.some((c) => c !== run.cycle),
          devices,
        );
        if (gap === 'interrupted') return;
      }
      for (const s of slots) progress.history.set(s, run.cycle);

      progress.index += 1;
      const index = progress.index;
      const started = this.#clock.now();
      const outcome = await this.#runOne(
        prepared,
        held,
        run,
        planned,
        devices,
        index,
        progress.total,
      );
      const durationMs = this.#clock.now() - started;
      if (outcome !== 'interrupted') progress.durations.push(durationMs);

      const left = Math.max(0, progress.total - progress.index);
      const eta: Eta = {
        remainingRuns: left,
        remainingMs:
          progress.durations.length === 0
            ? null
            : ((progress.durations.reduce((a, b) => a + b, 0) / progress.durations.length) * left) /
                progress.parallelism +
              remainingGapMs(remaining, progress.gaps, run.cycle) / progress.parallelism,
      };
      const after = directory.readRecord(run.key).record;
      this.#emit('run-finished', {
        key: run.key,
        label: planned.label,
        index,
        total: progress.total,
        status: outcome,
        durationMs,
        error: after?.error ?? null,
        eta,
        ...(devices ? { devices } : {}),
      });
      await this.#cleanup(directory, run.key, outcome);
    } finally {
      this.#release(directory, held);
    }
  }

  /** Claim a run if it is still this runner's to do; `null` when not. */
  #claim(prepared: Prepared<Config>, key: string): HeldClaim | null {
    const { directory } = prepared;
    if (!this.#eligible(prepared, key)) return null;
    const held = directory.claim(key, this.#owner);
    if (!held) return null;
    // Between the look and the claim another runner may have finished it.
    if (!this.#eligible(prepared, key)) {
      directory.release(held);
      return null;
    }
    this.#held.add(held);
    return held;
  }

  #release(directory: StudyDirectory, held: HeldClaim): void {
    this.#held.delete(held);
    directory.release(held);
    this.#writeManifest(directory);
  }

  /** True when a run on `devices` keeps the environment's `CUDA_VISIBLE_DEVICES`. */
  #inheritsCuda(prepared: Prepared<Config>, devices: RunDevice[]): boolean {
    if (!this.#options.inheritCudaVisibleDevices || !prepared.pool) return false;
    return prepared.pool.every((p) => devices.some((d) => d.index === p.index));
  }

  /** Returns how the run ended; never throws for anything the child does. */
  async #runOne(
    prepared: Prepared<Config>,
    held: HeldClaim,
    run: ScheduledRun<Config>,
    planned: PlannedConfig<Config>,
    devices: RunDevice[] | null,
    index: number,
    total: number,
  ): Promise<RunEndStatus> {
    const { directory, plan } = prepared;
    const paths = directory.runPaths(run.key);
    // A previous attempt's error file must not explain this attempt's failure.
    rmSync(paths.error, { force: true });
    const base = {
      key: run.key,
      configHash: run.configHash,
      cycle: run.cycle,
      copy: run.copy,
      label: planned.label,
    };
    const before = directory.readRecord(run.key).record;
    const attempt = (before?.attempts ?? 0) + 1;
    this.#record(
      directory,
      { ...base, record: before },
      {
        status: 'running',
        attempts: attempt,
        owner: this.#owner,
        startedAt: this.#clock.date().toISOString(),
        endedAt: null,
        error: null,
        resultFile: null,
        ...(devices ? { devices } : {}),
      },
    );
    this.#writeManifest(directory);

    const thresholdMb =
      plan.execution.residual_memory_threshold_mb ?? DEFAULT_RESIDUAL_THRESHOLD_MB;
    const checked = devices
      ? devices.map((d) => d.index)
      : (this.#options.runDevices?.(planned.config) ?? []);
    const residualCheck = await this.#residual(checked, thresholdMb);

    const timeoutS = runTimeout(plan.execution, planned.config, this.#options.timeoutS);
    const task: WorkerTask<Config> = {
      key: run.key,
      configHash: run.configHash,
      cycle: run.cycle,
      copy: run.copy,
      config: planned.config,
      studyDir: directory.dir,
      resultFile: paths.result,
      timeseriesFile: paths.timeseries,
      files: {
        result: paths.result,
        error: paths.error,
        log: paths.log,
        timeseries: paths.timeseries,
        requests: paths.requests,
        serverLog: paths.serverLog,
        metrics: paths.metrics,
      },
      residualCheck,
      toolVersion: this.#toolVersion,
      attempt,
      ...(devices ? { devices } : {}),
      // Other runs may overlap this one (this runner's, or another runner's on the study):
      // host-wide figures (RAPL) are shared.
      ...(this.#parallel || directory.otherLiveOwners(this.#owner.runnerId).length > 0
        ? { parallel: true }
        : {}),
      ...(this.#owner.slurm ? { slurm: runSlurm(this.#owner) } : {}),
    };
    // Complete before the fork, and rewritten on every attempt: no fsync needed.
    writeFileSync(paths.task, JSON.stringify(task));

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
        env: {
          ...(options.env ?? process.env),
          [TASK_FILE_ENV]: paths.task,
          // The run's program, engine and server see only its GPUs, named by UUID (unless the
          // run has every GPU the scheduler gave this runner: then its value stays).
          ...(devices && !this.#inheritsCuda(prepared, devices)
            ? { CUDA_VISIBLE_DEVICES: cudaVisibleDevices(devices) }
            : {}),
        },
        cwd: options.cwd ?? process.cwd(),
        logFile: paths.log,
        resultFile: paths.result,
        errorFile: paths.error,
        timeoutMs: timeoutS * 1000,
        graceMs: this.#graceMs,
        stopRequests,
        onSpawn: (pid) =>
          this.#emit('run-started', {
            key: run.key,
            label: planned.label,
            configHash: run.configHash,
            cycle: run.cycle,
            index,
            total,
            attempt,
            timeoutS,
            pid,
            residualCheck,
            ...(devices ? { devices } : {}),
          }),
        onProgress: (message) =>
          this.#emit('run-progress', { key: run.key, label: planned.label, message }),
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

    if (this.#options.preemptible && outcome.kind === 'failed') {
      outcome = await this.#preempted(outcome);
    }
    const endedAt = this.#clock.date().toISOString();
    if (!directory.holds(held)) {
      // Another runner judged this runner gone and took the run over: the record is theirs.
      this.#logger.warn(
        `run ${run.key} was taken over by another runner while this one ran it; its record is left to them`,
      );
      return outcome.kind === 'completed' ? 'completed' : 'interrupted';
    }
    const current = directory.readRecord(run.key).record;
    const write = (change: RecordChange) =>
      this.#record(directory, { ...base, record: current }, change);
    if (outcome.kind === 'completed') {
      write({ status: 'completed', resultFile: runFiles(run.key).result, error: null, endedAt });
      return 'completed';
    }
    if (outcome.kind === 'stopped') {
      const reason = this.#interruptReason;
      write({
        status: 'pending',
        error: {
          type: reason.type,
          message: reason.message ?? 'interrupted; it runs again on resume',
        },
        endedAt,
      });
      return 'interrupted';
    }
    const error: NonNullable<RunRecord['error']> = {
      type: outcome.error.type,
      message: outcome.error.message,
      ...(outcome.error.code ? { code: outcome.error.code } : {}),
    };
    this.#logger.warn(`run ${run.key} (${planned.label}) failed: ${error.type}: ${error.message}`);
    write({ status: 'failed', error, endedAt });
    return 'failed';
  }

  /**
   * A batch scheduler's SIGTERM reaches the worker and the runner at once (`preemptible`): a
   * worker ended by a SIGTERM the runner did not send was preempted, and a failure that races
   * the runner's own `preempted` interrupt is one too. Either way the runner stops.
   */
  async #preempted(outcome: ChildOutcome & { kind: 'failed' }): Promise<ChildOutcome> {
    const stopped: ChildOutcome = {
      kind: 'stopped',
      exitCode: outcome.exitCode,
      signal: outcome.signal,
    };
    if (outcome.error.type === 'timeout') return outcome;
    if (outcome.signal === 'SIGTERM' || outcome.exitCode === WorkerExitCode.terminated) {
      this.interrupt(SLURM_PREEMPTED);
      return stopped;
    }
    if (this.#interruptReason.type !== 'preempted') {
      await this.#sleep(PREEMPTION_SETTLE_MS, this.#interruptAbort.signal).catch(() => undefined);
    }
    return this.#interruptReason.type === 'preempted' ? stopped : outcome;
  }

  /**
   * Rebuild and write the manifest from the records: at once when `now` or when the last write
   * is over a second old, else once that second is up. Returns the state when it wrote now.
   */
  #writeManifest(directory: StudyDirectory, now: true): StudyState;
  #writeManifest(directory: StudyDirectory, now?: boolean): StudyState | null;
  #writeManifest(directory: StudyDirectory, now = false): StudyState | null {
    const due = this.#manifestWrittenAt + MANIFEST_INTERVAL_MS - performance.now();
    if (!now && due > 0) {
      if (!this.#manifestTimer) {
        this.#manifestTimer = setTimeout(() => {
          this.#manifestTimer = null;
          this.#writeManifestNow(directory);
        }, due);
      }
      return null;
    }
    if (this.#manifestTimer) clearTimeout(this.#manifestTimer);
    this.#manifestTimer = null;
    return this.#writeManifestNow(directory);
  }

  #writeManifestNow(directory: StudyDirectory): StudyState {
    this.#manifestWrittenAt = performance.now();
    try {
      return directory.rebuildManifest(this.#toolVersion);
    } catch (error) {
      // The records are the truth; a manifest that cannot be written (full disk) is rebuilt later.
      this.#logger.warn(`cannot write the manifest: ${String(error)}`);
      return directory.state();
    }
  }

  async #residual(deviceIndices: number[], thresholdMb: number): Promise<ResidualCheck> {
    if (deviceIndices.length === 0) {
      return skippedResidualCheck(thresholdMb, 'no GPU devices for this run', this.#clock.date());
    }
    const check = this.#options.residualCheck ?? nvmlResidualCheck;
    try {
      // The check itself logs the warning (device, MB used, threshold): seed 000.
      const observation = await check({
        deviceIndices,
        thresholdMb,
        logger: this.#logger,
        env: this.#options.env ?? process.env,
      });
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
    devices: RunDevice[] | null = null,
  ): Promise<'done' | 'skipped' | 'interrupted'> {
    const parts: Array<{ kind: 'experiment' | 'cycle'; seconds: number }> = [];
    if (gaps.experimentS > 0) parts.push({ kind: 'experiment', seconds: gaps.experimentS });
    if (cycleStarts && gaps.cycleS > 0) parts.push({ kind: 'cycle', seconds: gaps.cycleS });
    if (parts.length === 0) return 'done';
    const totalSeconds = parts.reduce((a, p) => a + p.seconds, 0);
    const kind = cycleStarts && gaps.cycleS > 0 ? 'cycle' : 'experiment';
    const skip = new AbortController();
    this.#gapSkips.add(skip);
    const either = AbortSignal.any([skip.signal, this.#interruptAbort.signal]);
    const on = devices ? { devices } : {};
    try {
      let left = totalSeconds;
      while (left > 0) {
        this.#emit('gap-countdown', { kind, secondsLeft: left, totalSeconds, ...on });
        const step = Math.min(1, left);
        await this.#sleep(step * 1000, either);
        if (this.#interruptLevel > 0) {
          this.#emit('gap-finished', { skipped: false, interrupted: true, ...on });
          return 'interrupted';
        }
        if (skip.signal.aborted) {
          this.#emit('gap-finished', { skipped: true, interrupted: false, ...on });
          return 'skipped';
        }
        left = Math.max(0, left - step);
      }
      this.#emit('gap-finished', { skipped: false, interrupted: false, ...on });
      return 'done';
    } finally {
      this.#gapSkips.delete(skip);
    }
  }

  async #cleanup(directory: StudyDirectory, key: string, status: RunEndStatus): Promise<void> {
    const { cleanups, afterRun } = this.#options;
    if (cleanups) {
      await safeCleanup(() => cleanups.runAll(), { logger: this.#logger, name: 'cleanups' });
    }
    if (afterRun) {
      const record = directory.readRecord(key).record;
      await safeCleanup(() => afterRun({ key, status, resultFile: record?.resultFile ?? null }), {
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

/** The interrupt a batch scheduler's SIGTERM (scancel, time limit, preemption) stands for. */
export const SLURM_PREEMPTED: InterruptReason = {
  type: 'preempted',
  message:
    'stopped by Slurm (scancel, time limit or preemption) before it ended; it runs again on resume',
};

/** The Slurm job of a runner, as its runs' results record it. */
function runSlurm(owner: RunOwner): RunSlurm | undefined {
  if (!owner.slurm) return undefined;
  const { jobId, arrayJobId, arrayTaskId, nodeName } = owner.slurm;
  return { jobId, arrayJobId, arrayTaskId, nodeName };
}

function describeOwner(owner: RunOwner): string {
  return owner.slurm
    ? `Slurm job ${owner.slurm.jobId} on ${owner.slurm.nodeName ?? owner.host}`
    : `pid ${owner.pid} on ${owner.host}`;
}

/**
 * What differs between the runs the study holds and the runs `plan` schedules, in words
 * (`3 runs added, 2 removed (cycles 2 → 4)`), or `null` when the run keys are the same.
 */
function describeDesignChange(
  storedPlan: RunnerPlan<unknown>,
  entries: ReadonlyArray<{ key: string; configHash: string; copy: number }>,
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
  remaining: ReadonlyArray<{ cycle: number }>,
  gaps: { experimentS: number; cycleS: number },
  currentCycle: number,
): number {
  let ms = 0;
  let cycle = currentCycle;
  for (const run of remaining) {
    ms += gaps.experimentS * 1000 + (run.cycle !== cycle ? gaps.cycleS * 1000 : 0);
    cycle = run.cycle;
  }
  return ms;
}
