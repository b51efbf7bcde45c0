/** Shape of a generated builtin:tiny model. */
export interface TinyModelSpec {
  /** Variant name; part of the cached file name. */
  variant: 'tiny' | 'micro';
  /** Bumped whenever the generator's output changes, so stale caches are regenerated. */
  generatorVersion: number;
  embeddingLength: number;
  blockCount: number;
  headCount: number;
  headCountKv: number;
  feedForwardLength: number;
  contextLength: number;
  /** Weight seed for the PRNG; the same seed always gives byte-identical files. */
  seed: number;
  /** Storage type of the 2-D weight matrices (norm vectors are always F32). */
  weightType: 'f16' | 'f32';
  vocabSize: number;
  /** Total number of weights, for FLOPs estimates (2 × parameters × tokens). */
  parameterCount: number;
}

type SpecInput = Omit<TinyModelSpec, 'parameterCount'>;

function withParameterCount(s: SpecInput): TinyModelSpec {
  const d = s.embeddingLength;
  const kvDim = (d / s.headCount) * s.headCountKv;
  const perBlock = 2 * d + d * d + 2 * d * kvDim + d * d + 3 * d * s.feedForwardLength;
  const parameterCount = 2 * s.vocabSize * d + d + s.blockCount * perBlock;
  return { ...s, parameterCount };
}

// Must equal buildTinyVocab().tokens.length; a test keeps the two in step.
export const TINY_VOCAB_SIZE = 938;

/**
 * The default builtin:tiny model: about 27 M parameters (F16, ~55 MB), sized so that a quickstart
 * run on a 2-core CPU takes seconds rather than milliseconds while the file is still quick to
 * generate.
 */
export const tinyModelSpec: TinyModelSpec = withParameterCount({
  variant: 'tiny',
  generatorVersion: 1,
  embeddingLength: 512,
  blockCount: 8,
  headCount: 8,
  headCountKv: 8,
  feedForwardLength: 1408,
  contextLength: 2048,
  seed: 20_241_122,
  weightType: 'f16',
  vocabSize: TINY_VOCAB_SIZE,
});

/** A much smaller sibling (~0.2 M parameters) for fast tests of anything that needs a real model. */
export const microModelSpec: TinyModelSpec = withParameterCount({
  variant: 'micro',
  generatorVersion: 1,
  embeddingLength: 64,
  blockCount: 2,
  headCount: 4,
  headCountKv: 2,
  feedForwardLength: 128,
  contextLength: 1024,
  seed: 7,
  weightType: 'f32',
  vocabSize: TINY_VOCAB_SIZE,
});
