-- agentq schema, part 8: history in daily partitions, so retention drops whole
-- days instead of deleting rows one by one.
--
-- The task id is a UUIDv7: its first 48 bits are the unix time in ms at
-- submit, so a range of ids is a range of submit times. `agentq.tasks` is
-- partitioned BY RANGE (id) and `agentq.task_events` BY RANGE (task_id) with
-- the SAME bounds, so a task's events live in the events partition that
-- matches its task's partition:
--
--   agentq.tasks_history / task_events_history   everything before the day
--                                               before this migration ran
--   agentq.tasks_pYYYYMMDD / task_events_pYYYYMMDD   one UTC day each, made
--                                               ahead (agentq.ensure_partitions)
--
-- There is no DEFAULT partition on purpose: it would forbid
-- DETACH PARTITION … CONCURRENTLY, which retention uses to remove a day
-- without blocking the queue. Partitions are therefore made ahead (14 days by
-- the migration, every worker start and an hourly graphile-worker cron job),
-- and a submit that still finds none makes them itself and retries
-- (shared/tasks/task-queries.ts).
--
-- What changes beside the layout:
--   * The events→tasks foreign key is declared per pair of partitions
--     (task_events_pX.task_id REFERENCES tasks_pX (id) ON DELETE CASCADE)
--     instead of between the parents: same rows allowed, same cascade, but
--     detaching a tasks partition then needs no scan of every event to prove
--     nothing references it.
--   * `idempotency_key text UNIQUE` cannot be a unique index of a table
--     partitioned by id, so the keys move to agentq.idempotency_keys (key
--     PRIMARY KEY, task_id), written by the submit's one statement. The task
--     row keeps its copy of the key (the Task JSON shows it). A key leaves with
--     its task: a row trigger on DELETE removes it, and retention deletes the
--     keys of a day before it drops that day.
--
-- Every trigger, index, constraint and view of 0001–0007 is re-created on the
-- new tables as it was. Existing rows are moved, ids and keys unchanged.

-- ---------------------------------------------------------------------------
-- Time ↔ id.

