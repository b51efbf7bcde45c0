import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ManifestSchema } from '@llem/domain';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StudyError } from '../src/errors';
import { ManifestStore } from '../src/manifest-store';
import { tempDir } from './helpers';

let tmp: ReturnType<typeof tempDir>;
beforeEach(() => {
  tmp = tempDir();
});
afterEach(() => tmp.cleanup());

const entries = [0, 1, 2].map((cycle) => ({
  key: `0123456789abcdef_c${cycle}`,
  configHash: '0123456789abcdef',
  cycle,
  copy: 0,
  label: 'a',
}));

function create() {
  let t = Date.parse('2026-01-02T03:04:05.000Z');
  const now = () => {
    t += 1000;
    return new Date(t);
  };
  return ManifestStore.create(
    tmp.dir,
    { studyName: 's', designHash: 'fedcba9876543210', toolVersion: '1.2.3', entries },
    now,
  );
}

describe('ManifestStore', () => {
  it('writes a schema-valid manifest with every run pending, and keeps counts in step', () => {
    const store = create();
    const onDisk = () => ManifestSchema.parse(JSON.parse(readFileSync(store.path, 'utf8')));
    expect(onDisk()).toMatchObject({
      status: 'running',
      counts: { total: 3, pending: 3, running: 0, completed: 0, failed: 0 },
    });
    store.updateEntry(entries[0]!.key, { status: 'running', attempts: 1 });
    store.updateEntry(entries[1]!.key, {
      status: 'failed',
      error: { type: 'crash', message: 'signal SIGSEGV' },
    });
    expect(onDisk().counts).toEqual({ total: 3, pending: 1, running: 1, completed: 0, failed: 1 });
    store.setStatus('interrupted');
    const manifest = onDisk();
    expect(manifest.status).toBe('interrupted');
    expect(manifest.updatedAt > manifest.createdAt).toBe(true);
    // Atomic writes leave no temp files behind.
    expect(readdirSync(tmp.dir)).toEqual(['manifest.json']);
  });

  it('loads what it wrote; snapshots do not write through', () => {
    const store = create();
    store.updateEntry(entries[2]!.key, { status: 'completed', resultFile: 'runs/x.json' });
    const loaded = ManifestStore.load(tmp.dir);
    expect(loaded.manifest).toEqual(store.manifest);
    const snapshot = loaded.manifest;
    snapshot.entries[0]!.status = 'completed';
    expect(loaded.entry(entries[0]!.key)?.status).toBe('pending');
  });

  it('rejects a missing or invalid manifest with a StudyError naming the file and field', () => {
    expect(() => ManifestStore.load(tmp.dir)).toThrow(StudyError);
    expect(() => ManifestStore.load(tmp.dir)).toThrow(join(tmp.dir, 'manifest.json'));
    create();
    const raw = JSON.parse(readFileSync(join(tmp.dir, 'manifest.json'), 'utf8'));
    raw.entries[1].status = 'done';
    writeFileSync(join(tmp.dir, 'manifest.json'), JSON.stringify(raw));
    expect(() => ManifestStore.load(tmp.dir)).toThrow(/entries\.1\.status/);
  });

  it('refuses to update a run it does not know', () => {
    expect(() => create().updateEntry('nope', { status: 'failed' })).toThrow(StudyError);
  });
});
