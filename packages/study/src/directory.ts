import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import {
  countManifestEntries,
  MANIFEST_SCHEMA_VERSION,
  type Manifest,
  type ManifestEntry,
  ManifestSchema,
  type ManifestStatus,
  RESOURCE_HOLD_SCHEMA_VERSION,
  type ResourceHold,
  ResourceHoldSchema,
  RUN_CLAIM_SCHEMA_VERSION,
  RUN_FAILURE_TYPES,
  RUN_RECORD_SCHEMA_VERSION,
  type RunClaim,
  RunClaimSchema,
  type RunFailureType,
  type RunFiles,
  type RunOwner,
  type RunRecord,
  RunRecordSchema,
  resourceHoldFile,
  runAsideFile,
  runClaimFile,
  runFileOf,
  runFiles,
  SLURM_SUBMISSION_SCHEMA_VERSION,
  type SlurmSubmission,
  type SlurmSubmissionFiles,
  SlurmSubmissionSchema,
  STUDY_FILES,
  StoredStudySchema,
  slurmSubmissionFiles,
  slurmSubmissionNumber,
} from '@llem/domain';
import { StudyError } from './errors';
import { uniqueTempPath, writeJsonAtomicSync } from './internal/atomic';
import { type LivenessProbe, readBootId, readProcessStart } from './liveness';
import type { RunnerPlan, StoredStudy } from './plan';
import { defaultLiveness } from './slurm/liveness';
import { createStudyDir } from './study-dir';

/** How often a runner touches the claims it holds. */
export const DEFAULT_HEARTBEAT_MS = 10_000;
/**
 * A claim whose heartbeat is older than this is stale even when its owner cannot be checked
 * (another host without Slurm) or its pid was reused. Generous: a shared filesystem may cache
 * file times for a minute.
 */
export const DEFAULT_STALE_CLAIM_MS = 300_000;

/** The owner record of this process (with its Slurm job, when it runs in one). */
export function currentOwner(
  env: NodeJS.ProcessEnv = process.env,
  runnerId: string = randomBytes(8).toString('hex'),
): RunOwner {
  const owner: RunOwner = { host: hostname(), pid: process.pid, runnerId };
  const bootId = readBootId();
  const processStart = readProcessStart(process.pid);
  if (bootId) owner.bootId = bootId;
  if (processStart) owner.processStart = processStart;
  const jobId = env.SLURM_JOB_ID;
  if (jobId) {
    owner.slurm = {
      jobId,
      arrayJobId: env.SLURM_ARRAY_JOB_ID || null,
      arrayTaskId: env.SLURM_ARRAY_TASK_ID || null,
      nodeName: env.SLURMD_NODENAME || null,
      restartCount: Number.parseInt(env.SLURM_RESTART_COUNT ?? '', 10) || 0,
    };
  }
  return owner;
}

/** What the current generation of a run's claim says. */
export type ClaimState =
  | { kind: 'none' }
  | { kind: 'live'; generation: number; claim: RunClaim }
  | { kind: 'released'; generation: number; claim: RunClaim }
  | { kind: 'stale'; generation: number; claim: RunClaim | null; why: string };

/** A resource (GPU, exclusive group) this runner holds for a run. */
export interface HeldResource {
  resource: string;
  holder: string;
  /** Absolute path of the hold file. */
  file: string;
}

/** A claim this runner holds. */
export interface HeldClaim {
  key: string;
  generation: number;
  claim: RunClaim;
}

/** One run as the directory's records, results and claims say it stands. */
export interface RunState {
  key: string;
  configHash: string;
  cycle: number;
  copy: number;
  label: string;
  status: ManifestEntry['status'];
  attempts: number;
  error: ManifestEntry['error'];
  startedAt: string | null;
  endedAt: string | null;
  /** Relative to the study directory; set when a result file is there. */
  resultFile: string | null;
  /** The record as written (`null`: the run has none yet). */
  record: RunRecord | null;
  /** The live claim's owner, while someone runs it. */
  liveOwner: RunOwner | null;
  /** What its current claim is: none yet, live, released, or stale (its owner is gone). */
  claim: ClaimState['kind'];
  /**
   * The Slurm array job that is to run it, while that job is queued or running and the run is
   * not completed or claimed (`llem run --executor slurm`); else `null`.
   */
  queuedIn: string | null;
  /** True when the run is scheduled by the stored plan (a forced resume may keep others). */
  scheduled: boolean;
}

