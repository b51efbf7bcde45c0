import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RunResultSchema } from '@llem/domain';
import { describe, expect, it } from 'vitest';
import { runLlem } from './support/llem';

// No GPU here whatever the machine: point NVML at a library that does not exist.
const env = {
  ...process.env,
  LLEM_NVML_LIBRARY: '/nonexistent/libnvidia-ml.so.1',
  LLEM_LOG_LEVEL: 'info',
};
function llem(argv: string[], cwd: string) {
  return runLlem(argv, { env, cwd });
}

/** A program that loads for `loadMs`, marks a window of `workMs` and reports its tokens. */
const PROGRAM = `import { readFileSync } from 'node:fs';
const cfg = JSON.parse(readFileSync(process.env.LLEM_CONFIG_FILE, 'utf8'));
const reqs = readFileSync(process.env.LLEM_REQUESTS_FILE, 'utf8').trim().split('\\n').map((l) => JSON.parse(l));
const [loadMs, workMs] = process.argv.slice(2).map(Number);
console.log('loading ' + cfg.model);
await new Promise((r) => setTimeout(r, loadMs));
console.log(JSON.stringify({ llem: 'start' }));
await new Promise((r) => setTimeout(r, workMs));
console.log(JSON.stringify({ llem: 'stop' }));
console.log(JSON.stringify({ input_tokens: 10 * reqs.length, output_tokens: reqs.reduce((a, r) => a + r.max_output_tokens, 0), requests: reqs.length,
  latencies: reqs.map((_, i) => ({ start_ms: i, ttft_ms: 20, itl_ms: [4, 6], e2e_ms: 40 })) }));
`;

function studyDirWith(program: string, study: (prog: string) => string): string {
  const dir = mkdtempSync(join(tmpdir(), 'llem-run-cli-'));
  writeFileSync(join(dir, 'prog.mjs'), program);
  writeFileSync(join(dir, 'study.yaml'), study('prog.mjs'));
  return dir;
}
const commandStudy =
  (loadMs: number, workMs: number, cycles: number, name = 'cmd') =>
  (prog: string) =>
    `name: ${name}
model: my-model
engine: command
command: { argv: [${JSON.stringify(process.execPath)}, ${prog}, "${loadMs}", "${workMs}"] }
dataset: { synthetic: { n: 4, input_len: 8, output_len: 16, seed: 1 } }
max_output_tokens: 16
warmup: { n: 0 }
energy: { backend: auto, sample_interval_ms: 50 }
execution: { cycles: ${cycles}, order: sequential, experiment_gap_s: 0, cycle_gap_s: 0 }
`;

