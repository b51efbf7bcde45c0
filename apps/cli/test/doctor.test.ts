import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseExperimentConfig } from '@llem/domain';
import type { ClientLimit } from '@llem/engines';
import { startTestServer } from '@llem/test-server';
import { beforeAll, describe, expect, it } from 'vitest';
// The fake NVML is test tooling, not a CLI dependency; reach it by path.
import {
  ensureFakeNvmlBuilt,
  fakeNvmlLibraryPath,
  h100Profile,
  writeScenario,
} from '../../../tooling/fake-nvml/src/index';
import {
  clientLimitCheck,
  llamaBinaryPackages,
  managedServerChecks,
  runDoctorChecks,
} from '../src/commands/doctor';
import { runLlem } from './support/llem';

function run(argv: string[], env: NodeJS.ProcessEnv, cwd: string) {
  return runLlem(argv, { env, cwd });
}

const MiB = 1024 * 1024;

/** A powercap tree like /sys/class/powercap with one readable package domain. */
function fakePowercap(readable: boolean): string {
  const root = mkdtempSync(join(tmpdir(), 'llem-powercap-'));
  const pkg = join(root, 'intel-rapl:0');
  mkdirSync(pkg);
  writeFileSync(join(pkg, 'name'), 'package-0\n');
  writeFileSync(join(pkg, 'max_energy_range_uj'), '262143328850\n');
  if (readable) writeFileSync(join(pkg, 'energy_uj'), '123456789\n');
  return root;
}

beforeAll(() => {
  ensureFakeNvmlBuilt();
});

describe('llem doctor without a GPU', () => {
  it('marks NVML ✗ with a hint, says CPU studies are fine, and exits 0', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'llem-doctor-'));
    const { code, stdout, stderr } = await run(
      [
        'doctor',
        '--library',
        '/nonexistent/libnvidia-ml.so.1',
        '--powercap-root',
        fakePowercap(true),
      ],
      {},
      cwd,
    );
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^✓ Node\.js version: Node v\d+\.\d+\.\d+$/m);
    expect(stdout).toMatch(/^✗ NVML loadable: .+$/m);
    expect(stdout).toMatch(/^ {4}→ No NVIDIA driver found: .*Not a problem for CPU studies/m);
    expect(stdout).toMatch(/^✓ llama\.cpp binaries \(CPU\): @node-llama-cpp\/\S+ installed$/m);
    expect(stdout).toMatch(/^✓ RAPL \(CPU energy\): 1 CPU package domain readable$/m);
    expect(stdout).toMatch(/^✓ Output directory writable: .*results$/m);
    expect(stdout).toContain(
      'Ready for CPU studies (no GPU: GPU energy and memory will be reported as not measured).',
    );
  });

  it('flags unreadable RAPL with the chmod hint (not blocking)', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'llem-doctor-'));
    const { code, stdout } = await run(
      ['doctor', '--library', '/nonexistent/lib.so', '--powercap-root', fakePowercap(false)],
      {},
      cwd,
    );
    expect(code).toBe(0);
    expect(stdout).toMatch(/^✗ RAPL \(CPU energy\): RAPL: .*energy_uj is not readable/m);
    expect(stdout).toMatch(
      /→ CPU energy will be reported as not measured\. On Linux: sudo chmod a\+r/,
    );
  });

  it('exits 1 when the output directory cannot be written (a blocking failure)', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'llem-doctor-'));
    const file = join(cwd, 'a-file');
    writeFileSync(file, 'x');
    const { code, stdout } = await run(
      ['doctor', '--library', '/nonexistent/lib.so', '--output', join(file, 'results')],
      {},
      cwd,
    );
    expect(code).toBe(1);
    expect(stdout).toMatch(/^✗ Output directory writable: .*a-file\/results: (ENOTDIR|EEXIST)/m);
    expect(stdout).toContain('1 blocking problem: fix Output directory writable first.');
  });
});

