import { type ExperimentConfig, ExperimentConfigSchema } from './config';
import { ConfigError } from './errors';
import { validate } from './internal/issues';

/**
 * Parse one experiment config (defaults applied), throwing `ConfigError` with field paths
 * instead of a raw zod error. For configs built in code or read from a task file; study files
 * go through `parseStudyText` + `planStudy`.
 *
 * @example
 * const config = parseExperimentConfig({ model: 'builtin:tiny', engine: 'llamacpp' });
 * config.llamacpp.batch_size; // 512
 */
export function parseExperimentConfig(
  input: unknown,
  options: { file?: string } = {},
): ExperimentConfig {
  const result = validate(ExperimentConfigSchema, input);
  if (!result.ok)
    throw new ConfigError('CONFIG_INVALID', options.file ?? '<config>', result.issues);
  return result.value;
}
