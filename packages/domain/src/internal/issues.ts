import type { z } from 'zod';
import type { ConfigIssue } from '../errors';
import { didYouMean } from '../suggest';
import { nodeOf } from './schema-walk';

/**
 * Turns zod issues into `ConfigIssue`s a user can act on: dotted field paths, unknown keys with
 * a did-you-mean and the allowed keys, enum values listed, unions reduced to the branch that
 * matched the value's type. Messages never echo free-text values (a pasted API key must not
 * reach a log); only enum-like values, numbers and booleans are quoted back.
 */

type PathSegment = PropertyKey;

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * `['llamacpp', 'batch_size']` → `llamacpp.batch_size`; `['experiments', 1, 'engine']` →
 * `experiments[1].engine`; keys that are not identifiers (dotted sweep keys) are quoted:
 * `sweep["llamacpp.batch_size"]`.
 */
export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else {
      const key = String(segment);
      if (IDENTIFIER.test(key)) out += out === '' ? key : `.${key}`;
      else out += `[${JSON.stringify(key)}]`;
    }
  }
  return out === '' ? '(root)' : out;
}

/** Facts the error map saw while parsing, keyed by the input object they are about. */
interface ParseNotes {
  allowedKeys: WeakMap<object, string[]>;
  /** For each section of that schema, the keys it takes (to say where a misplaced key belongs). */
  sectionKeys: WeakMap<object, Map<string, string[]>>;
  discriminatorValues: WeakMap<object, string[]>;
}

interface SchemaInternals {
  shape?: Record<string, unknown>;
  _zod?: { propValues?: Record<string, Set<unknown>> };
}

/** A zod `error` map that records what the final issues no longer carry (the schema's keys). */
function recordingErrorMap(notes: ParseNotes): z.core.$ZodErrorMap {
  return (issue) => {
    const input = issue.input;
    if (typeof input !== 'object' || input === null) return undefined;
    const inst = issue.inst as SchemaInternals | undefined;
    if (issue.code === 'unrecognized_keys' && inst?.shape) {
      notes.allowedKeys.set(input, Object.keys(inst.shape));
      const sections = new Map<string, string[]>();
      for (const [key, schema] of Object.entries(inst.shape)) {
        const node = nodeOf(schema as z.ZodType);
        if (node.kind === 'object')
          sections.set(
            key,
            node.shapes.flatMap((shape) => Object.keys(shape)),
          );
      }
      notes.sectionKeys.set(input, sections);
    }
    if (issue.code === 'invalid_union') {
      const discriminator = (issue as { discriminator?: string }).discriminator;
      const values = discriminator ? inst?._zod?.propValues?.[discriminator] : undefined;
      if (values) notes.discriminatorValues.set(input, [...values].map(String));
    }
    return undefined;
  };
}

export type Validated<T> = { ok: true; value: T } | { ok: false; issues: ConfigIssue[] };

/**
 * Parse with a zod schema and report failures as ConfigIssues.
 *
 * @example
 * const r = validate(ExperimentConfigSchema, raw);
 * if (!r.ok) throw new ConfigError('CONFIG_INVALID', file, r.issues);
 */
export function validate<S extends z.ZodType>(
  schema: S,
  input: unknown,
  pathPrefix: readonly PathSegment[] = [],
): Validated<z.output<S>> {
  const notes: ParseNotes = {
    allowedKeys: new WeakMap(),
    sectionKeys: new WeakMap(),
    discriminatorValues: new WeakMap(),
  };
  const result = schema.safeParse(input, { reportInput: true, error: recordingErrorMap(notes) });
  if (result.success) return { ok: true, value: result.data };
  const issues = result.error.issues.flatMap((issue) => convertIssue(issue, pathPrefix, notes));
  return { ok: false, issues: dedupe(issues) };
}

