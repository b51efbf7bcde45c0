import { fnv1a, mulberry32 } from '@llem/domain';

// Generated prompt text: words drawn from a short list of common English words. Most tokenizers
// map each to one token, so N words ≈ N tokens; where the engine can tokenize, the words it
// does not map to one token are left out and prompts are fitted to the exact count.

export const WORDS: readonly string[] = (
  'the of and to in is it that for on with as was at by be this from or have an are not but ' +
  'what all were when we there can more one use each which she do how their if will up other ' +
  'about out many then them these so some her would make like him into time has look two go ' +
  'see way could people my than first water been call who its now find long down day did get ' +
  'come made may part over new sound take only little work know place year live me back give ' +
  'most very after thing our just name good sentence man think say great where help through'
).split(' ');

/** `length` words drawn from `random` out of `vocabulary`. */
export function drawWords(
  random: () => number,
  length: number,
  vocabulary: readonly string[] = WORDS,
): string[] {
  const words: string[] = new Array(length);
  for (let w = 0; w < length; w++)
    words[w] = vocabulary[Math.floor(random() * vocabulary.length)] as string;
  return words;
}

/**
 * Deterministic word streams for one workload. `main` is one sequential stream from
 * `mulberry32(seed)` (a plain synthetic dataset's prompts are its consecutive slices, as they
 * always were); `keyed(key, n)` is the first `n` words of a stream of its own per key (a shared
 * prefix, a trace's hash block, a conversation's turn), so equal keys give equal text wherever
 * they appear, and a shorter take is a prefix of a longer one.
 */
export class WordStreams {
  readonly #main: () => number;
  readonly #seed: number;
  readonly #vocabulary: readonly string[];
  readonly #keyed = new Map<string, { random: () => number; words: string[] }>();

  constructor(seed: number, vocabulary: readonly string[] = WORDS) {
    this.#seed = seed >>> 0;
    this.#main = mulberry32(this.#seed);
    this.#vocabulary = vocabulary;
  }

  /** The next `n` words of the main stream. */
  main(n: number): string[] {
    return drawWords(this.#main, n, this.#vocabulary);
  }

  /** The first `n` words of the stream named `key`. */
  keyed(key: string, n: number): string[] {
    let stream = this.#keyed.get(key);
    if (!stream) {
      stream = { random: mulberry32((this.#seed ^ fnv1a(key)) >>> 0), words: [] };
      this.#keyed.set(key, stream);
    }
    if (stream.words.length < n)
      stream.words = stream.words.concat(
        drawWords(stream.random, n - stream.words.length, this.#vocabulary),
      );
    return stream.words.slice(0, n);
  }
}
