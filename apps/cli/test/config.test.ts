import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ExperimentConfigSchema, measurementConfigHash, studyJsonSchema } from '@llem/domain';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { runLlem } from './support/llem';

const fixtures = join(import.meta.dirname, 'fixtures', 'config');

function llem(argv: string[]) {
  return runLlem(argv, { env: {}, cwd: fixtures });
}

/**
 * Every malformed study file and the field path its error must name. Each file holds one
 * mistake, so the path says exactly where it is.
 */
const MALFORMED: Record<string, { path: string; says?: RegExp }> = {
  'empty.yaml': { path: '(root)', says: /empty/ },
  'comments-only.yaml': { path: '(root)', says: /empty/ },
  'list-root.yaml': { path: '(root)', says: /must be a mapping.*is a list/ },
  'scalar-root.yaml': { path: '(root)', says: /must be a mapping.*is a string/ },
  'yaml-syntax.yaml': { path: 'line 3, column 1', says: /YAML syntax error/ },
  'duplicate-key-json.json': {
    path: 'model',
    says: /duplicate key "model" \(line 4, column 3; first at line 2\)/,
  },
  'duplicate-key.yaml': {
    path: 'execution.cycles',
    says: /duplicate key "cycles" \(line 5, column 3; first at line 4\)/,
  },
  'bad-json.json': { path: 'line 4, column 1', says: /invalid JSON/ },
  'unknown-key-json.json': { path: 'cycles', says: /cycles belongs in execution/ },
  'unknown-top-key.yaml': { path: 'engin', says: /did you mean "engine"/ },
  'unknown-section-key.yaml': { path: 'llamacpp.bach_size', says: /did you mean "batch_size"/ },
  'unknown-execution-key.yaml': { path: 'execution.cylces', says: /did you mean "cycles"/ },
  'bad-engine.yaml': { path: 'engine', says: /allowed: llamacpp, openai, command/ },
  'missing-engine.yaml': { path: 'engine', says: /is required/ },
  'missing-model.yaml': { path: 'model', says: /is required/ },
  'bad-order.yaml': { path: 'execution.order', says: /allowed: sequential, interleaved, shuffled/ },
  'zero-cycles.yaml': { path: 'execution.cycles', says: /≥ 1/ },
  'negative-gap.yaml': { path: 'execution.experiment_gap_s', says: /≥ 0/ },
  'threshold-not-number.yaml': {
    path: 'execution.residual_memory_threshold_mb',
    says: /expected a number, got a string/,
  },
  'gpu-layers-bad.yaml': { path: 'llamacpp.gpu_layers', says: /"auto" or "max" or a number/ },
  'batch-size-string.yaml': { path: 'llamacpp.batch_size', says: /expected a number/ },
  'kv-cache-type.yaml': { path: 'llamacpp.kv_cache_type_k', says: /allowed: f32, f16, bf16, q8_0/ },
  'quantised-v-without-fa.yaml': { path: 'llamacpp.kv_cache_type_v', says: /flash_attention/ },
  'ubatch-not-batch.yaml': { path: 'llamacpp.ubatch_size', says: /must equal llamacpp.batch_size/ },
  'model-not-gguf.yaml': { path: 'model', says: /\.gguf/ },
  'openai-missing-section.yaml': { path: 'openai', says: /is required/ },
  'openai-both-modes.yaml': { path: 'openai.request_rate', says: /not both/ },
  'openai-key-in-file.yaml': {
    path: 'openai.api_key_env',
    says: /NAME of an environment variable/,
  },
  'openai-bad-url.yaml': { path: 'openai.base_url', says: /http\(s\) URL/ },
  'command-empty-argv.yaml': { path: 'command.argv', says: /name the program/ },
  'server-unknown-key.yaml': { path: 'server.stop_grace', says: /did you mean "stop_grace_s"/ },
  'server-args-list.yaml': {
    path: 'server.args["max-num-seqs"]',
    says: /expected a string, a number, a boolean \(true or false\) or null, got a list/,
  },
  'server-port-without-server.yaml': { path: 'openai.base_url', says: /holds \{port\}/ },
  'server-for-llamacpp.yaml': { path: 'server', says: /only applies to engine: openai/ },
  'command-env-bad-name.yaml': { path: 'command.env["1BAD"]' },
  'section-for-other-engine.yaml': { path: 'openai', says: /only applies to engine: openai/ },
  'sweep-unknown-key.yaml': {
    path: 'sweep["llamacpp.bach_size"]',
    says: /did you mean "llamacpp.batch_size"/,
  },
  'sweep-not-list.yaml': { path: 'sweep["llamacpp.threads"]', says: /expected a list/ },
  'sweep-empty-list.yaml': { path: 'sweep["llamacpp.threads"]', says: /at least one value/ },
  'sweep-into-value.yaml': { path: 'sweep["model.name"]', says: /not a section/ },
  'sweep-study-key.yaml': { path: 'sweep["execution.cycles"]', says: /cannot be swept/ },
  'sweep-all-invalid.yaml': { path: 'llamacpp.batch_size', says: /nothing to run/ },
  'experiments-empty.yaml': { path: 'experiments', says: /at least one experiment/ },
  'experiments-bad-entry.yaml': { path: 'experiments[1].llamacpp.threads', says: /got "two"/ },
  'dataset-csv.yaml': { path: 'dataset', says: /\.jsonl/ },
  'dataset-both.yaml': { path: 'dataset', says: /not both/ },
  'synthetic-zero.yaml': { path: 'dataset.synthetic.n' },
  'decoder-preset.yaml': { path: 'decoder.preset', says: /allowed: deterministic, standard/ },
  'decoder-top-p.yaml': { path: 'decoder.top_p', says: /≤ 1/ },
  'energy-backend.yaml': { path: 'energy.backend', says: /allowed: auto, nvml, rapl, none/ },
  'energy-devices-duplicate.yaml': { path: 'energy.devices', says: /unique/ },
  'warmup-negative.yaml': { path: 'warmup.n' },
  'baseline-enabled-string.yaml': { path: 'baseline.enabled', says: /boolean/ },
  'name-not-string.yaml': { path: 'name', says: /expected a string/ },
  'max-output-float.yaml': { path: 'max_output_tokens', says: /integer/ },
};

