/**
 * A task row as the API shows it (DESIGN.md "Task JSON"); internal columns stay
 * inside. In shared/ because webhook deliveries (worker) send the same JSON.
 */
import { TERMINAL_STATUSES, type TaskStatus } from '../db/schema.ts';
import type { TaskRow } from './task-queries.ts';

const iso = (d: Date) => d.toISOString();
const isoOrNull = (d: Date | null) => (d === null ? null : iso(d));

export function taskJson(row: TaskRow) {
  return {
    id: row.id,
    type: row.type,
    status: row.status,
    input: row.input,
    config: row.config,
    result: row.result,
    error: row.error,
    usage: row.usage,
    attempts: row.attempts,
    max_attempts: row.max_attempts,
    priority: row.priority,
    timeout_s: row.timeout_ms / 1000,
    metadata: row.metadata,
    idempotency_key: row.idempotency_key,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
    run_at: iso(row.run_at),
    started_at: isoOrNull(row.started_at),
    finished_at: isoOrNull(row.finished_at),
    cancel_requested_at: isoOrNull(row.cancel_requested_at),
    webhook_url: row.webhook_url,
  };
}
export type TaskJson = ReturnType<typeof taskJson>;

export const isTerminal = (status: TaskStatus) => TERMINAL_STATUSES.includes(status);
