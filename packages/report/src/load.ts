import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import {
  checkRunResult,
  type Manifest,
  type ManifestEntryStatus,
  type ManifestError,
  ManifestSchema,
  type RunOwner,
  type RunResult,
  SkippedFileSchema,
  STUDY_FILES,
} from '@llem/domain';
import { type Logger, noopLogger } from '@llem/resilience';
import { StudyDirectory, type StudyState } from '@llem/study';
import { ReportError } from './errors';

/** One scheduled run as the report sees it: manifest entry + its result (if readable). */
export interface RunRecord {
  key: string;
  configHash: string;
  label: string;
  cycle: number;
  copy: number;
  status: ManifestEntryStatus;
  /** The runner's error for failed runs, or why a result file could not be used. */
  error: ManifestError | null;
  startedAt: string | null;
  endedAt: string | null;
  /** Absolute path of the result JSON, when the manifest names one. */
  resultFile: string | null;
  /** The parsed result; `null` for failed/pending runs and unreadable result files. */
  result: RunResult | null;
  /** Absolute path of the sampler timeseries CSV, when the run has one. */
  timeseriesFile: string | null;
  /** Absolute path of the per-request records (`runs/<key>.requests.jsonl`), when one exists. */
  requestsFile: string | null;
  /** Absolute path of a managed server's scraped metrics (`runs/<key>.metrics.jsonl`), when one exists. */
  metricsFile: string | null;
}

/** A config that the plan rejected before running (from `skipped.json`, when present). */
export interface SkippedConfig {
  label: string;
  reason: string;
}

export interface ConfigInfo {
  configHash: string;
  label: string;
}

/** Everything the report needs from a study directory. */
export interface LoadedStudy {
  dir: string;
  /**
   * The study's index as rebuilt from its run records (the `manifest.json` on disk may be stale,
   * damaged or missing): name, design hash, computed status and counts, one entry per run.
   */
  manifest: Manifest;
  /** Who is running runs of the study now (live claims); empty when nobody is. */
  owners: RunOwner[];
  runs: RunRecord[];
  /** Unique configs in schedule order. */
  configs: ConfigInfo[];
  skipped: SkippedConfig[];
}

export interface LoadStudyOptions {
  logger?: Logger;
}

async function readJson(file: string): Promise<unknown> {
  return JSON.parse(await readFile(file, 'utf8')) as unknown;
}

function describeIssues(issues: readonly { path: PropertyKey[]; message: string }[]): string {
  return issues
    .slice(0, 3)
    .map((i) => `${i.path.length ? i.path.map(String).join('.') : '(root)'}: ${i.message}`)
    .join('; ');
}

/**
 * Read and validate a study's `manifest.json` as written (an index: `loadStudy` rebuilds the
 * study's state from its run records instead).
 *
 * @example
 * const manifest = await readManifest('results/quickstart_20260101T000000Z');
 */
export async function readManifest(studyDir: string): Promise<Manifest> {
  const file = join(studyDir, STUDY_FILES.manifest);
  let raw: unknown;
  try {
    raw = await readJson(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new ReportError(
        'STUDY_NOT_FOUND',
        `${studyDir} is not a study directory: ${STUDY_FILES.manifest} not found (expected a directory written by \`llem run\`, e.g. results/<study>_<timestamp>)`,
        { cause: error },
      );
    }
    throw new ReportError('MANIFEST_INVALID', `${file}: not valid JSON (${String(error)})`, {
      cause: error,
    });
  }
  const parsed = ManifestSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ReportError(
      'MANIFEST_INVALID',
      `${file}: not a llem manifest: ${describeIssues(parsed.error.issues)}`,
      { cause: parsed.error },
    );
  }
  return parsed.data;
}

async function readSkipped(dir: string, logger: Logger): Promise<SkippedConfig[]> {
  const file = join(dir, STUDY_FILES.skipped);
  let raw: unknown;
  try {
    raw = await readJson(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      logger.warn(`${file}: ignored (${String(error)})`);
    }
    return [];
  }
  const parsed = SkippedFileSchema.safeParse(raw);
  if (!parsed.success) {
    logger.warn(`${file}: ignored (${describeIssues(parsed.error.issues)})`);
    return [];
  }
  return parsed.data.map((s) => ({
    label: s.label,
    reason: s.reasons.map((r) => (r.path ? `${r.path}: ${r.message}` : r.message)).join('; '),
  }));
}

/**
 * The study's state from its records, results and claims (`@llem/study`'s `StudyDirectory`):
 * a `ReportError` when the directory is not a study or its plan cannot be read.
 */
