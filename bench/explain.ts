/**
 * EXPLAIN (ANALYZE, BUFFERS) of the hot statements exactly as the code sends
 * them: the shared query functions run on a Kysely whose connection turns
 * every statement sent while a label is set into its EXPLAIN, with the same
 * parameters. ANALYZE executes the statement, so all of it runs in one
 * transaction that is rolled back: the claim really claims the tasks the
 * event append and the finish then write, and nothing stays.
 */
import { Kysely, PostgresDialect, sql, type PostgresPool } from 'kysely';
import pg from 'pg';
import type { Database } from '../shared/db/schema.ts';
import type { AgentConfig } from '../shared/db/schema.ts';
import { eventAppendMany, taskClaimMany, taskFinishMany } from '../shared/tasks/batch-queries.ts';
import { eventList } from '../shared/tasks/event-queries.ts';
import { taskFindById, taskList } from '../shared/tasks/task-queries.ts';
import { uuid7Sql } from './fill.ts';

interface Plan {
  label: string;
  sql: string;
  plan: string;
}

class Rollback extends Error {}

/** One connection, wrapped so that statements sent under a label are explained instead. */
function explainingDb(client: pg.Client) {
  let label: string | undefined;
  const plans: Plan[] = [];
  const wrapped = {
    async query(text: string, values: unknown[]) {
      if (label === undefined) return client.query(text, values);
      const result = await client.query<{ 'QUERY PLAN': string }>(
        `EXPLAIN (ANALYZE, BUFFERS, TIMING) ${text}`,
        values,
      );
      plans.push({ label, sql: text, plan: result.rows.map((r) => r['QUERY PLAN']).join('\n') });
      return { ...result, rows: [] };
    },
    release() {},
  };
  const pool = {
    connect: async () => wrapped,
    end: async () => {},
  } as unknown as PostgresPool;
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    plans,
    async capture<T>(what: string, fn: () => Promise<T>): Promise<void> {
      label = what;
      try {
        await fn();
      } finally {
        label = undefined;
      }
    },
  };
}

/**
 * Plans of the worker's batch statements (claim, event append, finish) for a
 * batch of `batch` tasks, and of the API's reads (task by id, its events,
 * task lists) against a finished task from the history.
 */
export async function explainHotStatements(
  url: string,
  config: AgentConfig,
  batch: number,
): Promise<Plan[]> {
  const client = new pg.Client({ connectionString: url, application_name: 'agentq-bench-explain' });
  await client.connect();
  const { db, plans, capture } = explainingDb(client);
  try {
    await db
      .transaction()
      .execute(async (trx) => {
        const old = await sql<{ id: string }>`
          SELECT id FROM agentq.tasks WHERE status = 'completed'
          ORDER BY id LIMIT 1 OFFSET (SELECT count(*) / 2 FROM agentq.tasks)`.execute(trx);
        const oldId = old.rows[0]?.id;
        if (!oldId) throw new Error('explain: no finished task in the history');
        // A batch of queued tasks with jobs, as the worker would claim them.
        const { rows: fresh } = await sql<{ id: string; job_id: number }>`
          WITH t AS (
            INSERT INTO agentq.tasks (id, type, input, config)
            SELECT ${sql.raw(uuid7Sql('extract(epoch FROM clock_timestamp()) * 1000'))}, 'agent',
                   jsonb_build_object('prompt', 'What is 17 * 23?'), ${JSON.stringify(config)}::jsonb
            FROM generate_series(1, ${batch}::int)
            RETURNING id
          )
          SELECT id, (graphile_worker.add_job('agent', json_build_object('task_id', id))).id AS job_id
          FROM t`.execute(trx);
        for (const f of fresh)
          await sql`UPDATE agentq.tasks SET job_id = ${f.job_id} WHERE id = ${f.id}`.execute(trx);

        await capture(`claim batch: taskClaimMany, ${batch} tasks`, () =>
          taskClaimMany(
            trx,
            'bench-explain',
            fresh.map((f) => ({ taskId: f.id, jobId: f.job_id })),
          ),
        );
        const usage = { input_tokens: 10, output_tokens: 5, llm_calls: 1, tool_calls: 1 };
        const events = fresh.flatMap((f) =>
          (['llm_call', 'tool_call', 'tool_result'] as const).map((type) => ({
            taskId: f.id,
            claim: 1,
            type,
            data: { note: 'explain', type },
          })),
        );
        await capture(
          `event append batch: eventAppendMany, ${batch} tasks × 3 events, usage saved`,
          () =>
            eventAppendMany(
              trx,
              events,
              fresh.map((f) => ({ taskId: f.id, claim: 1, usage })),
            ),
        );
        await capture(`finish batch: taskFinishMany, ${batch} tasks completed`, () =>
          taskFinishMany(
            trx,
            fresh.map((f) => ({
              taskId: f.id,
              claim: 1,
              outcome: { status: 'completed', result: { answer: 'The answer is 391.' } },
              usage,
            })),
          ),
        );
        await capture('task read by id (GET /v1/tasks/:id): taskFindById', () =>
          taskFindById(trx, oldId),
        );
        await capture('event list (GET /v1/tasks/:id/events): eventList after 0, 100', () =>
          eventList(trx, oldId, 0, 100),
        );
        await capture('list tasks, newest first (GET /v1/tasks): taskList limit 50', () =>
          taskList(trx, { limit: 50 }),
        );
        await capture('list tasks, status=queued: taskList limit 50', () =>
          taskList(trx, { status: ['queued'], limit: 50 }),
        );
        await capture('list tasks, status=completed, a page deep in history: taskList', () =>
          taskList(trx, { status: ['completed'], beforeId: oldId, limit: 50 }),
        );
        throw new Rollback();
      })
      .catch((err: unknown) => {
        if (!(err instanceof Rollback)) throw err;
      });
  } finally {
    await db.destroy();
    await client.end();
  }
  return plans;
}

export function renderPlans(header: string[], plans: Plan[]): string {
  const out = [...header, ''];
  for (const p of plans) {
    out.push(`=== ${p.label}`, p.sql.trim().replace(/\s+/g, ' '), '', p.plan, '');
  }
  return out.join('\n');
}
