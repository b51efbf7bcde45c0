import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TRACE_BLOCK_TOKENS } from '@llem/domain';
import type { EngineTokenizer } from '@llem/engines';
import { describe, expect, it } from 'vitest';
import {
  buildWarmupRequests,
  buildWorkload,
  type DatasetConfig,
  datasetSize,
  estimateTokens,
  loadDataset,
  summariseDataset,
  type Workload,
} from '../src/dataset';
import { MeasurementError } from '../src/errors';

const dir = mkdtempSync(join(tmpdir(), 'llem-datasets-'));
const file = (name: string, text: string): string => {
  writeFileSync(join(dir, name), text);
  return name;
};
const build = (
  dataset: DatasetConfig,
  maxOutputTokens = 1000,
  tokenizer: EngineTokenizer | null = null,
): Promise<Workload> =>
  buildWorkload(loadDataset(dataset, { cwd: dir }), { maxOutputTokens, tokenizer });

/** The error `fn` throws (sync or async), checked to be a dataset error a user fixes (exit 2). */
async function datasetErrorOf(fn: () => unknown): Promise<string> {
  try {
    await fn();
  } catch (error) {
    expect(error).toBeInstanceOf(MeasurementError);
    expect((error as MeasurementError).code).toBe('DATASET_INVALID');
    // A run that fails for it is a config failure (the study's to fix), not a measurement one.
    expect((error as MeasurementError).runFailure).toBe('config');
    return (error as Error).message;
  }
  throw new Error('expected a dataset error');
}

/** A tokenizer that splits on whitespace: one token a word, like the test server's. */
const wordTokenizer: EngineTokenizer = {
  source: 'words',
  tokenize: async (text) =>
    text
      .split(/\s+/)
      .filter((w) => w !== '')
      .map((w) => w.length),
};

const say = (from: string, value: string) => ({ from, value });
const role = (r: string, content: unknown) => ({ role: r, content });

