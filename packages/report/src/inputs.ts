import type { FileIdentity } from '@llem/domain';
import type { RunRecord } from './load';

/** One version of an input file, and the runs that read it. */
export interface InputVariant {
  sha256: string;
  coverage: FileIdentity['coverage'];
  path: string;
  sizeBytes: number;
  /** Run keys, in schedule order. */
  runs: string[];
}

/** A config whose completed runs read different bytes for the same input. */
export interface InputChange {
  configHash: string;
  label: string;
  input: 'model' | 'dataset';
  /** Two or more, in the order they were first seen. */
  variants: InputVariant[];
}

/**
 * Configs whose runs did not all read the same model (or dataset) file. The measurement-config
 * hash names a model by its path, so a file replaced between cycles (a re-download, another
 * quantisation under the same name, an edited prompt file), typically across a `--resume`, keeps
 * the hash while changing what was measured; those runs should not be averaged as one config.
 * Runs without file identities (older results, synthetic datasets, served models) are ignored.
 *
 * @example
 * for (const c of inputChanges(study.runs)) console.warn(describeInputChange(c));
 */
export function inputChanges(runs: readonly RunRecord[]): InputChange[] {
  const found: InputChange[] = [];
  for (const input of ['model', 'dataset'] as const) {
    const byConfig = new Map<string, { label: string; variants: Map<string, InputVariant> }>();
    for (const r of runs) {
      const id = r.status === 'completed' ? r.result?.inputs?.[input] : null;
      if (!id) continue;
      let entry = byConfig.get(r.configHash);
      if (!entry) {
        entry = { label: r.label, variants: new Map() };
        byConfig.set(r.configHash, entry);
      }
      const variant = entry.variants.get(id.sha256);
      if (variant) variant.runs.push(r.key);
      else
        entry.variants.set(id.sha256, {
          sha256: id.sha256,
          coverage: id.coverage,
          path: id.path,
          sizeBytes: id.sizeBytes,
          runs: [r.key],
        });
    }
    for (const [configHash, { label, variants }] of byConfig) {
      if (variants.size > 1)
        found.push({ configHash, label, input, variants: [...variants.values()] });
    }
  }
  return found;
}

/**
 * One line for a human: which config, which input, and which runs read which version.
 *
 * @example
 * describeInputChange(change);
 * // 'config threads=2 (0123abcd89abcdef): its runs read 2 different model files:
 * //  sampled fingerprint 1f2e3d4c5b6a… (/m/x.gguf, 4920000000 bytes; runs k_c0, k_c1);
 * //  sampled fingerprint 9a8b7c6d5e4f… (…; run k_c2);
 * //  they should not be averaged as one config'
 */
export function describeInputChange(change: InputChange): string {
  const variants = change.variants.map((v) => {
    const runs = `${v.runs.length === 1 ? 'run' : 'runs'} ${v.runs.join(', ')}`;
    // A sampled value is a fingerprint, not the file's SHA-256: it will not match `sha256sum`.
    const kind = v.coverage === 'sampled' ? 'sampled fingerprint' : 'sha256';
    return `${kind} ${v.sha256.slice(0, 12)}… (${v.path}, ${v.sizeBytes} bytes; ${runs})`;
  });
  return `config ${change.label} (${change.configHash}): its runs read ${change.variants.length} different ${change.input} files: ${variants.join('; ')}; they should not be averaged as one config`;
}
