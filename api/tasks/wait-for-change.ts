/**
 * Waiting on the database without polling it: resolves when a NOTIFY for this
 * key arrives on the shared listener, when the listener reconnects (a
 * notification may have been missed), after `timeoutMs`, or on abort. The
 * caller re-reads the committed row afterwards; a notification is only a hint.
 */
import { isConnectionError } from '../../shared/db/connection-errors.ts';
import { EVERY_KEY, type NotificationListener } from '../../shared/db/notification-listener.ts';

// Belt and braces: even a listener that is silently stuck cannot hold a waiter
// past this; the caller re-reads and waits again.
const SAFETY_RECHECK_MS = 5000;

export function waitForChange(
  listener: NotificationListener,
  channels: readonly string[],
  key: string,
  timeoutMs: number,
  signal: AbortSignal,
): { promise: Promise<void>; cancel: () => void } {
  let cancel = () => {};
  const promise = new Promise<void>((resolve) => {
    if (signal.aborted || timeoutMs <= 0) return resolve();
    // The key itself, and the empty payload a statement naming too many tasks
    // sends instead of their ids (migrations/0005).
    const unsubscribers = channels.flatMap((ch) => [
      listener.subscribe(ch, key, done),
      listener.subscribe(ch, EVERY_KEY, done),
    ]);
    const unReconnect = listener.onReconnect(done);
    const timer = setTimeout(done, Math.min(timeoutMs, SAFETY_RECHECK_MS));
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      unsubscribers.forEach((u) => u());
      unReconnect();
      signal.removeEventListener('abort', done);
      resolve();
    }
    cancel = done;
  });
  return { promise, cancel };
}

/**
 * Re-reads with `read` until `isDone(value)` or the deadline; subscribes before
 * each read so a change committed between read and wait is never missed.
 */
export async function readUntil<T>(
  listener: NotificationListener,
  channels: readonly string[],
  key: string,
  read: () => Promise<T>,
  isDone: (value: T) => boolean,
  waitMs: number,
  signal: AbortSignal,
): Promise<T> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const remaining = deadline - Date.now();
    const wait = waitForChange(listener, channels, key, remaining, signal);
    let value: T;
    try {
      value = await read();
    } catch (err) {
      wait.cancel();
      // The database went away under a waiting request (a restart, a killed
      // connection): keep waiting for it to come back until the deadline,
      // rather than failing a long-poll that has time left.
      if (!isConnectionError(err) || deadline - Date.now() < 500 || signal.aborted) throw err;
      await new Promise((r) => setTimeout(r, 500));
      continue;
    }
    if (isDone(value) || remaining <= 0 || signal.aborted) {
      wait.cancel();
      return value;
    }
    await wait.promise;
  }
}
