/**
 * The worker's heartbeat loop: every `heartbeatMs` it records that it is
 * alive and recovers the tasks of any worker that has been silent longer than
 * `workerDeadAfterMs`, and any of its own tasks it lost track of. It runs on
 * its own small pool so a busy worker cannot starve its own heartbeat (and be
 * presumed dead). A failed tick (database blip) is logged and retried on the
 * next one.
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

export const AGENTQ_VERSION = '0.1.0';

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
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<void> = Promise.resolve();

  const tick = async () => {
    try {
      await workerHeartbeat(db, info);
      const recovered = await workerRecoverDead(db, config.workerDeadAfterMs, workerId);
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
      if (orphans.length > 0) {
        logger.warn(
          { tasks: orphans.map((t) => `${t.id}:${t.status}`) },
          'handed back tasks this worker lost track of',
        );
      }
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'heartbeat failed; retrying on the next tick');
    }
  };
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      current = tick().finally(schedule);
    }, config.heartbeatMs);
  };

  return {
    /** The first beat, awaited, so the worker is registered before it takes jobs. */
    async start() {
      await withDbRetry(() => workerHeartbeat(db, info));
      current = tick();
      await current;
      schedule();
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await current;
      await workerRemove(db, workerId).catch(() => {});
    },
  };
}
