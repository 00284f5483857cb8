/**
 * What the API answers, as valibot schemas: the task JSON, the pages, the
 * batch result, the step event and the error shape. They exist for the
 * OpenAPI document (api/openapi.ts turns them into JSON Schema) and are kept
 * honest twice: at compile time (the inferred types must match what
 * task-json.ts and errors.ts build) and in tests/api/openapi.test.ts (real
 * answers must validate against the document). Request schemas are not here:
 * the document uses the very schemas the routes validate with.
 */
import * as v from 'valibot';
import { PROVIDER_NAMES } from '../shared/catalog.ts';
import { TASK_STATUSES } from '../shared/db/schema.ts';
import { TASK_ERROR_CODES } from '../shared/tasks/task-error.ts';
import type { errorBody } from './errors.ts';
import type { QueueStatsJson } from './queue-stats-reader.ts';
import type { TaskJson } from './tasks/task-json.ts';
import { SUMMARY_CHARS, type TaskSummaryJson } from '../shared/tasks/task-summary.ts';

const whole = v.pipe(v.number(), v.integer());
const count = v.pipe(v.number(), v.integer(), v.minValue(0));
const instant = v.pipe(v.string(), v.isoTimestamp(), v.description('ISO-8601, UTC'));
const maybeInstant = v.nullable(instant);
const jsonObject = v.record(v.string(), v.unknown());

const taskEntries = {
  id: v.pipe(v.string(), v.uuid(), v.description('UUIDv7: sorts by creation time')),
  type: v.literal('agent'),
  status: v.picklist(TASK_STATUSES),
  input: v.strictObject({ prompt: v.string() }),
  config: v.pipe(
    v.strictObject({
      provider: v.picklist(PROVIDER_NAMES),
      model: v.string(),
      max_steps: whole,
      temperature: v.nullable(v.number()),
      tools: v.array(v.string()),
      system_prompt: v.string(),
    }),
    v.description('the submitted config resolved against the server defaults'),
  ),
  result: v.nullable(v.strictObject({ answer: v.string() })),
  error: v.pipe(
    v.nullable(
      v.strictObject({
        code: v.picklist(TASK_ERROR_CODES),
        message: v.string(),
        retryable: v.boolean(),
      }),
    ),
    v.description('why the last attempt failed; null while none has'),
  ),
  usage: v.strictObject({
    input_tokens: count,
    output_tokens: count,
    llm_calls: count,
    tool_calls: count,
  }),
  attempts: count,
  max_attempts: whole,
  priority: whole,
  timeout_s: v.number(),
  metadata: jsonObject,
  idempotency_key: v.nullable(v.string()),
  created_at: instant,
  updated_at: instant,
  run_at: instant,
  started_at: maybeInstant,
  finished_at: maybeInstant,
  cancel_requested_at: maybeInstant,
  webhook_url: v.pipe(
    v.nullable(v.string()),
    v.description('where the signed terminal-status webhook goes, if any'),
  ),
};

export const TaskSchema = v.pipe(
  v.strictObject(taskEntries),
  v.metadata({ ref: 'Task', description: 'A task as the API shows it.' }),
);

export const TaskSummarySchema = v.pipe(
  v.strictObject({
    ...taskEntries,
    input_truncated: v.pipe(
      v.boolean(),
      v.description(`\`input.prompt\` was cut to ${SUMMARY_CHARS} characters plus "…"`),
    ),
    result_truncated: v.pipe(
      v.boolean(),
      v.description(`\`result.answer\` was cut to ${SUMMARY_CHARS} characters plus "…"`),
    ),
  }),
  v.metadata({
    ref: 'TaskSummary',
    description: 'A task in the summary view (`view=summary`, the change stream): long texts cut.',
  }),
);

export const TaskPageSchema = v.pipe(
  v.strictObject({
    data: v.pipe(
      v.array(v.union([TaskSchema, TaskSummarySchema])),
      v.description('tasks, or task summaries with `view=summary`'),
    ),
    next_cursor: v.pipe(
      v.nullable(v.string()),
      v.description('pass as `cursor` for the next (older) page; null on the last page'),
    ),
  }),
  v.metadata({ ref: 'TaskPage', description: 'Tasks, newest first.' }),
);

