/**
 * Kysely table types for schema `agentq` (see migrations/). Kept by hand beside
 * the SQL; the database tests read and write every column through them.
 */
import type { ColumnType, Generated, JSONColumnType } from 'kysely';
import type { TaskError } from '../tasks/task-error.ts';

export type TaskStatus = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';
/** Every status, in the order a task can pass through them (the list query and the OpenAPI document). */
export const TASK_STATUSES = [
  'queued',
  'running',
  'completed',
  'failed',
  'cancelled',
] as const satisfies readonly TaskStatus[];
export const TERMINAL_STATUSES: readonly TaskStatus[] = ['completed', 'failed', 'cancelled'];

export type EventType =
  | 'status'
  | 'llm_call'
  | 'message'
  | 'tool_call'
  | 'tool_result'
  | 'answer'
  | 'error'
  | 'retry'
  | 'recovered'
  | 'cancel_requested'
  /** A webhook delivery attempt, appended after the terminal status (migrations/0006). */
  | 'webhook';

export interface TaskUsage {
  input_tokens: number;
  output_tokens: number;
  llm_calls: number;
  tool_calls: number;
}

/** The resolved agent config stored on a task. */
export interface AgentConfig {
  provider: 'openai' | 'google' | 'offline';
  model: string;
  max_steps: number;
  temperature: number | null;
  tools: string[];
  system_prompt: string;
}

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type NullableTimestamp = ColumnType<
  Date | null,
  Date | string | null | undefined,
  Date | string | null
>;
// JSON columns are written as JSON text (JSON.stringify) and read back parsed.
type Json<T extends object> = JSONColumnType<T>;
type NullableJson<T extends object> = JSONColumnType<T | null, string | null, string | null>;

export interface TasksTable {
  id: string;
  type: 'agent';
  status: Generated<TaskStatus>;
  input: Json<{ prompt: string }>;
  config: Json<AgentConfig>;
  result: NullableJson<{ answer: string }>;
  error: NullableJson<TaskError>;
  usage: JSONColumnType<TaskUsage, string | undefined, string>;
  /** Runs that count toward max_attempts (a shutdown requeue gives one back). */
  attempts: Generated<number>;
  /** One more per claim and takeover, never given back: the fence of every worker write (0004). */
  claim: Generated<number>;
  max_attempts: number;
  priority: number;
  timeout_ms: number;
  idempotency_key: string | null;
  request_hash: string | null;
  metadata: Json<Record<string, unknown>>;
  worker_id: string | null;
  job_id: number | null; // int8, parsed as a number (shared/db/database.ts)
  last_event_seq: Generated<number>;
  created_at: Timestamp;
  updated_at: Timestamp;
  run_at: Timestamp;
  started_at: NullableTimestamp;
  finished_at: NullableTimestamp;
  cancel_requested_at: NullableTimestamp;
  /** Where the terminal status is POSTed (Standard Webhooks); set at submit only (0006). */
  webhook_url: ColumnType<string | null, string | null | undefined, string | null>;
  /** The submit's W3C trace context (`traceparent`, `tracestate`), when the API traces (0007). */
  trace_context: NullableJson<Record<string, string>>;
}

export interface TaskEventsTable {
  task_id: string;
  seq: number;
  type: EventType;
  data: Json<Record<string, unknown>>;
  created_at: Timestamp;
}

/** Who holds each idempotency key (migrations/0008); a key leaves with its task. */
export interface IdempotencyKeysTable {
  key: string;
  task_id: string;
  created_at: Generated<Timestamp>;
}

export interface WorkersTable {
  id: string;
  hostname: string;
  pid: number;
  version: string;
  concurrency: number;
  started_at: Timestamp;
  last_seen_at: Timestamp;
}

export interface Database {
  'agentq.tasks': TasksTable;
  'agentq.task_events': TaskEventsTable;
  'agentq.workers': WorkersTable;
  'agentq.idempotency_keys': IdempotencyKeysTable;
}
