import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  fillPort,
  measurementConfigHash,
  type OpenaiExperimentConfig,
  parseExperimentConfig,
  parseServerMetrics,
  planStudy,
  RunResultSchema,
  seriesKey,
  serverCommandLine,
  usesPortTemplate,
} from '../src/index';

const served = {
  engine: 'openai',
  model: 'Qwen/Qwen3-8B',
  openai: { base_url: 'http://127.0.0.1:{port}/v1', concurrency: 8 },
  server: {
    argv: ['vllm', 'serve', 'Qwen/Qwen3-8B', '--port', '{port}'],
    args: { 'max-num-seqs': 64, 'enable-prefix-caching': true, quantization: null },
    env: { VLLM_LOGGING_LEVEL: 'WARNING' },
  },
} as const;

function issuesOf(input: unknown): string[] {
  try {
    parseExperimentConfig(input, { file: 'study.yaml' });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).issues.map((i) => `${i.path}: ${i.message}`);
  }
  throw new Error('expected a ConfigError');
}

describe('the server section', () => {
  it('applies its defaults: ready on /v1/models within 600 s, /metrics every second, 30 s grace', () => {
    const config = parseExperimentConfig(served);
    expect(config.server).toEqual({
      argv: ['vllm', 'serve', 'Qwen/Qwen3-8B', '--port', '{port}'],
      args: { 'max-num-seqs': 64, 'enable-prefix-caching': true, quantization: null },
      env: { VLLM_LOGGING_LEVEL: 'WARNING' },
      ready: { path: '/v1/models', timeout_s: 600 },
      metrics: { path: '/metrics', interval_ms: 1000 },
      stop_grace_s: 30,
    });
    // The template stays in the config (the result shows it); the port goes in result.server.
    expect(config.openai.base_url).toBe('http://127.0.0.1:{port}/v1');
    // Parsing the parsed config again gives the same object (the worker relies on it).
    expect(parseExperimentConfig(config)).toEqual(config);
  });

  it('turns env numbers and booleans into strings, and accepts metrics: false', () => {
    const config = parseExperimentConfig({
      ...served,
      server: {
        argv: ['srv', '--port', '{port}'],
        env: { OMP_NUM_THREADS: 4, X: true },
        metrics: false,
      },
    });
    expect(config.server?.env).toEqual({ OMP_NUM_THREADS: '4', X: 'true' });
    expect(config.server?.metrics).toBe(false);
  });

  it.each([
    [
      { ...served, server: { ...served.server, argv: [] } },
      'server.argv: must name the server program',
    ],
    [
      { ...served, server: { ...served.server, args: { 'max-num-seqs': [64] } } },
      'server.args["max-num-seqs"]: expected a string, a number, a boolean (true or false) or null, got a list',
    ],
    [
      { ...served, server: { ...served.server, args: { 'bad flag': 1 } } },
      'server.args["bad flag"]: a flag name such as max-num-seqs',
    ],
    [
      { ...served, server: { ...served.server, stop_grace: 5 } },
      'server.stop_grace: unknown key; did you mean "stop_grace_s"?',
    ],
    [
      { ...served, server: { ...served.server, ready: { timeout: 5 } } },
      'server.ready.timeout: unknown key; did you mean "timeout_s"?',
    ],
    [
      { ...served, server: { ...served.server, ready: { path: 'health' } } },
      'server.ready.path: must be a path on the server, starting with /',
    ],
    [
      { ...served, server: { ...served.server, argv: ['srv', '--port', '{prot}'] } },
      'server.argv[2]: {prot} is not a template llem fills in; the only one is {port}',
    ],
    [
      { ...served, server: { ...served.server, env: { 'BAD-NAME': 'x' } } },
      'server.env["BAD-NAME"]: environment variable names are',
    ],
    [
      { ...served, server: undefined },
      'openai.base_url: holds {port}, which llem fills in only for a server it starts',
    ],
    [
      // llem would start the server on a port it picks and wait for (and measure) whatever
      // answers on 8000: another server, or nothing until ready.timeout_s.
      { ...served, openai: { base_url: 'http://127.0.0.1:8000/v1' } },
      'openai.base_url: names a fixed port while the server is started on {port}',
    ],
    [
      // The server listens where its own default says; llem would wait on the port it picked.
      { ...served, server: { argv: ['vllm', 'serve', 'Qwen/Qwen3-8B'] } },
      'openai.base_url: holds {port}, but the server is never told that port',
    ],
    [
      { ...served, openai: { base_url: 'http://127.0.0.1:{host}/v1' } },
      'openai.base_url: must be an http(s) URL',
    ],
    [
      { engine: 'llamacpp', model: 'builtin:tiny', server: served.server },
      'server: the server section only applies to engine: openai',
    ],
  ])('rejects a bad section with the field named (%#)', (input, says) => {
    const issues = issuesOf(input);
    expect(issues.join('\n')).toContain(says);
  });

  it('accepts {port} only where llem fills it in: argv, args values, env values, base_url', () => {
    const config = parseExperimentConfig({
      ...served,
      server: {
        argv: ['srv', '--port={port}'],
        args: { host: '127.0.0.1:{port}' },
        env: { PORT: '{port}' },
      },
    });
    expect(usesPortTemplate(config)).toBe(true);
    expect(
      usesPortTemplate(
        parseExperimentConfig({
          ...served,
          openai: { base_url: 'http://127.0.0.1:8000/v1' },
          server: { argv: ['srv', '--port', '8000'] },
        }),
      ),
    ).toBe(false);
  });
});

