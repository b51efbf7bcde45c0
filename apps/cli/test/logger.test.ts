import { describe, expect, it } from 'vitest';
import { createCliLogger, levelFromVerbosity } from '../src/logger';

/** Any object with `write` is enough: an embedding caller need not pass a Node stream. */
function sink() {
  const lines: string[] = [];
  return { lines, stream: { write: (text: string) => lines.push(text) > 0 } };
}

describe('createCliLogger', () => {
  it('writes plain info lines and level-prefixed others to the given stream, one line each', () => {
    const { lines, stream } = sink();
    const logger = createCliLogger('info', stream as unknown as NodeJS.WritableStream);
    logger.info('report: /tmp/x/report.html');
    logger.warn('config a: its runs read 2 different model files');
    logger.error('boom');
    logger.debug('not shown at info');
    expect(lines).toEqual([
      'report: /tmp/x/report.html\n',
      'warn: config a: its runs read 2 different model files\n',
      'error: boom\n',
    ]);
  });

  it('honours the level from -v/--quiet/LLEM_LOG_LEVEL', () => {
    const { lines, stream } = sink();
    const quiet = createCliLogger(
      levelFromVerbosity(0, true, {}),
      stream as unknown as NodeJS.WritableStream,
    );
    quiet.warn('hidden');
    quiet.error('shown');
    expect(lines).toEqual(['error: shown\n']);
    expect(levelFromVerbosity(1, false, {})).toBe('debug');
    expect(levelFromVerbosity(0, false, { LLEM_LOG_LEVEL: 'WARN' })).toBe('warn');
  });
});
