import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseExperimentConfig, type ServerConfig } from '@llem/domain';
import { testServerCommand } from '@llem/test-server';
import { afterEach, describe, expect, it } from 'vitest';
import {
  familyOf,
  ManagedServerError,
  parsePrometheusText,
  pickFreePort,
  resolveOpenAIConfig,
  startManagedServer,
} from '../src/index';

const dir = mkdtempSync(join(tmpdir(), 'llem-server-'));
const blockers: Server[] = [];
afterEach(() => {
  for (const b of blockers.splice(0)) b.close();
});

const alive = (pid: number | null): boolean => {
  if (pid === null) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

function section(server: Record<string, unknown>): ServerConfig {
  const config = parseExperimentConfig({
    engine: 'openai',
    model: 'm',
    openai: { base_url: 'http://127.0.0.1:{port}/v1' },
    server: { ready: { timeout_s: 20 }, stop_grace_s: 5, ...server },
  });
  return config.server!;
}

async function occupiedPort(): Promise<number> {
  const blocker = createServer();
  blockers.push(blocker);
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  return (blocker.address() as { port: number }).port;
}

let n = 0;
const logFile = () => join(dir, `s${++n}.log`);

describe('startManagedServer', () => {
  it('retries a port clash with another port (through @llem/resilience) and says how many attempts', async () => {
    const busy = await occupiedPort();
    const ports = [busy];
    const warnings: string[] = [];
    const server = await startManagedServer({
      server: section({ argv: [...testServerCommand(), '--port', '{port}'] }),
      baseUrl: 'http://127.0.0.1:{port}/v1',
      logFile: logFile(),
      pickPort: async () => ports.shift() ?? pickFreePort(),
      logger: { error() {}, info() {}, debug() {}, warn: (m: string) => warnings.push(m) },
    });
    try {
      expect(server.attempts).toBe(2);
      expect(server.port).not.toBe(busy);
      expect(server.baseUrl).toBe(`http://127.0.0.1:${server.port}/v1`);
      expect(warnings.join('\n')).toMatch(
        new RegExp(
          `attempt 1/4 failed: the server could not listen on port ${busy} .*address already in use`,
        ),
      );
      const log = readFileSync(server.logFile, 'utf8');
      expect(log).toMatch(/start attempt 1 .*\n.*address already in use[\s\S]*start attempt 2/);
    } finally {
      await server.stop();
    }
  }, 60_000);

  it('gives up after portRetries clashes with SERVER_PORT_IN_USE', async () => {
    const busy = await occupiedPort();
    const error = await startManagedServer({
      server: section({ argv: [...testServerCommand(), '--port', '{port}'] }),
      baseUrl: 'http://127.0.0.1:{port}/v1',
      logFile: logFile(),
      pickPort: async () => busy,
      portRetries: 1,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ManagedServerError);
    expect((error as ManagedServerError).code).toBe('SERVER_PORT_IN_USE');
  }, 60_000);

  it('fills {port} in env values too (a server that reads its port from the environment)', async () => {
    const seen = join(dir, 'env-seen');
    const program = `require('node:fs').writeFileSync(${JSON.stringify(seen)}, process.env.SEEN);
      require('node:http').createServer((q, s) => s.end('ok')).listen(Number(process.env.PORT), '127.0.0.1');`;
    const server = await startManagedServer({
      server: section({
        argv: [process.execPath, '-e', program],
        env: { PORT: '{port}', SEEN: 'port {port}' },
        ready: { path: '/', timeout_s: 20 },
      }),
      baseUrl: 'http://127.0.0.1:{port}/v1',
      logFile: logFile(),
    });
    try {
      expect(readFileSync(seen, 'utf8')).toBe(`port ${server.port}`);
    } finally {
      await server.stop();
    }
  }, 60_000);

  it('fills {port} in argv and args; stop is SIGTERM, and after it died never settles', async () => {
    const pidFile = join(dir, 'pid');
    const server = await startManagedServer({
      server: section({
        argv: [...testServerCommand(), '--port={port}'],
        args: { 'pid-file': pidFile, model: 'm-{port}' },
      }),
      baseUrl: 'http://127.0.0.1:{port}/v1',
      logFile: logFile(),
    });
    expect(server.argv).toContain(`--port=${server.port}`);
    expect(server.argv).toContain(`m-${server.port}`);
    expect(Number(readFileSync(pidFile, 'utf8'))).toBe(server.pid);
    const stopped = await server.stop();
    expect(stopped).toMatchObject({ code: 0, forced: false });
    expect(alive(server.pid)).toBe(false);
    // Stopped on purpose: `died` never settles.
    const settled = await Promise.race([
      server.died.then(
        () => 'resolved',
        () => 'rejected',
      ),
      new Promise((r) => setTimeout(() => r('pending'), 200)),
    ]);
    expect(settled).toBe('pending');
    expect(await server.stop()).toEqual(stopped);
  }, 60_000);

  it('died rejects with SERVER_EXITED when the server is killed from outside', async () => {
    const server = await startManagedServer({
      server: section({ argv: [...testServerCommand(), '--port', '{port}'] }),
      baseUrl: 'http://127.0.0.1:{port}/v1',
      logFile: logFile(),
    });
    process.kill(server.pid!, 'SIGKILL');
    const error = await server.died.catch((e: unknown) => e);
    expect((error as ManagedServerError).code).toBe('SERVER_EXITED');
    expect((error as Error).message).toMatch(
      /exited \(killed by SIGKILL\) while the run was going on/,
    );
  }, 60_000);

  it('scrapes /metrics into typed samples; a route it lacks is a 404 outcome, not a throw', async () => {
    const server = await startManagedServer({
      server: section({ argv: [...testServerCommand(), '--port', '{port}'] }),
      baseUrl: 'http://127.0.0.1:{port}/v1',
      logFile: logFile(),
    });
    try {
      const scrape = await server.scrapeMetrics('/metrics', 5000);
      expect(scrape.ok).toBe(true);
      if (!scrape.ok) return;
      expect(scrape.types['vllm:num_requests_running']).toBe('gauge');
      expect(scrape.samples).toContainEqual({
        name: 'vllm:generation_tokens_total',
        labels: { model_name: 'test-model' },
        value: 0,
      });
      const missing = await server.scrapeMetrics('/no-such-route', 5000);
      expect(missing).toMatchObject({ ok: false, status: 404 });
    } finally {
      await server.stop();
    }
  }, 60_000);

  it('the openai engine refuses a base_url that still holds {port}', () => {
    expect(() =>
      resolveOpenAIConfig({ model: 'm', openai: { base_url: 'http://127.0.0.1:{port}/v1' } }),
    ).toThrow(/openai\.base_url: holds \{port\}/);
    expect(existsSync(dir)).toBe(true);
  });
});

describe('parsePrometheusText', () => {
  const text = `# HELP vllm:e2e_request_latency_seconds Histogram of end to end request latency.
# TYPE vllm:e2e_request_latency_seconds histogram
vllm:e2e_request_latency_seconds_bucket{le="0.3",model_name="m"} 1.0
vllm:e2e_request_latency_seconds_bucket{le="+Inf",model_name="m"} 3.0
vllm:e2e_request_latency_seconds_count{model_name="m"} 3.0
vllm:e2e_request_latency_seconds_sum{model_name="m"} 2.5
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name="m"} 2
msdos_file_access_time_seconds{path="C:\\\\DIR\\\\FILE.TXT",error="Cannot find file:\\n\\"FILE.TXT\\""} 1.458255915e9
something_weird{problem="division by zero"} +Inf -3982045
no_labels 12.47 1395066363000
broken{a="1" 3
`;

  it('keeps every sample of a labelled histogram (the npm parser drops labelled _sum/_count)', () => {
    const parsed = parsePrometheusText(text);
    expect(parsed.types).toMatchObject({
      'vllm:e2e_request_latency_seconds': 'histogram',
      'vllm:num_requests_running': 'gauge',
      no_labels: 'untyped',
    });
    expect(parsed.samples).toContainEqual({
      name: 'vllm:e2e_request_latency_seconds_sum',
      labels: { model_name: 'm' },
      value: 2.5,
    });
    expect(parsed.samples).toContainEqual({
      name: 'vllm:e2e_request_latency_seconds_bucket',
      labels: { le: '+Inf', model_name: 'm' },
      value: 3,
    });
    expect(parsed.types['vllm:e2e_request_latency_seconds_sum']).toBeUndefined();
  });

  it('unescapes label values, maps ±Inf and NaN to null, skips a malformed line', () => {
    const parsed = parsePrometheusText(text);
    expect(parsed.samples).toContainEqual({
      name: 'msdos_file_access_time_seconds',
      labels: { path: 'C:\\DIR\\FILE.TXT', error: 'Cannot find file:\n"FILE.TXT"' },
      value: 1.458255915e9,
    });
    expect(parsed.samples).toContainEqual({
      name: 'something_weird',
      labels: { problem: 'division by zero' },
      value: null,
    });
    expect(parsed.samples).toContainEqual({ name: 'no_labels', labels: {}, value: 12.47 });
    expect(parsed.skipped).toBe(1);
  });

  it('finds the family of a suffixed sample', () => {
    const types = { ttft: 'histogram', q: 'summary' } as const;
    expect(familyOf('ttft_bucket', types)).toBe('ttft');
    expect(familyOf('q_count', types)).toBe('q');
    expect(familyOf('q_bucket', types)).toBeNull();
    expect(familyOf('other', types)).toBeNull();
  });
});