describe('llem config validate: malformed study files', () => {
  it('has a case for every fixture, and at least 25', () => {
    const files = readdirSync(join(fixtures, 'invalid')).sort();
    expect(files).toEqual(Object.keys(MALFORMED).sort());
    expect(files.length).toBeGreaterThanOrEqual(25);
  });

  it.each(Object.entries(MALFORMED))('%s → exit 2 naming %s', async (name, expected) => {
    const file = `invalid/${name}`;
    const { code, stdout, stderr } = await llem(['config', 'validate', file]);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    // The file and the field path, in the `<file>: <path>: <message>` form.
    expect(stderr).toContain(`${file}: ${expected.path}: `);
    if (expected.says) expect(stderr).toMatch(expected.says);
    // A user mistake is never a stack trace.
    expect(stderr).not.toMatch(/^\s+at /m);
    expect(stderr).not.toContain('unexpected error');
  });

  it('never echoes a value pasted into api_key_env', async () => {
    const { stderr } = await llem(['config', 'validate', 'invalid/openai-key-in-file.yaml']);
    expect(stderr).not.toContain('THIS-IS-A-SECRET');
  });

  it('lists every problem of a file, not just the first', async () => {
    const { code, stderr } = await llem(['config', 'validate', 'invalid/../multi-error.yaml']);
    expect(code).toBe(2);
    const lines = stderr.trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(stderr).toContain('execution.order');
    expect(stderr).toContain('llamacpp.threads');
    expect(stderr).toContain('engin');
  });

  it('reports a missing file and a directory with exit 2', async () => {
    const missing = await llem(['config', 'validate', 'no-such-study.yaml']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe('llem: no-such-study.yaml: (root): no such file\n');
    const dir = await llem(['config', 'validate', 'valid']);
    expect(dir.code).toBe(2);
    expect(dir.stderr).toContain('valid: (root): is a directory');
  });
});

describe('llem config validate: valid study files', () => {
  it('prints the expanded plan of the SPEC example', async () => {
    const { code, stdout, stderr } = await llem(['config', 'validate', 'valid/spec-example.yaml']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toContain('study "batch-vs-threads" is valid');
    expect(stdout).toContain('4 configs × 3 cycles = 12 runs (order: interleaved)');
    for (const label of [
      'batch_size=64 threads=1',
      'batch_size=64 threads=2',
      'batch_size=256 threads=1',
      'batch_size=256 threads=2',
    ]) {
      expect(stdout).toMatch(new RegExp(`${label}\\s+[0-9a-f]{16}\\n`));
    }
  });

  it('lists skipped configs with their reasons and still exits 0', async () => {
    const { code, stdout } = await llem(['config', 'validate', 'valid/partly-skipped.yaml']);
    expect(code).toBe(0);
    expect(stdout).toContain('1 config × 1 cycle = 1 run');
    expect(stdout).toContain('skipped 1 generated config (not run):');
    expect(stdout).toMatch(/batch_size=0\n\s+llamacpp\.batch_size: must be > 0/);
  });

  it('keeps duplicate configs as separate runs with copy numbers', async () => {
    const { code, stdout } = await llem(['config', 'validate', '--json', 'valid/duplicates.yaml']);
    expect(code).toBe(0);
    const summary = JSON.parse(stdout) as {
      runCount: number;
      configs: { label: string; configHash: string; copy: number }[];
    };
    expect(summary.runCount).toBe(6);
    expect(summary.configs.map((c) => [c.label, c.copy])).toEqual([
      ['threads=1', 0],
      ['threads=1 (copy 2)', 1],
      ['threads=2', 0],
    ]);
    expect(summary.configs[0]?.configHash).toBe(summary.configs[1]?.configHash);
  });

  it('reads JSON with experiments merged over shared fields and a dotted sweep', async () => {
    const { code, stdout } = await llem(['config', 'validate', 'valid/experiments.json']);
    expect(code).toBe(0);
    expect(stdout).toContain('4 configs × 2 cycles = 8 runs (order: shuffled, seed 11)');
    expect(stdout).toContain('experiment=served temperature=0.7');
  });
});

describe('llem config show', () => {
  it('prints the built-in quickstart study with every default applied, as JSON', async () => {
    const { code, stdout } = await llem(['config', 'show', '--json']);
    expect(code).toBe(0);
    const study = JSON.parse(stdout) as {
      name: string;
      execution: { cycles: number; order: string };
      configs: { configHash: string; config: unknown }[];
      runs: unknown[];
    };
    expect(study.name).toBe('quickstart');
    expect(study.execution).toMatchObject({ cycles: 2, order: 'interleaved' });
    expect(study.runs).toHaveLength(study.configs.length * 2);
    for (const config of study.configs) {
      // What is shown is a complete config: it parses as is and hashes to the hash shown.
      const parsed = ExperimentConfigSchema.parse(config.config);
      expect(parsed).toEqual(config.config);
      expect(measurementConfigHash(parsed)).toBe(config.configHash);
    }
  });

  it('prints a study file as YAML by default', async () => {
    const { code, stdout } = await llem(['config', 'show', 'valid/spec-example.yaml']);
    expect(code).toBe(0);
    const study = parseYaml(stdout) as {
      name: string;
      configs: { config: { llamacpp: unknown } }[];
    };
    expect(study.name).toBe('batch-vs-threads');
    expect(study.configs[0]?.config.llamacpp).toMatchObject({
      batch_size: 64,
      threads: 1,
      parallel: 1,
    });
  });

  it('exits 2 for an invalid file', async () => {
    const { code, stderr } = await llem(['config', 'show', 'invalid/bad-order.yaml']);
    expect(code).toBe(2);
    expect(stderr).toContain('execution.order');
  });
});

describe('llem config schema', () => {
  it('prints the study JSON Schema', async () => {
    const { code, stdout } = await llem(['config', 'schema']);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual(studyJsonSchema());
  });

  it('needs a subcommand', async () => {
    const { code, stderr } = await llem(['config']);
    expect(code).toBe(2);
    expect(stderr).toContain('validate');
  });
});
