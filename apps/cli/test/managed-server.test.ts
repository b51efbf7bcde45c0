import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RunResultSchema, WorkerErrorReportSchema } from '@llem/domain';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import {
  ensureFakeNvmlBuilt,
  fakeNvmlLibraryPath,
  h100Profile,
  writeScenario,
} from '../../../tooling/fake-nvml/src/index';
import { runLlem } from './support/llem';
import { managedTestServerArgv, noGpuEnv } from './support/servers';

// llem starts the test server program itself for each run: `server.argv` is the program, its
// flags are swept, and no server may outlive its run or llem.

const quote = (s: string) => JSON.stringify(s);

function study(
  dir: string,
  body: string,
  dataset = '{ synthetic: { n: 6, input_len: 8, output_len: 10, seed: 1 } }',
): string {
  writeFileSync(
    join(dir, 'study.yaml'),
    `name: managed
model: test-model
engine: openai
openai: { base_url: "http://127.0.0.1:{port}/v1", concurrency: 2 }
dataset: ${dataset}
max_output_tokens: 10
warmup: { n: 1 }
energy: { backend: none }
${body}`,
  );
  return dir;
}

const tempDir = () => mkdtempSync(join(tmpdir(), 'llem-managed-cli-'));

function results(cwd: string): { dir: string; runs: string } {
  const [name] = readdirSync(join(cwd, 'out'));
  const dir = join(cwd, 'out', name!);
  return { dir, runs: join(dir, 'runs') };
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function gone(pids: number[], ms: number): Promise<number[]> {
  const end = Date.now() + ms;
  while (Date.now() < end && pids.some(alive)) await new Promise((r) => setTimeout(r, 50));
  return pids.filter(alive);
}

describe('llem run with a managed server', () => {
  it('a sweep over the server’s flags gives the expected latencies; server block, log, metrics, report; no server left', async () => {
    const cwd = study(
      tempDir(),
      `server:
  argv: ${managedTestServerArgv()}
  args: { pace-ms: 5, pid-file: "server-{port}.pid" }
  cwd: .
  ready: { timeout_s: 60 }
  metrics: { interval_ms: 200 }
  stop_grace_s: 5
sweep:
  server.args.pace-ms: [5, 40]
`,
    );
    const dry = await runLlem(['run', 'study.yaml', '--dry-run'], { env: noGpuEnv, cwd });
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(
      / 1 {2}.*bin\.ts --port \{port\} --pace-ms 5 --pid-file server-\{port\}\.pid\n/,
    );
    expect(dry.stdout).toMatch(/ 2 {2}.*bin\.ts --port \{port\} --pace-ms 40 --pid-file/);

    const { code, stderr } = await runLlem(['run', 'study.yaml', '--output', 'out'], {
      env: noGpuEnv,
      cwd,
    });
    expect(stderr).toMatch(/server: ready after \d+\.\d s at http:\/\/127\.0\.0\.1:\d+\/v1/);
    expect(code).toBe(0);
    const { dir, runs } = results(cwd);
    const files = readdirSync(runs);
    const parsed = files
      .filter((f) => /_c0\.json$/.test(f))
      .map((f) => ({
        file: f,
        result: RunResultSchema.parse(JSON.parse(readFileSync(join(runs, f), 'utf8'))),
      }));
    expect(parsed).toHaveLength(2);
    const byPace = new Map(
      parsed.map((p) => [
        Number(p.result.server!.argv[p.result.server!.argv.indexOf('--pace-ms') + 1]),
        p,
      ]),
    );
    for (const pace of [5, 40]) {
      const { file, result } = byPace.get(pace)!;
      // The server paces every token on an absolute schedule: TPOT is the pace.
      const tpot = result.latency.tpotMs!.p50;
      expect(Math.abs(tpot - pace)).toBeLessThan(0.2 * pace + 2);
      const s = result.server!;
      expect(s.exit).toMatchObject({ code: 0, forced: false });
      expect(s.metrics!.file).toBe(file.replace(/\.json$/, '.metrics.jsonl'));
      expect(existsSync(join(runs, s.metrics!.file!))).toBe(true);
      expect(files).toContain(file.replace(/\.json$/, '.server.log'));
      // {port} in an args value, relative to server.cwd: the pid file names the port it ran on.
      const pid = Number(readFileSync(join(cwd, `server-${s.port}.pid`), 'utf8'));
      expect(pid).toBe(s.pid);
      expect(alive(pid)).toBe(false);
      expect(
        s.metrics!.series['vllm:generation_tokens_total{model_name="test-model"}'],
      ).toMatchObject({ delta: result.tokens.output });
    }
    expect(byPace.get(40)!.result.latency.e2eMs!.p50).toBeGreaterThan(
      byPace.get(5)!.result.latency.e2eMs!.p50,
    );
    const html = readFileSync(join(dir, 'report.html'), 'utf8');
    expect(html.match(/class="server-metrics"/g)).toHaveLength(2);
  }, 180_000);

  it('a server that crashes fails its run with type server (exit code and log tail on the console); the study goes on', async () => {
    const cwd = study(
      tempDir(),
      `server:
  argv: ${managedTestServerArgv()}
  ready: { timeout_s: 60 }
  stop_grace_s: 5
experiments:
  - { name: crashes, server: { args: { crash-after: 2, crash-exit-code: 9, pace-ms: 20 } } }
  - { name: fine, server: { args: { pace-ms: 2 } } }
execution: { order: sequential }
`,
    );
    const { code, stderr } = await runLlem(['run', 'study.yaml', '--output', 'out'], {
      env: noGpuEnv,
      cwd,
    });
    expect(code).toBe(1);
    expect(stderr).toMatch(
      /failed in .*\(server SERVER_EXITED: the server exited \(exit code 9\) while the run was going on/,
    );
    // The tail of the server's log is on the console too.
    expect(stderr).toMatch(
      /failed: server: the server exited \(exit code 9\)[\s\S]*\nllem-test-server: crashing as asked \(--crash-after 2\)\n/,
    );
    const { runs } = results(cwd);
    const errors = readdirSync(runs).filter((f) => f.endsWith('.error.json'));
    expect(errors).toHaveLength(1);
    const report = WorkerErrorReportSchema.parse(
      JSON.parse(readFileSync(join(runs, errors[0]!), 'utf8')),
    );
    expect(report.error).toMatchObject({ type: 'server', code: 'SERVER_EXITED' });
    expect(readdirSync(runs).filter((f) => /_c0\.json$/.test(f))).toHaveLength(1);
  }, 180_000);

  it('memory a server leaves on the GPU raises the residual-memory warning for the next run', async () => {
    ensureFakeNvmlBuilt();
    const cwd = tempDir();
    const memoryFile = join(cwd, 'gpu-memory');
    const scenario = writeScenario({ devices: [h100Profile({ memoryUsedFile: memoryFile })] });
    const env = {
      ...noGpuEnv,
      LLEM_NVML_LIBRARY: fakeNvmlLibraryPath(),
      LLEM_FAKE_NVML_SCENARIO: scenario,
    };
    // The runner's residual check runs in this process: the C fake reads its own environment.
    const saved = process.env.LLEM_FAKE_NVML_SCENARIO;
    process.env.LLEM_FAKE_NVML_SCENARIO = scenario;
    onTestFinished(() => {
      if (saved === undefined) delete process.env.LLEM_FAKE_NVML_SCENARIO;
      else process.env.LLEM_FAKE_NVML_SCENARIO = saved;
    });
    study(
      cwd,
      `server:
  argv: ${managedTestServerArgv()}
  args: { fake-gpu-memory-file: ${quote(memoryFile)}, fake-gpu-memory-mib: 4096 }
  ready: { timeout_s: 60 }
  stop_grace_s: 5
experiments:
  - { name: leaks, server: { args: { leak-fake-gpu-memory: true } } }
  - { name: clean }
execution: { order: sequential }
`,
    );
    const { code } = await runLlem(['run', 'study.yaml', '--output', 'out'], { env, cwd });
    expect(code).toBe(0);
    const { runs } = results(cwd);
    const byName = new Map(
      readdirSync(runs)
        .filter((f) => /_c0\.json$/.test(f))
        .map((f) => RunResultSchema.parse(JSON.parse(readFileSync(join(runs, f), 'utf8'))))
        .map((r) => [(r.config as { name: string }).name, r]),
    );
    const leaks = byName.get('leaks')!;
    const clean = byName.get('clean')!;
    expect(leaks.warnings.map((w) => w.code)).toContain('server-memory-left');
    expect(leaks.residualCheck?.status, JSON.stringify(leaks.residualCheck)).toBe('ok');
    // The next run's pre-dispatch check sees what the first server left.
    expect(clean.residualCheck?.status).toBe('exceeded');
    expect(clean.residualCheck?.devices[0]?.usedMb).toBe(4097);
    expect(clean.warnings.map((w) => w.code)).toContain('residual-memory');
    expect(clean.warnings.map((w) => w.code)).not.toContain('server-memory-left');
  }, 180_000);
});

describe('no server outlives llem', () => {
  const bin = fileURLToPath(new URL('../src/bin.ts', import.meta.url));
  const tsx = createRequire(import.meta.url).resolve('tsx');
  let llem: ChildProcess | undefined;
  afterEach(() => {
    llem?.kill('SIGKILL');
  });

  /** `llem run` as a real process with a slow server; resolves once the server listens. */
  async function startSlowStudy(): Promise<{
    llem: ChildProcess;
    exit: Promise<number | null>;
    serverPid: number;
  }> {
    const cwd = tempDir();
    const pidFile = join(cwd, 'server.pid');
    study(
      cwd,
      `server:
  argv: ${managedTestServerArgv()}
  args: { pace-ms: 200, pid-file: ${quote(pidFile)} }
  ready: { timeout_s: 60 }
  stop_grace_s: 5
`,
      '{ synthetic: { n: 40, input_len: 8, output_len: 10, seed: 1 } }',
    );
    llem = spawn(
      process.execPath,
      [
        '--import',
        tsx,
        '--conditions',
        '@llem/source',
        bin,
        'run',
        'study.yaml',
        '--output',
        'out',
      ],
      { cwd, env: noGpuEnv, stdio: 'ignore' },
    );
    const child = llem;
    const exit = new Promise<number | null>((r) =>
      child.once('exit', (code, signal) => r(code ?? (signal ? -1 : null))),
    );
    let exited = false;
    void exit.then(() => {
      exited = true;
    });
    const end = Date.now() + 90_000;
    while (!existsSync(pidFile) && !exited && Date.now() < end)
      await new Promise((r) => setTimeout(r, 100));
    expect(existsSync(pidFile), 'the server started').toBe(true);
    const serverPid = Number(readFileSync(pidFile, 'utf8'));
    expect(alive(serverPid)).toBe(true);
    // Let the measured requests begin.
    await new Promise((r) => setTimeout(r, 1500));
    return { llem: child, exit, serverPid };
  }

  it('Ctrl-C: llem exits 130 and the server is gone (checked by PID)', async () => {
    const { llem: child, exit, serverPid } = await startSlowStudy();
    child.kill('SIGINT');
    expect(await exit).toBe(130);
    expect(await gone([serverPid], 10_000)).toEqual([]);
  }, 180_000);

  it('SIGKILL of the runner: the server is gone (checked by PID)', async () => {
    const { llem: child, exit, serverPid } = await startSlowStudy();
    child.kill('SIGKILL');
    await exit;
    expect(await gone([serverPid], 10_000)).toEqual([]);
  }, 180_000);
});
