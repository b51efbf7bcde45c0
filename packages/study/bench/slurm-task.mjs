// One array task of the Slurm bench: the built `runSlurmTask` with the no-op worker, as
// `llem slurm-task` runs it (argv: STUDY_DIR SUBMISSION).
import { runSlurmTask } from '../dist/index.js';

const [studyDir, submission] = process.argv.slice(2);
const summary = await runSlurmTask({
  studyDir,
  submission: Number(submission),
  workerModule: new URL('./noop-worker.mjs', import.meta.url),
});
if (summary.counts.failed > 0) process.exitCode = 1;
