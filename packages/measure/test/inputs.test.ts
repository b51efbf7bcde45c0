import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileIdentitySchema } from '@llem/domain';
import { describe, expect, it } from 'vitest';
import { fileIdentity, identifyInputs, missingInputFiles, SAMPLE_SLICE_BYTES } from '../src/inputs';

const dir = mkdtempSync(join(tmpdir(), 'llem-inputs-'));
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
function bytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

describe('fileIdentity', () => {
  it('hashes a small file whole: the sha256 of its bytes, its size, mtime and absolute path', async () => {
    const file = join(dir, 'prompts.jsonl');
    writeFileSync(file, '{"prompt":"hello"}\n');
    utimesSync(file, new Date('2026-01-02T03:04:05Z'), new Date('2026-01-02T03:04:05Z'));
    const id = await fileIdentity(file);
    expect(FileIdentitySchema.parse(id)).toEqual({
      path: file,
      sizeBytes: 19,
      modifiedAt: '2026-01-02T03:04:05.000Z',
      sha256: sha('{"prompt":"hello"}\n'),
      coverage: 'full',
    });
  });

  it('hashes across its 4 MiB read chunks exactly like one sha256 of the whole file', async () => {
    const file = join(dir, 'big.bin');
    const content = bytes(9 * 1024 * 1024 + 7, 3);
    writeFileSync(file, content);
    const id = await fileIdentity(file);
    expect(id).toMatchObject({ sizeBytes: content.length, sha256: sha(content), coverage: 'full' });
  });

  it('samples a file above the limit: start, middle and end slices and the size count, the rest not', async () => {
    const limit = 1024;
    const size = 5 * SAMPLE_SLICE_BYTES;
    const base = bytes(size, 7);
    const write = (name: string, edit: (b: Buffer) => Buffer) => {
      const f = join(dir, name);
      writeFileSync(f, edit(Buffer.from(base)));
      return fileIdentity(f, { fullHashLimitBytes: limit });
    };
    const original = await write('a.gguf', (b) => b);
    expect(original.coverage).toBe('sampled');
    expect(original.sha256).not.toBe(sha(base));
    const flip = (at: number) => (b: Buffer) => {
      b[at] = (b[at] as number) ^ 0xff;
      return b;
    };
    // Same bytes at another path: same fingerprint.
    expect((await write('copy.gguf', (b) => b)).sha256).toBe(original.sha256);
    expect((await write('head.gguf', flip(10))).sha256).not.toBe(original.sha256);
    expect((await write('mid.gguf', flip(Math.floor(size / 2)))).sha256).not.toBe(original.sha256);
    expect((await write('tail.gguf', flip(size - 1))).sha256).not.toBe(original.sha256);
    expect((await write('short.gguf', (b) => b.subarray(0, size - 1))).sha256).not.toBe(
      original.sha256,
    );
    // Between the slices: not covered, which is what "sampled" says.
    expect((await write('gap.gguf', flip(SAMPLE_SLICE_BYTES + 5))).sha256).toBe(original.sha256);
  });

  it('a file exactly at the limit is hashed whole; one byte more is sampled', async () => {
    const limit = 4 * SAMPLE_SLICE_BYTES;
    const at = join(dir, 'at-limit.bin');
    writeFileSync(at, bytes(limit, 1));
    expect(await fileIdentity(at, { fullHashLimitBytes: limit })).toMatchObject({
      coverage: 'full',
      sha256: sha(bytes(limit, 1)),
    });
    const over = join(dir, 'over-limit.bin');
    writeFileSync(over, bytes(limit + 1, 1));
    expect((await fileIdentity(over, { fullHashLimitBytes: limit })).coverage).toBe('sampled');
  });

  it('a file of at most three slices is hashed whole even above a small limit', async () => {
    const file = join(dir, 'small.bin');
    const content = bytes(SAMPLE_SLICE_BYTES / 2, 9);
    writeFileSync(file, content);
    expect(await fileIdentity(file, { fullHashLimitBytes: 16 })).toMatchObject({
      coverage: 'full',
      sha256: sha(content),
    });
  });

  it('rejects a directory, a missing file and a FIFO (without blocking on it)', async () => {
    await expect(fileIdentity(dir)).rejects.toThrow(/not a regular file/);
    await expect(fileIdentity(join(dir, 'nope'))).rejects.toThrow(/ENOENT/);
    const fifo = join(dir, 'pipe');
    execFileSync('mkfifo', [fifo]);
    await expect(fileIdentity(fifo)).rejects.toThrow(/not a regular file/);
  });
});

