import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runLlem } from './support/llem';

// The study directory as a user meets it: a resume that checks what it finds, and a status that
// tells the truth after a runner died or while another one works on the study.
const env = {
  ...process.env,
  LLEM_NVML_LIBRARY: '/nonexistent/libnvidia-ml.so.1',
  LLEM_LOG_LEVEL: 'info',
};

const PROGRAM = `import { readFileSync } from 'node:fs';
const reqs = readFileSync(process.env.LLEM_REQUESTS_FILE, 'utf8').trim().split('\\n');
console.log(JSON.stringify({ llem: 'start' }));
await new Promise((r) => setTimeout(r, 150));
console.log(JSON.stringify({ llem: 'stop' }));
console.log(JSON.stringify({ input_tokens: 8 * reqs.length, output_tokens: 8 * reqs.length, requests: reqs.length }));
`;

async function finishedStudy(
  cycles: number,
): Promise<{ cwd: string; studyDir: string; keys: string[] }> {
  const cwd = mkdtempSync(join(tmpdir(), 'llem-study-dir-'));
  writeFileSync(join(cwd, 'prog.mjs'), PROGRAM);
  writeFileSync(
    join(cwd, 'study.yaml'),
    `name: verify
model: m
engine: command
command: { argv: [${JSON.stringify(process.execPath)}, prog.mjs] }
dataset: { synthetic: { n: 2, input_len: 8, output_len: 8, seed: 1 } }
max_output_tokens: 8
warmup: { n: 0 }
execution: { cycles: ${cycles}, experiment_gap_s: 0, cycle_gap_s: 0 }
`,
  );
  const { code, stdout } = await runLlem(['run', 'study.yaml', '--json', '-o', 'out'], {
    env,
    cwd,
  });
  expect(code).toBe(0);
  const summary = JSON.parse(stdout) as { studyDir: string; runs: Array<{ key: string }> };
  return { cwd, studyDir: summary.studyDir, keys: summary.runs.map((r) => r.key) };
}

function writeRecord(studyDir: string, key: string, change: object): void {
  const file = join(studyDir, 'runs', `${key}.record.json`);
  writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), ...change }));
}

function writeClaim(studyDir: string, key: string, owner: object): string {
  const files = readdirSync(join(studyDir, 'runs')).filter((f) => f.startsWith(`${key}.claim-`));
  const generation = files.length + 1;
  const file = join(studyDir, 'runs', `${key}.claim-${generation}`);
  writeFileSync(
    file,
    JSON.stringify({
      schemaVersion: 1,
      key,
      generation,
      owner,
      claimedAt: new Date().toISOString(),
      releasedAt: null,
    }),
  );
  return file;
}