function dedupe(issues: ConfigIssue[]): ConfigIssue[] {
  const seen = new Set<string>();
  return issues.filter((issue) => {
    const key = `${issue.path}\u0000${issue.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** The quotable form of a value: only short non-free-text values are echoed back. */
function show(value: unknown): string | undefined {
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) {
    return String(value);
  }
  return undefined;
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'number') return Number.isInteger(value) ? 'an integer' : 'a number';
  if (typeof value === 'string') return 'a string';
  if (typeof value === 'boolean') return 'a boolean';
  return typeof value;
}

const EXPECTED_NAMES: Record<string, string> = {
  int: 'an integer',
  number: 'a number',
  string: 'a string',
  boolean: 'a boolean (true or false)',
  object: 'a mapping',
  array: 'a list',
  record: 'a mapping',
};

const ENGINE_SECTION_KEYS = new Set(['llamacpp', 'openai', 'command']);

function boundMessage(issue: z.core.$ZodIssueTooSmall | z.core.$ZodIssueTooBig): string {
  const small = issue.code === 'too_small';
  const bound = small
    ? (issue as z.core.$ZodIssueTooSmall).minimum
    : (issue as z.core.$ZodIssueTooBig).maximum;
  const inclusive = issue.inclusive !== false;
  const op = small ? (inclusive ? '≥' : '>') : inclusive ? '≤' : '<';
  switch (issue.origin) {
    case 'array':
    case 'set':
      return small
        ? `must have at least ${bound} item${Number(bound) === 1 ? '' : 's'}`
        : `must have at most ${bound} items`;
    case 'string':
      return small
        ? Number(bound) === 1
          ? 'must not be empty'
          : `must be at least ${bound} characters`
        : `must be at most ${bound} characters`;
    default: {
      const got = show(issue.input);
      return `must be ${op} ${bound}${got === undefined ? '' : ` (got ${got})`}`;
    }
  }
}

function convertIssue(
  issue: z.core.$ZodIssue,
  prefix: readonly PathSegment[],
  notes: ParseNotes,
): ConfigIssue[] {
  const path = [...prefix, ...issue.path];
  const at = formatPath(path);
  const input = (issue as { input?: unknown }).input;
  switch (issue.code) {
    case 'unrecognized_keys': {
      const allowed =
        typeof input === 'object' && input !== null ? notes.allowedKeys.get(input) : undefined;
      const engine =
        typeof input === 'object' && input !== null
          ? (input as Record<string, unknown>).engine
          : undefined;
      return issue.keys.map((key) => {
        const keyPath = formatPath([...path, key]);
        if (ENGINE_SECTION_KEYS.has(key) && typeof engine === 'string' && engine !== key) {
          return {
            path: keyPath,
            message: `the ${key} section only applies to engine: ${key}, and this config's engine is ${engine}`,
          };
        }
        if (key === 'server' && typeof engine === 'string' && engine !== 'openai') {
          return {
            path: keyPath,
            message: `the server section only applies to engine: openai (the openai engine drives the server llem starts), and this config's engine is ${engine}`,
          };
        }
        const [head, ...rest] = key.split('.');
        if (rest.length > 0 && head && allowed?.includes(head)) {
          // `llamacpp.batch_size: 64` outside `sweep`: say how to write it instead.
          return {
            path: keyPath,
            message: `dotted field paths only work as sweep keys; write it nested: ${head}: { ${rest.join('.')}: … }`,
          };
        }
        const suggestion = allowed ? didYouMean(key, allowed) : undefined;
        const home =
          suggestion === undefined && typeof input === 'object' && input !== null
            ? [...(notes.sectionKeys.get(input) ?? [])].find(([, keys]) => keys.includes(key))?.[0]
            : undefined;
        if (home) {
          // e.g. `cycles: 3` at the top level: it exists, one level down.
          return {
            path: keyPath,
            message: `unknown key here; ${key} belongs in ${home}: write ${home}: { ${key}: … }`,
            ...(allowed ? { allowed } : {}),
          };
        }
        return {
          path: keyPath,
          message: `unknown key${suggestion ? `; did you mean "${suggestion}"?` : ''}`,
          ...(allowed ? { allowed } : {}),
        };
      });
    }
    case 'invalid_type': {
      if (input === undefined) return [{ path: at, message: 'is required' }];
      const expected = EXPECTED_NAMES[issue.expected] ?? issue.expected;
      const got = show(input);
      return [
        {
          path: at,
          message: `expected ${expected}, got ${typeName(input)}${got === undefined ? '' : ` (${got})`}`,
        },
      ];
    }
    case 'invalid_value': {
      const allowed = issue.values.map((v) => String(v));
      const got = typeof input === 'string' ? JSON.stringify(input) : show(input);
      const message =
        allowed.length === 1
          ? `must be ${JSON.stringify(issue.values[0])}`
          : `invalid value${got === undefined ? '' : ` ${got}`}`;
      return [{ path: at, message, allowed }];
    }
    case 'too_small':
    case 'too_big':
      // A message given in the schema wins over the generic bound wording.
      return [
        {
          path: at,
          message: issue.message.startsWith('Too ') ? boundMessage(issue) : issue.message,
        },
      ];
    case 'invalid_union': {
      const discriminator = (issue as { discriminator?: string }).discriminator;
      if (discriminator) {
        const allowed =
          typeof input === 'object' && input !== null
            ? notes.discriminatorValues.get(input)
            : undefined;
        const value =
          typeof input === 'object' && input !== null
            ? (input as Record<string, unknown>)[discriminator]
            : undefined;
        return [
          {
            // zod already ends the path with the discriminator key; older versions did not.
            path:
              path[path.length - 1] === discriminator ? at : formatPath([...path, discriminator]),
            message:
              value === undefined
                ? 'is required'
                : `invalid value${typeof value === 'string' ? ` ${JSON.stringify(value)}` : ''}`,
            ...(allowed ? { allowed } : {}),
          },
        ];
      }
      // Keep the branches whose failure is not simply "this value is of another type".
      const branches = issue.errors.filter(
        (branch) =>
          !(
            branch.length === 1 &&
            branch[0]?.code === 'invalid_type' &&
            branch[0].path.length === 0
          ),
      );
      const typeBranches = issue.errors.filter((branch) => !branches.includes(branch));
      const onlyBadValue = (branch: z.core.$ZodIssue[]) =>
        branch.every((inner) => inner.code === 'invalid_value' && inner.path.length === 0);
      if (branches.length === 1 && typeBranches.length > 0 && onlyBadValue(branches[0]!)) {
        // e.g. threads: auto | integer, given "two": name both forms, not just the word.
        const words = (branches[0] as z.core.$ZodIssueInvalidValue[]).flatMap((inner) =>
          inner.values.map((v) => JSON.stringify(v)),
        );
        const types = typeBranches.map(
          (branch) =>
            EXPECTED_NAMES[(branch[0] as z.core.$ZodIssueInvalidType).expected] ??
            (branch[0] as z.core.$ZodIssueInvalidType).expected,
        );
        const got = typeof input === 'string' ? JSON.stringify(input) : show(input);
        return [
          {
            path: at,
            message: `expected ${[...words, ...types].join(' or ')}${got === undefined ? '' : `, got ${got}`}`,
            allowed: words.map((w) => JSON.parse(w) as string),
          },
        ];
      }
      if (branches.length === 1) {
        return dedupe(branches[0]!.flatMap((inner) => convertIssue(inner, path, notes)));
      }
      if (branches.length === 0 && typeBranches.length > 1) {
        // Every form is of another type (a list where a scalar goes): name the forms once.
        const types = [
          ...new Set(
            typeBranches.map(
              (branch) =>
                EXPECTED_NAMES[(branch[0] as z.core.$ZodIssueInvalidType).expected] ??
                (branch[0] as z.core.$ZodIssueInvalidType).expected,
            ),
          ),
        ];
        const last = types.pop();
        return [
          {
            path: at,
            message: `expected ${types.length > 0 ? `${types.join(', ')} or ${last}` : last}, got ${typeName(input)}`,
          },
        ];
      }
      const candidates = (branches.length > 0 ? branches : issue.errors).flatMap((branch) =>
        branch.flatMap((inner) => convertIssue(inner, path, notes)),
      );
      const allowed = [...new Set(candidates.flatMap((c) => c.allowed ?? []))];
      const expectedTypes = issue.errors
        .flat()
        .filter((inner) => inner.code === 'invalid_type' && inner.path.length === 0)
        .map((inner) => EXPECTED_NAMES[(inner as z.core.$ZodIssueInvalidType).expected] ?? '');
      const parts = [
        ...new Set([
          ...candidates.filter((c) => c.path === at).map((c) => c.message),
          ...expectedTypes.filter(Boolean).map((t) => `expected ${t}`),
        ]),
      ];
      return [
        {
          path: at,
          message: parts.length > 0 ? parts.join(', or ') : 'does not match any allowed form',
          ...(allowed.length > 0 ? { allowed } : {}),
        },
      ];
    }
    case 'custom': {
      const allowed = (issue.params as { allowed?: string[] } | undefined)?.allowed;
      return [{ path: at, message: issue.message, ...(allowed ? { allowed } : {}) }];
    }
    case 'invalid_key':
      // A record key that failed its own schema: report the key itself as the path.
      return dedupe(issue.issues.flatMap((inner) => convertIssue(inner, path, notes)));
    case 'invalid_format':
      return [
        {
          path: at,
          message: issue.message.startsWith('Invalid') ? `invalid ${issue.format}` : issue.message,
        },
      ];
    default:
      return [{ path: at, message: issue.message }];
  }
}
