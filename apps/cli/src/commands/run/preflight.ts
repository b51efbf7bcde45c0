import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  CliStateSchema,
  planStudy,
  QUICKSTART_FILE,
  quickstartStudy,
  STUDY_FILES,
  type StudyPlan,
  studySourceFile,
} from '@llem/domain';
import { checkDatasets, missingInputFiles, type StudyDataset } from '@llem/measure';
import { type LoadedStudy, loadStudyFile, StudyDirectory } from '@llem/study';
import type { CliContext } from '../../context';
import { UsageError } from '../../errors';

/** What `llem run` knows before anything runs. */
export interface RunSetup {
  /** The study to run: the file's, the quickstart's, or none (a plain `--resume DIR`). */
  plan: StudyPlan | undefined;
  /** The file as the user named it (or the quickstart's name), for messages. */
  file: string;
  /** The study file as read (kept as `study.source.*` in the study directory). */
  source: LoadedStudy | undefined;
  /** Where relative model, dataset and command paths resolve: the study file's folder. */
  baseDir: string;
  /** The study directory of `--resume`, absolute. */
  resumeDir: string | undefined;
  /** The study's dataset files, read and checked (none for synthetic prompts). */
  datasets: StudyDataset[];
}

/**
 * Read the study (the same loader as `llem config validate`: a missing file, a directory or a
 * bad field is a `ConfigError`, exit 2), find the directory to resume and the folder relative
 * paths resolve from, refuse missing model and dataset files, and read every dataset file (bad
 * data or no usable request: `DATASET_INVALID`, exit 2) before a study directory exists.
 */
export async function prepareRun(
  args: { file?: string | undefined; resume?: string | undefined },
  ctx: CliContext,
): Promise<RunSetup> {
  let source: LoadedStudy | undefined;
  let plan: StudyPlan | undefined;
  let baseDir = ctx.cwd;
  if (args.file) {
    source = await loadStudyFile(args.file, { cwd: ctx.cwd });
    plan = source.plan;
    baseDir = source.baseDir;
  } else if (!args.resume) {
    plan = planStudy(quickstartStudy, { file: QUICKSTART_FILE });
  }
  let resumeDir: string | undefined;
  let file = args.file ?? QUICKSTART_FILE;
  if (args.resume) {
    resumeDir = resolve(ctx.cwd, args.resume);
    const directory = new StudyDirectory(resumeDir);
    if (!directory.isStudy())
      throw new UsageError(
        `--resume ${args.resume}: no ${STUDY_FILES.study} or ${STUDY_FILES.manifest} there; name a study directory made by llem run`,
      );
    // Relative paths resolve where they did when the study started, whichever copy of the
    // study file is given now.
    const started = resumeBaseDir(resumeDir);
    if (started) baseDir = started;
    else if (!args.file) {
      ctx.logger.warn(
        `${join(args.resume, STUDY_FILES.cliState)} cannot be read: relative model, dataset and command paths resolve from ${baseDir}`,
      );
    }
    if (!args.file && !storedPlanReadable(directory)) {
      // study.json is gone or damaged: the study file as written, kept beside it, is the study.
      const copy = ['yaml', 'json']
        .map((f) => join(resumeDir as string, studySourceFile(f as 'yaml' | 'json')))
        .find((p) => existsSync(p));
      if (!copy) {
        throw new UsageError(
          `--resume ${args.resume}: ${STUDY_FILES.study} cannot be read and no copy of the study file is there; give the study file again: ${ctx.invocation} run STUDY.yaml --resume ${args.resume}`,
        );
      }
      ctx.logger.warn(`${STUDY_FILES.study} cannot be read: resuming with ${copy}`);
      source = await loadStudyFile(copy, { cwd: ctx.cwd });
      plan = source.plan;
      file = copy;
    }
  }
  if (plan && !plan.execution.devices && plan.configs.some((c) => c.config.devices_per_run)) {
    ctx.logger.warn(
      'devices_per_run has no effect without execution.devices (runs go one at a time on energy.devices)',
    );
  }
  let datasets: StudyDataset[] = [];
  if (plan) {
    refuseMissingInputs(plan, { file, baseDir });
    datasets = await checkDatasets(plan.configs, { file, cwd: baseDir });
  }
  return { plan, file, source, baseDir, resumeDir, datasets };
}

/** True when the study directory's `study.json` can be read. */
function storedPlanReadable(directory: StudyDirectory): boolean {
  try {
    directory.readStored();
    return true;
  } catch {
    return false;
  }
}

/** The folder the study file was in when it started (`cli.json`); none for a library's study. */
export function resumeBaseDir(resumeDir: string): string | null {
  try {
    return CliStateSchema.parse(
      JSON.parse(readFileSync(join(resumeDir, STUDY_FILES.cliState), 'utf8')),
    ).baseDir;
  } catch {
    return null;
  }
}

/**
 * Missing model or dataset files are a mistake in the study, not a run failure: say so before a
 * study directory exists, with where each path was looked for.
 */
function refuseMissingInputs(plan: StudyPlan, setup: Pick<RunSetup, 'file' | 'baseDir'>): void {
  const missing = new Map<string, { text: string; labels: string[] }>();
  for (const c of plan.configs) {
    for (const m of missingInputFiles(c.config, setup.baseDir)) {
      const key = `${m.field}\0${m.resolved}`;
      const entry = missing.get(key);
      if (entry) entry.labels.push(c.label);
      else
        missing.set(key, {
          text: `${m.field}: ${m.value} does not exist (looked for ${m.resolved})`,
          labels: [c.label],
        });
    }
  }
  if (missing.size === 0) return;
  const lines = [...missing.values()].map(
    ({ text, labels }) =>
      `  ${text}${plan.configs.length > 1 ? ` [${labels.length === plan.configs.length ? 'every config' : labels.join(', ')}]` : ''}`,
  );
  throw new UsageError(
    `${setup.file}: input files not found (relative paths resolve from the study file's folder, ${setup.baseDir}):\n${lines.join('\n')}`,
  );
}
