// The worker's batched writer against a real database: many attempts' writes
// in one transaction, each fenced on its own claim, events in order, and a
// bad write that cannot take its neighbours down with it.
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { taskInsertWithJob, taskFindById } from '../../shared/tasks/task-queries.ts';
import { eventList } from '../../shared/tasks/event-queries.ts';
import { AttemptWriter, type AttemptSignal } from '../../worker/attempt-writer.ts';
import type { TaskError } from '../../shared/tasks/task-error.ts';
import { newTask } from '../helpers/fixtures.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => {
  await t.drop();
});

const usage = { input_tokens: 1, output_tokens: 2, llm_calls: 1, tool_calls: 0 };

function makeWriter() {
  const signals: Array<[string, AttemptSignal]> = [];
  const writer = new AttemptWriter({
    db: t.db,
    logger: pino({ level: 'silent' }),
    workerId: () => 'pool-test',
    onSignal: (taskId, signal) => signals.push([taskId, signal]),
  });
  return { writer, signals };
}

async function queuedTask() {
  const row = await taskInsertWithJob(t.db, newTask());
  return row!;
}

describe('AttemptWriter', () => {
  it('claims, appends and finishes ten tasks in a handful of transactions, events in order', async () => {
    const { writer, signals } = makeWriter();
    const tasks = await Promise.all(Array.from({ length: 10 }, queuedTask));
    const claimed = await Promise.all(tasks.map((task) => writer.claim(task.id, task.job_id!)));
    expect(claimed.map((c) => c?.status)).toEqual(Array(10).fill('running'));
    expect(claimed.every((c) => c!.claim === 1 && c!.worker_id === 'pool-test')).toBe(true);

    for (const c of claimed) {
      const a = { taskId: c!.id, claim: c!.claim };
      writer.append(a, 'llm_call', { step: 1 }, usage);
      writer.append(a, 'tool_call', { id: 'x', name: 'calculator' });
      writer.append(a, 'tool_result', { id: 'x', output: 4 });
      writer.append(a, 'answer', { text: 'four' });
    }
    const before = writer.stats.flushes;
    const finished = await Promise.all(
      claimed.map((c) =>
        writer.finish(
          { taskId: c!.id, claim: c!.claim },
          { status: 'completed', result: { answer: 'four' } },
          usage,
        ),
      ),
    );
    expect(finished).toEqual(Array(10).fill('completed'));
    // 40 events and 10 outcomes went in one or two transactions, not fifty.
    expect(writer.stats.flushes - before).toBeLessThanOrEqual(2);
    expect(signals).toEqual([]);

    for (const c of claimed) {
      const events = await eventList(t.db, c!.id, 0, 100);
      expect(events.map((e) => [e.seq, e.type])).toEqual([
        [1, 'status'],
        [2, 'status'],
        [3, 'llm_call'],
        [4, 'tool_call'],
        [5, 'tool_result'],
        [6, 'answer'],
        [7, 'status'],
      ]);
      const row = await taskFindById(t.db, c!.id);
      expect(row).toMatchObject({
        status: 'completed',
        result: { answer: 'four' },
        usage,
        last_event_seq: 7,
      });
    }
  });

  it('fences each task on its own claim: a stale attempt is refused, its neighbour is not', async () => {
    const { writer, signals } = makeWriter();
    const [a, b] = await Promise.all([queuedTask(), queuedTask()]);
    const ca = (await writer.claim(a.id, a.job_id!))!;
    const cb = (await writer.claim(b.id, b.job_id!))!;
    // Task a is taken over by another claim behind this writer's back.
    await sql`UPDATE agentq.tasks SET claim = claim + 1 WHERE id = ${a.id}`.execute(t.db);

    writer.append({ taskId: a.id, claim: ca.claim }, 'message', { text: 'late' });
    writer.append({ taskId: b.id, claim: cb.claim }, 'message', { text: 'on time' });
    const [fa, fb] = await Promise.all([
      writer.finish(
        { taskId: a.id, claim: ca.claim },
        { status: 'completed', result: { answer: 'a' } },
        usage,
      ),
      writer.finish(
        { taskId: b.id, claim: cb.claim },
        { status: 'completed', result: { answer: 'b' } },
        usage,
      ),
    ]);
    expect([fa, fb]).toEqual([undefined, 'completed']);
    expect(signals).toEqual([[a.id, 'fenced']]);
    expect((await eventList(t.db, a.id, 0, 100)).map((e) => e.type)).toEqual(['status', 'status']);
    expect((await taskFindById(t.db, a.id))!.status).toBe('running');
    expect((await eventList(t.db, b.id, 0, 100)).map((e) => e.type)).toEqual([
      'status',
      'status',
      'message',
      'status',
    ]);
  });

  it('reports a requested cancellation to the attempt', async () => {
    const { writer, signals } = makeWriter();
    const task = await queuedTask();
    const c = (await writer.claim(task.id, task.job_id!))!;
    await sql`UPDATE agentq.tasks SET cancel_requested_at = now() WHERE id = ${task.id}`.execute(
      t.db,
    );
    writer.append({ taskId: task.id, claim: c.claim }, 'message', { text: 'hi' });
    await writer.settle();
    expect(signals).toEqual([[task.id, 'cancel']]);
  });

  it('does not claim a task whose job is not the one running, or that is not queued', async () => {
    const { writer } = makeWriter();
    const task = await queuedTask();
    expect(await writer.claim(task.id, task.job_id! + 1_000_000)).toBeUndefined();
    const c = await writer.claim(task.id, task.job_id!);
    expect(c?.status).toBe('running');
    expect(await writer.claim(task.id, task.job_id!)).toBeUndefined();
  });

  it('keeps a write that fails from failing the other tasks in its flush', async () => {
    const { writer, signals } = makeWriter();
    const [a, b] = await Promise.all([queuedTask(), queuedTask()]);
    const ca = (await writer.claim(a.id, a.job_id!))!;
    const cb = (await writer.claim(b.id, b.job_id!))!;
    // An event type the table refuses (a CHECK violation) for task a only.
    writer.append({ taskId: a.id, claim: ca.claim }, 'not_a_type' as 'message', {});
    writer.append({ taskId: b.id, claim: cb.claim }, 'message', { text: 'fine' });
    const fb = writer.finish(
      { taskId: b.id, claim: cb.claim },
      { status: 'completed', result: { answer: 'b' } },
      usage,
    );
    expect(await fb).toBe('completed');
    await writer.settle();
    expect(signals).toEqual([[a.id, 'write_failed']]);
    expect((await taskFindById(t.db, b.id))!.status).toBe('completed');
  });

  it('stores text Postgres would refuse, cleaned', async () => {
    const { writer } = makeWriter();
    const task = await queuedTask();
    const c = (await writer.claim(task.id, task.job_id!))!;
    writer.append({ taskId: task.id, claim: c.claim }, 'message', { text: 'a\u0000b\ud800c' });
    expect(
      await writer.finish(
        { taskId: task.id, claim: c.claim },
        { status: 'completed', result: { answer: 'x\u0000' } },
        usage,
      ),
    ).toBe('completed');
    const events = await eventList(t.db, task.id, 0, 100);
    expect(events.find((e) => e.type === 'message')!.data).toEqual({ text: 'a\ufffdb\ufffdc' });
    expect((await taskFindById(t.db, task.id))!.result).toEqual({ answer: 'x\ufffd' });
  });
});

