/** Anything with `interrupt()`: a `StudyRunner`. */
export interface Interruptible {
  interrupt(): void;
}

/** The process-like object `handleSigint` listens on (injectable for tests). */
export interface SignalSource {
  on(event: 'SIGINT', listener: () => void): unknown;
  off(event: 'SIGINT', listener: () => void): unknown;
}

/**
 * Wire Ctrl-C to a runner: the first SIGINT asks it to stop after cleanly ending the current
 * child (the study ends `interrupted`; the CLI then prints how to resume and exits 130), the
 * second kills the child at once. While installed, SIGINT no longer kills the process by
 * itself. Returns a function that removes the handler.
 *
 * @example
 * const dispose = handleSigint(runner, { onInterrupt: (n) => n === 1 && log('stopping…') });
 * try { await runner.run(); } finally { dispose(); }
 */
export function handleSigint(
  runner: Interruptible,
  options: { source?: SignalSource; onInterrupt?: (count: number) => void } = {},
): () => void {
  const source = options.source ?? process;
  let count = 0;
  const listener = (): void => {
    count += 1;
    options.onInterrupt?.(count);
    runner.interrupt();
  };
  source.on('SIGINT', listener);
  return () => {
    source.off('SIGINT', listener);
  };
}
