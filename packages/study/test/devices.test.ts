import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { RunDevice } from '@llem/domain';
import {
  ensureFakeNvmlBuilt,
  fakeNvmlLibraryPath,
  h100Profile,
  writeScenario,
} from '@llem/fake-nvml';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cudaVisibleDevices, nvmlResolveDevices } from '../src/devices';
import { StudyDevicesError } from '../src/errors';
import { StudyRunner } from '../src/runner';
import { readJsonLines } from './fixtures/chaos';
import { makePlan, TSX_EXEC_ARGV } from './fixtures/plan';
import { okResidual, readJson, readManifest, tempDir } from './helpers';

const worker = new URL('./fixtures/worker.ts', import.meta.url);
/** A machine with GPUs 0–3 whose UUIDs are `GPU-fake-<index>`. */
const fourGpus = (specs: readonly (number | string)[]): RunDevice[] =>
  specs.map((index) => ({ index: Number(index), uuid: `GPU-fake-${index}` }));
const noLogger = {
  error: () => undefined,
  warn: () => undefined,
  info: () => undefined,
  debug: () => undefined,
};

let tmp: ReturnType<typeof tempDir>;
let ledger: string;
beforeEach(() => {
  tmp = tempDir();
  ledger = join(tmp.dir, 'ledger.jsonl');
});
afterEach(() => tmp.cleanup());

interface Span {
  key: string;
  devices: number[];
  cuda: string | null;
  start: number;
  end: number;
}

/** Each run's [start, finish] on the worker's clock, with the devices and CUDA_VISIBLE_DEVICES it saw. */
function spans(): Span[] {
  const lines = readJsonLines(ledger);
  return lines
    .filter((l) => l.event === 'start')
    .map((s) => {
      const finish = lines.find(
        (l) => l.event === 'finish' && l.key === s.key && l.attempt === s.attempt,
      );
      return {
        key: s.key as string,
        devices: (s.devices as number[] | null) ?? [],
        cuda: s.cuda as string | null,
        start: s.t as number,
        // A run that threw logs no finish: it ended as it started.
        end: (finish?.t as number | undefined) ?? (s.t as number),
      };
    });
}

/** Pairs of runs that held one GPU at the same time. */
function sharedGpus(all: Span[]): string[] {
  const clashes: string[] = [];
  for (const [i, a] of all.entries()) {
    for (const b of all.slice(i + 1)) {
      const overlap = a.start < b.end && b.start < a.end;
      const common = a.devices.filter((d) => b.devices.includes(d));
      if (overlap && common.length > 0) clashes.push(`${a.key}/${b.key} on ${common.join(',')}`);
    }
  }
  return clashes;
}

/** The most runs going at once. */
function maxConcurrent(all: Span[]): number {
  const edges = all
    .flatMap((s) => [
      [s.start, 1],
      [s.end, -1],
    ])
    .sort((a, b) => (a[0] as number) - (b[0] as number) || (a[1] as number) - (b[1] as number));
  let now = 0;
  let most = 0;
  for (const [, d] of edges) {
    now += d as number;
    most = Math.max(most, now);
  }
  return most;
}

function runner(configs: object[], execution: object, extra: object = {}) {
  return new StudyRunner({
    plan: makePlan(configs, execution as never),
    outputDir: tmp.dir,
    workerModule: worker,
    execArgv: TSX_EXEC_ARGV,
    env: { ...process.env, LLEM_TEST_LEDGER: ledger },
    residualCheck: okResidual,
    resolveDevices: fourGpus,
    graceMs: 500,
    ...extra,
  } as ConstructorParameters<typeof StudyRunner>[0]);
}

