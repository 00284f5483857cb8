// Private webhook targets with AGENTQ_WEBHOOK_ALLOW_PRIVATE off (the default):
// refused at submit when the URL shows it (a 400 naming webhook_url), and at
// delivery when a name resolves inward (the worker's resolver maps
// hooks.example.test to 127.0.0.1, where a real receiver listens and must
// never be reached). Also: no secret configured means no webhooks at all.
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWorker, type RunningWorker } from '../../worker/worker.ts';
import { errorOf, startTestApi } from '../helpers/api-harness.ts';
import { testConfig } from '../helpers/test-config.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { startWebhookReceiver } from '../helpers/webhook-receiver.ts';

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;

let tdb: TestDatabase;
let api: Awaited<ReturnType<typeof startTestApi>>;
let worker: RunningWorker;
let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;
const resolved: string[] = [];

beforeAll(async () => {
  tdb = await createTestDatabase();
  receiver = await startWebhookReceiver(() => ({ status: 200 }));
  const config = testConfig({
    AGENTQ_WEBHOOK_SECRET: SECRET,
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
    webhookResolver: async (host) => {
      resolved.push(host);
      return host === 'hooks.example.test'
        ? [{ address: '127.0.0.1', family: 4 }]
        : [{ address: '93.184.215.14', family: 4 }];
    },
  });
});

afterAll(async () => {
  await worker?.stop();
  await api?.stop();
  await receiver?.close();
  await tdb?.drop();
});

type EventJson = { seq: number; type: string; data: Record<string, unknown> };

describe('private webhook targets', () => {
  it.each([
    'http://127.0.0.1:9/hook',
    'http://localhost:9/hook',
    'http://api.localhost/hook',
    'http://[::1]/hook',
    'http://[::ffff:127.0.0.1]/hook',
    'http://10.1.2.3/hook',
    'http://192.168.0.10/hook',
    'http://169.254.169.254/latest/meta-data',
    'http://0x7f.1/hook', // read by URL parsers as 127.0.0.1
  ])('%s is refused at submit with a 400 naming webhook_url', async (url) => {
    const res = await api.post('/v1/tasks', { input: { prompt: 'x' }, webhook_url: url });
    expect(res.status).toBe(400);
    const error = await errorOf(res);
    expect(error.code).toBe('invalid_request');
    expect(error.message).toMatch(/^webhook_url: .* loopback, private or link-local/);
  });

  it.each([
    ['another scheme', 'ftp://example.com/hook', /http or https/],
    ['not a URL', 'not a url', /absolute http or https URL/],
    ['credentials', 'https://user:pw@example.com/hook', /credentials/],
    ['too long', `https://example.com/${'a'.repeat(2048)}`, /at most 2048/],
    ['not a string', 42, /string/i],
  ])('%s is refused at submit', async (_label, url, message) => {
    const res = await api.post('/v1/tasks', { input: { prompt: 'x' }, webhook_url: url });
    expect(res.status).toBe(400);
    const error = await errorOf(res);
    expect(error.message).toMatch(/webhook_url/);
    expect(error.message).toMatch(message);
  });

  it('a batch item with a private target is refused by its index; nothing is submitted', async () => {
    const res = await api.post('/v1/tasks/batch', {
      tasks: [
        { input: { prompt: 'a' }, webhook_url: 'https://example.com/hook' },
        { input: { prompt: 'b' }, webhook_url: 'http://127.0.0.1/hook' },
      ],
    });
    expect(res.status).toBe(400);
    expect((await errorOf(res)).message).toMatch(/^tasks\[1\]\.webhook_url: /);
  });

  it('a name that resolves to 127.0.0.1 passes submit and is refused at delivery, after DNS', async () => {
    const url = `http://hooks.example.test:${receiver.port}/hook`;
    const res = await api.post('/v1/tasks', { input: { prompt: 'x' }, webhook_url: url });
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as { id: string };
    const event = await waitFor(
      async () => {
        const page = await api.get(`/v1/tasks/${id}/events`);
        const { data } = (await page.json()) as { data: EventJson[] };
        return data.find((e) => e.type === 'webhook');
      },
      { timeoutMs: 30_000, what: 'the webhook event' },
    );
    expect(event.data).toMatchObject({ outcome: 'refused', attempt: 1 });
    expect(String(event.data.error)).toMatch(/resolves to 127\.0\.0\.1, which is not a public/);
    expect(resolved).toContain('hooks.example.test');
    expect(receiver.received).toEqual([]);
    const task = (await (await api.get(`/v1/tasks/${id}`)).json()) as { status: string };
    expect(task.status).toBe('completed');
  });
});

describe('webhooks without AGENTQ_WEBHOOK_SECRET', () => {
  it('a submit with webhook_url is a 400 saying webhooks are not configured', async () => {
    const plain = await startTestApi(tdb, testConfig());
    try {
      const res = await plain.post('/v1/tasks', {
        input: { prompt: 'x' },
        webhook_url: 'https://example.com/hook',
      });
      expect(res.status).toBe(400);
      expect((await errorOf(res)).message).toBe(
        'webhook_url: webhooks are not configured on this server (AGENTQ_WEBHOOK_SECRET is not set)',
      );
      const ok = await plain.post('/v1/tasks', { input: { prompt: 'x' } });
      expect(ok.status).toBe(201);
    } finally {
      await plain.stop();
    }
  });
});
