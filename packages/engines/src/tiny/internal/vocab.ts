/**
 * The builtin:tiny vocabulary: a SentencePiece-style ("llama" tokenizer model) vocabulary that
 * llama.cpp's SPM tokenizer accepts. Every byte has a `<0xXX>` byte-fallback token, so any text
 * at all tokenizes; common English words get whole-word pieces so ordinary prompts produce a
 * realistic number of tokens rather than one per byte.
 */

/** llama.cpp token types (`llama_token_type`): the values stored in `tokenizer.ggml.token_type`. */
export const TokenType = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, BYTE: 6 } as const;

/** SentencePiece's word-boundary marker (U+2581), which stands for a leading space. */
const SPACE = '\u2581';

// A few hundred frequent English words. Their prefixes become pieces too, because the SPM merge
// procedure only reaches a piece through adjacent pieces that are themselves in the vocabulary.
const WORDS = `the of and to in is was that for it as with be on by he at this are from or had
not but have an they which one you were her all she there would their we him been has when who
will more no if out so said what up its about into than them can only other new some could time
these two may then do first any my now such like our over man me even most made after also did
many before must through back years where much your way well down should because each just those
people how too little state good very make world still own see men work long get here between
both life being under never day same another know while last might us great old year off come
since against go came right used take three energy power token model cost batch cache memory
latency throughput measure run study light water small large number point system program question
during without again place around however home small found thought went say part once general
high upon school every does got united left number course war until always away something fact
though less public put think almost hand enough far took head yet government system better set
told nothing night end why called didn eyes find going look asked later knew`
  .split(/\s+/)
  .filter((w) => w.length > 0);

export interface TinyVocab {
  tokens: string[];
  scores: number[];
  tokenTypes: number[];
  unkId: number;
  bosId: number;
  eosId: number;
}

/** Builds the vocabulary; deterministic, so the same ids mean the same text in every build. */
export function buildTinyVocab(): TinyVocab {
  const tokens: string[] = ['<unk>', '<s>', '</s>'];
  const scores: number[] = [0, 0, 0];
  const tokenTypes: number[] = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    scores.push(0);
    tokenTypes.push(TokenType.BYTE);
  }
  const seen = new Set<string>();
  const add = (piece: string): void => {
    if (seen.has(piece)) return;
    seen.add(piece);
    tokens.push(piece);
    // SPM merges the adjacent pair whose result scores highest: prefer longer pieces, then
    // earlier (more frequent) ones, so the tokenization is greedy over whole words.
    scores.push(piece.length * 1000 - tokens.length);
    tokenTypes.push(TokenType.NORMAL);
  };
  add(SPACE);
  for (let c = 0x21; c < 0x7f; c++) add(String.fromCharCode(c));
  for (const word of WORDS) {
    const piece = SPACE + word;
    for (let end = 2; end <= piece.length; end++) add(piece.slice(0, end));
  }
  return { tokens, scores, tokenTypes, unkId: 0, bosId: 1, eosId: 2 };
}
