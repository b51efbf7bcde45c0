import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RunResultSchema, sweepRates } from '@llem/domain';
import { startTestServer, type TestServer, type TestServerOptions } from '@llem/test-server';
import { afterEach, describe, expect, it } from 'vitest';
import { type HarnessConfig, measureRun } from '../src/harness';
import { runTimeoutS } from '../src/timeout';
import { scriptedProbe } from './support/fakes';

/**
 * `openai.load: sweep` through the harness with the real openai engine against the test server:
 * one engine, one run, a series of load points each in its own energy window.
 */

const quiet = { error() {}, warn() {}, info() {}, debug() {} };
const dir = mkdtempSync(join(tmpdir(), 'llem-sweep-'));
const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function serve(options: TestServerOptions): Promise<TestServer> {
  const server = await startTestServer({ lifetimeMs: 120_000, ...options });
  servers.push(server);
  return server;
}

function sweepConfig(
  server: TestServer,
  n: number,
  openai: Record<string, unknown>,
): HarnessConfig & { openai: Record<string, unknown> } {
  return {
    engine: 'openai',
    model: 'test-model',
    dataset: { synthetic: { n, input_len: 8, output_len: 6, seed: 3 } },
    max_output_tokens: 6,
    warmup: { n: 0 },
    baseline: { enabled: false, duration_s: 1 },
    energy: { backend: 'nvml', sample_interval_ms: 20, devices: [0] },
    openai: { base_url: server.baseUrl, load: 'sweep', ...openai },
  };
}

const run = (config: HarnessConfig, progress: string[] = []) =>
  measureRun(
    { runId: 'r_c0', configHash: '0123456789abcdef', cycle: 0, config },
    {
      logger: quiet,
      cwd: dir,
      progress: (line) => progress.push(line),
      // A 300 W GPU: every window's energy is 300 W × its length.
      openGpuProbe: () => ({ probe: scriptedProbe({ powerW: 300, counter: 'supported' }) }),
      warningThresholds: { minDurationS: 0.01, minSamples: 1 },
    },
  );