describe('ShareGPT', () => {
  // One of each way an entry can fail to make a request, between usable ones.
  const entries = [
    { id: 'a', conversations: [say('human', 'what is a joule'), say('gpt', 'a unit of energy')] },
    { id: 'empty', conversations: [] },
    { id: 'only-human', conversations: [say('human', 'hello?')] },
    {
      id: 'system-first',
      conversations: [
        say('system', 'be brief'),
        say('human', 'and a watt'),
        say('gpt', 'a joule per second'),
      ],
    },
    { id: 'no-list' },
    { id: 'human-human', conversations: [say('human', 'one'), say('human', 'two')] },
    { id: 'blank-human', conversations: [say('human', '  '), say('gpt', 'eh')] },
    { id: 'blank-answer', conversations: [say('human', 'hm'), say('gpt', '')] },
    {
      id: 'gpt-first',
      conversations: [
        say('gpt', 'hi'),
        say('human', 'how much is a kWh'),
        say('gpt', '3.6 MJ'),
        say('human', 'thanks'),
      ],
    },
  ];
  const skipped = {
    'no conversations or messages list': 1,
    'no human turn': 1,
    'no answer after the first human turn': 2,
    'an empty human turn': 1,
    'an empty answer': 1,
  };

  it('reads a .json array of {from, value} conversations, skipping and counting broken entries', async () => {
    const path = file('sg.json', JSON.stringify(entries, null, 1));
    const w = await build({ path, format: 'sharegpt' });
    expect(w.requests.map((r) => r.prompt)).toEqual([
      'what is a joule',
      'and a watt',
      'how much is a kWh',
    ]);
    // The output length is the answer's length (estimated without a tokenizer).
    expect(w.requests.map((r) => r.maxOutputTokens)).toEqual(
      ['a unit of energy', 'a joule per second', '3.6 MJ'].map(estimateTokens),
    );
    expect(w.lengths).toBe('approximate');
    expect(w.facts.entries).toEqual({
      total: 9,
      usable: 3,
      used: 3,
      skipped: 6,
      skippedByReason: skipped,
      filtered: 0,
    });
  });

  it('reads .jsonl with {role, content} messages (content parts too), and caps output at max_output_tokens', async () => {
    const lines = [
      {
        messages: [
          role('user', 'first question here'),
          role('assistant', 'one two three four five six'),
        ],
      },
      {
        messages: [
          role('system', 's'),
          role('user', [
            { type: 'text', text: 'parts ' },
            { type: 'text', text: 'joined' },
          ]),
          role('assistant', 'ok'),
        ],
      },
      { messages: [role('assistant', 'no user turn at all')] },
      { messages: 'not a list' },
    ];
    const path = file('sg.jsonl', lines.map((l) => JSON.stringify(l)).join('\n'));
    const w = await build({ path, format: 'sharegpt' }, 4, wordTokenizer);
    expect(w.requests.map((r) => [r.prompt, r.maxOutputTokens])).toEqual([
      ['first question here', 4], // a 6-token answer, capped at max_output_tokens
      ['parts joined', 1],
    ]);
    expect(w.inputLengths).toEqual([3, 2]);
    expect(w.lengths).toBe('exact');
    expect(w.facts.entries?.skippedByReason).toEqual({
      'no human turn': 1,
      'no conversations or messages list': 1,
    });
  });

  it('names the entry or line of data that is not a conversation at all', async () => {
    const json = file('bad-entry.json', JSON.stringify([entries[0], 42]));
    expect(
      await datasetErrorOf(() => loadDataset({ path: json, format: 'sharegpt' }, { cwd: dir })),
    ).toBe(
      `${join(dir, json)}: entry 1: expected a conversation object with a "conversations" (or "messages") list`,
    );
    const jsonl = file('bad-line.jsonl', `${JSON.stringify(entries[0])}\n\n[1, 2]\n`);
    expect(
      await datasetErrorOf(() => loadDataset({ path: jsonl, format: 'sharegpt' }, { cwd: dir })),
    ).toMatch(/bad-line\.jsonl:3: expected a conversation object/);
    const syntax = file('syntax.json', '[\n{"conversations": []},\n{"conversations": [}\n]');
    expect(
      await datasetErrorOf(() => loadDataset({ path: syntax, format: 'sharegpt' }, { cwd: dir })),
    ).toMatch(/syntax\.json:3: not valid JSON/);
    const object = file('object.json', '{"conversations": []}');
    expect(
      await datasetErrorOf(() => loadDataset({ path: object, format: 'sharegpt' }, { cwd: dir })),
    ).toMatch(/object\.json: expected a JSON array of conversations .* found an object/);
    const cut = file('cut.json', `[${JSON.stringify(entries[0])},`);
    expect(
      await datasetErrorOf(() => loadDataset({ path: cut, format: 'sharegpt' }, { cwd: dir })),
    ).toMatch(/cut\.json: the JSON array is cut short/);
  });

  it('a file with no usable request says what it found and what was expected', async () => {
    const path = file('none.json', JSON.stringify(entries.slice(1, 3)));
    const message = await datasetErrorOf(() =>
      loadDataset({ path, format: 'sharegpt' }, { cwd: dir }),
    );
    expect(message).toContain(`${join(dir, path)}: no usable request: 2 entries`);
    expect(message).toContain('1 with no human turn');
    expect(message).toContain(
      'expected conversations whose first human turn is followed by an answer',
    );
  });

  const many = Array.from({ length: 50 }, (_, i) => ({
    conversations: [
      say('human', `question ${i} ${'word '.repeat(i % 10)}`.trim()),
      say('gpt', 'w '.repeat(1 + (i % 7)).trim()),
    ],
  }));

  it('n and seed pick a reproducible subset; n alone takes the file order', async () => {
    const path = file('many.json', JSON.stringify(many));
    const prompts = async (extra: object) =>
      (await build({ path, format: 'sharegpt', ...extra } as DatasetConfig)).requests.map(
        (r) => r.prompt,
      );
    const seeded = await prompts({ n: 10, seed: 1 });
    expect(seeded).toHaveLength(10);
    expect(await prompts({ n: 10, seed: 1 })).toEqual(seeded);
    expect(await prompts({ n: 10, seed: 2 })).not.toEqual(seeded);
    expect(seeded).not.toEqual((await prompts({})).slice(0, 10));
    expect(await prompts({ n: 3 })).toEqual([
      'question 0',
      'question 1 word',
      'question 2 word word',
    ]);
    expect(await prompts({})).toHaveLength(50);
    expect(
      await datasetErrorOf(() => build({ path, format: 'sharegpt', n: 60 } as DatasetConfig)),
    ).toMatch(/dataset\.n asks for 60 requests and only 50 are usable: 50 entries, 50 usable/);
  });

  it('filters by prompt and answer length as vLLM does, on exact lengths where there is a tokenizer', async () => {
    const path = file('filtered.json', JSON.stringify(many));
    const w = await build(
      {
        path,
        format: 'sharegpt',
        min_input_len: 4,
        max_input_len: 8,
        max_output_len: 5,
      } as DatasetConfig,
      1000,
      wordTokenizer,
    );
    expect(w.inputLengths.every((n) => n >= 4 && n <= 8)).toBe(true);
    expect(w.requests.every((r) => r.maxOutputTokens <= 5)).toBe(true);
    expect(w.requests.length).toBeGreaterThan(0);
    expect(w.facts.entries?.filtered).toBe(50 - w.requests.length);
    // Everything filtered out is a dataset error too, naming the filters.
    expect(
      await datasetErrorOf(() =>
        build(
          { path, format: 'sharegpt', min_input_len: 100 } as DatasetConfig,
          1000,
          wordTokenizer,
        ),
      ),
    ).toMatch(
      /no usable request: 50 entries, 50 usable .*50 outside the length filters \(min_input_len 100\)/,
    );
  });
});

