import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseExperimentConfig, RunResultSchema } from '@llem/domain';
import { ManagedServerError } from '@llem/engines';
import { fakeNvmlLibraryPath, h100Profile, writeScenario } from '@llem/fake-nvml';
import { testServerCommand } from '@llem/test-server';
import { afterEach, describe, expect, it } from 'vitest';
import { type HarnessConfig, measureRun } from '../src/harness';

/**
 * The managed server through the harness: the test server as a real program in its own process
 * group, started after the baseline, scraped during the window, stopped after it.
 */

const quiet = { error() {}, warn() {}, info() {}, debug() {} };
const dir = mkdtempSync(join(tmpdir(), 'llem-managed-'));
const powercapRoot = mkdtempSync(join(tmpdir(), 'llem-no-rapl-'));
const saved = { lib: process.env.LLEM_NVML_LIBRARY, scenario: process.env.LLEM_FAKE_NVML_SCENARIO };
const blockers: Server[] = [];
afterEach(() => {
  for (const [k, v] of [
    ['LLEM_NVML_LIBRARY', saved.lib],
    ['LLEM_FAKE_NVML_SCENARIO', saved.scenario],
  ] as const)
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
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

let n = 0;
function served(
  flags: string[],
  over: { server?: Record<string, unknown>; openai?: Record<string, unknown> } & Record<
    string,
    unknown
  > = {},
): HarnessConfig {
  const { server, openai, ...rest } = over;
  return parseExperimentConfig({
    engine: 'openai',
    model: 'test-model',
    dataset: { synthetic: { n: 6, input_len: 8, output_len: 20, seed: 7 } },
    max_output_tokens: 20,
    warmup: { n: 2 },
    energy: { backend: 'none' },
    openai: { base_url: 'http://127.0.0.1:{port}/v1', concurrency: 2, ...openai },
    server: {
      argv: [...testServerCommand(), '--port', '{port}'],
      args: Object.fromEntries(flags.map((f) => f.split('=')).map(([k, v]) => [k, v ?? true])),
      ready: { timeout_s: 30 },
      metrics: { interval_ms: 100 },
      stop_grace_s: 5,
      ...server,
    },
    ...rest,
  }) as HarnessConfig;
}

function run(config: HarnessConfig, residualThresholdMb = 100) {
  n++;
  const logFile = join(dir, `run${n}.server.log`);
  return {
    logFile,
    out: measureRun(
      {
        runId: `r${n}_c0`,
        configHash: '0123456789abcdef',
        cycle: 0,
        config,
        serverLogFile: logFile,
        residualCheck: {
          status: 'skipped',
          thresholdMb: residualThresholdMb,
          devices: [],
          reason: 'test',
          checkedAt: new Date().toISOString(),
        },
      },
      { logger: quiet, cwd: dir, powercapRoot, warningThresholds: { minDurationS: 0.1 } },
    ),
  };
}

async function failure(promise: Promise<unknown>): Promise<ManagedServerError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(ManagedServerError);
    return error as ManagedServerError;
  }
  throw new Error('expected the run to fail');
}

