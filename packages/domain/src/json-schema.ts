import { z } from 'zod';
import { StudyFileSchema } from './study';

/**
 * The JSON Schema (draft 2020-12) of a study file, generated from the zod schema so the two
 * can never disagree. It describes the input: fields with defaults are optional and carry
 * their `default`. Also published as `@llem/domain/study.schema.json`. Cross-field rules (e.g. concurrency XOR request_rate) are only checked by
 * `llem config validate`.
 *
 * @example
 * writeFileSync('study.schema.json', JSON.stringify(studyJsonSchema(), null, 2));
 */
export function studyJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(StudyFileSchema, {
    io: 'input',
    target: 'draft-2020-12',
    unrepresentable: 'any',
  }) as Record<string, unknown>;
  return { title: 'llem study file', ...schema };
}