describe('llem doctor with the fake NVML', () => {
  it('reports devices, persistence mode off and residual memory with hints', async () => {
    process.env.LLEM_FAKE_NVML_SCENARIO = writeScenario({
      driverVersion: '550.54.15',
      nvmlVersion: '12.550.54.15',
      cudaDriverVersion: 12040,
      devices: [
        h100Profile({ persistenceMode: false, memoryUsedBytes: 2048 * MiB }),
        h100Profile({ memoryUsedBytes: 10 * MiB }),
      ],
    });
    const cwd = mkdtempSync(join(tmpdir(), 'llem-doctor-'));
    const { code, stdout } = await run(
      ['doctor', '--json', '--powercap-root', fakePowercap(true)],
      { LLEM_NVML_LIBRARY: fakeNvmlLibraryPath() },
      cwd,
    );
    expect(code).toBe(0);
    const report = JSON.parse(stdout) as {
      ok: boolean;
      checks: { name: string; ok: boolean; detail: string; hint: string | null }[];
    };
    expect(report.ok).toBe(true);
    const byName = Object.fromEntries(report.checks.map((c) => [c.name, c]));
    expect(byName['NVML loadable']).toMatchObject({
      ok: true,
      detail: 'driver 550.54.15, CUDA 12.4',
    });
    expect(byName['GPU devices']!.detail).toMatch(/^#0 .+; #1 .+$/);
    expect(byName['Persistence mode']).toMatchObject({ ok: false, detail: 'off on #0' });
    expect(byName['Persistence mode']!.hint).toContain('nvidia-smi -pm 1');
    expect(byName['Residual GPU memory']).toMatchObject({
      ok: false,
      detail: '#0: 2048 MiB in use (threshold 100 MiB)',
    });
  });
});

describe('llem doctor STUDY: each openai server the study uses', () => {
  it('✓ for a server that answers and serves the model, ✗ with the cause and a hint otherwise (exit 1)', async () => {
    const good = await startTestServer({ models: ['served'], lifetimeMs: 30_000 });
    const strict = await startTestServer({
      models: ['served'],
      strictModel: true,
      lifetimeMs: 30_000,
    });
    const gone = await startTestServer();
    await gone.close();
    try {
      const cwd = mkdtempSync(join(tmpdir(), 'llem-doctor-'));
      writeFileSync(
        join(cwd, 'study.yaml'),
        [
          'name: servers',
          'engine: openai',
          'model: served',
          `openai: { base_url: "${good.baseUrl}" }`,
          'sweep:',
          '  openai.concurrency: [1, 4]',
          'experiments:',
          '  - {}',
          `  - { openai: { base_url: "${strict.baseUrl}", model: typo } }`,
          `  - { openai: { base_url: "${gone.baseUrl}" } }`,
        ].join('\n'),
      );
      const { code, stdout } = await run(
        [
          'doctor',
          'study.yaml',
          '--server-timeout-s',
          '1',
          '--library',
          '/nonexistent/libnvidia-ml.so.1',
          '--powercap-root',
          fakePowercap(true),
        ],
        {},
        cwd,
      );
      expect(code).toBe(1);
      // Two concurrencies against the same server and model are one check.
      expect(
        stdout.match(new RegExp(`openai server ${good.baseUrl.replace(/\./g, '\\.')}:`, 'g')),
      ).toHaveLength(1);
      expect(stdout).toMatch(
        new RegExp(
          `^✓ openai server ${good.baseUrl.replace(/\./g, '\\.')}: answers in \\d+\\.\\d s; model served listed$`,
          'm',
        ),
      );
      expect(stdout).toMatch(
        /^✗ openai server .*: MODEL_NOT_FOUND: .*answered HTTP 404 for model typo/m,
      );
      expect(stdout).toMatch(/→ Set model \(or openai\.model\) to a name the server serves/);
      expect(stdout).toMatch(
        new RegExp(
          `^✗ openai server ${gone.baseUrl.replace(/\./g, '\\.')}: UNREACHABLE: was not ready after .*connection refused \\(ECONNREFUSED`,
          'm',
        ),
      );
      expect(stdout).toMatch(/2 blocking problems: fix openai server .*, openai server .* first\./);
    } finally {
      await good.close();
      await strict.close();
    }
  });

  it('a study file that is not valid exits 2 naming the file, before checking anything', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'llem-doctor-'));
    writeFileSync(
      join(cwd, 'bad.yaml'),
      'name: x\nengine: openai\nmodel: m\nopenai: { base_url: ftp://x }\n',
    );
    const { code, stderr, stdout } = await run(['doctor', 'bad.yaml'], {}, cwd);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/bad\.yaml.*openai\.base_url/s);
    expect(stderr).not.toMatch(/\n\s+at /);
  });
});

