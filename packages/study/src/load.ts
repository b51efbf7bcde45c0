import { readFile, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import {
  ConfigError,
  parseStudyText,
  planStudy,
  type StudyFileInput,
  type StudyFormat,
  type StudyPlan,
} from '@llem/domain';

/** A study file read from disk, checked and expanded. */
export interface LoadedStudy {
  /** The path as given (what error messages name). */
  file: string;
  /** Absolute path of the file. */
  path: string;
  /**
   * The file's directory: relative paths in the configs (a `.gguf` model, a `.jsonl` dataset,
   * `command.cwd`) are meant relative to it, so pass it on as the engines' working directory.
   */
  baseDir: string;
  format: StudyFormat;
  /** The file's text, e.g. to keep a copy in the study directory. */
  text: string;
  /** The document as written. */
  raw: StudyFileInput;
  plan: StudyPlan;
}

export interface LoadStudyOptions {
  /** Resolve a relative `file` against this directory. Default `process.cwd()`. */
  cwd?: string;
}

/** Study files are small; anything this large is a mistake (a model, a results dump). */
const MAX_STUDY_BYTES = 8 * 1024 * 1024;

/** `.yaml`/`.yml` → YAML, `.json` → JSON; otherwise sniff: a leading `{` means JSON. */
function detectFormat(file: string, text: string): StudyFormat {
  if (/\.ya?ml$/i.test(file)) return 'yaml';
  if (/\.json$/i.test(file)) return 'json';
  return text.trimStart().startsWith('{') ? 'json' : 'yaml';
}

function notFound(file: string, message: string, cause?: unknown): ConfigError {
  return new ConfigError('CONFIG_NOT_FOUND', file, [{ path: '(root)', message }], { cause });
}

/**
 * Read, parse, check and plan a study file (YAML or JSON). Every problem is a `ConfigError`
 * naming the file: `CONFIG_NOT_FOUND` (missing, a directory, unreadable, too large),
 * `CONFIG_EMPTY`, `CONFIG_PARSE`, `CONFIG_INVALID` or `STUDY_EMPTY`.
 *
 * @example
 * const { plan, baseDir } = await loadStudyFile('studies/batch.yaml');
 * console.log(`${plan.configs.length} configs, ${plan.runs.length} runs`);
 */
export async function loadStudyFile(
  file: string,
  options: LoadStudyOptions = {},
): Promise<LoadedStudy> {
  const path = resolve(options.cwd ?? process.cwd(), file);
  let text: string;
  try {
    const info = await stat(path);
    if (info.isDirectory()) {
      throw notFound(file, 'is a directory; give the path of a study file (.yaml, .yml or .json)');
    }
    if (info.size > MAX_STUDY_BYTES) {
      throw notFound(
        file,
        `is ${Math.round(info.size / 1024 / 1024)} MiB; a study file is a small YAML or JSON file`,
      );
    }
    text = await readFile(path, 'utf8');
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw notFound(file, 'no such file', error);
    if (code === 'EACCES' || code === 'EPERM') {
      throw notFound(file, 'cannot be read (permission denied)', error);
    }
    throw notFound(file, `cannot be read (${code ?? (error as Error).message})`, error);
  }
  const format = detectFormat(file, text);
  const raw = parseStudyText(text, { file, format });
  const plan = planStudy(raw, { file });
  return { file, path, baseDir: dirname(path), format, text, raw, plan };
}
