// Every statement a worker makes is fenced on the claim it holds, and a stale
// claim's write is refused: the claim, the takeover (and its `recovered`
// event), the event append, the finish, the requeue and the recoveries. Also:
// a cancel requested meanwhile wins over a retry and over a lost worker.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';
import { newTask } from '../helpers/fixtures.ts';
import {
  appendAttemptEvent,
  attemptOf,
  taskClaim,
  taskFinish,
  taskRequeue,
  taskTakeover,
  type Attempt,
} from '../../shared/tasks/attempt-queries.ts';
import {
  taskFindById,
  taskInsertWithJob,
  taskRequestCancel,
  type NewTask,
  type TaskRow,
} from '../../shared/tasks/task-queries.ts';
import { workerRecoverDead, workerRecoverOrphans } from '../../shared/workers/worker-queries.ts';
import type { TaskError } from '../../shared/tasks/task-error.ts';

let tdb: TestDatabase;
beforeAll(async () => {
  tdb = await createTestDatabase();
});
afterAll(async () => {
  await tdb?.drop();
});

const usage = { input_tokens: 1, output_tokens: 1, llm_calls: 1, tool_calls: 0 };
const unavailable: TaskError = {
  code: 'provider_unavailable',
  message: 'provider answered 503',
  retryable: true,
};
// Recovery tests use an hour as the silence threshold, so only the workers a
// test marks as silent for two hours count as dead (no other test's rows).
const HOUR = 3_600_000;

async function submit(overrides: Partial<NewTask> = {}) {
  return (await taskInsertWithJob(tdb.db, newTask(overrides)))!;
}

async function read(id: string): Promise<TaskRow> {
  return (await taskFindById(tdb.db, id))!;
}

/** Claims the task's current job as `workerId`; returns the row and its attempt. */
async function claim(id: string, workerId = 'pool-a') {
  const row = await read(id);
  const claimed = await taskClaim(tdb.db, { taskId: id, jobId: row.job_id!, workerId });
  expect(claimed?.status).toBe('running');
  return { row: claimed!, attempt: attemptOf(claimed!) };
}

async function events(id: string) {
  const { rows } = await sql<{ seq: number; type: string; data: Record<string, unknown> }>`
    SELECT seq, type, data FROM agentq.task_events WHERE task_id = ${id} ORDER BY seq`.execute(
    tdb.db,
  );
  return rows;
}

/** Every write a stale attempt can try; each must be refused and leave the row as it was. */
async function expectAllRefused(stale: Attempt) {
  const before = await read(stale.taskId);
  expect(
    await appendAttemptEvent(tdb.db, stale, { type: 'message', data: { text: 'late' } }, usage),
  ).toBeUndefined();
  expect(
    await taskFinish(tdb.db, stale, { status: 'completed', result: { answer: 'late' } }, usage),
  ).toBeUndefined();
  expect(
    await taskFinish(
      tdb.db,
      stale,
      { status: 'cancelled', error: { code: 'cancelled', message: 'x', retryable: false } },
      usage,
    ),
  ).toBeUndefined();
  expect(
    await taskRequeue(tdb.db, stale, {
      error: unavailable,
      runAt: new Date(),
      usage,
      event: 'retry',
      data: {},
      refundAttempt: true,
    }),
  ).toBeUndefined();
  expect(await read(stale.taskId)).toEqual(before);
}

async function markWorkerSilent(id: string) {
  await sql`
    INSERT INTO agentq.workers (id, hostname, pid, version, concurrency, last_seen_at)
    VALUES (${id}, 'test', 1, 'test', 1, now() - interval '2 hours')`.execute(tdb.db);
}

describe('taskClaim', () => {
  it('claims only a queued task through its own job, and counts the claim', async () => {
    const task = await submit();
    expect(task.claim).toBe(0);
    const stale = await taskClaim(tdb.db, {
      taskId: task.id,
      jobId: task.job_id! + 1_000_000,
      workerId: 'pool-a',
    });
    expect(stale).toBeUndefined();
    const { row } = await claim(task.id);
    expect(row).toMatchObject({ attempts: 1, claim: 1, worker_id: 'pool-a' });
    // a second run of the same job (or a duplicate delivery) cannot claim it again
    expect(
      await taskClaim(tdb.db, { taskId: task.id, jobId: task.job_id!, workerId: 'pool-b' }),
    ).toBeUndefined();
    expect((await read(task.id)).worker_id).toBe('pool-a');
  });
});

