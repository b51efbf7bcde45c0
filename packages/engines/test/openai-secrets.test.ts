import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import type { Logger } from '@llem/resilience';
import { startTestServer, type TestServer } from '@llem/test-server';
import { afterEach, describe, expect, it } from 'vitest';
import { createOpenAIEngine } from '../src/openai/index';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A logger that keeps everything it is given, meta included, like a file transport would. */
function capturingLogger(lines: string[]): Logger {
  const log =
    (level: string) =>
    (message: string, ...meta: unknown[]) => {
      lines.push(`${level} ${message} ${inspect(meta, { depth: null })}`);
    };
  return { error: log('error'), warn: log('warn'), info: log('info'), debug: log('debug') };
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push(join(entry.parentPath, entry.name));
  }
  return out;
}

describe('openai engine: secret hygiene', () => {
  it('sends the key to the server and nowhere else: results, logs, errors, files', async () => {
    const key = `sk-llem-${randomUUID()}-DO-NOT-LEAK`;
    const envName = 'LLEM_TEST_OPENAI_KEY';
    const dir = await mkdtemp(join(tmpdir(), 'llem-openai-secret-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const logs: string[] = [];
    const logger = capturingLogger(logs);

    // A hostile server: some answers echo the Authorization header back, as misconfigured
    // proxies and verbose error pages do, so redaction is exercised and not merely assumed.
    let echo = true;
    const server: TestServer = await startTestServer({
      lifetimeMs: 30_000,
      scenario: (r) => {
        const auth = String(r.headers.authorization);
        if (echo && r.index % 3 === 1) {
          return { status: 400, errorBody: `{"error":"bad request, you sent ${auth}"}` };
        }
        if (echo && r.index % 3 === 2) return { tokens: 2, errorEventAt: 0 };
        return { tokens: 3, interChunkMs: 2 };
      },
    });
    cleanups.push(() => server.close());
    const serverEcho = server.requests;

    const section = {
      base_url: server.baseUrl,
      model: 'test-model',
      api_key_env: envName,
      concurrency: 2,
      max_failure_rate: 0.7,
      slo: { ttft_ms: 1000 },
    };
    const engine = createOpenAIEngine(
      { openai: section },
      { logger, signal: new AbortController().signal, env: { [envName]: key } },
    );
    cleanups.push(() => engine.dispose());
    const info = await engine.load();
    const warm = await engine.warmup([{ id: 0, prompt: 'w', maxOutputTokens: 4 }]);
    const requests = Array.from({ length: 9 }, (_, id) => ({
      id,
      prompt: `p${id}`,
      maxOutputTokens: 4,
    }));
    const outcome = await engine.run(requests);
    expect(outcome.extra).toMatchObject({ errorsByType: { http_4xx: 3, stream_error: 3 } });

    // A failing run: the thrown error carries the (echoed) first error message.
    const strict = createOpenAIEngine(
      { openai: { ...section, max_failure_rate: 0 } },
      { logger, signal: new AbortController().signal, env: { [envName]: key } },
    );
    cleanups.push(() => strict.dispose());
    await strict.load();
    const thrown = await strict.run(requests).catch((e: unknown) => e);
    expect(thrown).toMatchObject({ name: 'EngineError', code: 'FAILURE_RATE_EXCEEDED' });
    expect((thrown as Error).message).toContain('[redacted]');

    // Persist what a harness would persist, then read back every byte written.
    await writeFile(join(dir, 'result.json'), JSON.stringify({ info, warm, outcome }, null, 2));
    await writeFile(join(dir, 'log.txt'), logs.join('\n'));
    await writeFile(
      join(dir, 'error.json'),
      JSON.stringify({ message: (thrown as Error).message, stack: (thrown as Error).stack }),
    );
    const written = await Promise.all((await filesUnder(dir)).map((f) => readFile(f, 'utf8')));
    expect(written).toHaveLength(3);
    const everything = [
      ...written,
      inspect(engine, { showHidden: true, depth: null }),
      JSON.stringify(engine),
      inspect(thrown, { depth: null }),
      JSON.stringify(info),
    ].join('\n');
    expect(everything).toContain('test-model');
    expect(everything).toContain(envName);
    expect(everything).toContain('[redacted]');
    expect(everything).not.toContain(key);
    // Not even a recognisable fragment of it.
    expect(everything).not.toContain(key.slice(8, 30));

    // ...while the server did receive it on every request.
    expect(serverEcho.length).toBeGreaterThan(10);
    for (const r of serverEcho) expect(r.headers.authorization).toBe(`Bearer ${key}`);
    for (const r of server.modelsCalls) expect(r.headers.authorization).toBe(`Bearer ${key}`);
    echo = false;
  });

  it('an auth failure names the env var, never its value', async () => {
    const key = `sk-llem-${randomUUID()}`;
    const server = await startTestServer({ lifetimeMs: 30_000, modelsStatus: [401] });
    cleanups.push(() => server.close());
    const engine = createOpenAIEngine(
      { openai: { base_url: server.baseUrl, model: 'm', api_key_env: 'MY_KEY', concurrency: 1 } },
      {
        logger: capturingLogger([]),
        signal: new AbortController().signal,
        env: { MY_KEY: key },
      },
    );
    cleanups.push(() => engine.dispose());
    const error = await engine.load().catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'EngineError', code: 'AUTH' });
    expect((error as Error).message).toMatch(/HTTP 401.*environment variable MY_KEY/);
    expect(inspect(error, { depth: null })).not.toContain(key);
  });
});
