import { createServer } from 'node:net';

/**
 * A port nothing listens on now, chosen by the OS (bind to port 0, read it, close). Another
 * process may take it before the server binds it: a clash is retried with a fresh port.
 *
 * @example
 * const port = await pickFreePort(); // e.g. 38211
 */
export function pickFreePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * True when `port` can be bound on `host` now (nothing listens there).
 *
 * @example
 * if (!(await portIsFree(8000))) console.log('something already listens on 8000');
 */
export function portIsFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}