describe('serverCommandLine', () => {
  it('appends args as flags: true → --flag, false/null left out, a leading - kept, {port} filled', () => {
    const config = parseExperimentConfig({
      ...served,
      server: {
        argv: ['llama-server', '-m', 'model.gguf', '--port', '{port}'],
        args: {
          '-np': 4,
          'flash-attn': true,
          mlock: false,
          'cache-type-k': null,
          alias: 'x:{port}',
        },
      },
    });
    expect(serverCommandLine(config.server!, 8123)).toEqual([
      'llama-server',
      '-m',
      'model.gguf',
      '--port',
      '8123',
      '-np',
      '4',
      '--flash-attn',
      '--alias',
      'x:8123',
    ]);
    // Without a port (a dry run), the template is shown as written.
    expect(serverCommandLine(config.server!, null)).toContain('{port}');
    expect(fillPort('http://h:{port}/v1', 9)).toBe('http://h:9/v1');
  });
});

describe('sweeping the server', () => {
  it('reaches server.args at any depth, hyphens kept, one command line per config', () => {
    const plan = planStudy(
      { ...served, sweep: { 'server.args.max-num-seqs': [64, 256] } },
      { file: 'study.yaml' },
    );
    expect(plan.configs.map((c) => c.label)).toEqual(['max-num-seqs=64', 'max-num-seqs=256']);
    expect(
      plan.configs.map((c) =>
        serverCommandLine((c.config as OpenaiExperimentConfig).server!, null).join(' '),
      ),
    ).toEqual([
      'vllm serve Qwen/Qwen3-8B --port {port} --max-num-seqs 64 --enable-prefix-caching',
      'vllm serve Qwen/Qwen3-8B --port {port} --max-num-seqs 256 --enable-prefix-caching',
    ]);
    expect(plan.configs[0]?.configHash).not.toBe(plan.configs[1]?.configHash);
  });

  it('names a misspelt server key in a sweep with a did-you-mean', () => {
    expect(() =>
      planStudy({ ...served, sweep: { 'server.arg.x': [1] } }, { file: 'study.yaml' }),
    ).toThrow(
      /sweep\["server\.arg\.x"\]: unknown field server\.arg; did you mean "server\.argv"\?/,
    );
  });
});

describe('the hash of a served config', () => {
  const hash = measurementConfigHash(served);

  it('leaves out cwd, stop_grace_s, ready and metrics', () => {
    expect(
      measurementConfigHash({
        ...served,
        server: {
          ...served.server,
          cwd: '/srv',
          stop_grace_s: 5,
          ready: { path: '/health', timeout_s: 60 },
          metrics: false,
        },
      }),
    ).toBe(hash);
  });

  it.each([
    ['argv', { ...served.server, argv: ['vllm', 'serve', 'other', '--port', '{port}'] }],
    ['args', { ...served.server, args: { 'max-num-seqs': 256 } }],
    ['env', { ...served.server, env: { VLLM_LOGGING_LEVEL: 'DEBUG' } }],
  ])('changes with server.%s', (_field, server) => {
    expect(measurementConfigHash({ ...served, server })).not.toBe(hash);
  });

  it('keeps the hash of an openai config without a server (the golden value)', () => {
    expect(
      measurementConfigHash({
        model: 'm',
        engine: 'openai',
        openai: { base_url: 'http://127.0.0.1:8000/v1', concurrency: 8 },
      }),
    ).toBe('44b675e6e0a74b66');
  });
});

describe('the metrics file and the result block', () => {
  it('parses scrape lines and reports the others', () => {
    const line = {
      tMs: -2.5,
      types: { 'vllm:num_requests_running': 'gauge' },
      samples: [{ name: 'vllm:num_requests_running', labels: { model_name: 'm' }, value: 3 }],
    };
    const { scrapes, invalid } = parseServerMetrics(
      `${JSON.stringify(line)}\n\nnot json\n{"tMs":"x"}\n`,
    );
    expect(scrapes).toEqual([line]);
    expect(invalid.map((i) => i.line)).toEqual([3, 4]);
  });

  it('names a series as Prometheus does, labels sorted and escaped', () => {
    expect(seriesKey('a', {})).toBe('a');
    expect(seriesKey('a', { z: '1', b: 'say "hi"' })).toBe('a{b="say \\"hi\\"",z="1"}');
  });

  it('keeps results without a server block valid, and rejects a malformed one', () => {
    const shape = RunResultSchema.shape.server;
    expect(shape.safeParse(undefined).success).toBe(true);
    expect(shape.safeParse({ argv: ['x'] }).success).toBe(false);
  });
});
