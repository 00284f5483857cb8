-- agentq schema, part 5: fewer wake-ups. Every notifying commit takes a
-- server-wide lock, and every LISTENing backend then runs a transaction to read
-- the queue, so a statement that writes many rows sends ONE notification per
-- channel naming all the tasks it touched, instead of one per row:
--
--   agentq_event  after any INSERT into task_events (step events, and the
--                 status events below): the distinct task ids, comma-separated;
--   agentq_task   after an INSERT into tasks (a submit or a batch submit): the
--                 new task ids, comma-separated. Status UPDATEs keep their
--                 per-row notification from 0002 (one per task, as before).
--
-- A payload must stay under 8,000 bytes (about 216 ids). A longer list is sent
-- as an EMPTY payload, which means "something changed: re-read everything you
-- wait on" (the API's waiters subscribe to it; see shared/db/notification-listener.ts).
-- Readers treat every notification as a hint and re-read committed rows.

-- Sends `ids` (comma-separated) on `channel`, or '' when too long; nothing when NULL.
CREATE FUNCTION agentq.notify_task_ids(channel text, ids text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF ids IS NULL THEN
    RETURN; -- the statement wrote no rows
  END IF;
  PERFORM pg_notify(channel, CASE WHEN octet_length(ids) < 8000 THEN ids ELSE '' END);
END
$$;

-- task_events: one agentq_event per statement, replacing 0002's per-row trigger.
CREATE FUNCTION agentq.task_events_after_insert_statement() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM agentq.notify_task_ids('agentq_event',
    (SELECT string_agg(DISTINCT task_id::text, ',') FROM new_events));
  RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS task_events_after_insert ON agentq.task_events;
DROP FUNCTION IF EXISTS agentq.task_events_after_insert();

CREATE TRIGGER task_events_after_insert
  AFTER INSERT ON agentq.task_events
  REFERENCING NEW TABLE AS new_events
  FOR EACH STATEMENT EXECUTE FUNCTION agentq.task_events_after_insert_statement();

-- tasks INSERT: the first `status` event of every new task in ONE insert (so
-- the trigger above fires once), then one agentq_task naming them. The event
-- is the one 0002's row trigger wrote for an insert: {to, attempt[, error]}.
CREATE FUNCTION agentq.tasks_after_insert_statement() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO agentq.task_events (task_id, seq, type, data)
  SELECT id, last_event_seq, 'status',
         jsonb_strip_nulls(jsonb_build_object('to', status, 'attempt', attempts, 'error', error))
  FROM new_tasks
  ORDER BY id;
  PERFORM agentq.notify_task_ids('agentq_task',
    (SELECT string_agg(id::text, ',' ORDER BY id) FROM new_tasks));
  RETURN NULL;
END
$$;

DROP TRIGGER tasks_after_insert ON agentq.tasks;

CREATE TRIGGER tasks_after_insert
  AFTER INSERT ON agentq.tasks
  REFERENCING NEW TABLE AS new_tasks
  FOR EACH STATEMENT EXECUTE FUNCTION agentq.tasks_after_insert_statement();
