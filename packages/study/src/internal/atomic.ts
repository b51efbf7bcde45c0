import {
  closeSync,
  fsyncSync,
  openSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';

let counter = 0;

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
  options: { syncDir?: boolean } = {},
): void {
  counter += 1;
  const tmp = `${path}.${process.pid}.${counter}.tmp`;
  try {
    const fd = openSync(tmp, 'w');
    try {
      if (typeof data === 'string') writeFileSync(fd, data);
      else writeSync(fd, data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (error) {
    rmSync(tmp, { force: true });
    throw error;
  }
  if (options.syncDir ?? true) fsyncDirSync(dirname(path));
}

/** Persist a rename: without it a power cut may forget the new directory entry. */
function fsyncDirSync(dir: string): void {
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
  options: { syncDir?: boolean } = {},
): void {
  writeFileAtomicSync(path, `${JSON.stringify(value, null, 2)}\n`, options);
}