/** A study directory's state, rebuilt from its records, results and claims. */
export interface StudyState {
  dir: string;
  stored: StoredStudy;
  /** Plan order, then completed runs the plan no longer schedules. */
  runs: RunState[];
  counts: Manifest['counts'];
  /**
   * `running` while any run has a live claim; `completed` when every scheduled run ended
   * (completed or failed); else `interrupted` (a runner stopped or died before the end).
   */
  status: ManifestStatus;
  /**
   * Who is running it, one per runner: the owners of live claims, and one per Slurm job of the
   * study still queued or running with runs to do (`runnerId` `slurm-job-<id>`).
   */
  owners: RunOwner[];
}

export interface StudyDirectoryOptions {
  liveness?: LivenessProbe;
  staleClaimMs?: number;
  /** Wall clock for record times. Default `new Date()`. */
  now?: () => Date;
}

/**
 * The study directory on disk: the only code that reads and writes its files (names and schemas
 * come from `@llem/domain`'s study layout). Per-run records are the source of truth; claims
 * make several runners (processes, hosts) share one study without file locks; results are
 * published without clobbering; the manifest is an index rebuilt from the rest.
 *
 * @example
 * const dir = StudyDirectory.open('results/quickstart_20260101T000000Z');
 * const state = dir.state();           // statuses from records, results and claims
 * console.log(state.status, state.counts);
 */
export class StudyDirectory {
  readonly dir: string;
  readonly #liveness: LivenessProbe;
  readonly #staleClaimMs: number;
  readonly #now: () => Date;
  #holds = 0;

  constructor(dir: string, options: StudyDirectoryOptions = {}) {
    this.dir = resolve(dir);
    this.#liveness = options.liveness ?? defaultLiveness();
    this.#staleClaimMs = options.staleClaimMs ?? DEFAULT_STALE_CLAIM_MS;
    this.#now = options.now ?? (() => new Date());
  }

  /** Make a fresh `<outputDir>/<name>_<UTC stamp>/` with its `runs/` folder and `study.json`. */
  static create(
    options: { outputDir?: string; name: string; now: Date; cwd?: string; stored: StoredStudy },
    directoryOptions: StudyDirectoryOptions = {},
  ): StudyDirectory {
    const dir = createStudyDir(options);
    mkdirSync(join(dir, STUDY_FILES.runsDir), { recursive: true });
    const directory = new StudyDirectory(dir, directoryOptions);
    directory.writeStored(options.stored);
    return directory;
  }

  /**
   * Open an existing study directory. Throws `StudyError` when it holds neither `study.json`
   * nor `manifest.json` (not a study directory).
   */
  static open(dir: string, options: StudyDirectoryOptions = {}): StudyDirectory {
    const directory = new StudyDirectory(dir, options);
    if (!directory.isStudy()) {
      throw new StudyError(
        `${dir} is not a study directory: it has no ${STUDY_FILES.study} or ${STUDY_FILES.manifest} (expected a directory written by llem run, e.g. results/<study>_<timestamp>)`,
      );
    }
    return directory;
  }

  /** True when the directory holds a study (`study.json` or a manifest). */
  isStudy(): boolean {
    return existsSync(this.path(STUDY_FILES.study)) || existsSync(this.path(STUDY_FILES.manifest));
  }

  /** An absolute path inside the study directory. */
  path(relativePath: string): string {
    return join(this.dir, relativePath);
  }

  /** Every file of one run, absolute. */
  runPaths(key: string): RunFiles {
    const rel = runFiles(key);
    return Object.fromEntries(
      Object.entries(rel).map(([name, p]) => [name, this.path(p)]),
    ) as unknown as RunFiles;
  }

  // ── study.json ────────────────────────────────────────────────────────────────────────────

