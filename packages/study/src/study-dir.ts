import { mkdirSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { StudyError } from './errors';

/** Where studies go when the caller names no output directory (the CLI's `--output` default). */
export const DEFAULT_OUTPUT_DIR = './results';

const MAX_NAME_LENGTH = 64;

/**
 * Make a study name safe to use as one path segment: anything other than ASCII letters, digits,
 * `-`, `_` and `.` becomes `_` (accents are dropped first: é → e), runs of `_` collapse, leading dots and separators go, and the
 * result is capped at 64 characters. Names like `../../etc` or `a/b` can therefore never leave
 * the output directory; an empty result becomes `study`.
 *
 * @example
 * sanitiseStudyName('../../etc');   // 'etc'
 * sanitiseStudyName('batch vs ñ');  // 'batch_vs_n'
 */
export function sanitiseStudyName(name: string): string {
  const cleaned = name
    // Accented letters keep their base letter (é → e); other scripts become `_`.
    .normalize('NFKD')
    .replace(/\p{M}+/gu, '')
    .replace(/[^A-Za-z0-9._-]+/g, '_')
    .replace(/_+/g, '_')
    .replace(/^[._-]+|[._-]+$/g, '')
    .replace(/\.{2,}/g, '.')
    .slice(0, MAX_NAME_LENGTH)
    .replace(/[._-]+$/g, '');
  return cleaned === '' ? 'study' : cleaned;
}

/**
 * `YYYYMMDDTHHMMSSZ` in UTC: sorts by time, has no characters any filesystem minds.
 *
 * @example
 * utcStamp(new Date('2026-01-02T03:04:05.678Z')); // '20260102T030405Z'
 */
export function utcStamp(date: Date): string {
  return date
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '');
}

/**
 * The study directory path `<outputDir>/<sanitised name>_<UTC timestamp>`, resolved against
 * `cwd`. Pure: creates nothing. Throws `StudyError` if the result would not be inside
 * `outputDir` (it never is, by construction; the check guards future edits).
 *
 * @example
 * studyDirPath({ outputDir: 'results', name: 'my study', now: new Date(), cwd: '/w' });
 * // '/w/results/my_study_20260102T030405Z'
 */
export function studyDirPath(options: {
  outputDir?: string;
  name: string;
  now: Date;
  cwd?: string;
}): string {
  const output = resolve(options.cwd ?? process.cwd(), options.outputDir ?? DEFAULT_OUTPUT_DIR);
  const dir = join(output, `${sanitiseStudyName(options.name)}_${utcStamp(options.now)}`);
  const rel = relative(output, dir);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel) || rel.includes('/')) {
    throw new StudyError(`study name ${JSON.stringify(options.name)} escapes ${output}`);
  }
  return dir;
}

/**
 * Create a fresh study directory (and the output directory if needed). When a directory of
 * that name already exists (two studies started in the same second), a `_2`, `_3`… suffix is
 * added rather than mixing two studies.
 */
export function createStudyDir(options: {
  outputDir?: string;
  name: string;
  now: Date;
  cwd?: string;
}): string {
  const base = studyDirPath(options);
  mkdirSync(resolve(base, '..'), { recursive: true });
  for (let n = 1; n < 1000; n += 1) {
    const dir = n === 1 ? base : `${base}_${n}`;
    try {
      mkdirSync(dir);
      return dir;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new StudyError(`cannot create the study directory ${dir}`, { cause: error });
      }
    }
  }
  throw new StudyError(`cannot find a free study directory name beside ${base}`);
}
