/**
 * The worker's heartbeat: every `heartbeatMs` it records that it is alive, and
 * (on a loop of its own, same period) recovers the tasks of any worker silent
 * longer than `workerDeadAfterMs` and any of its own tasks it lost track of.
 *
 * Nothing may delay the beat: it runs on its own small pool (task work cannot
 * take its connections), on a fixed-rate timer that waits for neither the
 * recovery statements nor the previous beat's spacing, and it is one round
 * trip. A worker whose event loop is busy with CPU-bound tool work in short
 * slices still gets its timer and its one query through between slices, so it
 * beats within a slice or two of the period and is never presumed dead; a
 * worker stuck in one long synchronous stretch does go silent, and its tasks
 * (fenced against its late writes) are recovered elsewhere. A failed tick
 * (database blip) is logged and retried on the next one.
 */
import os from 'node:os';
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

export function startHeartbeat(options: {
  /** A Kysely over the heartbeat's own small pool: task work must never starve it. */
  db: Db;
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
  const timers = new Set<NodeJS.Timeout>();
  const inFlight = new Set<Promise<void>>();

  const beat = async () => {
    try {
      await workerHeartbeat(db, info);
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'heartbeat failed; retrying on the next beat');
    }
  };
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
      every(config.heartbeatMs, beat);
      every(config.heartbeatMs, recover);
    },
    async stop() {
      stopped = true;
      for (const timer of timers) clearTimeout(timer);
      await Promise.all(inFlight);
      await workerRemove(db, workerId).catch(() => {});
    },
  };
}
