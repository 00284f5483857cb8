// AGENTQ_READ_DATABASE_URL: the task list (GET /v1/tasks) reads from it, and
// nothing else does. Here the "replica" is a second database with rows of its
// own, so where each answer came from is plain: the list shows the replica's
// row and not a task just submitted to the primary, while the status read,
// the long-poll and the events of that task come from the primary.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { taskInsertWithJob } from '../../shared/tasks/task-queries.ts';
import { newTask } from '../helpers/fixtures.ts';
import { apiClient } from '../helpers/http-client.ts';
import { startApiProcess, type AgentqProcess } from '../helpers/processes.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';

let primary: TestDatabase;
let replica: TestDatabase;
let api: AgentqProcess & { url: string };

beforeAll(async () => {
  [primary, replica] = await Promise.all([createTestDatabase(), createTestDatabase()]);
  api = await startApiProcess({
    DATABASE_URL: primary.url,
    AGENTQ_READ_DATABASE_URL: replica.url,
    AGENTQ_READ_POOL_MAX: '2',
    AGENTQ_DEFAULT_PROVIDER: 'offline',
  });
}, 120_000);

afterAll(async () => {
  await api?.stop();
  await Promise.all([primary?.drop(), replica?.drop()]);
});

describe('AGENTQ_READ_DATABASE_URL', { timeout: 180_000 }, () => {
  it('serves the task list from the read database and every status read from the primary', async () => {
    const onReplica = await taskInsertWithJob(replica.db, newTask());
    const client = apiClient(api.url);
    const { status, body: submitted } = await client.submit({ input: { prompt: 'hi' } });
    expect(status).toBe(201);

    const list = (await (await fetch(`${api.url}/v1/tasks`)).json()) as {
      data: Array<{ id: string }>;
    };
    expect(list.data.map((t) => t.id)).toEqual([onReplica!.id]);

    // Status reads: the primary's task is there, the replica's is not.
    expect((await client.get(submitted.id)).id).toBe(submitted.id);
    expect((await client.get(submitted.id, 1)).id).toBe(submitted.id); // long-poll
    expect((await fetch(`${api.url}/v1/tasks/${onReplica!.id}`)).status).toBe(404);
    const events = await fetch(`${api.url}/v1/tasks/${submitted.id}/events`);
    expect(events.status).toBe(200);

    const budget = api.logs().find((l) => String(l.msg).startsWith('connection budget:'));
    expect(budget?.msg).toBe(
      'connection budget: pool 4 + read pool 2 + listener 1 = 7 (5 on DATABASE_URL, 2 on AGENTQ_READ_DATABASE_URL)',
    );
  });
});
