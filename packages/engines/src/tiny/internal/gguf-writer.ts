import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';

/**
 * A minimal GGUF v3 writer: enough of the format to describe a llama model with F32/F16 tensors.
 * Spec: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md. All integers little-endian.
 */

/** GGUF metadata value types (gguf.md, `gguf_metadata_value_type`). */
export const GgufValueType = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;

/** The two ggml tensor types this writer can emit. */
export const GgmlTensorType = { F32: 0, F16: 1 } as const;
export type GgmlTensorTypeId = (typeof GgmlTensorType)[keyof typeof GgmlTensorType];

/** A metadata value with its GGUF type spelled out, so a number is never written as the wrong width. */
export type GgufValue =
  | { type: 'u32'; value: number }
  | { type: 'i32'; value: number }
  | { type: 'f32'; value: number }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'string[]'; value: readonly string[] }
  | { type: 'f32[]'; value: ArrayLike<number> }
  | { type: 'i32[]'; value: ArrayLike<number> };

export interface GgufTensorSpec {
  name: string;
  /** ggml order: `dims[0]` is the fastest-varying (row length). */
  dims: readonly number[];
  type: GgmlTensorTypeId;
  /** Fills `out` (length = product of dims) with the tensor's values, in row-major ggml order. */
  fill: (out: Float32Array) => void;
}

export interface GgufDocument {
  metadata: ReadonlyArray<readonly [string, GgufValue]>;
  tensors: readonly GgufTensorSpec[];
  /** Tensor data alignment; written as `general.alignment` when it is not the default 32. */
  alignment?: number;
}

const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
const GGUF_VERSION = 3;
const DEFAULT_ALIGNMENT = 32;

