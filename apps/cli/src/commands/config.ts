import {
  type ConfigIssue,
  formatConfigIssues,
  planStudy,
  QUICKSTART_FILE,
  quickstartStudy,
  type StudyPlan,
  studyJsonSchema,
} from '@llem/domain';
import { checkDatasets, type StudyDataset } from '@llem/measure';
import { loadStudyFile } from '@llem/study';
import { stringify } from 'yaml';
import type { Argv } from 'yargs';
import { type CliContext, defineCommand, type GlobalArgs } from '../context';
import { datasetsJson, describeDatasets } from '../datasets';

/** The study from FILE, or the embedded quickstart when no FILE is given. */
async function resolvePlan(
  ctx: CliContext,
  file: string | undefined,
): Promise<{ file: string; plan: StudyPlan; baseDir: string }> {
  if (file === undefined)
    return {
      file: QUICKSTART_FILE,
      plan: planStudy(quickstartStudy, { file: QUICKSTART_FILE }),
      baseDir: ctx.cwd,
    };
  const loaded = await loadStudyFile(file, { cwd: ctx.cwd });
  return { file, plan: loaded.plan, baseDir: loaded.baseDir };
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function issueLine(issue: ConfigIssue): string {
  // Reuse the library's wording, minus the file name (the header already names it).
  return formatConfigIssues('', [issue]).replace(/^: /, '');
}

/** The human summary `llem config validate` prints. */
export function describePlan(file: string, plan: StudyPlan): string {
  const { execution } = plan;
  const lines = [
    `${file}: study "${plan.name}" is valid`,
    `${plural(plan.configs.length, 'config')} × ${plural(execution.cycles, 'cycle')} = ${plural(plan.runs.length, 'run')} (order: ${execution.order}${execution.order === 'shuffled' ? `, seed ${execution.shuffle_seed}` : ''})`,
    `design hash ${plan.designHash}`,
    '',
  ];
  const width = Math.max(5, ...plan.configs.map((c) => c.label.length));
  lines.push(`  ${'#'.padStart(3)}  ${'label'.padEnd(width)}  config hash`);
  for (const config of plan.configs) {
    lines.push(
      `  ${String(config.index + 1).padStart(3)}  ${config.label.padEnd(width)}  ${config.configHash}`,
    );
  }
  if (plan.skipped.length > 0) {
    lines.push('', `skipped ${plural(plan.skipped.length, 'generated config')} (not run):`);
    for (const skipped of plan.skipped) {
      lines.push(`  ${skipped.label}`);
      for (const reason of skipped.reasons) lines.push(`    ${issueLine(reason)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** The JSON form of `llem config validate --json`. */
function planSummary(file: string, plan: StudyPlan, datasets: readonly StudyDataset[]) {
  return {
    file,
    name: plan.name,
    designHash: plan.designHash,
    cycles: plan.execution.cycles,
    order: plan.execution.order,
    runCount: plan.runs.length,
    configs: plan.configs.map(({ index, label, configHash, copy }) => ({
      index,
      label,
      configHash,
      copy,
    })),
    skipped: plan.skipped.map(({ label, reasons }) => ({ label, reasons })),
    datasets: datasetsJson(datasets),
  };
}

/** What `llem config show` prints: the study with every default applied. */
function resolvedStudy(plan: StudyPlan) {
  return {
    name: plan.name,
    designHash: plan.designHash,
    execution: plan.execution,
    configs: plan.configs.map(({ label, configHash, copy, config }) => ({
      label,
      configHash,
      copy,
      config,
    })),
    skipped: plan.skipped.map(({ label, reasons }) => ({ label, reasons })),
    runs: plan.runs.map(({ key, configIndex, cycle }) => ({ key, configIndex, cycle })),
  };
}

/** `validate` and `show` take the same arguments: a study file and `--json`. */
const fileAndJsonOptions = (yargs: Argv<GlobalArgs>) =>
  yargs
    .positional('file', {
      type: 'string',
      description: 'Study file (.yaml, .yml or .json)',
    })
    .option('json', {
      type: 'boolean',
      default: false,
      description: 'Print JSON instead of text',
    });

/**
 * `llem config validate FILE`, `llem config show [FILE]`, `llem config schema`. Config errors are
 * thrown as `ConfigError`; `errors.ts` prints them (every issue with file and field path) and
 * exits 2.
 */
export function configCommand(ctx: CliContext) {
  return defineCommand({
    command: 'config',
    describe: 'Check, show and describe study files',
    builder: (yargs) =>
      yargs
        .command({
          command: 'validate <file>',
          describe:
            'Check a study file and its dataset files, and print its expanded plan (configs × cycles = runs)',
          builder: fileAndJsonOptions,
          handler: async (args) => {
            const { file, plan, baseDir } = await resolvePlan(ctx, args.file);
            // Dataset files are read too: bad data or no usable request is an error (exit 2).
            const datasets = await checkDatasets(plan.configs, { file, cwd: baseDir });
            ctx.stdout.write(
              args.json
                ? `${JSON.stringify(planSummary(file, plan, datasets), null, 2)}\n`
                : `${describePlan(file, plan)}${datasets.length > 0 ? `\n${describeDatasets(datasets, plan.configs.length)}` : ''}`,
            );
          },
        })
        .command({
          command: 'show [file]',
          describe:
            'Print the resolved study, every default applied (no FILE: the built-in quickstart)',
          builder: fileAndJsonOptions,
          handler: async (args) => {
            const { plan } = await resolvePlan(ctx, args.file);
            const study = resolvedStudy(plan);
            ctx.stdout.write(
              args.json
                ? `${JSON.stringify(study, null, 2)}\n`
                : stringify(study, { lineWidth: 0 }),
            );
          },
        })
        .command({
          command: 'schema',
          describe: 'Print the JSON Schema of study files (for editors)',
          handler: () => {
            ctx.stdout.write(`${JSON.stringify(studyJsonSchema(), null, 2)}\n`);
          },
        })
        .demandCommand(1, 'Name a config command: validate, show or schema.'),
    handler: () => undefined,
  });
}
