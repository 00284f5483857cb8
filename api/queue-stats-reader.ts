/**
 * GET /v1/stats and every change stream read `agentq.queue_stats`, which
 * counts the whole table. One read serves every caller asking at about the
 * same moment: a caller says since when the stats must be fresh (the time it
 * heard of a change), and joins any read started at or after that time, so
 * a burst seen by 200 open streams costs one read, never a stale answer.
 */
import type { Db } from '../shared/db/database.ts';
import { queueStatsRead, type QueueStatsRow } from '../shared/tasks/queue-stats-queries.ts';

export function queueStatsJson(row: QueueStatsRow) {
  return {
    counts: {
      queued: row.queued,
      running: row.running,
      completed: row.completed,
      failed: row.failed,
      cancelled: row.cancelled,
    },
    queued_due: row.queued_due,
    oldest_queued_age_s: row.oldest_queued_age_s,
    workers: row.workers,
  };
}
export type QueueStatsJson = ReturnType<typeof queueStatsJson>;

export class QueueStatsReader {
  private latest: { startedAt: number; promise: Promise<QueueStatsJson> } | undefined;

  constructor(private readonly db: Db) {}

  /** Stats read no earlier than `since` (epoch ms; default now: a fresh read). */
  read(since = Date.now()): Promise<QueueStatsJson> {
    if (this.latest && this.latest.startedAt >= since) return this.latest.promise;
    const startedAt = Date.now();
    const promise = queueStatsRead(this.db).then(queueStatsJson);
    const entry = { startedAt, promise };
    this.latest = entry;
    // A failed read is not shared with later callers.
    promise.catch(() => {
      if (this.latest === entry) this.latest = undefined;
    });
    return promise;
  }
}
