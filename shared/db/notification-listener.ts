/**
 * One LISTEN connection per process, shared by every waiter (long-polls, event
 * streams, the worker's cancel watch) instead of a connection per request.
 *
 * Notifications carry ids only; subscribers re-read committed rows. One
 * notification may name several ids, comma-separated (a statement that wrote
 * many rows sends one; migrations/0005), and each named id reaches its own
 * subscribers. An empty payload means "re-read everything": it reaches the
 * subscribers of the key '' (EVERY_KEY), which waiters that re-read add. When the
 * connection drops (pg_terminate_backend, a restart) it reconnects with
 * backoff, and `onReconnect` subscribers are told, because notifications sent
 * while it was down are lost: they must re-read whatever they wait on.
 *
 * LISTEN needs a session: through a transaction-mode pooler (PgBouncer,
 * Supabase's or Neon's pooled port) the LISTEN succeeds but no notification
 * ever arrives, silently. So each connection proves itself before it counts:
 * a NOTIFY sent from a second, short-lived connection must come back on this
 * one within PROBE_TIMEOUT_MS. When no session can be had (the direct URL is
 * unreachable, or it leads to a pooler), the listener falls back to polling:
 * it says so once, in one log line, and then every `pollIntervalMs` tells its
 * `onReconnect` subscribers to re-read, so waits, streams and the worker's
 * cancel watch see a change at most that late. It keeps trying to connect
 * (backoff up to MAX_SESSION_RETRY_MS) and stops polling once it does.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { maskUrlPassword } from '../banner.ts';
import type { Logger } from '../logger.ts';

type Handler = (payload: string) => void;

/** The key an empty payload ("something changed, re-read") is delivered to. */
export const EVERY_KEY = '';

/** The channel of the session probe (nothing else uses it). */
const PROBE_CHANNEL = 'agentq_probe';
/** How long a probe NOTIFY may take to come back before the connection is judged sessionless. */
const PROBE_TIMEOUT_MS = 3000;
/** Longest wait between tries for a session while polling instead. */
const MAX_SESSION_RETRY_MS = 60_000;

export interface NotificationListenerOptions {
  /** A URL that gives a session (AGENTQ_DIRECT_DATABASE_URL): LISTEN needs one. */
  connectionString: string;
  channels: readonly string[];
  logger: Logger;
  applicationName: string;
  /**
   * While no session can be had, `onReconnect` subscribers are told to re-read
   * this often (AGENTQ_POLL_INTERVAL_MS). Unset: they are told only on reconnect.
   */
  pollIntervalMs?: number;
}

/** The connection answers, but notifications do not come back on it (a pooler). */
export class NoSessionError extends Error {
  override name = 'NoSessionError';
}

export class NotificationListener {
  private client: pg.Client | undefined;
  private readonly byPayload = new Map<string, Map<string, Set<Handler>>>();
  private readonly reconnectHandlers = new Set<() => void>();
  private readonly everyPayload = new Map<string, Set<Handler>>();
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  /** Set while polling stands in for LISTEN (logged once on entry). */
  private polling = false;
  private readonly channelHandlers = new Map<string, Set<Handler>>();
  private neverConnected = true;

  constructor(private readonly options: NotificationListenerOptions) {}

  get connected(): boolean {
    return this.client !== undefined;
  }

  /** Whether changes are found by polling because no session connection could be made. */
  get isPolling(): boolean {
    return this.polling;
  }

  /**
   * Connects once; later drops reconnect on their own. Never throws: without
   * a session it falls back to polling (see the module comment).
   */
  async start(): Promise<void> {
    try {
      await this.connect();
    } catch (err) {
      this.startPolling(err as Error);
    }
  }

  /** Calls `fn` for each notification on `channel` whose payload is `payload`. */
  subscribe(channel: string, payload: string, fn: Handler): () => void {
    let perChannel = this.byPayload.get(channel);
    if (!perChannel) this.byPayload.set(channel, (perChannel = new Map()));
    let set = perChannel.get(payload);
    if (!set) perChannel.set(payload, (set = new Set()));
    set.add(fn);
    return () => {
      set.delete(fn);
      if (set.size === 0) perChannel.delete(payload);
    };
  }

  /**
   * Calls `fn` for each id of every notification on `channel` (each id of a
   * comma-separated payload, or '' for an empty one): a feed of all changes.
   */
  subscribeEvery(channel: string, fn: Handler): () => void {
    let set = this.everyPayload.get(channel);
    if (!set) this.everyPayload.set(channel, (set = new Set()));
    set.add(fn);
    return () => set.delete(fn);
  }

  /** Calls `fn` with every notification's payload on `channel`, whatever it is. */
  subscribeChannel(channel: string, fn: Handler): () => void {
    let set = this.channelHandlers.get(channel);
    if (!set) this.channelHandlers.set(channel, (set = new Set()));
    set.add(fn);
    return () => set.delete(fn);
  }

