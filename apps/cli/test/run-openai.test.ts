import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseRequestRecords, RunResultSchema, readDispatchSummary } from '@llem/domain';
import { startTestServer } from '@llem/test-server';
import { describe, expect, it } from 'vitest';
import { runLlem } from './support/llem';
import { noGpuEnv } from './support/servers';

// No GPU here whatever the machine: NVML points at a library that does not exist.
const env = noGpuEnv;

function studyDir(yaml: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'llem-run-openai-'));
  writeFileSync(join(dir, 'study.yaml'), yaml);
  return dir;
}

const study = (baseUrl: string, extra = '') => `name: served
model: test-model
engine: openai
openai: { base_url: "${baseUrl}", concurrency: 2${extra} }
dataset: { synthetic: { n: 6, input_len: 8, output_len: 5, seed: 1 } }
max_output_tokens: 5
warmup: { n: 2 }
energy: { backend: none }
execution: { cycles: 1, experiment_gap_s: 0, cycle_gap_s: 0 }
`;

describe('llem run with an openai study', () => {
  it('writes one record per measured request beside the result, TPOT in the result, the request plot in the report', async () => {
    // A server like llama-server: closes kept-alive connections, several tokens per chunk.
    const server = await startTestServer({
      closeAfterResponses: 1,
      tokensPerChunk: 2,
      paceMs: 5,
      usage: 'finish',
      timings: true,
      lifetimeMs: 60_000,
    });
    try {
      const cwd = studyDir(study(server.baseUrl));
      const { code, stderr } = await runLlem(['run', 'study.yaml', '--output', 'out'], {
        env,
        cwd,
      });
      expect(stderr).toMatch(/completed/);
      expect(code).toBe(0);
      const [dirName] = readdirSync(join(cwd, 'out'));
      const runs = join(cwd, 'out', dirName!, 'runs');
      const resultName = readdirSync(runs).find((f) => /_c0\.json$/.test(f))!;
      const result = RunResultSchema.parse(
        JSON.parse(readFileSync(join(runs, resultName), 'utf8')),
      );
      expect(result.latency.tpotMs?.p50).toBeGreaterThan(0);
      const requestsFile = join(runs, resultName.replace(/\.json$/, '.requests.jsonl'));
      expect(result.extra.requestsFile).toBe(resultName.replace(/\.json$/, '.requests.jsonl'));
      const { records, invalid } = parseRequestRecords(readFileSync(requestsFile, 'utf8'));
      expect(invalid).toEqual([]);
      expect(records.map((r) => r.id)).toEqual([0, 1, 2, 3, 4, 5]);
      expect(records.every((r) => r.error === null && r.outputTokens === 5)).toBe(true);
      // The warmup's 2 requests reached the server but are not among the records.
      expect(server.requests).toHaveLength(8);
      const html = readFileSync(join(cwd, 'out', dirName!, 'report.html'), 'utf8');
      expect(html).toContain('<figure class="requests">');
    } finally {
      await server.close();
    }
  }, 60_000);

  it('an open-loop rate beyond the client: the run completes, says client-saturated, and results show marks the latencies', async () => {
    const server = await startTestServer({ lifetimeMs: 60_000 });
    try {
      // A million requests/s: 3,000 requests all due within milliseconds.
      const cwd = studyDir(
        study(server.baseUrl)
          .replace('concurrency: 2', 'request_rate: 1000000')
          .replace('n: 6, input_len: 8, output_len: 5', 'n: 3000, input_len: 2, output_len: 1')
          .replace('max_output_tokens: 5', 'max_output_tokens: 1'),
      );
      const { code, stdout } = await runLlem(['run', 'study.yaml', '--output', 'out'], {
        env,
        cwd,
      });
      expect(code).toBe(0);
      expect(stdout).toMatch(/Measurement warnings .*client-saturated \(1 run\)/);
      expect(stdout).toMatch(
        /^ {2}client-saturated: the client could not keep its arrival schedule.*llem results show marks the figures it affects\.$/m,
      );
      const [dirName] = readdirSync(join(cwd, 'out'));
      const dir = join(cwd, 'out', dirName!);
      const runs = join(dir, 'runs');
      const resultName = readdirSync(runs).find((f) => /_c0\.json$/.test(f))!;
      const result = RunResultSchema.parse(
        JSON.parse(readFileSync(join(runs, resultName), 'utf8')),
      );
      const dispatch = readDispatchSummary(result.extra)!;
      expect(dispatch).toMatchObject({ scheduled: 3000, sent: 3000, targetRate: 1_000_000 });
      expect(result.warnings.find((w) => w.code === 'client-saturated')?.message).toMatch(
        /it sent [\d,]+ req\/s where the schedule asked for/,
      );
      expect(result.latency.ttftFromScheduledMs!.p50).toBeGreaterThan(result.latency.ttftMs!.p50);
      const shown = await runLlem(['results', 'show', dir], { env, cwd });
      expect(shown.code).toBe(0);
      const row = shown.stdout.split('\n').find((l) => /^1 {2}/.test(l))!;
      expect(row).toMatch(/ !/);
      expect(shown.stdout).toMatch(
        /^! client-saturated in 1 of 1 run of config 1 \(.*\), next to TTFT p50, TTFT p95/m,
      );
      expect(shown.stdout).toContain('TTFT from schedule p50 (ms)');
    } finally {
      await server.close();
    }
  }, 90_000);

  it('an unreachable server fails the run within openai.ready_timeout_s with the cause, showing progress', async () => {
    const gone = await startTestServer();
    await gone.close();
    const cwd = studyDir(study(gone.baseUrl, ', ready_timeout_s: 2'));
    const t0 = performance.now();
    const { code, stderr } = await runLlem(['run', 'study.yaml', '--output', 'out'], { env, cwd });
    const tookS = (performance.now() - t0) / 1000;
    expect(code).toBe(1);
    // Progress while waiting, on the console (not only in the run's log)...
    expect(stderr).toMatch(
      /not ready after \d+\.\d s of 2 s: connection refused \(ECONNREFUSED: .*\); trying again in/,
    );
    // ...and the run's failure names the real cause.
    expect(stderr).toMatch(
      /failed in .*engine UNREACHABLE: openai engine: .* was not ready after \d+ attempts in \d+\.\d s \(openai\.ready_timeout_s 2\): connection refused \(ECONNREFUSED/,
    );
    expect(stderr).not.toMatch(/timeout: no result/);
    // Worker start-up (TypeScript from source on a loaded machine) plus the 2 s wait, not minutes.
    expect(tookS).toBeLessThan(40);
  }, 60_000);
});
