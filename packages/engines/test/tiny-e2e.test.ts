import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gguf } from '@huggingface/gguf';
import { parseExperimentConfig } from '@llem/domain';
import { noopLogger } from '@llem/resilience';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createLlamaCppEngine } from '../src/llamacpp/index';
import { ensureTinyModel, tinyModelFileName, tinyModelSpec } from '../src/tiny/index';

// End to end with the full-size builtin:tiny: generated from scratch into an empty cache,
// read by a third-party parser, then loaded and run by the engine exactly as a study would.
let cacheDir: string;
beforeAll(async () => {
  cacheDir = await mkdtemp(join(tmpdir(), 'llem-tiny-e2e-'));
});
afterAll(async () => {
  await rm(cacheDir, { recursive: true, force: true });
});

it('builtin:tiny is generated, parsed by @huggingface/gguf, and runs in the llamacpp engine', {
  timeout: 120_000,
}, async () => {
  const path = await ensureTinyModel({ cacheDir });
  expect(path).toBe(join(cacheDir, tinyModelFileName(tinyModelSpec)));
  const parsed = await gguf(path, { allowLocalFile: true, computeParametersCount: true });
  expect(parsed.parameterCount).toBe(tinyModelSpec.parameterCount);
  expect((parsed.metadata as unknown as Record<string, unknown>)['general.file_type']).toBe(1);

  const engine = createLlamaCppEngine(
    parseExperimentConfig({
      model: 'builtin:tiny',
      engine: 'llamacpp',
      decoder: { preset: 'deterministic' },
      llamacpp: { threads: 1, context_size: 512 },
    }),
    { logger: noopLogger, signal: new AbortController().signal },
    { cacheDir },
  );
  try {
    const info = await engine.load();
    expect(info.parameterCount).toBe(tinyModelSpec.parameterCount);
    expect(info.details.modelPath).toBe(path);
    const outcome = await engine.run([
      { id: 0, prompt: 'What does one token cost in energy?', maxOutputTokens: 16 },
      { id: 1, prompt: 'Measure twice, cut once.', maxOutputTokens: 16 },
    ]);
    expect(outcome.outputTokens).toBe(32);
    for (const r of outcome.requests) {
      expect(r.error).toBeUndefined();
      expect(r.tokenTimes).toHaveLength(15);
      expect(r.endedAt).toBeGreaterThan(r.startedAt);
    }
  } finally {
    await engine.dispose();
  }
});
