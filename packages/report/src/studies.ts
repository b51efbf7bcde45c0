import { readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { ManifestCounts, ManifestStatus } from '@llem/domain';
import { readManifest } from './load';

/** One study directory found under a results folder. */
export interface StudyListing {
  dir: string;
  name: string;
  /** `invalid` when the manifest could not be read; `problem` says why. */
  status: ManifestStatus | 'invalid';
  designHash: string | null;
  createdAt: string | null;
  updatedAt: string | null;
  counts: ManifestCounts | null;
  problem: string | null;
}

/**
 * List the study directories directly under `resultsDir` (those with a `manifest.json`), oldest
 * first. A corrupt manifest is listed as `invalid` with the reason rather than hidden.
 *
 * @example
 * for (const s of await listStudies('results')) console.log(s.name, s.status, s.counts?.completed);
 */
export async function listStudies(resultsDir: string): Promise<StudyListing[]> {
  const root = resolve(resultsDir);
  let entries: import('node:fs').Dirent[];
  try {
    entries = await readdir(root, { withFileTypes: true });
  } catch {
    return [];
  }
  const out: StudyListing[] = [];
  for (const e of entries) {
    if (!e.isDirectory()) continue;
    const dir = join(root, e.name);
    const hasManifest = (await readdir(dir).catch(() => [] as string[])).includes('manifest.json');
    if (!hasManifest) continue;
    try {
      const m = await readManifest(dir);
      out.push({
        dir,
        name: m.studyName,
        status: m.status,
        designHash: m.designHash,
        createdAt: m.createdAt,
        updatedAt: m.updatedAt,
        counts: m.counts,
        problem: null,
      });
    } catch (error) {
      out.push({
        dir,
        name: e.name,
        status: 'invalid',
        designHash: null,
        createdAt: null,
        updatedAt: null,
        counts: null,
        problem: error instanceof Error ? error.message : String(error),
      });
    }
  }
  return out.sort(
    (a, b) => (a.createdAt ?? '').localeCompare(b.createdAt ?? '') || a.dir.localeCompare(b.dir),
  );
}