  /**
   * Called after the connection comes back, and on each poll while polling:
   * notifications may have been missed.
   */
  onReconnect(fn: () => void): () => void {
    this.reconnectHandlers.add(fn);
    return () => this.reconnectHandlers.delete(fn);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.pollTimer);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => {});
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.options.connectionString,
      application_name: this.options.applicationName,
      keepAlive: true,
    });
    client.on('notification', (msg) => this.dispatch(msg.channel, msg.payload ?? ''));
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client, new Error('connection ended')));
    try {
      await client.connect();
      for (const channel of [...this.options.channels, PROBE_CHANNEL]) {
        await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
      }
      await this.probe(client);
    } catch (err) {
      client.removeAllListeners('end');
      await client.end().catch(() => {});
      throw err;
    }
    if (this.stopped) {
      await client.end().catch(() => {});
      return;
    }
    const wasReconnect = this.failures > 0 || this.polling;
    this.client = client;
    this.failures = 0;
    this.neverConnected = false;
    if (this.polling) {
      this.polling = false;
      clearInterval(this.pollTimer);
      this.options.logger.info(
        { url: maskUrlPassword(this.options.connectionString) },
        'notification listener connected: LISTEN replaces polling',
      );
    } else if (wasReconnect) {
      this.options.logger.info('notification listener reconnected');
    }
    if (wasReconnect) for (const fn of this.reconnectHandlers) fn();
  }

  /**
   * Proves `client` is a session: a NOTIFY from another connection to the same
   * URL must reach it. Through a transaction-mode pooler it reaches whichever
   * client holds the server connection at the time, never this idle one. (A
   * NOTIFY from `client` itself would prove nothing: the pooler may run it on
   * the very server connection that ran the LISTEN.)
   */
  private async probe(client: pg.Client): Promise<void> {
    const token = randomUUID();
    let timer: NodeJS.Timeout | undefined;
    const arrived = new Promise<void>((resolve, reject) => {
      const onNotification = (msg: pg.Notification) => {
        if (msg.channel !== PROBE_CHANNEL || msg.payload !== token) return;
        client.removeListener('notification', onNotification);
        clearTimeout(timer);
        resolve();
      };
      client.on('notification', onNotification);
      timer = setTimeout(() => {
        client.removeListener('notification', onNotification);
        reject(
          new NoSessionError(
            'LISTEN gets no notifications on this URL (a transaction-mode pooler?)',
          ),
        );
      }, PROBE_TIMEOUT_MS);
    });
    arrived.catch(() => {}); // awaited below; never unhandled if the NOTIFY fails first
    const sender = new pg.Client({
      connectionString: this.options.connectionString,
      application_name: `${this.options.applicationName}-probe`,
    });
    sender.on('error', () => {});
    try {
      await sender.connect();
      await sender.query('SELECT pg_notify($1, $2)', [PROBE_CHANNEL, token]);
    } catch (err) {
      clearTimeout(timer);
      throw err;
    } finally {
      await sender.end().catch(() => {});
    }
    await arrived;
  }

  /**
   * No session: poll instead, say so once, and keep trying for a session.
   * `outage`: a working connection was lost and would not come back soon (a
   * restart), rather than none ever made (an unreachable URL, or a pooler).
   */
  private startPolling(err: Error, outage = false): void {
    if (this.stopped) return;
    if (!this.polling) {
      this.polling = true;
      const everyMs = this.options.pollIntervalMs;
      const instead =
        everyMs === undefined
          ? 'changes are seen only on re-reads until it reconnects'
          : `polling every ${everyMs} ms instead (changes are seen up to that late)`;
      const fields = {
        url: maskUrlPassword(this.options.connectionString),
        err: err.message,
        pollIntervalMs: everyMs,
      };
      if (outage) {
        this.options.logger.warn(fields, `notification listener still down: ${instead}`);
      } else if (err instanceof NoSessionError) {
        this.options.logger.error(
          fields,
          `no session connection for LISTEN (${err.message}): ${instead}; ` +
            'set AGENTQ_DIRECT_DATABASE_URL to a URL that bypasses the pooler',
        );
      } else {
        this.options.logger.error(
          fields,
          `no session connection for LISTEN (cannot connect: ${err.message}): ${instead}`,
        );
      }
      if (everyMs !== undefined) {
        this.pollTimer = setInterval(() => {
          for (const fn of this.reconnectHandlers) fn();
        }, everyMs);
        this.pollTimer.unref();
      }
    }
    this.scheduleReconnect();
  }

  private lost(client: pg.Client, err: Error): void {
    if (this.client !== client) return; // an old client, already replaced
    this.client = undefined;
    client.removeAllListeners('notification');
    client.end().catch(() => {});
    if (this.stopped) return;
    this.options.logger.warn({ err: err.message }, 'notification listener lost its connection');
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    this.failures += 1;
    const cap = this.polling ? MAX_SESSION_RETRY_MS : 2000;
    const delay = Math.min(100 * 2 ** (this.failures - 1), cap);
    this.retryTimer = setTimeout(() => {
      this.connect().catch((err: Error) => {
        if (this.stopped) return;
        // A short outage retries quietly and fast; a long one, or a URL that
        // gives no session, turns to polling (logged once) and retries slowly.
        if (this.polling || err instanceof NoSessionError || this.failures >= 5) {
          this.options.logger.debug(
            { err: err.message },
            'notification listener: still no session',
          );
          this.startPolling(err, !(err instanceof NoSessionError) && !this.neverConnected);
        } else {
          this.options.logger.warn({ err: err.message }, 'notification listener reconnect failed');
          this.scheduleReconnect();
        }
      });
    }, delay);
  }

  private dispatch(channel: string, payload: string): void {
    const whole = this.channelHandlers.get(channel);
    if (whole) for (const fn of [...whole]) fn(payload);
    const perChannel = this.byPayload.get(channel);
    const every = this.everyPayload.get(channel);
    if (!perChannel && !every?.size) return;
    const keys = payload.includes(',') ? new Set(payload.split(',')) : [payload];
    for (const key of keys) {
      const handlers = perChannel?.get(key);
      if (handlers) for (const fn of [...handlers]) fn(key);
      if (every) for (const fn of [...every]) fn(key);
    }
  }
}
