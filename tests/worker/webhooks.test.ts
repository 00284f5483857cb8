// Webhook delivery end to end in one process: tasks submitted through the API
// routes with a webhook_url, run by the real worker (graphile-worker, offline
// provider), delivered to a real HTTP receiver on 127.0.0.1 (so private
// targets are allowed here) and verified with the `standardwebhooks` package,
// as a receiver would. Retry delays are a few milliseconds.
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { sql } from 'kysely';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWorker, type RunningWorker } from '../../worker/worker.ts';
import { createMetricsRegistry } from '../../shared/metrics/metrics-registry.ts';
import { startTestApi } from '../helpers/api-harness.ts';
import { testConfig } from '../helpers/test-config.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { startWebhookReceiver, type ReceivedWebhook } from '../helpers/webhook-receiver.ts';

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const OLD_SECRET = `whsec_${randomBytes(24).toString('base64')}`;

const metrics = createMetricsRegistry({ processMetrics: false });
async function deliveriesByOutcome(): Promise<Record<string, number>> {
  const { values } = await metrics.webhookDeliveries.get();
  return Object.fromEntries(values.map((v) => [String(v.labels.outcome), v.value]));
}

let tdb: TestDatabase;
let api: Awaited<ReturnType<typeof startTestApi>>;
let worker: RunningWorker;
let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;

beforeAll(async () => {
  tdb = await createTestDatabase();
  receiver = await startWebhookReceiver((request, earlier) => {
    if (request.path.startsWith('/flaky')) return { status: earlier === 0 ? 500 : 200 };
    if (request.path.startsWith('/down')) return { status: 503, headers: { 'retry-after': '0' } };
    if (request.path.startsWith('/gone')) return { status: 410 };
    return { status: 204 };
  });
  const config = testConfig({
    AGENTQ_WEBHOOK_SECRET: `${SECRET} ${OLD_SECRET}`,
    AGENTQ_WEBHOOK_ALLOW_PRIVATE: 'true',
    AGENTQ_WEBHOOK_MAX_ATTEMPTS: '3',
    AGENTQ_WEBHOOK_RETRY_BASE_MS: '10',
    AGENTQ_WEBHOOK_RETRY_MAX_MS: '50',
    AGENTQ_POLL_INTERVAL_MS: '100',
  });
  api = await startTestApi(tdb, config);
  worker = await startWorker({
    config,
    pool: tdb.pool,
    connectionString: tdb.url,
    logger: pino({ level: 'silent' }),
    metrics,
  });
});

afterAll(async () => {
  await worker?.stop();
  await api?.stop();
  await receiver?.close();
  await tdb?.drop();
});

interface TaskJson {
  id: string;
  status: string;
  webhook_url: string | null;
  last_event_seq?: number;
}
type EventJson = { seq: number; type: string; data: Record<string, unknown> };

async function submit(body: Record<string, unknown>): Promise<TaskJson> {
  const res = await api.post('/v1/tasks', { input: { prompt: 'say hello' }, ...body });
  expect(res.status).toBe(201);
  return (await res.json()) as TaskJson;
}

async function events(id: string): Promise<EventJson[]> {
  const res = await api.get(`/v1/tasks/${id}/events`);
  return ((await res.json()) as { data: EventJson[] }).data;
}

const webhookEvents = async (id: string) => (await events(id)).filter((e) => e.type === 'webhook');

/** Waits until the task's log holds a webhook event with a final outcome. */
function finalWebhookEvent(id: string) {
  return waitFor(
    async () => (await webhookEvents(id)).find((e) => e.data.outcome !== 'retrying') ?? undefined,
    { timeoutMs: 30_000, what: `the last webhook event of ${id}` },
  );
}