describe('the fence only goes up', () => {
  it('refuses every write of an attempt requeued by a shutdown, after the same attempt number is claimed again', async () => {
    const task = await submit();
    const first = await claim(task.id, 'pool-a');
    expect(
      await taskRequeue(tdb.db, first.attempt, {
        error: { code: 'worker_lost', message: 'shutdown', retryable: true },
        runAt: new Date(),
        usage,
        event: 'retry',
        data: { reason: 'worker shutdown' },
        refundAttempt: true,
      }),
    ).toBe('queued');
    const second = await claim(task.id, 'pool-b');
    // The attempt was given back, so both runs are attempt 1; only the claim tells them apart.
    expect(second.attempt.attempt).toBe(first.attempt.attempt);
    expect(second.attempt.claim).toBe(first.attempt.claim + 1);

    await expectAllRefused(first.attempt);

    // the current attempt still writes
    expect(
      await appendAttemptEvent(tdb.db, second.attempt, { type: 'answer', data: { text: 'ok' } }),
    ).toMatchObject({ cancelRequested: false });
    expect(
      await taskFinish(
        tdb.db,
        second.attempt,
        { status: 'completed', result: { answer: 'ok' } },
        usage,
      ),
    ).toBe('completed');
  });

  it('refuses an old attempt finishing while a newer one runs', async () => {
    const task = await submit();
    const first = await claim(task.id, 'pool-a');
    expect(
      await taskRequeue(tdb.db, first.attempt, {
        error: unavailable,
        runAt: new Date(),
        usage,
        event: 'retry',
        data: {},
      }),
    ).toBe('queued');
    const second = await claim(task.id, 'pool-b');
    expect(second.row.attempts).toBe(2);

    // the first attempt's late answer arrives while the second runs
    await expectAllRefused(first.attempt);
    const now = await read(task.id);
    expect(now).toMatchObject({ status: 'running', worker_id: 'pool-b', result: null });
    expect(
      await taskFinish(
        tdb.db,
        second.attempt,
        { status: 'completed', result: { answer: 'second' } },
        usage,
      ),
    ).toBe('completed');
    expect((await read(task.id)).result).toEqual({ answer: 'second' });
  });
});

