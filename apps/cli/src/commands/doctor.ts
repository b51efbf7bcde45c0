import { randomUUID } from 'node:crypto';
import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { OpenaiExperimentConfig, StudyPlan } from '@llem/domain';
import { type ClientLimit, checkOpenAIServer, measureClientLimit } from '@llem/engines';
import { DEFAULT_POWERCAP_ROOT, probeRapl } from '@llem/measure';
import { Nvml, NvmlLibraryError } from '@llem/nvml';
import { loadStudyFile } from '@llem/study';
import { type CliContext, defineCommand } from '../context';
import { ExitCode, UsageError } from '../errors';

/** One preflight check. `blocking` failures make `llem doctor` exit 1. */
export interface DoctorCheck {
  name: string;
  ok: boolean;
  /** What was found. */
  detail: string;
  /** What to do about a failure; `null` when ok. */
  hint: string | null;
  /** True when llem cannot do its job at all without this (exit 1). */
  blocking: boolean;
}

const MIN_NODE: [number, number] = [20, 19];

function nodeCheck(version: string): DoctorCheck {
  const [major = 0, minor = 0] = version.replace(/^v/, '').split('.').map(Number);
  const ok = major > MIN_NODE[0] || (major === MIN_NODE[0] && minor >= MIN_NODE[1]);
  return {
    name: 'Node.js version',
    ok,
    detail: `Node ${version}`,
    hint: ok ? null : `llem needs Node.js ≥ ${MIN_NODE.join('.')}; install a current LTS`,
    blocking: !ok,
  };
}

/** NVML, devices, persistence mode and residual memory: none blocks (CPU studies need no GPU). */
function gpuChecks(options: {
  library?: string;
  env: NodeJS.ProcessEnv;
  thresholdMb: number;
}): DoctorCheck[] {
  let nvml: Nvml;
  try {
    nvml = Nvml.open({ library: options.library, env: options.env });
  } catch (error) {
    // One line: the loader's summary, not its list of every path tried.
    const why =
      error instanceof NvmlLibraryError
        ? error.summary
        : error instanceof Error
          ? (error.message.split('\n')[0] ?? '')
          : String(error);
    return [
      {
        name: 'NVML loadable',
        ok: false,
        detail: why ?? 'NVML could not be loaded',
        hint: 'No NVIDIA driver found: GPU energy, memory and power traces are unavailable. Not a problem for CPU studies. On a GPU machine install the driver, or point LLEM_NVML_LIBRARY at libnvidia-ml.so.1',
        blocking: false,
      },
    ];
  }
  try {
    const checks: DoctorCheck[] = [
      {
        name: 'NVML loadable',
        ok: true,
        detail: `driver ${nvml.driverVersion() ?? 'unknown'}, CUDA ${nvml.cudaDriverVersion() ?? 'unknown'}`,
        hint: null,
        blocking: false,
      },
    ];
    const devices = nvml.devices();
    checks.push({
      name: 'GPU devices',
      ok: devices.length > 0,
      detail: devices.length
        ? devices.map((d) => `#${d.index} ${d.name() ?? 'unknown'}`).join('; ')
        : 'NVML sees no device',
      hint: devices.length
        ? null
        : 'Check nvidia-smi; in a container, pass the GPU through (--gpus all)',
      blocking: false,
    });
    if (devices.length) {
      const off = devices.filter((d) => d.persistenceMode() === false);
      const unknown = devices.filter((d) => d.persistenceMode() === null);
      checks.push({
        name: 'Persistence mode',
        ok: off.length === 0,
        detail:
          off.length === 0
            ? unknown.length
              ? `unknown on ${unknown.map((d) => `#${d.index}`).join(', ')} (not supported)`
              : 'on for every device'
            : `off on ${off.map((d) => `#${d.index}`).join(', ')}`,
        hint: off.length
          ? 'Turn it on so each run does not pay driver start-up (and its energy): sudo nvidia-smi -pm 1'
          : null,
        blocking: false,
      });
      const busy = devices
        .map((d) => ({ index: d.index, used: d.memoryInfo()?.usedMiB ?? null }))
        .filter((d) => d.used !== null && d.used > options.thresholdMb);
      checks.push({
        name: 'Residual GPU memory',
        ok: busy.length === 0,
        detail: busy.length
          ? busy.map((d) => `#${d.index}: ${Math.round(d.used!)} MiB in use`).join('; ') +
            ` (threshold ${options.thresholdMb} MiB)`
          : `under ${options.thresholdMb} MiB on every device`,
        hint: busy.length
          ? 'Another process holds GPU memory and will skew energy and memory figures: see nvidia-smi and stop it'
          : null,
        blocking: false,
      });
    }
    return checks;
  } finally {
    nvml.close();
  }
}

