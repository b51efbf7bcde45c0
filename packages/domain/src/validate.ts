import { type EngineName, type ExperimentConfig, ExperimentConfigSchema } from './config';
import { ConfigError } from './errors';
import { validate } from './internal/issues';

/**
 * The parsed config type for an input: narrowed to one engine's variant when the input names its
 * engine as a literal (the schema keeps `engine` as given), else the whole union.
 */
export type ParsedExperimentConfig<I> = I extends { engine: infer E extends EngineName }
  ? Extract<ExperimentConfig, { engine: E }>
  : ExperimentConfig;

/**
 * Parse one experiment config (defaults applied), throwing `ConfigError` with field paths
 * instead of a raw zod error. For configs built in code or read from a task file; study files
 * go through `parseStudyText` + `planStudy`. An input whose `engine` is a literal gives that
 * engine's variant, ready for the engine's factory.
 *
 * @example
 * const config = parseExperimentConfig({ model: 'builtin:tiny', engine: 'llamacpp' });
 * config.llamacpp.batch_size; // 512
 */
export function parseExperimentConfig<const I>(
  input: I,
  options: { file?: string } = {},
): ParsedExperimentConfig<I> {
  const result = validate(ExperimentConfigSchema, input);
  if (!result.ok)
    throw new ConfigError('CONFIG_INVALID', options.file ?? '<config>', result.issues);
  return result.value as ParsedExperimentConfig<I>;
}
