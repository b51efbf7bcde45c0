import { stat } from 'node:fs/promises';
import type { GgufFileInfo } from 'node-llama-cpp';
import { LlamaCppEngineError } from './errors';

/** What llem needs to know about a GGUF model without loading it. Unknown values are `null`. */
export interface GgufModelMetadata {
  /** `general.architecture`, e.g. `llama`. */
  architecture: string | null;
  /** `general.name`. */
  name: string | null;
  /** Sum of all tensor element counts: the parameter count for FLOPs estimates. */
  parameterCount: number | null;
  /** `<arch>.context_length`: the context the model was trained for. */
  contextLength: number | null;
  /** `<arch>.embedding_length`. */
  embeddingLength: number | null;
  /** `<arch>.block_count` (transformer layers). */
  blockCount: number | null;
  /** `general.file_type` (llama.cpp's `LLAMA_FTYPE_*`: 0 = F32, 1 = F16, 7 = Q8_0, …). */
  fileType: number | null;
  /** Size of the file in bytes. */
  fileBytes: number;
}

function numberOrNull(value: unknown): number | null {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'bigint') return Number(value);
  return null;
}

/**
 * Reads a GGUF file's header (not its weights) and returns the architecture, parameter count and
 * context length. Only the header is read, so this is fast even for a multi-GB model.
 *
 * @example
 * const meta = await readGgufMetadata(await ensureTinyModel());
 * const flops = 2 * (meta.parameterCount ?? 0) * outputTokens;
 */
export async function readGgufMetadata(path: string): Promise<GgufModelMetadata> {
  let fileBytes: number;
  try {
    fileBytes = (await stat(path)).size;
  } catch (cause) {
    throw new LlamaCppEngineError(
      'MODEL_NOT_FOUND',
      `model file not found: ${path}; give the path of a .gguf file, or use builtin:tiny`,
      { cause },
    );
  }
  let info: GgufFileInfo;
  try {
    // Imported here: node-llama-cpp is slow to import and most users of this package never need it.
    const { readGgufFileInfo } = await import('node-llama-cpp');
    info = await readGgufFileInfo(path, {
      sourceType: 'filesystem',
      logWarnings: false,
      // The vocabulary can be hundreds of thousands of strings; none of it is needed here.
      ignoreKeys: [
        'tokenizer.ggml.tokens',
        'tokenizer.ggml.scores',
        'tokenizer.ggml.token_type',
        'tokenizer.ggml.merges',
      ],
    });
  } catch (cause) {
    throw new LlamaCppEngineError(
      'MODEL_LOAD_FAILED',
      `cannot read ${path} as a GGUF model (${cause instanceof Error ? cause.message : String(cause)}); ` +
        'check that the file is a complete .gguf file',
      { cause },
    );
  }
  const meta = info.metadata as unknown as Record<string, Record<string, unknown> | undefined>;
  const architecture = (meta.general?.architecture as string | undefined) ?? null;
  const arch = architecture ? meta[architecture] : undefined;
  const tensors = info.fullTensorInfo ?? info.tensorInfo;
  let parameterCount: number | null = null;
  if (tensors && tensors.length > 0) {
    parameterCount = 0;
    for (const t of tensors) {
      parameterCount += t.dimensions.reduce<number>((a, b) => a * Number(b), 1);
    }
  }
  return {
    architecture,
    name: (meta.general?.name as string | undefined) ?? null,
    parameterCount,
    contextLength: numberOrNull(arch?.context_length),
    embeddingLength: numberOrNull(arch?.embedding_length),
    blockCount: numberOrNull(arch?.block_count),
    fileType: numberOrNull(meta.general?.file_type),
    fileBytes,
  };
}