  readStored<Config = unknown>(): StoredStudy<Config> {
    const file = this.path(STUDY_FILES.study);
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(file, 'utf8'));
    } catch (error) {
      throw new StudyError(`cannot read the stored study ${file}: ${describe(error)}`, {
        cause: error,
      });
    }
    const parsed = StoredStudySchema.safeParse(raw);
    if (!parsed.success) {
      throw new StudyError(`${file} is not a stored study: ${issuesText(parsed.error.issues)}`);
    }
    return parsed.data as unknown as StoredStudy<Config>;
  }

  writeStored(stored: StoredStudy<unknown>): void {
    writeJsonAtomicSync(this.path(STUDY_FILES.study), stored);
  }

  // ── records ───────────────────────────────────────────────────────────────────────────────

  /** A run's record; `null` when it has none. An unreadable record is reported, not trusted. */
  readRecord(key: string): { record: RunRecord | null; problem: string | null } {
    const file = this.runPaths(key).record;
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT')
        return { record: null, problem: null };
      return { record: null, problem: `cannot read ${file}: ${describe(error)}` };
    }
    try {
      const parsed = RunRecordSchema.safeParse(JSON.parse(text));
      if (parsed.success) return { record: parsed.data, problem: null };
      return { record: null, problem: `${file}: ${issuesText(parsed.error.issues)}` };
    } catch (error) {
      return { record: null, problem: `${file}: not JSON (${describe(error)})` };
    }
  }

  /** Write a run's record atomically (temp file + rename). Only the run's owner writes it. */
  writeRecord(record: Omit<RunRecord, 'schemaVersion' | 'updatedAt'>): RunRecord {
    const full: RunRecord = {
      schemaVersion: RUN_RECORD_SCHEMA_VERSION,
      ...record,
      updatedAt: this.#now().toISOString(),
    };
    mkdirSync(this.path(STUDY_FILES.runsDir), { recursive: true });
    writeJsonAtomicSync(this.runPaths(record.key).record, full, { syncDir: false });
    return full;
  }

  /** Every readable record, by key (one directory listing, one read per record). */
  readRecords(): Map<string, RunRecord> {
    const out = new Map<string, RunRecord>();
    for (const name of this.#runFileNames()) {
      const file = runFileOf(name);
      if (file?.kind !== 'record') continue;
      const { record } = this.readRecord(file.key);
      if (record) out.set(file.key, record);
    }
    return out;
  }

  #runFileNames(): string[] {
    try {
      return readdirSync(this.path(STUDY_FILES.runsDir));
    } catch {
      return [];
    }
  }

  // ── claims ────────────────────────────────────────────────────────────────────────────────

  /** The current (highest) generation of a run's claim and whether it is live. */
  claimState(key: string): ClaimState {
    let generation = 0;
    while (existsSync(this.path(runClaimFile(key, generation + 1)))) generation += 1;
    if (generation === 0) return { kind: 'none' };
    return this.#judge(key, generation);
  }

  #judge(key: string, generation: number): ClaimState {
    const file = this.path(runClaimFile(key, generation));
    const read = this.#readHold(file, RunClaimSchema);
    if (read.value?.releasedAt) return { kind: 'released', generation, claim: read.value };
    if (read.value === null) {
      // Claims are created complete (link of a written file), so an unreadable one was damaged
      // by hand or by a filesystem: trust it only while it is fresh.
      return Date.now() - read.mtimeMs > this.#staleClaimMs
        ? { kind: 'stale', generation, claim: null, why: 'its claim file is unreadable' }
        : { kind: 'live', generation, claim: unknownClaim(key, generation) };
    }
    const gone = this.#ownerGone(read.value.owner, read.mtimeMs);
    return gone === null
      ? { kind: 'live', generation, claim: read.value }
      : { kind: 'stale', generation, claim: read.value, why: gone };
  }

  /** A claim or hold file: its parsed content (`null`: unreadable or invalid) and its mtime. */
  #readHold<T>(
    file: string,
    schema: { safeParse(v: unknown): { success: true; data: T } | { success: false } },
  ): { value: T | null; mtimeMs: number } {
    let mtimeMs = 0;
    try {
      mtimeMs = statSync(file).mtimeMs;
    } catch {
      return { value: null, mtimeMs: 0 }; // vanished: as old as can be
    }
    try {
      const parsed = schema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
      return { value: parsed.success ? parsed.data : null, mtimeMs };
    } catch {
      return { value: null, mtimeMs };
    }
  }

  /**
   * Why `owner` (of a claim or hold touched at `mtimeMs`) is gone, or `null` while it lives:
   * same host and rebooted since, or its pid dead or reused; its Slurm task (in that
   * incarnation) ended; or no heartbeat for `staleClaimMs`.
   */
  #ownerGone(owner: RunOwner, mtimeMs: number): string | null {
    const probe = this.#liveness;
    if (owner.host === probe.host) {
      // This machine knows its own processes exactly: Slurm is not asked about them.
      if (owner.bootId && probe.bootId && owner.bootId !== probe.bootId) {
        return `its runner (pid ${owner.pid}) ran before this machine rebooted`;
      }
      if (!probe.isPidAlive(owner.pid)) return `its runner (pid ${owner.pid}) is gone`;
      const started = owner.processStart ? probe.processStart?.(owner.pid) : null;
      if (started && started !== owner.processStart) {
        return `its runner (pid ${owner.pid}) is gone (the pid now belongs to another process)`;
      }
    } else if (owner.slurm && probe.isSlurmJobActive) {
      const { jobId, arrayJobId, arrayTaskId, restartCount } = owner.slurm;
      if (probe.isSlurmJobActive(jobId, { arrayJobId, arrayTaskId, restartCount }) === false) {
        return `Slurm job ${jobId} ended`;
      }
    }
    const age = Date.now() - mtimeMs;
    if (age > this.#staleClaimMs) {
      return `no heartbeat from ${owner.host} pid ${owner.pid} for ${Math.round(age / 1000)} s`;
    }
    return null;
  }

  /**
   * Claim a run for `owner`: create the next claim generation exclusively. Returns the held
   * claim, or `null` when someone else holds a live claim (or won the race for this generation).
   * A stale or released claim is superseded, never deleted.
   */
  claim(key: string, owner: RunOwner): HeldClaim | null {
    const state = this.claimState(key);
    if (state.kind === 'live') return null;
    const generation = state.kind === 'none' ? 1 : state.generation + 1;
    const claim: RunClaim = {
      schemaVersion: RUN_CLAIM_SCHEMA_VERSION,
      key,
      generation,
      owner,
      claimedAt: this.#now().toISOString(),
      releasedAt: null,
    };
    const file = this.path(runClaimFile(key, generation));
    const created = createExclusive(file, `${JSON.stringify(claim, null, 2)}\n`);
    return created ? { key, generation, claim } : null;
  }

  /** True while `held` is the run's current claim (no later generation superseded it). */
  holds(held: HeldClaim): boolean {
    return !existsSync(this.path(runClaimFile(held.key, held.generation + 1)));
  }

  /** The heartbeat: touch the claim file. A claim that vanished or was superseded is skipped. */
  touch(held: HeldClaim): void {
    const now = new Date();
    try {
      utimesSync(this.path(runClaimFile(held.key, held.generation)), now, now);
    } catch {
      // Gone (a hand-cleaned directory): nothing to keep alive.
    }
  }

  /** Mark a held claim released (the owner is done with the run, whatever the outcome). */
  release(held: HeldClaim): void {
    if (!this.holds(held)) return;
    const released: RunClaim = { ...held.claim, releasedAt: this.#now().toISOString() };
    try {
      // No fsync: a release lost to a power cut leaves a claim whose owner is gone (stale).
      writeJsonAtomicSync(this.path(runClaimFile(held.key, held.generation)), released, {
        syncDir: false,
        fsync: false,
      });
    } catch {
      // The record says how the run ended; an unreleased claim of a gone owner goes stale.
    }
  }

  // ── resources: GPUs and exclusive groups ─────────────────────────────────────────────────

  /**
   * Hold `resource` (a GPU, an exclusive group: `resourceName`) for the run `key`: create this
   * holder's file, then look for other holders. A live one means the resource is taken: this
   * holder's file is removed and `null` returned (try again later). Holders whose owner is gone
   * are removed on the way. Of several runners racing for a resource at most one keeps it (each
   * looks after creating its own file, so two at once both see each other and both let go).
   */
  holdResource(resource: string, key: string, owner: RunOwner): HeldResource | null {
    mkdirSync(this.path(STUDY_FILES.resourcesDir), { recursive: true });
    this.#holds += 1;
    const holder = `${owner.runnerId}-${this.#holds}`;
    const file = this.path(resourceHoldFile(resource, holder));
    const hold: ResourceHold = {
      schemaVersion: RESOURCE_HOLD_SCHEMA_VERSION,
      resource,
      holder,
      owner,
      key,
      heldAt: this.#now().toISOString(),
    };
    if (!createExclusive(file, `${JSON.stringify(hold, null, 2)}\n`)) return null;
    for (const other of this.#holdFiles(resource)) {
      if (other === file) continue;
      const read = this.#readHold(other, ResourceHoldSchema);
      const gone = read.value
        ? this.#ownerGone(read.value.owner, read.mtimeMs)
        : Date.now() - read.mtimeMs > this.#staleClaimMs
          ? 'unreadable'
          : null;
      if (gone !== null) {
        rmSync(other, { force: true });
        continue;
      }
      rmSync(file, { force: true });
      return null;
    }
    return { resource, holder, file };
  }

  /** Let go of a held resource. */
  releaseResource(held: HeldResource): void {
    rmSync(held.file, { force: true });
  }

  /** The heartbeat of a held resource. */
  touchResource(held: HeldResource): void {
    const now = new Date();
    try {
      utimesSync(held.file, now, now);
    } catch {
      // Removed by hand: nothing to keep alive.
    }
  }

  #holdFiles(resource: string): string[] {
    const dir = this.path(STUDY_FILES.resourcesDir);
    try {
      return readdirSync(dir)
        .filter((name) => name.startsWith(`${resource}~`) && !name.endsWith('.tmp'))
        .map((name) => join(dir, name));
    } catch {
      return [];
    }
  }

  /**
   * The owners of live run claims other than `runnerId` (other runners working on the study
   * now): one directory listing, the current claim of each run read.
   */
  otherLiveOwners(runnerId: string): RunOwner[] {
    const current = new Map<string, number>();
    for (const name of this.#runFileNames()) {
      const file = runFileOf(name);
      if (file?.kind === 'claim') {
        current.set(file.key, Math.max(current.get(file.key) ?? 0, file.generation));
      }
    }
    const owners = new Map<string, RunOwner>();
    for (const [key, generation] of current) {
      const state = this.#judge(key, generation);
      if (state.kind === 'live' && state.claim.owner.runnerId !== runnerId) {
        owners.set(state.claim.owner.runnerId, state.claim.owner);
      }
    }
    return [...owners.values()];
  }

  // ── results ───────────────────────────────────────────────────────────────────────────────

  /** True when the run's result file exists (not checked further). */
  hasResult(key: string): boolean {
    return existsSync(this.runPaths(key).result);
  }

  /**
   * Move a run's result aside (`<key>.json.damaged-<stamp>`) so the run can be measured again;
   * the file is kept, never deleted. Returns the new path (relative), or `null` if it was gone.
   */
  setResultAside(key: string, kind: 'damaged' | 'conflict' = 'damaged'): string | null {
    const stamp = this.#now().toISOString().replace(/[-:.]/g, '');
    let aside = runAsideFile(key, kind, stamp);
    for (let n = 2; existsSync(this.path(aside)); n += 1) {
      aside = runAsideFile(key, kind, `${stamp}-${n}`);
    }
    try {
      renameSync(this.runPaths(key).result, this.path(aside));
      return aside;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new StudyError(`cannot set aside the result of ${key}: ${describe(error)}`, {
        cause: error,
      });
    }
  }

  // ── Slurm submissions ─────────────────────────────────────────────────────────────────────

  /** The files of Slurm submission `n`, absolute. */
  slurmPaths(n: number): SlurmSubmissionFiles {
    const rel = slurmSubmissionFiles(n);
    return {
      submission: this.path(rel.submission),
      script: this.path(rel.script),
      logPattern: this.path(rel.logPattern),
    };
  }

  /**
   * Take the next Slurm submission number and create its file exclusively, with `jobId: null`
   * (sbatch has not answered yet). Of two submitters at once each gets a number of its own.
   */
  createSubmission(
    init: Omit<
      SlurmSubmission,
      'schemaVersion' | 'submission' | 'createdAt' | 'jobId' | 'submittedAt' | 'error'
    >,
  ): SlurmSubmission {
    mkdirSync(this.path(STUDY_FILES.slurmDir), { recursive: true });
    const taken = this.#submissionNumbers();
    for (let n = (taken.at(-1) ?? 0) + 1; ; n += 1) {
      const submission: SlurmSubmission = {
        schemaVersion: SLURM_SUBMISSION_SCHEMA_VERSION,
        submission: n,
        createdAt: this.#now().toISOString(),
        ...init,
        jobId: null,
        submittedAt: null,
        error: null,
      };
      const text = `${JSON.stringify(SlurmSubmissionSchema.parse(submission), null, 2)}\n`;
      if (createExclusive(this.slurmPaths(n).submission, text)) return submission;
    }
  }

  /** Rewrite a submission atomically (its submitter only: the job id once sbatch answered). */
  writeSubmission(submission: SlurmSubmission): void {
    writeJsonAtomicSync(
      this.slurmPaths(submission.submission).submission,
      SlurmSubmissionSchema.parse(submission),
    );
  }

  /** Write submission `n`'s batch script (executable). Returns its absolute path. */
  writeSubmissionScript(n: number, text: string): string {
    const file = this.slurmPaths(n).script;
    mkdirSync(this.path(STUDY_FILES.slurmDir), { recursive: true });
    const tmp = uniqueTempPath(file);
    writeFileSync(tmp, text, { mode: 0o755 });
    renameSync(tmp, file);
    return file;
  }

  /** Submission `n`, or why it cannot be read. */
  readSubmission(n: number): { submission: SlurmSubmission | null; problem: string | null } {
    const file = this.slurmPaths(n).submission;
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(file, 'utf8'));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      return {
        submission: null,
        problem: code === 'ENOENT' ? `${file} is missing` : describe(error),
      };
    }
    const parsed = SlurmSubmissionSchema.safeParse(raw);
    if (!parsed.success) {
      return { submission: null, problem: `${file}: ${issuesText(parsed.error.issues)}` };
    }
    return { submission: parsed.data, problem: null };
  }

  /** Every readable submission, oldest first. */
  readSubmissions(): SlurmSubmission[] {
    return this.#submissionNumbers().flatMap((n) => {
      const { submission } = this.readSubmission(n);
      return submission ? [submission] : [];
    });
  }

  #submissionNumbers(): number[] {
    let names: string[];
    try {
      names = readdirSync(this.path(STUDY_FILES.slurmDir));
    } catch {
      return [];
    }
    return names
      .map(slurmSubmissionNumber)
      .filter((n): n is number => n !== null)
      .sort((a, b) => a - b);
  }

  /**
   * Mark the runs that a still-queued or running Slurm job of this study will do: a run that is
   * not completed, not claimed, and not a failure retried since its submission. Each such job
   * becomes an owner of the study (`running (Slurm job N)`). Slurm is asked through the
   * liveness probe; a job it cannot tell about counts as ended.
   */
  #markQueued(runs: RunState[], owners: Map<string, RunOwner>): void {
    const submissions = this.readSubmissions().filter((s) => s.jobId !== null);
    if (submissions.length === 0 || !this.#liveness.isSlurmJobActive) return;
    const byKey = new Map(runs.map((r) => [r.key, r]));
    for (const submission of submissions.reverse()) {
      const jobId = submission.jobId as string;
      if (this.#liveness.isSlurmJobActive(jobId) !== true) continue;
      let waiting = false;
      for (const { key, attempts } of submission.tasks.flat()) {
        const run = byKey.get(key);
        if (!run || run.status === 'completed' || run.liveOwner) continue;
        if (run.status === 'failed' && run.attempts !== attempts) continue;
        run.queuedIn ??= jobId;
        waiting = true;
      }
      if (waiting) {
        owners.set(`slurm-job-${jobId}`, {
          host: submission.submittedBy.host,
          pid: submission.submittedBy.pid,
          runnerId: `slurm-job-${jobId}`,
          slurm: { jobId, arrayJobId: jobId, arrayTaskId: null, nodeName: null },
        });
      }
    }
  }

  // ── manifest ──────────────────────────────────────────────────────────────────────────────

  /** The manifest as written, or why it cannot be used. */
  readManifest(): { manifest: Manifest | null; problem: string | null } {
    const file = this.path(STUDY_FILES.manifest);
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(file, 'utf8'));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      return { manifest: null, problem: code === 'ENOENT' ? 'missing' : describe(error) };
    }
    const parsed = ManifestSchema.safeParse(raw);
    if (!parsed.success) return { manifest: null, problem: issuesText(parsed.error.issues) };
    return { manifest: parsed.data, problem: null };
  }

  /** Write the manifest atomically. */
  writeManifest(manifest: Manifest): void {
    writeJsonAtomicSync(this.path(STUDY_FILES.manifest), manifest, { syncDir: false });
  }

  /**
   * The manifest's entries as records, for a study written before per-run records existed (it
   * has a readable manifest and no record file). Empty otherwise.
   */
  #legacyRecords(): Map<string, RunRecord> {
    const out = new Map<string, RunRecord>();
    if (this.#runFileNames().some((n) => runFileOf(n)?.kind === 'record')) return out;
    const { manifest } = this.readManifest();
    for (const e of manifest?.entries ?? []) {
      out.set(e.key, {
        schemaVersion: RUN_RECORD_SCHEMA_VERSION,
        key: e.key,
        configHash: e.configHash,
        cycle: e.cycle,
        copy: e.copy,
        label: e.label,
        status: e.status,
        attempts: e.attempts,
        owner: null,
        startedAt: e.startedAt,
        endedAt: e.endedAt,
        error: e.error ? legacyError(e.error) : null,
        resultFile: e.resultFile,
        updatedAt: manifest?.updatedAt ?? new Date(0).toISOString(),
      });
    }
    return out;
  }

  /**
   * A study written before per-run records existed (a manifest, no records): write a record for
   * every entry the manifest holds, once, so records are the truth from now on. Returns how
   * many were written (0 when the study already has records or no readable manifest).
   */
  migrateLegacyManifest(): number {
    let written = 0;
    for (const record of this.#legacyRecords().values()) {
      if (record.status === 'pending' && record.attempts === 0) continue;
      const { schemaVersion: _v, updatedAt: _u, ...rest } = record;
      this.writeRecord(rest);
      written += 1;
    }
    return written;
  }

  /**
   * `study.json`, or — for a directory that lost it or predates it — a plan rebuilt from the
   * manifest's entries (one config per config hash, in order; no config contents). Throws
   * `StudyError` when neither can be read.
   */
  readStoredOrManifest(): { stored: StoredStudy; fromManifest: boolean } {
    try {
      return { stored: this.readStored(), fromManifest: false };
    } catch (error) {
      const { manifest, problem } = this.readManifest();
      if (!manifest) {
        throw new StudyError(
          `${this.dir}: neither ${STUDY_FILES.study} (${(error as Error).message}) nor ${STUDY_FILES.manifest} (${problem}) can be read`,
          { cause: error },
        );
      }
      const configs: StoredStudy['plan']['configs'][number][] = [];
      const indexOf = new Map<string, number>();
      const runs = manifest.entries.map((e, ordinal) => {
        const id = `${e.configHash}/${e.copy}`;
        let index = indexOf.get(id);
        if (index === undefined) {
          index = configs.length;
          indexOf.set(id, index);
          configs.push({
            index,
            label: e.label,
            configHash: e.configHash,
            copy: e.copy,
            config: null,
          });
        }
        return {
          key: e.key,
          configIndex: index,
          configHash: e.configHash,
          copy: e.copy,
          cycle: e.cycle,
          ordinal,
        };
      });
      return {
        stored: {
          schemaVersion: 1,
          toolVersion: manifest.toolVersion,
          createdAt: manifest.createdAt,
          plan: {
            name: manifest.studyName,
            designHash: manifest.designHash,
            execution: {},
            configs,
            runs,
          },
        },
        fromManifest: true,
      };
    }
  }

  /**
   * Rebuild the study's state from `study.json`, the records, the results and the claims. Needs
   * no manifest: this is how a missing or damaged one is rebuilt.
   */
  state(stored: StoredStudy = this.readStored()): StudyState {
    const found = this.readRecords();
    const records = found.size > 0 ? found : this.#legacyRecords();
    const labels = new Map(stored.plan.configs.map((c) => [c.index, c.label]));
    const runs: RunState[] = [];
    const owners = new Map<string, RunOwner>();
    const seen = new Set<string>();
    const add = (
      base: Pick<RunState, 'key' | 'configHash' | 'cycle' | 'copy' | 'label'>,
      scheduled: boolean,
    ): RunState => {
      seen.add(base.key);
      const run = this.#runState(base, records.get(base.key) ?? null, scheduled);
      if (run.liveOwner) owners.set(run.liveOwner.runnerId, run.liveOwner);
      runs.push(run);
      return run;
    };
    for (const r of stored.plan.runs) {
      add(
        {
          key: r.key,
          configHash: r.configHash,
          cycle: r.cycle,
          copy: r.copy,
          label: labels.get(r.configIndex) ?? r.configHash,
        },
        true,
      );
    }
    // A forced resume keeps completed runs the new plan no longer schedules, in the order they
    // ran.
    const unscheduled = [...records.values()]
      .filter((r) => !seen.has(r.key))
      .sort(
        (a, b) =>
          (a.startedAt ?? '').localeCompare(b.startedAt ?? '') || a.key.localeCompare(b.key),
      );
    for (const record of unscheduled) {
      const run = this.#runState(record, record, false);
      if (run.status === 'completed') {
        runs.push(run);
        seen.add(record.key);
      }
    }
    this.#markQueued(runs, owners);
    const scheduled = runs.filter((r) => r.scheduled);
    const counts = countManifestEntries(runs.map(toManifestEntry));
    const status: ManifestStatus =
      owners.size > 0
        ? 'running'
        : scheduled.every((r) => r.status === 'completed' || r.status === 'failed')
          ? 'completed'
          : 'interrupted';
    return { dir: this.dir, stored, runs, counts, status, owners: [...owners.values()] };
  }

  #runState(
    base: Pick<RunState, 'key' | 'configHash' | 'cycle' | 'copy' | 'label'>,
    record: RunRecord | null,
    scheduled: boolean,
  ): RunState {
    const claim = this.claimState(base.key);
    const liveOwner = claim.kind === 'live' ? claim.claim.owner : null;
    const hasResult = this.hasResult(base.key);
    const fields = recordOrPending(base, record);
    const out: RunState = {
      key: fields.key,
      configHash: fields.configHash,
      cycle: fields.cycle,
      copy: fields.copy,
      label: fields.label,
      status: fields.status,
      attempts: fields.attempts,
      error: fields.error,
      startedAt: fields.startedAt,
      endedAt: fields.endedAt,
      resultFile: hasResult ? runFiles(base.key).result : null,
      record,
      liveOwner,
      claim: claim.kind,
      queuedIn: null,
      scheduled,
    };
    if (hasResult) {
      // A result on disk means the run completed, even when its runner died before saying so.
      out.status = 'completed';
      out.error = null;
    } else if (liveOwner) {
      out.status = 'running';
    } else if (out.status === 'running') {
      out.status = 'pending';
      out.error = {
        type: 'interrupted',
        message:
          claim.kind === 'stale'
            ? `the runner stopped while this run was running (${claim.why})`
            : 'the runner stopped while this run was running',
      };
    } else if (out.status === 'completed') {
      out.status = 'pending';
      out.error = {
        type: 'no-result',
        message: `its result file ${runFiles(base.key).result} is missing`,
      };
    }
    return out;
  }

  /** The manifest for `state`: the index other tools (and people) read. */
  manifestFor(state: StudyState, toolVersion: string, createdAt?: string): Manifest {
    const now = this.#now().toISOString();
    const entries = state.runs.map(toManifestEntry);
    return {
      schemaVersion: MANIFEST_SCHEMA_VERSION,
      toolVersion,
      studyName: state.stored.plan.name,
      designHash: state.stored.plan.designHash,
      status: state.status,
      counts: countManifestEntries(entries),
      createdAt: createdAt ?? state.stored.createdAt,
      updatedAt: now,
      entries,
    };
  }

  /** Rebuild the manifest from the records and write it. Returns the state it was built from. */
  rebuildManifest(toolVersion: string): StudyState {
    const state = this.state();
    this.writeManifest(this.manifestFor(state, toolVersion));
    return state;
  }
}

