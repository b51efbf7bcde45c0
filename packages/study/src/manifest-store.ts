import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  countManifestEntries,
  MANIFEST_SCHEMA_VERSION,
  type Manifest,
  type ManifestEntry,
  ManifestSchema,
  type ManifestStatus,
} from '@llem/domain';
import { StudyError } from './errors';
import { writeJsonAtomicSync } from './internal/atomic';

/** The manifest's file name inside a study directory. */
export const MANIFEST_FILE = 'manifest.json';

/** What identifies a scheduled run in the manifest; everything else starts empty. */
export type ManifestEntryInit = Pick<
  ManifestEntry,
  'key' | 'configHash' | 'cycle' | 'copy' | 'label'
>;

/** A run that has not been dispatched yet: pending, no attempts, no result, no error. */
export function pendingEntry(init: ManifestEntryInit): ManifestEntry {
  return {
    key: init.key,
    configHash: init.configHash,
    cycle: init.cycle,
    copy: init.copy,
    label: init.label,
    status: 'pending',
    resultFile: null,
    error: null,
    startedAt: null,
    endedAt: null,
    attempts: 0,
  };
}

/**
 * `manifest.json` in a study directory: read it, change it, and write it back atomically
 * (temp file, fsync, rename) on every update, so it is valid JSON at every instant and a crash
 * loses at most the update in flight. `counts` is recomputed from the entries on every write.
 */
export class ManifestStore {
  readonly path: string;
  #manifest: Manifest;
  readonly #now: () => Date;

  private constructor(path: string, manifest: Manifest, now: () => Date) {
    this.path = path;
    this.#manifest = manifest;
    this.#now = now;
  }

  /**
   * Write a new manifest with every run pending.
   *
   * @example
   * const store = ManifestStore.create(dir, { studyName, designHash, toolVersion, entries });
   */
  static create(
    studyDir: string,
    init: {
      studyName: string;
      designHash: string;
      toolVersion: string;
      entries: ReadonlyArray<ManifestEntryInit>;
    },
    now: () => Date = () => new Date(),
  ): ManifestStore {
    const at = now().toISOString();
    const entries = init.entries.map(pendingEntry);
    const manifest: Manifest = {
      schemaVersion: MANIFEST_SCHEMA_VERSION,
      toolVersion: init.toolVersion,
      studyName: init.studyName,
      designHash: init.designHash,
      status: 'running',
      counts: countManifestEntries(entries),
      createdAt: at,
      updatedAt: at,
      entries,
    };
    const store = new ManifestStore(join(studyDir, MANIFEST_FILE), manifest, now);
    store.#write();
    return store;
  }

  /**
   * Read and validate the manifest of an existing study directory.
   *
   * @example
   * const { manifest } = ManifestStore.load('results/my_study_20260102T030405Z');
   */
  static load(studyDir: string, now: () => Date = () => new Date()): ManifestStore {
    const path = join(studyDir, MANIFEST_FILE);
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(path, 'utf8'));
    } catch (error) {
      throw new StudyError(`cannot read ${path}: is ${studyDir} a study directory?`, {
        cause: error,
      });
    }
    const parsed = ManifestSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue ? issue.path.join('.') || '(root)' : '(root)';
      throw new StudyError(`${path} is not a valid manifest: ${where}: ${issue?.message}`);
    }
    return new ManifestStore(path, parsed.data, now);
  }

  /** A snapshot: mutating it changes nothing on disk. */
  get manifest(): Manifest {
    return structuredClone(this.#manifest);
  }

  entry(key: string): ManifestEntry | undefined {
    const found = this.#manifest.entries.find((e) => e.key === key);
    return found ? { ...found } : undefined;
  }

  /** Change one entry and write. */
  updateEntry(key: string, change: Partial<Omit<ManifestEntry, 'key'>>): ManifestEntry {
    const entry = this.#manifest.entries.find((e) => e.key === key);
    if (!entry) throw new StudyError(`no run ${key} in ${this.path}`);
    Object.assign(entry, change);
    this.#write();
    return { ...entry };
  }

  /**
   * Replace the scheduled runs (a forced resume with a changed design) and write. Entries are
   * given whole: the caller keeps the ones to keep, completed results included.
   */
  replaceEntries(entries: readonly ManifestEntry[], designHash: string): void {
    this.#manifest.entries = entries.map((e) => ({ ...e }));
    this.#manifest.designHash = designHash;
    this.#write();
  }

  /** Change the study status and write. */
  setStatus(status: ManifestStatus): void {
    this.#manifest.status = status;
    this.#write();
  }

  #write(): void {
    this.#manifest.counts = countManifestEntries(this.#manifest.entries);
    this.#manifest.updatedAt = this.#now().toISOString();
    // No directory fsync: a rename lost to a power cut leaves the previous manifest, which
    // resume handles (a result on disk is recovered, a `running` run reruns). The worker does
    // fsync the directory after its result rename, so `completed` never points at a lost file.
    writeJsonAtomicSync(this.path, this.#manifest, { syncDir: false });
  }
}
