/**
 * The worker's heartbeat: every `heartbeatMs` it records that it is alive, and
 * (on a loop of its own, same period) recovers the tasks of any worker silent
 * longer than `workerDeadAfterMs` and any of its own tasks it lost track of.
 *
 * Nothing may delay the beat, so it runs in a thread of its own
 * (heartbeat-thread.mjs) with its own connection: however busy the tasks keep
 * this thread's event loop, the beat goes out on time. The main thread posts
 * the beat thread a tick every period; a main thread silent for
 * MAIN_THREAD_SILENCE_MS (stuck, not busy) loses its beat, and its tasks
 * (fenced against its late writes) are recovered elsewhere. The recovery
 * checks stay here, on their own small pool; a failed one (database blip) is
 * logged and retried on the next.
 */
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { withDbRetry } from './with-db-retry.ts';
import type { Config } from '../shared/config.ts';
import type { Db } from '../shared/db/database.ts';
import type { Logger } from '../shared/logger.ts';
import {
  workerHeartbeat,
  workerRecoverDead,
  workerRecoverOrphans,
  workerRemove,
} from '../shared/workers/worker-queries.ts';
import type { WorkerMetrics } from './worker-metrics.ts';

export const AGENTQ_VERSION = '0.1.0';

/** A recovered task ends cancelled (a cancel was requested) or failed with worker_lost. */
const lostCode = (status: string) => (status === 'cancelled' ? 'cancelled' : 'worker_lost');

// A claimed task is registered as running within milliseconds; 5 s is ample.
const ORPHAN_MIN_AGE_MS = 5000;

// How long the main thread may run no timer before the beat thread stops
// vouching for it. Busy tools yield in milliseconds or seconds; a minute of
// silence is a wedged process, whose tasks are better run elsewhere.
const MAIN_THREAD_SILENCE_MS = 60_000;

export function startHeartbeat(options: {
  /** A Kysely over the heartbeat's own small pool: task work must never starve it. */
  db: Db;
  /** For the beat thread's own connection. */
  connectionString: string;
  config: Config;
  logger: Logger;
  workerId: string;
  /** Tasks this process is running right now. */
  runningTaskIds: () => string[];
  /** Counts the recoveries that end a task (failed worker_lost, cancelled). */
  metrics?: WorkerMetrics;
}) {
  const { db, config, logger, workerId } = options;
  const info = {
    id: workerId,
    hostname: os.hostname(),
    pid: process.pid,
    version: AGENTQ_VERSION,
    concurrency: config.workerConcurrency,
  };
  let stopped = false;
  let thread: Worker | undefined;
  let ticker: NodeJS.Timeout | undefined;
  const timers = new Set<NodeJS.Timeout>();
  const inFlight = new Set<Promise<void>>();

  const recover = async () => {
    try {
      const recovered = await workerRecoverDead(db, config.workerDeadAfterMs, workerId);
      for (const t of recovered.tasks) options.metrics?.statusWritten(t.status, lostCode(t.status));
      if (recovered.deadWorkers.length > 0 || recovered.tasks.length > 0) {
        logger.warn(
          {
            deadWorkers: recovered.deadWorkers,
            tasks: recovered.tasks.map((t) => `${t.id}:${t.status}`),
          },
          'recovered the tasks of workers that stopped answering',
        );
      }
      const orphans = await workerRecoverOrphans(
        db,
        workerId,
        options.runningTaskIds(),
        ORPHAN_MIN_AGE_MS,
      );
      for (const t of orphans) options.metrics?.statusWritten(t.status, lostCode(t.status));
      if (orphans.length > 0) {
        logger.warn(
          { tasks: orphans.map((t) => `${t.id}:${t.status}`) },
          'handed back tasks this worker lost track of',
        );
      }
    } catch (err) {
      logger.warn(
        { err: (err as Error).message },
        'recovery check failed; retrying on the next one',
      );
    }
  };
  /** Runs `fn` every `periodMs` from the start of the previous run (fixed rate, never overlapping). */
  const every = (periodMs: number, fn: () => Promise<void>) => {
    const loop = (startedAt: number) => {
      if (stopped) return;
      const timer = setTimeout(
        () => {
          timers.delete(timer);
          if (stopped) return;
          const started = Date.now();
          const run = fn().finally(() => {
            inFlight.delete(run);
            loop(started);
          });
          inFlight.add(run);
        },
        Math.max(0, startedAt + periodMs - Date.now()),
      );
      timers.add(timer);
    };
    loop(Date.now());
  };

  return {
    /** The first beat, awaited, so the worker is registered before it takes jobs. */
    async start() {
      await withDbRetry(() => workerHeartbeat(db, info));
      await recover();
      thread = new Worker(new URL('./heartbeat-thread.mjs', import.meta.url), {
        workerData: {
          connectionString: options.connectionString,
          worker: info,
          periodMs: config.heartbeatMs,
          maxSilenceMs: MAIN_THREAD_SILENCE_MS,
        },
      });
      thread.on('message', (m: { type: string; message?: string; silentMs?: number }) => {
        if (m.type === 'beat-failed')
          logger.warn({ err: m.message }, 'heartbeat failed; retrying on the next beat');
        else if (m.type === 'main-thread-silent')
          logger.error({ silentMs: m.silentMs }, 'main thread stuck: no longer beating');
      });
      thread.on('error', (err) => logger.error({ err }, 'heartbeat thread failed'));
      const tick = setInterval(() => thread?.postMessage('tick'), config.heartbeatMs);
      ticker = tick;
      every(config.heartbeatMs, recover);
    },
    async stop() {
      stopped = true;
      for (const timer of timers) clearTimeout(timer);
      clearInterval(ticker);
      if (thread) {
        const exited = new Promise((resolve) => thread!.once('exit', resolve));
        thread.postMessage('stop');
        // The thread ends once its connection closes; never wait on it forever.
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000).unref())]);
        await thread.terminate().catch(() => {});
      }
      await Promise.all(inFlight);
      await workerRemove(db, workerId).catch(() => {});
    },
  };
}