/** Which run a record is for. */
export type RunIdentity = Pick<RunRecord, 'key' | 'configHash' | 'cycle' | 'copy' | 'label'>;

/**
 * The fields of `record` for the run `base` names, or those of a pending run that has none yet
 * (no attempts, no owner, no times, no error, no result).
 *
 * @example
 * directory.writeRecord({ ...recordOrPending(run, current), status: 'running' });
 */
export function recordOrPending(
  base: RunIdentity,
  record: RunRecord | null,
): Omit<RunRecord, 'schemaVersion' | 'updatedAt'> {
  return {
    key: base.key,
    configHash: base.configHash,
    cycle: base.cycle,
    copy: base.copy,
    label: base.label,
    status: record?.status ?? 'pending',
    attempts: record?.attempts ?? 0,
    owner: record?.owner ?? null,
    startedAt: record?.startedAt ?? null,
    endedAt: record?.endedAt ?? null,
    error: record?.error ?? null,
    resultFile: record?.resultFile ?? null,
    ...(record?.devices ? { devices: record.devices } : {}),
  };
}

/**
 * An error as a manifest written before `RUN_FAILURE_TYPES` holds it (`type` was the worker's
 * error class name): the closed type it stands for, the old name kept as the code.
 */
function legacyError(error: NonNullable<ManifestEntry['error']>): NonNullable<RunRecord['error']> {
  const byName: Readonly<Record<string, RunFailureType>> = {
    EngineError: 'engine',
    ConfigError: 'config',
    MeasurementError: 'measurement',
  };
  const known = (RUN_FAILURE_TYPES as readonly string[]).includes(error.type);
  const type = known ? (error.type as RunFailureType) : (byName[error.type] ?? 'crash');
  const code = error.code ?? (known ? undefined : error.type);
  return { type, message: error.message, ...(code ? { code } : {}) };
}

