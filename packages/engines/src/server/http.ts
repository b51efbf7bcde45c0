import http from 'node:http';
import https from 'node:https';

/** An HTTP answer: status and body text. */
export interface HttpText {
  status: number;
  body: string;
}

/** Answers larger than this are cut (a `/metrics` page is a few hundred KB at most). */
const MAX_BODY_CHARS = 32 * 1024 * 1024;

/**
 * GET `url` on a fresh connection (no keep-alive: one request per second or less, and a socket
 * of a server that is restarting must never be reused), within `timeoutMs`.
 */
export function httpGetText(
  url: string,
  options: { timeoutMs: number; signal?: AbortSignal | undefined },
): Promise<HttpText> {
  const transport = url.startsWith('https:') ? https : http;
  return new Promise((resolve, reject) => {
    const req = transport.get(url, {
      agent: false,
      timeout: options.timeoutMs,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    req.on('timeout', () => {
      const error: NodeJS.ErrnoException = new Error(`no answer in ${options.timeoutMs} ms`);
      error.code = 'ETIMEDOUT';
      req.destroy(error);
    });
    req.on('error', reject);
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (body.length < MAX_BODY_CHARS) body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
  });
}

/** A socket error in a few words: `connection refused (ECONNREFUSED)`. */
export function describeHttpError(error: unknown): string {
  const e = error as NodeJS.ErrnoException;
  const words: Record<string, string> = {
    ECONNREFUSED: 'connection refused',
    ECONNRESET: 'connection reset',
    ETIMEDOUT: 'no answer in time',
    EHOSTUNREACH: 'host unreachable',
  };
  const code = e?.code;
  if (code && words[code]) return `${words[code]} (${code})`;
  return e?.message ?? String(error);
}
