import type { RequestRecord } from './engine';

/**
 * A request's time per output token, as vLLM computes TPOT: (E2E − TTFT) / (output tokens − 1),
 * with the request's final token count (the server's usage where it sent one), so tokens that
 * arrived several to a chunk still count one each. `null` for a failed request, no first token,
 * or fewer than two output tokens. Every engine's records are judged by this one definition (the
 * harness's TPOT percentiles, the openai engine's goodput).
 *
 * @example
 * requestTpotMs({ startedAt: 0, firstTokenAt: 100, endedAt: 1100, outputTokens: 51, … }); // 20
 */
export function requestTpotMs(record: RequestRecord): number | null {
  const { firstTokenAt, outputTokens } = record;
  if (record.error || firstTokenAt === null || outputTokens === null || outputTokens < 2) {
    return null;
  }
  return Math.max(0, record.endedAt - firstTokenAt) / (outputTokens - 1);
}
