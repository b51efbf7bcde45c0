import type { StudyDataset } from '@llem/measure';

/**
 * The dataset lines `llem config validate` and `llem run --dry-run` print: one per dataset file
 * with what it makes (requests, skipped entries, a trace's span) and, in a study of several
 * configs, which use it. Empty for synthetic prompts only.
 *
 * @example
 * describeDatasets(datasets, plan.configs.length);
 * // 'Datasets:\n  sharegpt /data/sg.json: 812 requests (1000 entries, …)\n'
 */
export function describeDatasets(datasets: readonly StudyDataset[], configCount: number): string {
  if (datasets.length === 0) return '';
  const lines = datasets.map(({ labels, summary }) => {
    const which =
      configCount <= 1
        ? ''
        : labels.length === configCount
          ? ' [every config]'
          : ` [${labels.join(', ')}]`;
    return `  ${summary.description}${which}`;
  });
  return `Datasets:\n${lines.join('\n')}\n`;
}

/** The datasets as data, for `--json`. */
export function datasetsJson(datasets: readonly StudyDataset[]) {
  return datasets.map(({ labels, summary }) => ({ labels, ...summary }));
}
