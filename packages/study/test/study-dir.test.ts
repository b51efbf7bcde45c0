import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createStudyDir,
  DEFAULT_OUTPUT_DIR,
  sanitiseStudyName,
  studyDirPath,
  utcStamp,
} from '../src/study-dir';
import { tempDir } from './helpers';

const now = new Date('2026-01-02T03:04:05.678Z');

describe('sanitiseStudyName', () => {
  it.each([
    ['batch-vs-threads', 'batch-vs-threads'],
    ['../../etc', 'etc'],
    ['../../etc/passwd', 'etc_passwd'],
    ['/abs/path', 'abs_path'],
    ['a\\b', 'a_b'],
    ['..', 'study'],
    ['.', 'study'],
    ['', 'study'],
    ['   ', 'study'],
    ['.hidden', 'hidden'],
    ['a..b', 'a.b'],
    ['名前', 'study'],
    ['café crème', 'cafe_creme'],
    ['batch size: 64?*|<>', 'batch_size_64'],
    ['emoji 🚀 run', 'emoji_run'],
    ['nul\u0000byte', 'nul_byte'],
  ])('%j → %j', (name, expected) => {
    expect(sanitiseStudyName(name)).toBe(expected);
  });

  it('caps the length at 64 characters', () => {
    expect(sanitiseStudyName('x'.repeat(500))).toHaveLength(64);
  });
});

describe('studyDirPath', () => {
  it('is <output>/<sanitised name>_<UTC timestamp>, resolved against cwd', () => {
    expect(utcStamp(now)).toBe('20260102T030405Z');
    expect(studyDirPath({ outputDir: 'out', name: 'my study', now, cwd: '/w' })).toBe(
      '/w/out/my_study_20260102T030405Z',
    );
    expect(studyDirPath({ name: 'x', now, cwd: '/w' })).toBe(
      join('/w', DEFAULT_OUTPUT_DIR, 'x_20260102T030405Z'),
    );
  });

  it.each(['../../etc', '../..', '/etc/cron.d/x', 'a/../../b', '..\\..\\win', '~/.ssh'])(
    'never leaves the output directory for %j',
    (name) => {
      const dir = studyDirPath({ outputDir: '/srv/results', name, now });
      const rel = relative('/srv/results', dir);
      expect(rel.startsWith('..')).toBe(false);
      expect(rel).not.toContain('/');
    },
  );
});

describe('createStudyDir', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => {
    tmp = tempDir();
  });
  afterEach(() => tmp.cleanup());

  it('creates the output directory and adds a suffix instead of reusing a directory', () => {
    const options = { outputDir: join(tmp.dir, 'a', 'b'), name: 'dup', now };
    const first = createStudyDir(options);
    const second = createStudyDir(options);
    expect(first).toBe(join(tmp.dir, 'a', 'b', 'dup_20260102T030405Z'));
    expect(second).toBe(`${first}_2`);
    expect(existsSync(first) && existsSync(second)).toBe(true);
  });
});
