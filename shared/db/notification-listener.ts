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
 */
import pg from 'pg';
import type { Logger } from '../logger.ts';

type Handler = (payload: string) => void;

/** The key an empty payload ("something changed, re-read") is delivered to. */
export const EVERY_KEY = '';

export interface NotificationListenerOptions {
  connectionString: string;
  channels: readonly string[];
  logger: Logger;
  applicationName: string;
}

export class NotificationListener {
  private client: pg.Client | undefined;
  private readonly byPayload = new Map<string, Map<string, Set<Handler>>>();
  private readonly reconnectHandlers = new Set<() => void>();
  private readonly everyPayload = new Map<string, Set<Handler>>();
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private failures = 0;

  constructor(private readonly options: NotificationListenerOptions) {}

  get connected(): boolean {
    return this.client !== undefined;
  }

  /** Connects once; later drops reconnect on their own. */
  async start(): Promise<void> {
    await this.connect();
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

  /** Called after the connection comes back: notifications may have been missed. */
  onReconnect(fn: () => void): () => void {
    this.reconnectHandlers.add(fn);
    return () => this.reconnectHandlers.delete(fn);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
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
    await client.connect();
    for (const channel of this.options.channels) {
      await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
    }
    if (this.stopped) {
      await client.end().catch(() => {});
      return;
    }
    const wasReconnect = this.failures > 0;
    this.client = client;
    this.failures = 0;
    if (wasReconnect) {
      this.options.logger.info('notification listener reconnected');
      for (const fn of this.reconnectHandlers) fn();
    }
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
    const delay = Math.min(100 * 2 ** (this.failures - 1), 2000);
    this.retryTimer = setTimeout(() => {
      this.connect().catch((err: Error) => {
        this.options.logger.warn({ err: err.message }, 'notification listener reconnect failed');
        if (!this.stopped) this.scheduleReconnect();
      });
    }, delay);
  }

  private dispatch(channel: string, payload: string): void {
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
