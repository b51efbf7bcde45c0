import { readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { ManifestCounts, ManifestStatus } from '@llem/domain';
import { StudyDirectory } from '@llem/study';
import { describeStudyStatus } from './load';

/** One study directory found under a results folder. */
export interface StudyListing {
  dir: string;
  name: string;
  /**
   * From the run records (not the manifest, which may be stale): `running` while a runner holds
   * runs of it, `interrupted` when its runner stopped or died before the end; `invalid` when the
   * study cannot be read (`problem` says why).
   */
  status: ManifestStatus | 'invalid';
  /** The status in words: `running (Slurm job 812)`, `interrupted`… */
  statusText: string;
  designHash: string | null;
  createdAt: string | null;
  updatedAt: string | null;
  counts: ManifestCounts | null;
  problem: string | null;
}

/**
 * List the study directories directly under `resultsDir` (those with a `study.json` or a
 * `manifest.json`), oldest first. Each study's status and counts are rebuilt from its run
 * records and claims. A study that cannot be read is listed as `invalid` with the reason rather
 * than hidden.
 *
 * @example
 * for (const s of await listStudies('results')) console.log(s.name, s.statusText, s.counts?.completed);
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
    const directory = new StudyDirectory(join(root, e.name));
    if (!directory.isStudy()) continue;
    try {
      const { stored } = directory.readStoredOrManifest();
      const state = directory.state(stored);
      const manifest = directory.manifestFor(state, stored.toolVersion);
      const written = directory.readManifest().manifest;
      out.push({
        dir: directory.dir,
        name: stored.plan.name,
        status: state.status,
        statusText: describeStudyStatus({ manifest, owners: state.owners }),
        designHash: stored.plan.designHash,
        createdAt: stored.createdAt,
        updatedAt: written?.updatedAt ?? null,
        counts: state.counts,
        problem: null,
      });
    } catch (error) {
      out.push({
        dir: directory.dir,
        name: e.name,
        status: 'invalid',
        statusText: 'invalid',
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