describe('llem doctor --client-limit', () => {
  it('measures the rate the openai client keeps against its built-in server, as a non-blocking check', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'llem-doctor-'));
    const { code, stdout } = await run(
      [
        'doctor',
        '--json',
        '--library',
        '/nonexistent/lib.so',
        '--client-limit',
        '--client-limit-rates',
        '100,200',
      ],
      {},
      cwd,
    );
    expect(code).toBe(0);
    const out = JSON.parse(stdout) as {
      checks: { name: string; ok: boolean; blocking: boolean; detail: string }[];
      clientLimit: ClientLimit;
    };
    // The rates asked for, in order, each measured by the engine against the built-in server.
    const { steps } = out.clientLimit;
    expect(steps.map((s) => s.targetRate)).toEqual([100, 200]);
    for (const step of steps) {
      // 0.6 s of schedule per rate.
      expect(step.dispatch).toMatchObject({
        targetRate: step.targetRate,
        sent: (60 * step.targetRate) / 100,
      });
      expect(step.dispatch.connections.opened).toBeGreaterThan(0);
    }
    const check = out.checks.find((c) => c.name === 'openai client limit')!;
    expect(check.blocking).toBe(false);
    // 100–200 req/s are within any machine's reach, unless another process holds the cores.
    const kept = steps.filter((s) => s.keptRate);
    if (kept.length > 0) {
      expect(out.clientLimit.sustainableRate).toBe(
        Math.max(...kept.map((s) => s.dispatch.achievedSendRate!)),
      );
      expect(check.ok).toBe(true);
      expect(check.detail).toMatch(
        /^sends (at least|up to) ≈ \d+ req\/s \(target [12]00, client lag p99 [\d.]+ ms\)/,
      );
    } else {
      expect(check.ok).toBe(false);
      expect(check.detail).toMatch(/^kept none of the rates tried \(100, 200 req\/s\)/);
    }
  }, 60_000);

  it('a bad rate list is a usage error naming the flag (exit 2), before anything runs', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'llem-doctor-'));
    const { code, stderr, stdout } = await run(
      ['doctor', '--client-limit', '--client-limit-rates', '100,fast'],
      {},
      cwd,
    );
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toMatch(
      /--client-limit-rates must be a comma-separated list of positive request rates/,
    );
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  it('says what a busy machine means for the rates to trust', () => {
    const step = (targetRate: number, achieved: number, p99: number, kept: boolean) => ({
      targetRate,
      keptRate: kept,
      saturated: kept && p99 <= 5 ? [] : ['late'],
      dispatch: { achievedSendRate: achieved, clientLagMs: { p50: 0, p95: 0, p99, max: p99 } },
    });
    const limit = {
      sustainableRate: 4870.4,
      sustainableTargetRate: 5000,
      sustainableLagP99Ms: 12.3,
      unsaturatedRate: 1990,
      maxClientLagMs: 5,
      steps: [
        step(2000, 1990, 0.8, true),
        step(5000, 4870.4, 12.3, true),
        step(10000, 5100, 900, false),
      ],
      cpus: 2,
      elapsedS: 3.2,
    } as unknown as ClientLimit;
    expect(clientLimitCheck(limit)).toEqual({
      name: 'openai client limit',
      ok: true,
      detail:
        'sends up to ≈ 4,870 req/s (target 5,000, client lag p99 12 ms); lateness p99 within 5 ms up to ≈ 1,990 req/s; rates tried 2,000, 5,000, 10,000 req/s in 3.2 s, 2 CPUs. Runs above it measure the client (client-saturated)',
      hint: null,
      blocking: false,
    });
    const none = clientLimitCheck({ ...limit, sustainableRate: null, unsaturatedRate: null });
    expect(none).toMatchObject({ ok: false, blocking: false });
    expect(none.hint).toMatch(/too busy to drive an open-loop load/);
  });
});

describe('doctor internals', () => {
  it('names the node-llama-cpp prebuilt packages per platform', () => {
    expect(llamaBinaryPackages('linux', 'x64')).toEqual({
      cpu: '@node-llama-cpp/linux-x64',
      cuda: ['@node-llama-cpp/linux-x64-cuda', '@node-llama-cpp/linux-x64-cuda-ext'],
    });
    expect(llamaBinaryPackages('darwin', 'arm64').cpu).toBe('@node-llama-cpp/mac-arm64-metal');
  });

  it('fails an old Node version as blocking', () => {
    const dir = mkdtempSync(join(tmpdir(), 'llem-doctor-'));
    chmodSync(dir, 0o755);
    const checks = runDoctorChecks({
      env: {},
      outputDir: dir,
      library: '/nonexistent/lib.so',
      nodeVersion: 'v18.20.0',
    });
    expect(checks[0]).toMatchObject({ name: 'Node.js version', ok: false, blocking: true });
    expect(checks[0]!.hint).toContain('≥ 20.19');
  });
});

describe('llem doctor with managed servers', () => {
  it('checks each server program a study starts (PATH, or a path relative to server.cwd), not a port that does not exist yet', () => {
    const dir = mkdtempSync(join(tmpdir(), 'llem-doctor-managed-'));
    mkdirSync(join(dir, 'bin'));
    writeFileSync(join(dir, 'bin', 'my-server'), '#!/bin/sh\n');
    chmodSync(join(dir, 'bin', 'my-server'), 0o755);
    const served = (argv: string[], cwd?: string) => ({
      index: 0,
      label: argv[0]!,
      configHash: '0123456789abcdef',
      copy: 0,
      config: parseExperimentConfig({
        engine: 'openai',
        model: 'm',
        openai: { base_url: 'http://127.0.0.1:{port}/v1' },
        server: { argv, ...(cwd ? { cwd } : {}) },
      }),
    });
    const checks = managedServerChecks(
      {
        configs: [
          served(['my-server', '--port', '{port}']),
          served(['./my-server', '--port', '{port}'], 'bin'),
          served(['./my-server', '--port', '{port}'], 'bin'),
          served(['llem-no-such-server', '--port', '{port}']),
        ],
      },
      { env: { PATH: join(dir, 'bin') }, baseDir: dir },
    );
    expect(checks.map((c) => [c.name, c.ok, c.detail])).toEqual([
      [
        'managed server my-server',
        true,
        `${join(dir, 'bin', 'my-server')}; llem starts it for each run`,
      ],
      [
        'managed server ./my-server',
        true,
        `${join(dir, 'bin', 'my-server')}; llem starts it for each run`,
      ],
      ['managed server llem-no-such-server', false, 'not found on PATH'],
    ]);
    expect(checks[2]?.blocking).toBe(true);
  });
});
