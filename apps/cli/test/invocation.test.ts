import { describe, expect, it } from 'vitest';
import { invocationOf, userDirectory } from '../src/main';

describe('how the user started llem (for commands printed in messages)', () => {
  it('names llem on the PATH, the repository script, or node with the path of bin.js', () => {
    expect(invocationOf({}, '/usr/local/bin/llem', '/home/u/work')).toBe('llem');
    expect(
      invocationOf(
        { npm_lifecycle_event: 'llem', npm_config_user_agent: 'pnpm/10.34.9 npm/? node/v20.20.2' },
        '/repo/apps/cli/dist/bin.js',
        '/home/u/work',
      ),
    ).toBe('pnpm llem');
    expect(
      invocationOf(
        { npm_lifecycle_event: 'llem', npm_config_user_agent: 'npm/10.8.2 node/v20.20.2' },
        '/repo/apps/cli/dist/bin.js',
        '/repo',
      ),
    ).toBe('npm run llem --');
    expect(invocationOf({}, '/repo/apps/cli/dist/bin.js', '/repo')).toBe(
      'node apps/cli/dist/bin.js',
    );
    expect(invocationOf({}, '/repo/apps/cli/dist/bin.js', '/elsewhere')).toBe(
      'node /repo/apps/cli/dist/bin.js',
    );
  });

  it('resolves paths from where the user typed the command, also through pnpm llem', () => {
    expect(userDirectory({ npm_lifecycle_event: 'llem', INIT_CWD: '/home/u/work' }, '/repo')).toBe(
      '/home/u/work',
    );
    expect(userDirectory({ INIT_CWD: '/home/u/work' }, '/repo')).toBe('/repo');
    expect(userDirectory({}, '/home/u/work')).toBe('/home/u/work');
  });
});
