import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RunResultSchema } from '@llem/domain';
import { describe, expect, it } from 'vitest';
import {
  ensureFakeNvmlBuilt,
  fakeNvmlLibraryPath,
  h100Profile,
  writeScenario,
} from '../../../tooling/fake-nvml/src/index';
import { runLlem } from './support/llem';

// Four fake GPUs that draw 100, 200, 300 and 400 W: a run's energy says which GPU it was
// measured on, and its program's CUDA_VISIBLE_DEVICES says which GPU it saw.
const POWER_W = [100, 200, 300, 400];

const PROGRAM = `import { appendFileSync, readFileSync } from 'node:fs';
const reqs = readFileSync(process.env.LLEM_REQUESTS_FILE, 'utf8').trim().split('\\n');
const cfg = JSON.parse(readFileSync(process.env.LLEM_CONFIG_FILE, 'utf8'));
const t0 = Date.now();
console.log(JSON.stringify({ llem: 'start' }));
await new Promise((r) => setTimeout(r, 900));
console.log(JSON.stringify({ llem: 'stop' }));
appendFileSync(process.argv[2], JSON.stringify({ cuda: process.env.CUDA_VISIBLE_DEVICES, t0, t1: Date.now() }) + '\\n');
console.log(JSON.stringify({ input_tokens: 8 * reqs.length, output_tokens: 8 * reqs.length, requests: reqs.length }));
`;

describe('llem run on many GPUs', () => {
  it('runs in parallel, one per GPU; each run sees its GPU by UUID and is measured on it', async () => {
    ensureFakeNvmlBuilt();
    const cwd = mkdtempSync(join(tmpdir(), 'llem-many-gpus-'));
    const devices = POWER_W.map((w, i) =>
      h100Profile({
        uuid: `GPU-${i}0000000-0000-0000-0000-000000000000`,
        powerMw: w * 1000,
        instantPowerMw: w * 1000,
      }),
    );
    const env = {
      ...process.env,
      LLEM_NVML_LIBRARY: fakeNvmlLibraryPath(),
      LLEM_FAKE_NVML_SCENARIO: writeScenario({ devices }, cwd),
      LLEM_LOG_LEVEL: 'info',
    };
    // The runner reads NVML in this process too (device UUIDs, the residual check); the fake
    // library reads its scenario from the real process environment.
    const saved = process.env.LLEM_FAKE_NVML_SCENARIO;
    process.env.LLEM_FAKE_NVML_SCENARIO = env.LLEM_FAKE_NVML_SCENARIO;
    writeFileSync(join(cwd, 'prog.mjs'), PROGRAM);
    writeFileSync(
      join(cwd, 'study.yaml'),
      `name: gpus
model: m
engine: command
command: { argv: [${JSON.stringify(process.execPath)}, prog.mjs, seen.jsonl] }
dataset: { synthetic: { n: 2, input_len: 8, output_len: 8, seed: 1 } }
max_output_tokens: 8
warmup: { n: 0 }
energy: { backend: nvml, sample_interval_ms: 50 }
sweep:
  dataset.synthetic.seed: [1, 2, 3, 4, 5, 6, 7, 8]
execution: { devices: [0, 1, 2, 3] }
`,
    );
    const { code, stdout, stderr } = await runLlem(['run', 'study.yaml', '--json', '-o', 'out'], {
      env,
      cwd,
    }).finally(() => {
      if (saved === undefined) delete process.env.LLEM_FAKE_NVML_SCENARIO;
      else process.env.LLEM_FAKE_NVML_SCENARIO = saved;
    });
    expect(stderr).not.toMatch(/error/i);
    expect(code).toBe(0);
    const summary = JSON.parse(stdout) as { studyDir: string; runs: Array<{ key: string }> };
    expect(summary.runs).toHaveLength(8);
    const seenGpus = new Set<number>();
    for (const run of summary.runs) {
      const result = RunResultSchema.parse(
        JSON.parse(readFileSync(join(summary.studyDir, 'runs', `${run.key}.json`), 'utf8')),
      );
      const [device] = result.devices ?? [];
      expect(result.devices).toHaveLength(1);
      expect(device?.uuid).toBe(devices[device?.index as number]?.uuid);
      seenGpus.add(device?.index as number);
      // Measured on exactly that GPU: its energy is that GPU's power over the window.
      expect(result.energy.perDevice.map((d) => [d.kind, d.index])).toEqual([
        ['gpu', device?.index],
      ]);
      const watts = (result.energy.totalJ as number) / result.window.durationS;
      expect(Math.abs(watts - (POWER_W[device?.index as number] as number))).toBeLessThan(
        0.1 * (POWER_W[device?.index as number] as number),
      );
      // The config keeps energy.devices as written; the assignment is the run's.
      expect((result.config.energy as { devices: number[] }).devices).toEqual([0]);
      expect(result.residualCheck?.devices.map((d) => d.index)).toEqual([device?.index]);
    }
    expect(seenGpus.size).toBeGreaterThanOrEqual(3);
    // Each program saw exactly one GPU, by UUID, and some ran at the same time.
    const seen = readFileSync(join(cwd, 'seen.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { cuda: string; t0: number; t1: number });
    expect(seen).toHaveLength(8);
    for (const s of seen) expect(devices.map((d) => d.uuid)).toContain(s.cuda);
    const overlapping = seen.filter((a) => seen.some((b) => b !== a && a.t0 < b.t1 && b.t0 < a.t1));
    expect(overlapping.length).toBeGreaterThanOrEqual(2);
    for (const a of seen)
      for (const b of seen)
        if (a !== b && a.cuda === b.cuda) expect(a.t0 < b.t1 && b.t0 < a.t1).toBe(false);
  }, 180_000);
});
