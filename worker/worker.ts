/**
 * One worker process's parts, wired together: the graphile-worker runner with
 * the `agent` and `webhook` tasks, the heartbeat and dead-worker recovery, the cancel
 * listener, and a graceful stop. `main.ts` and `npm start` call this; tests
 * can start several in one process (nothing here is global).
 */
import { EventEmitter } from 'node:events';
import type { Tracer } from '@opentelemetry/api';
import {
  Logger as GraphileLogger,
  parseCronItems,
  run,
  type Runner,
  type Task,
  type WorkerEvents,
  type WorkerPool,
} from 'graphile-worker';
import type pg from 'pg';
import type { ProviderName } from '../shared/catalog.ts';
import type { Config } from '../shared/config.ts';
import { createDb, createPool } from '../shared/db/database.ts';
import { NotificationListener } from '../shared/db/notification-listener.ts';
import { ensurePartitions, runRetention } from '../shared/db/partitions.ts';
import type { Logger } from '../shared/logger.ts';
import { TaskFailure } from '../shared/tasks/task-error.ts';
import { makeAgentTask } from './agent-task.ts';
import type { ToolRunner } from './agent/run-agent.ts';
import { AttemptWriter } from './attempt-writer.ts';
import { RunningAttempts } from './cancellations.ts';
import { startHeartbeat } from './heartbeat.ts';
import { createProvider } from './providers/create-provider.ts';
import type { Provider } from './providers/provider.ts';
import { runTool, toolDefinition, TOOLS } from './tools/registry.ts';
import type { Resolver } from './webhooks/post-webhook.ts';
import { makeWebhookTask } from './webhooks/webhook-task.ts';
import { createMetricsRegistry, type MetricsRegistry } from '../shared/metrics/metrics-registry.ts';
import { startMetricsServer, type RunningMetricsServer } from './metrics-server.ts';
import { registerWorkerMetrics } from './worker-metrics.ts';
import { workerReadiness, type WorkerState } from './readiness.ts';

export interface WorkerOptions {
  config: Config;
  /** The query pool, shared with graphile-worker; its URL may lead to a transaction-mode pooler. */
  pool: pg.Pool;
  /** The pool's URL (DATABASE_URL): the heartbeat and recovery checks use it too. */
  connectionString: string;
  /**
   * A URL with a session, for LISTEN (AGENTQ_DIRECT_DATABASE_URL); default
   * `connectionString`. When it differs, `connectionString` is taken for a
   * pooler: see "graphile-worker behind a pooler" below.
   */
  directConnectionString?: string;
  logger: Logger;
  /** The tools tasks may call; the registry's by default (tests pass their own). */
  tools?: ToolRunner;
  /** How webhook targets are resolved; the system resolver by default (tests map names). */
  webhookResolver?: Resolver;
  /** Spans of each attempt, model call and tool call; default the global tracer. */
  tracer?: Tracer;
  /**
   * The process's metrics registry, which the worker registers its metrics on.
   * Unset (tests), it makes its own, without the process metrics.
   */
  metrics?: MetricsRegistry;
}

export interface RunningWorker {
  /** The graphile-worker pool id; also this worker's id in agentq.workers. */
  id: string;
  /** Stop fetching, give running tasks the grace period, requeue the rest, deregister. */
  stop(): Promise<void>;
  /** Resolves if the runner stops on its own (a fatal error). */
  done: Promise<void>;
  /** The worker's GET /metrics, when AGENTQ_METRICS_PORT is set. */
  metricsUrl: string | undefined;
}

function makeToolRunner(config: Config): ToolRunner {
  return {
    definitions(names) {
      return names.map((name) => {
        const tool = TOOLS[name as keyof typeof TOOLS];
        if (!tool)
          throw new TaskFailure('invalid_config', `this worker has no tool named "${name}"`);
        return toolDefinition(tool);
      });
    },
    run(name, args, signal) {
      return runTool(name, args, { signal, httpAllowlist: config.httpAllowlist });
    },
  };
}

