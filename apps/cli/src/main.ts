import { createRequire } from 'node:module';
import { basename, isAbsolute, relative } from 'node:path';
import { didYouMean } from '@llem/domain';
import type yargsFactory from 'yargs';
import type { Argv } from 'yargs';
import { configCommand } from './commands/config';
import { doctorCommand } from './commands/doctor';
import { gpuCommand } from './commands/gpu';
import { reportCommand } from './commands/report';
import { resultsCommand } from './commands/results';
import { runCommand } from './commands/run';
import { slurmTaskCommand } from './commands/slurm-task';
import type { CliContext, GlobalArgs } from './context';
import { ExitCode, exitCodeFor, formatError, UsageError } from './errors';
import { createCliLogger, levelFromVerbosity } from './logger';
import { cliVersion } from './version';

export interface MainOptions {
  stdout?: CliContext['stdout'];
  stderr?: CliContext['stderr'];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** How the user started llem, for messages (see `invocationOf`). Default `llem`. */
  invocation?: string;
}

/**
 * How the user started llem, so that a command printed in a message works when pasted: `llem`
 * when run by that name (on the PATH), `pnpm llem` (or `npm run llem --`) through the
 * repository's script, else `node <path of bin.js>` relative to the user's directory.
 *
 * @example
 * invocationOf({ npm_lifecycle_event: 'llem', npm_config_user_agent: 'pnpm/10.3.0 …' }, '/r/apps/cli/dist/bin.js', '/r'); // 'pnpm llem'
 */
export function invocationOf(
  env: NodeJS.ProcessEnv,
  script: string | undefined,
  cwd: string,
): string {
  if (env.npm_lifecycle_event === 'llem') {
    return env.npm_config_user_agent?.startsWith('npm/') ? 'npm run llem --' : 'pnpm llem';
  }
  if (!script || basename(script) === 'llem') return 'llem';
  const rel = relative(cwd, script);
  return `node ${rel.startsWith('..') || isAbsolute(rel) ? script : rel}`;
}

/**
 * The user's directory: where they typed the command. Through a package script (`pnpm llem`)
 * the process runs in the repository root, and the user's directory is `INIT_CWD`.
 */
export function userDirectory(env: NodeJS.ProcessEnv, processCwd: string): string {
  return env.npm_lifecycle_event === 'llem' && env.INIT_CWD ? env.INIT_CWD : processCwd;
}

// yargs' CommonJS build: its ESM build ships a cliui that hard-wraps help text mid-word
// ("machine-readable ou / tput"); the CommonJS one wraps on word boundaries.
// (Under vitest the require is intercepted and yields an ES-module namespace instead.)
const yargsModule = createRequire(import.meta.url)('yargs') as
  | typeof yargsFactory
  | { default: typeof yargsFactory };
const yargs = typeof yargsModule === 'function' ? yargsModule : yargsModule.default;

/** Build the yargs parser. Tests call this with argv arrays; nothing is spawned. */
export function buildCli(argv: string[], ctx: CliContext): Argv<GlobalArgs> {
  const cli = yargs(argv)
    .scriptName('llem')
    .usage('llem: what does this LLM deployment choice cost?\n\nUsage: $0 <command> [options]')
    .option('verbose', {
      alias: 'v',
      type: 'count',
      description: 'More log output (-v debug, -vv everything); or set LLEM_LOG_LEVEL',
    })
    .option('quiet', {
      alias: 'q',
      type: 'boolean',
      default: false,
      description: 'Only errors on stderr, no progress',
    })
    .middleware((args) => {
      ctx.logger.level = levelFromVerbosity(args.verbose ?? 0, args.quiet ?? false, ctx.env);
    })
    .version(cliVersion)
    .help()
    .alias('help', 'h')
    .strict()
    .recommendCommands()
    .demandCommand(1, 'Name a command (see llem --help).')
    .wrap(Math.min(110, process.stdout.columns ?? 100))
    .exitProcess(false)
    .fail((message, error, instance) => {
      throw error ?? new UsageFailure(withFlagSuggestions(message, instance));
    });
  // One line per command: each is typed by its own builder.
  return cli
    .command(configCommand(ctx))
    .command(gpuCommand(ctx))
    .command(runCommand(ctx))
    .command(reportCommand(ctx))
    .command(resultsCommand(ctx))
    .command(doctorCommand(ctx))
    .command(slurmTaskCommand(ctx));
}

/**
 * yargs says `Unknown argument: dryrun`; add the flag that was probably meant (`--dry-run`), from
 * the options the failing command describes (kebab-case names only, not yargs' camelCase aliases).
 */
function withFlagSuggestions(message: string, instance: unknown): string {
  const match = /^Unknown arguments?: (.+)$/.exec(message);
  // yargs 17 passes its usage object: `getDescriptions()` holds the described options in scope.
  const keys = (
    instance as { getDescriptions?: () => Record<string, unknown> } | undefined
  )?.getDescriptions?.();
  if (!match?.[1] || !keys) return message;
  const known = Object.keys(keys).filter((k) => /^[a-z][a-z0-9-]*$/.test(k));
  const names = match[1].split(', ');
  const hints = names
    .map((name) => [name, didYouMean(name, known)] as const)
    .filter((pair): pair is readonly [string, string] => pair[1] !== undefined)
    .map(([name, hint]) =>
      names.length === 1 ? `did you mean --${hint}?` : `${name}: did you mean --${hint}?`,
    );
  return hints.length ? `${message} (${hints.join('; ')})` : message;
}

/** yargs' own validation failure (unknown flag, missing argument): printed after the help. */
class UsageFailure extends UsageError {}

/** Run the CLI and resolve to its exit code. Never calls process.exit. */
export async function main(argv: string[], options: MainOptions = {}): Promise<number> {
  const env = options.env ?? process.env;
  const verbose =
    argv.filter((a) => a === '-v' || a === '--verbose').length +
    argv.filter((a) => a === '-vv').length * 2;
  const stderr = options.stderr ?? process.stderr;
  const ctx: CliContext = {
    logger: createCliLogger(
      levelFromVerbosity(verbose, argv.includes('--quiet') || argv.includes('-q'), env),
      stderr,
    ),
    stdout: options.stdout ?? process.stdout,
    stderr,
    env,
    cwd: options.cwd ?? process.cwd(),
    exitCode: ExitCode.ok,
    invocation: options.invocation ?? 'llem',
  };
  const cli = buildCli(argv, ctx);
  try {
    let helpOrVersion = '';
    await cli.parseAsync(argv, {}, (_err, _args, output) => {
      helpOrVersion = output;
    });
    if (helpOrVersion) ctx.stdout.write(`${helpOrVersion}\n`);
    return ctx.exitCode;
  } catch (error) {
    const code = exitCodeFor(error);
    if (error instanceof UsageFailure) {
      ctx.stderr.write(`${await cli.getHelp()}\n\nllem: ${error.message}\n`);
    } else {
      ctx.stderr.write(`${formatError(error)}\n`);
    }
    return code;
  }
}
