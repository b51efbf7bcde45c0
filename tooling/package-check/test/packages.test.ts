import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// These tests read the BUILT packages (dist), as an npm consumer gets them: the child processes
// run plain `node`, without the `@llem/source` condition the other tests use. turbo builds every
// dependency before this package's `test` (`dependsOn: ["^build"]`).

const PACKAGES = [
  '@llem/domain',
  '@llem/engines',
  '@llem/measure',
  '@llem/nvml',
  '@llem/report',
  '@llem/resilience',
  '@llem/study',
] as const;

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

interface Manifest {
  name: string;
  type?: string;
  sideEffects?: boolean | string[];
  exports: Record<string, string | Record<string, string>>;
}

function packageDir(name: string): string {
  return dirname(require.resolve(`${name}/package.json`));
}

function manifest(name: string): Manifest {
  return JSON.parse(readFileSync(join(packageDir(name), 'package.json'), 'utf8')) as Manifest;
}

/** Every JavaScript entry point a package exports: `.` and its subpaths, as specifiers. */
function specifiers(name: string): string[] {
  return Object.entries(manifest(name).exports)
    .filter(([subpath, target]) => typeof target === 'object' && !subpath.endsWith('.json'))
    .map(([subpath]) => (subpath === '.' ? name : `${name}/${subpath.slice(2)}`));
}

type Loaded = Record<string, { names?: string[]; error?: string }>;

function load(fixture: 'load.cjs' | 'load.mjs', specs: readonly string[]): Loaded {
  const env = { ...process.env };
  // Importing @llem/measure/worker must not find a task to run.
  delete env.LLEM_TASK_FILE;
  const stdout = execFileSync(process.execPath, [join(here, 'fixtures', fixture), ...specs], {
    cwd: here,
    env,
    encoding: 'utf8',
    timeout: 60_000,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return JSON.parse(stdout) as Loaded;
}

const all = PACKAGES.flatMap(specifiers);

describe('every package loads with require() as well as import', { timeout: 120_000 }, () => {
  it('lists the entry points it checks (each package and each exported subpath)', () => {
    expect(all).toEqual([
      '@llem/domain',
      '@llem/engines',
      '@llem/measure',
      '@llem/measure/worker',
      '@llem/nvml',
      '@llem/nvml/readings',
      '@llem/report',
      '@llem/resilience',
      '@llem/study',
      '@llem/study/worker',
    ]);
  });

  it('require() from a CommonJS file gives the same exports as import()', () => {
    const required = load('load.cjs', all);
    const imported = load('load.mjs', all);
    for (const spec of all) {
      expect(required[spec], `require('${spec}')`).toEqual({ names: expect.any(Array) });
      expect(imported[spec], `import('${spec}')`).toEqual({ names: expect.any(Array) });
      expect(required[spec]?.names?.length, spec).toBeGreaterThan(0);
      expect(required[spec]?.names, spec).toEqual(imported[spec]?.names);
    }
    // Spot checks that each resolved to the real build, not an empty shim.
    expect(required['@llem/domain']?.names).toContain('parseExperimentConfig');
    expect(required['@llem/engines']?.names).toContain('createEngine');
    expect(required['@llem/nvml/readings']?.names).toContain('GPU_READINGS');
    expect(required['@llem/study/worker']?.names).toContain('defineWorker');
  });

  it('resolves require() to the ESM build through a default condition, with types first', () => {
    for (const name of PACKAGES) {
      const m = manifest(name);
      expect(m.type, name).toBe('module');
      for (const [subpath, target] of Object.entries(m.exports)) {
        if (typeof target !== 'object') continue;
        const conditions = Object.keys(target).filter((c) => c !== '@llem/source');
        expect(conditions, `${name} ${subpath}`).toEqual(['types', 'default']);
        expect(target.default, `${name} ${subpath}`).toMatch(/^\.\/dist\/.+\.js$/);
        expect(existsSync(join(packageDir(name), target.default as string))).toBe(true);
      }
    }
  });
});

describe('sideEffects', () => {
  it('names exactly the built modules that act when imported; the rest are free of effects', () => {
    const effects = Object.fromEntries(PACKAGES.map((name) => [name, manifest(name).sideEffects]));
    expect(effects).toEqual({
      '@llem/domain': false,
      '@llem/engines': false,
      // Importing the worker module runs the experiment its task file names.
      '@llem/measure': ['./dist/worker.js'],
      // The sampler's thread entry starts sampling when a Worker loads it.
      '@llem/nvml': ['./dist/internal/sampler-worker.js'],
      '@llem/report': false,
      '@llem/resilience': false,
      '@llem/study': false,
    });
    for (const [name, files] of Object.entries(effects)) {
      if (!Array.isArray(files)) continue;
      for (const file of files) expect(existsSync(join(packageDir(name), file)), file).toBe(true);
    }
  });
});