export async function startWorker(options: WorkerOptions): Promise<RunningWorker> {
  const { config, pool, logger } = options;
  const db = createDb(pool);
  const directUrl = options.directConnectionString ?? options.connectionString;
  const pooled = directUrl !== options.connectionString;
  const listener = new NotificationListener({
    connectionString: directUrl,
    // jobs:insert: graphile-worker's own LISTEN rides on `pool`, deaf behind a pooler.
    channels: pooled ? ['agentq_cancel', 'jobs:insert'] : ['agentq_cancel'],
    logger,
    applicationName: 'agentq-worker-listen',
    pollIntervalMs: config.pollIntervalMs,
  });
  await listener.start();
  const attempts = new RunningAttempts(db, listener);
  let markRegistered = () => {};
  const registered = new Promise<void>((resolve) => (markRegistered = resolve));
  const writer = new AttemptWriter({
    db,
    logger,
    workerId: () => workerId,
    onSignal: (taskId, signal) => attempts.abort(taskId, signal === 'cancel' ? 'cancel' : 'fenced'),
  });

  const metrics = registerWorkerMetrics(
    options.metrics ?? createMetricsRegistry({ processMetrics: false }),
    {
      workerId: () => workerId,
      concurrency: config.workerConcurrency,
      running: () => attempts.size,
    },
  );

  const providers = new Map<ProviderName, Provider>();
  const provider = (name: ProviderName) => {
    let p = providers.get(name);
    if (!p) {
      p = createProvider(name, {
        openaiApiKey: config.openaiApiKey,
        openaiBaseUrl: config.openaiBaseUrl,
        googleApiKey: config.googleApiKey,
        googleBaseUrl: config.googleBaseUrl,
        requestTimeoutMs: config.providerTimeoutMs,
      });
      providers.set(name, p);
    }
    return p;
  };

  // Inserts must never miss a partition: make the next days' now, not only hourly.
  await ensurePartitions(db).catch((err: unknown) =>
    logger.warn({ err }, 'could not make the partitions ahead; the hourly job will retry'),
  );

  let workerId = '';
  let workerPool: WorkerPool | undefined;
  let stopping: Promise<void> | undefined;
  const events: WorkerEvents = new EventEmitter();
  events.on('pool:create', ({ workerPool: created }) => {
    workerPool = created;
    workerId = created.id;
  });
  // graphile-worker behind a pooler. It runs its job queries on `pool` and
  // keeps one client of it for LISTEN "jobs:insert"; it has no option to take
  // that client from elsewhere. Through a transaction-mode pooler (1) its
  // named prepared statements would meet server connections that never saw
  // them (PgBouncer before 1.21 cannot track them), so they are off, and (2)
  // its LISTEN is deaf, so our own session listener hears jobs:insert and
  // nudges it. Its job queries thus stay on the pooler, and the process's
  // only session is our listener. Without any session (polling fallback) it
  // finds new jobs by polling, within AGENTQ_POLL_INTERVAL_MS.
  const behindPooler = pooled || !listener.connected;
  if (pooled) {
    listener.subscribeChannel('jobs:insert', (payload) => {
      const count = Number((parseJson(payload) as { count?: unknown } | undefined)?.count);
      workerPool?.nudge(Number.isInteger(count) && count > 0 ? count : 1);
    });
  }

  // Before the runner, so orchestrators' probes answer (/readyz: not yet) while it starts.
  const state: WorkerState = {
    stopping: false,
    registered: false,
    runnerStopped: false,
    pool: undefined,
  };
  let metricsServer: RunningMetricsServer | undefined;
  if (config.metricsPort !== undefined) {
    metricsServer = await startMetricsServer({
      registry: metrics.base.registry,
      host: config.host,
      port: config.metricsPort,
      tokens: [...config.apiTokens, ...config.apiReadTokens],
      public: config.metricsPublic,
      logger,
      readiness: workerReadiness(state, logger),
    }).catch(async (err: unknown) => {
      await listener.stop();
      throw err;
    });
  }
  const abandon = async (err: unknown): Promise<never> => {
    await metricsServer?.stop();
    throw err;
  };

  const runner: Runner = await run({
    pgPool: pool,
    concurrency: config.workerConcurrency,
    pollInterval: config.pollIntervalMs,
    noPreparedStatements: behindPooler,
    noHandleSignals: true, // main.ts owns signals; see stop()
    // Our one cron item, given here: without parsedCronItems graphile-worker
    // looks for ./crontab and logs its absence.
    parsedCronItems: PARTITION_CRON,
    // We abort running attempts ourselves when the grace period ends; this is
    // only graphile-worker's own backstop, after ours.
    gracefulShutdownAbortTimeout: config.shutdownGraceMs + 5000,
    events,
    preset: {
      worker: {
        // Fetch (and lock) up to `concurrency` jobs in one query instead of
        // one query per job. A locked job whose task is cancelled meanwhile
        // is skipped at claim; on stop graphile-worker hands them back.
        localQueue: { size: config.workerConcurrency },
        // Not completeJobBatchDelay: in 0.17 a batched completion that meets
        // a dropped connection shuts the whole pool down ("queue is in an
        // inconsistent state"), where an unbatched one retries. A task's
        // outcome is already batched with others' in our own writer.
      },
    },
    logger: graphileLogger(logger, () => stopping !== undefined),
    taskList: {
      agent: makeAgentTask({
        db,
        config,
        logger,
        attempts,
        writer,
        registered,
        workerId: () => workerId,
        provider,
        tools: options.tools ?? makeToolRunner(config),
        ...(options.tracer ? { tracer: options.tracer } : {}),
        metrics,
      }),
      [PARTITION_TASK]: partitionTask(pooled ? directUrl : pool, config, logger),
      webhook: makeWebhookTask({
        db,
        config,
        logger,
        resolve: options.webhookResolver,
        deliveries: metrics.base.webhookDeliveries,
      }),
    },
  }).catch(abandon);
  const runnerStopped = () => void (state.runnerStopped = true);
  runner.promise.then(runnerStopped, runnerStopped);
  if (!workerId) throw new Error('graphile-worker did not report its pool id');

  // Recovery checks and the beat hold no session state: they may go through a pooler.
  const heartbeatPool = createPool({
    connectionString: options.connectionString,
    applicationName: 'agentq-worker-heartbeat',
    max: config.recoveryPoolMax,
  });
  const heartbeat = startHeartbeat({
    db: createDb(heartbeatPool),
    connectionString: options.connectionString,
    config,
    logger,
    workerId,
    runningTaskIds: () => attempts.taskIds(),
    metrics,
  });
  await heartbeat.start().catch(abandon);
  markRegistered();
  Object.assign(state, { registered: true, pool: heartbeatPool });
  logger.info(
    {
      workerId,
      concurrency: config.workerConcurrency,
      defaultProvider: config.defaultProvider,
      changes: listener.isPolling ? `polling every ${config.pollIntervalMs} ms` : 'LISTEN',
      preparedStatements: !behindPooler,
    },
    'worker started',
  );

  return {
    id: workerId,
    done: runner.promise.then(() => undefined),
    metricsUrl: metricsServer?.url,
    stop() {
      state.stopping = true;
      stopping ??= (async () => {
        logger.info({ running: attempts.size, graceMs: config.shutdownGraceMs }, 'worker stopping');
        const grace = setTimeout(() => {
          if (attempts.size > 0)
            logger.warn({ running: attempts.size }, 'grace period over: requeueing running tasks');
          attempts.abortAll('shutdown');
        }, config.shutdownGraceMs);
        try {
          // Stops fetching and waits for running jobs. Bounded: graphile-worker
          // 0.17's stop can hang after its local queue fails to release (seen
          // under chaos: "Cannot background something when the queue is
          // already released"). Our own attempts are aborted and requeued at
          // the grace period whatever it does, and jobs it still holds locked
          // are unlocked by the peers' recovery once this worker is gone.
          const bound = config.shutdownGraceMs + 10_000;
          let timer: NodeJS.Timeout | undefined;
          const hung = new Promise<'hung'>((resolve) => {
            timer = setTimeout(() => resolve('hung'), bound);
          });
          const how = await Promise.race([runner.stop().then(() => 'stopped' as const), hung]);
          clearTimeout(timer);
          if (how === 'hung')
            logger.error(
              { waitedMs: bound },
              'graphile-worker did not stop in time; stopping without it (peers unlock its jobs)',
            );
        } finally {
          clearTimeout(grace);
          await heartbeat.stop();
          await heartbeatPool.end();
          await listener.stop();
          await metricsServer?.stop();
        }
        logger.info('worker stopped');
      })();
      return stopping;
    },
  };
}

