import { join, resolve } from 'node:path';
import { STUDY_FILES } from '@llem/domain';
import { llemRunnerOptions } from '@llem/measure';
import { runSlurmTask, StudyDirectory } from '@llem/study';
import { type CliContext, defineCommand } from '../context';
import { ExitCode, UsageError } from '../errors';
import { addFileTransport } from '../logger';
import { cliVersion } from '../version';
import { resumeBaseDir } from './run/preflight';
import { workerModuleFor } from './run/worker-module';

/**
 * `llem slurm-task DIR --submission N`: one array task of a Slurm submission, as the batch
 * script `llem run --executor slurm` writes runs it (hidden from `--help`: nobody types it).
 * `@llem/study`'s `runSlurmTask` does the work with llem's worker and config rules; the log goes
 * to stderr (the task's Slurm log) and to the study's llem.log.
 *
 * @example
 * llem slurm-task /shared/results/s_20260101T000000Z --submission 1   # SLURM_ARRAY_TASK_ID set
 */
export function slurmTaskCommand(ctx: CliContext) {
  return defineCommand({
    command: 'slurm-task <study-dir>',
    describe: false,
    builder: (y) =>
      y
        .positional('study-dir', { type: 'string', demandOption: true })
        .option('submission', { type: 'number', demandOption: true })
        .option('task', {
          type: 'number',
          describe: 'The array task id (default: SLURM_ARRAY_TASK_ID)',
        }),
    handler: async (args) => {
      const studyDir = resolve(ctx.cwd, args.studyDir);
      if (!new StudyDirectory(studyDir).isStudy()) {
        throw new UsageError(`${args.studyDir} is not a study directory`);
      }
      const baseDir = resumeBaseDir(studyDir) ?? ctx.cwd;
      addFileTransport(ctx.logger, join(studyDir, STUDY_FILES.log));
      const { workerModule, execArgv } = workerModuleFor();
      const summary = await runSlurmTask({
        workerModule,
        execArgv,
        env: ctx.env,
        // The worker's working directory: relative paths resolve from the study file's folder.
        cwd: baseDir,
        logger: ctx.logger,
        toolVersion: cliVersion,
        ...llemRunnerOptions({ cwd: baseDir, logger: ctx.logger }),
        studyDir,
        submission: args.submission,
        ...(args.task === undefined ? {} : { taskId: args.task }),
      });
      ctx.logger.info(
        `Slurm task done: ${summary.counts.completed} completed, ${summary.counts.failed} failed, ${summary.counts.pending} pending of ${summary.counts.total} in the study`,
      );
      if (summary.status === 'interrupted') ctx.exitCode = ExitCode.interrupted;
    },
  });
}
