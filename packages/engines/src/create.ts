import { ENGINE_NAMES, type ExperimentConfig } from '@llem/domain';
import type { CommandEngineOptions } from './command/index';
import type { Engine, EngineContext } from './engine';

/** Per-engine options that are not part of the config (process wiring, clocks). */
export interface CreateEngineOptions {
  command?: CommandEngineOptions;
}

/**
 * Build the engine a config names. `config` is `@llem/domain`'s validated `ExperimentConfig`
 * (from `parseExperimentConfig` or a study plan); each engine takes its narrowed variant. Each
 * engine module is imported on demand, so running a `command` or `openai` experiment never loads
 * node-llama-cpp (and its native binaries).
 *
 * @example
 * const config = parseExperimentConfig({ model: 'builtin:tiny', engine: 'llamacpp' });
 * const engine = await createEngine(config, { logger, signal });
 * const info = await engine.load();
 */
export async function createEngine(
  config: ExperimentConfig,
  ctx: EngineContext,
  options: CreateEngineOptions = {},
): Promise<Engine> {
  switch (config.engine) {
    case 'command': {
      const { createCommandEngine } = await import('./command/index');
      return createCommandEngine(config, ctx, options.command);
    }
    case 'openai': {
      const { createOpenAIEngine } = await import('./openai/index');
      return createOpenAIEngine(config, ctx);
    }
    case 'llamacpp': {
      const { createLlamaCppEngine } = await import('./llamacpp/index');
      return createLlamaCppEngine(config, ctx);
    }
    default: {
      // Only reachable from JavaScript or a config that skipped validation.
      const unknown: never = config;
      throw new TypeError(
        `unknown engine ${JSON.stringify((unknown as { engine: unknown }).engine)}; allowed: ${ENGINE_NAMES.join(', ')}`,
      );
    }
  }
}