describe('ShareGPT length filters before the run', () => {
  // Two long words a prompt: 2 tokens to a word tokenizer, ~20 at 4 characters a token.
  const long = `${'x'.repeat(40)} ${'y'.repeat(40)}`;
  const conversations = Array.from({ length: 3 }, () => ({
    conversations: [say('human', long), say('gpt', 'ok fine')],
  }));
  const dataset = (path: string) =>
    ({ path, format: 'sharegpt', n: 3, max_input_len: 8 }) as DatasetConfig;

  it('an estimate outside the filters does not reject a file the tokenizer will count (validate, dry-run, the run’s first check)', async () => {
    const path = file('long-words.jsonl', conversations.map((c) => JSON.stringify(c)).join('\n'));
    const summary = await summariseDataset(dataset(path), { cwd: dir });
    expect(summary.requests).toBe(0);
    expect(summary.description).toContain('counted exactly when the run starts');
    // The engine's tokenizer says 2 tokens each: all three pass max_input_len 8.
    const w = await build(dataset(path), 1000, wordTokenizer);
    expect(w.inputLengths).toEqual([2, 2, 2]);
    // Without a tokenizer the estimate is the length, and the shortfall is the error it was.
    expect(await datasetErrorOf(() => build(dataset(path)))).toMatch(
      /no usable request: 3 entries, 3 usable .*3 outside the length filters \(max_input_len 8\)/,
    );
  });

  it('n beyond the usable conversations is still an error before the run', async () => {
    const path = file('long-words-n.jsonl', conversations.map((c) => JSON.stringify(c)).join('\n'));
    expect(
      await datasetErrorOf(() =>
        summariseDataset({ path, format: 'sharegpt', n: 4, max_input_len: 8 } as DatasetConfig, {
          cwd: dir,
        }),
      ),
    ).toMatch(/dataset\.n asks for 4 requests and only 3 are usable/);
  });
});

describe('jsonl with output lengths', () => {
  it('takes each row’s output length (capped) from output_len_column', async () => {
    const path = file('out.jsonl', ['{"p":"a b","n":3}', '{"p":"c","n":900}'].join('\n'));
    const w = await build({ path, column: 'p', output_len_column: 'n' }, 100);
    expect(w.requests.map((r) => [r.prompt, r.maxOutputTokens])).toEqual([
      ['a b', 3],
      ['c', 100],
    ]);
    const bad = file('out-bad.jsonl', '{"p":"a","n":3}\n{"p":"b","n":"three"}');
    expect(
      await datasetErrorOf(() =>
        loadDataset({ path: bad, column: 'p', output_len_column: 'n' }, { cwd: dir }),
      ),
    ).toMatch(
      /out-bad\.jsonl:2: "n" must be an integer ≥ 1, the row's output length in tokens \(dataset\.output_len_column\)/,
    );
  });
});

