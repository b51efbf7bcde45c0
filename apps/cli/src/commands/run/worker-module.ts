import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { UsageError } from '../../errors';

/** The worker module and the Node flags to fork it with: built dist in production, source in tests. */
export function workerModuleFor(fromSource = import.meta.url.endsWith('.ts')): {
  workerModule: string;
  execArgv: string[];
} {
  const require = createRequire(import.meta.url);
  const measureDir = dirname(require.resolve('@llem/measure/package.json'));
  if (fromSource) {
    const tsx = pathToFileURL(require.resolve('tsx')).href;
    return {
      workerModule: join(measureDir, 'src', 'worker.ts'),
      execArgv: ['--import', tsx, '--conditions', '@llem/source'],
    };
  }
  const built = join(measureDir, 'dist', 'worker.js');
  if (!existsSync(built))
    throw new UsageError(
      `the llem worker is not built (${built} is missing); run pnpm build first`,
    );
  return { workerModule: built, execArgv: [] };
}