async function pendingWebhookJobs(id: string): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    SELECT count(*)::int AS n FROM graphile_worker._private_jobs
    WHERE payload->>'task_id' = ${id}`.execute(tdb.db);
  return rows[0]!.n;
}

const verify = (secret: string, r: ReceivedWebhook) =>
  new Webhook(secret).verify(r.body, r.headers) as {
    type: string;
    timestamp: string;
    data: { id: string; status: string; result: unknown; webhook_url: string };
  };

describe('webhooks', () => {
  it('a receiver that answers 500 then 200 gets the same webhook-id twice, and both verify', async () => {
    const before = await deliveriesByOutcome();
    const task = await submit({ webhook_url: receiver.url('/flaky') });
    expect(task.webhook_url).toBe(receiver.url('/flaky'));
    const last = await finalWebhookEvent(task.id);
    expect(last.data).toMatchObject({ outcome: 'delivered', attempt: 2, status_code: 200 });

    const [first, second] = receiver.at('/flaky');
    expect(receiver.at('/flaky')).toHaveLength(2);
    expect(first!.headers['webhook-id']).toBe(`msg_${task.id}`);
    expect(second!.headers['webhook-id']).toBe(first!.headers['webhook-id']);
    expect(first!.headers['content-type']).toBe('application/json');
    for (const request of [first!, second!]) {
      const payload = verify(SECRET, request);
      expect(payload.type).toBe('task.completed');
      expect(payload.data.id).toBe(task.id);
      expect(payload.data.status).toBe('completed');
      expect(payload.data.result).toEqual({ answer: expect.any(String) });
      expect(new Date(payload.timestamp).toISOString()).toBe(payload.timestamp);
      // Signed with the first secret only: the old one (still listed, for rotation) does not verify.
      expect(() => verify(OLD_SECRET, request)).toThrow(WebhookVerificationError);
    }
    // The same bytes every time; only the timestamp and signature are per attempt.
    expect(second!.body).toBe(first!.body);

    // Both attempts are in the step log, after the terminal status, and the task is unchanged.
    const log = await events(task.id);
    const statusSeq = log.filter((e) => e.type === 'status').at(-1)!.seq;
    const hooks = log.filter((e) => e.type === 'webhook');
    expect(hooks.map((e) => e.data.outcome)).toEqual(['retrying', 'delivered']);
    expect(hooks[0]!.data).toMatchObject({
      delivery_id: `msg_${task.id}`,
      attempt: 1,
      status_code: 500,
      next_attempt_at: expect.any(String),
    });
    expect(hooks.map((e) => e.seq)).toEqual([statusSeq + 1, statusSeq + 2]);
    const read = (await (await api.get(`/v1/tasks/${task.id}`)).json()) as TaskJson;
    expect(read.status).toBe('completed');

    // agentq_webhook_deliveries_total counted each attempt by its outcome.
    const after = await deliveriesByOutcome();
    expect((after.retry ?? 0) - (before.retry ?? 0)).toBe(1);
    expect((after.delivered ?? 0) - (before.delivered ?? 0)).toBe(1);
  });

  it('a changed body, id or timestamp fails verification', async () => {
    const task = await submit({ webhook_url: receiver.url('/tamper') });
    await finalWebhookEvent(task.id);
    const [request] = receiver.at('/tamper');
    expect(() => verify(SECRET, request!)).not.toThrow();
    const changed = request!.body.replace('"task.completed"', '"task.failed"');
    expect(changed).not.toBe(request!.body);
    expect(() => verify(SECRET, { ...request!, body: changed })).toThrow(WebhookVerificationError);
    const otherId = { ...request!.headers, 'webhook-id': 'msg_other' };
    expect(() => verify(SECRET, { ...request!, headers: otherId })).toThrow(
      WebhookVerificationError,
    );
    const ts = Number(request!.headers['webhook-timestamp']) + 1;
    const otherTs = { ...request!.headers, 'webhook-timestamp': String(ts) };
    expect(() => verify(SECRET, { ...request!, headers: otherTs })).toThrow(
      WebhookVerificationError,
    );
  });

  it('a webhook that never succeeds gives up after the last attempt; the task stays completed', async () => {
    const task = await submit({ webhook_url: receiver.url('/down') });
    const last = await finalWebhookEvent(task.id);
    expect(last.data).toMatchObject({ outcome: 'gave_up', attempt: 3, status_code: 503 });
    const hooks = await webhookEvents(task.id);
    expect(hooks.map((e) => e.data.outcome)).toEqual(['retrying', 'retrying', 'gave_up']);
    expect(new Set(receiver.at('/down').map((r) => r.headers['webhook-id']))).toEqual(
      new Set([`msg_${task.id}`]),
    );
    await waitFor(async () => (await pendingWebhookJobs(task.id)) === 0, {
      what: 'the last webhook job to end',
    });
    expect(receiver.at('/down')).toHaveLength(3);
    const read = (await (await api.get(`/v1/tasks/${task.id}`)).json()) as TaskJson;
    expect(read.status).toBe('completed');
  });

  it('410 Gone stops the retries at once', async () => {
    const task = await submit({ webhook_url: receiver.url('/gone') });
    const last = await finalWebhookEvent(task.id);
    expect(last.data).toMatchObject({ outcome: 'gone', attempt: 1, status_code: 410 });
    expect(last.data.next_attempt_at).toBeUndefined();
    await waitFor(async () => (await pendingWebhookJobs(task.id)) === 0, {
      what: 'the webhook job to end',
    });
    expect(receiver.at('/gone')).toHaveLength(1);
    expect(await webhookEvents(task.id)).toHaveLength(1);
  });

  it('a task cancelled while queued is delivered as task.cancelled', async () => {
    const task = await submit({
      webhook_url: receiver.url('/cancelled'),
      run_at: new Date(Date.now() + 3_600_000).toISOString(),
    });
    const res = await api.post(`/v1/tasks/${task.id}/cancel`, {});
    expect(res.status).toBe(200);
    await finalWebhookEvent(task.id);
    const payload = verify(SECRET, receiver.at('/cancelled')[0]!);
    expect(payload.type).toBe('task.cancelled');
    expect(payload.data.status).toBe('cancelled');
  });

  it('tasks without a webhook_url get no webhook job and no webhook event', async () => {
    const task = await submit({});
    expect(task.webhook_url).toBeNull();
    await waitFor(
      async () =>
        (await events(task.id)).some((e) => e.type === 'status' && e.data.to === 'completed'),
      { what: 'the task to complete' },
    );
    expect(await pendingWebhookJobs(task.id)).toBe(0);
    expect(await webhookEvents(task.id)).toEqual([]);
  });

  it('batch items carry their own webhook_url', async () => {
    const res = await api.post('/v1/tasks/batch', {
      tasks: [
        { input: { prompt: 'one' }, webhook_url: receiver.url('/batch-a') },
        { input: { prompt: 'two' } },
      ],
    });
    expect(res.status).toBe(201);
    const { data } = (await res.json()) as { data: TaskJson[] };
    expect(data.map((t) => t.webhook_url)).toEqual([receiver.url('/batch-a'), null]);
    await finalWebhookEvent(data[0]!.id);
    expect(verify(SECRET, receiver.at('/batch-a')[0]!).data.id).toBe(data[0]!.id);
  });
});
