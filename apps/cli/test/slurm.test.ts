import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RunResultSchema } from '@llem/domain';
import { startSlurmCluster } from '@llem/slurm-cluster';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ensureFakeNvmlBuilt,
  fakeNvmlLibraryPath,
  h100Profile,
  writeScenario,
} from '../../../tooling/fake-nvml/src/index';
import { runLlem } from './support/llem';

// `llem run --executor slurm` end to end on a one-node cluster of the test's own (4 fake GPUs
// as GRES; see tooling/slurm-cluster), with the llem worker measuring a `command` program on a
// fake NVML whose GPUs draw 100–400 W: a run's energy says which GPU it was measured on.

const POWER_W = [100, 200, 300, 400];
const PROGRAM = `import { appendFileSync, readFileSync } from 'node:fs';
const reqs = readFileSync(process.env.LLEM_REQUESTS_FILE, 'utf8').trim().split('\\n');
console.log(JSON.stringify({ llem: 'start' }));
await new Promise((r) => setTimeout(r, 600));
console.log(JSON.stringify({ llem: 'stop' }));
appendFileSync(process.argv[2], JSON.stringify({ cuda: process.env.CUDA_VISIBLE_DEVICES, job: process.env.SLURM_JOB_ID }) + '\\n');
console.log(JSON.stringify({ input_tokens: 8 * reqs.length, output_tokens: 8 * reqs.length, requests: reqs.length }));
`;

const cluster = await startSlurmCluster({ gpus: 4 });
if (!cluster.ok && !process.env.CI) {
  console.warn(
    `\n!!! slurm: ${cluster.reason}: SKIPPING the llem run --executor slurm tests.\n!!! Install Slurm with: apt-get install -y slurmctld slurmd slurm-client munge   (CI does it in .ci/prepare)\n`,
  );
}

let cwd: string;
let env: NodeJS.ProcessEnv;
const saved = { conf: process.env.SLURM_CONF, scenario: process.env.LLEM_FAKE_NVML_SCENARIO };

beforeAll(() => {
  cwd = mkdtempSync(join(tmpdir(), 'llem-cli-slurm-'));
  if (!cluster.ok) {
    if (process.env.CI) throw new Error(`the Slurm test cluster did not start: ${cluster.reason}`);
    return;
  }
  ensureFakeNvmlBuilt();
  const devices = POWER_W.map((w, i) =>
    h100Profile({
      uuid: `GPU-${i}0000000-0000-0000-0000-00000000abcd`,
      powerMw: w * 1000,
      instantPowerMw: w * 1000,
    }),
  );
  env = {
    ...cluster.env,
    LLEM_NVML_LIBRARY: fakeNvmlLibraryPath(),
    LLEM_FAKE_NVML_SCENARIO: writeScenario({ devices }, cwd),
    LLEM_LOG_LEVEL: 'info',
  };
  // `llem results show` asks Slurm (squeue) and NVML in this process too, with its environment.
  process.env.SLURM_CONF = cluster.conf;
  process.env.LLEM_FAKE_NVML_SCENARIO = env.LLEM_FAKE_NVML_SCENARIO;
  writeFileSync(join(cwd, 'prog.mjs'), PROGRAM);
});

afterAll(async () => {
  for (const [name, value] of [
    ['SLURM_CONF', saved.conf],
    ['LLEM_FAKE_NVML_SCENARIO', saved.scenario],
  ] as const) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  if (cluster.ok) await cluster.stop();
  rmSync(cwd, { recursive: true, force: true });
});

function study(name: string, extra = ''): string {
  const file = `${name}.yaml`;
  writeFileSync(
    join(cwd, file),
    `name: ${name}
model: m
engine: command
command: { argv: [${JSON.stringify(process.execPath)}, prog.mjs, ${name}.seen.jsonl] }
dataset: { synthetic: { n: 2, input_len: 8, output_len: 8, seed: 1 } }
max_output_tokens: 8
warmup: { n: 0 }
energy: { backend: nvml, sample_interval_ms: 50 }
sweep:
  dataset.synthetic.seed: [1, 2, 3, 4]
${extra}`,
  );
  return file;
}

describe('llem run --executor slurm: flags and settings', () => {
  it('refuses Slurm flags without --executor slurm, and bad values, naming them (exit 2)', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['run', '--partition', 'gpu'], /--partition: only with --executor slurm/],
      [['run', '--wait'], /--wait: only with --executor slurm/],
      [
        ['run', '--executor', 'slurm', '--max-parallel', '0'],
        /--max-parallel: must be a whole number ≥ 1 \(got 0\)/,
      ],
      [
        ['run', '--executor', 'slurm', '--time-limit', '1.5'],
        /--time-limit: must be a whole number ≥ 1 \(got 1.5\)/,
      ],
      [['run', '--executor', 'pbs'], /executor.*Choices: "local", "slurm"/s],
    ];
    for (const [argv, message] of cases) {
      const { code, stderr } = await runLlem(argv, { env: {}, cwd: tmpdir() });
      expect(code).toBe(2);
      expect(stderr).toMatch(message);
      expect(stderr).not.toMatch(/\n\s+at /);
    }
  });

  it('a bad execution.slurm value is a config error naming the file and the field (exit 2)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'llem-cli-slurm-conf-'));
    writeFileSync(
      join(dir, 's.yaml'),
      'model: builtin:tiny\nengine: llamacpp\nexecution:\n  slurm: { max_parallel: 0, sbatch_args: [--array=1-4] }\n',
    );
    const { code, stderr } = await runLlem(['run', 's.yaml', '--executor', 'slurm'], {
      env: {},
      cwd: dir,
    });
    rmSync(dir, { recursive: true, force: true });
    expect(code).toBe(2);
    expect(stderr).toContain('s.yaml: execution.slurm.max_parallel: must be ≥ 1 (got 0)');
    expect(stderr).toContain('s.yaml: execution.slurm.sbatch_args[0]: --array is set by llem');
  });
});

