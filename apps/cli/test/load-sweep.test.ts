import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RunResultSchema } from '@llem/domain';
import { describe, expect, it, onTestFinished } from 'vitest';
import { parseCsv } from '../../../packages/report/src/index';
import {
  ensureFakeNvmlBuilt,
  fakeNvmlLibraryPath,
  h100Profile,
  writeScenario,
} from '../../../tooling/fake-nvml/src/index';
import { runLlem } from './support/llem';
import { managedTestServerArgv, noGpuEnv } from './support/servers';

// `openai.load: sweep` end to end: `llem run` starts the test server once per run (cycle), the
// run measures every load point, and the report, summary.csv and `llem results show` name the
// configuration and load point that answers the study.

function study(openai: string, energy = 'none'): string {
  const cwd = mkdtempSync(join(tmpdir(), 'llem-sweep-cli-'));
  writeFileSync(
    join(cwd, 'study.yaml'),
    `name: sweep
model: test-model
engine: openai
openai: { base_url: "http://127.0.0.1:{port}/v1", ${openai} }
dataset: { synthetic: { n: 12, input_len: 8, output_len: 6, seed: 1 } }
max_output_tokens: 6
warmup: { n: 1 }
energy: { backend: ${energy} }
server:
  argv: ${managedTestServerArgv()}
  args: { ttft-ms: 15, pace-ms: 3, max-streams: 2 }
  ready: { timeout_s: 60 }
  metrics: false
  stop_grace_s: 5
execution: { cycles: 2 }
`,
  );
  return cwd;
}

describe('llem run with openai.load: sweep', () => {
  it('measures every load point in one run per cycle, one server start each; summary rows per point; the answer names the point', async () => {
    // A fake 300 W GPU (the C fake NVML) gives every point its energy.
    ensureFakeNvmlBuilt();
    const scenario = writeScenario({ devices: [h100Profile()] });
    const env = {
      ...noGpuEnv,
      LLEM_NVML_LIBRARY: fakeNvmlLibraryPath(),
      LLEM_FAKE_NVML_SCENARIO: scenario,
    };
    // The runner's residual check runs in this process: the C fake reads its own environment.
    const saved = process.env.LLEM_FAKE_NVML_SCENARIO;
    process.env.LLEM_FAKE_NVML_SCENARIO = scenario;
    onTestFinished(() => {
      if (saved === undefined) delete process.env.LLEM_FAKE_NVML_SCENARIO;
      else process.env.LLEM_FAKE_NVML_SCENARIO = saved;
    });
    // Two streams at a time: 4 in flight queue, so the saturation point misses the TTFT target.
    const cwd = study(
      'load: sweep, sweep_points: 4, max_concurrency: 4, slo: { ttft_ms: 28 }',
      'nvml',
    );
    const { code, stderr } = await runLlem(['run', 'study.yaml', '--output', 'out'], { env, cwd });
    expect(stderr).toMatch(/sweep point 4\/4: /);
    expect(code).toBe(0);
    const [name] = readdirSync(join(cwd, 'out'));
    const dir = join(cwd, 'out', name!);
    const runs = join(dir, 'runs');
    const results = readdirSync(runs)
      .filter((f) => /_c\d\.json$/.test(f))
      .map((f) => RunResultSchema.parse(JSON.parse(readFileSync(join(runs, f), 'utf8'))));
    // A cycle repeats the whole sweep: two runs, each with all four points.
    expect(results).toHaveLength(2);
    for (const result of results) {
      expect(result.points!.map((p) => p.kind)).toEqual(['sync', 'saturation', 'rate', 'rate']);
      expect(result.sweep).toMatchObject({ plannedPoints: 4, stoppedAtPoint: null });
      // One managed server per run, started once for every point.
      expect(result.server).toMatchObject({ attempts: 1 });
      expect(result.tokens.output).toBe(4 * 12 * 6);
      for (const p of result.points!) {
        expect(p.energy.method).toBe('nvml-counter');
        expect(p.energyPerOutputTokenJ).toBeGreaterThan(0);
      }
    }
    // Every point of every run hit the one server its run started: 1 warmup + 4 × 12 requests.
    const servers = new Set(results.map((r) => r.server!.pid));
    expect(servers.size).toBe(2);

    const [header, ...rows] = parseCsv(readFileSync(join(dir, 'summary.csv'), 'utf8'));
    const col = (n: string) => header!.indexOf(n);
    expect(rows).toHaveLength(2 * 4);
    expect(rows.map((r) => r[col('point_kind')])).toEqual([
      'sync',
      'saturation',
      'rate',
      'rate',
      'sync',
      'saturation',
      'rate',
      'rate',
    ]);
    expect(rows.every((r) => Number(r[col('achieved_request_rate')]) > 0)).toBe(true);

    const show = await runLlem(['results', 'show', dir], { env, cwd });
    expect(show.code).toBe(0);
    // The answer is a configuration and one of its load points (never the saturation point,
    // whose queue puts its TTFT over the target).
    expect(show.stdout).toMatch(
      /The answer \(lowest J\/token that meets its SLOs\):\n {2}\* test-model · load point [023] \((sync|rate)/,
    );
    expect(show.stdout).toMatch(
      /Load sweep \(means over cycles[^\n]*\n.*\n.*\ntest-model\s+0\s+sync\s/,
    );
    const html = readFileSync(join(dir, 'report.html'), 'utf8');
    expect(html).toContain('<h2>Load sweep</h2>');
    expect(html.match(/<figure data-sweep=/g)?.length).toBeGreaterThanOrEqual(2);
  }, 240_000);

  it('a sweep with a fixed load is a config error naming the file and field (exit 2)', async () => {
    const cwd = study('load: sweep, concurrency: 4');
    const { code, stderr } = await runLlem(['run', 'study.yaml', '--output', 'out'], {
      env: noGpuEnv,
      cwd,
    });
    expect(code).toBe(2);
    expect(stderr).toMatch(/study\.yaml/);
    expect(stderr).toMatch(/openai\.concurrency: does not apply with openai\.load: sweep/);
    expect(stderr).not.toMatch(/\n\s+at /);
  });
});
