/**
 * Returns `signal.reason`, or a DOMException named `AbortError` when the signal carries none
 * (a hand-made signal, or a runtime that predates `reason`).
 */
export function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
}
