import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CliStateSchema, STUDY_FILES } from '@llem/domain';
import { runSlurmTask, StudyDirectory } from '@llem/study';
import type { CommandModule } from 'yargs';
import type { CliContext, GlobalArgs } from '../context';
import { ExitCode, UsageError } from '../errors';
import { addFileTransport } from '../logger';
import { llemRunnerOptions } from '../runner-options';

interface SlurmTaskArgs extends GlobalArgs {
  studyDir: string;
  submission: number;
  task?: number | undefined;
}

/**
 * `llem slurm-task DIR --submission N`: one array task of a Slurm submission, as the batch
 * script `llem run --executor slurm` writes runs it (hidden from `--help`: nobody types it).
 * `@llem/study`'s `runSlurmTask` does the work with llem's worker; the log goes to stderr
 * (the task's Slurm log) and to the study's llem.log.
 *
 * @example
 * llem slurm-task /shared/results/s_20260101T000000Z --submission 1   # SLURM_ARRAY_TASK_ID set
 */
export function slurmTaskCommand(ctx: CliContext): CommandModule<GlobalArgs, SlurmTaskArgs> {
  return {
    command: 'slurm-task <study-dir>',
    describe: false,
    builder: (y) =>
      y
        .positional('study-dir', { type: 'string', demandOption: true })
        .option('submission', { type: 'number', demandOption: true })
        .option('task', {
          type: 'number',
          describe: 'The array task id (default: SLURM_ARRAY_TASK_ID)',
        }) as never,
    handler: async (args) => {
      const studyDir = resolve(ctx.cwd, args.studyDir);
      if (!new StudyDirectory(studyDir).isStudy()) {
        throw new UsageError(`${args.studyDir} is not a study directory`);
      }
      let baseDir = ctx.cwd;
      try {
        baseDir = CliStateSchema.parse(
          JSON.parse(readFileSync(join(studyDir, STUDY_FILES.cliState), 'utf8')),
        ).baseDir;
      } catch {
        // A study submitted by a library user has no CLI state: resolve against the cwd.
      }
      addFileTransport(ctx.logger, join(studyDir, STUDY_FILES.log));
      const summary = await runSlurmTask({
        ...llemRunnerOptions(ctx, baseDir),
        studyDir,
        submission: args.submission,
        ...(args.task === undefined ? {} : { taskId: args.task }),
      });
      ctx.logger.info(
        `Slurm task done: ${summary.counts.completed} completed, ${summary.counts.failed} failed, ${summary.counts.pending} pending of ${summary.counts.total} in the study`,
      );
      if (summary.status === 'interrupted') ctx.exitCode = ExitCode.interrupted;
    },
  };
}
