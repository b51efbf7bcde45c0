import { type ParseArgsConfig, parseArgs } from 'node:util';
import type { UsageMode } from './script';
import type { TestServerOptions } from './server';

/** The program's options: the server's, plus what only a process can do. */
export interface ProgramOptions {
  server: TestServerOptions;
  /** Wait this long (ms) before listening: connections are refused meanwhile (vLLM loading). */
  listenDelayMs: number;
  /** Exit code of a `--crash-after` crash. */
  crashExitCode: number;
  /** Write the process id to this file once listening (tests check the process by PID). */
  pidFile: string | undefined;
  /** Keep running on SIGTERM (only SIGKILL ends it): a server that does not stop when asked. */
  ignoreSigterm: boolean;
  /**
   * Pose as a GPU server for the fake NVML: write `fakeGpuMemoryMiB` (as bytes) to this file
   * once listening, the memory the fake GPU reports as used (`device.<i>.memory_used_file`), and
   * write 0 on exit unless `leakFakeGpuMemory` (a server that leaves memory behind).
   */
  fakeGpuMemoryFile: string | undefined;
  fakeGpuMemoryMiB: number;
  leakFakeGpuMemory: boolean;
  help: boolean;
}

/** A flag the program does not accept, or a value it cannot use. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly code = 'USAGE' as const;
}

const USAGE_MODES: readonly UsageMode[] = ['final', 'finish', 'in-content', 'continuous', 'none'];

/** Every flag: name → [parseArgs type, help text]. One table drives parsing and `--help`. */
const FLAGS = {
  port: ['string', 'port to listen on (default 0: a free one, printed on stdout)'],
  host: ['string', 'address to listen on (default 127.0.0.1)'],
  model: ['string', 'served model id; repeat for several (default test-model)'],
  'strict-model': ['boolean', 'answer 404 to a completion for a model not served (vLLM)'],
  'no-models-route': ['boolean', 'answer 404 on /v1/models'],
  'api-key-env': ['string', 'require "Authorization: Bearer $NAME" (401 otherwise)'],
  'max-tokens': ['string', 'output tokens when a request has no max_tokens (default 16)'],
  'output-tokens': ['string', 'stop each response after N tokens (an EOS) unless ignore_eos'],
  'tokens-per-chunk': ['string', 'tokens per SSE chunk after the first (default 1)'],
  usage: ['string', `where usage goes: ${USAGE_MODES.join(' | ')} (default final)`],
  logprobs: ['boolean', 'attach logprobs, one entry per token'],
  timings: ['boolean', "llama-server's timings block on the finish chunk"],
  'ttft-ms': ['string', 'time to first token besides prefill (ms, default 0)'],
  'prefill-ms-per-token': ['string', 'prefill time per uncached prompt token (ms, default 0)'],
  'pace-ms': ['string', 'decode time per output token (ms, absolute schedule, default 0)'],
  'batch-tick-ms': ['string', 'one shared decode step of this period for every stream'],
  'prompt-cache': ['boolean', 'cache prompt prefixes: repeated prompts skip their prefill'],
  'max-streams': ['string', 'at most N streams at once; later requests wait'],
  'close-after-responses': ['string', 'close each kept-alive connection after N responses'],
  'close-delay-ms': ['string', 'wait this long after the response before closing (default 0)'],
  'startup-ms': ['string', 'answer 503 "Loading model" for this long after start'],
  'listen-delay-ms': ['string', 'refuse connections for this long before listening'],
  'crash-after': ['string', 'exit abruptly when completion request N+1 arrives'],
  'crash-exit-code': ['string', 'exit code of that crash (default 1)'],
  'log-arrivals': ['string', 'append one JSON line per request (arrival time) to this file'],
  'pid-file': ['string', 'write the process id to this file once listening'],
  'ignore-sigterm': ['boolean', 'keep running on SIGTERM (only SIGKILL stops it)'],
  'fake-gpu-memory-file': [
    'string',
    'write the fake GPU memory in use (bytes) here once listening, 0 on exit (fake NVML)',
  ],
  'fake-gpu-memory-mib': ['string', 'that memory in MiB (default 1024)'],
  'leak-fake-gpu-memory': ['boolean', 'leave the fake GPU memory in use after exiting'],
  help: ['boolean', 'print this help'],
} as const satisfies Record<string, readonly ['string' | 'boolean', string]>;

type FlagName = keyof typeof FLAGS;

