import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { quickstartStudy, studyJsonSchema } from '../src/index';

const schema = studyJsonSchema();
const validateStudy = new Ajv2020({ strict: false, allErrors: true }).compile(schema);
const cliFixtures = join(import.meta.dirname, '../../../apps/cli/test/fixtures/config');

describe('studyJsonSchema', () => {
  it('is a draft 2020-12 object schema listing the study keys with defaults', () => {
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(schema.additionalProperties).toBe(false);
    const properties = schema.properties as Record<
      string,
      { properties?: Record<string, unknown> }
    >;
    for (const key of [
      'name',
      'model',
      'engine',
      'sweep',
      'experiments',
      'execution',
      'llamacpp',
      'openai',
      'command',
    ]) {
      expect(properties).toHaveProperty(key);
    }
    expect(properties.execution?.properties?.residual_memory_threshold_mb).toMatchObject({
      default: 100,
    });
  });

  it('matches the committed schema/study.schema.json (run `pnpm --filter @llem/domain schema`)', () => {
    const committed = JSON.parse(
      readFileSync(join(import.meta.dirname, '../schema/study.schema.json'), 'utf8'),
    );
    expect(committed).toEqual(schema);
  });

  it('accepts the quickstart and every valid CLI fixture', () => {
    expect(validateStudy(quickstartStudy), JSON.stringify(validateStudy.errors)).toBe(true);
    for (const name of readdirSync(join(cliFixtures, 'valid'))) {
      const text = readFileSync(join(cliFixtures, 'valid', name), 'utf8');
      const doc = name.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
      expect(validateStudy(doc), `${name}: ${JSON.stringify(validateStudy.errors)}`).toBe(true);
    }
  });

  it('flags unknown keys and bad enum values, as an editor would', () => {
    expect(validateStudy({ model: 'builtin:tiny', engin: 'llamacpp' })).toBe(false);
    expect(validateStudy({ model: 'builtin:tiny', execution: { order: 'random' } })).toBe(false);
    expect(validateStudy({ llamacpp: { bach_size: 1 } })).toBe(false);
    expect(validateStudy({ sweep: { 'llamacpp.threads': 4 } })).toBe(false);
  });
});