-- The smallest UUIDv7 of the millisecond `ts` falls in (the lower bound of
-- every id made at or after ts).
CREATE FUNCTION agentq.uuid_floor(ts timestamptz) RETURNS uuid
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT (substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-0000-0000-000000000000')::uuid
  FROM (SELECT lpad(to_hex(greatest(0, floor(extract(epoch FROM ts) * 1000))::bigint), 12, '0') AS h) x
$$;

-- The submit time written in a UUIDv7 (ms precision).
CREATE FUNCTION agentq.uuid_time(id uuid) RETURNS timestamptz
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT to_timestamp(('x' || lpad(left(replace(id::text, '-', ''), 12), 16, '0'))::bit(64)::bigint / 1000.0)
$$;

-- The range partitions of `parent` and their bounds (MINVALUE and MAXVALUE as
-- the smallest and largest uuid).
CREATE FUNCTION agentq.partition_bounds(parent regclass)
RETURNS TABLE (partition regclass, lo uuid, hi uuid, detach_pending boolean)
LANGUAGE sql STABLE AS $$
  SELECT i.inhrelid::regclass,
         CASE WHEN b[1] = 'MINVALUE' THEN '00000000-0000-0000-0000-000000000000'
              ELSE btrim(b[1], '''') END::uuid,
         CASE WHEN b[2] = 'MAXVALUE' THEN 'ffffffff-ffff-ffff-ffff-ffffffffffff'
              ELSE btrim(b[2], '''') END::uuid,
         i.inhdetachpending
  FROM pg_inherits i
  JOIN pg_class c ON c.oid = i.inhrelid
  CROSS JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \((.*)\) TO \((.*)\)') b
  WHERE i.inhparent = parent
$$;

-- ---------------------------------------------------------------------------
-- Move the 0007 tables aside (their triggers and indexes go with them).

DROP VIEW agentq.task_overview;
DROP VIEW agentq.queue_stats;
CREATE SCHEMA agentq_0008_old;
ALTER TABLE agentq.tasks SET SCHEMA agentq_0008_old;
ALTER TABLE agentq.task_events SET SCHEMA agentq_0008_old;

-- Same columns in the same order, same defaults, same CHECK constraints (and names).
CREATE TABLE agentq.tasks (
  LIKE agentq_0008_old.tasks INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE
    INCLUDING COMMENTS
) PARTITION BY RANGE (id);
ALTER TABLE agentq.tasks ADD CONSTRAINT tasks_pkey PRIMARY KEY (id);
CREATE INDEX tasks_status_id_idx ON agentq.tasks (status, id DESC);
CREATE INDEX tasks_created_at_idx ON agentq.tasks (created_at);
CREATE INDEX tasks_running_worker_idx ON agentq.tasks (worker_id) WHERE status = 'running';

CREATE TABLE agentq.task_events (
  LIKE agentq_0008_old.task_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE
    INCLUDING COMMENTS
) PARTITION BY RANGE (task_id);
ALTER TABLE agentq.task_events ADD CONSTRAINT task_events_pkey PRIMARY KEY (task_id, seq);

-- Who holds each idempotency key (was the UNIQUE column tasks.idempotency_key).
CREATE TABLE agentq.idempotency_keys (
  key text PRIMARY KEY,
  task_id uuid NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idempotency_keys_task_id_idx ON agentq.idempotency_keys (task_id);

-- ---------------------------------------------------------------------------
-- Making partitions.

-- Makes the daily partitions (tasks and events, with their foreign key) that
-- cover [from_ts, to_ts], skipping every day some partition already overlaps.
-- Idempotent, and safe to call from several sessions at once. A partition is
-- made empty and ATTACHed, which takes SHARE UPDATE EXCLUSIVE on the parents:
-- inserts and updates of other partitions go on meanwhile. Returns how many
-- days it made.
CREATE FUNCTION agentq.create_partitions(from_ts timestamptz, to_ts timestamptz)
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
  day timestamptz := date_trunc('day', from_ts, 'UTC');
  day_lo uuid;
  day_hi uuid;
  suffix text;
  made int := 0;
BEGIN
  -- Any fixed number: two sessions making the same day wait for each other.
  PERFORM pg_advisory_xact_lock(7358240114);
  WHILE day <= to_ts LOOP
    day_lo := agentq.uuid_floor(day);
    day_hi := agentq.uuid_floor(day + interval '24 hours');
    IF NOT EXISTS (SELECT 1 FROM agentq.partition_bounds('agentq.tasks') p
                   WHERE p.lo < day_hi AND day_lo < p.hi) THEN
      suffix := to_char(day AT TIME ZONE 'UTC', 'YYYYMMDD');
      EXECUTE format('CREATE TABLE agentq.%I (LIKE agentq.tasks INCLUDING DEFAULTS '
                     'INCLUDING CONSTRAINTS INCLUDING STORAGE)', 'tasks_p' || suffix);
      EXECUTE format('ALTER TABLE agentq.tasks ATTACH PARTITION agentq.%I FOR VALUES FROM (%L) TO (%L)',
                     'tasks_p' || suffix, day_lo, day_hi);
      EXECUTE format('CREATE TABLE agentq.%I (LIKE agentq.task_events INCLUDING DEFAULTS '
                     'INCLUDING CONSTRAINTS INCLUDING STORAGE)', 'task_events_p' || suffix);
      EXECUTE format('ALTER TABLE agentq.%I ADD CONSTRAINT task_events_task_id_fkey '
                     'FOREIGN KEY (task_id) REFERENCES agentq.%I (id) ON DELETE CASCADE',
                     'task_events_p' || suffix, 'tasks_p' || suffix);
      EXECUTE format('ALTER TABLE agentq.task_events ATTACH PARTITION agentq.%I '
                     'FOR VALUES FROM (%L) TO (%L)', 'task_events_p' || suffix, day_lo, day_hi);
      made := made + 1;
    END IF;
    day := day + interval '24 hours';
  END LOOP;
  RETURN made;
END
$$;

-- The partitions every insert needs: from yesterday (a submitting host's
-- clock may lag the database's) to `ahead` from now.
CREATE FUNCTION agentq.ensure_partitions(ahead interval DEFAULT interval '14 days')
RETURNS int LANGUAGE sql AS $$
  SELECT agentq.create_partitions(now() - interval '1 day', now() + ahead)
$$;

-- Everything submitted before yesterday (UTC) goes to one history partition.
DO $$
DECLARE
  bound uuid := agentq.uuid_floor(date_trunc('day', now(), 'UTC') - interval '24 hours');
  last_hi uuid;
BEGIN
  EXECUTE format('CREATE TABLE agentq.tasks_history PARTITION OF agentq.tasks '
                 'FOR VALUES FROM (MINVALUE) TO (%L)', bound);
  EXECUTE format('CREATE TABLE agentq.task_events_history PARTITION OF agentq.task_events '
                 'FOR VALUES FROM (MINVALUE) TO (%L)', bound);
  ALTER TABLE agentq.task_events_history ADD CONSTRAINT task_events_task_id_fkey
    FOREIGN KEY (task_id) REFERENCES agentq.tasks_history (id) ON DELETE CASCADE;
  PERFORM agentq.ensure_partitions();
  -- An id from beyond the days just made (a clock that ran ahead): one more
  -- partition up to MAXVALUE keeps it. The days it overlaps are never made.
  SELECT hi INTO last_hi FROM agentq.partition_bounds('agentq.tasks') ORDER BY hi DESC LIMIT 1;
  IF EXISTS (SELECT 1 FROM agentq_0008_old.tasks WHERE id >= last_hi) THEN
    EXECUTE format('CREATE TABLE agentq.tasks_future PARTITION OF agentq.tasks '
                   'FOR VALUES FROM (%L) TO (MAXVALUE)', last_hi);
    EXECUTE format('CREATE TABLE agentq.task_events_future PARTITION OF agentq.task_events '
                   'FOR VALUES FROM (%L) TO (MAXVALUE)', last_hi);
    ALTER TABLE agentq.task_events_future ADD CONSTRAINT task_events_task_id_fkey
      FOREIGN KEY (task_id) REFERENCES agentq.tasks_future (id) ON DELETE CASCADE;
  END IF;
END
$$;

-- ---------------------------------------------------------------------------
-- Move the rows (no trigger exists on the new tables yet: the rows arrive as
-- they are, finished ones included, and no event or notification is sent).

INSERT INTO agentq.tasks SELECT * FROM agentq_0008_old.tasks;
INSERT INTO agentq.task_events SELECT * FROM agentq_0008_old.task_events;
INSERT INTO agentq.idempotency_keys (key, task_id, created_at)
SELECT idempotency_key, id, created_at FROM agentq_0008_old.tasks
WHERE idempotency_key IS NOT NULL;

DROP SCHEMA agentq_0008_old CASCADE;

-- ---------------------------------------------------------------------------
-- The triggers of 0002 and 0004–0006, as they were. Row triggers on a
-- partitioned table are cloned onto every partition, present and future;
-- statement triggers fire once per statement on the parent, and their
-- transition tables hold the rows of every partition the statement touched.

CREATE TRIGGER tasks_before_write
  BEFORE INSERT OR UPDATE ON agentq.tasks
  FOR EACH ROW EXECUTE FUNCTION agentq.tasks_before_write();

CREATE TRIGGER tasks_after_insert
  AFTER INSERT ON agentq.tasks
  REFERENCING NEW TABLE AS new_tasks
  FOR EACH STATEMENT EXECUTE FUNCTION agentq.tasks_after_insert_statement();

CREATE TRIGGER tasks_after_status_change
  AFTER UPDATE OF status ON agentq.tasks
  FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
  EXECUTE FUNCTION agentq.tasks_after_status();

CREATE TRIGGER tasks_enqueue_webhook
  AFTER UPDATE OF status ON agentq.tasks
  FOR EACH ROW
  WHEN (NEW.webhook_url IS NOT NULL
        AND OLD.status IS DISTINCT FROM NEW.status
        AND NEW.status IN ('completed', 'failed', 'cancelled'))
  EXECUTE FUNCTION agentq.tasks_enqueue_webhook();

CREATE TRIGGER task_events_append_only
  BEFORE UPDATE OR DELETE ON agentq.task_events
  FOR EACH ROW EXECUTE FUNCTION agentq.task_events_append_only();

CREATE TRIGGER task_events_no_truncate
  BEFORE TRUNCATE ON agentq.task_events
  FOR EACH STATEMENT EXECUTE FUNCTION agentq.task_events_append_only();

CREATE TRIGGER task_events_after_insert
  AFTER INSERT ON agentq.task_events
  REFERENCING NEW TABLE AS new_events
  FOR EACH STATEMENT EXECUTE FUNCTION agentq.task_events_after_insert_statement();

-- A deleted task's idempotency key is free again (its holder is gone).
CREATE FUNCTION agentq.tasks_release_idempotency_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM agentq.idempotency_keys WHERE key = OLD.idempotency_key AND task_id = OLD.id;
  RETURN NULL;
END
$$;

CREATE TRIGGER tasks_release_idempotency_key
  AFTER DELETE ON agentq.tasks
  FOR EACH ROW WHEN (OLD.idempotency_key IS NOT NULL)
  EXECUTE FUNCTION agentq.tasks_release_idempotency_key();

-- ---------------------------------------------------------------------------
-- The views of 0003, as they were.

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

-- ---------------------------------------------------------------------------
-- Retention, for the job (shared/db/partitions.ts) and for people at psql.

-- One row per pair of partitions, oldest first: the times its ids cover, its
-- size, and whether a DETACH … CONCURRENTLY of it was interrupted.
CREATE VIEW agentq.partitions AS
SELECT
  t.partition AS tasks_partition,
  e.partition AS events_partition,
  CASE WHEN t.lo = '00000000-0000-0000-0000-000000000000' THEN '-infinity'::timestamptz
       ELSE agentq.uuid_time(t.lo) END AS from_time,
  CASE WHEN t.hi = 'ffffffff-ffff-ffff-ffff-ffffffffffff' THEN 'infinity'::timestamptz
       ELSE agentq.uuid_time(t.hi) END AS to_time,
  greatest(tc.reltuples, 0)::bigint AS tasks_estimate,
  pg_total_relation_size(t.partition) + coalesce(pg_total_relation_size(e.partition), 0) AS bytes,
  t.detach_pending OR coalesce(e.detach_pending, false) AS detach_pending,
  t.lo,
  t.hi
FROM agentq.partition_bounds('agentq.tasks') t
JOIN pg_class tc ON tc.oid = t.partition
LEFT JOIN agentq.partition_bounds('agentq.task_events') e ON e.lo = t.lo AND e.hi = t.hi;

-- What a retention run with this horizon would do to each partition that
-- holds ids older than it: drop it whole (`drop`: every id is older and no
-- task in it is queued or running; one indexed look-up per partition), or
-- delete its finished tasks older than the horizon in batches (`delete`).
CREATE FUNCTION agentq.retention_plan(horizon timestamptz)
RETURNS TABLE (tasks_partition regclass, events_partition regclass, lo uuid, hi uuid,
               action text)
LANGUAGE sql STABLE AS $$
  SELECT p.tasks_partition, p.events_partition, p.lo, p.hi,
         CASE WHEN p.hi <= agentq.uuid_floor(horizon)
                   AND p.events_partition IS NOT NULL
                   AND NOT EXISTS (
                     SELECT 1 FROM agentq.tasks t
                     WHERE t.status IN ('queued', 'running') AND t.id >= p.lo AND t.id < p.hi)
              THEN 'drop' ELSE 'delete' END
  FROM agentq.partitions p
  WHERE p.lo < agentq.uuid_floor(horizon) AND NOT p.detach_pending
  ORDER BY p.lo
$$;

-- Deletes up to `batch` finished tasks with from_id <= id < before_id (their
-- events go by the foreign key's cascade, their keys by the trigger above);
-- returns how many. Queued and running tasks are never touched.
CREATE FUNCTION agentq.delete_finished_tasks(from_id uuid, before_id uuid, batch int)
RETURNS int LANGUAGE sql AS $$
  WITH doomed AS (
    SELECT id FROM agentq.tasks
    WHERE id >= from_id AND id < before_id AND status IN ('completed', 'failed', 'cancelled')
    ORDER BY id
    LIMIT batch
  ), gone AS (
    DELETE FROM agentq.tasks t USING doomed
    WHERE t.id = doomed.id AND t.status IN ('completed', 'failed', 'cancelled')
    RETURNING 1
  )
  SELECT count(*)::int FROM gone
$$;

-- Deletes up to `batch` idempotency keys of tasks with from_id <= id <
-- before_id (done before their partition is dropped); returns how many.
CREATE FUNCTION agentq.delete_idempotency_keys(from_id uuid, before_id uuid, batch int)
RETURNS int LANGUAGE sql AS $$
  WITH doomed AS (
    SELECT key FROM agentq.idempotency_keys
    WHERE task_id >= from_id AND task_id < before_id
    LIMIT batch
  ), gone AS (
    DELETE FROM agentq.idempotency_keys k USING doomed WHERE k.key = doomed.key RETURNING 1
  )
  SELECT count(*)::int FROM gone
$$;

ANALYZE agentq.tasks;
ANALYZE agentq.task_events;
ANALYZE agentq.idempotency_keys;
