import { createHash } from 'node:crypto';
import { mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gguf } from '@huggingface/gguf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readGgufMetadata } from '../src/llamacpp/index';
import {
  defaultModelCacheDir,
  ensureTinyModel,
  microModelSpec,
  tinyModelFileName,
  tinyModelSpec,
} from '../src/tiny/index';
import { float32ToFloat16Bits, layoutGguf, writeGguf } from '../src/tiny/internal/gguf-writer';
import { buildTinyModelDocument } from '../src/tiny/internal/model';
import { buildTinyVocab, TokenType } from '../src/tiny/internal/vocab';
import { TINY_VOCAB_SIZE } from '../src/tiny/spec';

let dir: string;
let microPath: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'llem-tiny-'));
  microPath = await ensureTinyModel({ cacheDir: dir, spec: microModelSpec });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function sha256(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}

describe('float32ToFloat16Bits', () => {
  it.each([
    [1, 0x3c00],
    [-2, 0xc000],
    [0.5, 0x3800],
    [65504, 0x7bff], // largest finite half
    [0.1, 0x2e66],
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -14, 0x0400], // smallest normal
    [1e-9, 0x0000], // underflows to zero
    [70000, 0x7c00], // overflows to infinity
    [Number.POSITIVE_INFINITY, 0x7c00],
    [Number.NEGATIVE_INFINITY, 0xfc00],
    [1 + 2 ** -11, 0x3c00], // exactly halfway: ties to even (down)
    [1 + 3 * 2 ** -11, 0x3c02], // exactly halfway: ties to even (up)
  ])('%d → 0x%s', (value, bits) => {
    expect(float32ToFloat16Bits(value)).toBe(bits);
  });

  it('encodes NaN as a NaN', () => {
    const bits = float32ToFloat16Bits(Number.NaN);
    expect(bits & 0x7c00).toBe(0x7c00);
    expect(bits & 0x3ff).not.toBe(0);
  });
});

describe('tiny vocabulary', () => {
  it('matches the size the specs declare and has unique pieces', () => {
    const vocab = buildTinyVocab();
    expect(vocab.tokens.length).toBe(TINY_VOCAB_SIZE);
    expect(new Set(vocab.tokens).size).toBe(vocab.tokens.length);
  });

  it('has a byte-fallback token for every byte, so any text tokenizes', () => {
    const vocab = buildTinyVocab();
    const bytes = vocab.tokens.filter((_, i) => vocab.tokenTypes[i] === TokenType.BYTE);
    expect(bytes).toHaveLength(256);
    expect(bytes[0x0a]).toBe('<0x0A>');
  });
});

describe('GGUF writer, read back by @huggingface/gguf', () => {
  it('writes a GGUF v3 llama model that a third-party parser reads', async () => {
    const parsed = await gguf(microPath, { allowLocalFile: true, computeParametersCount: true });
    const m = parsed.metadata as unknown as Record<string, unknown>;
    expect(m.version).toBe(3);
    expect(m['general.architecture']).toBe('llama');
    expect(m['llama.block_count']).toBe(microModelSpec.blockCount);
    expect(m['llama.embedding_length']).toBe(microModelSpec.embeddingLength);
    expect(m['llama.attention.head_count_kv']).toBe(microModelSpec.headCountKv);
    expect(m['llama.context_length']).toBe(microModelSpec.contextLength);
    expect(m['tokenizer.ggml.model']).toBe('llama');
    expect(m['tokenizer.ggml.tokens']).toHaveLength(TINY_VOCAB_SIZE);
    expect(m['tokenizer.ggml.eos_token_id']).toBe(2);
    expect(parsed.parameterCount).toBe(microModelSpec.parameterCount);
    // token_embd, output_norm, output + 9 tensors per block
    expect(parsed.tensorInfos).toHaveLength(3 + 9 * microModelSpec.blockCount);
    const embd = parsed.tensorInfos.find((t) => t.name === 'token_embd.weight');
    expect(embd?.shape).toEqual([BigInt(microModelSpec.embeddingLength), BigInt(TINY_VOCAB_SIZE)]);
    const k = parsed.tensorInfos.find((t) => t.name === 'blk.1.attn_k.weight');
    const kvDim =
      (microModelSpec.embeddingLength / microModelSpec.headCount) * microModelSpec.headCountKv;
    expect(k?.shape).toEqual([BigInt(microModelSpec.embeddingLength), BigInt(kvDim)]);
    expect(Number(parsed.tensorDataOffset) % 32).toBe(0);
    for (const t of parsed.tensorInfos) expect(Number(t.offset) % 32).toBe(0);
  });

  it('stores tensor data where the tensor infos say (norms are ones, the constant dimension is 1)', async () => {
    const parsed = await gguf(microPath, { allowLocalFile: true });
    const file = await readFile(microPath);
    const at = (name: string) => {
      const t = parsed.tensorInfos.find((x) => x.name === name);
      if (!t) throw new Error(`no tensor ${name}`);
      return Number(parsed.tensorDataOffset + t.offset);
    };
    const d = microModelSpec.embeddingLength;
    const norm = at('blk.0.attn_norm.weight');
    for (let i = 0; i < d; i++) expect(file.readFloatLE(norm + 4 * i)).toBe(1);
    const embd = at('token_embd.weight');
    for (const token of [0, 5, TINY_VOCAB_SIZE - 1]) {
      expect(file.readFloatLE(embd + 4 * token * d)).toBe(1);
    }
    // The last tensor ends inside the file.
    const last = parsed.tensorInfos.at(-1);
    if (!last) throw new Error('no tensors');
    const lastBytes = last.shape.reduce((a, b) => a * Number(b), 4);
    expect(at(last.name) + lastBytes).toBeLessThanOrEqual(file.length);
  });

  it('declares the exact file size its layout computes', async () => {
    const doc = buildTinyModelDocument(microModelSpec, 'x');
    const written = join(dir, 'layout.gguf');
    await writeGguf(written, doc);
    expect((await stat(written)).size).toBe(layoutGguf(doc).totalBytes);
  });

  it('writes F16 matrices for the default model and counts its parameters', () => {
    const doc = buildTinyModelDocument(tinyModelSpec, 'x');
    const total = doc.tensors.reduce((sum, t) => sum + t.dims.reduce((a, b) => a * b, 1), 0);
    expect(total).toBe(tinyModelSpec.parameterCount);
    expect(tinyModelSpec.parameterCount).toBeGreaterThan(20_000_000);
    expect(doc.tensors.find((t) => t.name === 'blk.0.ffn_up.weight')?.type).toBe(1);
    expect(doc.tensors.find((t) => t.name === 'output_norm.weight')?.type).toBe(0);
  });
});

