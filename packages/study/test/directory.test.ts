import { type ChildProcess, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import {
  ManifestSchema,
  RunClaimSchema,
  type RunOwner,
  RunRecordSchema,
  runAsideFile,
  runClaimFile,
  runFiles,
} from '@llem/domain';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { currentOwner, StudyDirectory } from '../src/directory';
import { StudyError } from '../src/errors';
import type { LivenessProbe } from '../src/liveness';
import type { StoredStudy } from '../src/plan';
import { makePlan, TSX_EXEC_ARGV } from './fixtures/plan';
import { tempDir } from './helpers';

let tmp: ReturnType<typeof tempDir>;
beforeEach(() => {
  tmp = tempDir();
});
afterEach(() => tmp.cleanup());

const plan = makePlan([{ a: 1 }, { a: 2 }], { cycles: 2 });
const keys = plan.runs.map((r) => r.key);
const stored: StoredStudy = {
  schemaVersion: 1,
  toolVersion: '9.9.9',
  createdAt: '2026-01-02T03:04:05.000Z',
  plan,
};

/** Liveness where only the pids in `alive` run, on host `here`. */
function probe(alive: number[] = [], slurm?: (job: string) => boolean | null): LivenessProbe {
  return {
    host: 'here',
    isPidAlive: (pid) => alive.includes(pid),
    ...(slurm ? { isSlurmJobActive: slurm } : {}),
  };
}

function create(liveness: LivenessProbe = probe()): StudyDirectory {
  return StudyDirectory.create(
    { outputDir: tmp.dir, name: 'dir test', now: new Date('2026-01-02T03:04:05Z'), stored },
    { liveness },
  );
}

const owner = (pid: number, host = 'here', extra: Partial<RunOwner> = {}): RunOwner => ({
  host,
  pid,
  runnerId: `r${pid}`,
  ...extra,
});

function record(dir: StudyDirectory, key: string, status: 'running' | 'failed' | 'completed') {
  const run = plan.runs.find((r) => r.key === key)!;
  return dir.writeRecord({
    key,
    configHash: run.configHash,
    cycle: run.cycle,
    copy: 0,
    label: `cfg${run.configIndex}`,
    status,
    attempts: 1,
    owner: owner(7),
    startedAt: '2026-01-02T03:04:06.000Z',
    endedAt: status === 'running' ? null : '2026-01-02T03:04:07.000Z',
    error: status === 'failed' ? { type: 'crash', message: 'boom' } : null,
    resultFile: status === 'completed' ? runFiles(key).result : null,
  });
}

describe('StudyDirectory', () => {
  it('names every file through the domain layout and creates runs/ and study.json', () => {
    const dir = create();
    expect(readdirSync(dir.dir).sort()).toEqual(['runs', 'study.json']);
    const paths = dir.runPaths('abc_c0');
    expect(paths.result).toBe(join(dir.dir, 'runs', 'abc_c0.json'));
    expect(paths.record).toBe(join(dir.dir, 'runs', 'abc_c0.record.json'));
    expect(paths.error).toBe(join(dir.dir, 'runs', 'abc_c0.error.json'));
    expect(paths.timeseries).toBe(join(dir.dir, 'runs', 'abc_c0.timeseries.csv'));
    expect(paths.requests).toBe(join(dir.dir, 'runs', 'abc_c0.requests.jsonl'));
    expect(() => dir.runPaths('../escape')).toThrow(/cannot name a file/);
    expect(dir.readStored()).toEqual(stored);
  });

  it('of two claims on one run exactly one wins; a released or stale one is superseded, never deleted', () => {
    const dir = create(probe([1, 2]));
    const [key] = keys as [string];
    const a = dir.claim(key, owner(1));
    expect(a?.generation).toBe(1);
    expect(dir.claim(key, owner(2))).toBeNull(); // live: pid 1 runs here
    dir.release(a!);
    expect(dir.claimState(key).kind).toBe('released');
    const b = dir.claim(key, owner(2));
    expect(b?.generation).toBe(2);
    expect(dir.holds(a!)).toBe(false);
    expect(dir.holds(b!)).toBe(true);
    // pid 2 dies: its claim is stale and the next runner takes generation 3.
    const gone = create(probe([3]));
    const state = new StudyDirectory(dir.dir, { liveness: probe([3]) }).claimState(key);
    expect(state).toMatchObject({
      kind: 'stale',
      generation: 2,
      why: 'its runner (pid 2) is gone',
    });
    const c = new StudyDirectory(dir.dir, { liveness: probe([3]) }).claim(key, owner(3));
    expect(c?.generation).toBe(3);
    for (const g of [1, 2, 3]) {
      const file = join(dir.dir, runClaimFile(key, g));
      expect(RunClaimSchema.parse(JSON.parse(readFileSync(file, 'utf8'))).generation).toBe(g);
    }
    expect(gone.dir).not.toBe(dir.dir);
  });

  it('judges claims of other hosts by Slurm job and heartbeat age', () => {
    const [key] = keys as [string];
    const far = owner(5, 'node7', {
      slurm: { jobId: '812', arrayJobId: '800', arrayTaskId: '12', nodeName: 'node7' },
    });
    const dir = create();
    const held = dir.claim(key, far);
    // Another host's pid cannot be checked: live while the heartbeat is fresh.
    expect(new StudyDirectory(dir.dir, { liveness: probe() }).claimState(key).kind).toBe('live');
    // Slurm says the job ended: stale at once.
    const ended = new StudyDirectory(dir.dir, { liveness: probe([], () => false) });
    expect(ended.claimState(key)).toMatchObject({ kind: 'stale', why: 'Slurm job 812 ended' });
    // Slurm cannot be asked (null): the heartbeat decides.
    const unknown = new StudyDirectory(dir.dir, {
      liveness: probe([], () => null),
      staleClaimMs: 60_000,
    });
    expect(unknown.claimState(key).kind).toBe('live');
    const old = new Date(Date.now() - 61_000);
    utimesSync(join(dir.dir, runClaimFile(key, 1)), old, old);
    expect(unknown.claimState(key)).toMatchObject({ kind: 'stale' });
    expect((unknown.claimState(key) as { why: string }).why).toMatch(
      /no heartbeat from node7 pid 5 for 6\d s/,
    );
    // The heartbeat makes it live again.
    unknown.touch(held!);
    expect(unknown.claimState(key).kind).toBe('live');
  });

  it('a claim from before a reboot, or under a reused pid, is stale though that pid runs', () => {
    const [key] = keys as [string];
    const dir = create();
    const probeWith = (bootId: string, start: string): LivenessProbe => ({
      host: 'here',
      isPidAlive: () => true,
      bootId,
      processStart: () => start,
    });
    dir.claim(key, owner(9, 'here', { bootId: 'boot-a', processStart: '1000' }));
    const same = new StudyDirectory(dir.dir, { liveness: probeWith('boot-a', '1000') });
    expect(same.claimState(key).kind).toBe('live');
    const rebooted = new StudyDirectory(dir.dir, { liveness: probeWith('boot-b', '1000') });
    expect(rebooted.claimState(key)).toMatchObject({
      kind: 'stale',
      why: 'its runner (pid 9) ran before this machine rebooted',
    });
    const reused = new StudyDirectory(dir.dir, { liveness: probeWith('boot-a', '2222') });
    expect(reused.claimState(key)).toMatchObject({
      kind: 'stale',
      why: expect.stringContaining('the pid now belongs to another process'),
    });
  });

  it('an unreadable claim is trusted while fresh and stale once old', () => {
    const [key] = keys as [string];
    const dir = new StudyDirectory(create().dir, { liveness: probe(), staleClaimMs: 60_000 });
    const file = join(dir.dir, runClaimFile(key, 1));
    for (const damaged of ['', '{"half":', '{}']) {
      writeFileSync(file, damaged);
      expect(dir.claimState(key).kind).toBe('live');
      const old = new Date(Date.now() - 61_000);
      utimesSync(file, old, old);
      expect(dir.claimState(key)).toMatchObject({
        kind: 'stale',
        why: 'its claim file is unreadable',
      });
    }
  });

  it('holds a resource for one holder at a time; a gone holder is cleared', () => {
    const dir = create(probe([1, 2]));
    const a = dir.holdResource('gpu-GPU-1', 'k_c0', owner(1));
    expect(a).not.toBeNull();
    expect(dir.holdResource('gpu-GPU-1', 'k_c1', owner(2))).toBeNull();
    expect(dir.holdResource('gpu-GPU-2', 'k_c1', owner(2))).not.toBeNull();
    dir.releaseResource(a!);
    expect(dir.holdResource('gpu-GPU-1', 'k_c1', owner(2))).not.toBeNull();
    // A holder whose pid is gone does not block.
    const gone = create(probe([3]));
    gone.holdResource('group-x', 'k_c0', owner(4));
    expect(
      new StudyDirectory(gone.dir, { liveness: probe([3]) }).holdResource(
        'group-x',
        'k_c1',
        owner(3),
      ),
    ).not.toBeNull();
  });

  it('rebuilds each run’s status from records, results and claims', () => {
    const dir = create(probe([42]));
    const [done, died, failed, orphan] = keys as [string, string, string, string];
    // Completed: record and result.
    record(dir, done, 'completed');
    writeFileSync(dir.runPaths(done).result, '{}');
    // Running, but its claim's owner is gone: interrupted, pending again.
    record(dir, died, 'running');
    dir.claim(died, owner(41));
    // Failed.
    record(dir, failed, 'failed');
    // A result whose record still says running (the runner died after publish): completed.
    record(dir, orphan, 'running');
    writeFileSync(dir.runPaths(orphan).result, '{}');
    const state = dir.state();
    expect(state.runs.map((r) => [r.key, r.status, r.error?.type ?? null])).toEqual([
      [done, 'completed', null],
      [died, 'pending', 'interrupted'],
      [failed, 'failed', 'crash'],
      [orphan, 'completed', null],
    ]);
    expect(state.runs[1]?.error?.message).toContain('its runner (pid 41) is gone');
    expect(state.status).toBe('interrupted');
    expect(state.counts).toEqual({ total: 4, pending: 1, running: 0, completed: 2, failed: 1 });

    // A live runner on the died run: running, and the study says who.
    dir.claim(died, owner(42));
    const live = dir.state();
    expect(live.runs[1]?.status).toBe('running');
    expect(live.status).toBe('running');
    expect(live.owners.map((o) => o.pid)).toEqual([42]);

    // A completed record whose result is gone: pending, saying so.
    rmSync(dir.runPaths(done).result);
    expect(dir.state().runs[0]).toMatchObject({
      status: 'pending',
      error: { type: 'no-result', message: expect.stringContaining('is missing') },
    });
  });

  it('rebuilds a deleted or truncated manifest from the records (schema-valid)', () => {
    const dir = create();
    record(dir, keys[0] as string, 'failed');
    for (const damage of ['delete', 'truncate']) {
      if (damage === 'delete') rmSync(dir.path('manifest.json'), { force: true });
      else writeFileSync(dir.path('manifest.json'), '{"schemaVersion": 1, "entr');
      expect(dir.readManifest().manifest).toBeNull();
      const state = dir.rebuildManifest('1.2.3');
      const manifest = ManifestSchema.parse(
        JSON.parse(readFileSync(dir.path('manifest.json'), 'utf8')),
      );
      expect(manifest.entries.map((e) => e.key)).toEqual(keys);
      expect(manifest.entries[0]).toMatchObject({ status: 'failed', attempts: 1 });
      expect(manifest.counts).toEqual(state.counts);
      expect(manifest.toolVersion).toBe('1.2.3');
    }
  });

  it('reads a study written before records (manifest only) and migrates it once', () => {
    const dir = create();
    const manifest = dir.manifestFor(dir.state(), '0.1.0');
    manifest.entries[0] = {
      ...manifest.entries[0]!,
      status: 'failed',
      attempts: 2,
      error: { type: 'timeout', message: 't' },
    };
    dir.writeManifest(manifest);
    expect(dir.state().runs[0]).toMatchObject({ status: 'failed', attempts: 2 });
    expect(dir.migrateLegacyManifest()).toBe(1);
    expect(
      RunRecordSchema.parse(
        JSON.parse(readFileSync(dir.runPaths(keys[0] as string).record, 'utf8')),
      ),
    ).toMatchObject({ status: 'failed', attempts: 2 });
    expect(dir.migrateLegacyManifest()).toBe(0);
    // Without study.json the plan is rebuilt from the manifest.
    rmSync(dir.path('study.json'));
    const { stored: rebuilt, fromManifest } = dir.readStoredOrManifest();
    expect(fromManifest).toBe(true);
    expect(rebuilt.plan.runs.map((r) => r.key)).toEqual(keys);
    rmSync(dir.path('manifest.json'));
    expect(() => dir.readStoredOrManifest()).toThrow(StudyError);
    expect(() => dir.readStoredOrManifest()).toThrow(
      /neither study\.json .* nor manifest\.json \(missing\)/,
    );
  });

  it('sets a damaged result aside (kept, never deleted) under the layout’s name', () => {
    const dir = create();
    const key = keys[0] as string;
    writeFileSync(dir.runPaths(key).result, 'trunc');
    const aside = dir.setResultAside(key);
    expect(aside).toMatch(
      new RegExp(`^${runAsideFile(key, 'damaged', 'X').replace('X', '').replace(/\./g, '\\.')}`),
    );
    expect(readFileSync(dir.path(aside!), 'utf8')).toBe('trunc');
    expect(existsSync(dir.runPaths(key).result)).toBe(false);
    expect(dir.setResultAside(key)).toBeNull();
  });

  it('currentOwner names this host and pid, and the Slurm job when there is one', () => {
    expect(currentOwner({})).toMatchObject({ host: hostname(), pid: process.pid });
    expect(currentOwner({}).slurm).toBeUndefined();
    expect(
      currentOwner({
        SLURM_JOB_ID: '9',
        SLURM_ARRAY_JOB_ID: '8',
        SLURM_ARRAY_TASK_ID: '3',
        SLURMD_NODENAME: 'n1',
      }).slurm,
    ).toEqual({ jobId: '9', arrayJobId: '8', arrayTaskId: '3', nodeName: 'n1', restartCount: 0 });
    // A requeued job keeps its id; its restart count tells the incarnations apart.
    expect(currentOwner({ SLURM_JOB_ID: '9', SLURM_RESTART_COUNT: '2' }).slurm).toEqual({
      jobId: '9',
      arrayJobId: null,
      arrayTaskId: null,
      nodeName: null,
      restartCount: 2,
    });
  });

  it('of many processes claiming the same runs at once, each run has exactly one winner', async () => {
    const dir = create();
    const many = Array.from({ length: 200 }, (_, i) => `k${i}_c0`);
    mkdirSync(dir.path('runs'), { recursive: true });
    const script = `
      import { StudyDirectory, currentOwner } from ${JSON.stringify(new URL('../src/directory.ts', import.meta.url).href)};
      const dir = new StudyDirectory(process.argv[1]);
      const keys = JSON.parse(process.argv[2]);
      const won = [];
      for (const key of keys) if (dir.claim(key, currentOwner({}))) won.push(key);
      process.stdout.write(JSON.stringify(won) + '\\n');
      // Stay alive (a live owner) until every racer is done: a dead owner's claim is stale.
      process.stdin.resume();
      process.stdin.on('end', () => process.exit(0));
    `;
    const children: ChildProcess[] = [];
    const racers = Array.from(
      { length: 4 },
      () =>
        new Promise<string[]>((resolve, reject) => {
          const child = spawn(
            process.execPath,
            [...TSX_EXEC_ARGV, '--input-type=module', '-e', script, dir.dir, JSON.stringify(many)],
            { stdio: ['pipe', 'pipe', 'inherit'] },
          );
          children.push(child);
          let out = '';
          child.stdout.on('data', (c: Buffer) => {
            out += c.toString();
            if (out.endsWith('\n')) resolve(JSON.parse(out) as string[]);
          });
          child.on('exit', (code) => reject(new Error(`racer exited early (${code})`)));
        }),
    );
    const won = (await Promise.all(racers)).flat();
    for (const child of children) child.stdin?.end();
    // The racers' pids are alive while they race, so nobody takes over anybody: one winner each.
    expect(won.sort()).toEqual([...many].sort());
    expect(readdirSync(dir.path('runs')).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  }, 60_000);
});