describe('taskTakeover', () => {
  it('moves the claim on and writes `recovered` in the same fenced statement', async () => {
    const task = await submit();
    const lost = await claim(task.id, 'pool-a');
    const seqBefore = (await read(task.id)).last_event_seq;
    const takeover = {
      taskId: task.id,
      jobId: task.job_id!,
      workerId: 'pool-b',
      previous: { claim: lost.row.claim, workerId: 'pool-a' },
    };
    const taken = await taskTakeover(tdb.db, takeover);
    expect(taken).toMatchObject({ status: 'running', attempts: 2, claim: 2, worker_id: 'pool-b' });
    expect((await events(task.id)).at(-1)).toEqual({
      seq: seqBefore + 1,
      type: 'recovered',
      data: {
        reason: 'job re-run after its previous execution was lost',
        previous_worker: 'pool-a',
        attempt: 2,
        outcome: 'running',
      },
    });

    // A second takeover on the same stale view (a duplicate run of the job) is
    // refused, and writes no second `recovered` event.
    const eventsBefore = await events(task.id);
    expect(await taskTakeover(tdb.db, { ...takeover, workerId: 'pool-c' })).toBeUndefined();
    expect(await events(task.id)).toEqual(eventsBefore);
    expect((await read(task.id)).worker_id).toBe('pool-b');

    // and the lost execution can no longer write
    await expectAllRefused(lost.attempt);
  });

  it('refuses a takeover through another job', async () => {
    const task = await submit();
    const lost = await claim(task.id);
    expect(
      await taskTakeover(tdb.db, {
        taskId: task.id,
        jobId: task.job_id! + 1_000_000,
        workerId: 'pool-b',
        previous: { claim: lost.row.claim, workerId: 'pool-a' },
      }),
    ).toBeUndefined();
    expect((await read(task.id)).claim).toBe(1);
  });

  it('fails the task with worker_lost when no attempt is left, `recovered` before the status', async () => {
    const task = await submit({ maxAttempts: 1 });
    const lost = await claim(task.id, 'pool-a');
    const taken = await taskTakeover(tdb.db, {
      taskId: task.id,
      jobId: task.job_id!,
      workerId: 'pool-b',
      previous: { claim: lost.row.claim, workerId: 'pool-a' },
    });
    expect(taken).toMatchObject({ status: 'failed', attempts: 1, worker_id: 'pool-a' });
    expect(taken!.error).toMatchObject({ code: 'worker_lost', retryable: false });
    expect(
      (await events(task.id)).slice(-2).map((e) => [e.type, e.data.outcome ?? e.data.to]),
    ).toEqual([
      ['recovered', 'failed'],
      ['status', 'failed'],
    ]);
  });

  it('ends the task cancelled when cancellation was requested (cancel wins over the re-run)', async () => {
    const task = await submit();
    const lost = await claim(task.id, 'pool-a');
    await taskRequestCancel(tdb.db, task.id);
    const taken = await taskTakeover(tdb.db, {
      taskId: task.id,
      jobId: task.job_id!,
      workerId: 'pool-b',
      previous: { claim: lost.row.claim, workerId: 'pool-a' },
    });
    expect(taken).toMatchObject({ status: 'cancelled', attempts: 1 });
    expect(taken!.error).toMatchObject({ code: 'cancelled' });
  });
});

describe('taskRequeue', () => {
  it('requeues with a new job and a retry event, refunding the attempt but never the claim', async () => {
    const task = await submit();
    const { attempt } = await claim(task.id);
    expect(
      await taskRequeue(tdb.db, attempt, {
        error: unavailable,
        runAt: new Date(Date.now() + 60_000),
        usage,
        event: 'retry',
        data: { attempt: 1 },
        refundAttempt: true,
      }),
    ).toBe('queued');
    const row = await read(task.id);
    expect(row).toMatchObject({ status: 'queued', attempts: 0, claim: 1 });
    expect(row.job_id).not.toBe(task.job_id);
    expect((await events(task.id)).at(-1)?.type).toBe('retry');
  });

  it('ends the task cancelled when cancellation was requested while the attempt failed', async () => {
    const task = await submit();
    const { attempt } = await claim(task.id);
    await taskRequestCancel(tdb.db, task.id);
    const runAt = new Date(Date.now() + 60_000);
    expect(
      await taskRequeue(tdb.db, attempt, {
        error: unavailable,
        runAt,
        usage,
        event: 'retry',
        data: {},
      }),
    ).toBe('cancelled');
    const row = await read(task.id);
    expect(row).toMatchObject({ status: 'cancelled', job_id: task.job_id, usage });
    expect(row.error).toMatchObject({ code: 'cancelled' });
    expect(row.run_at.getTime()).not.toBe(runAt.getTime());
    expect((await events(task.id)).map((e) => e.type)).not.toContain('retry');
  });
});

describe('taskFinish', () => {
  it('lets a cancel win over a retryable failure with no attempt left, not over a final one', async () => {
    const retryable = await submit();
    const a = await claim(retryable.id);
    await taskRequestCancel(tdb.db, retryable.id);
    expect(
      await taskFinish(tdb.db, a.attempt, { status: 'failed', error: unavailable }, usage),
    ).toBe('cancelled');
    expect((await read(retryable.id)).error).toMatchObject({ code: 'cancelled' });

    const final = await submit();
    const b = await claim(final.id);
    await taskRequestCancel(tdb.db, final.id);
    const auth: TaskError = { code: 'provider_auth', message: 'bad key', retryable: false };
    expect(await taskFinish(tdb.db, b.attempt, { status: 'failed', error: auth }, usage)).toBe(
      'failed',
    );
    expect((await read(final.id)).error).toEqual(auth);
  });
});

