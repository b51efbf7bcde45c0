import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  linkSync,
  openSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';

let counter = 0;
const processTag = `${hostname().replace(/[^A-Za-z0-9-]/g, '_')}.${process.pid}.${randomBytes(3).toString('hex')}`;

/**
 * A temp file name beside `path` that no other process, on this host or another sharing the
 * filesystem, will pick: host, pid, a per-process random tag and a counter.
 */
export function uniqueTempPath(path: string): string {
  counter += 1;
  return `${path}.${processTag}.${counter}.tmp`;
}

/**
 * Write `data` to `path` so that a reader (or a crash) only ever sees the old file or the new
 * one, never a torn one: write a temp file beside it, fsync it, rename over, and (unless
 * `syncDir: false`) fsync the directory so the rename itself survives a power cut.
 * Synchronous on purpose: a worker calls it right before exiting, and a signal handler cannot
 * interleave with a sync write.
 */
export function writeFileAtomicSync(
  path: string,
  data: string | Uint8Array,
  options: { syncDir?: boolean; fsync?: boolean } = {},
): void {
  const tmp = writeTempSync(path, data, options.fsync ?? true);
  try {
    renameSync(tmp, path);
  } catch (error) {
    rmSync(tmp, { force: true });
    throw error;
  }
  if (options.syncDir ?? true) fsyncDirSync(dirname(path));
}

/** Write (and fsync, unless told not to) `data` to a fresh temp file beside `path`; returns its path. */
function writeTempSync(path: string, data: string | Uint8Array, fsync = true): string {
  const tmp = uniqueTempPath(path);
  try {
    const fd = openSync(tmp, 'w');
    try {
      if (typeof data === 'string') writeFileSync(fd, data);
      else writeSync(fd, data);
      if (fsync) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch (error) {
    rmSync(tmp, { force: true });
    throw error;
  }
  return tmp;
}

/** Persist a rename: without it a power cut may forget the new directory entry. */
export function fsyncDirSync(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Some filesystems refuse fsync on a directory; the rename itself is still atomic.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** `writeFileAtomicSync` for a JSON value (pretty-printed: people read these files). */
export function writeJsonAtomicSync(
  path: string,
  value: unknown,
  options: { syncDir?: boolean; fsync?: boolean } = {},
): void {
  writeFileAtomicSync(path, `${JSON.stringify(value, null, 2)}\n`, options);
}

/**
 * Publish `data` at `path` only if nothing is there yet: write and fsync a temp file, then
 * `link()` it into place, which fails when `path` exists, so a published file is never
 * overwritten (by a second owner of the same run, a late orphan, or anything else). Returns
 * `'exists'` (and writes nothing at `path`) when it was already there; the caller decides what
 * to do with its own data (`keepAside`: the temp file is renamed there instead of deleted).
 */
export function publishFileSync(
  path: string,
  data: string | Uint8Array,
  options: { keepAside?: string } = {},
): 'published' | 'exists' {
  const tmp = writeTempSync(path, data);
  try {
    linkSync(tmp, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
      rmSync(tmp, { force: true });
      throw error;
    }
    if (options.keepAside) renameSync(tmp, options.keepAside);
    else rmSync(tmp, { force: true });
    fsyncDirSync(dirname(path));
    return 'exists';
  }
  rmSync(tmp, { force: true });
  fsyncDirSync(dirname(path));
  return 'published';
}