function toManifestEntry(run: RunState): ManifestEntry {
  return {
    key: run.key,
    configHash: run.configHash,
    cycle: run.cycle,
    copy: run.copy,
    label: run.label,
    status: run.status,
    resultFile: run.resultFile,
    error: run.error,
    startedAt: run.startedAt,
    endedAt: run.endedAt,
    attempts: run.attempts,
  };
}

/** Create `file` with `text` only if it does not exist: write a private temp file, `link()` it. */
function createExclusive(file: string, text: string): boolean {
  const tmp = uniqueTempPath(file);
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmp, file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new StudyError(`cannot create ${file}: ${describe(error)}`, { cause: error });
  } finally {
    // No directory fsync: a claim lost to a power cut died with its owner (the run is free).
    rmSync(tmp, { force: true });
  }
}

function unknownClaim(key: string, generation: number): RunClaim {
  return {
    schemaVersion: RUN_CLAIM_SCHEMA_VERSION,
    key,
    generation,
    owner: { host: 'unknown', pid: 1, runnerId: `unknown-${key}-${generation}` },
    claimedAt: new Date(0).toISOString(),
    releasedAt: null,
  };
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function issuesText(issues: readonly { path: PropertyKey[]; message: string }[]): string {
  return issues
    .slice(0, 3)
    .map((i) => `${i.path.length > 0 ? i.path.map(String).join('.') : '(root)'}: ${i.message}`)
    .join('; ');
}

export type { RunnerPlan };
