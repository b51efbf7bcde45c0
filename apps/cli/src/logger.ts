import winston from 'winston';
import TransportStream from 'winston-transport';

export type LogLevel = 'error' | 'warn' | 'info' | 'debug' | 'silly';
const LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug', 'silly'];

/**
 * Resolve the console level: `-v` → debug, `-vv` → silly, `--quiet` → error, else
 * `LLEM_LOG_LEVEL`, else `info`.
 */
export function levelFromVerbosity(
  verbose: number,
  quiet: boolean,
  env: NodeJS.ProcessEnv = process.env,
): LogLevel {
  if (quiet) return 'error';
  if (verbose >= 2) return 'silly';
  if (verbose === 1) return 'debug';
  const fromEnv = env.LLEM_LOG_LEVEL?.toLowerCase();
  if (fromEnv && (LEVELS as readonly string[]).includes(fromEnv)) return fromEnv as LogLevel;
  return 'info';
}

/** winston's formatted text of a log entry (triple-beam's MESSAGE symbol). */
const MESSAGE = Symbol.for('message');

/**
 * Writes each formatted entry as one line to any writable, as `write(text)` and nothing more:
 * winston's own Stream transport needs a full Node stream (it checks internals and raises the
 * stream's listener limit), while the CLI accepts any object with `write`.
 */
class LineTransport extends TransportStream {
  readonly #out: NodeJS.WritableStream;
  constructor(out: NodeJS.WritableStream, options: TransportStream.TransportStreamOptions) {
    super(options);
    this.#out = out;
  }
  override log(info: Record<string | symbol, unknown>, next: () => void): void {
    this.#out.write(`${String(info[MESSAGE] ?? info.message)}\n`);
    next();
  }
}

/**
 * The CLI's winston logger: plain text on stderr (stdout is for results), or on the given
 * stream, level chosen by flags. `addFileTransport` adds the debug log file in a study directory.
 */
export function createCliLogger(
  level: LogLevel,
  stream: NodeJS.WritableStream = process.stderr,
): winston.Logger {
  return winston.createLogger({
    level,
    levels: winston.config.npm.levels,
    transports: [
      // The CLI's own stderr (an embedding caller's or a test's stream), never a global one.
      new LineTransport(stream, {
        format: winston.format.printf(({ level: lvl, message }) =>
          lvl === 'info' ? String(message) : `${lvl}: ${String(message)}`,
        ),
      }),
    ],
  });
}

/** Add a debug-level JSON-lines log file (the study directory's `llem.log`). */
export function addFileTransport(logger: winston.Logger, filename: string): void {
  logger.add(
    new winston.transports.File({
      filename,
      level: 'debug',
      format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    }),
  );
}
