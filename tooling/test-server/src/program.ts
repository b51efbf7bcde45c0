import { writeFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { parseProgramArgs, UsageError, usageText } from './args';
import { startTestServer, type TestServer } from './server';

/** Where the program writes and how it ends; a test passes its own. */
export interface ProgramIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  exit: (code: number) => void;
  env?: Readonly<Record<string, string | undefined>>;
}

/** The line the program prints once it listens; `spawnTestServer` reads the URL from it. */
export const LISTENING_PREFIX = 'llem-test-server listening on ';

/**
 * The program: parse flags, (optionally) wait before listening, serve until SIGTERM/SIGINT.
 * Prints `llem-test-server listening on <base url>` on stdout once it accepts connections.
 * Exit codes: 0 after a signal, 2 for a bad flag, `--crash-exit-code` (1) for a crash.
 */
export async function runProgram(
  argv: readonly string[],
  io: ProgramIo,
): Promise<TestServer | null> {
  let parsed: ReturnType<typeof parseProgramArgs>;
  try {
    parsed = parseProgramArgs(argv, io.env ?? process.env);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.stderr.write(`llem-test-server: ${error.message}\n\n${usageText()}`);
    io.exit(2);
    return null;
  }
  if (parsed.help) {
    io.stdout.write(usageText());
    io.exit(0);
    return null;
  }
  if (parsed.listenDelayMs > 0) await delay(parsed.listenDelayMs);
  let server: TestServer;
  try {
    server = await startTestServer({
      ...parsed.server,
      onCrash: () => {
        io.stderr.write(
          `llem-test-server: crashing as asked (--crash-after ${parsed.server.crashAfter})\n`,
        );
        io.exit(parsed.crashExitCode);
      },
    });
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    if (e.code !== 'EADDRINUSE') throw error;
    // As real servers say it (vLLM: "[Errno 98] Address already in use").
    io.stderr.write(
      `llem-test-server: cannot listen on ${parsed.server.host ?? '127.0.0.1'}:${parsed.server.port}: address already in use (EADDRINUSE)\n`,
    );
    io.exit(1);
    return null;
  }
  if (parsed.pidFile) writeFileSync(parsed.pidFile, `${process.pid}\n`);
  const memoryFile = parsed.fakeGpuMemoryFile;
  if (memoryFile) {
    writeFileSync(memoryFile, `${Math.round(parsed.fakeGpuMemoryMiB * 1024 * 1024)}\n`);
    // 'exit' runs for process.exit() and a normal end; a SIGKILL leaves the memory "in use".
    if (!parsed.leakFakeGpuMemory) process.once('exit', () => writeFileSync(memoryFile, '0\n'));
  }
  io.stdout.write(`${LISTENING_PREFIX}${server.baseUrl}\n`);
  return server;
}

/** Whether the program should ignore SIGTERM (`--ignore-sigterm`), for its bin. */
export function ignoresSigterm(argv: readonly string[]): boolean {
  return argv.includes('--ignore-sigterm');
}