describe('recovery of lost tasks', () => {
  it("requeues a dead worker's task with `recovered` before its status event, and fences the dead attempt", async () => {
    const task = await submit();
    const lost = await claim(task.id, 'pool-dead-1');
    await markWorkerSilent('pool-dead-1');
    const recovered = await workerRecoverDead(tdb.db, HOUR, 'pool-live');
    expect(recovered.deadWorkers).toEqual(['pool-dead-1']);
    expect(recovered.tasks).toEqual([
      expect.objectContaining({ id: task.id, status: 'queued', worker_id: 'pool-dead-1' }),
    ]);
    const row = await read(task.id);
    expect(row.error).toMatchObject({ code: 'worker_lost', retryable: true });
    expect(row.job_id).not.toBe(task.job_id);
    expect(
      (await events(task.id)).slice(-2).map((e) => [e.type, e.data.outcome ?? e.data.to]),
    ).toEqual([
      ['recovered', 'queued'],
      ['status', 'queued'],
    ]);
    // the dead worker was only frozen: its writes after recovery are refused,
    // and so they are after the task was claimed again
    await expectAllRefused(lost.attempt);
    await claim(task.id, 'pool-live');
    await expectAllRefused(lost.attempt);
  });

  it('leaves alone a task the dead worker lost to a takeover (a stale recovery)', async () => {
    const task = await submit();
    const lost = await claim(task.id, 'pool-dead-2');
    await taskTakeover(tdb.db, {
      taskId: task.id,
      jobId: task.job_id!,
      workerId: 'pool-live-2',
      previous: { claim: lost.row.claim, workerId: 'pool-dead-2' },
    });
    await markWorkerSilent('pool-dead-2');
    const recovered = await workerRecoverDead(tdb.db, HOUR, 'pool-live');
    expect(recovered.deadWorkers).toEqual(['pool-dead-2']);
    expect(recovered.tasks).toEqual([]);
    expect(await read(task.id)).toMatchObject({ status: 'running', worker_id: 'pool-live-2' });
  });

  it('fails with worker_lost when no attempt is left, and cancels when cancellation was requested', async () => {
    const spent = await submit({ maxAttempts: 1 });
    await claim(spent.id, 'pool-dead-3');
    const wanted = await submit();
    await claim(wanted.id, 'pool-dead-3');
    await taskRequestCancel(tdb.db, wanted.id);
    await markWorkerSilent('pool-dead-3');
    const { tasks } = await workerRecoverDead(tdb.db, HOUR, 'pool-live');
    expect(Object.fromEntries(tasks.map((t) => [t.id, t.status]))).toEqual({
      [spent.id]: 'failed',
      [wanted.id]: 'cancelled',
    });
    const cancelled = await read(wanted.id);
    expect(cancelled.error).toMatchObject({ code: 'cancelled' });
    expect(cancelled.job_id).toBe(wanted.job_id); // no job for a cancelled task
    expect((await events(wanted.id)).slice(-2).map((e) => e.type)).toEqual(['recovered', 'status']);
    expect((await read(spent.id)).error).toMatchObject({ code: 'worker_lost', retryable: false });
  });

  it("hands back a live worker's orphans, never a task it runs, and lets a cancel win", async () => {
    const running = await submit();
    await claim(running.id, 'pool-self');
    const orphan = await submit();
    await claim(orphan.id, 'pool-self');
    const cancelledOrphan = await submit();
    await claim(cancelledOrphan.id, 'pool-self');
    await taskRequestCancel(tdb.db, cancelledOrphan.id);
    // min age 0: every row written by an earlier transaction qualifies by age;
    // only the list of running attempts protects one
    const tasks = await workerRecoverOrphans(tdb.db, 'pool-self', [running.id], 0);
    expect(Object.fromEntries(tasks.map((t) => [t.id, t.status]))).toEqual({
      [orphan.id]: 'queued',
      [cancelledOrphan.id]: 'cancelled',
    });
    expect((await read(running.id)).status).toBe('running');
  });
});
