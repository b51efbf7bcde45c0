import { createHash } from 'node:crypto';
import type { ExperimentConfig } from './config';
import { parseExperimentConfig } from './validate';

/**
 * Fields of an experiment config that do not change what is measured, so two configs that
 * differ only in them are the same measurement (same hash, comparable across studies):
 *
 * - `name`: a human label for the experiment.
 * - `decoder.preset`: the preset is resolved into the concrete sampling values
 *   (temperature, top_k, top_p, min_p, repeat_penalty, seed), which are hashed; a preset plus
 *   overrides that lands on the same values is the same measurement.
 * - `openai.api_key_env`: which environment variable holds the key does not change the
 *   server's behaviour (and the key itself never appears in a config).
 * - `openai.ready_timeout_s`: how long the client waits for a server to come up; the
 *   measurement starts only once it answers.
 * - `openai.max_client_lag_ms`: the threshold above which a result says the client could not
 *   keep its schedule (`client-saturated`); it judges a measurement, it does not change it.
 * - `server.cwd`, `server.stop_grace_s`, `server.ready`, `server.metrics`: where a managed
 *   server starts, how it is stopped, how llem sees that it is ready and how often its
 *   `/metrics` are scraped change nothing the server does while it is measured. Its `argv`,
 *   `args` and `env` are hashed (templates such as `{port}` as written).
 *
 * Paths are dotted; every other field, including ones whose default was applied, is hashed.
 * Study-level settings (`name`, `sweep`, `experiments`, `execution`, output directory, log
 * level) are not part of an experiment config at all.
 */
export const HASH_EXCLUDED_FIELDS: readonly string[] = [
  'name',
  'decoder.preset',
  'openai.api_key_env',
  'openai.ready_timeout_s',
  'openai.max_client_lag_ms',
  'server.cwd',
  'server.stop_grace_s',
  'server.ready',
  'server.metrics',
];

/**
 * JSON with object keys sorted at every depth and no whitespace: the same value always gives
 * the same text, whatever order its keys were written in. `undefined` members are left out, as
 * `JSON.stringify` does.
 *
 * @example
 * canonicalJson({ b: 1, a: [{ d: 2, c: 3 }] }); // '{"a":[{"c":3,"d":2}],"b":1}'
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const member = (value as Record<string, unknown>)[key];
      if (member !== undefined) out[key] = sortKeys(member);
    }
    return out;
  }
  return value;
}

function sha256Hex16(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

function withoutExcluded(config: Record<string, unknown>): Record<string, unknown> {
  const copy = structuredClone(config);
  for (const dotted of HASH_EXCLUDED_FIELDS) {
    const segments = dotted.split('.');
    let parent: unknown = copy;
    for (const segment of segments.slice(0, -1)) {
      parent =
        parent !== null && typeof parent === 'object'
          ? (parent as Record<string, unknown>)[segment]
          : undefined;
    }
    if (parent !== null && typeof parent === 'object') {
      delete (parent as Record<string, unknown>)[segments[segments.length - 1] as string];
    }
  }
  return copy;
}

/**
 * The measurement-config hash: SHA-256 of the canonical JSON of the config with every default
 * applied and `HASH_EXCLUDED_FIELDS` removed, first 16 hex characters. The config is parsed
 * first, so a raw input and its parsed form hash alike; an invalid one throws `ConfigError`.
 *
 * @example
 * measurementConfigHash({ model: 'builtin:tiny', engine: 'llamacpp' }); // e.g. '3f9c0a…' (16 hex)
 */
export function measurementConfigHash(config: ExperimentConfig | Record<string, unknown>): string {
  return hashParsedConfig(parseExperimentConfig(config));
}

/** The hash of a config already parsed by `ExperimentConfigSchema` (skips re-parsing). */
export function hashParsedConfig(config: ExperimentConfig): string {
  return sha256Hex16(canonicalJson(withoutExcluded(config as Record<string, unknown>)));
}

/**
 * The study-design hash: SHA-256 over the sorted list of the unique measurement-config hashes,
 * first 16 hex. It ignores order, duplicate copies, cycles and gaps, so it changes exactly when
 * the set of distinct measurements changes (what `--resume` must refuse to mix).
 *
 * @example
 * studyDesignHash(plan.configs.map((c) => c.config));
 */
export function studyDesignHash(
  configs: readonly (ExperimentConfig | Record<string, unknown>)[],
): string {
  const hashes = [...new Set(configs.map((config) => measurementConfigHash(config)))].sort();
  return designHashFromConfigHashes(hashes);
}

/** The design hash from already computed config hashes (any order, duplicates allowed). */
/**
 * The hash of any JSON-able config (not an llem experiment config): SHA-256 of its canonical
 * JSON, first 16 hex. For grids of your own (`planGrid`); llem configs use
 * `measurementConfigHash`, which applies defaults and leaves presentation fields out first.
 *
 * @example
 * configHash({ batch: 64, model: 'x' }) === configHash({ model: 'x', batch: 64 }); // true
 */
export function configHash(config: unknown): string {
  return sha256Hex16(canonicalJson(config));
}

export function designHashFromConfigHashes(configHashes: readonly string[]): string {
  return sha256Hex16(canonicalJson([...new Set(configHashes)].sort()));
}