describe('many GPUs: runs in parallel on disjoint device sets', () => {
  it('keeps 4 runs going on 4 GPUs, each seeing only its GPU by UUID, none sharing one', async () => {
    const configs = Array.from({ length: 8 }, (_, id) => ({ behaviour: 'ok', delayMs: 700, id }));
    const r = runner(configs, { devices: [0, 1, 2, 3], devices_per_run: 1 });
    const started: Array<{ key: string; devices?: RunDevice[] }> = [];
    r.on('run-started', (e) => started.push(e));
    const summary = await r.run();
    expect(summary.counts).toMatchObject({ completed: 8, failed: 0 });
    const all = spans();
    expect(all).toHaveLength(8);
    expect(sharedGpus(all)).toEqual([]);
    expect(maxConcurrent(all)).toBeGreaterThanOrEqual(3);
    for (const s of all) {
      expect(s.devices).toHaveLength(1);
      expect(s.cuda).toBe(`GPU-fake-${s.devices[0]}`);
    }
    // The assignment is in the run's record and event, not in its config or hash.
    for (const e of readManifest(summary.studyDir).entries) {
      const record = readJson<{ devices: RunDevice[] }>(
        join(summary.studyDir, 'runs', `${e.key}.record.json`),
      );
      expect(record.devices).toHaveLength(1);
      const task = readJson<{ devices: RunDevice[]; parallel: boolean; config: object }>(
        join(summary.studyDir, 'runs', `${e.key}.task.json`),
      );
      expect(task.devices).toEqual(record.devices);
      expect(task.parallel).toBe(true);
    }
    expect(started.every((e) => e.devices?.length === 1)).toBe(true);
  }, 60_000);

  it('gives a run needing two GPUs two free ones, in plan order, and never overlaps an exclusive group', async () => {
    const configs = [
      { behaviour: 'ok', delayMs: 500, id: 'a', gpus: 2 },
      { behaviour: 'ok', delayMs: 500, id: 'b', gpus: 1 },
      { behaviour: 'ok', delayMs: 500, id: 'c', gpus: 2 },
      { behaviour: 'ok', delayMs: 500, id: 'x1', gpus: 1, exclusive: true },
      { behaviour: 'ok', delayMs: 500, id: 'x2', gpus: 1, exclusive: true },
      { behaviour: 'ok', delayMs: 500, id: 'x3', gpus: 1, exclusive: true },
    ];
    const r = runner(
      configs,
      { devices: [0, 1, 2, 3] },
      {
        devicesPerRun: (c: { gpus: number }) => c.gpus,
        exclusiveGroup: (c: { exclusive?: boolean }) => (c.exclusive ? 'external' : null),
      },
    );
    const summary = await r.run();
    expect(summary.counts.completed).toBe(6);
    const all = spans();
    expect(sharedGpus(all)).toEqual([]);
    const byId = new Map(
      readManifest(summary.studyDir).entries.map((e, i) => [
        configs[i]?.id,
        all.find((s) => s.key === e.key)!,
      ]),
    );
    expect(byId.get('a')?.devices).toHaveLength(2);
    expect(byId.get('a')?.cuda?.split(',')).toHaveLength(2);
    expect(byId.get('c')?.devices).toHaveLength(2);
    const exclusive = ['x1', 'x2', 'x3'].map((id) => byId.get(id)!);
    expect(maxConcurrent(exclusive)).toBe(1);
    // Dispatch (the claim, when the run gets its GPUs) follows plan order.
    const claimed = readManifest(summary.studyDir).entries.map(
      (e) =>
        readJson<{ claimedAt: string }>(join(summary.studyDir, 'runs', `${e.key}.claim-1`))
          .claimedAt,
    );
    expect([...claimed].sort()).toEqual(claimed);
  }, 60_000);

  it('applies the gap per device set, and a failed run frees its GPUs', async () => {
    const configs = [
      { behaviour: 'throw', id: 0 },
      { behaviour: 'ok', delayMs: 100, id: 1 },
      { behaviour: 'ok', delayMs: 100, id: 2 },
      { behaviour: 'ok', delayMs: 100, id: 3 },
    ];
    const summary = await runner(configs, { devices: [0, 1], experiment_gap_s: 0.8 }).run();
    expect(summary.counts).toMatchObject({ completed: 3, failed: 1 });
    const all = spans().sort((a, b) => a.start - b.start);
    expect(sharedGpus(all)).toEqual([]);
    // The first two go at once (no gap before a device's first run); each later run waits the
    // gap after the previous run on its GPU ended.
    expect(Math.abs((all[1]?.start ?? 0) - (all[0]?.start ?? 0))).toBeLessThan(700);
    for (const later of all.slice(2)) {
      const before = all.filter((s) => s.devices[0] === later.devices[0] && s.start < later.start);
      const last = before.at(-1);
      expect(last).toBeDefined();
      // The previous run on this GPU ended (its child exited after `end`), then 0.8 s.
      expect(later.start - last!.end).toBeGreaterThanOrEqual(750);
    }
  }, 60_000);

  it('Ctrl-C stops every running child cleanly; resume finishes the study with no GPU shared', async () => {
    const configs = Array.from({ length: 6 }, (_, id) => ({ behaviour: 'ok', delayMs: 1500, id }));
    const r = runner(configs, { devices: [0, 1, 2] });
    let started = 0;
    r.on('run-started', () => {
      started += 1;
      if (started === 3) setTimeout(() => r.interrupt(), 200);
    });
    const summary = await r.run();
    expect(summary.status).toBe('interrupted');
    const manifest = readManifest(summary.studyDir);
    expect(manifest.counts).toMatchObject({ completed: 0, pending: 6, running: 0 });
    expect(manifest.entries.filter((e) => e.error?.type === 'interrupted')).toHaveLength(3);

    const resumed = await new StudyRunner({
      resume: summary.studyDir,
      workerModule: worker,
      execArgv: TSX_EXEC_ARGV,
      env: { ...process.env, LLEM_TEST_LEDGER: ledger },
      residualCheck: okResidual,
      resolveDevices: fourGpus,
    }).run();
    expect(resumed.status).toBe('completed');
    expect(resumed.counts.completed).toBe(6);
    expect(sharedGpus(spans())).toEqual([]);
  }, 60_000);

  it('refuses a GPU the machine does not have before anything is written', async () => {
    const error = await runner(
      [{ behaviour: 'ok' }],
      { devices: [0, 7] },
      {
        resolveDevices: (specs: number[]) => nvmlResolveDevicesWithFake(specs),
      },
    )
      .run()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StudyDevicesError);
    expect((error as Error).message).toBe(
      'execution.devices: GPU 7 does not exist (NVML sees 4 GPUs: 0–3)',
    );
    // No study directory was made (only the fake NVML's scenario file is there).
    expect(readdirSync(tmp.dir).filter((f) => !f.startsWith('scenario-'))).toEqual([]);
  });
});

