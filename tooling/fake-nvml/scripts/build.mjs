// Builds the fake NVML library with the system C compiler:
//   build/libnvidia-ml.so.1         every symbol @llem/nvml binds (a current driver)
//   build/legacy/libnvidia-ml.so.1  built with -DFAKE_NVML_LEGACY: the newer entry points are
//                                   really absent at dlsym level (an old driver)
// Rebuilds only when src/fake_nvml.c (or this script) is newer than the output, so the test
// set-up can call it on every run for nothing.
import { execFileSync } from 'node:child_process';
import { mkdirSync, renameSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'src', 'fake_nvml.c');

export const variants = {
  full: { output: join(root, 'build', 'libnvidia-ml.so.1'), defines: [] },
  legacy: {
    output: join(root, 'build', 'legacy', 'libnvidia-ml.so.1'),
    defines: ['-DFAKE_NVML_LEGACY'],
  },
};

function mtime(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return -1;
  }
}

function compiler() {
  for (const cc of [process.env.CC, 'cc', 'gcc', 'clang']) {
    if (!cc) continue;
    try {
      execFileSync(cc, ['--version'], { stdio: 'ignore' });
      return cc;
    } catch {
      // try the next one
    }
  }
  throw new Error('fake-nvml: no C compiler found (set CC, or install cc/gcc/clang)');
}

/** Build what is stale; returns the output paths. */
export function buildFakeNvml({ force = false, quiet = false } = {}) {
  const newest = Math.max(mtime(source), mtime(fileURLToPath(import.meta.url)));
  let cc;
  for (const [name, { output, defines }] of Object.entries(variants)) {
    if (!force && mtime(output) >= newest) continue;
    cc ??= compiler();
    mkdirSync(dirname(output), { recursive: true });
    // Write beside the target and rename, so a concurrent test run never loads half a file.
    const tmp = `${output}.${process.pid}.tmp`;
    execFileSync(
      cc,
      [
        '-shared',
        '-fPIC',
        '-O2',
        '-std=c11',
        '-Wall',
        '-Wextra',
        '-Werror',
        '-fvisibility=hidden',
        ...defines,
        '-o',
        tmp,
        source,
      ],
      { stdio: ['ignore', 'inherit', 'inherit'] },
    );
    renameSync(tmp, output);
    if (!quiet) console.log(`fake-nvml: built ${name} → ${output}`);
  }
  return Object.fromEntries(Object.entries(variants).map(([k, v]) => [k, v.output]));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  buildFakeNvml({ force: process.argv.includes('--force') });
}
