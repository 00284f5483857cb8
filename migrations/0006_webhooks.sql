-- agentq schema, part 6: webhooks (Standard Webhooks). A task may carry a
-- webhook_url; when it reaches a terminal status, the SAME transaction that
-- writes the status enqueues a graphile-worker `webhook` job, so a committed
-- outcome always has its delivery queued and a rolled-back one never does.
--
--   webhook_url   set at submit only (0004's INSERT rules let a new task carry
--                 it; a finished row is frozen whole, this column included).
--   job payload   { task_id, delivery_id, attempt }: delivery_id ('msg_' + the
--                 task id) is the `webhook-id` header of every attempt, so a
--                 receiver sees retries of one delivery as one message.
--
-- Each delivery attempt appends a `webhook` event to the task's step log, AFTER
-- the terminal status. The finished row cannot change (0004), not even its
-- last_event_seq, so these events are numbered from max(seq) + 1 under a row
-- lock taken with SELECT … FOR NO KEY UPDATE (which locks without writing);
-- see shared/webhooks/webhook-queries.ts. A finished task's last_event_seq
-- therefore stays the seq of its terminal status event.

ALTER TABLE agentq.tasks ADD COLUMN webhook_url text
  CHECK (webhook_url ~ '^https?://' AND length(webhook_url) <= 2048);

ALTER TABLE agentq.task_events DROP CONSTRAINT task_events_type_check;
ALTER TABLE agentq.task_events ADD CONSTRAINT task_events_type_check
  CHECK (type IN ('status', 'llm_call', 'message', 'tool_call', 'tool_result', 'answer',
    'error', 'retry', 'recovered', 'cancel_requested', 'webhook'));

-- The first attempt runs at once. Priority -100 puts it level with the most
-- urgent agent job (graphile-worker runs lower numbers first): the delivery
-- is short and announces work already done, so it should not queue behind a
-- backlog. Its own retries are new jobs the handler adds (with the schedule
-- and Retry-After it chooses); the job's max_attempts only covers a handler
-- that throws (database unreachable, worker shutting down).
CREATE FUNCTION agentq.tasks_enqueue_webhook() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM graphile_worker.add_job(
    'webhook',
    json_build_object('task_id', NEW.id, 'delivery_id', 'msg_' || NEW.id::text, 'attempt', 1),
    max_attempts := 10,
    priority := -100
  );
  RETURN NULL;
END
$$;

-- The WHEN clause is checked without entering PL/pgSQL, so status changes of
-- tasks without a webhook (and every non-terminal change) cost nothing more.
CREATE TRIGGER tasks_enqueue_webhook
  AFTER UPDATE OF status ON agentq.tasks
  FOR EACH ROW
  WHEN (NEW.webhook_url IS NOT NULL
        AND OLD.status IS DISTINCT FROM NEW.status
        AND NEW.status IN ('completed', 'failed', 'cancelled'))
  EXECUTE FUNCTION agentq.tasks_enqueue_webhook();
