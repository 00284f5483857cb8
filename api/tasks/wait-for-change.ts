/**
 * Waiting on the database without polling it. A `ChangeWatch` subscribes once
 * to the shared LISTEN connection for one key and remembers that something
 * changed (a NOTIFY for the key, or a LISTEN reconnect, after which missed
 * notifications must be assumed); callers clear the flag before each read, so
 * a change committed during a read is never missed. A notification is only a
 * hint: callers re-read the committed rows.
 *
 * Re-reads without a notification are a safety net for a listener that is
 * silently stuck. While LISTEN is connected they are rare (`recheckMs`,
 * default 60 s): 200 idle streams re-reading every 5 s cost the database
 * twelve times the transactions of the real work. While it is down, the net
 * tightens to 5 s; its reconnect wakes every watch at once.
 */
import { isConnectionError } from '../../shared/db/connection-errors.ts';
import { EVERY_KEY, type NotificationListener } from '../../shared/db/notification-listener.ts';

/** Re-read interval while the LISTEN connection is healthy. */
export const DEFAULT_RECHECK_MS = 60_000;
/** Re-read interval while it is down (notifications are being lost). */
export const RECHECK_WHILE_DISCONNECTED_MS = 5_000;

export function recheckInterval(listener: NotificationListener, recheckMs: number): number {
  return listener.connected ? recheckMs : Math.min(recheckMs, RECHECK_WHILE_DISCONNECTED_MS);
}

export type WakeReason = 'change' | 'timeout' | 'abort';

export interface ChangeWatch {
  /** Whether a change arrived since the last call; clears the flag. Call before each read. */
  takeChanged(): boolean;
  /** Resolves at once if a change is pending, else on the next change, after `ms`, or on abort. */
  wait(ms: number, signal: AbortSignal): Promise<WakeReason>;
  /** Unsubscribes; a pending wait resolves as 'abort'. */
  close(): void;
}

/**
 * A flag that notifications raise and a read clears, and a wait that ends at
 * once when it is raised: the core of every watch below.
 */
function makeWakeFlag() {
  let changed = false;
  let wake: ((why: WakeReason) => void) | undefined;
  return {
    raise() {
      changed = true;
      wake?.('change');
    },
    take() {
      const was = changed;
      changed = false;
      return was;
    },
    wait(ms: number, signal: AbortSignal): Promise<WakeReason> {
      if (changed) return Promise.resolve('change');
      if (signal.aborted) return Promise.resolve('abort');
      if (ms <= 0) return Promise.resolve('timeout');
      return new Promise<WakeReason>((resolve) => {
        const onAbort = () => finish('abort');
        const timer = setTimeout(() => finish('timeout'), ms);
        signal.addEventListener('abort', onAbort, { once: true });
        function finish(why: WakeReason) {
          clearTimeout(timer);
          signal.removeEventListener('abort', onAbort);
          wake = undefined;
          resolve(why);
        }
        wake = finish;
      });
    },
    end() {
      wake?.('abort');
    },
  };
}

export function watchChanges(
  listener: NotificationListener,
  channels: readonly string[],
  key: string,
): ChangeWatch {
  const flag = makeWakeFlag();
  const onChange = () => flag.raise();
  // The key itself, and the empty payload a statement naming too many tasks
  // sends instead of their ids (migrations/0005).
  const unsubscribers = channels.flatMap((ch) => [
    listener.subscribe(ch, key, onChange),
    listener.subscribe(ch, EVERY_KEY, onChange),
  ]);
  unsubscribers.push(listener.onReconnect(onChange));
  return {
    takeChanged: flag.take,
    wait: flag.wait,
    close() {
      unsubscribers.forEach((u) => u());
      flag.end();
    },
  };
}

export interface TaskFeed {
  /**
   * The task ids changed since the last call, and whether the whole picture
   * must be re-read instead (an empty payload, a LISTEN reconnect, or more
   * ids than `maxPending`). Clears both. Call before each read.
   */
  take(): { ids: string[]; resync: boolean };
  wait(ms: number, signal: AbortSignal): Promise<WakeReason>;
  close(): void;
}

/** Every change on `channel` (all tasks, not one), as the ids to re-read. */
export function watchEveryTask(
  listener: NotificationListener,
  channel: string,
  maxPending = 5000,
): TaskFeed {
  const flag = makeWakeFlag();
  let pending = new Set<string>();
  let resync = false;
  const onId = (id: string) => {
    if (id === EVERY_KEY || pending.size >= maxPending) resync = true;
    else pending.add(id);
    flag.raise();
  };
  const unsubscribers = [
    listener.subscribeEvery(channel, onId),
    listener.onReconnect(() => onId(EVERY_KEY)),
  ];
  return {
    take() {
      flag.take();
      const taken = { ids: resync ? [] : [...pending], resync };
      pending = new Set();
      resync = false;
      return taken;
    },
    wait: flag.wait,
    close() {
      unsubscribers.forEach((u) => u());
      flag.end();
    },
  };
}

/**
 * Re-reads with `read` until `isDone(value)`, the deadline, or abort; between
 * reads it sleeps until a change (or the re-check interval).
 */
export async function readUntil<T>(options: {
  listener: NotificationListener;
  channels: readonly string[];
  key: string;
  read: () => Promise<T>;
  isDone: (value: T) => boolean;
  waitMs: number;
  signal: AbortSignal;
  recheckMs: number;
}): Promise<T> {
  const { listener, read, isDone, signal } = options;
  const deadline = Date.now() + options.waitMs;
  const watch = watchChanges(listener, options.channels, options.key);
  try {
    for (;;) {
      watch.takeChanged();
      let value: T;
      try {
        value = await read();
      } catch (err) {
        // The database went away under a waiting request (a restart, a killed
        // connection): keep waiting for it to come back until the deadline,
        // rather than failing a long-poll that has time left.
        if (!isConnectionError(err) || deadline - Date.now() < 500 || signal.aborted) throw err;
        await watch.wait(500, signal);
        continue;
      }
      const remaining = deadline - Date.now();
      if (isDone(value) || remaining <= 0 || signal.aborted) return value;
      await watch.wait(Math.min(remaining, recheckInterval(listener, options.recheckMs)), signal);
    }
  } finally {
    watch.close();
  }
}
