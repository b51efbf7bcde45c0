#!/usr/bin/env node
// Makes a fresh clone usable with nothing but Node 20: installs pnpm 10 when missing (corepack's
// signature check fails on some machines, so npm installs it), installs the locked dependencies
// and builds every package. Idempotent and quick when nothing changed (turbo caches builds).
import { execSync } from 'node:child_process';

const run = (cmd) => execSync(cmd, { stdio: ['ignore', 'inherit', 'inherit'] });
const quiet = (cmd) => {
  try {
    return execSync(cmd, { stdio: ['ignore', 'pipe', 'ignore'] })
      .toString()
      .trim();
  } catch {
    return '';
  }
};

if (!quiet('pnpm --version').startsWith('10.')) {
  console.error('bootstrap: installing pnpm 10 with npm');
  run('npm install -g pnpm@10');
}
run('pnpm install --frozen-lockfile --reporter=silent');
run('pnpm turbo run build --output-logs=errors-only');
