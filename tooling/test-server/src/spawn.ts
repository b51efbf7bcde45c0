import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { LISTENING_PREFIX } from './program';

/** A test server running as its own process. */
export interface SpawnedTestServer {
  baseUrl: string;
  port: number;
  child: ChildProcess;
  /** Everything the program wrote on stderr so far. */
  readonly stderr: string;
  /** Resolves when the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then SIGKILL after `graceMs` (default 2000); resolves once it has exited. */
  stop(graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface SpawnTestServerOptions {
  env?: NodeJS.ProcessEnv;
  /** How long to wait for the listening line (ms). Default 20 000. */
  startTimeoutMs?: number;
}

const here = dirname(fileURLToPath(import.meta.url));

/**
 * The command that runs the program: the built `dist/bin.js` when this module is the built one,
 * the TypeScript source through tsx when it runs from source (tests), or `LLEM_TEST_SERVER_BIN`.
 *
 * @example
 * const [node, ...args] = testServerCommand(); // e.g. a managed server's argv
 */
export function testServerCommand(): string[] {
  const fromEnv = process.env.LLEM_TEST_SERVER_BIN;
  if (fromEnv) return [process.execPath, fromEnv];
  if (!import.meta.url.endsWith('.ts')) return [process.execPath, join(here, 'bin.js')];
  const source = join(here, 'bin.ts');
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  return [process.execPath, '--import', tsx, source];
}

/**
 * Starts the program with `args` (its flags) and resolves once it listens, with the URL it
 * printed. Rejects with its stderr if it exits first.
 *
 * @example
 * const server = await spawnTestServer(['--pace-ms', '10', '--close-after-responses', '1']);
 * // … server.baseUrl …
 * await server.stop();
 */
export function spawnTestServer(
  args: readonly string[] = [],
  options: SpawnTestServerOptions = {},
): Promise<SpawnedTestServer> {
  const [command, ...prefix] = testServerCommand();
  if (!existsSync(prefix.at(-1) ?? '')) {
    return Promise.reject(
      new Error(`test server program not found at ${prefix.at(-1)}: run pnpm build`),
    );
  }
  const child = spawn(command!, [...prefix, ...args], {
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  child.stderr!.setEncoding('utf8').on('data', (text: string) => {
    stderr += text;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`test server did not start in time; stderr: ${stderr}`));
    }, options.startTimeoutMs ?? 20_000);
    child.stdout!.setEncoding('utf8').on('data', (text: string) => {
      stdout += text;
      const line = stdout.split('\n').find((l) => l.startsWith(LISTENING_PREFIX));
      if (line === undefined) return;
      clearTimeout(timer);
      const baseUrl = line.slice(LISTENING_PREFIX.length).trim();
      const port = Number(new URL(baseUrl).port);
      const stop = async (graceMs = 2000) => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
          const result = await exited;
          clearTimeout(kill);
          return result;
        }
        return exited;
      };
      resolve({
        baseUrl,
        port,
        child,
        get stderr() {
          return stderr;
        },
        exited,
        stop,
      });
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`test server exited (${signal ?? code}) before listening: ${stderr}`));
    });
  });
}
