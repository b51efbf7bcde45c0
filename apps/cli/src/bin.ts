#!/usr/bin/env node
import { invocationOf, main, userDirectory } from './main';

// A reader that stops early (`llem results show DIR | head`) closes the pipe: further output is
// dropped quietly instead of crashing with EPIPE. A running study carries on and saves its results.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
  });
}

// Paths the user gives resolve from where they typed the command, also through `pnpm llem`.
const cwd = userDirectory(process.env, process.cwd());
process.exitCode = await main(process.argv.slice(2), {
  cwd,
  invocation: invocationOf(process.env, process.argv[1], cwd),
});