export const BatchResultSchema = v.pipe(
  v.strictObject({
    data: v.pipe(v.array(TaskSchema), v.description('one task per item, in request order')),
    replayed: v.pipe(
      v.array(count),
      v.description('indexes of the items answered by an earlier submit with their key'),
    ),
  }),
  v.metadata({ ref: 'BatchResult' }),
);

export const EventSchema = v.pipe(
  v.strictObject({
    seq: v.pipe(whole, v.minValue(1)),
    type: v.pipe(
      v.string(),
      v.description('status, llm_call, message, tool_call, tool_result, answer, error, webhook, …'),
    ),
    data: jsonObject,
    created_at: instant,
  }),
  v.metadata({ ref: 'Event', description: "One step of a task's log." }),
);

export const EventPageSchema = v.pipe(
  v.strictObject({
    data: v.array(EventSchema),
    next_after: v.pipe(count, v.description('pass as `after` to read on')),
  }),
  v.metadata({ ref: 'EventPage' }),
);

export const ErrorSchema = v.pipe(
  v.strictObject({
    error: v.strictObject({
      code: v.pipe(
        v.string(),
        v.description('machine-readable; the README lists every code'),
        v.examples(['invalid_request', 'not_found']),
      ),
      message: v.pipe(v.string(), v.description('for people; names the field at fault')),
      details: v.optional(
        v.pipe(v.unknown(), v.description('e.g. `issues: [{field, message}]` for a 400')),
      ),
    }),
  }),
  v.metadata({ ref: 'Error', description: 'Every error the API answers with.' }),
);

export const StatsSchema = v.pipe(
  v.strictObject({
    counts: v.strictObject({
      queued: count,
      running: count,
      completed: count,
      failed: count,
      cancelled: count,
    }),
    queued_due: v.pipe(count, v.description('queued tasks whose run_at has come')),
    oldest_queued_age_s: v.pipe(
      v.nullable(v.number()),
      v.description('seconds the oldest due queued task has waited; null when none is due'),
    ),
    workers: v.pipe(count, v.description('registered workers')),
  }),
  v.metadata({ ref: 'Stats', description: 'The queue at a glance (`agentq.queue_stats`).' }),
);

export const WorkerSchema = v.pipe(
  v.strictObject({
    id: v.string(),
    hostname: v.string(),
    pid: whole,
    version: v.string(),
    concurrency: whole,
    started_at: instant,
    last_seen_at: instant,
    alive: v.pipe(
      v.boolean(),
      v.description('its last heartbeat is within AGENTQ_WORKER_DEAD_AFTER_MS'),
    ),
    running: v.pipe(count, v.description('tasks it runs now')),
    running_task_ids: v.pipe(
      v.array(v.pipe(v.string(), v.uuid())),
      v.description('up to 50 of them, the longest-running first'),
    ),
  }),
  v.metadata({ ref: 'Worker', description: 'A registered worker process.' }),
);

export const WorkerListSchema = v.pipe(
  v.strictObject({ data: v.array(WorkerSchema) }),
  v.metadata({ ref: 'WorkerList', description: 'Workers, the most recently started first.' }),
);

export const HealthSchema = v.strictObject({ status: v.literal('ok') });

export const ReadySchema = v.strictObject({
  status: v.picklist(['ready', 'not_ready', 'shutting_down']),
  pending_migrations: v.optional(v.array(v.string())),
  reason: v.optional(v.literal('database_unavailable')),
});

// Compile-time: the documented shapes are the shapes the code builds.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const taskMatches: Same<v.InferOutput<typeof TaskSchema>, TaskJson> = true;
const summaryMatches: Same<v.InferOutput<typeof TaskSummarySchema>, TaskSummaryJson> = true;
void summaryMatches;
const errorFits: ReturnType<typeof errorBody> extends v.InferOutput<typeof ErrorSchema>
  ? true
  : false = true;
void taskMatches;
const statsMatches: Same<v.InferOutput<typeof StatsSchema>, QueueStatsJson> = true;
void statsMatches;
void errorFits;
