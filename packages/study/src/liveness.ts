import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

/** The Slurm job of a claim's owner, as `isSlurmJobActive` is given it. */
export interface SlurmJobRef {
  /** `SLURM_ARRAY_JOB_ID`: asked about as a whole (one `squeue` for every task). */
  arrayJobId: string | null;
  /** `SLURM_ARRAY_TASK_ID`. */
  arrayTaskId: string | null;
  /** `SLURM_RESTART_COUNT` when the owner recorded it: a requeued job keeps its id. */
  restartCount?: number | undefined;
}

/** Whether the owner of a claim is still there. Injected in tests; the default asks the OS. */
export interface LivenessProbe {
  /** This machine's name, compared with a claim's `owner.host`. */
  host: string;
  /** Whether a process with this pid runs on this machine. */
  isPidAlive(pid: number): boolean;
  /** This machine's boot id; a claim made under another one is from before a reboot. */
  bootId?: string | null;
  /** When the process with this pid started (compared with `owner.processStart`). */
  processStart?(pid: number): string | null;
  /**
   * Whether a Slurm job is still queued or running; `null` when that cannot be told here. With
   * `ref` (a claim's owner): whether that array task, in that incarnation, still runs; without
   * (a submission): whether any task of the job is still queued or running.
   */
  isSlurmJobActive?(jobId: string, ref?: SlurmJobRef): boolean | null;
}

/** This machine's boot id (Linux), `null` elsewhere. */
export function readBootId(): string | null {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null;
  } catch {
    return null;
  }
}

/** When a process started, in clock ticks since boot (Linux `/proc/<pid>/stat` field 22). */
export function readProcessStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state …": fields after the comm, which may hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

/** The OS's answer: `os.hostname()`, `kill(pid, 0)`, boot id and process start time; no Slurm check. */
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
  bootId: readBootId(),
  processStart: readProcessStart,
};
