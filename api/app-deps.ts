/** What the API's routes are built from; `main.ts` (or a test) makes these and passes them in. */
import type { Tracer } from '@opentelemetry/api';
import type pg from 'pg';
import type { Config } from '../shared/config.ts';
import type { Db } from '../shared/db/database.ts';
import type { NotificationListener } from '../shared/db/notification-listener.ts';
import type { Logger } from '../shared/logger.ts';
import type { MetricsRegistry } from '../shared/metrics/metrics-registry.ts';

export interface AppDeps {
  db: Db;
  /**
   * Where GET /v1/tasks (the list only) reads, e.g. a replica; default `db`.
   * Status reads, waits, events and streams always use `db` (the primary):
   * a replica's lag would answer an older status.
   */
  readDb?: Db;
  pool: pg.Pool;
  config: Config;
  logger: Logger;
  /** LISTENs on agentq_task and agentq_event. */
  listener: NotificationListener;
  /** Fires when the server shuts down: long-polls answer at once and streams end. */
  shutdownSignal: AbortSignal;
  /**
   * How often a waiting long-poll or idle stream re-reads the database without
   * a notification while LISTEN is healthy. Default 60 s; tests inject it.
   */
  recheckMs?: number;
  /**
   * The port the server listens on, once known: an open API (no tokens)
   * accepts only this port in Host and Origin. Unset (in-process tests), any port.
   */
  listenPort?: () => number | undefined;
  /** Request spans come from here; default the global tracer (a no-op unless tracing was started). */
  tracer?: Tracer;
  /**
   * The process's metrics registry, which the app registers its metrics on
   * (once per registry). Unset (tests), the app makes its own, without the
   * process metrics.
   */
  metrics?: MetricsRegistry;
  /** How long one read of the queue gauges serves /metrics scrapes. Default 1 s; tests inject it. */
  metricsCacheMs?: number;
}