describe('ensureTinyModel', () => {
  it('generates byte-identical files from the same spec', async () => {
    const other = await mkdtemp(join(tmpdir(), 'llem-tiny-b-'));
    try {
      const again = await ensureTinyModel({ cacheDir: other, spec: microModelSpec });
      expect(again).not.toBe(microPath);
      expect(await sha256(again)).toBe(await sha256(microPath));
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });

  it('reuses a valid cached file without rewriting it', async () => {
    const before = await stat(microPath);
    const path = await ensureTinyModel({ cacheDir: dir, spec: microModelSpec });
    expect(path).toBe(microPath);
    const after = await stat(microPath);
    expect(after.ino).toBe(before.ino);
    expect(after.mtimeMs).toBe(before.mtimeMs);
  });

  it('regenerates a corrupted cached file', async () => {
    const good = await sha256(microPath);
    const fh = await open(microPath, 'r+');
    await fh.write(Buffer.from([0xde, 0xad, 0xbe, 0xef]), 0, 4, 4096);
    await fh.close();
    expect(await sha256(microPath)).not.toBe(good);
    await ensureTinyModel({ cacheDir: dir, spec: microModelSpec });
    expect(await sha256(microPath)).toBe(good);
  });

  it('regenerates a truncated file and one whose checksum record is missing', async () => {
    const good = await sha256(microPath);
    await writeFile(microPath, Buffer.alloc(100));
    await ensureTinyModel({ cacheDir: dir, spec: microModelSpec });
    expect(await sha256(microPath)).toBe(good);
    await rm(`${microPath}.sha256`);
    await ensureTinyModel({ cacheDir: dir, spec: microModelSpec });
    expect(await readFile(`${microPath}.sha256`, 'utf8')).toBe(`${good}\n`);
  });

  it('names files by spec version, so a changed spec never reuses an old file', () => {
    const changed = { ...microModelSpec, seed: microModelSpec.seed + 1 };
    expect(tinyModelFileName(changed)).not.toBe(tinyModelFileName(microModelSpec));
    expect(tinyModelFileName(tinyModelSpec)).toMatch(/^tiny-v\d+-[0-9a-f]{10}\.gguf$/);
  });

  it('defaults to $LLEM_CACHE_DIR/models, else ~/.cache/llem/models', () => {
    expect(defaultModelCacheDir({ LLEM_CACHE_DIR: '/c' })).toBe('/c/models');
    expect(defaultModelCacheDir({ XDG_CACHE_HOME: '/x' })).toBe('/x/llem/models');
    expect(defaultModelCacheDir({})).toMatch(/\.cache\/llem\/models$/);
  });
});

describe('readGgufMetadata', () => {
  it('gives architecture, parameter count and context length', async () => {
    const meta = await readGgufMetadata(microPath);
    expect(meta).toMatchObject({
      architecture: 'llama',
      name: 'llem builtin:micro',
      parameterCount: microModelSpec.parameterCount,
      contextLength: microModelSpec.contextLength,
      embeddingLength: microModelSpec.embeddingLength,
      blockCount: microModelSpec.blockCount,
      fileType: 0,
    });
    expect(meta.fileBytes).toBe((await stat(microPath)).size);
  });

  it('says MODEL_NOT_FOUND for a missing file and MODEL_LOAD_FAILED for a non-GGUF one', async () => {
    await expect(readGgufMetadata(join(dir, 'nope.gguf'))).rejects.toMatchObject({
      name: 'EngineError',
      code: 'MODEL_NOT_FOUND',
    });
    const junk = join(dir, 'junk.gguf');
    await writeFile(junk, 'this is not a model');
    await expect(readGgufMetadata(junk)).rejects.toMatchObject({
      name: 'EngineError',
      code: 'MODEL_LOAD_FAILED',
      message: expect.stringContaining(junk),
    });
  });
});
