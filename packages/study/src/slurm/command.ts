import { spawnSync } from 'node:child_process';

/** What a Slurm command printed and how it ended. */
export interface SlurmCommandOutput {
  /** The exit status; `null` when it could not start or was killed (timeout). */
  status: number | null;
  stdout: string;
  stderr: string;
  /** Set when the command could not be run at all (not installed: `ENOENT`; timed out). */
  error?: Error;
}

/**
 * Runs a Slurm client command (`sbatch`, `squeue`, `scancel`) synchronously. Injected in tests;
 * the default runs the program found on `PATH` with the given environment.
 */
export type SlurmCommandRunner = (
  command: string,
  args: readonly string[],
  options?: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number },
) => SlurmCommandOutput;

/** Time a Slurm client command may take before it is given up (`slurmctld` unreachable). */
export const SLURM_COMMAND_TIMEOUT_MS = 30_000;

/** The default `SlurmCommandRunner`: `spawnSync` with a timeout, never a shell. */
export const runSlurmCommand: SlurmCommandRunner = (command, args, options = {}) => {
  const out = spawnSync(command, [...args], {
    encoding: 'utf8',
    env: options.env ?? process.env,
    ...(options.cwd ? { cwd: options.cwd } : {}),
    timeout: options.timeoutMs ?? SLURM_COMMAND_TIMEOUT_MS,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return {
    status: out.status,
    stdout: out.stdout ?? '',
    stderr: out.stderr ?? '',
    ...(out.error ? { error: out.error } : {}),
  };
};

/** The first line of what a failed command said, for an error message. */
export function commandProblem(command: string, out: SlurmCommandOutput): string {
  if (out.error) {
    const code = (out.error as NodeJS.ErrnoException).code;
    return code === 'ENOENT'
      ? `${command} is not installed here (not found on PATH)`
      : `${command} could not be run: ${out.error.message}`;
  }
  const said = out.stderr.trim().split('\n').filter(Boolean).pop() ?? out.stdout.trim();
  return `${command} exited with status ${out.status}${said ? `: ${said}` : ''}`;
}
