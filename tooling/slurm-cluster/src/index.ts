import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A one-node Slurm cluster of a test's own: `munged`, `slurmctld` and `slurmd` from Debian's
 * packages (`.ci/prepare` installs them), each with this cluster's own `SLURM_CONF`, state and
 * spool directories, ports and munge socket, all under one temporary directory. Nothing in
 * `/etc/slurm` or `/etc/munge` is read or written, no system daemon is used, and `stop()` ends
 * the daemons by their PIDs.
 *
 * Facts this relies on (checked with slurm-wlm 22.05 on a 2-core container, as root): the
 * daemons come up in about a second with `proctrack/linuxproc`, `task/none`,
 * `select/cons_tres` + `CR_Core`, `jobacct_gather/none`, a munge key made with `dd`, and a
 * partition with `OverSubscribe=FORCE:4`. Fake GPUs are GRES (`Gres=gpu:N`, `gres.conf`
 * `Name=gpu File=<dir>/gpu[0-N]`, device nodes made with `mknod … c 1 3`, i.e. /dev/null's
 * numbers): each task with `--gres=gpu:1` gets its own `CUDA_VISIBLE_DEVICES`. With
 * `batch_sched_delay=0` an array task starts about 0.2 s after a slot frees.
 */
export interface SlurmCluster {
  ok: true;
  /** The cluster's directory (config, state, spool, logs, munge socket, device nodes). */
  dir: string;
  /** `SLURM_CONF` of this cluster. */
  conf: string;
  /** The environment for Slurm's clients: `process.env` with `SLURM_CONF`. */
  env: NodeJS.ProcessEnv;
  /** The one node's name. */
  nodeName: string;
  /** The partition (the default one). */
  partition: string;
  /** Fake GPUs on the node. */
  gpus: number;
  /** How long the daemons took to come up, ms. */
  startMs: number;
  /** `scancel` every job, wait for them to end, stop the daemons (SIGTERM, then SIGKILL). */
  stop(options?: { keep?: boolean }): Promise<void>;
}

/** Why the cluster could not be started (Slurm not installed, not root…). */
export interface SlurmClusterUnavailable {
  ok: false;
  reason: string;
}

export interface SlurmClusterOptions {
  /** Fake GPUs on the node. Default 4. */
  gpus?: number;
  /** CPUs of the node. Default 2. */
  cpus?: number;
  /** Seconds between a job's SIGTERM and its SIGKILL (scancel, time limit). Default 5. */
  killWaitS?: number;
  /** How long to wait for the node to come up, ms. Default 30 000. */
  timeoutMs?: number;
}

const SBIN = ['/usr/sbin', '/usr/local/sbin', '/usr/bin', '/usr/local/bin'];

