import type { StudyFileInput } from './study';

/**
 * The built-in quickstart study that `llem run` runs with no file: the generated tiny model on
 * the embedded llama.cpp engine, threads × batch size, 2 cycles interleaved. Sized to finish in
 * about a minute on two CPU cores (4 configs × 2 cycles = 8 short runs, 1 s gaps), with no
 * baseline (an idle baseline would double the time and means little on a shared CPU).
 */
export const quickstartStudy: StudyFileInput = {
  name: 'quickstart',
  model: 'builtin:tiny',
  engine: 'llamacpp',
  dataset: { synthetic: { n: 4, input_len: 32, output_len: 32, seed: 42 } },
  max_output_tokens: 32,
  decoder: { preset: 'deterministic' },
  warmup: { n: 1 },
  baseline: { enabled: false },
  energy: { backend: 'auto', sample_interval_ms: 100 },
  llamacpp: { gpu_layers: 'auto', context_size: 512 },
  sweep: {
    'llamacpp.threads': [1, 2],
    'llamacpp.batch_size': [64, 256],
  },
  execution: {
    cycles: 2,
    order: 'interleaved',
    experiment_gap_s: 1,
    cycle_gap_s: 1,
  },
};

/** The file name errors and `llem config show` use for the embedded quickstart study. */
export const QUICKSTART_FILE = 'builtin:quickstart';
