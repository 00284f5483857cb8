-- agentq schema, part 3: views for people at a psql prompt.

-- A task beside its graphile-worker job (the job row is gone once the job ends).
CREATE VIEW agentq.task_overview AS
SELECT
  t.id,
  t.status,
  t.attempts,
  t.max_attempts,
  t.priority,
  t.config ->> 'provider' AS provider,
  t.config ->> 'model' AS model,
  left(t.input ->> 'prompt', 80) AS prompt,
  t.error ->> 'code' AS error_code,
  t.worker_id,
  t.created_at,
  t.run_at,
  t.started_at,
  t.finished_at,
  t.finished_at - t.started_at AS run_time,
  j.id AS job_id,
  j.attempts AS job_attempts,
  j.run_at AS job_run_at,
  j.locked_by AS job_locked_by,
  j.locked_at AS job_locked_at,
  j.last_error AS job_last_error
FROM agentq.tasks t
LEFT JOIN graphile_worker.jobs j ON j.id = t.job_id;

-- One row: how much is waiting, running and done, and who is running what.
CREATE VIEW agentq.queue_stats AS
SELECT
  count(*) FILTER (WHERE status = 'queued') AS queued,
  count(*) FILTER (WHERE status = 'queued' AND run_at <= now()) AS queued_due,
  count(*) FILTER (WHERE status = 'running') AS running,
  count(*) FILTER (WHERE status = 'completed') AS completed,
  count(*) FILTER (WHERE status = 'failed') AS failed,
  count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
  now() - min(run_at) FILTER (WHERE status = 'queued' AND run_at <= now()) AS oldest_queued_age,
  (SELECT coalesce(jsonb_object_agg(r.worker_id, r.n), '{}'::jsonb)
     FROM (SELECT worker_id, count(*) AS n FROM agentq.tasks
           WHERE status = 'running' GROUP BY worker_id) r) AS running_per_worker,
  (SELECT count(*) FROM agentq.workers) AS workers
FROM agentq.tasks;
