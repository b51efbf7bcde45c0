/**
 * The benchmark's server, in its own process so that it does not share the engine's core.
 * Started by openai.bench.ts with `fork`; the script comes from LLEM_BENCH_SCRIPT (JSON).
 * Messages: → parent `{ port }` once listening; parent → `{ stats: true }` → `{ gapsP50, writes }`.
 */
import { type Script, startOpenAIServer } from '../test/support/openai-server';

const script = JSON.parse(process.env.LLEM_BENCH_SCRIPT ?? '{}') as Script;
const server = await startOpenAIServer({ scenario: () => script, lifetimeMs: 10 * 60_000 });

process.on('message', (message: { stats?: boolean; reset?: boolean }) => {
  if (message.reset) {
    server.requests.length = 0;
    process.send?.({ reset: true });
    return;
  }
  if (!message.stats) return;
  const gaps: number[] = [];
  let writes = 0;
  for (const r of server.requests) {
    writes += r.chunkWrittenAt.length;
    for (let i = 1; i < r.chunkWrittenAt.length; i++) {
      gaps.push(r.chunkWrittenAt[i]! - r.chunkWrittenAt[i - 1]!);
    }
  }
  gaps.sort((a, b) => a - b);
  process.send?.({ gapsP50: gaps[Math.floor(gaps.length / 2)] ?? null, writes });
});
process.on('disconnect', () => {
  void server.close().then(() => process.exit(0));
});
process.send?.({ port: server.port });
