import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join, relative, resolve } from 'node:path';
import {
  type Manifest,
  type ManifestEntryStatus,
  type ManifestError,
  ManifestSchema,
  type RunResult,
  RunResultSchema,
} from '@llem/domain';
import { type Logger, noopLogger } from '@llem/resilience';
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
  /** Absolute path of the sampler timeseries (CSV or JSON lines), when one was found. */
  timeseriesFile: string | null;
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
  manifest: Manifest;
  runs: RunRecord[];
  /** Unique configs in schedule order. */
  configs: ConfigInfo[];
  skipped: SkippedConfig[];
}

export interface LoadStudyOptions {
  logger?: Logger;
}

/** The file names the report reads and writes inside a study directory. */
export const STUDY_FILES = {
  manifest: 'manifest.json',
  skipped: 'skipped.json',
  summary: 'summary.csv',
  summaryByConfig: 'summary_by_config.csv',
  pareto: 'pareto.csv',
  report: 'report.html',
} as const;

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
 * Read and validate a study's `manifest.json`.
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

/** Files under the study dir (two levels deep) whose name mentions "timeseries". */
async function findTimeseriesFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (d: string, depth: number): Promise<void> => {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory() && depth < 2) await walk(p, depth + 1);
      else if (e.isFile() && /timeseries/i.test(e.name)) found.push(p);
    }
  };
  await walk(dir, 0);
  return found;
}

/**
 * A timeseries file belongs to a run when its name starts with the run key followed by a
 * separator (so `abc_c1` never claims `abc_c10.timeseries.csv`).
 */
function timeseriesFor(key: string, files: readonly string[]): string | null {
  for (const f of files) {
    const name = basename(f);
    if (name.startsWith(key) && !/[A-Za-z0-9]/.test(name.charAt(key.length))) return f;
  }
  return null;
}

async function readSkipped(dir: string, logger: Logger): Promise<SkippedConfig[]> {
  const file = join(dir, STUDY_FILES.skipped);
  try {
    const raw = await readJson(file);
    const list = Array.isArray(raw)
      ? raw
      : ((raw as { skipped?: unknown[] } | null)?.skipped ?? []);
    return list.flatMap((s) => {
      const item = s as { label?: unknown; reason?: unknown; reasons?: unknown };
      // `reasons` as @llem/domain's SkippedConfig has them: [{ path, message }]; or one string.
      const reason =
        typeof item.reason === 'string'
          ? item.reason
          : Array.isArray(item.reasons)
            ? item.reasons
                .map((r) => {
                  if (typeof r === 'string') return r;
                  const issue = r as { path?: unknown; message?: unknown };
                  return issue.path
                    ? `${String(issue.path)}: ${String(issue.message)}`
                    : String(issue.message);
                })
                .join('; ')
            : null;
      return typeof item.label === 'string' && reason !== null
        ? [{ label: item.label, reason }]
        : [];
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      logger.warn(`${file}: ignored (${String(error)})`);
    }
    return [];
  }
}

/**
 * Load a study directory: the manifest, every run's result (validated against the RunResult
 * schema) and where its timeseries is. A result that cannot be read or validated does not stop
 * the report: the run keeps its status, carries an `InvalidResult` error and is left out of the
 * statistics.
 *
 * @example
 * const study = await loadStudy('results/quickstart_20260101T000000Z');
 * console.log(study.runs.filter((r) => r.result).length, 'usable results');
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
  const manifest = await readManifest(dir);
  const tsFiles = await findTimeseriesFiles(dir);
  const runs: RunRecord[] = [];
  const configs = new Map<string, ConfigInfo>();
  for (const entry of manifest.entries) {
    if (!configs.has(entry.configHash)) {
      configs.set(entry.configHash, { configHash: entry.configHash, label: entry.label });
    }
    const resultFile = entry.resultFile ? resolve(dir, entry.resultFile) : null;
    let result: RunResult | null = null;
    let error = entry.error;
    if (entry.status === 'completed' && resultFile) {
      try {
        const parsed = RunResultSchema.safeParse(await readJson(resultFile));
        if (parsed.success) result = parsed.data;
        else {
          error = {
            type: 'InvalidResult',
            message: `${relative(dir, resultFile)}: ${describeIssues(parsed.error.issues)}`,
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
      timeseriesFile: timeseriesFor(entry.key, tsFiles),
    });
  }
  return {
    dir,
    manifest,
    runs,
    configs: [...configs.values()],
    skipped: await readSkipped(dir, logger),
  };
}