describe.skipIf(!cluster.ok && !process.env.CI)('llem run --executor slurm on a cluster', () => {
  it('submits a job array, says so (--json: studyDir, jobIds), shows it running while queued, then --wait writes the summary and report', async () => {
    const file = study('sl');
    const submitted = await runLlem(['run', file, '--executor', 'slurm', '--json', '-o', 'out'], {
      env,
      cwd,
    });
    expect(submitted.stderr).not.toMatch(/error/i);
    expect(submitted.code).toBe(0);
    const { studyDir, jobIds } = JSON.parse(submitted.stdout) as {
      studyDir: string;
      jobIds: string[];
    };
    expect(Object.keys(JSON.parse(submitted.stdout))).toEqual(['studyDir', 'jobIds']);
    expect(jobIds).toHaveLength(1);
    const [job] = jobIds;
    for (const f of ['study.json', 'cli.json', 'study.source.yaml', 'skipped.json']) {
      expect(existsSync(join(studyDir, f))).toBe(true);
    }
    expect(readFileSync(join(studyDir, 'slurm', 'submission-1.sbatch'), 'utf8')).toContain(
      'slurm-task',
    );

    // At any moment: queued or running, the study is the Slurm job's.
    const shown = await runLlem(['results', 'show', studyDir], { env, cwd });
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain(`sl (running (Slurm job ${job})`);

    // A resume while it runs submits nothing (its runs are queued or running) and, with
    // --wait, follows them to the end like a local run.
    const waited = await runLlem(['run', '--resume', studyDir, '--executor', 'slurm', '--wait'], {
      env,
      cwd,
    });
    expect(waited.code).toBe(0);
    expect(waited.stderr).toMatch(/Nothing to submit/);
    expect(waited.stderr).toMatch(new RegExp(`\\[Slurm job ${job}\\] \\d/4 completed`));
    expect(waited.stdout).toMatch(/Study completed: 4 completed, 0 failed, 0 not run, of 4/);
    expect(existsSync(join(studyDir, 'report.html'))).toBe(true);
    expect(existsSync(join(studyDir, 'summary.csv'))).toBe(true);

    const shownAfter = await runLlem(['results', 'show', studyDir], { env, cwd });
    expect(shownAfter.stdout).toContain('sl (completed;');
    const seen = readFileSync(join(cwd, 'sl.seen.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { cuda: string; job: string });
    expect(seen).toHaveLength(4);
    const manifest = JSON.parse(readFileSync(join(studyDir, 'manifest.json'), 'utf8')) as {
      entries: Array<{ key: string }>;
    };
    for (const entry of manifest.entries) {
      const result = RunResultSchema.parse(
        JSON.parse(readFileSync(join(studyDir, 'runs', `${entry.key}.json`), 'utf8')),
      );
      // Recorded: the job, the array task, the node; measured on the GPU Slurm gave the task,
      // whose CUDA_VISIBLE_DEVICES (an index) the program saw as Slurm set it.
      expect(result.slurm).toMatchObject({ arrayJobId: job, nodeName: 'llemnode' });
      const program = seen.find((s) => s.job === result.slurm?.jobId);
      const gpu = Number(program?.cuda);
      expect(result.devices).toEqual([{ index: gpu, uuid: expect.stringMatching(/^GPU-/) }]);
      const watts = (result.energy.totalJ as number) / result.window.durationS;
      expect(Math.abs(watts - (POWER_W[gpu] as number))).toBeLessThan(
        0.1 * (POWER_W[gpu] as number),
      );
      expect(result.residualCheck?.devices.map((d) => d.index)).toEqual([gpu]);
    }
  }, 180_000);

  it('sbatch refusing the job is a clear error (exit 1), and the study says nothing was submitted', async () => {
    const file = study('bad', 'execution: { slurm: { partition: nosuch } }\n');
    const { code, stderr } = await runLlem(['run', file, '--executor', 'slurm', '-o', 'out'], {
      env,
      cwd,
    });
    expect(code).toBe(1);
    expect(stderr).toMatch(
      /llem: could not submit 4 runs of .*bad_\d+T\d+Z to Slurm: sbatch exited with status 1: .*invalid partition/i,
    );
    expect(stderr).not.toMatch(/\n\s+at /);
  }, 60_000);
});
