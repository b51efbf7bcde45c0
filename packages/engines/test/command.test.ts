import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type CommandExperimentConfig,
  type ExperimentConfigInput,
  parseExperimentConfig,
} from '@llem/domain';
import { noopLogger } from '@llem/resilience';
import { afterEach, describe, expect, it } from 'vitest';
import { createCommandEngine, latenciesToRecords, parseProgramLine } from '../src/command/index';
import type { Engine, EngineRequest } from '../src/engine';

const dir = mkdtempSync(join(tmpdir(), 'llem-command-test-'));
function script(name: string, body: string): string {
  const file = join(dir, name);
  writeFileSync(file, body);
  return file;
}
const requests: EngineRequest[] = [
  { id: 0, prompt: 'hello', maxOutputTokens: 4 },
  { id: 1, prompt: 'world', maxOutputTokens: 4 },
];
const engines: Engine[] = [];
type CommandInput = Extract<ExperimentConfigInput, { engine: 'command' }>['command'];

/**
 * A config validated by @llem/domain, as a study hands it to the engine. The argv is put back
 * as given, so `argv: []` (which the domain refuses) still reaches the engine's own guard.
 */
function commandConfig(model: string, command: CommandInput): CommandExperimentConfig {
  const parsed = parseExperimentConfig({
    model,
    engine: 'command',
    command: { ...command, argv: ['placeholder'] },
  });
  return { ...parsed, command: { ...parsed.command, argv: command.argv } };
}