describe('traces (Mooncake)', () => {
  const rows = [
    { timestamp: 1000, input_length: 700, output_length: 20, hash_ids: [1, 2] },
    { timestamp: 0, input_length: 600, output_length: 5000, hash_ids: [1, 3] },
    { timestamp: 1000, input_length: 100, output_length: 8 },
    { timestamp: 2500, input_length: 1100, output_length: 1, hash_ids: [1, 2, 4] },
  ];
  const trace = () => file('trace.jsonl', rows.map((r) => JSON.stringify(r)).join('\n'));

  it('sends each request at timestamp × time_scale, in time order, max_tokens = its output length (capped)', async () => {
    const w = await build({ path: trace(), format: 'trace', time_scale: 0.5 }, 1000);
    expect(w.requests.map((r) => [r.sendAtMs, r.maxOutputTokens])).toEqual([
      [0, 1000],
      [500, 20],
      [500, 8],
      [1250, 1],
    ]);
    expect(w.inputLengths).toEqual([600, 700, 100, 1100]);
    expect(w.requests.map((r) => r.prompt.split(' ').length)).toEqual([600, 700, 100, 1100]);
    expect(w.facts.trace).toEqual({ durationS: 1.25, timeScale: 0.5, sharedBlocks: 2 });
  });

  it('builds prompts whose equal hash_ids blocks are equal text, and others differ', async () => {
    const w = await build({ path: trace(), format: 'trace' });
    const words = w.requests.map((r) => r.prompt.split(' '));
    const [b13, b12, , b124] = words as [string[], string[], string[], string[]];
    const block = (ws: string[], k: number) =>
      ws.slice(k * TRACE_BLOCK_TOKENS, (k + 1) * TRACE_BLOCK_TOKENS);
    expect(block(b12, 0)).toEqual(block(b13, 0)); // hash id 1
    expect(block(b124, 0)).toEqual(block(b12, 0));
    // Block 2 in full in the third request; cut to 188 tokens in the first (700 − 512).
    expect(block(b124, 1).slice(0, 188)).toEqual(block(b12, 1));
    expect(block(b13, 1)).not.toEqual(block(b12, 1).slice(0, 88)); // ids 3 and 2 differ
  });

  it('names the line and the field of a bad trace line', async () => {
    const bad = file(
      'bad-trace.jsonl',
      '{"timestamp":0,"input_length":5,"output_length":1}\n{"timestamp":5,"output_length":1}\n',
    );
    expect(
      await datasetErrorOf(() => loadDataset({ path: bad, format: 'trace' }, { cwd: dir })),
    ).toBe(`${join(dir, bad)}:2: "input_length" must be an integer ≥ 1 (prompt tokens)`);
    const ids = file(
      'bad-ids.jsonl',
      '{"timestamp":0,"input_length":5,"output_length":1,"hash_ids":["a"]}',
    );
    expect(
      await datasetErrorOf(() => loadDataset({ path: ids, format: 'trace' }, { cwd: dir })),
    ).toMatch(/bad-ids\.jsonl:1: "hash_ids" must be a list of integers/);
    const empty = file('empty-trace.jsonl', '\n\n');
    expect(
      await datasetErrorOf(() => loadDataset({ path: empty, format: 'trace' }, { cwd: dir })),
    ).toMatch(/no usable request: the trace holds no lines/);
  });

  it('warms up with generated prompts of the trace’s lengths, sent at once, none measured', async () => {
    const w = await build({ path: trace(), format: 'trace' });
    const warm = buildWarmupRequests(w, 6);
    expect(warm.every((r) => r.sendAtMs === undefined && r.after === undefined)).toBe(true);
    const lengths = new Set(w.inputLengths);
    expect(warm.every((r) => lengths.has(r.prompt.split(' ').length))).toBe(true);
  });

  it('says how many requests and how long (for the timeout, validate and dry-run)', async () => {
    expect(datasetSize({ path: trace(), format: 'trace', time_scale: 2 }, { cwd: dir })).toEqual({
      requests: 4,
      durationS: 5,
    });
    expect(
      (await summariseDataset({ path: trace(), format: 'trace' }, { cwd: dir })).description,
    ).toBe(`trace ${join(dir, 'trace.jsonl')}: 4 requests over 2.5 s (time_scale 1)`);
  });

  it('says when a trace cut from a longer one leaves the window idle before its first request', async () => {
    const file = join(dir, 'slice.jsonl');
    writeFileSync(
      file,
      `${JSON.stringify({ timestamp: 4000, input_length: 8, output_length: 4 })}\n${JSON.stringify({ timestamp: 5000, input_length: 8, output_length: 4 })}\n`,
    );
    expect(
      (await summariseDataset({ path: file, format: 'trace' }, { cwd: dir })).description,
    ).toBe(
      `trace ${file}: 2 requests over 5.0 s (time_scale 1); the first is sent at 4.0 s and the window is idle until then (timestamps count from the trace's start)`,
    );
  });
});

