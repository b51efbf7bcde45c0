import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { standardStudy } from '../../../packages/report/test/fixture-study';

const bin = fileURLToPath(new URL('../src/bin.ts', import.meta.url));
const tsx = createRequire(import.meta.url).resolve('tsx');

/** Run the real entry point (from source) with stdout piped to a reader that stops at once. */
function runClosingEarly(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', tsx, '--conditions', '@llem/source', bin, ...args],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } },
    );
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    // Like `| head -c 1`: read the first chunk, then close our end of the pipe.
    child.stdout.once('data', () => child.stdout.destroy());
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

describe('the llem executable', () => {
  it('stops quietly when its output pipe closes early (no EPIPE crash, no stack)', {
    timeout: 60_000,
  }, async () => {
    const dir = standardStudy();
    const { code, stderr } = await runClosingEarly(['results', 'show', dir]);
    expect(stderr).not.toMatch(/EPIPE|\n\s+at /);
    expect(code).toBe(0);
  });
});
