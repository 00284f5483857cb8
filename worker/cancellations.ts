/**
 * One AbortController per running attempt, keyed by task id, and the wiring
 * that fires it: NOTIFY agentq_cancel for a task this worker runs, or, after
 * the listener reconnects (notifications may have been lost), a re-read of
 * which of our tasks have cancel_requested_at set.
 */
import type { Db } from '../shared/db/database.ts';
import type { NotificationListener } from '../shared/db/notification-listener.ts';
import { RunAbort, type AbortKind } from './agent/run-abort.ts';

export class RunningAttempts {
  private readonly byTask = new Map<
    string,
    { controller: AbortController; unsubscribe: () => void }
  >();

  constructor(
    private readonly db: Db,
    private readonly listener: NotificationListener,
  ) {
    listener.onReconnect(() => void this.recheckCancellations());
  }

  get size(): number {
    return this.byTask.size;
  }

  taskIds(): string[] {
    return [...this.byTask.keys()];
  }

  /** Registers an attempt; its signal fires on cancel, shutdown, timeout or fencing. */
  start(taskId: string): AbortController {
    const controller = new AbortController();
    const unsubscribe = this.listener.subscribe('agentq_cancel', taskId, () =>
      this.abort(taskId, 'cancel'),
    );
    this.byTask.set(taskId, { controller, unsubscribe });
    return controller;
  }

  /**
   * Notes a cancel requested for `taskId` before its attempt is registered:
   * between the claim's commit and start(), a NOTIFY would find no subscriber
   * and be lost, and a task waiting on a slow model would not hear of it.
   */
  watchCancel(taskId: string): { requested: () => boolean; stop: () => void } {
    let requested = false;
    const stop = this.listener.subscribe('agentq_cancel', taskId, () => {
      requested = true;
    });
    return { requested: () => requested, stop };
  }

  finish(taskId: string): void {
    const entry = this.byTask.get(taskId);
    entry?.unsubscribe();
    this.byTask.delete(taskId);
  }

  abort(taskId: string, kind: AbortKind): void {
    const entry = this.byTask.get(taskId);
    if (entry && !entry.controller.signal.aborted) entry.controller.abort(new RunAbort(kind));
  }

  abortAll(kind: AbortKind): void {
    for (const taskId of this.byTask.keys()) this.abort(taskId, kind);
  }

  private async recheckCancellations(): Promise<void> {
    const ids = [...this.byTask.keys()];
    if (ids.length === 0) return;
    const rows = await this.db
      .selectFrom('agentq.tasks')
      .select('id')
      .where('id', 'in', ids)
      .where('cancel_requested_at', 'is not', null)
      .execute()
      .catch(() => []);
    for (const row of rows) this.abort(row.id, 'cancel');
  }
}