describe('openai.load: sweep through the harness', () => {
  it('measures a synchronous point, a saturation point, then rates between their throughputs, each in its own window', {
    timeout: 60_000,
  }, async () => {
    // 20 ms to the first token, 4 ms per token: about 40 ms a request.
    const server = await serve({ ttftMs: 20, paceMs: 4 });
    const progress: string[] = [];
    const { result, requests } = await run(
      sweepConfig(server, 16, { sweep_points: 5, max_concurrency: 4 }),
      progress,
    );
    expect(RunResultSchema.parse(result)).toEqual(result);
    const points = result.points!;
    expect(points.map((p) => [p.index, p.kind])).toEqual([
      [0, 'sync'],
      [1, 'saturation'],
      [2, 'rate'],
      [3, 'rate'],
      [4, 'rate'],
    ]);
    expect(points[0]).toMatchObject({ concurrency: 1, targetRate: null, overSaturation: null });
    // max_concurrency is the saturation point's concurrency.
    expect(points[1]).toMatchObject({ concurrency: 4, targetRate: null });
    const sync = points[0]!.achievedRequestRate!;
    const saturation = points[1]!.achievedRequestRate!;
    expect(saturation).toBeGreaterThan(1.5 * sync);
    // The rates are planned from the two measured throughputs.
    const summary = result.sweep!;
    expect(summary).toMatchObject({
      plannedPoints: 5,
      syncRequestRate: sync,
      saturationRequestRate: saturation,
      stoppedAtPoint: null,
      stopReason: null,
    });
    expect(summary.rates).toEqual(sweepRates(sync, saturation, 5));
    expect(points.slice(2).map((p) => p.targetRate)).toEqual(summary.rates);
    for (const p of points.slice(2)) {
      expect(p.concurrency).toBeNull();
      expect(p.overSaturation?.detected).toBe(false);
      // Each rate point drove the open loop at its own rate.
      expect(p.extra.dispatch).toMatchObject({ targetRate: p.targetRate, sent: 16 });
    }
    // Every point: its own window, in order, and the metrics block of a run.
    for (const [i, p] of points.entries()) {
      expect(p.tokens.output).toBe(16 * 6);
      expect(p.throughput.requestsPerS).toBeCloseTo(p.achievedRequestRate!, 9);
      expect(p.latency.ttftMs!.p50).toBeGreaterThanOrEqual(19);
      expect(p.energy.method).toBe('nvml-counter');
      expect((p.energy.totalJ as number) / p.window.durationS).toBeCloseTo(300, -1);
      expect(p.energyPerOutputTokenJ).toBeCloseTo((p.energy.totalJ as number) / 96, 9);
      // In order (wall-clock ISO times are derived from the monotonic edges at different moments:
      // a millisecond or two of jitter, never a real overlap).
      if (i > 0)
        expect(Date.parse(p.window.startedAt)).toBeGreaterThanOrEqual(
          Date.parse(points[i - 1]!.window.endedAt) - 5,
        );
    }
    // The run's own figures cover the whole sweep.
    expect(result.tokens.output).toBe(5 * 16 * 6);
    expect(requests).toHaveLength(5 * 16);
    expect(new Set(requests.map((r) => r.id)).size).toBe(5 * 16);
    expect(result.energy.totalJ).toBeGreaterThanOrEqual(
      points.reduce((a, p) => a + (p.energy.totalJ as number), 0) - 1e-6,
    );
    expect(server.requests).toHaveLength(5 * 16);
    expect(progress.filter((l) => l.startsWith('sweep point'))).toHaveLength(5);
  });

  it('stops raising the rate when the server is over-saturated (TTFT and in-flight requests climb), and says why', {
    timeout: 90_000,
  }, async () => {
    // One stream at a time, ~25 ms a request; after the synchronous and saturation points
    // (2 × 24 requests) the server is four times slower, so every planned rate — between the
    // ~40 req/s it served before — is far beyond the ~10 req/s it now sustains.
    const n = 24;
    const server = await serve({
      maxStreams: 1,
      ttftMs: 10,
      paceMs: 3,
      slowAfter: 2 * n,
      slowFactor: 4,
    });
    const { result } = await run(sweepConfig(server, n, { sweep_points: 6 }));
    expect(RunResultSchema.parse(result)).toEqual(result);
    const points = result.points!;
    // Synchronous, saturation, then the first rate: over-saturated, so the other three are not run.
    expect(points.map((p) => p.kind)).toEqual(['sync', 'saturation', 'rate']);
    const stopped = points[2]!;
    expect(stopped.overSaturation).toMatchObject({ detected: true });
    expect(stopped.overSaturation!.ttftMs!.slopePerS).toBeGreaterThan(0);
    expect(stopped.overSaturation!.inFlight!.slopePerS).toBeGreaterThan(0);
    expect(stopped.warnings.map((w) => w.code)).toContain('over-saturated');
    expect(result.sweep).toMatchObject({ plannedPoints: 6, stoppedAtPoint: 2 });
    expect(result.sweep!.rates).toHaveLength(4);
    expect(result.sweep!.stopReason).toMatch(
      /^point 2 \(.* req\/s\) over-saturated: TTFT rose .* requests in flight .*; the 3 higher rates were not measured$/,
    );
    expect(server.requests).toHaveLength(3 * n);
  });

  it('warns when the saturation point completes fewer requests per second than the synchronous one', {
    timeout: 60_000,
  }, async () => {
    // One stream at a time; after the synchronous point's requests the server is 6 times slower,
    // as a server that thrashes under concurrency would be.
    const n = 12;
    const server = await serve({
      maxStreams: 1,
      ttftMs: 5,
      paceMs: 2,
      slowAfter: n,
      slowFactor: 6,
    });
    const { result } = await run(sweepConfig(server, n, { sweep_points: 2 }));
    expect(result.points!.map((p) => p.kind)).toEqual(['sync', 'saturation']);
    const { syncRequestRate, saturationRequestRate } = result.sweep!;
    expect(saturationRequestRate!).toBeLessThan(syncRequestRate!);
    const warning = result.warnings.find((w) => w.code === 'saturation-below-sync');
    expect(warning?.message).toMatch(
      /^the saturation point \(12 in flight\) completed .* req\/s, fewer than the synchronous point's .*: the server slows down under concurrency/,
    );
  });

  it('the run timeout counts the workload once per point', () => {
    const config = {
      max_output_tokens: 10,
      dataset: { synthetic: { n: 10 } },
      openai: { load: 'sweep', sweep_points: 4 },
    };
    expect(runTimeoutS({}, config)).toBe(Math.ceil(120 + 4 * 10 * 10 * 0.1));
    expect(runTimeoutS({}, { ...config, openai: { load: 'sweep' } })).toBe(
      Math.ceil(120 + 8 * 10 * 10 * 0.1),
    );
    expect(runTimeoutS({}, { ...config, openai: { concurrency: 2 } })).toBe(
      Math.ceil(120 + 10 * 10 * 0.1),
    );
  });
});
