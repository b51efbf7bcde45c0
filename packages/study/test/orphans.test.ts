import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readJsonLines } from './fixtures/chaos';
import { makePlan, TSX_EXEC_ARGV } from './fixtures/plan';
import { isRunning, tempDir } from './helpers';

// The runner is SIGKILLed while its worker runs: the worker and the program it started in a
// process group of its own must exit promptly, even when the handler blocks its event loop.

const driver = fileURLToPath(new URL('./fixtures/chaos-driver.ts', import.meta.url));

let tmp: ReturnType<typeof tempDir>;
let running: ChildProcess | undefined;
beforeEach(() => {
  tmp = tempDir();
});
afterEach(() => {
  running?.kill('SIGKILL');
  tmp.cleanup();
});

const alive = isRunning;

async function waitFor<T>(get: () => T | undefined, ms: number): Promise<T | undefined> {
  const end = Date.now() + ms;
  for (;;) {
    const value = get();
    if (value !== undefined || Date.now() > end) return value;
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function killRunnerMidRun(workerModule: string, behaviour: string) {
  const ledger = join(tmp.dir, 'ledger.jsonl');
  const planFile = join(tmp.dir, 'plan.json');
  writeFileSync(planFile, JSON.stringify(makePlan([{ behaviour }], { timeout_s: 120 })));
  running = spawn(process.execPath, [...TSX_EXEC_ARGV, driver, tmp.dir, planFile], {
    env: { ...process.env, LLEM_TEST_LEDGER: ledger, LLEM_CHAOS_WORKER: workerModule },
    stdio: 'ignore',
  });
  const exited = new Promise((r) => running?.once('exit', r));
  const line = await waitFor(
    () =>
      (readJsonLines(ledger) as Array<{ event: string; pid: number; child?: number }>).find(
        (l) => l.event === 'grandchild',
      ),
    30_000,
  );
  expect(line, 'the worker started its grandchild').toBeDefined();
  const worker = line!.pid;
  const grandchild = line!.child!;
  expect(alive(worker) && alive(grandchild)).toBe(true);
  running.kill('SIGKILL');
  await exited;
  const killedAt = Date.now();
  await waitFor(() => (!alive(worker) && !alive(grandchild) ? true : undefined), 5000);
  const ms = Date.now() - killedAt;
  const survivors = [worker, grandchild].filter(alive);
  for (const pid of survivors) process.kill(pid, 'SIGKILL');
  return { survivors, ms };
}

it('a worker that awaits dies with the runner, and takes its process-group grandchild along', async () => {
  const worker = fileURLToPath(new URL('./fixtures/worker.ts', import.meta.url));
  const { survivors, ms } = await killRunnerMidRun(worker, 'grandchild-hang');
  console.log(`orphans (IPC disconnect): survivors=${survivors.length} gone after ${ms} ms`);
  expect(survivors).toEqual([]);
}, 60_000);

it('with the watchdog, a worker whose handler blocks its event loop still dies with the runner', async () => {
  const worker = fileURLToPath(new URL('./fixtures/watchdog-worker.ts', import.meta.url));
  const { survivors, ms } = await killRunnerMidRun(worker, 'ok');
  console.log(
    `orphans (watchdog, blocked handler): survivors=${survivors.length} gone after ${ms} ms`,
  );
  expect(survivors).toEqual([]);
}, 60_000);

describe('SIGINT in a real process (handleSigint, as the CLI wires it)', () => {
  async function startHanging(behaviour: string, graceMs: number) {
    const ledger = join(tmp.dir, 'ledger.jsonl');
    const planFile = join(tmp.dir, 'plan.json');
    writeFileSync(
      planFile,
      JSON.stringify(makePlan([{ behaviour }, { behaviour: 'ok' }], { timeout_s: 120 })),
    );
    const worker = fileURLToPath(new URL('./fixtures/worker.ts', import.meta.url));
    const child = spawn(process.execPath, [...TSX_EXEC_ARGV, driver, tmp.dir, planFile], {
      env: {
        ...process.env,
        LLEM_TEST_LEDGER: ledger,
        LLEM_CHAOS_WORKER: worker,
        LLEM_DRIVER_GRACE_MS: String(graceMs),
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    running = child;
    let out = '';
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
    });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const started = await waitFor(() => {
      if (!existsSync(ledger)) return undefined;
      return readFileSync(ledger, 'utf8').includes('"event":"start"') ? true : undefined;
    }, 30_000);
    expect(started).toBe(true);
    const workerPid = Number(/^RUN \S+ (\d+)$/m.exec(out)?.[1]);
    return { child, exited, workerPid, output: () => out };
  }

  it('first Ctrl-C: the child ends cleanly, the study is interrupted, exit code 130', async () => {
    const { child, exited, workerPid, output } = await startHanging('hang', 5000);
    child.kill('SIGINT');
    const code = await exited;
    expect(code).toBe(130);
    expect(output()).toContain('SIGINT 1');
    expect(output()).toMatch(/DONE interrupted .*"pending":2/);
    expect(alive(workerPid)).toBe(false);
  }, 60_000);

  it('second Ctrl-C kills a child that ignores SIGTERM at once, without waiting the grace', async () => {
    const { child, exited, workerPid, output } = await startHanging('ignore-sigterm', 60_000);
    const t = Date.now();
    child.kill('SIGINT');
    await new Promise((r) => setTimeout(r, 300));
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(Date.now() - t).toBeLessThan(15_000);
    expect(output()).toContain('SIGINT 2');
    expect(alive(workerPid)).toBe(false);
  }, 60_000);
});