function make(
  config: { model: string; command: CommandInput },
  signal = new AbortController().signal,
): Engine {
  const engine = createCommandEngine(
    commandConfig(config.model, config.command),
    { logger: noopLogger, signal },
    { killGraceMs: 300 },
  );
  engines.push(engine);
  return engine;
}
afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.dispose()));
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('command engine', () => {
  it("writes a trace's send times and a turn's predecessor into the requests file", async () => {
    const prog = script(
      'echo-requests.mjs',
      `import { readFileSync } from 'node:fs';
const text = readFileSync(process.env.LLEM_REQUESTS_FILE, 'utf8');
console.log(JSON.stringify({ input_tokens: 0, output_tokens: 0, requests: 0 }));
process.stdout.write(JSON.stringify({ echo: text }) + '\\n');
`,
    );
    const lines: string[] = [];
    const engine = createCommandEngine(
      commandConfig('m', { argv: [process.execPath, prog] }),
      {
        logger: { ...noopLogger, debug: (m: string) => lines.push(m) },
        signal: new AbortController().signal,
      },
      { killGraceMs: 300 },
    );
    engines.push(engine);
    await engine.load();
    await engine.run([
      { id: 0, prompt: 'a', maxOutputTokens: 1, sendAtMs: 0 },
      { id: 1, prompt: 'b', maxOutputTokens: 1, sendAtMs: 12.5, after: 0 },
    ]);
    const echoed = lines.find((l) => l.includes('"echo"')) ?? '';
    const text = JSON.parse(echoed.slice(echoed.indexOf('{'))).echo as string;
    expect(
      text
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l)),
    ).toEqual([
      { id: 0, prompt: 'a', max_output_tokens: 1, send_at_ms: 0 },
      { id: 1, prompt: 'b', max_output_tokens: 1, send_at_ms: 12.5, after: 0 },
    ]);
  });

  it('hands the config and requests to the program and reads its report and window markers', async () => {
    const prog = script(
      'report.mjs',
      `import { readFileSync } from 'node:fs';
const cfg = JSON.parse(readFileSync(process.env.LLEM_CONFIG_FILE, 'utf8'));
const reqs = readFileSync(process.env.LLEM_REQUESTS_FILE, 'utf8').trim().split('\\n').map((l) => JSON.parse(l));
console.log('loading model ' + cfg.model + ' FOO=' + process.env.FOO);
await new Promise((r) => setTimeout(r, 150));
console.log(JSON.stringify({ llem: 'start' }));
await new Promise((r) => setTimeout(r, 100));
console.log(JSON.stringify({ llem: 'stop' }));
console.log(JSON.stringify({ input_tokens: reqs.length * 10, output_tokens: reqs.reduce((a, r) => a + r.max_output_tokens, 0), requests: reqs.length,
  latencies: [{ ttft_ms: 20, itl_ms: [5, 7], e2e_ms: 40, output_tokens: 3 }] }));
`,
    );
    const engine = make({
      model: 'm1',
      command: { argv: [process.execPath, prog], env: { FOO: 'bar' } },
    });
    expect(engine.windowMarking).toBe('engine');
    const info = await engine.load();
    expect(info).toMatchObject({ engine: 'command', model: 'm1', parameterCount: null });
    const marks: Array<[string, number]> = [];
    const t0 = performance.now();
    const out = await engine.run(requests, {
      onWindowStart: () => marks.push(['start', performance.now() - t0]),
      onWindowStop: () => marks.push(['stop', performance.now() - t0]),
    });
    expect(out).toMatchObject({
      inputTokens: 20,
      outputTokens: 8,
      tokenCountSource: 'program-report',
    });
    expect(out.extra).toMatchObject({ requestCount: 2, windowMarkers: true });
    expect(marks.map((m) => m[0])).toEqual(['start', 'stop']);
    // The load (150 ms) happened before the start marker, the window lasted ~100 ms.
    expect(marks[0]![1]).toBeGreaterThan(100);
    expect(marks[1]![1] - marks[0]![1]).toBeGreaterThan(60);
    expect(out.requests).toHaveLength(1);
    const r = out.requests[0]!;
    // Absolute times on the window's clock, differenced back: equal to float precision.
    expect(r.firstTokenAt! - r.startedAt).toBeCloseTo(20, 9);
    const gaps = r.tokenTimes.map((t) => t - r.firstTokenAt!);
    expect(gaps).toHaveLength(2);
    expect(gaps[0]).toBeCloseTo(5, 9);
    expect(gaps[1]).toBeCloseTo(12, 9);
    expect(r.endedAt - r.startedAt).toBeCloseTo(40, 9);
  });

  it('passes the config to a python3 program (the main use case)', async () => {
    const prog = script(
      'bench.py',
      `import json, os, sys
cfg = json.load(open(os.environ["LLEM_CONFIG_FILE"]))
reqs = [json.loads(l) for l in open(os.environ["LLEM_REQUESTS_FILE"])]
print("python says hi", flush=True)
print(json.dumps({"llem": "start"}), flush=True)
print(json.dumps({"llem": "stop"}), flush=True)
print(json.dumps({"input_tokens": len(cfg["model"]), "output_tokens": sum(r["max_output_tokens"] for r in reqs), "requests": len(reqs)}))
`,
    );
    const engine = make({ model: 'abcdef', command: { argv: ['python3', prog] } });
    await engine.load();
    let started = 0;
    const out = await engine.run(requests, { onWindowStart: () => started++ });
    expect(started).toBe(1);
    expect(out).toMatchObject({ inputTokens: 6, outputTokens: 8, requests: [] });
    expect(out.extra).toMatchObject({ requestCount: 2 });
  });

  it('never involves a shell: metacharacters in argv reach the program verbatim', async () => {
    const prog = script(
      'echo-args.mjs',
      `console.log(JSON.stringify({ input_tokens: process.argv[2].length, output_tokens: 0, requests: 1 }));`,
    );
    const engine = make({
      model: 'm',
      command: { argv: [process.execPath, prog, '$(echo hi); `x` | y'] },
    });
    await engine.load();
    const out = await engine.run(requests);
    expect(out.inputTokens).toBe('$(echo hi); `x` | y'.length);
  });

  it("does not hand the worker's LLEM_TASK_FILE to the program; the rest of the environment goes", async () => {
    const prog = script(
      'env.mjs',
      `console.log(JSON.stringify({ input_tokens: process.env.LLEM_TASK_FILE === undefined ? 1 : 0, output_tokens: process.env.KEEP === 'yes' ? 1 : 0, requests: 1 }));`,
    );
    const saved = { task: process.env.LLEM_TASK_FILE, keep: process.env.KEEP };
    process.env.LLEM_TASK_FILE = '/somewhere/runs/k.task.json';
    process.env.KEEP = 'yes';
    try {
      const engine = make({ model: 'm', command: { argv: [process.execPath, prog] } });
      await engine.load();
      const out = await engine.run(requests);
      expect(out.inputTokens).toBe(1);
      expect(out.outputTokens).toBe(1);
    } finally {
      if (saved.task === undefined) delete process.env.LLEM_TASK_FILE;
      else process.env.LLEM_TASK_FILE = saved.task;
      if (saved.keep === undefined) delete process.env.KEEP;
      else process.env.KEEP = saved.keep;
    }
  });

  it("the engine's env (a run's GPUs) wins over command.env and inherit_env: false", async () => {
    const prog = script(
      'gpu.mjs',
      `console.log(JSON.stringify({ input_tokens: process.env.CUDA_VISIBLE_DEVICES === 'GPU-run' ? 1 : 0, output_tokens: 0, requests: 1 }));`,
    );
    for (const command of [
      { argv: [process.execPath, prog], env: { CUDA_VISIBLE_DEVICES: '0' } },
      { argv: [process.execPath, prog], inherit_env: false },
    ]) {
      const engine = createCommandEngine(
        commandConfig('m', command),
        { logger: noopLogger, signal: new AbortController().signal },
        { env: { CUDA_VISIBLE_DEVICES: 'GPU-run' } },
      );
      engines.push(engine);
      await engine.load();
      expect((await engine.run(requests)).inputTokens).toBe(1);
    }
  });

  it('runs without markers (the window is the whole program) and ignores chatter', async () => {
    const prog = script(
      'nomark.mjs',
      `console.log('{not json'); console.log('{"foo":1}'); console.log(JSON.stringify({ input_tokens: 1, output_tokens: 2, requests: 3 }));`,
    );
    const engine = make({ model: 'm', command: { argv: [process.execPath, prog] } });
    await engine.load();
    let hooks = 0;
    const out = await engine.run(requests, {
      onWindowStart: () => hooks++,
      onWindowStop: () => hooks++,
    });
    expect(hooks).toBe(0);
    expect(out.extra).toMatchObject({ windowMarkers: false, requestCount: 3 });
  });

  it('fails with the tail of stderr when the program exits non-zero', async () => {
    const prog = script(
      'fail.mjs',
      // exitCode, not process.exit(): exit() may drop stderr that the OS pipe has not taken yet.
      `for (let i = 0; i < 500; i++) console.error('noise line ' + i); console.error('CUDA out of memory'); process.exitCode = 3;`,
    );
    const engine = make({ model: 'm', command: { argv: [process.execPath, prog] } });
    await engine.load();
    const error = (await engine.run(requests).then(
      () => null,
      (e: unknown) => e,
    )) as Error & { code: string };
    expect(error.name).toBe('EngineError');
    expect(error.code).toBe('COMMAND_EXIT');
    expect(error.message).toMatch(/exited with code 3/);
    expect(error.message).toMatch(/CUDA out of memory$/);
    expect(error.message).not.toMatch(/noise line 0\n/);
  });

  it('fails clearly without a report line, with a bad report, or with a missing program', async () => {
    const none = make({
      model: 'm',
      command: { argv: [process.execPath, script('none.mjs', `console.log('done')`)] },
    });
    await none.load();
    await expect(none.run(requests)).rejects.toMatchObject({ code: 'COMMAND_NO_REPORT' });

    const bad = make({
      model: 'm',
      command: {
        argv: [
          process.execPath,
          script(
            'bad.mjs',
            `console.log(JSON.stringify({ input_tokens: 1, output_tokens: -2, requests: 1 }))`,
          ),
        ],
      },
    });
    await bad.load();
    await expect(bad.run(requests)).rejects.toThrow(/"output_tokens" must be an integer ≥ 0/);

    // Markers out of order: whatever window followed is not the one the program meant.
    const order = make({
      model: 'm',
      command: {
        argv: [
          process.execPath,
          script(
            'order.mjs',
            `console.log('{"llem":"stop"}'); console.log('{"llem":"start"}'); console.log(JSON.stringify({ input_tokens: 1, output_tokens: 2, requests: 1 }))`,
          ),
        ],
      },
    });
    await order.load();
    await expect(order.run(requests)).rejects.toMatchObject({
      code: 'COMMAND_BAD_MARKERS',
      message: expect.stringMatching(/printed \{"llem":"stop"\} before \{"llem":"start"\}/),
    });

    const missing = make({ model: 'm', command: { argv: ['llem-no-such-program-xyz'] } });
    await missing.load();
    await expect(missing.run(requests)).rejects.toMatchObject({ code: 'COMMAND_SPAWN' });

    const empty = make({ model: 'm', command: { argv: [] } });
    await expect(empty.load()).rejects.toThrow(/command\.argv/);
    const badCwd = make({ model: 'm', command: { argv: ['x'], cwd: join(dir, 'nope') } });
    await expect(badCwd.load()).rejects.toThrow(/command\.cwd/);
  });

  it('kills the whole process group (including grandchildren) on abort', async () => {
    const pidFile = join(dir, 'grandchild.pid');
    const prog = script(
      'hang.mjs',
      `import { spawn } from 'node:child_process'; import { writeFileSync } from 'node:fs';
const g = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
writeFileSync(${JSON.stringify(pidFile)}, String(g.pid));
process.on('SIGTERM', () => {}); // ignore SIGTERM: the grace period must end in SIGKILL
console.log(JSON.stringify({ llem: 'start' }));
setInterval(() => {}, 1000);`,
    );
    const ac = new AbortController();
    const engine = make({ model: 'm', command: { argv: [process.execPath, prog] } }, ac.signal);
    await engine.load();
    const running = engine.run(requests, {
      onWindowStart: () => setTimeout(() => ac.abort(), 100),
    });
    await expect(running).rejects.toMatchObject({ code: 'COMMAND_ABORTED' });
    const grandchild = Number(readFileSync(pidFile, 'utf8'));
    const deadline = Date.now() + 3000;
    while (alive(grandchild) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(alive(grandchild)).toBe(false);
  });

  it('leaves no process behind when its own process dies (exit hook kills the group)', async () => {
    const pidFile = join(dir, 'orphan.pid');
    const prog = script(
      'sleeper.mjs',
      `import { writeFileSync } from 'node:fs'; writeFileSync(${JSON.stringify(pidFile)}, String(process.pid)); setInterval(() => {}, 1000);`,
    );
    const host = script(
      'host.mts',
      `import { createCommandEngine } from ${JSON.stringify(join(__dirname, '../src/command/index.ts'))};
import { existsSync } from 'node:fs';
const e = createCommandEngine({ model: 'm', command: { argv: [process.execPath, ${JSON.stringify(prog)}] } }, { logger: console, signal: new AbortController().signal });
await e.load();
void e.run([]).catch(() => {});
while (!existsSync(${JSON.stringify(pidFile)})) await new Promise((r) => setTimeout(r, 20));
await new Promise((r) => setTimeout(r, 50));
process.exit(0);`,
    );
    execFileSync(process.execPath, ['--import', 'tsx', host], {
      cwd: join(__dirname, '..'),
      stdio: 'pipe',
      timeout: 15_000,
    });
    const pid = Number(readFileSync(pidFile, 'utf8'));
    expect(pid).toBeGreaterThan(0);
    const deadline = Date.now() + 3000;
    while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(alive(pid)).toBe(false);
  });

  it('dispose is safe twice and after a failed load', async () => {
    const engine = make({ model: 'm', command: { argv: [] } });
    await expect(engine.load()).rejects.toThrow();
    await engine.dispose();
    await engine.dispose();
  });
});

describe('command protocol', () => {
  it('classifies lines', () => {
    expect(parseProgramLine('{"llem":"start"}')).toEqual({ kind: 'start' });
    expect(parseProgramLine(' {"llem":"stop"} ')).toEqual({ kind: 'stop' });
    expect(parseProgramLine('hello')).toEqual({ kind: 'other' });
    expect(parseProgramLine('{"requests": 1}')).toMatchObject({ kind: 'invalid-report' });
    expect(
      parseProgramLine(
        '{"input_tokens":1,"output_tokens":2,"requests":1,"latencies":[{"ttft_ms":"x","e2e_ms":1}]}',
      ),
    ).toEqual({
      kind: 'invalid-report',
      problem: 'latencies[0].ttft_ms must be a number ≥ 0 or null',
    });
  });

  it('anchors reported latencies at the window start', () => {
    const [rec] = latenciesToRecords([{ start_ms: 10, ttft_ms: null, e2e_ms: 30 }], 1000);
    expect(rec).toEqual({
      id: 0,
      startedAt: 1010,
      firstTokenAt: null,
      tokenTimes: [],
      endedAt: 1040,
      inputTokens: null,
      outputTokens: null,
    });
  });
});
