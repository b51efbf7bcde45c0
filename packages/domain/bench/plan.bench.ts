/**
 * How long planning a large study takes, against the bare cost of hashing the same number of
 * configs (canonical JSON + SHA-256 of an already complete object), measured in the same run.
 * The difference is zod validation, default filling, sweep merging and labels.
 *
 * Run: pnpm --filter @llem/domain bench
 */
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { canonicalJson, parseStudyText, planStudy } from '../src/index';

const values = (n: number, from: number) => Array.from({ length: n }, (_, i) => from + i);
// 8 × 8 × 8 × 4 = 2048 configs.
const study = {
  name: 'bench',
  model: 'builtin:tiny',
  engine: 'llamacpp',
  sweep: {
    'llamacpp.batch_size': values(8, 64),
    'llamacpp.threads': values(8, 1),
    'decoder.temperature': values(8, 0).map((t) => t / 10),
    'dataset.synthetic.input_len': values(4, 16),
  },
  execution: { cycles: 3, order: 'shuffled', shuffle_seed: 1 },
};

function best(label: string, repeats: number, fn: () => void): number {
  fn(); // warm the JIT
  let min = Number.POSITIVE_INFINITY;
  for (let r = 0; r < repeats; r++) {
    const start = performance.now();
    fn();
    min = Math.min(min, performance.now() - start);
  }
  console.log(`${label.padEnd(44)} ${min.toFixed(1).padStart(8)} ms (best of ${repeats})`);
  return min;
}

const plan = planStudy(study, { file: 'bench.yaml' });
const configs = plan.configs.map((c) => c.config);
const n = configs.length;

const planMs = best(`planStudy: ${n} configs, ${plan.runs.length} runs`, 5, () => {
  planStudy(study, { file: 'bench.yaml' });
});
const hashMs = best(`bare canonical JSON + SHA-256 × ${n}`, 5, () => {
  for (const config of configs) createHash('sha256').update(canonicalJson(config)).digest('hex');
});
const yamlText = `name: bench\nmodel: builtin:tiny\nengine: llamacpp\nsweep:\n${Object.entries(
  study.sweep,
)
  .map(([k, v]) => `  ${k}: [${v.join(', ')}]`)
  .join('\n')}\n`;
const parseMs = best('parseStudyText (YAML, the same study)', 20, () => {
  parseStudyText(yamlText, { file: 'bench.yaml' });
});

console.log('');
console.log(`planStudy per config:        ${((planMs / n) * 1000).toFixed(1)} µs`);
console.log(`bare hash per config:        ${((hashMs / n) * 1000).toFixed(1)} µs`);
console.log(`planStudy / bare hash:       ${(planMs / hashMs).toFixed(1)}×`);
console.log(`parseStudyText:              ${parseMs.toFixed(2)} ms`);
