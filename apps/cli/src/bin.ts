#!/usr/bin/env node
import { main } from './main';

// A reader that stops early (`llem results show DIR | head`) closes the pipe: further output is
// dropped quietly instead of crashing with EPIPE. A running study carries on and saves its results.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
  });
}

process.exitCode = await main(process.argv.slice(2));