describe('AttemptWriter outcomes', () => {
  it('lets a requested cancel win over a failure that would have been retried, not over a final one', async () => {
    const { writer } = makeWriter();
    const [a, b] = await Promise.all([queuedTask(), queuedTask()]);
    const ca = (await writer.claim(a.id, a.job_id!))!;
    const cb = (await writer.claim(b.id, b.job_id!))!;
    await sql`UPDATE agentq.tasks SET cancel_requested_at = now() WHERE id IN (${a.id}, ${b.id})`.execute(
      t.db,
    );
    const error: TaskError = { code: 'provider_unavailable', message: '503', retryable: false };
    const [sa, sb] = await Promise.all([
      writer.finish(
        { taskId: a.id, claim: ca.claim },
        { status: 'failed', error, cancelWins: true },
        usage,
      ),
      writer.finish(
        { taskId: b.id, claim: cb.claim },
        { status: 'failed', error: { ...error, code: 'provider_auth' }, cancelWins: false },
        usage,
      ),
    ]);
    expect([sa, sb]).toEqual(['cancelled', 'failed']);
    expect((await taskFindById(t.db, a.id))!.error).toMatchObject({ code: 'cancelled' });
    expect((await taskFindById(t.db, b.id))!.error).toMatchObject({ code: 'provider_auth' });
  });
});
