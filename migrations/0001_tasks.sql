-- agentq schema, part 1: tasks, their step log, workers.
-- Forward-only: never edit a migration that has shipped; add the next file.

CREATE SCHEMA IF NOT EXISTS agentq;

-- One row per task: the single source of truth for its status.
CREATE TABLE agentq.tasks (
  id uuid PRIMARY KEY, -- UUIDv7 from the app, so id order is submit order
  type text NOT NULL CHECK (type IN ('agent')),
  status text NOT NULL DEFAULT 'queued'
    CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
  input jsonb NOT NULL,
  config jsonb NOT NULL, -- the resolved agent config, as the worker will run it
  result jsonb,
  error jsonb, -- { code, message, retryable }
  usage jsonb NOT NULL
    DEFAULT '{"input_tokens": 0, "output_tokens": 0, "llm_calls": 0, "tool_calls": 0}',
  attempts int NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  max_attempts int NOT NULL DEFAULT 3 CHECK (max_attempts BETWEEN 1 AND 100),
  priority int NOT NULL DEFAULT 0 CHECK (priority BETWEEN -100 AND 100),
  timeout_ms int NOT NULL DEFAULT 300000 CHECK (timeout_ms > 0),
  idempotency_key text UNIQUE,
  request_hash text, -- tells an idempotent replay (same body) from a conflict
  metadata jsonb NOT NULL DEFAULT '{}',
  worker_id text, -- the graphile-worker pool id running (or last running) it
  job_id bigint, -- the current graphile_worker job
  last_event_seq int NOT NULL DEFAULT 0, -- seq of the newest task_events row
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  run_at timestamptz NOT NULL DEFAULT now(),
  started_at timestamptz,
  finished_at timestamptz,
  cancel_requested_at timestamptz
);

CREATE INDEX tasks_status_id_idx ON agentq.tasks (status, id DESC);
CREATE INDEX tasks_created_at_idx ON agentq.tasks (created_at);
CREATE INDEX tasks_running_worker_idx ON agentq.tasks (worker_id) WHERE status = 'running';

-- The append-only step log of a task.
CREATE TABLE agentq.task_events (
  task_id uuid NOT NULL REFERENCES agentq.tasks (id) ON DELETE CASCADE,
  seq int NOT NULL,
  type text NOT NULL CHECK (type IN ('status', 'llm_call', 'message', 'tool_call',
    'tool_result', 'answer', 'error', 'retry', 'recovered', 'cancel_requested')),
  data jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (task_id, seq)
);

-- Live workers: each heartbeats here; a stale row marks a dead worker.
CREATE TABLE agentq.workers (
  id text PRIMARY KEY, -- the graphile-worker pool id (pool-…)
  hostname text NOT NULL,
  pid int NOT NULL,
  version text NOT NULL,
  concurrency int NOT NULL,
  started_at timestamptz NOT NULL DEFAULT now(),
  last_seen_at timestamptz NOT NULL DEFAULT now()
);
