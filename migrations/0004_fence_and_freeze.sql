-- agentq schema, part 4: a fence that only goes up, finished tasks frozen
-- whole, an append-only step log, and new tasks that start empty.
--
-- `claim` counts the claims of a task (queued → running, and each takeover of a
-- lost execution). It is never given back, unlike `attempts`, which a shutdown
-- requeue refunds; so a worker's writes, all fenced on
-- (status = 'running' AND claim = <its claim>), can never match a later run.

ALTER TABLE agentq.tasks ADD COLUMN claim int NOT NULL DEFAULT 0 CHECK (claim >= 0);

CREATE OR REPLACE FUNCTION agentq.tasks_before_write() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  preset text[];
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF NEW.status <> 'queued' THEN
      RAISE EXCEPTION 'agentq: a new task must be queued, not %', NEW.status
        USING ERRCODE = 'check_violation';
    END IF;
    -- Everything a run writes starts empty: no row arrives half-run.
    preset := array_remove(ARRAY[
      CASE WHEN NEW.attempts <> 0 THEN 'attempts' END,
      CASE WHEN NEW.claim <> 0 THEN 'claim' END,
      CASE WHEN NEW.result IS NOT NULL THEN 'result' END,
      CASE WHEN NEW.error IS NOT NULL THEN 'error' END,
      CASE WHEN NEW.usage IS DISTINCT FROM
        '{"input_tokens": 0, "output_tokens": 0, "llm_calls": 0, "tool_calls": 0}'::jsonb
        THEN 'usage' END,
      CASE WHEN NEW.worker_id IS NOT NULL THEN 'worker_id' END,
      CASE WHEN NEW.started_at IS NOT NULL THEN 'started_at' END,
      CASE WHEN NEW.finished_at IS NOT NULL THEN 'finished_at' END,
      CASE WHEN NEW.cancel_requested_at IS NOT NULL THEN 'cancel_requested_at' END
    ], NULL);
    IF cardinality(preset) > 0 THEN
      RAISE EXCEPTION 'agentq: a new task cannot arrive with % set', array_to_string(preset, ', ')
        USING ERRCODE = 'check_violation';
    END IF;
    NEW.last_event_seq := 1; -- the first status event
    RETURN NEW;
  END IF;

  -- A finished task is frozen whole: not one column changes, not even updated_at.
  IF OLD.status IN ('completed', 'failed', 'cancelled') THEN
    IF NEW IS DISTINCT FROM OLD THEN
      RAISE EXCEPTION 'agentq: task % is %, and a finished task never changes', OLD.id, OLD.status
        USING ERRCODE = 'check_violation';
    END IF;
    RETURN OLD;
  END IF;

  IF NEW.claim < OLD.claim THEN
    RAISE EXCEPTION 'agentq: task % claim cannot go down (% to %)', OLD.id, OLD.claim, NEW.claim
      USING ERRCODE = 'check_violation';
  END IF;
  IF NEW.last_event_seq < OLD.last_event_seq THEN
    RAISE EXCEPTION 'agentq: task % last_event_seq cannot go down', OLD.id
      USING ERRCODE = 'check_violation';
  END IF;

  NEW.updated_at := now();
  IF NEW.status IS DISTINCT FROM OLD.status THEN
    IF NOT agentq.task_transition_allowed(OLD.status, NEW.status) THEN
      RAISE EXCEPTION 'agentq: task % cannot go from % to %', OLD.id, OLD.status, NEW.status
        USING ERRCODE = 'check_violation';
    END IF;
    -- The status event comes after any event the same statement appended (a
    -- recovery reserves one seq for its `recovered` event, written before the
    -- status it leads to, since a finished row takes no further event).
    NEW.last_event_seq := NEW.last_event_seq + 1;
    IF NEW.status = 'running' THEN
      NEW.started_at := coalesce(OLD.started_at, now());
    ELSIF NEW.status IN ('completed', 'failed', 'cancelled') THEN
      NEW.finished_at := now();
    END IF;
  END IF;
  RETURN NEW;
END
$$;

-- The step log is append-only. A row may leave only with its task (the ON
-- DELETE CASCADE from `DELETE FROM agentq.tasks`, which is how retention
-- removes history): by the time the cascade deletes the events, the task row
-- is already gone, which a direct DELETE can never arrange.
CREATE FUNCTION agentq.task_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' AND NOT EXISTS (SELECT 1 FROM agentq.tasks WHERE id = OLD.task_id) THEN
    RETURN OLD;
  END IF;
  IF TG_OP = 'TRUNCATE' THEN
    RAISE EXCEPTION 'agentq: the step log is append-only; delete the tasks instead'
      USING ERRCODE = 'check_violation';
  END IF;
  RAISE EXCEPTION 'agentq: the step log is append-only (% of event % of task % refused)',
    TG_OP, OLD.seq, OLD.task_id
    USING ERRCODE = 'check_violation';
END
$$;

CREATE TRIGGER task_events_append_only
  BEFORE UPDATE OR DELETE ON agentq.task_events
  FOR EACH ROW EXECUTE FUNCTION agentq.task_events_append_only();

CREATE TRIGGER task_events_no_truncate
  BEFORE TRUNCATE ON agentq.task_events
  FOR EACH STATEMENT EXECUTE FUNCTION agentq.task_events_append_only();
