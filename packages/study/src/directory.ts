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
  runAsideFile,
  runClaimFile,
  runFiles,
  STUDY_FILES,
  StoredStudySchema,
} from '@llem/domain';
import { StudyError } from './errors';
import { uniqueTempPath, writeJsonAtomicSync } from './internal/atomic';
import type { RunnerPlan, StoredStudy } from './plan';
import { createStudyDir } from './study-dir';

/** How often a runner touches the claims it holds. */
export const DEFAULT_HEARTBEAT_MS = 10_000;
/**
 * A claim whose heartbeat is older than this is stale even when its owner cannot be checked
 * (another host without Slurm) or its pid was reused. Generous: a shared filesystem may cache
 * file times for a minute.
 */
export const DEFAULT_STALE_CLAIM_MS = 300_000;

/** Whether the owner of a claim is still there. Injected in tests; the default asks the OS. */
export interface LivenessProbe {
  /** This machine's name, compared with a claim's `owner.host`. */
  host: string;
  /** Whether a process with this pid runs on this machine. */
  isPidAlive(pid: number): boolean;
  /** Whether a Slurm job is still queued or running; `null` when that cannot be told here. */
  isSlurmJobActive?(jobId: string): boolean | null;
}

/** The OS's answer: `os.hostname()` and `kill(pid, 0)`; no Slurm check. */
export const systemLiveness: LivenessProbe = {
  host: hostname(),
  isPidAlive(pid) {
    try {
      process.kill(pid, 0);
      return true;
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === 'EPERM';
    }
  },
};

/** The owner record of this process (with its Slurm job, when it runs in one). */
export function currentOwner(
  env: NodeJS.ProcessEnv = process.env,
  runnerId: string = randomBytes(8).toString('hex'),
): RunOwner {
  const owner: RunOwner = { host: hostname(), pid: process.pid, runnerId };
  const jobId = env.SLURM_JOB_ID;
  if (jobId) {
    owner.slurm = {
      jobId,
      arrayJobId: env.SLURM_ARRAY_JOB_ID || null,
      arrayTaskId: env.SLURM_ARRAY_TASK_ID || null,
      nodeName: env.SLURMD_NODENAME || null,
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
  /** The owners of live claims (who is running it), one per runner. */
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

  constructor(dir: string, options: StudyDirectoryOptions = {}) {
    this.dir = resolve(dir);
    this.#liveness = options.liveness ?? systemLiveness;
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
      if (!name.endsWith('.record.json')) continue;
      const key = name.slice(0, -'.record.json'.length);
      const { record } = this.readRecord(key);
      if (record) out.set(key, record);
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
    let claim: RunClaim | null = null;
    let mtimeMs: number;
    try {
      mtimeMs = statSync(file).mtimeMs;
      const parsed = RunClaimSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
      if (parsed.success) claim = parsed.data;
    } catch {
      // Vanished or unreadable: judged by age below.
      mtimeMs = 0;
    }
    if (claim?.releasedAt) return { kind: 'released', generation, claim };
    const age = Date.now() - mtimeMs;
    if (claim === null) {
      // Claims are created complete (link of a written file), so an unreadable one was damaged
      // by hand or by a filesystem: trust it only while it is fresh.
      return age > this.#staleClaimMs
        ? { kind: 'stale', generation, claim, why: 'its claim file is unreadable' }
        : { kind: 'live', generation, claim: unknownClaim(key, generation) };
    }
    const owner = claim.owner;
    if (owner.host === this.#liveness.host && !this.#liveness.isPidAlive(owner.pid)) {
      return { kind: 'stale', generation, claim, why: `its runner (pid ${owner.pid}) is gone` };
    }
    if (owner.slurm && this.#liveness.isSlurmJobActive) {
      if (this.#liveness.isSlurmJobActive(owner.slurm.jobId) === false) {
        return { kind: 'stale', generation, claim, why: `Slurm job ${owner.slurm.jobId} ended` };
      }
    }
    if (age > this.#staleClaimMs) {
      return {
        kind: 'stale',
        generation,
        claim,
        why: `no heartbeat from ${owner.host} pid ${owner.pid} for ${Math.round(age / 1000)} s`,
      };
    }
    return { kind: 'live', generation, claim };
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
    if (this.#runFileNames().some((n) => n.endsWith('.record.json'))) return out;
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
