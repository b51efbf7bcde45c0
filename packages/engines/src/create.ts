import type { CommandEngineOptions } from './command/index';
import type { Engine, EngineContext, EngineName } from './engine';

/**
 * The fields `createEngine` dispatches on. Any `@llem/domain` `ExperimentConfig` fits; the
 * chosen engine validates its own section.
 */
export interface EngineSelectingConfig {
  engine: EngineName;
  model: string;
}

/** Per-engine options that are not part of the config (process wiring, clocks). */
export interface CreateEngineOptions {
  command?: CommandEngineOptions;
}

/**
 * Build the engine a config names. Each engine module is imported on demand, so running a
 * `command` or `openai` experiment never loads node-llama-cpp (and its native binaries).
 *
 * @example
 * const engine = await createEngine(config, { logger, signal });
 * const info = await engine.load();
 */
export async function createEngine(
  config: EngineSelectingConfig,
  ctx: EngineContext,
  options: CreateEngineOptions = {},
): Promise<Engine> {
  switch (config.engine) {
    case 'command': {
      const { createCommandEngine } = await import('./command/index');
      return createCommandEngine(
        config as Parameters<typeof createCommandEngine>[0],
        ctx,
        options.command,
      );
    }
    case 'openai': {
      const { createOpenAIEngine } = await import('./openai/index');
      return createOpenAIEngine(config as unknown as Parameters<typeof createOpenAIEngine>[0], ctx);
    }
    case 'llamacpp': {
      const { createLlamaCppEngine } = await import('./llamacpp/index');
      return createLlamaCppEngine(
        config as unknown as Parameters<typeof createLlamaCppEngine>[0],
        ctx,
      );
    }
    default: {
      const engine: never = config.engine;
      throw new TypeError(
        `unknown engine ${JSON.stringify(engine)}; allowed: llamacpp, openai, command`,
      );
    }
  }
}
