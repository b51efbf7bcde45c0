import { LlemError } from '@llem/resilience';

/** One problem found in a config or study file. */
export interface ConfigIssue {
  /** Field path in the file, e.g. `llamacpp.batch_size` or `experiments[1].engine`; `(root)` for the document. */
  path: string;
  /** What is wrong, in words a user can act on. Never echoes secret-looking values. */
  message: string;
  /** The values this field accepts, when they are a short closed list. */
  allowed?: string[];
}

export const CONFIG_ERROR_CODES = [
  'CONFIG_INVALID',
  'CONFIG_NOT_FOUND',
  'CONFIG_PARSE',
  'CONFIG_EMPTY',
  'STUDY_EMPTY',
] as const;
export type ConfigErrorCode = (typeof CONFIG_ERROR_CODES)[number];

export interface ConfigErrorOptions {
  cause?: unknown;
}

/**
 * A config or study file the user must fix. The message lists every issue as
 * `<file>: <path>: <message>`, so printing it alone is enough; the CLI maps it to exit code 2
 * and never prints a stack trace for it.
 *
 * @example
 * throw new ConfigError('CONFIG_INVALID', 'study.yaml', [
 *   { path: 'execution.order', message: 'invalid value', allowed: ['sequential', 'interleaved', 'shuffled'] },
 * ]);
 */
export class ConfigError extends LlemError<ConfigErrorCode> {
  override readonly name = 'ConfigError';
  readonly code: ConfigErrorCode;
  readonly source = 'config' as const;
  /** The file the issues are in (as the user named it), or `<inline>` for text without a file. */
  readonly file: string;
  readonly issues: readonly ConfigIssue[];

  constructor(
    code: ConfigErrorCode,
    file: string,
    issues: readonly ConfigIssue[],
    options: ConfigErrorOptions = {},
  ) {
    super(
      formatConfigIssues(file, issues),
      options.cause === undefined ? {} : { cause: options.cause },
    );
    this.code = code;
    this.file = file;
    this.issues = issues;
  }
}

/**
 * Render issues one per line as `<file>: <path>: <message> (allowed: a, b)`.
 *
 * @example
 * formatConfigIssues('s.yaml', [{ path: 'engine', message: 'required' }]); // 's.yaml: engine: required'
 */
export function formatConfigIssues(file: string, issues: readonly ConfigIssue[]): string {
  return issues
    .map((issue) => {
      const allowed =
        issue.allowed && issue.allowed.length > 0 && !issue.message.includes('allowed:')
          ? ` (allowed: ${issue.allowed.join(', ')})`
          : '';
      return `${file}: ${issue.path}: ${issue.message}${allowed}`;
    })
    .join('\n');
}
