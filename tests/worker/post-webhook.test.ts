// One delivery attempt (worker/webhooks/post-webhook.ts) against a real
// receiver on 127.0.0.1: the socket goes to the address the resolver gave and
// the policy checked, Retry-After is read, and timeouts and refused
// connections are failed attempts, not exceptions. And the retry schedule.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postWebhook, type Resolver } from '../../worker/webhooks/post-webhook.ts';
import { webhookRetryDelayMs } from '../../worker/webhooks/webhook-task.ts';
import { startWebhookReceiver } from '../helpers/webhook-receiver.ts';

let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;
beforeAll(async () => {
  receiver = await startWebhookReceiver((request) => {
    if (request.path === '/busy') return { status: 429, headers: { 'retry-after': '7' } };
    if (request.path === '/slow') return 'hang';
    return { status: 202 };
  });
});
afterAll(async () => {
  await receiver?.close();
});

const toLoopback: Resolver = async () => [{ address: '127.0.0.1', family: 4 }];
const options = { resolve: toLoopback, allowPrivate: true, timeoutMs: 5000 };
const headers = { 'webhook-id': 'msg_1', 'webhook-timestamp': '1', 'webhook-signature': 'v1,x' };

describe('postWebhook', () => {
  it('connects to the resolved address, keeps the name in Host, and sends body and headers', async () => {
    const url = `http://hooks.example.test:${receiver.port}/ok`;
    expect(await postWebhook(url, '{"a":1}', headers, options)).toEqual({
      kind: 'response',
      status: 202,
      retryAfterMs: undefined,
    });
    const got = receiver.at('/ok')[0]!;
    expect(got.headers.host).toBe(`hooks.example.test:${receiver.port}`);
    expect(got.headers['webhook-id']).toBe('msg_1');
    expect(got.headers['content-type']).toBe('application/json');
    expect(got.body).toBe('{"a":1}');
  });

  it("reads the receiver's Retry-After", async () => {
    const result = await postWebhook(receiver.url('/busy'), '{}', headers, options);
    expect(result).toEqual({ kind: 'response', status: 429, retryAfterMs: 7000 });
  });

  it('a receiver that does not answer in time is a failed attempt', async () => {
    const result = await postWebhook(receiver.url('/slow'), '{}', headers, {
      ...options,
      timeoutMs: 200,
    });
    expect(result).toEqual({ kind: 'error', message: 'timed out after 200 ms' });
  });

  it('a lookup that never answers is bounded by the same timeout', async () => {
    const result = await postWebhook('https://stuck.example.test/x', '{}', headers, {
      ...options,
      timeoutMs: 200,
      resolve: () => new Promise(() => {}),
    });
    expect(result).toEqual({ kind: 'error', message: 'timed out after 200 ms' });
  });

  it('a refused connection and a failed lookup are failed attempts', async () => {
    const closed = await startWebhookReceiver(() => ({ status: 200 }));
    await closed.close();
    const refused = await postWebhook(closed.url('/x'), '{}', headers, options);
    expect(refused).toMatchObject({
      kind: 'error',
      message: expect.stringMatching(/ECONNREFUSED/),
    });
    const noDns = await postWebhook('https://nowhere.example.test/x', '{}', headers, {
      ...options,
      resolve: async () => {
        throw new Error('ENOTFOUND');
      },
    });
    expect(noDns).toEqual({
      kind: 'error',
      message: 'could not resolve nowhere.example.test: ENOTFOUND',
    });
  });

  it('refuses an inward address unless private targets are allowed, without connecting', async () => {
    const url = `http://hooks.example.test:${receiver.port}/never`;
    const result = await postWebhook(url, '{}', headers, { ...options, allowPrivate: false });
    expect(result).toEqual({
      kind: 'refused',
      message: 'hooks.example.test resolves to 127.0.0.1, which is not a public address',
    });
    // One public and one private address: still refused (the socket could pick either).
    const mixed = await postWebhook(url, '{}', headers, {
      ...options,
      allowPrivate: false,
      resolve: async () => [
        { address: '93.184.215.14', family: 4 },
        { address: '10.0.0.1', family: 4 },
      ],
    });
    expect(mixed.kind).toBe('refused');
    expect(receiver.at('/never')).toEqual([]);
  });
});

describe('webhookRetryDelayMs', () => {
  const config = { webhookRetryBaseMs: 1000, webhookRetryMaxMs: 60_000 };
  const failed = (retryAfterMs?: number) =>
    ({ kind: 'response', status: 503, retryAfterMs }) as const;

  it('doubles from the base, with jitter, up to the maximum', () => {
    expect(webhookRetryDelayMs(1, failed(), config)).toBeGreaterThanOrEqual(800);
    expect(webhookRetryDelayMs(1, failed(), config)).toBeLessThanOrEqual(1200);
    expect(webhookRetryDelayMs(4, failed(), config)).toBeGreaterThanOrEqual(6400);
    expect(webhookRetryDelayMs(30, failed(), config)).toBeLessThanOrEqual(60_000);
  });

  it("waits at least the receiver's Retry-After, but never past the maximum", () => {
    expect(webhookRetryDelayMs(1, failed(30_000), config)).toBe(30_000);
    expect(webhookRetryDelayMs(1, failed(86_400_000), config)).toBe(60_000);
  });
});