/** The graphile-worker task that makes partitions ahead and applies retention. */
export const PARTITION_TASK = 'agentq_partitions';

// Hourly, at a minute nothing else favours; graphile-worker runs each
// scheduled time once however many workers are up. No backfill: a missed
// hour is made up by the next. The job key keeps at most one job: a run that
// failed (one attempt) is replaced by the next hour's, not piled up.
const PARTITION_CRON = parseCronItems([
  {
    task: PARTITION_TASK,
    match: '17 * * * *',
    identifier: PARTITION_TASK,
    options: { backfillPeriod: 0, maxAttempts: 1, priority: -50, jobKey: PARTITION_TASK },
  },
]);

/**
 * The partition job. Retention holds session state (lock_timeout, an advisory
 * lock), so behind a pooler it runs on a one-connection pool of the direct URL,
 * opened for the run and closed after it.
 */
function partitionTask(source: pg.Pool | string, config: Config, logger: Logger): Task {
  return async () => {
    const pool =
      typeof source === 'string'
        ? createPool({ connectionString: source, applicationName: 'agentq-retention', max: 1 })
        : source;
    try {
      await runRetention({ pool, retentionDays: config.retentionDays, logger });
    } finally {
      if (pool !== source) await pool.end();
    }
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** graphile-worker's log lines, through our logger (its debug chatter at debug). */
function graphileLogger(logger: Logger, stopping: () => boolean): GraphileLogger {
  return new GraphileLogger((scope) => (level, message, meta) => {
    const ours = ourLevel(level, message, stopping());
    // Checked first: the fields (a whole job row) are not even built for a dropped line.
    if (!logger.isLevelEnabled(ours)) return;
    logger[ours]({ scope: scope.label, ...(meta ?? {}) }, message);
  });
}

// One line per finished job, carrying the whole job row: our own "attempt
// finished" line says it already.
const PER_JOB_LINE = /^Completed task \d+ /;

function ourLevel(level: string, message: string, stopping: boolean) {
  // Once stopping, complaints about closing connections are expected (on
  // Ctrl-C the terminal signals an embedded Postgres too): not errors.
  if (level === 'error') return stopping ? 'warn' : 'error';
  if (level === 'warning') return 'warn';
  if (level === 'info' && !PER_JOB_LINE.test(message)) return 'info';
  return 'debug';
}