/** The prebuilt llama.cpp binary packages that node-llama-cpp would load on this platform. */
export function llamaBinaryPackages(
  platform: NodeJS.Platform = process.platform,
  arch: string = process.arch,
): { cpu: string; cuda: string[] } {
  const os = platform === 'darwin' ? 'mac' : platform === 'win32' ? 'win' : platform;
  const cpu = os === 'mac' && arch === 'arm64' ? 'mac-arm64-metal' : `${os}-${arch}`;
  return {
    cpu: `@node-llama-cpp/${cpu}`,
    cuda: [`@node-llama-cpp/${os}-${arch}-cuda`, `@node-llama-cpp/${os}-${arch}-cuda-ext`],
  };
}

/**
 * Where a package is installed as seen from `fromDir`, by Node's node_modules lookup. Reads the
 * directory, not `exports` (node-llama-cpp does not export its package.json).
 */
function packageDir(name: string, fromDir: string): string | null {
  const paths = createRequire(join(fromDir, 'noop.js')).resolve.paths(name) ?? [];
  for (const p of paths) {
    const dir = join(p, name);
    if (existsSync(join(dir, 'package.json'))) return dir;
  }
  return null;
}

/** Find the binary packages the way node-llama-cpp does: from its own directory. */
function llamaChecks(hasGpu: boolean): DoctorCheck[] {
  const engines = packageDir('@llem/engines', dirname(fileURLToPath(import.meta.url)));
  const llamaDir = engines ? packageDir('node-llama-cpp', realpathSync(engines)) : null;
  if (!llamaDir) {
    return [
      {
        name: 'llama.cpp binaries (CPU)',
        ok: false,
        detail: 'node-llama-cpp is not installed',
        hint: 'Run pnpm install in the llem checkout (the embedded engine comes from npm, prebuilt)',
        blocking: true,
      },
    ];
  }
  const from = realpathSync(llamaDir);
  const has = (name: string) => packageDir(name, from) !== null;
  const pkgs = llamaBinaryPackages();
  const cpuOk = has(pkgs.cpu);
  const cuda = pkgs.cuda.filter(has);
  return [
    {
      name: 'llama.cpp binaries (CPU)',
      ok: cpuOk,
      detail: cpuOk ? `${pkgs.cpu} installed` : `${pkgs.cpu} not installed`,
      hint: cpuOk
        ? null
        : `The embedded engine (and the quickstart) needs the prebuilt binary: pnpm install (optional dependencies must not be skipped); llem never builds llama.cpp from source`,
      blocking: !cpuOk,
    },
    {
      name: 'llama.cpp binaries (CUDA)',
      ok: cuda.length > 0,
      detail: cuda.length ? `${cuda.join(', ')} installed` : 'no CUDA build installed',
      hint: cuda.length
        ? null
        : hasGpu
          ? `GPU offload needs ${pkgs.cuda[0]}: reinstall with optional dependencies`
          : 'Only needed with an NVIDIA GPU; CPU studies use the CPU build',
      blocking: false,
    },
  ];
}

function raplCheck(root: string): DoctorCheck {
  const probe = probeRapl(root);
  return probe.available
    ? {
        name: 'RAPL (CPU energy)',
        ok: true,
        detail: `${probe.channels.length} CPU package domain${probe.channels.length === 1 ? '' : 's'} readable`,
        hint: null,
        blocking: false,
      }
    : {
        name: 'RAPL (CPU energy)',
        ok: false,
        detail: probe.reason,
        hint: 'CPU energy will be reported as not measured. On Linux: sudo chmod a+r /sys/class/powercap/intel-rapl:*/energy_uj (reset at reboot)',
        blocking: false,
      };
}

