/**
 * Why an attempt's AbortSignal fired. The worker aborts one controller per
 * attempt and passes one of these as the reason, so whoever catches the abort
 * knows what to write: cancelled, a retryable timeout, a requeue, or nothing.
 */
export type AbortKind =
  | 'cancel' // the client asked to cancel (NOTIFY agentq_cancel)
  | 'timeout' // the attempt ran past its timeout_s
  | 'shutdown' // the worker is stopping and the grace period ran out
  | 'fenced'; // another attempt owns the task now; this one must stop silently

export class RunAbort extends Error {
  constructor(readonly kind: AbortKind) {
    super(`attempt aborted: ${kind}`);
    this.name = 'RunAbort';
  }
}

/** The RunAbort behind a signal, if it was aborted with one. */
export function abortKind(signal: AbortSignal): AbortKind | undefined {
  return signal.aborted && signal.reason instanceof RunAbort ? signal.reason.kind : undefined;
}
