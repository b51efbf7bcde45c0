import { Writable } from 'node:stream';
import { main } from '../../src/main';

/** A writable that keeps everything written to it, for asserting on CLI output. */
export interface CapturedStream<P extends object> {
  stream: Writable & P;
  text: () => string;
}

/**
 * A stream that records what is written; `props` are set on it, so a test can pose as a
 * terminal (`{ isTTY: true, columns: 140, cursorTo… }`).
 *
 * @example
 * const out = captureStream({ isTTY: true });
 * out.stream.write('hi');
 * out.text(); // 'hi'
 */
export function captureStream<P extends object = object>(props: P = {} as P): CapturedStream<P> {
  let text = '';
  const stream = Object.assign(
    new Writable({
      write(chunk, _enc, done) {
        text += String(chunk);
        done();
      },
    }),
    props,
  );
  return { stream, text: () => text };
}

export interface RunLlemOptions {
  /** The CLI's whole environment; required so a test never reads the developer's by accident. */
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Make stdout look like a terminal (colour, column width). Default: false. */
  stdoutTTY?: boolean;
}

/** What one `main()` call left behind: its exit code and everything it printed. */
export interface LlemOutput {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the CLI in-process (`main(argv, …)`) with captured stdout and stderr.
 *
 * @example
 * const { code, stdout } = await runLlem(['config', 'schema'], { env: {}, cwd: '/' });
 */
export async function runLlem(argv: string[], options: RunLlemOptions): Promise<LlemOutput> {
  const stdout = captureStream({ isTTY: options.stdoutTTY ?? false });
  const stderr = captureStream();
  const code = await main(argv, {
    stdout: stdout.stream,
    stderr: stderr.stream,
    env: options.env,
    cwd: options.cwd,
  });
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}
