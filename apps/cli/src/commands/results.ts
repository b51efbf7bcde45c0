import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import {
  aggregateStudy,
  answerStudy,
  type ConfigComparison,
  compareConfigs,
  compareStudies,
  configCsv,
  describeInputChange,
  describeStudyStatus,
  inputChanges,
  listStudies,
  loadStudy,
  metricCatalogue,
  paretoFrontier,
  renderAnswer,
  renderComparison,
  renderConfigTable,
  renderStudyList,
  renderSweepTable,
  resolveEnergyPrices,
  smallSampleNote,
  sweepCurves,
} from '@llem/report';
import { type CliContext, defineCommand } from '../context';
import { UsageError } from '../errors';
import { paretoAxesFrom, priceOptions, pricesFrom, quietInfo } from './report';

const json = (ctx: CliContext, value: unknown) =>
  ctx.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
/** Bold headers only for a human at a terminal; pipes get the same text without escapes. */
const color = (ctx: CliContext) => Boolean(ctx.stdout.isTTY) && !ctx.env.NO_COLOR;

async function isDir(path: string): Promise<boolean> {
  return (await stat(path).catch(() => null))?.isDirectory() ?? false;
}

function listCommand(ctx: CliContext) {
  return defineCommand({
    command: 'list [dir]',
    describe: 'List the studies in a results directory with status and counts',
    builder: (y) =>
      y
        .positional('dir', { type: 'string', default: './results', describe: 'Results directory' })
        .option('json', { type: 'boolean', default: false, describe: 'The list as JSON' }),
    handler: async (args) => {
      const dir = resolve(ctx.cwd, args.dir);
      if (!(await isDir(dir)))
        throw new UsageError(
          `${args.dir}: no such directory (llem run writes studies to ./results by default)`,
        );
      const studies = await listStudies(dir);
      if (args.json) return void json(ctx, { dir, studies });
      ctx.stdout.write(renderStudyList(studies, { color: color(ctx) }));
    },
  });
}

function showCommand(ctx: CliContext) {
  return defineCommand({
    command: 'show <study-dir>',
    describe:
      'Print the answer (lowest J/token meeting the SLOs) and the per-config table (mean and 95% CI across cycles) of a study',
    builder: (y) =>
      priceOptions(y)
        .positional('study-dir', {
          type: 'string',
          demandOption: true,
          describe: 'A study directory made by llem run',
        })
        .option('json', {
          type: 'boolean',
          default: false,
          describe: 'Per-config statistics as JSON',
        })
        .option('csv', {
          type: 'boolean',
          default: false,
          describe: 'The summary_by_config.csv table',
        })
        .option('pareto-x', { type: 'string', describe: 'Pareto x axis: METRIC[:min|max]' })
        .option('pareto-y', {
          type: 'string',
          describe: 'Pareto y axis: METRIC[:min|max]',
        })
        .example(
          '$0 results show DIR --pareto-x steadyStateEnergyPerOutputTokenJ --pareto-y goodputShare',
          'openai engine: steady-state J/token against goodput',
        )
        .example(
          '$0 results show DIR --carbon-g-per-kwh 350 --price-per-kwh 0.25 --currency EUR',
          'gCO2e and cost per 1M output tokens',
        ),
    handler: async (args) => {
      if (args.json && args.csv) throw new UsageError('--json and --csv are exclusive: pick one');
      const axes = paretoAxesFrom(args.paretoX, args.paretoY);
      const flags = pricesFrom(args);
      const study = await loadStudy(resolve(ctx.cwd, args.studyDir), {
        logger: quietInfo(ctx),
      });
      const prices = resolveEnergyPrices(study.reportSettings, flags);
      const summaries = aggregateStudy(study, { prices });
      const pareto = paretoFrontier(summaries, axes);
      if (args.csv) return void ctx.stdout.write(configCsv(summaries, { prices }));
      const answer = answerStudy(study, { prices });
      const sweeps = sweepCurves(study.runs);
      const changes = inputChanges(study.runs);
      if (args.json) {
        return void json(ctx, {
          study: {
            dir: study.dir,
            name: study.manifest.studyName,
            designHash: study.manifest.designHash,
            status: study.manifest.status,
            statusText: describeStudyStatus(study),
            counts: study.manifest.counts,
            skipped: study.skipped,
          },
          metrics: metricCatalogue(),
          answer,
          prices,
          ...(sweeps.length > 0 ? { sweeps } : {}),
          configs: summaries,
          pareto,
          smallSampleNote: smallSampleNote(summaries),
          inputChanges: changes,
        });
      }
      const m = study.manifest;
      ctx.stdout.write(
        `${m.studyName} (${describeStudyStatus(study)}; design ${m.designHash}): ${m.counts.completed} completed, ${m.counts.failed} failed, ${m.counts.running > 0 ? `${m.counts.running} running, ` : ''}${m.counts.pending} not run, ${study.skipped.length} skipped configs\n\n`,
      );
      // On a terminal, fit its width (dropping trailing metrics, named below the table); a pipe
      // always gets every column.
      const columns = ctx.stdout.isTTY ? (ctx.stdout as { columns?: number }).columns : undefined;
      ctx.stdout.write(`${renderAnswer(answer)}\n`);
      ctx.stdout.write(renderSweepTable(sweeps, { color: color(ctx) }));
      ctx.stdout.write(
        renderConfigTable(summaries, {
          pareto,
          prices,
          color: color(ctx),
          ...(columns ? { maxWidth: columns } : {}),
        }),
      );
      for (const change of changes) ctx.stdout.write(`Warning: ${describeInputChange(change)}.\n`);
    },
  });
}

