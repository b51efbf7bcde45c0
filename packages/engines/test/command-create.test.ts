import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseExperimentConfig } from '@llem/domain';
import { noopLogger } from '@llem/resilience';
import { describe, expect, it } from 'vitest';
import { createEngine } from '../src/create';

const ctx = { logger: noopLogger, signal: new AbortController().signal };

describe('createEngine', () => {
  it('builds the engine the config names', async () => {
    const command = await createEngine(
      parseExperimentConfig({ engine: 'command', model: 'm', command: { argv: ['true'] } }),
      ctx,
    );
    expect(command).toMatchObject({ name: 'command', windowMarking: 'engine' });
    const openai = await createEngine(
      parseExperimentConfig({
        engine: 'openai',
        model: 'm',
        openai: { base_url: 'http://127.0.0.1:9/v1', model: 'm' },
      }),
      ctx,
    );
    expect(openai.name).toBe('openai');
  });

  it('rejects an unknown engine naming the allowed ones', async () => {
    await expect(createEngine({ engine: 'vllm', model: 'm' } as never, ctx)).rejects.toThrow(
      /unknown engine "vllm"; allowed: llamacpp, openai, command/,
    );
  });

  it('a command experiment never loads node-llama-cpp', () => {
    // A fresh process whose resolve hook throws on any import of node-llama-cpp: creating and
    // running a command engine through the package entry must not trip it.
    const dir = mkdtempSync(join(tmpdir(), 'llem-no-llama-'));
    writeFileSync(
      join(dir, 'hooks.mjs'),
      `export async function resolve(specifier, context, next) {
        if (/(^|\\/)node-llama-cpp|@node-llama-cpp\\//.test(specifier)) throw new Error('node-llama-cpp was imported: ' + specifier);
        return next(specifier, context);
      }`,
    );
    writeFileSync(
      join(dir, 'register.mjs'),
      `import { register } from 'node:module'; register(${JSON.stringify(pathToFileURL(join(dir, 'hooks.mjs')).href)});`,
    );
    const program = `const { createEngine } = await import('./src/index.ts');
      const e = await createEngine({ engine: 'command', model: 'm', command: { argv: [process.execPath, '-e', 'console.log(JSON.stringify({input_tokens:1,output_tokens:2,requests:1}))'] } },
        { logger: console, signal: new AbortController().signal });
      await e.load(); const o = await e.run([]); await e.dispose();
      console.log(JSON.stringify({ out: o.outputTokens }));`;
    const run = (code: string) =>
      execFileSync(
        process.execPath,
        [
          '--import',
          'tsx',
          '--import',
          join(dir, 'register.mjs'),
          '--conditions',
          '@llem/source',
          '--input-type=module',
          '-e',
          code,
        ],
        {
          cwd: fileURLToPath(new URL('..', import.meta.url)),
          encoding: 'utf8',
          timeout: 30_000,
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
    expect(JSON.parse(run(program).trim().split('\n').at(-1) ?? '{}')).toEqual({ out: 2 });
    // The hook does work: importing node-llama-cpp itself fails.
    expect(() => run(`await import('node-llama-cpp');`)).toThrow(/node-llama-cpp was imported/);
  });
});