function readState(
  dir: string,
  studyDir: string,
): { directory: StudyDirectory; state: StudyState } {
  let directory: StudyDirectory;
  try {
    directory = StudyDirectory.open(dir);
  } catch (error) {
    throw new ReportError('STUDY_NOT_FOUND', (error as Error).message.replace(dir, studyDir), {
      cause: error,
    });
  }
  try {
    const { stored } = directory.readStoredOrManifest();
    return { directory, state: directory.state(stored) };
  } catch (error) {
    throw new ReportError(
      'MANIFEST_INVALID',
      `${studyDir}: neither ${STUDY_FILES.study} nor ${STUDY_FILES.manifest} can be read (${(error as Error).message})`,
      { cause: error },
    );
  }
}

/**
 * Load a study directory: its state rebuilt from the run records (so a stale, damaged or
 * missing `manifest.json` does not matter), every completed run's result checked against the
 * schema of the version that wrote it, and each run's timeseries. A result that cannot be read
 * or validated does not stop the report: the run keeps its status, carries an `InvalidResult`
 * error and is left out of the statistics.
 *
 * @example
 * const study = await loadStudy('results/quickstart_20260101T000000Z');
 * console.log(study.manifest.status, study.runs.filter((r) => r.result).length, 'usable results');
 */
export async function loadStudy(
  studyDir: string,
  options: LoadStudyOptions = {},
): Promise<LoadedStudy> {
  const logger = options.logger ?? noopLogger;
  const dir = resolve(studyDir);
  const dirStat = await stat(dir).catch(() => null);
  if (!dirStat?.isDirectory()) {
    throw new ReportError('STUDY_NOT_FOUND', `${studyDir}: no such study directory`);
  }
  const { directory, state } = readState(dir, studyDir);
  const manifest = directory.manifestFor(state, state.stored.toolVersion);
  const runs: RunRecord[] = [];
  const configs = new Map<string, ConfigInfo>();
  for (const entry of state.runs) {
    if (!configs.has(entry.configHash)) {
      configs.set(entry.configHash, { configHash: entry.configHash, label: entry.label });
    }
    const paths = directory.runPaths(entry.key);
    const resultFile = entry.resultFile ? resolve(dir, entry.resultFile) : null;
    let result: RunResult | null = null;
    let error = entry.error;
    if (entry.status === 'completed' && resultFile) {
      try {
        const check = checkRunResult(await readJson(resultFile));
        if (check.status === 'valid') result = check.result;
        else {
          error = {
            type: 'InvalidResult',
            message: `${relative(dir, resultFile)}: ${
              check.status === 'newer'
                ? `written by a newer llem (result schemaVersion ${check.version}); upgrade llem to read it`
                : check.reason
            }`,
          };
        }
      } catch (e) {
        error = { type: 'InvalidResult', message: `${relative(dir, resultFile)}: ${String(e)}` };
      }
      if (error) logger.warn(`run ${entry.key}: result not usable: ${error.message}`);
    }
    runs.push({
      key: entry.key,
      configHash: entry.configHash,
      label: entry.label,
      cycle: entry.cycle,
      copy: entry.copy,
      status: entry.status,
      error,
      startedAt: entry.startedAt,
      endedAt: entry.endedAt,
      resultFile,
      result,
      timeseriesFile: existsSync(paths.timeseries) ? paths.timeseries : null,
      requestsFile: existsSync(paths.requests) ? paths.requests : null,
      metricsFile: existsSync(paths.metrics) ? paths.metrics : null,
    });
  }
  return {
    dir,
    manifest,
    owners: state.owners,
    runs,
    configs: [...configs.values()],
    skipped: await readSkipped(dir, logger),
  };
}

/**
 * How the study stands, in words: `completed`, `interrupted`, or who is running it
 * (`running (Slurm job 812)`, `running (pid 4242 on gpu-node-1)`).
 *
 * @example
 * describeStudyStatus(study); // 'running (Slurm job 812)'
 */
export function describeStudyStatus(study: Pick<LoadedStudy, 'manifest' | 'owners'>): string {
  if (study.manifest.status !== 'running' || study.owners.length === 0) {
    return study.manifest.status;
  }
  const jobs = [
    ...new Set(study.owners.flatMap((o) => (o.slurm ? [o.slurm.arrayJobId ?? o.slurm.jobId] : []))),
  ];
  const local = study.owners.filter((o) => !o.slurm).map((o) => `pid ${o.pid} on ${o.host}`);
  const who = [...jobs.map((j) => `Slurm job ${j}`), ...local];
  return `running (${who.join(', ')})`;
}