describe('many runners on one study never share a GPU or an exclusive group', () => {
  const resume = (studyDir: string, extra: object = {}) =>
    new StudyRunner({
      resume: studyDir,
      workerModule: worker,
      execArgv: TSX_EXEC_ARGV,
      env: { ...process.env, LLEM_TEST_LEDGER: ledger },
      residualCheck: okResidual,
      resolveDevices: fourGpus,
      graceMs: 500,
      ...extra,
    } as ConstructorParameters<typeof StudyRunner>[0]);

  /** A study on disk with every run pending (its first runner interrupted before any run). */
  async function pendingStudy(configs: object[], execution: object): Promise<string> {
    const r = runner(configs, execution);
    r.interrupt();
    const summary = await r.run();
    return summary.studyDir;
  }

  it('two runners with a 4-GPU pool split the runs without sharing a GPU', async () => {
    const configs = Array.from({ length: 8 }, (_, id) => ({ behaviour: 'ok', delayMs: 900, id }));
    const studyDir = await pendingStudy(configs, { devices: [0, 1, 2, 3] });
    const [a, b] = await Promise.all([resume(studyDir).run(), resume(studyDir).run()]);
    expect([a.status, b.status]).toContain('completed');
    const all = spans();
    expect(all.map((x) => x.key).sort()).toEqual(
      readManifest(studyDir)
        .entries.map((e) => e.key)
        .sort(),
    );
    expect(sharedGpus(all)).toEqual([]);
    expect(maxConcurrent(all)).toBeLessThanOrEqual(4);
    // Every hold was let go.
    expect(readdirSync(join(studyDir, 'resources'))).toEqual([]);
  }, 90_000);

  it('without a pool, two runners never measure one GPU at once; an exclusive group is kept across runners', async () => {
    const configs = Array.from({ length: 4 }, (_, id) => ({ behaviour: 'ok', delayMs: 500, id }));
    const studyDir = await pendingStudy(configs, {});
    const options = {
      runDevices: () => [0],
      resolveDevices: undefined,
    };
    await Promise.all([resume(studyDir, options).run(), resume(studyDir, options).run()]);
    const onGpu0 = spans();
    expect(onGpu0).toHaveLength(4);
    expect(maxConcurrent(onGpu0)).toBe(1);

    const grouped = await pendingStudy(
      Array.from({ length: 4 }, (_, id) => ({ behaviour: 'ok', delayMs: 500, id, g: true })),
      { devices: [0, 1, 2, 3] },
    );
    const before = spans().length;
    const group = { exclusiveGroup: () => 'external server' };
    await Promise.all([resume(grouped, group).run(), resume(grouped, group).run()]);
    const inGroup = spans().slice(before);
    expect(inGroup).toHaveLength(4);
    expect(maxConcurrent(inGroup)).toBe(1);
  }, 90_000);

  it('a run whose record cannot be written stops dispatching; the runs going end, then the error is thrown', async () => {
    const configs = Array.from({ length: 3 }, (_, id) => ({ behaviour: 'ok', delayMs: 700, id }));
    const studyDir = await pendingStudy(configs, { devices: [0, 1, 2] });
    const keys = readManifest(studyDir).entries.map((e) => e.key);
    // A directory where the second run's record goes: writing it fails (EISDIR on rename).
    const { mkdirSync: mkdir } = await import('node:fs');
    mkdir(join(studyDir, 'runs', `${keys[1]}.record.json`), { recursive: true });
    const error = await resume(studyDir)
      .run()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    // The others ran to the end and were recorded; nothing is left held.
    const records = [keys[0], keys[2]].map((k) =>
      readJson<{ status: string }>(join(studyDir, 'runs', `${k}.record.json`)),
    );
    expect(records.map((r) => r.status)).toEqual(['completed', 'completed']);
    expect(readdirSync(join(studyDir, 'resources'))).toEqual([]);
  }, 90_000);
});

