import type { PrometheusType } from '@llem/domain';

/**
 * A parser for the Prometheus text exposition format 0.0.4 (what vLLM, SGLang, TGI and
 * llama-server serve on `/metrics`), written here rather than taken from npm: the one parser
 * there, `parse-prometheus-text-format` 1.1.1, merges the buckets of every label set of a
 * histogram into one map and drops labelled `_sum`/`_count` lines, and every vLLM histogram is
 * labelled (`model_name`), so the mean TTFT or E2E the server saw over the window would be lost.
 * This one keeps every sample as exposed (name, labels, value) plus each family's `# TYPE`.
 */

/** One sample line: `name{label="value",…} value [timestamp]`. */
export interface PrometheusSample {
  name: string;
  labels: Record<string, string>;
  /** `null` for `NaN`, `+Inf`, `-Inf` (JSON has no such numbers). */
  value: number | null;
}

/** A scrape: every sample, and the declared type of each family (`untyped` when none). */
export interface PrometheusText {
  types: Record<string, PrometheusType>;
  samples: PrometheusSample[];
}

const TYPES: ReadonlySet<string> = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);
const SUFFIXES = ['_bucket', '_count', '_sum'] as const;
const NAME = /^[A-Za-z_:][A-Za-z0-9_:]*/;

/**
 * Parse Prometheus text. Malformed sample lines are skipped and counted (a server's one bad
 * line must not lose the scrape); comments other than `# TYPE` are ignored.
 *
 * @example
 * parsePrometheusText('# TYPE up gauge\nup{job="a"} 1\n');
 * // { types: { up: 'gauge' }, samples: [{ name: 'up', labels: { job: 'a' }, value: 1 }], skipped: 0 }
 */
export function parsePrometheusText(text: string): PrometheusText & { skipped: number } {
  const types: Record<string, PrometheusType> = {};
  const samples: PrometheusSample[] = [];
  let skipped = 0;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^#\s*TYPE\s+(\S+)\s+(\S+)/.exec(line);
      if (m && TYPES.has(m[2]!.toLowerCase())) types[m[1]!] = m[2]!.toLowerCase() as PrometheusType;
      continue;
    }
    const sample = parseSampleLine(line);
    if (sample) samples.push(sample);
    else skipped++;
  }
  // A family without `# TYPE` is untyped; a histogram's `_bucket`/`_sum`/`_count` belong to it.
  for (const s of samples) if (familyOf(s.name, types) === null) types[s.name] = 'untyped';
  return { types, samples, skipped };
}

/**
 * The family a sample name belongs to: itself when typed, else its name without a
 * histogram/summary suffix when that family is declared; `null` when neither is known.
 *
 * @example
 * familyOf('ttft_bucket', { ttft: 'histogram' }); // 'ttft'
 */
export function familyOf(
  name: string,
  types: Readonly<Record<string, PrometheusType>>,
): string | null {
  if (types[name] !== undefined) return name;
  for (const suffix of SUFFIXES) {
    if (!name.endsWith(suffix)) continue;
    const base = name.slice(0, -suffix.length);
    const type = types[base];
    if (type === 'histogram' || (type === 'summary' && suffix !== '_bucket')) return base;
  }
  return null;
}

function parseValue(text: string): number | null | undefined {
  if (text === 'NaN' || text === '+Inf' || text === '-Inf' || text === 'Inf') return null;
  const n = Number(text);
  if (text === '' || Number.isNaN(n)) return undefined;
  return Number.isFinite(n) ? n : null;
}

function parseSampleLine(line: string): PrometheusSample | null {
  const name = NAME.exec(line)?.[0];
  if (!name) return null;
  let i = name.length;
  const labels: Record<string, string> = {};
  if (line[i] === '{') {
    i++;
    for (;;) {
      while (line[i] === ' ' || line[i] === ',') i++;
      if (line[i] === '}') {
        i++;
        break;
      }
      const key = /^[A-Za-z_][A-Za-z0-9_]*/.exec(line.slice(i))?.[0];
      if (!key) return null;
      i += key.length;
      while (line[i] === ' ') i++;
      if (line[i] !== '=') return null;
      i++;
      while (line[i] === ' ') i++;
      if (line[i] !== '"') return null;
      i++;
      let value = '';
      for (;;) {
        const c = line[i];
        if (c === undefined) return null;
        i++;
        if (c === '"') break;
        if (c === '\\') {
          const next = line[i++];
          value += next === 'n' ? '\n' : next === undefined ? '\\' : next;
        } else value += c;
      }
      labels[key] = value;
    }
  }
  const [valueText] = line.slice(i).trim().split(/\s+/);
  const value = parseValue(valueText ?? '');
  return value === undefined ? null : { name, labels, value };
}
