import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runLlem } from './support/llem';

// The managed-server examples at the repo root stay valid study files: each one plans, every
// config starts a server, and the sweep reaches the server's own settings.
const examples = fileURLToPath(new URL('../../../examples/', import.meta.url));
const env = { PATH: process.env.PATH, LLEM_NVML_LIBRARY: '/nonexistent/libnvidia-ml.so.1' };

const files = readdirSync(examples).filter((f) => f.endsWith('.yaml'));

describe('examples/', () => {
  it('holds vLLM, SGLang, TGI, llama-server and Ollama studies', () => {
    expect(files.sort()).toEqual([
      'llama-server.yaml',
      'ollama.yaml',
      'sglang.yaml',
      'tgi.yaml',
      'vllm.yaml',
    ]);
  });

  it.each(files)(
    '%s plans: every config starts its server and the sweep varies it',
    async (file) => {
      const validate = await runLlem(['config', 'validate', file], { env, cwd: examples });
      expect(validate.stderr).toBe('');
      expect(validate.code).toBe(0);
      const dry = await runLlem(['run', file, '--dry-run', '--json'], { env, cwd: examples });
      expect(dry.code).toBe(0);
      const plan = JSON.parse(dry.stdout) as {
        configs: { label: string; serverArgv?: string[]; serverEnv?: Record<string, string> }[];
        skipped: unknown[];
      };
      expect(plan.skipped).toEqual([]);
      expect(plan.configs.length).toBeGreaterThanOrEqual(4);
      const lines = plan.configs.map((c) => {
        expect(c.serverArgv?.length).toBeGreaterThan(0);
        return JSON.stringify([c.serverArgv, c.serverEnv]);
      });
      // The sweep changes the server's command line or environment: no two configs start the same server.
      expect(new Set(lines).size).toBe(lines.length);
      // llem picks the port: {port} in the command line or the environment.
      expect(lines.every((l) => l.includes('{port}'))).toBe(true);
    },
  );
});

// The real-GPU check's studies (packages/measure/bench/gpu-check) stay valid for the next machine
// that has a GPU: they plan as written.
const gpuCheck = fileURLToPath(
  new URL('../../../packages/measure/bench/gpu-check/', import.meta.url),
);

describe('packages/measure/bench/gpu-check', () => {
  it.each(['command-study.yaml', 'server-study.yaml', 'sweep-study.yaml'])(
    '%s is a valid study',
    async (file) => {
      const validate = await runLlem(['config', 'validate', file], { env, cwd: gpuCheck });
      expect(validate.stderr).toBe('');
      expect(validate.code).toBe(0);
    },
  );
});
