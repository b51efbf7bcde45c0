import {
  type Document,
  isMap,
  isPair,
  isScalar,
  isSeq,
  parseDocument,
  visit,
  type YAMLError,
} from 'yaml';
import type { ConfigIssue } from './errors';
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
  let value: unknown;
  try {
    value = JSON.parse(text);
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
  // JSON.parse keeps the last of two equal keys without a word; JSON is YAML, so the YAML
  // parser finds them (its other complaints about valid JSON, if any, do not matter here).
  const doc = parseDocument(text, { uniqueKeys: true });
  const duplicates = doc.errors.filter((error) => error.code === 'DUPLICATE_KEY');
  if (duplicates.length > 0) {
    throw new ConfigError(
      'CONFIG_PARSE',
      file,
      duplicates.map((error) => yamlIssue(doc, text, error)),
    );
  }
  return value;
}

/**
 * A repeated key as a field issue: its path in the document (`execution.cycles`), where it is
 * repeated and where it first appeared. `null` when the key is not a plain scalar.
 */
function duplicateKeyIssue(doc: Document, text: string, offset: number): ConfigIssue | null {
  let issue: ConfigIssue | null = null;
  visit(doc, {
    Pair(_, pair, ancestors) {
      if (!isScalar(pair.key) || pair.key.range?.[0] !== offset) return undefined;
      const key = String(pair.key.value);
      const path = [...fieldPath(ancestors), key];
      const parent = ancestors.at(-1);
      const first = isMap(parent)
        ? parent.items.find((p) => isScalar(p.key) && String(p.key.value) === key && p !== pair)
        : undefined;
      const firstAt =
        first && isScalar(first.key) && first.key.range
          ? `; first at line ${lineCol(text, first.key.range[0]).line}`
          : '';
      const at = lineCol(text, offset);
      issue = {
        path: joinPath(path),
        message: `duplicate key "${key}" (line ${at.line}, column ${at.col}${firstAt}): a key may appear only once in a mapping; keep one`,
      };
      return visit.BREAK;
    },
  });
  return issue;
}

/** The field path of a node from its ancestors: mapping keys, and list positions. */
function fieldPath(ancestors: readonly unknown[]): (string | number)[] {
  const path: (string | number)[] = [];
  ancestors.forEach((node, i) => {
    if (isPair(node) && isScalar(node.key)) path.push(String(node.key.value));
    else if (isSeq(node)) path.push(node.items.indexOf(ancestors[i + 1] as never));
  });
  return path;
}

/** `experiments[1].llamacpp.threads`, as field paths are written everywhere else. */
function joinPath(path: readonly (string | number)[]): string {
  return path
    .map((part, i) => (typeof part === 'number' ? `[${part}]` : i === 0 ? part : `.${part}`))
    .join('');
}

function yamlIssue(doc: Document, text: string, error: YAMLError): ConfigIssue {
  if (error.code === 'DUPLICATE_KEY') {
    const named = duplicateKeyIssue(doc, text, error.pos[0]);
    if (named) return named;
  }
  const pos = error.linePos?.[0];
  return {
    path: pos ? `line ${pos.line}, column ${pos.col}` : '(root)',
    message: `YAML syntax error: ${(error.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '')}`,
  };
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
      doc.errors.map((error) => yamlIssue(doc, text, error)),
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
