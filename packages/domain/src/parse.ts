import { isScalar, parseDocument } from 'yaml';
import { ConfigError } from './errors';
import { validate } from './internal/issues';
import { jsonErrorOffset } from './internal/json-position';
import { type StudyFileInput, StudyFileSchema } from './study';

export type StudyFormat = 'yaml' | 'json';

export interface ParseStudyOptions {
  /** The file name to put in every error message (no file is read). */
  file: string;
  /** Default: from the file extension (`.json` → json, else yaml). YAML also reads JSON. */
  format?: StudyFormat;
}

/** Guess the format from a file name: `.json` is JSON, everything else YAML. */
export function formatFromFileName(file: string): StudyFormat {
  return /\.json$/i.test(file) ? 'json' : 'yaml';
}

function describeRoot(value: unknown): string {
  if (Array.isArray(value)) return 'a list';
  if (value === null) return 'null';
  return `a ${typeof value === 'object' ? 'mapping' : typeof value}`;
}

/** Line and column (1-based) of a character offset. */
function lineCol(text: string, offset: number): { line: number; col: number } {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return { line, col: offset - before.lastIndexOf('\n') };
}

function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const offset = jsonErrorOffset(text);
    const where = offset === undefined ? undefined : lineCol(text, offset);
    throw new ConfigError(
      'CONFIG_PARSE',
      file,
      [
        {
          path: where ? `line ${where.line}, column ${where.col}` : '(root)',
          // V8's wording, minus its own position/excerpt: the path above already says where.
          message: `invalid JSON: ${message.replace(/ in JSON at position \d+.*$/s, '').replace(/, ".*" is not valid JSON$/s, '')}`,
        },
      ],
      { cause: error },
    );
  }
}

function parseYaml(text: string, file: string): unknown {
  const doc = parseDocument(text, {
    prettyErrors: true,
    uniqueKeys: true,
    // `<<: *shared` merge keys are handy for repeating experiment blocks.
    merge: true,
  });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      'CONFIG_PARSE',
      file,
      doc.errors.map((error) => {
        const pos = error.linePos?.[0];
        return {
          path: pos ? `line ${pos.line}, column ${pos.col}` : '(root)',
          message: `YAML syntax error: ${(error.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '')}`,
        };
      }),
    );
  }
  if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) {
    return undefined;
  }
  try {
    // The alias cap stops a "billion laughs" document from expanding without bound.
    return doc.toJS({ maxAliasCount: 100 });
  } catch (error) {
    throw new ConfigError(
      'CONFIG_PARSE',
      file,
      [
        {
          path: '(root)',
          message: `YAML error: ${error instanceof Error ? error.message : String(error)}`,
        },
      ],
      { cause: error },
    );
  }
}

/**
 * Parse a study file's text (YAML or JSON) and check every field's type where it stands.
 * Returns the document as written (defaults are applied later by `planStudy`). Throws
 * `ConfigError`: `CONFIG_EMPTY` for an empty document, `CONFIG_PARSE` for a syntax error (with
 * line and column), `CONFIG_INVALID` for a document that is not a mapping or has bad fields.
 *
 * @example
 * const raw = parseStudyText('name: s\nmodel: builtin:tiny\nengine: llamacpp\n', { file: 's.yaml' });
 * const plan = planStudy(raw, { file: 's.yaml' });
 */
export function parseStudyText(text: string, options: ParseStudyOptions): StudyFileInput {
  const { file } = options;
  const format = options.format ?? formatFromFileName(file);
  if (text.trim() === '') {
    throw new ConfigError('CONFIG_EMPTY', file, [
      { path: '(root)', message: 'the file is empty; a study needs at least model and engine' },
    ]);
  }
  const value = format === 'json' ? parseJson(text, file) : parseYaml(text, file);
  if (value === undefined || value === null) {
    throw new ConfigError('CONFIG_EMPTY', file, [
      {
        path: '(root)',
        message:
          'the document is empty (only comments or null); a study needs at least model and engine',
      },
    ]);
  }
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError('CONFIG_INVALID', file, [
      {
        path: '(root)',
        message: `a study file must be a mapping of keys (name, model, engine, sweep, …), but this document is ${describeRoot(value)}`,
      },
    ]);
  }
  const checked = validate(StudyFileSchema, value);
  if (!checked.ok) throw new ConfigError('CONFIG_INVALID', file, checked.issues);
  return value as StudyFileInput;
}
