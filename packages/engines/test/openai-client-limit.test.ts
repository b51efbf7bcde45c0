import { startTestServer } from '@llem/test-server';
import { describe, expect, it } from 'vitest';
import { measureClientLimit } from '../src/openai/index';

describe('measureClientLimit', () => {
  it('runs the engine open loop at each rate against its built-in server and judges each', async () => {
    const seen: number[] = [];
    const limit = await measureClientLimit({
      rates: [50, 100],
      stepS: 0.4,
      onStep: (step) => seen.push(step.targetRate),
    });
    expect(seen).toEqual([50, 100]);
    expect(limit.steps.map((s) => s.dispatch.sent)).toEqual([20, 40]);
    for (const step of limit.steps) {
      expect(step.dispatch).toMatchObject({ targetRate: step.targetRate, maxClientLagMs: 5 });
      // The verdicts follow the client-saturated rule on the step's own figures.
      const sent = step.dispatch.achievedSendRate!;
      expect(step.keptRate).toBe(sent >= 0.95 * step.dispatch.scheduledRate!);
      if (!step.keptRate) expect(step.saturated.length).toBeGreaterThan(0);
    }
    const kept = limit.steps.filter((s) => s.keptRate);
    expect(limit.sustainableRate).toBe(
      kept.length ? Math.max(...kept.map((s) => s.dispatch.achievedSendRate!)) : null,
    );
    expect(limit.cpus).toBeGreaterThan(0);
  }, 30_000);

  it('fails with the engine’s error when requests fail, rather than report meaningless rates', async () => {
    const broken = await startTestServer({ scenario: () => ({ status: 500 }), lifetimeMs: 20_000 });
    try {
      await expect(
        measureClientLimit({
          baseUrl: broken.baseUrl,
          model: 'test-model',
          rates: [50],
          stepS: 0.2,
        }),
      ).rejects.toMatchObject({ code: 'FAILURE_RATE_EXCEEDED' });
    } finally {
      await broken.close();
    }
  }, 30_000);
});
