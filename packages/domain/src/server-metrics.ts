import { z } from 'zod';
import { PrometheusTypeSchema } from './result';

/**
 * A managed server's scraped `/metrics`: one JSON object per line in `runs/<key>.metrics.jsonl`,
 * one line per scrape, in time order. Labelled Prometheus series do not fit the fixed columns of
 * the sampler timeseries, so they get a file of their own; `tMs` puts each scrape on the
 * timeseries' clock (its `t_ms` column of the `measure` window), so both can be drawn on one
 * axis. Written by the llem worker; read by the report.
 */
export const ServerMetricsScrapeSchema = z
  .object({
    /**
     * When the scrape was taken, in ms from the start of the measurement window, on the same
     * monotonic clock as the power samples (the midpoint of the request). The first scrape is
     * taken just before the window opens and the last just after it closes, so it may be
     * slightly negative or past the window's end.
     */
    tMs: z.number(),
    /** The `# TYPE` of each metric family in this scrape (`untyped` when none was declared). */
    types: z.record(z.string(), PrometheusTypeSchema),
    /**
     * Every sample as exposed: its name (histograms keep `_bucket`, `_sum`, `_count`), labels,
     * and value (`null` for NaN or ±Inf). Names llem does not know are kept.
     */
    samples: z.array(
      z
        .object({
          name: z.string().min(1),
          labels: z.record(z.string(), z.string()),
          value: z.number().nullable(),
        })
        .strict(),
    ),
  })
  .strict();
export type ServerMetricsScrape = z.infer<typeof ServerMetricsScrapeSchema>;

/** A line of a metrics file that is not a scrape. */
export interface InvalidMetricsLine {
  /** 1-based line number. */
  line: number;
  message: string;
}

/**
 * Parse a metrics file's text (JSON lines); blank lines are skipped, invalid ones reported.
 *
 * @example
 * const { scrapes, invalid } = parseServerMetrics(readFileSync(file, 'utf8'));
 */
export function parseServerMetrics(text: string): {
  scrapes: ServerMetricsScrape[];
  invalid: InvalidMetricsLine[];
} {
  const scrapes: ServerMetricsScrape[] = [];
  const invalid: InvalidMetricsLine[] = [];
  text.split('\n').forEach((raw, i) => {
    if (raw.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (error) {
      invalid.push({ line: i + 1, message: `not JSON: ${(error as Error).message}` });
      return;
    }
    const parsed = ServerMetricsScrapeSchema.safeParse(value);
    if (parsed.success) scrapes.push(parsed.data);
    else
      invalid.push({
        line: i + 1,
        message: parsed.error.issues
          .slice(0, 3)
          .map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`)
          .join('; '),
      });
  });
  return { scrapes, invalid };
}

/**
 * The series name as Prometheus writes it: `name{a="1",b="2"}` (labels sorted; no braces
 * without labels). Used as the key of a series in the result's metric summary.
 *
 * @example
 * seriesKey('vllm:num_requests_running', { model_name: 'm' }); // 'vllm:num_requests_running{model_name="m"}'
 */
export function seriesKey(name: string, labels: Readonly<Record<string, string>>): string {
  const keys = Object.keys(labels).sort();
  if (keys.length === 0) return name;
  const quote = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
  return `${name}{${keys.map((k) => `${k}="${quote(labels[k] as string)}"`).join(',')}}`;
}
