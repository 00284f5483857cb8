/**
 * A per-process cap on open SSE streams and waiting long-polls
 * (AGENTQ_MAX_STREAMS). Each holds a request, a timer and a LISTEN
 * subscription; beyond the cap a new one is a 429 with Retry-After instead of
 * one more waiter the process cannot afford.
 */
import { ApiError } from '../errors.ts';

/** Seconds a refused client is told to wait. */
export const STREAMS_RETRY_AFTER_S = 5;

export class StreamSlots {
  private open = 0;

  constructor(readonly max: number) {}

  get inUse(): number {
    return this.open;
  }

  /** Takes a slot or throws 429 too_many_streams; call the returned function exactly once to give it back. */
  acquire(): () => void {
    if (this.open >= this.max) {
      throw new ApiError(
        429,
        'too_many_streams',
        `this server already holds ${this.max} open streams and long-polls; retry later`,
        undefined,
        { 'Retry-After': String(STREAMS_RETRY_AFTER_S) },
      );
    }
    this.open += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.open -= 1;
    };
  }
}
