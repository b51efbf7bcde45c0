import { describe, expect, it } from 'vitest';
import { ConfigError, formatFromFileName, parseStudyText, planStudy } from '../src/index';
import { jsonErrorOffset } from '../src/internal/json-position';

function parseError(text: string, file = 'study.yaml'): ConfigError {
  try {
    parseStudyText(text, { file });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected parseStudyText to throw');
}

describe('parseStudyText', () => {
  it('reads YAML and JSON into the same document', () => {
    const yaml = parseStudyText(
      'model: builtin:tiny\nengine: llamacpp\nsweep:\n  llamacpp.threads: [1, 2]\n',
      {
        file: 's.yaml',
      },
    );
    const json = parseStudyText(
      '{"model":"builtin:tiny","engine":"llamacpp","sweep":{"llamacpp.threads":[1,2]}}',
      { file: 's.json' },
    );
    expect(yaml).toEqual(json);
  });

  it('picks the format from the file name unless told', () => {
    expect(formatFromFileName('a.JSON')).toBe('json');
    expect(formatFromFileName('a.yml')).toBe('yaml');
    expect(formatFromFileName('noext')).toBe('yaml');
    expect(() => parseStudyText('model: x', { file: 'a.json' })).toThrow(/invalid JSON/);
    expect(parseStudyText('{"model":"x"}', { file: 'noext', format: 'json' })).toEqual({
      model: 'x',
    });
  });

  it('supports YAML merge keys for repeated blocks', () => {
    const raw = parseStudyText(
      [
        'model: builtin:tiny',
        'engine: llamacpp',
        'experiments:',
        '  - &base { llamacpp: { threads: 1 } }',
        '  - <<: *base',
        '    name: again',
      ].join('\n'),
      { file: 's.yaml' },
    );
    expect(raw.experiments?.[1]).toEqual({ llamacpp: { threads: 1 }, name: 'again' });
  });

  it('keeps YAML 1.2 scalars: "on"/"yes" stay strings, not booleans', () => {
    const error = parseError('model: builtin:tiny\nengine: llamacpp\nbaseline: { enabled: yes }\n');
    expect(error.issues[0]).toMatchObject({ path: 'baseline.enabled' });
  });

  it('says an empty file, a comment-only file and a null document are empty', () => {
    for (const text of ['', '   \n', '# just a comment\n', '~\n', 'null\n']) {
      const error = parseError(text);
      expect(error.code).toBe('CONFIG_EMPTY');
      expect(error.issues[0]?.path).toBe('(root)');
    }
  });

  it('rejects a document that is not a mapping', () => {
    for (const [text, what] of [
      ['- a\n- b\n', 'a list'],
      ['42\n', 'a number'],
      ['hello\n', 'a string'],
    ] as const) {
      const error = parseError(text);
      expect(error.code).toBe('CONFIG_INVALID');
      expect(error.message).toContain(`this document is ${what}`);
    }
    expect(parseError('[1, 2]', 's.json').message).toContain('is a list');
  });

  it('gives the line and column of a YAML syntax error', () => {
    const error = parseError('model: builtin:tiny\nengine: llamacpp\nllamacpp: {threads: 1\n');
    expect(error.code).toBe('CONFIG_PARSE');
    expect(error.issues[0]?.path).toMatch(/^line \d+, column \d+$/);
    expect(error.message).toMatch(/^study\.yaml: line \d+, column \d+: YAML syntax error: /);
  });

  it('rejects duplicate keys instead of silently keeping the last', () => {
    const error = parseError('model: a\nmodel: b\n');
    expect(error.code).toBe('CONFIG_PARSE');
    expect(error.issues).toEqual([
      {
        path: 'model',
        message:
          'duplicate key "model" (line 2, column 1; first at line 1): a key may appear only once in a mapping; keep one',
      },
    ]);
  });

  it('names a duplicate key by its field path, nested and inside a list', () => {
    const nested = parseError(
      'model: builtin:tiny\nengine: llamacpp\nexecution:\n  cycles: 2\n  cycles: 3\n',
    );
    expect(nested.message).toBe(
      'study.yaml: execution.cycles: duplicate key "cycles" (line 5, column 3; first at line 4): a key may appear only once in a mapping; keep one',
    );
    const listed = parseError(
      'model: x\nexperiments:\n  - name: a\n  - llamacpp: { threads: 1, threads: 2 }\n',
    );
    expect(listed.issues[0]?.path).toBe('experiments[1].llamacpp.threads');
    expect(listed.issues[0]?.message).toMatch(
      /^duplicate key "threads" \(line 4, column 29; first at line 4\)/,
    );
  });

  it('rejects a duplicate key in a JSON study file too (JSON.parse would keep the last)', () => {
    const error = parseError(
      '{\n  "model": "a",\n  "engine": "llamacpp",\n  "model": "b"\n}',
      's.json',
    );
    expect(error.code).toBe('CONFIG_PARSE');
    expect(error.message).toBe(
      's.json: model: duplicate key "model" (line 4, column 3; first at line 2): a key may appear only once in a mapping; keep one',
    );
  });

  it('gives the line and column of a JSON syntax error', () => {
    const error = parseError('{\n  "model": "x",\n  "engine": \n}', 's.json');
    expect(error.code).toBe('CONFIG_PARSE');
    expect(error.issues[0]?.path).toBe('line 4, column 1');
  });

  it('refuses a YAML alias bomb', () => {
    const bomb = [
      'a: &a [x, x, x, x, x, x, x, x, x, x]',
      'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]',
      'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]',
      'd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]',
    ].join('\n');
    expect(parseError(bomb).code).toBe('CONFIG_PARSE');
  });

  it('reports every field error of the file at once', () => {
    const error = parseError(
      'model: builtin:tiny\nengine: llamacpp\nmax_output_tokens: 0\nexecution: { order: backwards, cycles: 1.5 }\nwarmup: { n: x }\n',
    );
    expect(error.issues.map((i) => i.path).sort()).toEqual([
      'execution.cycles',
      'execution.order',
      'max_output_tokens',
      'warmup.n',
    ]);
  });

  it('feeds planStudy', () => {
    const raw = parseStudyText('name: s\nmodel: builtin:tiny\nengine: llamacpp\n', {
      file: 's.yaml',
    });
    expect(planStudy(raw, { file: 's.yaml' }).runs).toHaveLength(1);
  });
});

describe('ConfigError', () => {
  it('lists every issue as <file>: <path>: <message> with allowed values', () => {
    const error = new ConfigError('CONFIG_INVALID', 'x.yaml', [
      {
        path: 'engine',
        message: 'invalid value "vllm"',
        allowed: ['llamacpp', 'openai', 'command'],
      },
      { path: 'execution.cycles', message: 'must be ≥ 1 (got 0)' },
    ]);
    expect(error.name).toBe('ConfigError');
    expect(error.message).toBe(
      'x.yaml: engine: invalid value "vllm" (allowed: llamacpp, openai, command)\nx.yaml: execution.cycles: must be ≥ 1 (got 0)',
    );
  });
});

describe('jsonErrorOffset', () => {
  const cases = [
    '{}',
    '[]',
    '{"a": [1, -2.5e3, true, false, null, "x\\u00e9\\n"]}',
    ' 42 ',
    '"s"',
    '{"a": 1,}',
    '[1 2]',
    '{"a" 1}',
    '{"a": tru}',
    '{"a": "unterminated}',
    '[01]',
    '{"a": 1} x',
    '',
    '{"a": "\\x"}',
  ];

  it.each(cases)('agrees with JSON.parse on validity: %s', (text) => {
    let valid = true;
    try {
      JSON.parse(text);
    } catch {
      valid = false;
    }
    expect(jsonErrorOffset(text) === undefined).toBe(valid);
  });

  it('points at the offending character', () => {
    expect(jsonErrorOffset('{"a": 1,}')).toBe(8);
    expect(jsonErrorOffset('[1 2]')).toBe(3);
  });
});
