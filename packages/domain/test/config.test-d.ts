import { describe, expectTypeOf, it } from 'vitest';
import {
  type BUILTIN_MODELS,
  type BuiltinModelName,
  type CommandExperimentConfig,
  ENGINE_NAMES,
  type EngineName,
  type ExperimentConfig,
  type LlamaCppConfig,
  type LlamaCppExperimentConfig,
  type OpenaiExperimentConfig,
  parseExperimentConfig,
} from '../src/index';

describe('ExperimentConfig types', () => {
  it("llamacpp.threads is number | 'auto', not a widened string", () => {
    expectTypeOf<LlamaCppExperimentConfig['llamacpp']['threads']>().toEqualTypeOf<
      number | 'auto'
    >();
    expectTypeOf<LlamaCppConfig['threads']>().toEqualTypeOf<number | 'auto'>();
  });

  it('the other llamacpp unions keep their literals', () => {
    expectTypeOf<LlamaCppConfig['gpu_layers']>().toEqualTypeOf<number | 'auto' | 'max'>();
    expectTypeOf<LlamaCppConfig['context_size']>().toEqualTypeOf<number | 'auto'>();
    expectTypeOf<LlamaCppConfig['flash_attention']>().toEqualTypeOf<boolean | 'auto'>();
  });

  it('EngineName is the closed union the schema discriminates on', () => {
    expectTypeOf<EngineName>().toEqualTypeOf<'llamacpp' | 'openai' | 'command'>();
    expectTypeOf(ENGINE_NAMES).items.toEqualTypeOf<EngineName>();
    expectTypeOf<ExperimentConfig['engine']>().toEqualTypeOf<EngineName>();
    expectTypeOf<BuiltinModelName>().toEqualTypeOf<(typeof BUILTIN_MODELS)[number]>();
  });

  it('parseExperimentConfig narrows to the engine an input names', () => {
    const llama = parseExperimentConfig({ model: 'builtin:tiny', engine: 'llamacpp' });
    expectTypeOf(llama).toEqualTypeOf<LlamaCppExperimentConfig>();
    expectTypeOf(llama.llamacpp.batch_size).toEqualTypeOf<number>();
    const command = parseExperimentConfig({
      model: 'm',
      engine: 'command',
      command: { argv: ['x'] },
    });
    expectTypeOf(command).toEqualTypeOf<CommandExperimentConfig>();
    expectTypeOf<LlamaCppExperimentConfig>().not.toHaveProperty('openai');
  });

  it('an input of unknown shape gives the union, narrowed by a check on engine', () => {
    const config = parseExperimentConfig(JSON.parse('{}') as unknown);
    expectTypeOf(config).toEqualTypeOf<ExperimentConfig>();
    if (config.engine === 'llamacpp') {
      expectTypeOf(config).toEqualTypeOf<LlamaCppExperimentConfig>();
    } else if (config.engine === 'openai') {
      expectTypeOf(config).toEqualTypeOf<OpenaiExperimentConfig>();
    } else {
      expectTypeOf(config).toEqualTypeOf<CommandExperimentConfig>();
    }
  });
});
