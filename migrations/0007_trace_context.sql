-- agentq schema, part 7: the submit's trace context travels with the task.
--
-- When the API traces requests (OpenTelemetry, opt-in), a submit stores the
-- W3C trace context of its request span on the task: a JSON object of the
-- propagation headers, `{"traceparent": "00-<trace id>-<span id>-<flags>"}`,
-- plus `tracestate` when the caller sent one. The worker starts each
-- attempt's `invoke_agent` span as a child of it, so one trace shows the
-- submit, every run and the outcome. NULL when the API does not trace.
--
-- The INSERT rule of 0004 lists only what a run writes; this column is set at
-- submit and never again (a finished task is frozen whole anyway).

ALTER TABLE agentq.tasks ADD COLUMN trace_context jsonb
  CONSTRAINT tasks_trace_context_object
  CHECK (trace_context IS NULL OR jsonb_typeof(trace_context) = 'object');
