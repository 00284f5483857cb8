-- agentq schema, part 2: the status machine, enforced by the database, and the
-- wake-up notifications. Enforcing it here means no code path (nor a person at
-- a psql prompt) can move a task along an edge the design does not have.
--
--   queued  -> running | cancelled
--   running -> completed | failed | cancelled | queued
--   completed, failed, cancelled: terminal, never change.
--
-- Every status change gets its `status` event in the same transaction, and a
-- NOTIFY agentq_task with the task id (readers re-read the committed row).

CREATE FUNCTION agentq.task_transition_allowed(from_status text, to_status text)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
  SELECT (from_status, to_status) IN (
    ('queued', 'running'), ('queued', 'cancelled'),
    ('running', 'completed'), ('running', 'failed'),
    ('running', 'cancelled'), ('running', 'queued')
  )
$$;

CREATE FUNCTION agentq.tasks_before_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF NEW.status <> 'queued' THEN
      RAISE EXCEPTION 'agentq: a new task must be queued, not %', NEW.status
        USING ERRCODE = 'check_violation';
    END IF;
    NEW.last_event_seq := 1; -- the first status event
    RETURN NEW;
  END IF;

  IF OLD.status IN ('completed', 'failed', 'cancelled')
     AND (NEW.status, NEW.result, NEW.error, NEW.attempts)
         IS DISTINCT FROM (OLD.status, OLD.result, OLD.error, OLD.attempts) THEN
    RAISE EXCEPTION 'agentq: task % is %, and a finished task never changes', OLD.id, OLD.status
      USING ERRCODE = 'check_violation';
  END IF;

  NEW.updated_at := now();
  IF NEW.status IS DISTINCT FROM OLD.status THEN
    IF NOT agentq.task_transition_allowed(OLD.status, NEW.status) THEN
      RAISE EXCEPTION 'agentq: task % cannot go from % to %', OLD.id, OLD.status, NEW.status
        USING ERRCODE = 'check_violation';
    END IF;
    NEW.last_event_seq := OLD.last_event_seq + 1;
    IF NEW.status = 'running' THEN
      NEW.started_at := coalesce(OLD.started_at, now());
    ELSIF NEW.status IN ('completed', 'failed', 'cancelled') THEN
      NEW.finished_at := now();
    END IF;
  END IF;
  RETURN NEW;
END
$$;

CREATE TRIGGER tasks_before_write
  BEFORE INSERT OR UPDATE ON agentq.tasks
  FOR EACH ROW EXECUTE FUNCTION agentq.tasks_before_write();

CREATE FUNCTION agentq.tasks_after_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO agentq.task_events (task_id, seq, type, data)
  VALUES (NEW.id, NEW.last_event_seq, 'status', jsonb_strip_nulls(jsonb_build_object(
    'from', CASE WHEN TG_OP = 'UPDATE' THEN OLD.status END,
    'to', NEW.status,
    'attempt', NEW.attempts,
    'worker_id', CASE WHEN NEW.status = 'running' THEN NEW.worker_id END,
    'error', CASE WHEN NEW.status IN ('failed', 'queued') THEN NEW.error END
  )));
  PERFORM pg_notify('agentq_task', NEW.id::text);
  RETURN NULL;
END
$$;

CREATE TRIGGER tasks_after_insert
  AFTER INSERT ON agentq.tasks
  FOR EACH ROW EXECUTE FUNCTION agentq.tasks_after_status();

CREATE TRIGGER tasks_after_status_change
  AFTER UPDATE OF status ON agentq.tasks
  FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
  EXECUTE FUNCTION agentq.tasks_after_status();

-- Every step-log insert wakes event streams; the payload is the task id.
CREATE FUNCTION agentq.task_events_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('agentq_event', NEW.task_id::text);
  RETURN NULL;
END
$$;

CREATE TRIGGER task_events_after_insert
  AFTER INSERT ON agentq.task_events
  FOR EACH ROW EXECUTE FUNCTION agentq.task_events_after_insert();
