import type { SleepFn } from '../clock';
import { systemSleep } from '../clock';
import { StudyDirectory, type StudyState } from '../directory';
import type { LivenessProbe } from '../liveness';
import { slurmLiveness } from './liveness';

export interface WaitForStudyOptions {
  /** Whether claims' owners and the study's Slurm jobs still run. Default `slurmLiveness()`. */
  liveness?: LivenessProbe;
  /** How often the records are read. Default 2000 ms. */
  intervalMs?: number;
  /** Aborting it stops the wait (the jobs go on); the last state is returned. */
  signal?: AbortSignal;
  sleep?: SleepFn;
  /** Called with the state when it is first read and whenever its counts change. */
  onProgress?: (state: StudyState) => void;
}

/**
 * Follow a study from its run records until nothing runs it any more: no live claim and no
 * Slurm job of it queued or running (`state().status` is not `running`). Returns the final
 * state: `completed`, or `interrupted` when runs were left (a task cancelled, a time limit).
 *
 * @example
 * const state = await waitForStudy(studyDir, { onProgress: (s) => console.error(s.counts) });
 */
export async function waitForStudy(
  studyDir: string,
  options: WaitForStudyOptions = {},
): Promise<StudyState> {
  const directory = StudyDirectory.open(studyDir, {
    liveness: options.liveness ?? slurmLiveness(),
  });
  const sleep = options.sleep ?? systemSleep;
  let seen = '';
  for (;;) {
    const state = directory.state();
    const counts = JSON.stringify(state.counts);
    if (counts !== seen) {
      seen = counts;
      options.onProgress?.(state);
    }
    if (state.status !== 'running' || options.signal?.aborted) return state;
    await sleep(options.intervalMs ?? 2000, options.signal).catch(() => undefined);
  }
}