describe('llem run with a command study', () => {
  it('measures the marked window, writes results and timeseries, and says what was not measurable', async () => {
    const cwd = studyDirWith(PROGRAM, commandStudy(400, 600, 2));
    const { code, stdout, stderr } = await llem(
      ['run', 'study.yaml', '--json', '--output', 'out'],
      cwd,
    );
    // No progress lines on a non-TTY with --json; the logger's one info line names the report.
    expect(stderr).toMatch(/^report: \S+report\.html\n$/);
    expect(code).toBe(0);
    const summary = JSON.parse(stdout);
    expect(summary.status).toBe('completed');
    expect(summary.counts).toMatchObject({ total: 2, completed: 2, failed: 0 });
    expect(summary.studyDir.startsWith(join(cwd, 'out', 'cmd_'))).toBe(true);
    expect(summary.notMeasurable).toEqual(
      expect.arrayContaining([
        {
          figure: 'energy (J, J/token)',
          reason: expect.stringMatching(/NVML is not available: .*nonexistent/),
        },
        { figure: 'peak GPU memory', reason: 'no GPU visible through NVML' },
      ]),
    );
    const runsDir = join(summary.studyDir, 'runs');
    for (const run of summary.runs) {
      const result = RunResultSchema.parse(
        JSON.parse(readFileSync(join(runsDir, `${run.key}.json`), 'utf8')),
      );
      // The window is the marked 600 ms, not the 400 ms load before it.
      expect(result.window.durationS).toBeGreaterThan(0.55);
      expect(result.window.durationS).toBeLessThan(0.95);
      expect(result.tokens).toEqual({ input: 40, output: 64, source: 'program-report' });
      expect(result.throughput.outputTokensPerS).toBeCloseTo(64 / result.window.durationS, 6);
      // Reported latencies are anchored at the window start (absolute ms) and differenced back,
      // so they match to float precision, not bit for bit.
      expect(result.latency.ttftMs?.p50).toBeCloseTo(20, 9);
      expect(result.latency.itlMs?.mean).toBeCloseTo(5, 9);
      expect(result.latency.itlMs?.p50).toBeCloseTo(5, 9);
      expect(result.energy).toMatchObject({
        totalJ: null,
        method: expect.stringMatching(/none|rapl/),
      });
      expect(result.energyPerOutputTokenJ === null || result.energy.method === 'rapl').toBe(true);
      expect(result.residualCheck?.status).toBe('skipped');
      expect(result.memory.rssPeakMiB).toBeNull(); // the program's memory is not the worker's
      expect(readFileSync(join(runsDir, `${run.key}.timeseries.csv`), 'utf8')).toMatch(
        /^window,t_ms,device,power_w/,
      );
    }
    expect(existsSync(join(summary.studyDir, 'llem.log'))).toBe(true);
  });

  it('prints a human summary on stdout and progress on stderr without --json', async () => {
    const cwd = studyDirWith(PROGRAM, commandStudy(0, 200, 1, 'human'));
    const { code, stdout, stderr } = await llem(['run', 'study.yaml', '--output', 'out'], cwd);
    expect(code).toBe(0);
    expect(stderr).toMatch(/Running human: 1 of 1 runs to do/);
    expect(stderr).toMatch(/\[1\/1 done\] completed in/);
    expect(stdout).toMatch(/Study completed: 1 completed, 0 failed/);
    expect(stdout).toMatch(/config\s+cycle\s+status\s+tok\/s\s+energy J\s+J\/token/);
    expect(stdout).toMatch(/Not measurable on this machine:\n {2}energy \(J, J\/token\): /);
    // A 200 ms window: the quality warning reaches the terminal, not only the result file.
    expect(stdout).toMatch(
      /Measurement warnings \(details in each result and report\.html\): .*run-too-short \(1 run\)/,
    );
  });

  it('a failing program fails its run (with the stderr tail), not the study; exit 1', async () => {
    const cwd = studyDirWith(
      `console.error('CUDA error: out of memory'); process.exit(4);`,
      commandStudy(0, 0, 1, 'boom'),
    );
    const { code, stdout } = await llem(['run', 'study.yaml', '--json', '--output', 'out'], cwd);
    expect(code).toBe(1);
    const summary = JSON.parse(stdout);
    expect(summary.status).toBe('completed');
    expect(summary.runs[0]).toMatchObject({
      status: 'failed',
      error: {
        type: 'engine',
        code: 'COMMAND_EXIT',
        message: expect.stringMatching(/exited with code 4[\s\S]*CUDA error: out of memory/),
      },
    });
    // The human summary shows the stderr tail under the failed run, not only the first line.
    const human = await llem(['run', 'study.yaml', '--output', 'out'], cwd);
    expect(human.stdout).toMatch(
      /Failed runs:\n {2}my-model \(cycle 1\): engine \(COMMAND_EXIT\): command .* exited with code 4\n {6}--- stderr \(tail\) ---\n {6}CUDA error: out of memory\n/,
    );
  });

  it('missing model or dataset files: exit 2 before any study directory, naming fields and paths', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'llem-run-cli-'));
    writeFileSync(
      join(cwd, 'study.yaml'),
      `name: missing
model: ./nope.gguf
engine: llamacpp
dataset: prompts.jsonl
max_output_tokens: 8
sweep: { llamacpp.batch_size: [64, 128] }
`,
    );
    const { code, stdout, stderr } = await llem(['run', 'study.yaml', '--output', 'out'], cwd);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toContain(
      `llem: study.yaml: input files not found (relative paths resolve from the study file's folder, ${cwd}):`,
    );
    expect(stderr).toContain(
      `  model: ./nope.gguf does not exist (looked for ${join(cwd, 'nope.gguf')}) [every config]`,
    );
    expect(stderr).toContain(
      `  dataset: prompts.jsonl does not exist (looked for ${join(cwd, 'prompts.jsonl')})`,
    );
    expect(stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(join(cwd, 'out'))).toBe(false);
  });

  it('warns about skipped configs when the study starts, not only in the report', async () => {
    const cwd = studyDirWith(PROGRAM, (prog) =>
      commandStudy(
        0,
        50,
        1,
        'skips',
      )(prog).replace(
        'max_output_tokens: 16',
        'max_output_tokens: 16\nsweep: { max_output_tokens: [16, -1] }',
      ),
    );
    const { code, stderr } = await llem(['run', 'study.yaml', '--json', '--output', 'out'], cwd);
    expect(code).toBe(0);
    expect(stderr).toMatch(/warn: skipped config max_output_tokens=-1: .*max_output_tokens/);
  });

  it('first Ctrl-C stops after the current run, says how to resume, exits 130; --resume finishes without re-running', async () => {
    const cwd = studyDirWith(PROGRAM, commandStudy(0, 800, 3, 'sigint'));
    const interrupting = llem(['run', 'study.yaml', '--output', 'out'], cwd);
    // Ctrl-C once the first run is under way.
    const out = join(cwd, 'out');
    const deadline = Date.now() + 30_000;
    for (;;) {
      const dirs = existsSync(out) ? readdirSync(out) : [];
      const manifest = dirs[0] ? join(out, dirs[0], 'manifest.json') : null;
      if (manifest && existsSync(manifest) && readFileSync(manifest, 'utf8').includes('"running"'))
        break;
      if (Date.now() > deadline) throw new Error('the study never started');
      await new Promise((r) => setTimeout(r, 50));
    }
    process.emit('SIGINT');
    const first = await interrupting;
    expect(first.code).toBe(130);
    expect(first.stderr).toMatch(
      /Stopping: the running run\(s\) end cleanly and run again on resume/,
    );
    const resumeHint = /Resume with: llem run --resume (\S+)/.exec(first.stderr);
    expect(resumeHint).not.toBeNull();
    const studyDir = join(cwd, resumeHint?.[1] ?? '');
    const manifest = JSON.parse(readFileSync(join(studyDir, 'manifest.json'), 'utf8'));
    expect(manifest.status).toBe('interrupted');
    const doneBefore = manifest.entries.filter((e: { status: string }) => e.status === 'completed');
    const mtimes = doneBefore.map((e: { resultFile: string }) =>
      readFileSync(join(studyDir, e.resultFile), 'utf8'),
    );

    const resumed = await llem(['run', '--resume', resumeHint?.[1] ?? '', '--json'], cwd);
    expect(resumed.code).toBe(0);
    const summary = JSON.parse(resumed.stdout);
    expect(summary).toMatchObject({
      status: 'completed',
      studyDir,
      counts: { total: 3, completed: 3 },
    });
    // What was completed before the Ctrl-C was not measured again.
    doneBefore.forEach((e: { resultFile: string }, i: number) => {
      expect(readFileSync(join(studyDir, e.resultFile), 'utf8')).toBe(mtimes[i]);
    });
  });

  it('a second Ctrl-C kills the current run at once', async () => {
    const cwd = studyDirWith(PROGRAM, commandStudy(0, 60_000, 1, 'sigkill'));
    const t0 = Date.now();
    const running = llem(['run', 'study.yaml', '--output', 'out'], cwd);
    const out = join(cwd, 'out');
    for (;;) {
      const dirs = existsSync(out) ? readdirSync(out) : [];
      const runs = dirs[0] ? join(out, dirs[0], 'runs') : null;
      // The program is up once the worker has logged its run line.
      if (
        runs &&
        existsSync(runs) &&
        readdirSync(runs).some(
          (f) => f.endsWith('.log') && readFileSync(join(runs, f), 'utf8').includes('info: run'),
        )
      )
        break;
      if (Date.now() - t0 > 30_000) throw new Error('the run never started');
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 500));
    process.emit('SIGINT');
    process.emit('SIGINT');
    const { code, stderr } = await running;
    expect(code).toBe(130);
    expect(stderr).toMatch(/Killing the running run\(s\) now/);
    // Nowhere near the program's 60 s window.
    expect(Date.now() - t0).toBeLessThan(30_000);
  });

  it('refuses to resume with a changed study unless --force', async () => {
    const cwd = studyDirWith(PROGRAM, commandStudy(0, 100, 1, 'changed'));
    const first = await llem(['run', 'study.yaml', '--json', '--output', 'out'], cwd);
    const { studyDir } = JSON.parse(first.stdout);
    writeFileSync(
      join(cwd, 'study.yaml'),
      commandStudy(0, 100, 1, 'changed')('prog.mjs').replace('n: 4', 'n: 5'),
    );
    const refused = await llem(['run', 'study.yaml', '--resume', studyDir], cwd);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/llem: .*design/i);
    expect(refused.stderr).not.toMatch(/\n\s+at /);
    const forced = await llem(
      ['run', 'study.yaml', '--resume', studyDir, '--force', '--json'],
      cwd,
    );
    expect(forced.code).toBe(0);
  });

  it('a model file replaced before a resume: the resumed run records the new bytes and llem warns', async () => {
    const cwd = studyDirWith(PROGRAM, (prog) =>
      commandStudy(0, 100, 2, 'swap')(prog).replace('model: my-model', 'model: weights.bin'),
    );
    writeFileSync(join(cwd, 'weights.bin'), 'v1');
    const first = await llem(['run', 'study.yaml', '--json', '--output', 'out'], cwd);
    expect(first.stderr).not.toMatch(/different model files/);
    const { studyDir, runs } = JSON.parse(first.stdout);
    // Cycle 2 failed (as if it had crashed), and the weights were re-downloaded meanwhile.
    const manifestFile = join(studyDir, 'manifest.json');
    const manifest = JSON.parse(readFileSync(manifestFile, 'utf8'));
    const last = manifest.entries[1];
    Object.assign(last, {
      status: 'failed',
      resultFile: null,
      error: { type: 'crash', message: 'x' },
    });
    writeFileSync(manifestFile, JSON.stringify(manifest));
    rmSync(join(studyDir, 'runs', `${runs[1].key}.json`));
    writeFileSync(join(cwd, 'weights.bin'), 'v2, a different file');
    const resumed = await llem(['run', '--resume', studyDir], cwd);
    expect(resumed.code).toBe(0);
    expect(resumed.stderr).toMatch(
      /warn: config weights\.bin \([0-9a-f]{16}\): its runs read 2 different model files: sha256 [0-9a-f]{12}… \(\S+weights\.bin, 2 bytes; run \S+_c0\); sha256 [0-9a-f]{12}… \(\S+weights\.bin, 20 bytes; run \S+_c1\)/,
    );
  });

  it('user mistakes exit 2 with a clear message and no stack', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'llem-run-cli-'));
    const missing = await llem(['run', 'nope.yaml'], cwd);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/nope\.yaml: \(root\): no such file/);
    const force = await llem(['run', '--force'], cwd);
    expect(force.code).toBe(2);
    expect(force.stderr).toMatch(/--force only applies with --resume/);
    // An empty --resume (e.g. an unset shell variable) is an error, not a new study.
    const empty = await llem(['run', '--resume', '', 'nope.yaml'], cwd);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toMatch(/--resume needs the study directory/);
    const noStudy = await llem(['run', '--resume', cwd], cwd);
    expect(noStudy.code).toBe(2);
    expect(noStudy.stderr).toMatch(/no study\.json or manifest\.json there/);
  });

  it('--dry-run prints the quickstart plan without running anything', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'llem-run-cli-'));
    const { code, stdout } = await llem(['run', '--dry-run'], cwd);
    expect(code).toBe(0);
    expect(stdout).toMatch(/builtin:quickstart: study quickstart/);
    expect(stdout).toMatch(/4 configs × 2 cycles = 8 runs, order interleaved/);
    expect(existsSync(join(cwd, 'results'))).toBe(false);
  });
});