describe('the study directory, as a user meets it', () => {
  it('llem run --resume re-runs exactly the runs whose result is deleted, truncated or schema-invalid, saying which and why', async () => {
    const { cwd, studyDir, keys } = await finishedStudy(4);
    const [deleted, truncated, invalid, intact] = keys as [string, string, string, string];
    const runs = join(studyDir, 'runs');
    const intactBefore = readFileSync(join(runs, `${intact}.json`), 'utf8');
    rmSync(join(runs, `${deleted}.json`));
    const full = readFileSync(join(runs, `${truncated}.json`), 'utf8');
    writeFileSync(join(runs, `${truncated}.json`), full.slice(0, full.length / 2));
    const bad = JSON.parse(readFileSync(join(runs, `${invalid}.json`), 'utf8'));
    bad.energy.totalJ = 'lots';
    writeFileSync(join(runs, `${invalid}.json`), JSON.stringify(bad));
    rmSync(join(studyDir, 'manifest.json'));

    const { code, stdout, stderr } = await runLlem(['run', '--resume', studyDir, '--json'], {
      env,
      cwd,
    });
    expect(code).toBe(0);
    expect(stderr).toMatch(/manifest\.json is missing: rebuilt from the run records/);
    expect(stderr).toMatch(
      new RegExp(`re-running ${deleted} .*: its result runs/${deleted}\\.json is missing`),
    );
    expect(stderr).toMatch(new RegExp(`re-running ${truncated} .*is not valid JSON`));
    expect(stderr).toMatch(
      new RegExp(
        `re-running ${invalid} .*does not match the result schema \\(energy\\.totalJ: .*\\); the file is kept as runs/${invalid}\\.json\\.damaged-`,
      ),
    );
    expect(stderr.match(/re-running/g)).toHaveLength(3);
    const summary = JSON.parse(stdout) as {
      counts: { completed: number };
      runs: Array<{ key: string }>;
    };
    expect(summary.counts.completed).toBe(4);
    const records = keys.map((k) =>
      JSON.parse(readFileSync(join(runs, `${k}.record.json`), 'utf8')),
    );
    expect(records.map((r) => r.attempts)).toEqual([2, 2, 2, 1]);
    // Nothing else re-run, nothing measured lost.
    expect(readFileSync(join(runs, `${intact}.json`), 'utf8')).toBe(intactBefore);
    expect(readdirSync(runs).filter((f) => f.includes('.damaged-'))).toHaveLength(2);
  }, 120_000);

  it('resumes a study whose study.json was lost from the copy of the study file kept beside it', async () => {
    const { cwd, studyDir, keys } = await finishedStudy(2);
    rmSync(join(studyDir, 'study.json'));
    rmSync(join(studyDir, 'runs', `${keys[1]}.json`));
    // From another directory: paths still resolve where the study started (cli.json).
    const elsewhere = mkdtempSync(join(tmpdir(), 'llem-elsewhere-'));
    const { code, stdout, stderr } = await runLlem(['run', '--resume', studyDir, '--json'], {
      env,
      cwd: elsewhere,
    });
    expect(stderr).toMatch(/study\.json cannot be read: resuming with .*study\.source\.yaml/);
    expect(code).toBe(0);
    expect(JSON.parse(stdout).counts).toMatchObject({ completed: 2, failed: 0 });
    expect(readdirSync(cwd)).toContain('prog.mjs');
    // --output means where new studies go: with --resume it is a mistake, said plainly.
    const both = await runLlem(['run', '--resume', studyDir, '-o', 'x'], { env, cwd });
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(
      /--output names where new studies go; a resumed study stays where it is/,
    );
  }, 120_000);

  it('results list/show say interrupted when the runner died, and who runs it while someone does', async () => {
    const { cwd, studyDir, keys } = await finishedStudy(2);
    const key = keys[1] as string;
    rmSync(join(studyDir, 'runs', `${key}.json`));
    writeRecord(studyDir, key, { status: 'running', resultFile: null });
    // The runner was SIGKILLed: its claim names a pid that is gone.
    const dead = Number(
      spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout,
    );
    const deadClaim = writeClaim(studyDir, key, { host: hostname(), pid: dead, runnerId: 'dead' });
    const show = await runLlem(['results', 'show', studyDir], { env, cwd });
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(
      /^verify \(interrupted; design [0-9a-f]{16}\): 1 completed, 0 failed, 1 not run/,
    );
    const list = await runLlem(['results', 'list', 'out', '--json'], { env, cwd });
    expect(JSON.parse(list.stdout).studies[0]).toMatchObject({
      status: 'interrupted',
      statusText: 'interrupted',
    });

    // A Slurm task on another node holds it now (fresh heartbeat).
    rmSync(deadClaim);
    const slurmClaim = writeClaim(studyDir, key, {
      host: 'gpu-node-7',
      pid: 4242,
      runnerId: 'slurm-task',
      slurm: { jobId: '812', arrayJobId: '800', arrayTaskId: '1', nodeName: 'gpu-node-7' },
    });
    const running = await runLlem(['results', 'show', studyDir], { env, cwd });
    expect(running.stdout).toMatch(
      /^verify \(running \(Slurm job 800\); design [0-9a-f]{16}\): 1 completed, 0 failed, 1 running, 0 not run/,
    );
    const listed = await runLlem(['results', 'list', 'out'], { env, cwd });
    expect(listed.stdout).toMatch(/verify\s+running \(Slurm job 800\)/);
    // Once its heartbeat is old, the owner is presumed gone.
    const old = new Date(Date.now() - 3_600_000);
    utimesSync(slurmClaim, old, old);
    const stale = await runLlem(['results', 'show', studyDir, '--json'], { env, cwd });
    expect(JSON.parse(stale.stdout).study).toMatchObject({ status: 'interrupted' });
  }, 120_000);
});
