/**
 * The logger shape every llem library accepts. winston's `Logger` satisfies it, and so does
 * `console`. Libraries never print; they log through the logger they are given.
 */
export interface Logger {
  error(message: string, ...meta: unknown[]): unknown;
  warn(message: string, ...meta: unknown[]): unknown;
  info(message: string, ...meta: unknown[]): unknown;
  debug(message: string, ...meta: unknown[]): unknown;
}

/** A logger that drops everything: the default when none is given. */
export const noopLogger: Logger = {
  error: () => undefined,
  warn: () => undefined,
  info: () => undefined,
  debug: () => undefined,
};