describe('synthetic prefixes and conversations', () => {
  it('prompts of a prefix group share their first prefix_len tokens; groups differ', async () => {
    const w = await build({
      synthetic: { n: 6, input_len: 20, output_len: 4, seed: 5, prefix_len: 12, prefix_groups: 2 },
    });
    const words = w.requests.map((r) => r.prompt.split(' '));
    expect(words.every((ws) => ws.length === 20)).toBe(true);
    const prefix = (i: number) => (words[i] as string[]).slice(0, 12).join(' ');
    expect([prefix(0), prefix(2), prefix(4)]).toEqual([prefix(0), prefix(0), prefix(0)]);
    expect([prefix(1), prefix(3), prefix(5)]).toEqual([prefix(1), prefix(1), prefix(1)]);
    expect(prefix(0)).not.toBe(prefix(1));
    expect(new Set(w.requests.map((r) => r.prompt)).size).toBe(6);
    expect(w.facts.prefix).toEqual({ tokens: 12, groups: 2 });
  });

  it('a turn carries the history (every earlier turn and reply), sent after the previous turn', async () => {
    const w = await build({ synthetic: { n: 2, input_len: 5, output_len: 3, seed: 1, turns: 3 } });
    // Turn-major: c0t1 c1t1 c0t2 c1t2 c0t3 c1t3.
    expect(w.requests.map((r) => r.after)).toEqual([undefined, undefined, 0, 1, 2, 3]);
    expect(w.inputLengths).toEqual([5, 5, 13, 13, 21, 21]);
    for (const r of w.requests) {
      if (r.after === undefined) continue;
      const previous = w.requests[r.after]?.prompt as string;
      expect(r.prompt.startsWith(`${previous} `)).toBe(true);
    }
    expect(w.facts.conversations).toEqual({ count: 2, turns: 3 });
    // Warmup is one-turn prompts of input_len, not conversations.
    expect(buildWarmupRequests(w, 2).every((r) => r.after === undefined)).toBe(true);
  });
});

describe('exact lengths', () => {
  /**
   * A tokenizer unlike the generator's assumption: words of more than 4 letters are 2 tokens, and
   * "of the" is one token (a merge across a word boundary), as real tokenizers do now and then.
   */
  const awkward: EngineTokenizer = {
    source: 'awkward tokenizer',
    tokenize: async (text) => {
      const ids: number[] = [];
      const words = text.split(' ').filter((w) => w !== '');
      for (let i = 0; i < words.length; i++) {
        const w = words[i] as string;
        if (w === 'of' && words[i + 1] === 'the') {
          ids.push(1);
          i++;
        } else if (w.length > 4) ids.push(2, 3);
        else ids.push(4);
      }
      return ids;
    },
  };

  it('builds every generated prompt to its exact token count, prefixes still shared', async () => {
    const w = await build(
      {
        synthetic: {
          n: 12,
          input_len: 40,
          output_len: 4,
          seed: 3,
          prefix_len: 16,
          prefix_groups: 3,
        },
      },
      100,
      awkward,
    );
    expect(w.lengths).toBe('exact');
    expect(w.lengthSource).toBe('awkward tokenizer');
    for (const r of w.requests) expect((await awkward.tokenize(r.prompt)).length).toBe(40);
    expect(w.inputLengths).toEqual(Array(12).fill(40));
    // Long words are left out of the vocabulary, so each prompt is made of one-token words.
    expect(w.requests.every((r) => r.prompt.split(' ').every((x) => x.length <= 4))).toBe(true);
    const prefix = (i: number) =>
      (w.requests[i] as { prompt: string }).prompt.split(' ').slice(0, 16).join(' ');
    expect(prefix(3)).toBe(prefix(0));
    expect(prefix(1)).not.toBe(prefix(0));
  });

  it('fits conversations turn by turn, each later turn repeating the earlier one exactly', async () => {
    const w = await build(
      { synthetic: { n: 3, input_len: 10, output_len: 6, seed: 8, turns: 3 } },
      100,
      awkward,
    );
    expect(w.lengths).toBe('exact');
    for (const [i, r] of w.requests.entries()) {
      expect((await awkward.tokenize(r.prompt)).length).toBe(w.inputLengths[i]);
      if (r.after !== undefined)
        expect(r.prompt.startsWith(`${w.requests[r.after]?.prompt} `)).toBe(true);
    }
    expect(w.inputLengths).toEqual([10, 10, 10, 26, 26, 26, 42, 42, 42]);
  });

  it('falls back to approximate lengths, and says why, when the tokenizer fails', async () => {
    const warnings: string[] = [];
    const broken: EngineTokenizer = {
      source: 'broken',
      tokenize: async () => {
        throw new Error('HTTP 500');
      },
    };
    const w = await buildWorkload(loadDataset({ synthetic: { n: 2, input_len: 8 } }), {
      maxOutputTokens: 8,
      tokenizer: broken,
      logger: { error() {}, info() {}, debug() {}, warn: (m: string) => warnings.push(m) },
    });
    expect(w.lengths).toBe('approximate');
    expect(w.lengthSource).toBe(
      'approximate: a generated word ≈ a token (the tokenizer failed: HTTP 500)',
    );
    expect(warnings).toEqual([
      'dataset: the tokenizer failed: HTTP 500; building the workload with approximate lengths',
    ]);
  });
});
