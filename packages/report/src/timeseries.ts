import { readFile } from 'node:fs/promises';
import { parseCsv } from './csv';

/** One sampler reading, normalised for plotting. */
export interface TimeseriesSample {
  /** Seconds since the first sample of the file. */
  tS: number;
  /** Device name as the sampler wrote it (`gpu0`, `0`…); `null` for a single unnamed stream. */
  device: string | null;
  powerW: number | null;
  temperatureC: number | null;
}

type Row = Record<string, unknown>;

/** Time column names, compared lower-cased without `_`/`-`: base name + optional unit. */
const TIME_KEY = /^(t|time|elapsed|timestamp|monotonic|mono)(ms|s)?$/;
const norm = (k: string): string => k.toLowerCase().replace(/[_\s-]/g, '');
const DEVICE_KEYS = /^(device|deviceindex|device_index|gpu|gpuindex|gpu_index|index)$/i;

function findKey(keys: readonly string[], test: (k: string) => boolean): string | null {
  return keys.find(test) ?? null;
}

function toNumber(v: unknown): number | null {
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v === 'string' && v.trim() !== '') {
    const n = Number(v);
    return Number.isFinite(n) ? n : null;
  }
  return null;
}

/**
 * Normalise sampler rows whatever their exact column names: the time column is the first named
 * like `t`, `tMs`, `elapsed_s`, `monotonic_ms`…; power the first column mentioning "power" (not
 * a limit); temperature the first mentioning "temp". Millisecond columns (by name) are converted
 * to seconds and every series starts at 0.
 */
export function normaliseSamples(allRows: readonly Row[]): TimeseriesSample[] {
  // @llem/measure writes the idle baseline and the measurement window into one file, told apart
  // by a `window` column; the trace shows the measurement window only.
  const rows = allRows.some((r) => r.window === 'measure')
    ? allRows.filter((r) => r.window === 'measure')
    : allRows;
  const first = rows[0];
  if (!first) return [];
  const keys = Object.keys(first);
  const tKey = findKey(keys, (k) => TIME_KEY.test(norm(k)));
  const pKey = findKey(keys, (k) => /power/i.test(k) && !/limit|cap|state/i.test(k));
  const cKey = findKey(keys, (k) => /temp/i.test(k));
  const dKey = findKey(keys, (k) => DEVICE_KEYS.test(k));
  if (!tKey || (!pKey && !cKey)) return [];
  // Explicit unit suffix wins; bare `timestamp`/`monotonic` are performance.now() ms, bare `t` s.
  const unit = TIME_KEY.exec(norm(tKey ?? ''))?.[2];
  const inMs = unit === 'ms' || (!unit && /^(timestamp|monotonic|mono)$/.test(norm(tKey ?? '')));
  const samples: TimeseriesSample[] = [];
  let t0: number | null = null;
  for (const row of rows) {
    const t = toNumber(row[tKey]);
    if (t === null) continue;
    t0 ??= t;
    samples.push({
      tS: (t - t0) / (inMs ? 1000 : 1),
      device: dKey && row[dKey] !== undefined && row[dKey] !== '' ? String(row[dKey]) : null,
      powerW: pKey ? toNumber(row[pKey]) : null,
      temperatureC: cKey ? toNumber(row[cKey]) : null,
    });
  }
  return samples;
}

/**
 * Read a sampler timeseries: CSV with a header row, or JSON lines (one object per sample).
 * Unreadable files give an empty list; a missing trace must not stop a report.
 *
 * @example
 * const samples = await readTimeseries('results/s/runs/abc_c0.timeseries.csv');
 */
export async function readTimeseries(file: string): Promise<TimeseriesSample[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return [];
  }
  const trimmed = text.trimStart();
  let rows: Row[];
  if (trimmed.startsWith('{')) {
    rows = trimmed.split('\n').flatMap((line) => {
      if (!line.trim()) return [];
      try {
        return [JSON.parse(line) as Row];
      } catch {
        return [];
      }
    });
  } else {
    const [header, ...body] = parseCsv(text);
    if (!header) return [];
    rows = body.map((cells) => Object.fromEntries(header.map((h, i) => [h.trim(), cells[i]])));
  }
  return normaliseSamples(rows);
}