function compareCommand(ctx: CliContext) {
  return defineCommand({
    command: 'compare <a> <b>',
    describe:
      'Compare two studies (configs paired by hash) or, with --in, two configs of a study: ratio B/A with a bootstrap 95% CI',
    builder: (y) =>
      y
        .positional('a', {
          type: 'string',
          demandOption: true,
          describe: 'Study dir, or a config (label, hash prefix, number) with --in',
        })
        .positional('b', { type: 'string', demandOption: true })
        .option('in', { type: 'string', describe: 'Compare two configs of this study directory' })
        .option('json', { type: 'boolean', default: false, describe: 'The comparison as JSON' })
        .example('$0 results compare results/before_… results/after_…', 'same configs, two studies')
        .example('$0 results compare 1 3 --in results/sweep_…', 'config 3 against config 1'),
    handler: async (args) => {
      let pairs: ConfigComparison[];
      let onlyInA: string[] = [];
      let onlyInB: string[] = [];
      if (args.in) {
        const study = await loadStudy(resolve(ctx.cwd, args.in));
        pairs = [compareConfigs(study, args.a, args.b)];
      } else {
        const [a, b] = [resolve(ctx.cwd, args.a), resolve(ctx.cwd, args.b)];
        for (const [arg, dir] of [
          [args.a, a],
          [args.b, b],
        ] as const) {
          if (!(await isDir(dir))) {
            throw new UsageError(
              `${arg}: no such study directory (to compare two configs of one study, add --in STUDY_DIR)`,
            );
          }
        }
        const [sa, sb] = await Promise.all([loadStudy(a), loadStudy(b)]);
        ({ pairs, onlyInA, onlyInB } = compareStudies(sa, sb));
      }
      if (args.json) return void json(ctx, { comparisons: pairs, onlyInA, onlyInB });
      ctx.stdout.write(pairs.map((p) => renderComparison(p, { color: color(ctx) })).join('\n'));
      ctx.stdout.write(
        'B/A: ratio of the means; 95% CI by bootstrap (A and B resampled independently, seeded). "B better/worse" only when the CI excludes 1 and each side has at least 5 cycles.\n',
      );
      if (onlyInA.length) ctx.stdout.write(`Only in A: ${onlyInA.join(', ')}\n`);
      if (onlyInB.length) ctx.stdout.write(`Only in B: ${onlyInB.join(', ')}\n`);
    },
  });
}

/** `llem results list|show|compare`. */
export function resultsCommand(ctx: CliContext) {
  return defineCommand({
    command: 'results',
    describe: 'List, show and compare study results',
    builder: (y) =>
      y
        .command(listCommand(ctx))
        .command(showCommand(ctx))
        .command(compareCommand(ctx))
        .demandCommand(1, 'Name a results command: list, show or compare.'),
    handler: () => undefined,
  });
}