/** Grows a byte buffer for the header, which is small (KBs) compared with the tensor data. */
class ByteSink {
  private buf = Buffer.alloc(1 << 16);
  length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = Buffer.alloc(size);
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }
  u32(v: number): void {
    this.reserve(4);
    this.buf.writeUInt32LE(v, this.length);
    this.length += 4;
  }
  i32(v: number): void {
    this.reserve(4);
    this.buf.writeInt32LE(v, this.length);
    this.length += 4;
  }
  u64(v: number): void {
    this.reserve(8);
    this.buf.writeBigUInt64LE(BigInt(v), this.length);
    this.length += 8;
  }
  f32(v: number): void {
    this.reserve(4);
    this.buf.writeFloatLE(v, this.length);
    this.length += 4;
  }
  u8(v: number): void {
    this.reserve(1);
    this.buf.writeUInt8(v, this.length);
    this.length += 1;
  }
  string(s: string): void {
    const bytes = Buffer.from(s, 'utf8');
    this.u64(bytes.length);
    this.reserve(bytes.length);
    bytes.copy(this.buf, this.length);
    this.length += bytes.length;
  }
  pad(alignment: number): void {
    const rem = this.length % alignment;
    if (rem === 0) return;
    const n = alignment - rem;
    this.reserve(n);
    this.buf.fill(0, this.length, this.length + n);
    this.length += n;
  }
  bytes(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

function writeValue(sink: ByteSink, v: GgufValue): void {
  switch (v.type) {
    case 'u32':
      sink.u32(GgufValueType.UINT32);
      sink.u32(v.value);
      return;
    case 'i32':
      sink.u32(GgufValueType.INT32);
      sink.i32(v.value);
      return;
    case 'f32':
      sink.u32(GgufValueType.FLOAT32);
      sink.f32(v.value);
      return;
    case 'bool':
      sink.u32(GgufValueType.BOOL);
      sink.u8(v.value ? 1 : 0);
      return;
    case 'string':
      sink.u32(GgufValueType.STRING);
      sink.string(v.value);
      return;
    case 'string[]':
      sink.u32(GgufValueType.ARRAY);
      sink.u32(GgufValueType.STRING);
      sink.u64(v.value.length);
      for (const s of v.value) sink.string(s);
      return;
    case 'f32[]':
      sink.u32(GgufValueType.ARRAY);
      sink.u32(GgufValueType.FLOAT32);
      sink.u64(v.value.length);
      for (let i = 0; i < v.value.length; i++) sink.f32(v.value[i] as number);
      return;
    case 'i32[]':
      sink.u32(GgufValueType.ARRAY);
      sink.u32(GgufValueType.INT32);
      sink.u64(v.value.length);
      for (let i = 0; i < v.value.length; i++) sink.i32(v.value[i] as number);
      return;
  }
}

function elementCount(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

function bytesPerElement(type: GgmlTensorTypeId): number {
  return type === GgmlTensorType.F32 ? 4 : 2;
}

function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

/** Converts a float to IEEE 754 half precision bits, rounding to nearest even. */
export function float32ToFloat16Bits(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0] as number;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // inf / NaN
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow → inf
  if (e <= 0) {
    if (e < -10) return sign; // underflow → ±0
    mant |= 0x800000; // subnormal: restore the implicit bit, then shift into place
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa bumps the exponent, which is exactly the correctly rounded value.
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half;
}
const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** Header bytes, tensor data offsets and the total file size, without generating any data. */
export function layoutGguf(doc: GgufDocument): {
  header: Buffer;
  offsets: number[];
  totalBytes: number;
} {
  const alignment = doc.alignment ?? DEFAULT_ALIGNMENT;
  const metadata = [...doc.metadata];
  if (alignment !== DEFAULT_ALIGNMENT)
    metadata.push(['general.alignment', { type: 'u32', value: alignment }]);
  const sink = new ByteSink();
  sink.u32(GGUF_MAGIC);
  sink.u32(GGUF_VERSION);
  sink.u64(doc.tensors.length);
  sink.u64(metadata.length);
  for (const [key, value] of metadata) {
    sink.string(key);
    writeValue(sink, value);
  }
  const offsets: number[] = [];
  let offset = 0;
  for (const t of doc.tensors) {
    sink.string(t.name);
    sink.u32(t.dims.length);
    for (const d of t.dims) sink.u64(d);
    sink.u32(t.type);
    offsets.push(offset);
    sink.u64(offset);
    offset = alignUp(offset + elementCount(t.dims) * bytesPerElement(t.type), alignment);
  }
  sink.pad(alignment);
  const header = Buffer.from(sink.bytes());
  return { header, offsets, totalBytes: header.length + offset };
}

/**
 * Writes a GGUF file atomically: a temporary file beside the target, fsync, then rename, so a
 * reader never sees half a model and a crash leaves no truncated file under the final name.
 *
 * @example
 * await writeGguf('/tmp/m.gguf', { metadata: [['general.architecture', { type: 'string', value: 'llama' }]], tensors: [] });
 */
export async function writeGguf(path: string, doc: GgufDocument): Promise<void> {
  const alignment = doc.alignment ?? DEFAULT_ALIGNMENT;
  const { header, offsets } = layoutGguf(doc);
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    let position = 0;
    await fh.write(header, 0, header.length, position);
    position += header.length;
    const dataStart = position;
    for (const [i, t] of doc.tensors.entries()) {
      const n = elementCount(t.dims);
      const values = new Float32Array(n);
      t.fill(values);
      let bytes: Buffer;
      if (t.type === GgmlTensorType.F32) {
        bytes = Buffer.from(values.buffer, values.byteOffset, values.byteLength);
      } else {
        const half = new Uint16Array(n);
        for (let j = 0; j < n; j++) half[j] = float32ToFloat16Bits(values[j] as number);
        bytes = Buffer.from(half.buffer, half.byteOffset, half.byteLength);
      }
      const at = dataStart + (offsets[i] as number);
      if (at > position) {
        await fh.write(Buffer.alloc(at - position), 0, at - position, position);
        position = at;
      }
      await fh.write(bytes, 0, bytes.length, position);
      position += bytes.length;
    }
    const end = alignUp(position - dataStart, alignment) + dataStart;
    if (end > position) await fh.write(Buffer.alloc(end - position), 0, end - position, position);
    await fh.sync();
  } catch (error) {
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw error;
  }
  await fh.close();
  await rename(tmp, path);
}