function outputCheck(dir: string): DoctorCheck {
  const probe = resolve(dir, `.llem-doctor-${randomUUID()}`);
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(probe, 'ok');
    rmSync(probe);
    return {
      name: 'Output directory writable',
      ok: true,
      detail: dir,
      hint: null,
      blocking: false,
    };
  } catch (error) {
    return {
      name: 'Output directory writable',
      ok: false,
      detail: `${dir}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      hint: 'Choose a writable directory with --output (llem run writes its study directories there)',
      blocking: true,
    };
  }
}

/**
 * Run every preflight check. Nothing here throws: a check that cannot run is a failed check.
 *
 * @example
 * const checks = runDoctorChecks({ env: process.env, outputDir: './results' });
 */
export function runDoctorChecks(options: {
  env: NodeJS.ProcessEnv;
  outputDir: string;
  library?: string;
  thresholdMb?: number;
  powercapRoot?: string;
  nodeVersion?: string;
}): DoctorCheck[] {
  const gpu = gpuChecks({
    env: options.env,
    thresholdMb: options.thresholdMb ?? 100,
    ...(options.library ? { library: options.library } : {}),
  });
  const hasGpu = gpu.some((c) => c.name === 'GPU devices' && c.ok);
  return [
    nodeCheck(options.nodeVersion ?? process.version),
    ...gpu,
    ...llamaChecks(hasGpu),
    raplCheck(options.powercapRoot ?? DEFAULT_POWERCAP_ROOT),
    outputCheck(options.outputDir),
  ];
}

/** An executable file at `path`, or `null`. */
function executable(path: string): string | null {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile() ? path : null;
  } catch {
    return null;
  }
}

/**
 * One check per distinct managed-server program of a study (`server.argv[0]`, as the run will
 * spawn it: a path resolved against `server.cwd`, else searched on `PATH`). Blocking: every run
 * of such a config would fail with `SERVER_SPAWN`.
 *
 * @example
 * const checks = managedServerChecks(study.plan, { env: process.env, baseDir: study.baseDir });
 */
export function managedServerChecks(
  plan: Pick<StudyPlan, 'configs'>,
  options: { env: NodeJS.ProcessEnv; baseDir: string },
): DoctorCheck[] {
  const seen = new Map<string, { program: string; cwd: string }>();
  for (const { config } of plan.configs) {
    if (config.engine !== 'openai' || !config.server) continue;
    const program = config.server.argv[0] as string;
    const cwd = resolve(options.baseDir, config.server.cwd ?? '.');
    seen.set(JSON.stringify([program, program.includes('/') ? cwd : '']), { program, cwd });
  }
  return [...seen.values()].map(({ program, cwd }) => {
    const found = program.includes('/')
      ? executable(resolve(cwd, program))
      : ((options.env.PATH ?? '')
          .split(delimiter)
          .filter(Boolean)
          .map((dir) => executable(join(dir, program)))
          .find((p) => p !== null) ?? null);
    return {
      name: `managed server ${program}`,
      ok: found !== null,
      detail:
        found !== null
          ? `${found}; llem starts it for each run`
          : program.includes('/')
            ? `${resolve(cwd, program)} is not an executable file`
            : 'not found on PATH',
      hint:
        found !== null
          ? null
          : 'Install it, or give server.argv[0] as a path (relative to server.cwd, else to the study file)',
      blocking: true,
    };
  });
}

/** The hint for each reason an `openai` server check fails (the check's `code`). */
const SERVER_HINTS: Record<string, string> = {
  UNREACHABLE:
    'Start the server (or fix openai.base_url: host, port and the /v1 prefix); a server still loading can take longer than --server-timeout-s',
  DNS: 'The host name in openai.base_url does not resolve: check its spelling and your DNS',
  TLS: 'The TLS handshake failed: http vs https in openai.base_url, or a certificate Node does not trust (NODE_EXTRA_CA_CERTS)',
  AUTH: 'Set openai.api_key_env to the variable that holds the key, and export it',
  API_KEY_MISSING: 'Export the variable named by openai.api_key_env before running',
  MODEL_NOT_FOUND: 'Set model (or openai.model) to a name the server serves: see its /v1/models',
  CONFIG: 'Fix the openai section of the study file',
};

/**
 * One check per distinct `openai` server of a study (base URL, model, endpoint and key
 * variable): reachable, authenticated, and serving the model, as a run's `load()` checks it,
 * waiting at most `timeoutS` for each. All are blocking: a run against them would fail.
 *
 * @example
 * const checks = await openaiServerChecks(plan, { env: process.env, timeoutS: 5 });
 */
export async function openaiServerChecks(
  plan: Pick<StudyPlan, 'configs'>,
  options: { env: NodeJS.ProcessEnv; timeoutS: number },
): Promise<DoctorCheck[]> {
  const seen = new Map<string, OpenaiExperimentConfig>();
  for (const { config } of plan.configs) {
    // A managed server does not exist before its run starts it: `managedServerChecks` instead.
    if (config.engine !== 'openai' || config.server) continue;
    const { base_url, model, endpoint, api_key_env } = config.openai;
    const key = JSON.stringify([base_url, model ?? config.model, endpoint, api_key_env ?? null]);
    if (!seen.has(key)) seen.set(key, config);
  }
  const checks: DoctorCheck[] = [];
  for (const config of seen.values()) {
    const check = await checkOpenAIServer(config, { timeoutS: options.timeoutS, env: options.env });
    const name = `openai server ${check.url}`;
    checks.push(
      check.ok
        ? {
            name,
            ok: true,
            detail: `answers in ${(check.elapsedMs / 1000).toFixed(1)} s; model ${check.model} ${
              check.modelListed === true
                ? 'listed'
                : check.modelListed === false
                  ? 'not listed, but accepted'
                  : 'accepted (no /models list)'
            }`,
            hint: null,
            blocking: true,
          }
        : {
            name,
            ok: false,
            // The name already says which server: the message need not repeat it.
            detail: `${check.code}: ${check.message
              .replace(/^openai engine: /, '')
              .replace(`${check.url}: `, '')
              .replace(`${check.url} `, '')}`,
            hint: SERVER_HINTS[check.code] ?? null,
            blocking: true,
          },
    );
  }
  return checks;
}

const perS = (v: number): string => `≈ ${Math.round(v).toLocaleString('en')} req/s`;
const lagMs = (v: number | null): string => (v === null ? '—' : `${v.toFixed(v < 10 ? 1 : 0)} ms`);

/**
 * `--client-limit` as a check: how fast this machine's `openai` client sends before it, not the
 * server, sets the pace. Never blocking (it says what rates to trust, not whether llem works).
 *
 * @example
 * clientLimitCheck(await measureClientLimit()).detail; // 'sends up to ≈ 9,650 req/s (…)'
 */
export function clientLimitCheck(limit: ClientLimit): DoctorCheck {
  const name = 'openai client limit';
  const tried = limit.steps.map((s) => s.targetRate.toLocaleString('en')).join(', ');
  if (limit.sustainableRate === null) {
    return {
      name,
      ok: false,
      detail: `kept none of the rates tried (${tried} req/s) against a local server; ${limit.cpus} CPUs`,
      hint: 'This machine is too busy to drive an open-loop load: results at any openai.request_rate will carry client-saturated. Stop other work, or run the client elsewhere',
      blocking: false,
    };
  }
  const lateness =
    limit.unsaturatedRate === null
      ? `client lateness p99 above ${limit.maxClientLagMs} ms at every rate (a busy machine)`
      : `lateness p99 within ${limit.maxClientLagMs} ms up to ${perS(limit.unsaturatedRate)}`;
  return {
    name,
    ok: true,
    // Every rate tried was kept: the limit is above the highest, not at it.
    detail: `sends ${limit.steps.at(-1)?.keptRate ? 'at least' : 'up to'} ${perS(limit.sustainableRate)} (target ${limit.sustainableTargetRate!.toLocaleString('en')}, client lag p99 ${lagMs(limit.sustainableLagP99Ms)}); ${lateness}; rates tried ${tried} req/s in ${limit.elapsedS.toFixed(1)} s, ${limit.cpus} CPUs. Runs above it measure the client (client-saturated)`,
    hint: null,
    blocking: false,
  };
}

/** `--client-limit-rates 500,1000`: positive numbers, else a usage error naming the flag. */
function parseRates(text: string): number[] {
  const rates = text.split(',').map((r) => Number(r.trim()));
  if (rates.length === 0 || rates.some((r) => !(r > 0) || !Number.isFinite(r))) {
    throw new UsageError(
      `--client-limit-rates must be a comma-separated list of positive request rates (req/s), e.g. 500,1000,2000; got ${text}`,
    );
  }
  return rates;
}

/** `llem doctor`: ✓/✗ per check with a hint per failure; exit 1 only when something blocks. */
export function doctorCommand(ctx: CliContext) {
  return defineCommand({
    command: 'doctor [study]',
    describe:
      'Check this machine for llem: Node, NVML and GPUs, llama.cpp binaries, RAPL, output dir; with a study file, also each openai server it uses; with --client-limit, the request rate the openai client sustains here',
    builder: (y) =>
      y
        .positional('study', {
          type: 'string',
          describe: 'A study file: check every openai.base_url it uses (reachable, key, model)',
        })
        .option('server-timeout-s', {
          type: 'number',
          default: 5,
          describe: 'How long to wait for each openai server to answer',
        })
        .option('output', {
          alias: 'o',
          type: 'string',
          default: './results',
          describe: 'Output directory to check for writing',
        })
        .option('json', { type: 'boolean', default: false, describe: 'Print the checks as JSON' })
        .option('library', { type: 'string', describe: 'Path of libnvidia-ml to load' })
        .option('threshold-mb', {
          type: 'number',
          default: 100,
          describe: 'Residual GPU memory above this is reported',
        })
        .option('client-limit', {
          type: 'boolean',
          default: false,
          describe:
            'Also measure how many requests/s the openai client sustains on this machine against a built-in local server (a few seconds)',
        })
        .option('client-limit-rates', {
          type: 'string',
          describe: 'Target rates (req/s) --client-limit tries, e.g. 500,1000,2000',
          hidden: true,
        })
        .option('powercap-root', {
          type: 'string',
          default: DEFAULT_POWERCAP_ROOT,
          hidden: true,
        }),
    handler: async (args) => {
      // A bad study file or flag is an error (exit 2) before anything is checked.
      const study = args.study ? await loadStudyFile(args.study, { cwd: ctx.cwd }) : null;
      const rates = args.clientLimitRates ? parseRates(args.clientLimitRates) : undefined;
      const checks = runDoctorChecks({
        env: ctx.env,
        outputDir: resolve(ctx.cwd, args.output),
        thresholdMb: args.thresholdMb,
        powercapRoot: args.powercapRoot,
        ...(args.library ? { library: args.library } : {}),
      });
      if (study) {
        if (!(args.serverTimeoutS > 0)) {
          throw new UsageError(`--server-timeout-s must be a positive number of seconds`);
        }
        checks.push(
          ...(await openaiServerChecks(study.plan, {
            env: ctx.env,
            timeoutS: args.serverTimeoutS,
          })),
          ...managedServerChecks(study.plan, { env: ctx.env, baseDir: study.baseDir }),
        );
      }
      let clientLimit: ClientLimit | null = null;
      if (args.clientLimit) {
        const measured = await measureClientLimit({
          ...(rates ? { rates } : {}),
          onStep: (step) => {
            if (args.json) return;
            const d = step.dispatch;
            ctx.stderr.write(
              `  client limit: target ${step.targetRate.toLocaleString('en')} req/s → sent ${Math.round(d.achievedSendRate ?? 0).toLocaleString('en')} req/s, client lag p99 ${lagMs(d.clientLagMs?.p99 ?? null)}${step.keptRate ? '' : ' (not kept)'}\n`,
            );
          },
          // A measurement that could not run is a failed check, not a crash of the doctor.
        }).catch((error: unknown) => (error instanceof Error ? error : new Error(String(error))));
        if (measured instanceof Error) {
          checks.push({
            name: 'openai client limit',
            ok: false,
            detail: `could not measure: ${measured.message}`,
            hint: 'The built-in local server did not answer as expected; run again with -v and report it',
            blocking: false,
          });
        } else {
          clientLimit = measured;
          checks.push(clientLimitCheck(measured));
        }
      }
      const blocking = checks.filter((c) => !c.ok && c.blocking);
      if (args.json) {
        ctx.stdout.write(
          `${JSON.stringify({ ok: blocking.length === 0, checks, ...(clientLimit ? { clientLimit } : {}) }, null, 2)}\n`,
        );
      } else {
        for (const c of checks) {
          ctx.stdout.write(`${c.ok ? '✓' : '✗'} ${c.name}: ${c.detail}\n`);
          if (!c.ok && c.hint) ctx.stdout.write(`    → ${c.hint}\n`);
        }
        const noGpu = checks.some((c) => c.name === 'NVML loadable' && !c.ok);
        ctx.stdout.write(
          blocking.length
            ? `\n${blocking.length} blocking problem${blocking.length === 1 ? '' : 's'}: fix ${blocking.map((c) => c.name).join(', ')} first.\n`
            : `\nReady${noGpu ? ' for CPU studies (no GPU: GPU energy and memory will be reported as not measured)' : ''}.\n`,
        );
      }
      if (blocking.length) ctx.exitCode = ExitCode.failure;
    },
  });
}