const FAKE = [0, 1, 2, 3].map((i) =>
  h100Profile({ uuid: `GPU-0000000${i}-aaaa-bbbb-cccc-dddddddddddd` }),
);

async function nvmlResolveDevicesWithFake(specs: (number | string)[]): Promise<RunDevice[]> {
  ensureFakeNvmlBuilt();
  process.env.LLEM_NVML_LIBRARY = fakeNvmlLibraryPath();
  process.env.LLEM_FAKE_NVML_SCENARIO = writeScenario({ devices: FAKE }, tmp.dir);
  return nvmlResolveDevices(specs, noLogger);
}

describe('nvmlResolveDevices against the fake NVML', () => {
  afterEach(() => {
    delete process.env.LLEM_NVML_LIBRARY;
    delete process.env.LLEM_FAKE_NVML_SCENARIO;
  });

  it('maps indices and UUIDs (with or without GPU-, any case) to NVML index and UUID', async () => {
    const uuid2 = FAKE[2]?.uuid as string;
    const found = await nvmlResolveDevicesWithFake([
      1,
      uuid2.toUpperCase().replace('GPU-', 'gpu-'),
      uuid2.slice(4),
    ]);
    expect(found).toEqual([
      { index: 1, uuid: FAKE[1]?.uuid },
      { index: 2, uuid: uuid2 },
      { index: 2, uuid: uuid2 },
    ]);
    expect(cudaVisibleDevices(found.slice(0, 2))).toBe(`${FAKE[1]?.uuid},${uuid2}`);
  });

  it('an unknown UUID is an error naming what NVML sees; without NVML, UUIDs cannot be resolved', async () => {
    await expect(nvmlResolveDevicesWithFake(['GPU-nope'])).rejects.toThrow(
      /^execution\.devices: no GPU has UUID GPU-nope \(NVML sees GPU-00000000-/,
    );
    process.env.LLEM_NVML_LIBRARY = '/nonexistent/libnvidia-ml.so.1';
    await expect(nvmlResolveDevices(['GPU-x'], noLogger)).rejects.toThrow(
      /names GPUs by UUID \(GPU-x\), but NVML cannot be opened/,
    );
    const warnings: string[] = [];
    const byIndex = await nvmlResolveDevices([0, 1], {
      ...noLogger,
      warn: (m: string) => void warnings.push(m),
    });
    expect(byIndex).toEqual([
      { index: 0, uuid: null },
      { index: 1, uuid: null },
    ]);
    expect(warnings[0]).toMatch(/CUDA_VISIBLE_DEVICES/);
  });
});