describe('identifyInputs', () => {
  const cwd = mkdtempSync(join(tmpdir(), 'llem-inputs-cwd-'));
  mkdirSync(join(cwd, 'data'));
  writeFileSync(join(cwd, 'data', 'p.jsonl'), '{"prompt":"a"}\n');
  writeFileSync(join(cwd, 'model.gguf'), 'GGUF');

  it('takes the model the engine loaded and a relative dataset from the cwd', async () => {
    const inputs = await identifyInputs(
      { engine: 'llamacpp', model: 'builtin:tiny', dataset: 'data/p.jsonl' },
      { details: { modelPath: join(cwd, 'model.gguf') } },
      { cwd },
    );
    expect(inputs.model).toMatchObject({ path: join(cwd, 'model.gguf'), sha256: sha('GGUF') });
    expect(inputs.dataset).toMatchObject({
      path: join(cwd, 'data', 'p.jsonl'),
      sizeBytes: statSync(join(cwd, 'data', 'p.jsonl')).size,
    });
  });

  it('a command model that names a file is identified; a name that is no file is null, quietly', async () => {
    const lines: string[] = [];
    const logger = { error() {}, warn() {}, info() {}, debug: (m: string) => lines.push(m) };
    const file = await identifyInputs(
      { engine: 'command', model: 'model.gguf', dataset: { path: 'data/p.jsonl' } },
      { details: {} },
      { cwd, logger },
    );
    expect(file.model?.sha256).toBe(sha('GGUF'));
    const named = await identifyInputs(
      { engine: 'command', model: 'meta-llama/Llama-3.1-8B', dataset: { synthetic: {} as never } },
      { details: {} },
      { cwd, logger },
    );
    expect(named).toEqual({ model: null, dataset: null });
    expect(lines).toEqual([]);
  });

  it("a command model path is relative to the program's command.cwd, where the program runs", async () => {
    mkdirSync(join(cwd, 'bin'));
    writeFileSync(join(cwd, 'bin', 'w.gguf'), 'in bin');
    const inputs = await identifyInputs(
      { engine: 'command', model: 'w.gguf', dataset: { synthetic: {} as never } },
      { details: { cwd: join(cwd, 'bin') } },
      { cwd },
    );
    expect(inputs.model).toMatchObject({ path: join(cwd, 'bin', 'w.gguf'), sha256: sha('in bin') });
  });

  it('an openai model is a served name, never a file, even when a file has that name', async () => {
    const inputs = await identifyInputs(
      { engine: 'openai', model: 'model.gguf', dataset: { synthetic: {} as never } },
      { details: {} },
      { cwd },
    );
    expect(inputs.model).toBeNull();
  });

  it('never throws: a loaded model that vanished is null with a debug line', async () => {
    const lines: string[] = [];
    const logger = { error() {}, warn() {}, info() {}, debug: (m: string) => lines.push(m) };
    const inputs = await identifyInputs(
      { engine: 'llamacpp', model: 'x.gguf', dataset: 'data/p.jsonl' },
      { details: { modelPath: join(cwd, 'gone.gguf') } },
      { cwd, logger },
    );
    expect(inputs.model).toBeNull();
    expect(inputs.dataset).not.toBeNull();
    expect(lines).toEqual([expect.stringMatching(/cannot identify the model file .*gone\.gguf/)]);
  });
});

describe('missingInputFiles', () => {
  const cwd = mkdtempSync(join(tmpdir(), 'llem-missing-'));
  writeFileSync(join(cwd, 'here.gguf'), 'x');
  writeFileSync(join(cwd, 'p.jsonl'), '{"prompt":"a"}\n');
  const synthetic = { synthetic: { n: 1, input_len: 1 } };

  it('names a missing llamacpp model and dataset with where each was looked for', () => {
    expect(
      missingInputFiles(
        { engine: 'llamacpp', model: 'gone.gguf', dataset: { path: 'no.jsonl' } },
        cwd,
      ),
    ).toEqual([
      { field: 'model', value: 'gone.gguf', resolved: join(cwd, 'gone.gguf') },
      { field: 'dataset', value: 'no.jsonl', resolved: join(cwd, 'no.jsonl') },
    ]);
    expect(
      missingInputFiles({ engine: 'llamacpp', model: '/abs/x.gguf', dataset: synthetic }, cwd),
    ).toEqual([{ field: 'model', value: '/abs/x.gguf', resolved: '/abs/x.gguf' }]);
  });

  it('existing files, builtin models, synthetic datasets and command/openai model names pass', () => {
    expect(
      missingInputFiles({ engine: 'llamacpp', model: 'here.gguf', dataset: 'p.jsonl' }, cwd),
    ).toEqual([]);
    expect(
      missingInputFiles({ engine: 'llamacpp', model: 'builtin:tiny', dataset: synthetic }, cwd),
    ).toEqual([]);
    expect(
      missingInputFiles({ engine: 'command', model: 'meta-llama/x', dataset: synthetic }, cwd),
    ).toEqual([]);
    expect(
      missingInputFiles({ engine: 'openai', model: 'gpt-x', dataset: synthetic }, cwd),
    ).toEqual([]);
  });
});
