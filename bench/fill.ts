/**
 * Set-based SQL for filling agentq's tables fast: a queue of N tasks in one
 * transaction (the task rows through the normal triggers, then one
 * graphile-worker job each, as addAgentJob makes them), and UUIDv7-shaped ids
 * made in SQL so bulk-made rows sort by time like the API's.
 */
import type pg from 'pg';
import type { AgentConfig } from '../shared/db/schema.ts';

/**
 * A UUIDv7 for the millisecond `msExpr` (an SQL bigint expression): the 48-bit
 * time, version 7, variant 10, the rest random. Postgres 17 has no uuidv7().
 */
export const uuid7Sql = (msExpr: string) => `encode(
  set_byte(set_byte(
    overlay(uuid_send(gen_random_uuid()) PLACING substring(int8send((${msExpr})::bigint) FROM 3) FROM 1 FOR 6),
    6, 112 | (random() * 15)::int),
    8, 128 | (random() * 63)::int),
  'hex')::uuid`;

/** The bench prompt (agentq.ts benchPrompt) in SQL, for row i. */
const PROMPT_SQL = `format('What is %s * %s?', 17 + i % 83, 23 + i % 7)`;

/**
 * N queued tasks with their jobs, committed together: what N submits leave,
 * without N round trips. The worker sees them through graphile-worker's
 * jobs:insert notification once this commits. Returns the new task ids.
 */
export async function fillQueue(pool: pg.Pool, n: number, config: AgentConfig): Promise<string[]> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const { rows } = await client.query<{ id: string }>(
      `INSERT INTO agentq.tasks (id, type, input, config, max_attempts, priority, timeout_ms, metadata)
       SELECT ${uuid7Sql(`extract(epoch FROM clock_timestamp()) * 1000`)}, 'agent',
              jsonb_build_object('prompt', ${PROMPT_SQL}), $2::jsonb, 3, 0, 300000, '{}'
       FROM generate_series(0, $1::int - 1) i
       RETURNING id`,
      [n, JSON.stringify(config)],
    );
    await client.query(
      `UPDATE agentq.tasks t
       SET job_id = (graphile_worker.add_job('agent', json_build_object('task_id', t.id),
                                             max_attempts := 25, priority := 0)).id
       WHERE t.id = ANY($1::uuid[])`,
      [rows.map((r) => r.id)],
    );
    await client.query('COMMIT');
    return rows.map((r) => r.id);
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}
