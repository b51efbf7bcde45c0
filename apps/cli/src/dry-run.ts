import { freemem } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import type { StudyPlan } from '@llem/domain';
import { readGgufMetadata } from '@llem/engines';
import { Nvml } from '@llem/nvml';
import { estimateGgufMemory, type MemoryEstimate } from '@llem/report';
import type { Logger } from '@llem/resilience';

/** Bytes per KV-cache element for llama.cpp's cache types (block formats include their scales). */
const KV_BYTES: Record<string, number> = {
  f32: 4,
  f16: 2,
  bf16: 2,
  q8_0: 34 / 32,
  q4_0: 18 / 32,
  q4_1: 20 / 32,
  q5_0: 22 / 32,
  q5_1: 24 / 32,
  iq4_nl: 18 / 32,
};

type Rec = Record<string, unknown>;
const rec = (v: unknown): Rec => (v !== null && typeof v === 'object' ? (v as Rec) : {});

/** Free memory where the model would live: the first configured GPU, or RAM for CPU runs. */
function freeMemoryFor(
  gpuLayers: unknown,
  deviceIndex: number,
  env: NodeJS.ProcessEnv,
): { freeMiB: number | null; device: string } {
  const cpuOnly = gpuLayers === 0;
  if (!cpuOnly) {
    try {
      const nvml = Nvml.open({ env });
      try {
        const device = nvml.device(deviceIndex);
        const free = device.memoryInfo()?.freeMiB ?? null;
        return { freeMiB: free, device: `GPU ${deviceIndex} (${device.name() ?? 'unknown'})` };
      } finally {
        nvml.close();
      }
    } catch {
      // No NVML: llama.cpp will run on the CPU, so system RAM is what counts.
    }
  }
  return { freeMiB: freemem() / (1024 * 1024), device: 'system RAM' };
}

/**
 * For every `.gguf` model in the plan, the memory it needs (weights + KV cache at the configured
 * context, from the file's metadata) against free device memory. Models that cannot be read are
 * logged and left out: a dry run must not fail on them (the real run will say why).
 */
export async function planMemoryEstimates(
  plan: StudyPlan,
  options: { env: NodeJS.ProcessEnv; baseDir: string; logger: Logger },
): Promise<MemoryEstimate[]> {
  const groups = new Map<string, { labels: string[]; config: Rec; path: string }>();
  for (const c of plan.configs) {
    const config = rec(c.config);
    const model = config.model;
    if (config.engine !== 'llamacpp' || typeof model !== 'string' || !model.endsWith('.gguf'))
      continue;
    const l = rec(config.llamacpp);
    const key = JSON.stringify([
      model,
      l.context_size,
      l.kv_cache_type_k,
      l.kv_cache_type_v,
      l.gpu_layers,
    ]);
    const g = groups.get(key);
    if (g) g.labels.push(c.label);
    else
      groups.set(key, {
        labels: [c.label],
        config,
        path: isAbsolute(model) ? model : resolve(options.baseDir, model),
      });
  }
  const out: MemoryEstimate[] = [];
  for (const { labels, config, path } of groups.values()) {
    try {
      const meta = await readGgufMetadata(path);
      const l = rec(config.llamacpp);
      const ctxSize =
        typeof l.context_size === 'number' ? l.context_size : (meta.contextLength ?? 4096);
      const kvK = KV_BYTES[String(l.kv_cache_type_k ?? 'f16')] ?? 2;
      const kvV = KV_BYTES[String(l.kv_cache_type_v ?? 'f16')] ?? 2;
      const est = estimateGgufMemory({
        fileSizeBytes: meta.fileBytes,
        blockCount: meta.blockCount,
        embeddingLength: meta.embeddingLength,
        headCount: null,
        contextSize: ctxSize,
        kvBytesPerElement: (kvK + kvV) / 2,
      });
      const devices = rec(config.energy).devices;
      const index = Array.isArray(devices) && typeof devices[0] === 'number' ? devices[0] : 0;
      const free = freeMemoryFor(l.gpu_layers, index, options.env);
      out.push({
        model: String(config.model),
        configs: labels,
        estimatedMiB: est.totalMiB,
        detail: `${est.detail}${typeof l.context_size === 'number' ? '' : ' (context auto: the model’s trained context assumed)'}; KV without GQA, an upper bound`,
        freeMiB: free.freeMiB,
        device: free.device,
      });
    } catch (error) {
      options.logger.warn(
        `dry run: no memory estimate for ${path}: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  }
  return out;
}
