import { testServerCommand } from '@llem/test-server';

/** A path where no NVML library is: the CLI measures without a GPU. */
export const NO_NVML = '/nonexistent/libnvidia-ml.so.1';

/** The test's own environment, without NVML, logging at `info` (what the run tests read). */
export const noGpuEnv: NodeJS.ProcessEnv = {
  ...process.env,
  LLEM_NVML_LIBRARY: NO_NVML,
  LLEM_LOG_LEVEL: 'info',
};

/**
 * `server.argv` for a study that has llem start the test server itself, as a YAML flow list:
 * its command line plus `--port {port}`, then any `extra` flags.
 *
 * @example
 * `server:\n  argv: ${managedTestServerArgv(['--pace-ms', '5'])}`
 */
export function managedTestServerArgv(extra: readonly string[] = []): string {
  return `[${[...testServerCommand(), '--port', '{port}', ...extra].map((s) => JSON.stringify(s)).join(', ')}]`;
}
