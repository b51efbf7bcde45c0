import { LlemError } from '@llem/resilience';

/**
 * Why a managed server failed a run; a run that fails with one of these is of type `server`:
 * - `SERVER_SPAWN`: the program could not be started (not found, not executable);
 * - `SERVER_EXITED`: it exited before it was ready, or while the run was going on;
 * - `SERVER_NOT_READY`: it did not answer `server.ready.path` with 2xx within `ready.timeout_s`;
 * - `SERVER_PORT_IN_USE`: its port was taken (after retries with other ports for `{port}`).
 */
export type ManagedServerErrorCode =
  | 'SERVER_SPAWN'
  | 'SERVER_EXITED'
  | 'SERVER_NOT_READY'
  | 'SERVER_PORT_IN_USE';

/** A managed server that could not start, never got ready, or died; the message says which and shows its log's tail. */
export class ManagedServerError extends LlemError<ManagedServerErrorCode> {
  override readonly name = 'ManagedServerError';
  readonly code: ManagedServerErrorCode;
  readonly source = 'server' as const;

  constructor(code: ManagedServerErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
