import type { z } from 'zod';

/**
 * Reads the keys a zod schema accepts at a nested path, for checking dotted sweep keys against
 * the config schema generically (no list of sweepable fields to keep in sync).
 */

interface Def {
  type: string;
  innerType?: z.ZodType;
  in?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  options?: z.ZodType[];
}

function defOf(schema: z.ZodType): Def {
  return (schema as unknown as { _zod: { def: Def } })._zod.def;
}

const WRAPPERS = new Set([
  'optional',
  'nullable',
  'default',
  'prefault',
  'nonoptional',
  'readonly',
  'catch',
]);

/** What can sit at a path: a mapping with known keys, a free-form mapping, or a leaf value. */
export type Node =
  | { kind: 'object'; shapes: Record<string, z.ZodType>[] }
  | { kind: 'record' }
  | { kind: 'leaf' };

/** Unwrap optional/default/pipe wrappers and unions down to what the value can be. */
export function nodeOf(schema: z.ZodType): Node {
  const shapes: Record<string, z.ZodType>[] = [];
  let record = false;
  const visit = (s: z.ZodType): void => {
    const def = defOf(s);
    if (WRAPPERS.has(def.type) && def.innerType) visit(def.innerType);
    else if (def.type === 'pipe' && def.in) visit(def.in);
    else if (def.type === 'union' && def.options) def.options.forEach(visit);
    else if (def.type === 'object' && def.shape) shapes.push(def.shape);
    else if (def.type === 'record') record = true;
  };
  visit(schema);
  if (shapes.length > 0) return { kind: 'object', shapes };
  return record ? { kind: 'record' } : { kind: 'leaf' };
}

export type PathCheck =
  | { ok: true }
  | { ok: false; depth: number; reason: 'unknown-key'; allowed: string[] }
  | { ok: false; depth: number; reason: 'not-a-mapping' };

/**
 * Check that `segments` names a field of `schema`. `depth` in a failure is the index of the
 * segment that failed.
 *
 * @example
 * checkPath(PartialExperimentSchema, ['llamacpp', 'batch_size']); // { ok: true }
 */
export function checkPath(schema: z.ZodType, segments: readonly string[]): PathCheck {
  let current: z.ZodType = schema;
  for (let depth = 0; depth < segments.length; depth++) {
    const node = nodeOf(current);
    const key = segments[depth] as string;
    if (node.kind === 'record') return { ok: true };
    if (node.kind === 'leaf') return { ok: false, depth, reason: 'not-a-mapping' };
    const next = node.shapes.find((shape) => Object.hasOwn(shape, key))?.[key];
    if (!next) {
      const allowed = [...new Set(node.shapes.flatMap((shape) => Object.keys(shape)))];
      return { ok: false, depth, reason: 'unknown-key', allowed };
    }
    current = next;
  }
  return { ok: true };
}
