import type { EngineTokenizer, TokenizerProbe } from '../engine';
import type { HttpAnswer } from './ready';

/** Posts a JSON body to an absolute URL through the engine's connection pool. */
export type TokenizePost = (url: string, body: string) => Promise<HttpAnswer>;

/**
 * The two request shapes servers take at `/tokenize`. vLLM: `{model, prompt,
 * add_special_tokens}` answering `{tokens, count, max_model_len}`; llama-server: `{content,
 * add_special}` answering `{tokens}`. Special tokens are left out in both, so a count is the
 * text's alone (the server's usage adds BOS on top).
 */
const DIALECTS = [
  {
    name: 'vLLM',
    body: (model: string, text: string) => ({ model, prompt: text, add_special_tokens: false }),
  },
  {
    name: 'llama-server',
    body: (_model: string, text: string) => ({ content: text, add_special: false }),
  },
] as const;

/** A text every tokenizer splits into several tokens, to tell a real answer from an empty one. */
const PROBE_TEXT = 'the quick brown fox jumps over the lazy dog';

/**
 * Where a server's tokenizer may answer: `/tokenize` at the server root (vLLM and llama-server,
 * whose API lives under `/v1`), then under the base URL itself.
 *
 * @example
 * tokenizeUrls('http://127.0.0.1:8000/v1'); // ['http://127.0.0.1:8000/tokenize', 'http://127.0.0.1:8000/v1/tokenize']
 */
export function tokenizeUrls(baseUrl: string): string[] {
  const base = baseUrl.replace(/\/+$/, '');
  const root = base.replace(/\/v1$/, '');
  return [...new Set([`${root}/tokenize`, `${base}/tokenize`])];
}

function tokensOf(answer: HttpAnswer): number[] | null {
  if (answer.status !== 200) return null;
  let body: unknown;
  try {
    body = JSON.parse(answer.body);
  } catch {
    return null;
  }
  const tokens = (body as { tokens?: unknown } | null)?.tokens;
  if (!Array.isArray(tokens) || !tokens.every((t) => Number.isInteger(t))) return null;
  return tokens as number[];
}

/**
 * Finds the server's tokenizer: tries each URL of {@link tokenizeUrls} with each request shape
 * until one answers a known text with token ids. `{ unavailable }` says what was tried when none
 * does (a server without the endpoint, e.g. api.openai.com, TGI, Ollama).
 *
 * @example
 * const probe = await findServerTokenizer(post, { baseUrl, model, shownUrl });
 * if (!('unavailable' in probe)) await probe.tokenize('hello world');
 */
export async function findServerTokenizer(
  post: TokenizePost,
  options: { baseUrl: string; model: string; shownUrl: string },
): Promise<TokenizerProbe> {
  const tried: string[] = [];
  // The same URLs without credentials, for messages and the result.
  const shownUrls = tokenizeUrls(options.shownUrl);
  for (const [i, url] of tokenizeUrls(options.baseUrl).entries()) {
    const shown = shownUrls[i] ?? url;
    for (const dialect of DIALECTS) {
      let answer: HttpAnswer;
      try {
        answer = await post(url, JSON.stringify(dialect.body(options.model, PROBE_TEXT)));
      } catch (error) {
        tried.push(`${shown} (${(error as Error).message})`);
        break;
      }
      const tokens = tokensOf(answer);
      if (tokens !== null && tokens.length > 0) {
        const tokenizer: EngineTokenizer = {
          source: `server /tokenize (${dialect.name} request shape, ${shown})`,
          tokenize: async (text) => {
            const reply = await post(url, JSON.stringify(dialect.body(options.model, text)));
            const ids = tokensOf(reply);
            if (ids === null)
              throw new Error(
                `${shown} answered HTTP ${reply.status} without token ids: ${reply.body.slice(0, 200)}`,
              );
            return ids;
          },
        };
        return tokenizer;
      }
      tried.push(`${shown} (${dialect.name} shape: HTTP ${answer.status})`);
    }
  }
  return {
    unavailable: `the server has no usable /tokenize endpoint (tried ${tried.join(', ')})`,
  };
}
