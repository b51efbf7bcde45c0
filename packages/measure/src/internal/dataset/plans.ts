import { type SyntheticDataset, TRACE_BLOCK_TOKENS } from '@llem/domain';
import type { TraceRow } from './sources';

// Generated prompts are planned as segments before any text exists: a shared prefix, a trace's
// hash blocks, a conversation's earlier turns, and the request's own part (always last). Text
// comes later (`render.ts`), approximately (a word per token) or fitted to the engine's
// tokenizer, where only the last segment is lengthened or shortened, so whatever is shared stays
// shared.

/** A run of generated words: from the sequential main stream (`key: null`) or a keyed stream. */
export interface Segment {
  key: string | null;
  /** Nominal length in tokens. */
  tokens: number;
  /**
   * A conversation's user turn: the word count it gets when it is the last segment of its own
   * turn is kept for the later turns, whose history repeats it.
   */
  remember?: boolean;
}

/** One prompt to generate. Prompts of one wave are independent; waves are built in order. */
export interface PromptPlan {
  segments: Segment[];
  wave: number;
}

/** The request-side facts of a planned prompt. */
export interface PlannedRequest {
  plan: PromptPlan;
  maxOutputTokens: number;
  after?: number;
  sendAtMs?: number;
}

/**
 * A synthetic dataset's prompts. Plain (no prefix, one turn): each prompt is the next
 * `input_len` words of the main stream, as always. With `prefix_len`, prompt i starts with its
 * group's prefix (group i mod `prefix_groups`, a keyed stream) followed by its own
 * `input_len − prefix_len` words. With `turns` > 1 there are `n` conversations; turn t's prompt is
 * the prefix, then each earlier turn's user message and a synthetic reply of `output_len` words,
 * then turn t's message; the list is turn-major and each later turn names the previous one in
 * `after`.
 */
export function syntheticPlans(spec: SyntheticDataset, maxOutputTokens: number): PlannedRequest[] {
  const turns = spec.turns ?? 1;
  const prefix = spec.prefix_len ?? 0;
  const groups = spec.prefix_groups ?? 1;
  const own = spec.input_len - prefix;
  const out = Math.min(spec.output_len, maxOutputTokens);
  const planned: PlannedRequest[] = [];
  for (let turn = 1; turn <= turns; turn++) {
    for (let c = 0; c < spec.n; c++) {
      const segments: Segment[] =
        prefix > 0 ? [{ key: `prefix:${c % groups}`, tokens: prefix }] : [];
      if (turns === 1) segments.push({ key: null, tokens: own });
      else
        for (let t = 1; t <= turn; t++) {
          segments.push({ key: `user:${c}:${t}`, tokens: own, remember: true });
          if (t < turn) segments.push({ key: `reply:${c}:${t}`, tokens: spec.output_len });
        }
      const id = planned.length;
      planned.push({
        plan: { segments, wave: turn },
        maxOutputTokens: out,
        ...(turn > 1 ? { after: id - spec.n } : {}),
      });
    }
  }
  return planned;
}

/**
 * A trace's prompts: `input_length` tokens made of its `hash_ids` blocks (512 tokens each, the
 * same words wherever the same id appears; the last one cut to what is left), then words of its
 * own for whatever the blocks do not cover. Sent at `timestamp × time_scale`.
 */
export function tracePlans(
  rows: readonly TraceRow[],
  timeScale: number,
  maxOutputTokens: number,
): PlannedRequest[] {
  return rows.map((row) => {
    const segments: Segment[] = [];
    let covered = 0;
    for (const id of row.hashIds ?? []) {
      if (covered >= row.inputLength) break;
      const tokens = Math.min(TRACE_BLOCK_TOKENS, row.inputLength - covered);
      segments.push({ key: `block:${id}`, tokens });
      covered += tokens;
    }
    if (covered < row.inputLength) segments.push({ key: null, tokens: row.inputLength - covered });
    return {
      plan: { segments, wave: 0 },
      maxOutputTokens: Math.min(row.outputLength, maxOutputTokens),
      sendAtMs: row.timestampMs * timeScale,
    };
  });
}

/** Hash blocks that more than one request of a trace uses. */
export function sharedBlockCount(rows: readonly TraceRow[]): number {
  const users = new Map<number, number>();
  for (const row of rows) {
    const ids = new Set(
      (row.hashIds ?? []).slice(0, Math.ceil(row.inputLength / TRACE_BLOCK_TOKENS)),
    );
    for (const id of ids) users.set(id, (users.get(id) ?? 0) + 1);
  }
  let shared = 0;
  for (const count of users.values()) if (count > 1) shared++;
  return shared;
}

/** Nominal length of a planned prompt (tokens). */
export function plannedLength(plan: PromptPlan): number {
  let total = 0;
  for (const s of plan.segments) total += s.tokens;
  return total;
}