describe('a managed server through the harness', () => {
  it('baseline → start-up (time and energy) → window → stop; metrics scraped on the sampler clock', async () => {
    process.env.LLEM_NVML_LIBRARY = fakeNvmlLibraryPath('full');
    process.env.LLEM_FAKE_NVML_SCENARIO = writeScenario({
      devices: [h100Profile({ instantPowerMw: 200_000, powerMw: 200_000 })],
    });
    const config = served(['startup-ms=400', 'pace-ms=10'], {
      baseline: { enabled: true, duration_s: 0.3 },
      energy: { backend: 'nvml', sample_interval_ms: 50 },
    });
    const { out, logFile } = run(config);
    const { result, timeseriesCsv, serverMetrics } = await out;
    RunResultSchema.parse(result);
    const s = result.server!;
    // The command line that ran, {port} filled in; the config keeps the template.
    expect(s.argv.slice(-4)).toEqual(['--startup-ms', '400', '--pace-ms', '10']);
    expect(s.argv).toContain(String(s.port));
    expect((result.config as { openai: { base_url: string } }).openai.base_url).toBe(
      'http://127.0.0.1:{port}/v1',
    );
    expect(s.attempts).toBe(1);
    // 400 ms of 503 "Loading model" before ready, measured at 200 W.
    expect(s.startupS).toBeGreaterThanOrEqual(0.4);
    expect(s.startupEnergyMethod).toBe('nvml-counter');
    expect(s.startupJ! / s.startupS).toBeGreaterThan(150);
    expect(s.startupJ! / s.startupS).toBeLessThan(260);
    expect(s.exit).toMatchObject({ code: 0, signal: null, forced: false });
    expect(alive(s.pid)).toBe(false);
    // Order: baseline, then the start-up, then the window; nothing of the start-up in the window.
    const windows = [
      ...new Set(
        timeseriesCsv
          .split('\n')
          .slice(1)
          .map((l) => l.split(',')[0])
          .filter(Boolean),
      ),
    ];
    expect(windows).toEqual(['baseline', 'startup', 'measure']);
    // Metrics: counters' deltas are over the window only (warmup tokens are not in them).
    const series = s.metrics!.series;
    expect(series['vllm:generation_tokens_total{model_name="test-model"}']).toMatchObject({
      type: 'counter',
      delta: result.tokens.output,
    });
    expect(
      series['vllm:request_success_total{finished_reason="length",model_name="test-model"}'],
    ).toMatchObject({ delta: 6 });
    const running = series['vllm:num_requests_running{model_name="test-model"}'];
    expect(running).toMatchObject({ type: 'gauge' });
    expect((running as { max: number }).max).toBeGreaterThanOrEqual(1);
    // Aligned with the power samples: the first scrape at the window's start, the last at its end.
    const durationMs = result.window.durationS * 1000;
    expect(serverMetrics![0]!.tMs).toBeLessThanOrEqual(1);
    expect(serverMetrics!.at(-1)!.tMs).toBeGreaterThanOrEqual(durationMs - 1);
    const busy = serverMetrics!.filter((m) =>
      m.samples.some((x) => x.name === 'vllm:num_requests_running' && (x.value ?? 0) > 0),
    );
    for (const m of busy) {
      expect(m.tMs).toBeGreaterThan(0);
      expect(m.tMs).toBeLessThan(durationMs);
    }
    const log = readFileSync(logFile, 'utf8');
    expect(log).toMatch(/^--- llem: start attempt 1 at .*--startup-ms 400/m);
    expect(log).toContain('llem-test-server listening on');
  }, 60_000);

  it('a server that crashes mid-run fails the run at once with SERVER_EXITED, its exit code and log', async () => {
    // Warmup sends 2 requests; the 4th completion request (2nd measured) crashes it.
    const t0 = performance.now();
    const { out } = run(served(['crash-after=3', 'crash-exit-code=7', 'pace-ms=20']));
    const error = await failure(out);
    expect(error.code).toBe('SERVER_EXITED');
    expect(error.source).toBe('server');
    expect(error.message).toMatch(/exited \(exit code 7\) while the run was going on/);
    expect(error.message).toContain('crashing as asked (--crash-after 3)');
    expect(performance.now() - t0).toBeLessThan(20_000);
  }, 60_000);

  it('a server that exits before it is ready fails with its exit code and the tail of its log', async () => {
    const config = served([], {
      server: {
        argv: [
          process.execPath,
          '-e',
          'console.error("CUDA out of memory, giving up"); process.exit(3)',
          '{port}',
        ],
      },
    });
    const error = await failure(run(config).out);
    expect(error.code).toBe('SERVER_EXITED');
    expect(error.message).toMatch(/exited \(exit code 3\) before it was ready/);
    expect(error.message).toContain('CUDA out of memory, giving up');
  }, 30_000);

  it('a server that never gets ready fails after server.ready.timeout_s, and is killed', async () => {
    const pidFile = join(dir, 'never.pid');
    const config = served([`listen-delay-ms=600000`, `pid-file=${pidFile}`], {
      server: { ready: { timeout_s: 1.5 } },
    });
    const t0 = performance.now();
    const error = await failure(run(config).out);
    expect(error.code).toBe('SERVER_NOT_READY');
    expect(error.message).toMatch(
      /did not answer http:\/\/127\.0\.0\.1:\d+\/v1\/models with 2xx within server\.ready\.timeout_s 1\.5 \(last: connection refused/,
    );
    expect(performance.now() - t0).toBeLessThan(15_000);
    // It never listened, so it never wrote its pid: the log names the attempt, the group is gone.
    expect(existsSync(pidFile)).toBe(false);
  }, 30_000);

  it('a program that cannot be started is SERVER_SPAWN, naming server.argv[0]', async () => {
    const config = served([], {
      server: { argv: ['llem-no-such-server-program', '--port', '{port}'] },
    });
    const error = await failure(run(config).out);
    expect(error.code).toBe('SERVER_SPAWN');
    expect(error.message).toMatch(/"llem-no-such-server-program" \(server\.argv\[0\]\): not found/);
  }, 30_000);

  it('a fixed port that is already taken fails before anything starts', async () => {
    const blocker = createServer();
    blockers.push(blocker);
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    const config = served([], {
      openai: { base_url: `http://127.0.0.1:${port}/v1` },
      server: { argv: [...testServerCommand(), '--port', String(port)] },
    });
    const error = await failure(run(config).out);
    expect(error.code).toBe('SERVER_PORT_IN_USE');
    expect(error.message).toContain(`port ${port} of openai.base_url is already in use`);
  }, 30_000);

  it('a server that ignores SIGTERM is SIGKILLed after stop_grace_s, and the result says so', async () => {
    const config = served(['ignore-sigterm'], { server: { stop_grace_s: 0.5 } });
    const { result } = await run(config).out;
    expect(result.server!.exit).toMatchObject({ forced: true, signal: 'SIGKILL' });
    expect(result.server!.exit.stopS).toBeGreaterThanOrEqual(0.5);
    expect(alive(result.server!.pid)).toBe(false);
  }, 60_000);

  it('GPU memory is read after the stop: memory the server leaves behind is a warning', async () => {
    const memoryFile = join(dir, 'gpu-memory');
    process.env.LLEM_NVML_LIBRARY = fakeNvmlLibraryPath('full');
    process.env.LLEM_FAKE_NVML_SCENARIO = writeScenario({
      devices: [h100Profile({ memoryUsedFile: memoryFile })],
    });
    const flags = [`fake-gpu-memory-file=${memoryFile}`, 'fake-gpu-memory-mib=2048'];
    const energy = { backend: 'nvml', sample_interval_ms: 50 };
    const clean = (await run(served(flags, { energy })).out).result;
    expect(clean.server!.gpuMemory).toEqual([{ index: 0, beforeStartMiB: 1, afterStopMiB: 1 }]);
    expect(clean.warnings.map((w) => w.code)).not.toContain('server-memory-left');
    // While it ran, the window saw its memory.
    expect(clean.memory.gpuPeakUsedMiB).toBe(2049);

    const leaky = (await run(served([...flags, 'leak-fake-gpu-memory'], { energy })).out).result;
    expect(leaky.server!.gpuMemory).toEqual([{ index: 0, beforeStartMiB: 1, afterStopMiB: 2049 }]);
    expect(leaky.warnings.find((w) => w.code === 'server-memory-left')?.message).toMatch(
      /GPU 0: 2049 MiB in use after the server stopped \(1 MiB before it started, threshold 100 MiB\)/,
    );
  }, 60_000);
});
