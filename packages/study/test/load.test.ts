import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '@llem/domain';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadStudyFile } from '../src/load';

let dir: string;

const yamlStudy = `name: batch
model: builtin:tiny
engine: llamacpp
sweep:
  llamacpp.batch_size: [64, 256]
execution: { cycles: 2 }
`;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'llem-load-'));
  await writeFile(join(dir, 'study.yaml'), yamlStudy);
  await writeFile(
    join(dir, 'study.json'),
    JSON.stringify({ model: 'builtin:tiny', engine: 'llamacpp', execution: { cycles: 3 } }),
  );
  await writeFile(join(dir, 'sniffed-json'), '{"model": "builtin:tiny", "engine": "llamacpp"}');
  await writeFile(join(dir, 'sniffed-yaml'), 'model: builtin:tiny\nengine: llamacpp\n');
  await writeFile(join(dir, 'empty.yaml'), '');
  await writeFile(join(dir, 'broken.json'), '{"model": "builtin:tiny",}');
  await mkdir(join(dir, 'a-directory.yaml'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function loadError(file: string): Promise<ConfigError> {
  const error = await loadStudyFile(file, { cwd: dir }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConfigError);
  return error as ConfigError;
}

describe('loadStudyFile', () => {
  it('reads a YAML study relative to cwd and plans it', async () => {
    const study = await loadStudyFile('study.yaml', { cwd: dir });
    expect(study.format).toBe('yaml');
    expect(study.file).toBe('study.yaml');
    expect(study.path).toBe(join(dir, 'study.yaml'));
    expect(study.baseDir).toBe(dir);
    expect(study.text).toBe(yamlStudy);
    expect(study.plan.name).toBe('batch');
    expect(study.plan.configs).toHaveLength(2);
    expect(study.plan.runs).toHaveLength(4);
  });

  it('reads JSON by extension, and sniffs the format without one', async () => {
    const json = await loadStudyFile(join(dir, 'study.json'));
    expect(json.format).toBe('json');
    expect(json.plan.name).toBe('study');
    expect(json.plan.runs).toHaveLength(3);
    expect((await loadStudyFile('sniffed-json', { cwd: dir })).format).toBe('json');
    expect((await loadStudyFile('sniffed-yaml', { cwd: dir })).format).toBe('yaml');
  });

  it('reports a missing file with CONFIG_NOT_FOUND, naming the file as given', async () => {
    const error = await loadError('nope.yaml');
    expect(error.code).toBe('CONFIG_NOT_FOUND');
    expect(error.message).toBe('nope.yaml: (root): no such file');
  });

  it('reports a directory with CONFIG_NOT_FOUND', async () => {
    const error = await loadError('a-directory.yaml');
    expect(error.code).toBe('CONFIG_NOT_FOUND');
    expect(error.message).toContain('is a directory');
  });

  it.skipIf(process.getuid?.() === 0)('reports an unreadable file', async () => {
    const file = join(dir, 'secret.yaml');
    await writeFile(file, yamlStudy);
    await chmod(file, 0o000);
    const error = await loadError('secret.yaml');
    expect(error.code).toBe('CONFIG_NOT_FOUND');
    expect(error.message).toContain('permission denied');
  });

  it('passes parse errors through with their codes', async () => {
    expect((await loadError('empty.yaml')).code).toBe('CONFIG_EMPTY');
    const broken = await loadError('broken.json');
    expect(broken.code).toBe('CONFIG_PARSE');
    expect(broken.message).toMatch(/^broken\.json: line 1, column \d+: invalid JSON/);
  });
});
