import { type LivenessProbe, type SlurmJobRef, systemLiveness } from '../liveness';
import { runSlurmCommand, type SlurmCommandRunner } from './command';

/** One line of `squeue`: a job, an array task, or the pending tasks of an array. */
export interface SqueueRow {
  /** The job id (for an array task, its own job id; for the pending tasks, the array's). */
  jobId: string;
  /** The array job id (the job id itself for a job that is not an array). */
  arrayJobId: string;
  /** The array task id, a range of pending ones (`3-9%2`), or `N/A`. */
  arrayTaskId: string;
  /** `PENDING`, `RUNNING`, `COMPLETED`, `CANCELLED`… */
  state: string;
  /** How many times the job was requeued (its `SLURM_RESTART_COUNT`). */
  restartCount: number;
}

/**
 * Job states after which nothing of the job runs any more. Anything else (PENDING, RUNNING,
 * COMPLETING, SUSPENDED, REQUEUED…) counts as active: a job still finishing may still write.
 */
export const SLURM_ENDED_STATES: ReadonlySet<string> = new Set([
  'BOOT_FAIL',
  'CANCELLED',
  'COMPLETED',
  'DEADLINE',
  'FAILED',
  'NODE_FAIL',
  'OUT_OF_MEMORY',
  'PREEMPTED',
  'TIMEOUT',
]);

/** The `squeue` arguments that list one job (or every task of one array) in any state. */
export function squeueArgs(jobId: string): string[] {
  return [
    '--noheader',
    '--states=all',
    `--jobs=${jobId}`,
    '--Format=JobID:|,ArrayJobID:|,ArrayTaskID:|,State:|,RestartCnt:|',
  ];
}

/**
 * Parse what `squeueArgs` prints: `jobId|arrayJobId|arrayTaskId|state|restarts|` per line.
 *
 * @example
 * parseSqueue('812|800|12|RUNNING|0|\n'); // [{ jobId: '812', arrayJobId: '800', arrayTaskId: '12', state: 'RUNNING', restartCount: 0 }]
 */
export function parseSqueue(stdout: string): SqueueRow[] {
  const rows: SqueueRow[] = [];
  for (const line of stdout.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    const [jobId, arrayJobId, arrayTaskId, state, restarts] = cells;
    if (!jobId || !state) continue;
    rows.push({
      jobId,
      arrayJobId: arrayJobId || jobId,
      arrayTaskId: arrayTaskId || 'N/A',
      state: state.toUpperCase(),
      restartCount: Number.parseInt(restarts ?? '', 10) || 0,
    });
  }
  return rows;
}

/** Whether a job in `state` may still run or write. */
export function isActiveSlurmState(state: string): boolean {
  return !SLURM_ENDED_STATES.has(state.toUpperCase());
}

export interface SlurmLivenessOptions {
  /** Runs `squeue`. Default: the one on `PATH`. */
  run?: SlurmCommandRunner;
  /** The environment `squeue` runs with (`SLURM_CONF`…). Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** How long an answer of `squeue` is reused. Default 2000 ms. */
  cacheMs?: number;
  /** This host and its processes. Default `systemLiveness`. */
  local?: Pick<LivenessProbe, 'host' | 'isPidAlive' | 'bootId' | 'processStart'>;
  /** Monotonic ms, for the cache. Default `performance.now()`. */
  now?: () => number;
}

type Answer = SqueueRow[] | 'gone' | null;

/**
 * A `LivenessProbe` that asks Slurm (`squeue`) whether a claim's job, or a submission's array
 * job, still runs or waits: `true` while the job (or, for an array asked as a whole, any of its
 * tasks) is pending, running or completing; `false` once it ended, was requeued past the claim's
 * incarnation, or is no longer known to Slurm; `null` when Slurm cannot be asked here (no
 * `squeue`, `slurmctld` unreachable). One `squeue` per array job, reused for `cacheMs`.
 *
 * @example
 * const directory = StudyDirectory.open(dir, { liveness: slurmLiveness() });
 * directory.state().status; // 'running' while the study's Slurm job is queued
 */
export function slurmLiveness(options: SlurmLivenessOptions = {}): Required<LivenessProbe> {
  const run = options.run ?? runSlurmCommand;
  const cacheMs = options.cacheMs ?? 2000;
  const now = options.now ?? (() => performance.now());
  const local = options.local ?? systemLiveness;
  const cache = new Map<string, { at: number; answer: Answer }>();

  const ask = (id: string, fresh = false): Answer => {
    const hit = cache.get(id);
    if (!fresh && hit && now() - hit.at < cacheMs) return hit.answer;
    const out = run('squeue', squeueArgs(id), {
      ...(options.env ? { env: options.env } : {}),
      timeoutMs: 10_000,
    });
    let answer: Answer;
    if (out.error || out.status === null) answer = null;
    else if (out.status === 0) answer = parseSqueue(out.stdout);
    // Slurm forgets a job some minutes after it ends (MinJobAge): it ended.
    else if (/invalid job id/i.test(out.stderr)) answer = 'gone';
    else answer = null;
    cache.set(id, { at: now(), answer });
    return answer;
  };

  return {
    host: local.host,
    isPidAlive: (pid) => local.isPidAlive(pid),
    bootId: local.bootId ?? null,
    processStart: (pid) => local.processStart?.(pid) ?? null,
    isSlurmJobActive(jobId: string, ref?: SlurmJobRef): boolean | null {
      const id = ref?.arrayJobId ?? jobId;
      let answer = ask(id);
      if (answer === null) return null;
      if (answer === 'gone') return false;
      if (!ref) return answer.some((row) => isActiveSlurmState(row.state));
      const find = (rows: readonly SqueueRow[]) =>
        rows.find(
          (r) =>
            r.jobId === jobId &&
            (ref.arrayTaskId === null ||
              ref.arrayTaskId === undefined ||
              r.arrayTaskId === ref.arrayTaskId),
        );
      let row = find(answer);
      if (!row) {
        // A task that started after the cached answer is not in it: ask again before saying
        // it ended.
        answer = ask(id, true);
        if (answer === null) return null;
        if (answer === 'gone') return false;
        row = find(answer);
      }
      if (!row) return false;
      // A requeued job keeps its id: a claim of an earlier incarnation is not this one's.
      if (ref.restartCount !== undefined && row.restartCount > ref.restartCount) return false;
      return isActiveSlurmState(row.state);
    },
  };
}

let shared: Required<LivenessProbe> | null = null;

/**
 * The probe a `StudyDirectory` uses unless given one: this host's processes, and Slurm jobs
 * through `squeue` where Slurm can be asked (`null`, so claims are judged by their heartbeat,
 * where it cannot). One per process, so its answers are shared.
 */
export function defaultLiveness(): Required<LivenessProbe> {
  shared ??= slurmLiveness();
  return shared;
}