/** `--help` text, one line per flag. */
export function usageText(): string {
  const lines = Object.entries(FLAGS).map(
    ([name, [type, help]]) => `  --${name}${type === 'string' ? ' <value>' : ''}`.padEnd(38) + help,
  );
  return `Usage: llem-test-server [flags]\n\nAn OpenAI-compatible server for tests.\n\n${lines.join('\n')}\n`;
}

function number(flag: FlagName, value: string | undefined, min: number, integer = false) {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) {
    throw new UsageError(
      `--${flag}: expected ${integer ? 'an integer' : 'a number'} ≥ ${min}, got ${JSON.stringify(value)}`,
    );
  }
  return n;
}

/**
 * Parses the program's argv (without `node` and the script). Throws `UsageError` naming the flag
 * for an unknown flag or a bad value.
 *
 * @example
 * parseProgramArgs(['--pace-ms', '20', '--close-after-responses', '1']).server.paceMs; // 20
 */
export function parseProgramArgs(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>> = process.env,
): ProgramOptions {
  let values: Partial<Record<FlagName, string | boolean | string[]>>;
  try {
    const options: ParseArgsConfig['options'] = {};
    for (const [name, [type]] of Object.entries(FLAGS)) {
      options[name] = name === 'model' ? { type, multiple: true } : { type };
    }
    ({ values } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const str = (k: FlagName): string | undefined => values[k] as string | undefined;
  const flag = (k: FlagName): boolean => values[k] === true;
  const usage = str('usage');
  if (usage !== undefined && !USAGE_MODES.includes(usage as UsageMode)) {
    throw new UsageError(`--usage: expected one of ${USAGE_MODES.join(', ')}, got ${usage}`);
  }
  let apiKey: string | undefined;
  const keyEnv = str('api-key-env');
  if (keyEnv !== undefined) {
    apiKey = env[keyEnv];
    if (!apiKey) throw new UsageError(`--api-key-env: the variable ${keyEnv} is not set or empty`);
  }
  const server: TestServerOptions = {
    port: number('port', str('port'), 0, true) ?? 0,
    host: str('host') ?? '127.0.0.1',
    models: (values.model as string[] | undefined) ?? ['test-model'],
    strictModel: flag('strict-model'),
    noModelsRoute: flag('no-models-route'),
    ...(apiKey !== undefined ? { apiKey } : {}),
    defaultMaxTokens: number('max-tokens', str('max-tokens'), 1, true) ?? 16,
    outputTokens: number('output-tokens', str('output-tokens'), 1, true),
    tokensPerChunk: number('tokens-per-chunk', str('tokens-per-chunk'), 1, true) ?? 1,
    usage: (usage as UsageMode | undefined) ?? 'final',
    logprobs: flag('logprobs'),
    timings: flag('timings'),
    ttftMs: number('ttft-ms', str('ttft-ms'), 0) ?? 0,
    prefillMsPerToken: number('prefill-ms-per-token', str('prefill-ms-per-token'), 0) ?? 0,
    paceMs: number('pace-ms', str('pace-ms'), 0),
    batchTickMs: number('batch-tick-ms', str('batch-tick-ms'), 1),
    promptCache: flag('prompt-cache'),
    maxStreams: number('max-streams', str('max-streams'), 1, true),
    closeAfterResponses: number('close-after-responses', str('close-after-responses'), 1, true),
    closeDelayMs: number('close-delay-ms', str('close-delay-ms'), 0) ?? 0,
    startupMs: number('startup-ms', str('startup-ms'), 0),
    crashAfter: number('crash-after', str('crash-after'), 0, true),
    logArrivals: str('log-arrivals'),
  };
  // Leave unset fields out, so the server's own defaults apply and the object prints cleanly.
  for (const key of Object.keys(server) as (keyof TestServerOptions)[]) {
    if (server[key] === undefined) delete server[key];
  }
  return {
    server,
    listenDelayMs: number('listen-delay-ms', str('listen-delay-ms'), 0) ?? 0,
    crashExitCode: number('crash-exit-code', str('crash-exit-code'), 0, true) ?? 1,
    pidFile: str('pid-file'),
    ignoreSigterm: flag('ignore-sigterm'),
    fakeGpuMemoryFile: str('fake-gpu-memory-file'),
    fakeGpuMemoryMiB: number('fake-gpu-memory-mib', str('fake-gpu-memory-mib'), 0) ?? 1024,
    leakFakeGpuMemory: flag('leak-fake-gpu-memory'),
    help: flag('help'),
  };
}
