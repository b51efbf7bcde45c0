import { resolve } from 'node:path';
import type { ReportSettings } from '@llem/domain';
import { type ParetoAxis, parseParetoAxis, writeStudyReport } from '@llem/report';
import type { Logger } from '@llem/resilience';
import type { Argv } from 'yargs';
import { type CliContext, defineCommand } from '../context';
import { UsageError } from '../errors';

/**
 * `--carbon-g-per-kwh`, `--price-per-kwh`, `--currency` (also under the study file's snake_case
 * names): laid over the study's `report` section, field by field.
 */
export function priceOptions<T>(y: Argv<T>) {
  return y
    .option('carbon-g-per-kwh', {
      type: 'number',
      alias: 'carbon_g_per_kwh',
      describe: 'Grid carbon intensity (gCO2e/kWh): adds gCO2e per 1M output tokens',
    })
    .option('price-per-kwh', {
      type: 'number',
      alias: 'price_per_kwh',
      describe: 'Electricity price per kWh (in --currency): adds the cost per 1M output tokens',
    })
    .option('currency', { type: 'string', describe: 'What --price-per-kwh is in (e.g. EUR)' });
}

/** The price flags as the study file's `report` keys (absent when not given). */
export function pricesFrom(args: {
  carbonGPerKwh?: number | undefined;
  pricePerKwh?: number | undefined;
  currency?: string | undefined;
}): Partial<ReportSettings> {
  for (const [flag, value] of [
    ['--carbon-g-per-kwh', args.carbonGPerKwh],
    ['--price-per-kwh', args.pricePerKwh],
  ] as const) {
    if (value !== undefined && !Number.isFinite(value))
      throw new UsageError(`${flag}: expected a number ≥ 0 (e.g. ${flag} 0.25)`);
  }
  return {
    ...(args.carbonGPerKwh !== undefined ? { carbon_g_per_kwh: args.carbonGPerKwh } : {}),
    ...(args.pricePerKwh !== undefined ? { price_per_kwh: args.pricePerKwh } : {}),
    ...(args.currency !== undefined ? { currency: args.currency } : {}),
  };
}

/**
 * The CLI's logger with the library's info lines ("report: <path>") demoted to debug: the
 * command prints the paths on stdout itself, and stderr should not repeat them.
 */
export function quietInfo(ctx: CliContext): Logger {
  return {
    error: (m, ...meta) => ctx.logger.error(m, ...meta),
    warn: (m, ...meta) => ctx.logger.warn(m, ...meta),
    info: (m, ...meta) => ctx.logger.debug(m, ...meta),
    debug: (m, ...meta) => ctx.logger.debug(m, ...meta),
  };
}

/** Parse `--pareto-x/--pareto-y`, both or neither. */
export function paretoAxesFrom(
  x?: string,
  y?: string,
): readonly [ParetoAxis, ParetoAxis] | undefined {
  if (x === undefined && y === undefined) return undefined;
  if (x === undefined || y === undefined) {
    throw new UsageError(
      '--pareto-x and --pareto-y go together (e.g. --pareto-x ttftP95Ms --pareto-y outputTokensPerS:max)',
    );
  }
  return [parseParetoAxis(x), parseParetoAxis(y)];
}

/**
 * `llem report STUDY_DIR`: (re)build summary.csv, summary_by_config.csv, pareto.csv and
 * report.html from what is on disk.
 */
export function reportCommand(ctx: CliContext) {
  return defineCommand({
    command: 'report <study-dir>',
    describe: 'Rebuild a study’s summary CSVs and self-contained report.html',
    builder: (y) =>
      priceOptions(y)
        .positional('study-dir', {
          type: 'string',
          demandOption: true,
          describe: 'A study directory made by llem run',
        })
        .option('pareto-x', {
          type: 'string',
          describe: 'Pareto x axis: METRIC[:min|max] (default energyPerOutputTokenJ)',
        })
        .option('pareto-y', {
          type: 'string',
          describe: 'Pareto y axis: METRIC[:min|max] (default outputTokensPerS)',
        })
        .option('seed', { type: 'number', describe: 'Bootstrap seed (same seed, same intervals)' })
        .option('json', {
          type: 'boolean',
          default: false,
          describe: 'Print the written files as JSON',
        })
        .example('$0 report results/quickstart_20260101T000000Z', '')
        .example(
          '$0 report DIR --pareto-x ttftP95Ms --pareto-y outputTokensPerS',
          'another trade-off',
        )
        .example(
          '$0 report DIR --pareto-x steadyStateEnergyPerOutputTokenJ --pareto-y goodputShare',
          'openai engine: steady-state J/token against the share of requests meeting the SLOs',
        )
        .example(
          '$0 report DIR --carbon-g-per-kwh 350 --price-per-kwh 0.25 --currency EUR',
          'gCO2e and cost per 1M output tokens (overrides the study file’s report section)',
        ),
    handler: async (args) => {
      const paretoAxes = paretoAxesFrom(args.paretoX, args.paretoY);
      const report = await writeStudyReport(resolve(ctx.cwd, args.studyDir), {
        logger: quietInfo(ctx),
        ...(paretoAxes ? { paretoAxes } : {}),
        ...(args.seed !== undefined ? { seed: args.seed } : {}),
        prices: pricesFrom(args),
      });
      // Why the frontier is not the one asked for (energy not measured, or empty axes).
      if (report.paretoNote) ctx.stderr.write(`note: ${report.paretoNote}\n`);
      if (args.json) {
        ctx.stdout.write(
          `${JSON.stringify(
            {
              studyDir: report.study.dir,
              files: report.files,
              configs: report.summaries.length,
              runs: report.study.runs.length,
              frontier: report.pareto.points.filter((p) => p.onFrontier).map((p) => p.label),
              paretoNote: report.paretoNote,
              answer: {
                status: report.answer.status,
                best: report.answer.best?.label ?? null,
                runnerUp: report.answer.runnerUp?.label ?? null,
              },
              prices: report.prices,
            },
            null,
            2,
          )}\n`,
        );
        return;
      }
      ctx.stdout.write(`report: ${report.files.report}\n`);
      ctx.stdout.write(`summary: ${report.files.summary}\n`);
      ctx.stdout.write(`per config: ${report.files.summaryByConfig}\n`);
      ctx.stdout.write(`pareto: ${report.files.pareto}\n`);
    },
  });
}
