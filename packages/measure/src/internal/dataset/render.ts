import type { EngineTokenizer } from '@llem/engines';
import pLimit from 'p-limit';
import { type PromptPlan, plannedLength } from './plans';
import { WORDS, WordStreams } from './words';

// Turning planned prompts into text: approximately (one word per token), or fitted to the
// engine's tokenizer so each prompt has exactly its planned number of tokens.

/** Tokenizer calls in flight at once (a server's `/tokenize` answers in about a millisecond). */
export const TOKENIZE_CONCURRENCY = 8;
/** Attempts to fit one prompt before settling for the closest length. */
const FIT_ATTEMPTS = 6;

export interface RenderedPrompts {
  prompts: string[];
  /** Each prompt's length in tokens: counted when fitted, else the planned length. */
  lengths: number[];
  /** Prompts whose fitted length missed the plan (0 when approximate). */
  missed: number;
}

/** Words of each plan's main-stream segments, drawn in plan order so the text is deterministic. */
function drawMain(plans: readonly PromptPlan[], streams: WordStreams): string[][][] {
  return plans.map((plan) =>
    plan.segments.map((s) => (s.key === null ? streams.main(s.tokens) : [])),
  );
}

function render(
  plan: PromptPlan,
  index: number,
  counts: readonly number[],
  main: readonly string[][],
  streams: WordStreams,
): string {
  const parts: string[] = [];
  for (const [j, segment] of plan.segments.entries()) {
    const k = counts[j] as number;
    if (segment.key !== null) {
      parts.push(streams.keyed(segment.key, k).join(' '));
      continue;
    }
    const drawn = main[j] as string[];
    // A main-stream segment lengthened by fitting continues in a stream of its own, so the
    // main stream's draws never depend on the order prompts are fitted in.
    const words =
      k <= drawn.length
        ? drawn.slice(0, k)
        : drawn.concat(streams.keyed(`more:${index}`, k - drawn.length));
    parts.push(words.join(' '));
  }
  return parts.filter((p) => p !== '').join(' ');
}

/**
 * Prompts of their planned lengths, one generated word per token (most tokenizers map each of
 * llem's words to one token, so lengths are approximate). Deterministic for the seed.
 *
 * @example
 * renderApproximate(plans, 42).prompts[0]; // 'the of and …'
 */
export function renderApproximate(plans: readonly PromptPlan[], seed: number): RenderedPrompts {
  const streams = new WordStreams(seed);
  const main = drawMain(plans, streams);
  const prompts = plans.map((plan, i) =>
    render(
      plan,
      i,
      plan.segments.map((s) => s.tokens),
      main[i] as string[][],
      streams,
    ),
  );
  return { prompts, lengths: plans.map(plannedLength), missed: 0 };
}

/**
 * The generator's words that the tokenizer counts as exactly one token after another word:
 * all of them when the whole list tokenizes to one token a word (the usual case), else those
 * found one by one. Fitting draws only from these.
 */
export async function unitWords(tokenizer: EngineTokenizer): Promise<string[]> {
  if ((await tokenizer.tokenize(WORDS.join(' '))).length === WORDS.length) return [...WORDS];
  const base = (await tokenizer.tokenize('the')).length;
  const limit = pLimit(TOKENIZE_CONCURRENCY);
  const unit = await Promise.all(
    WORDS.map((w) => limit(async () => (await tokenizer.tokenize(`the ${w}`)).length === base + 1)),
  );
  return WORDS.filter((_, i) => unit[i]);
}

/**
 * Prompts fitted to the tokenizer: each is rendered at its planned segment lengths, counted, and
 * its last segment (the request's own part) lengthened or shortened by the difference until the
 * count is the planned length (a few attempts; words the tokenizer merges across a boundary are
 * rare). Waves go in order, so a conversation's later turns repeat the user turns exactly as they
 * were fitted. Only the last segment changes: a shared prefix never does, and a trace's last
 * hash block stays the first words of that block, so what is shared stays token-for-token shared.
 */
export async function renderExact(
  plans: readonly PromptPlan[],
  seed: number,
  tokenizer: EngineTokenizer,
  vocabulary: readonly string[],
): Promise<RenderedPrompts> {
  const streams = new WordStreams(seed, vocabulary);
  const main = drawMain(plans, streams);
  const chosen = new Map<string, number>();
  const prompts: string[] = new Array(plans.length);
  const lengths: number[] = new Array(plans.length);
  let missed = 0;
  const limit = pLimit(TOKENIZE_CONCURRENCY);
  const waves = [...new Set(plans.map((p) => p.wave))].sort((a, b) => a - b);
  for (const wave of waves) {
    const fits = plans.flatMap((plan, i) =>
      plan.wave !== wave
        ? []
        : [
            limit(async () => {
              const fit = await fitOne(plan, i, main[i] as string[][], streams, chosen, tokenizer);
              prompts[i] = fit.text;
              lengths[i] = fit.length;
              if (fit.length !== plannedLength(plan)) missed++;
              return fit;
            }),
          ],
    );
    const done = await Promise.all(fits);
    // Remember the turns fitted in this wave for the next one's history.
    for (const fit of done) if (fit.remember) chosen.set(fit.remember.key, fit.remember.count);
  }
  return { prompts, lengths, missed };
}

async function fitOne(
  plan: PromptPlan,
  index: number,
  main: readonly string[][],
  streams: WordStreams,
  chosen: ReadonlyMap<string, number>,
  tokenizer: EngineTokenizer,
): Promise<{ text: string; length: number; remember: { key: string; count: number } | null }> {
  const target = plannedLength(plan);
  const last = plan.segments.length - 1;
  const counts = plan.segments.map((s, j) =>
    j < last && s.key !== null && chosen.has(s.key) ? (chosen.get(s.key) as number) : s.tokens,
  );
  let text = render(plan, index, counts, main, streams);
  let length = (await tokenizer.tokenize(text)).length;
  for (let attempt = 1; attempt < FIT_ATTEMPTS && length !== target; attempt++) {
    const next = (counts[last] as number) + (target - length);
    if (next < 1) break;
    counts[last] = next;
    text = render(plan, index, counts, main, streams);
    length = (await tokenizer.tokenize(text)).length;
  }
  const lastSegment = plan.segments[last];
  return {
    text,
    length,
    remember:
      lastSegment?.remember && lastSegment.key !== null
        ? { key: lastSegment.key, count: counts[last] as number }
        : null,
  };
}
