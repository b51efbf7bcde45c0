/**
 * The test server's tokenizer: one token per whitespace-separated word, so a prompt's token
 * count is predictable in tests (`/tokenize`, `usage.prompt_tokens`, the prompt cache).
 */

/** Words of a text: its tokens. */
export function wordCount(text: string): number {
  let n = 0;
  for (const word of text.split(/\s+/)) if (word !== '') n++;
  return n;
}

/** A stable id per word (FNV-1a, 31 bits), as `/tokenize` returns them. */
export function tokenIds(text: string): number[] {
  const ids: number[] = [];
  for (const word of text.split(/\s+/)) {
    if (word === '') continue;
    let h = 0x811c9dc5;
    for (let i = 0; i < word.length; i++) {
      h ^= word.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
    ids.push((h >>> 0) & 0x7fffffff);
  }
  return ids;
}
