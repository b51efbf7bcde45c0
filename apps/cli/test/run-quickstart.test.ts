import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RunResultSchema } from '@llem/domain';
import { describe, expect, it } from 'vitest';
import { runLlem } from './support/llem';

// End to end, as a newcomer runs it: `llem run` with no file runs the built-in quickstart study
// (builtin:tiny on the embedded llama.cpp CPU engine, 4 configs × 2 cycles) through real child
// processes. About a minute on two idle cores; the timeout leaves room for a busy CI machine.
describe('llem run (the quickstart study, on CPU)', () => {
  it('completes every run and says which figures this machine could not measure', {
    timeout: 900_000,
  }, async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'llem-quickstart-'));
    const env = { ...process.env, LLEM_NVML_LIBRARY: '/nonexistent/libnvidia-ml.so.1' };
    const { code, stdout } = await runLlem(['run', '--json'], { env, cwd });
    const summary = JSON.parse(stdout);
    expect(summary.runs.filter((r: { error: unknown }) => r.error)).toEqual([]);
    expect(code).toBe(0);
    expect(summary).toMatchObject({
      status: 'completed',
      counts: { total: 8, completed: 8, failed: 0 },
    });
    expect(summary.studyDir.startsWith(join(cwd, 'results', 'quickstart_'))).toBe(true);
    expect(summary.notMeasurable.map((n: { figure: string }) => n.figure)).toEqual(
      expect.arrayContaining(['energy (J, J/token)', 'peak GPU memory']),
    );
    const modelHashes = new Set<string>();
    for (const run of summary.runs) {
      const result = RunResultSchema.parse(
        JSON.parse(readFileSync(join(summary.studyDir, 'runs', `${run.key}.json`), 'utf8')),
      );
      expect(result.engine).toBe('llamacpp');
      expect(result.tokens.output).toBeGreaterThan(0);
      expect(result.throughput.outputTokensPerS).toBeGreaterThan(0);
      expect(result.latency.ttftMs?.p50).toBeGreaterThan(0);
      expect(result.latency.itlMs?.p50).toBeGreaterThan(0);
      expect(result.flops.method).toBe('2-params-tokens');
      expect(result.memory.rssPeakMiB).toBeGreaterThan(0);
      expect(result.energy.unavailableReason).toMatch(/NVML/);
      expect(result.environment.engineVersion).toMatch(/node-llama-cpp/);
      // The generated model file is identified; the synthetic dataset is no file.
      expect(result.inputs?.model).toMatchObject({
        path: expect.stringMatching(/\.gguf$/),
        coverage: 'full',
      });
      expect(result.inputs?.dataset).toBeNull();
      modelHashes.add(result.inputs?.model?.sha256 ?? '');
    }
    expect(modelHashes.size).toBe(1);
  });
});
