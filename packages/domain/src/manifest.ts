import { z } from 'zod';

/**
 * The study manifest (`manifest.json` in the study directory): the runner's single source of
 * truth for resume. camelCase. Written atomically by `@llem/study`; this file only defines it.
 */

export const MANIFEST_SCHEMA_VERSION = 1 as const;

const isoTimestamp = z.iso.datetime({ offset: true });

export const ManifestStatusSchema = z.enum(['running', 'completed', 'interrupted']);
export type ManifestStatus = z.infer<typeof ManifestStatusSchema>;

export const ManifestEntryStatusSchema = z.enum(['pending', 'running', 'completed', 'failed']);
export type ManifestEntryStatus = z.infer<typeof ManifestEntryStatusSchema>;

/**
 * Why a run failed, from the closed list `RUN_FAILURE_TYPES` (never a stack):
 * - `timeout`: it ran past its timeout and was stopped;
 * - `crash`: the worker died (a signal, a non-zero exit, an error that is no llem error);
 * - `spawn`: the worker could not be started;
 * - `no-result`: the worker exited without a result (or resume found its result unusable);
 * - `interrupted`: Ctrl-C or a dead runner stopped it; it runs again on resume;
 * - `engine`: the engine failed (model, binary, server unreachable, request failures…);
 * - `config`: the config cannot run as written;
 * - `measurement`: the harness could not measure (dataset, energy source…);
 * - `server`: a managed server exited or never got ready;
 * - `preempted`: the cluster stopped it (scancel, time limit, preemption); it runs again.
 */
export const RUN_FAILURE_TYPES = [
  'timeout',
  'crash',
  'spawn',
  'no-result',
  'interrupted',
  'engine',
  'config',
  'measurement',
  'server',
  'preempted',
] as const;
export const RunFailureTypeSchema = z.enum(RUN_FAILURE_TYPES);
export type RunFailureType = z.infer<typeof RunFailureTypeSchema>;

/**
 * Why a run failed. `type` is one of `RUN_FAILURE_TYPES` (a manifest written before that list
 * existed may hold an error class name such as `EngineError`, so the manifest accepts any string);
 * `code` is the error's own code when it had one (`MODEL_NOT_FOUND`, `COMMAND_EXIT`…).
 */
export const ManifestErrorSchema = z
  .object({
    type: z.string().min(1),
    message: z.string(),
    code: z.string().min(1).optional(),
  })
  .strict();
export type ManifestError = z.infer<typeof ManifestErrorSchema>;

export const ManifestEntrySchema = z
  .object({
    /** `ScheduledRun.key`: unique per run. */
    key: z.string().min(1),
    configHash: z.string().regex(/^[0-9a-f]{16}$/, 'expected 16 lowercase hex characters'),
    cycle: z.int().nonnegative(),
    /** 0 for the first copy of a config; 1, 2… for later identical copies in the same study. */
    copy: z.int().nonnegative(),
    label: z.string(),
    status: ManifestEntryStatusSchema,
    /** Path of the result JSON relative to the study directory; `null` until one exists. */
    resultFile: z.string().nullable(),
    error: ManifestErrorSchema.nullable(),
    startedAt: isoTimestamp.nullable(),
    endedAt: isoTimestamp.nullable(),
    /** How many times this run has been dispatched (resume increments it). */
    attempts: z.int().nonnegative(),
  })
  .strict();
export type ManifestEntry = z.infer<typeof ManifestEntrySchema>;

export const ManifestCountsSchema = z
  .object({
    total: z.int().nonnegative(),
    pending: z.int().nonnegative(),
    running: z.int().nonnegative(),
    completed: z.int().nonnegative(),
    failed: z.int().nonnegative(),
  })
  .strict();
export type ManifestCounts = z.infer<typeof ManifestCountsSchema>;

export const ManifestSchema = z
  .object({
    schemaVersion: z.literal(MANIFEST_SCHEMA_VERSION),
    toolVersion: z.string(),
    studyName: z.string(),
    designHash: z.string().regex(/^[0-9a-f]{16}$/, 'expected 16 lowercase hex characters'),
    status: ManifestStatusSchema,
    counts: ManifestCountsSchema,
    createdAt: isoTimestamp,
    updatedAt: isoTimestamp,
    /** In schedule order. */
    entries: z.array(ManifestEntrySchema),
  })
  .strict();
export type Manifest = z.infer<typeof ManifestSchema>;

/**
 * Count entries by status, so `counts` never drifts from `entries`.
 *
 * @example
 * manifest.counts = countManifestEntries(manifest.entries);
 */
export function countManifestEntries(entries: readonly ManifestEntry[]): ManifestCounts {
  const counts: ManifestCounts = {
    total: entries.length,
    pending: 0,
    running: 0,
    completed: 0,
    failed: 0,
  };
  for (const entry of entries) counts[entry.status] += 1;
  return counts;
}
