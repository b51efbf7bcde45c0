import { expect, it } from 'vitest';
import { nvmlResidualCheck } from '../src/residual';

it('the default residual check never throws and always returns a schema-shaped observation', async () => {
  const observation = await nvmlResidualCheck({
    deviceIndices: [0],
    thresholdMb: 100,
    logger: { error() {}, warn() {}, info() {}, debug() {} },
  });
  expect(['ok', 'exceeded', 'skipped']).toContain(observation.status);
  expect(observation.thresholdMb).toBe(100);
  expect(Array.isArray(observation.devices)).toBe(true);
  expect(Number.isNaN(Date.parse(observation.checkedAt))).toBe(false);
});
