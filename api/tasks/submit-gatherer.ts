/**
 * Single submits that arrive together go to the database together. While one
 * submit statement is in flight, the next requests queue; when it returns,
 * they all go in ONE statement (taskInsertManyWithJobs: one add_jobs call,
 * one commit, one NOTIFY per channel). An idle API sends a request's submit
 * at once, so a lone client waits for nothing; under load the groups grow by
 * themselves, the way a group commit does. Each request still gets its own
 * answer: created, replayed or conflict, exactly as if it had gone alone.
 */
import { isConnectionError } from '../../shared/db/connection-errors.ts';
import type { Db } from '../../shared/db/database.ts';
import {
  taskInsertManyWithJobs,
  type NewTask,
  type SubmitOutcome,
} from '../../shared/tasks/task-queries.ts';

interface Waiting {
  task: NewTask;
  resolve: (outcome: SubmitOutcome) => void;
  reject: (err: unknown) => void;
}

export class SubmitGatherer {
  private queue: Waiting[] = [];
  private running = false;

  constructor(
    private readonly db: Db,
    /** Most submits in one statement. */
    private readonly maxGroup = 200,
  ) {}

  submit(task: NewTask): Promise<SubmitOutcome> {
    return new Promise((resolve, reject) => {
      this.queue.push({ task, resolve, reject });
      if (!this.running) {
        this.running = true;
        // setImmediate: requests parsed in the same turn join the first group.
        setImmediate(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const group = this.queue.splice(0, this.maxGroup);
      await this.send(group);
    }
    this.running = false;
  }

  /** Sends one group; a conflicting or failing member never fails the others. */
  private async send(group: Waiting[]): Promise<void> {
    let members = group;
    while (members.length > 0) {
      let result;
      try {
        result = await taskInsertManyWithJobs(
          this.db,
          members.map((m) => m.task),
        );
      } catch (err) {
        if (members.length === 1 || isConnectionError(err)) {
          for (const m of members) m.reject(err);
        } else {
          // A statement error: find whose, by sending each on its own.
          for (const m of members) await this.send([m]);
        }
        return;
      }
      if (result.kind === 'submitted') {
        for (const [i, m] of members.entries()) m.resolve(result.outcomes[i]!);
        return;
      }
      // All or nothing refused the group over one member: answer that member
      // (a stored task holds its key with another body), or, when the key's
      // holder is an earlier member of this group, send it again after the
      // others, when that holder is stored and it gets its 409 from the row.
      const culprit = members[result.index]!;
      members = members.filter((_, i) => i !== result.index);
      if (result.task) culprit.resolve({ kind: 'conflict', task: result.task });
      else this.queue.unshift(culprit);
    }
  }
}
