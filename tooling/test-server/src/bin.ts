#!/usr/bin/env node
// `node tooling/test-server/dist/bin.js --help`: the OpenAI-compatible test server as a program
// (a managed server's argv, a benchmark's server in its own process).
import { ignoresSigterm, runProgram } from './program';
import type { TestServer } from './server';

// Signal handlers first: a SIGTERM right after the listening line must find them in place.
let server: TestServer | null = null;
const stop = (): void => {
  if (server === null) process.exit(0);
  else void server.close().then(() => process.exit(0));
};
// --ignore-sigterm: a server that does not stop when asked (only SIGKILL ends it).
if (ignoresSigterm(process.argv.slice(2))) process.on('SIGTERM', () => undefined);
else process.once('SIGTERM', stop);
process.once('SIGINT', stop);

server = await runProgram(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  exit: (code) => process.exit(code),
});
