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
  const server = await startTestServer({
    ...parsed.server,
    onCrash: () => {
      io.stderr.write(
        `llem-test-server: crashing as asked (--crash-after ${parsed.server.crashAfter})\n`,
      );
      io.exit(parsed.crashExitCode);
    },
  });
  io.stdout.write(`${LISTENING_PREFIX}${server.baseUrl}\n`);
  return server;
}