function findProgram(name: string): string | null {
  for (const dir of [...(process.env.PATH ?? '').split(':'), ...SBIN]) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return null;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Start a one-node cluster. Resolves `{ ok: false, reason }` instead of throwing when it cannot
 * (a program missing, not root, a daemon that did not come up), so a test can skip loudly.
 *
 * @example
 * const cluster = await startSlurmCluster();
 * if (cluster.ok) spawnSync('sbatch', ['--wrap', 'true'], { env: cluster.env });
 */
export async function startSlurmCluster(
  options: SlurmClusterOptions = {},
): Promise<SlurmCluster | SlurmClusterUnavailable> {
  const programs = Object.fromEntries(
    ['munged', 'slurmctld', 'slurmd', 'sbatch', 'squeue', 'scancel', 'sinfo'].map((p) => [
      p,
      findProgram(p),
    ]),
  );
  const missing = Object.entries(programs).filter(([, path]) => path === null);
  if (missing.length > 0) {
    return {
      ok: false,
      reason: `${missing.map(([p]) => p).join(', ')} not found (apt-get install slurmctld slurmd slurm-client munge; .ci/prepare does)`,
    };
  }
  if (process.getuid?.() !== 0) {
    return { ok: false, reason: 'slurmd must run as root to start jobs (this user is not root)' };
  }
  const started = performance.now();
  const gpus = options.gpus ?? 4;
  // Short: the munge socket path must fit in sockaddr_un (108 bytes).
  const dir = mkdtempSync(join(tmpdir(), 'llem-slurm-'));
  for (const sub of ['state', 'spool', 'log']) mkdirSync(join(dir, sub));
  const children: ChildProcess[] = [];
  const fail = async (reason: string): Promise<SlurmClusterUnavailable> => {
    await stopDaemons(children);
    return { ok: false, reason: `${reason} (logs in ${join(dir, 'log')})` };
  };

  const key = join(dir, 'munge.key');
  const dd = spawnSync('dd', ['if=/dev/urandom', `of=${key}`, 'bs=1024', 'count=1'], {
    stdio: 'ignore',
  });
  if (dd.status !== 0) return fail('dd could not make a munge key');
  chmodSync(key, 0o400);
  for (let i = 0; i < gpus; i += 1) {
    const made = spawnSync('mknod', [join(dir, `gpu${i}`), 'c', '1', '3'], { encoding: 'utf8' });
    if (made.status !== 0) return fail(`mknod failed: ${made.stderr.trim()}`);
  }

  const [ctldPort, slurmdPort] = [await freePort(), await freePort()];
  const host = hostname();
  const nodeName = 'llemnode';
  const partition = 'llem';
  const socket = join(dir, 'munge.sock');
  const conf = join(dir, 'slurm.conf');
  writeFileSync(
    conf,
    [
      'ClusterName=llemtest',
      `SlurmctldHost=${host}(127.0.0.1)`,
      `SlurmctldPort=${ctldPort}`,
      `SlurmdPort=${slurmdPort}`,
      'AuthType=auth/munge',
      'CredType=cred/munge',
      `AuthInfo=socket=${socket}`,
      'SlurmUser=root',
      'SlurmdUser=root',
      `StateSaveLocation=${join(dir, 'state')}`,
      `SlurmdSpoolDir=${join(dir, 'spool')}`,
      `SlurmctldPidFile=${join(dir, 'slurmctld.pid')}`,
      `SlurmdPidFile=${join(dir, 'slurmd.pid')}`,
      `SlurmctldLogFile=${join(dir, 'log', 'slurmctld.log')}`,
      `SlurmdLogFile=${join(dir, 'log', 'slurmd.log')}`,
      'ProctrackType=proctrack/linuxproc',
      'TaskPlugin=task/none',
      'SelectType=select/cons_tres',
      'SelectTypeParameters=CR_Core',
      'JobAcctGatherType=jobacct_gather/none',
      'AccountingStorageType=accounting_storage/none',
      'MpiDefault=none',
      'ReturnToService=2',
      'GresTypes=gpu',
      `KillWait=${options.killWaitS ?? 5}`,
      'MinJobAge=300',
      // Start array tasks as soon as a slot frees (the default waits up to 3 s per batch).
      'SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,default_queue_depth=1000',
      `NodeName=${nodeName} NodeHostname=${host} NodeAddr=127.0.0.1 CPUs=${options.cpus ?? 2} Gres=gpu:${gpus} State=UNKNOWN`,
      `PartitionName=${partition} Nodes=${nodeName} Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4`,
      '',
    ].join('\n'),
  );
  writeFileSync(join(dir, 'gres.conf'), `Name=gpu File=${join(dir, 'gpu')}[0-${gpus - 1}]\n`);
  const env = { ...process.env, SLURM_CONF: conf };
  const daemon = (name: string, args: string[]): ChildProcess => {
    const log = openSync(join(dir, 'log', `${name}.out`), 'a');
    const child = spawn(programs[name] as string, args, {
      env,
      stdio: ['ignore', log, log],
      detached: true,
    });
    child.unref();
    children.push(child);
    return child;
  };

  daemon('munged', [
    '--foreground',
    '--force',
    `--socket=${socket}`,
    `--key-file=${key}`,
    `--pid-file=${join(dir, 'munged.pid')}`,
    `--log-file=${join(dir, 'log', 'munged.log')}`,
    `--seed-file=${join(dir, 'munge.seed')}`,
  ]);
  if (!(await until(() => existsSync(socket), 5000))) return fail('munged did not start');
  daemon('slurmctld', ['-D', '-i']);
  daemon('slurmd', ['-D', '-N', nodeName]);
  const timeoutMs = options.timeoutMs ?? 30_000;
  const up = await until(() => {
    const out = spawnSync(programs.sinfo as string, ['-h', '-n', nodeName, '-o', '%T'], {
      env,
      encoding: 'utf8',
      timeout: 5000,
    });
    return out.status === 0 && /^idle/m.test(out.stdout);
  }, timeoutMs);
  const exited = children.find((c) => c.exitCode !== null || c.signalCode !== null);
  if (!up || exited) {
    return fail(
      exited
        ? `${exited.spawnfile} exited (${exited.exitCode ?? exited.signalCode})`
        : `the node did not come up within ${timeoutMs / 1000} s`,
    );
  }
  return {
    ok: true,
    dir,
    conf,
    env,
    nodeName,
    partition,
    gpus,
    startMs: performance.now() - started,
    async stop(stopOptions = {}) {
      spawnSync(programs.scancel as string, [`--partition=${partition}`], { env, timeout: 10_000 });
      await until(() => {
        const out = spawnSync(programs.squeue as string, ['-h', '-t', 'PD,R,CG,S', '-o', '%i'], {
          env,
          encoding: 'utf8',
          timeout: 5000,
        });
        return out.status !== 0 || out.stdout.trim() === '';
      }, 20_000);
      await stopDaemons(children);
      if (!stopOptions.keep) rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function until(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = performance.now() + timeoutMs;
  while (performance.now() < end) {
    if (check()) return true;
    await sleep(100);
  }
  return check();
}

/** SIGTERM each daemon by its PID, then SIGKILL what is left after 5 s. */
async function stopDaemons(children: readonly ChildProcess[]): Promise<void> {
  const alive = (c: ChildProcess) => c.exitCode === null && c.signalCode === null;
  for (const child of [...children].reverse()) {
    if (child.pid !== undefined && alive(child)) process.kill(child.pid, 'SIGTERM');
  }
  await until(() => children.every((c) => !alive(c)), 5000);
  for (const child of children) {
    if (child.pid !== undefined && alive(child)) process.kill(child.pid, 'SIGKILL');
  }
}
