// Item 6: an open API (no tokens) answers only to loopback Host names on its
// own port and refuses foreign origins, so neither DNS rebinding nor a
// cross-site form can reach it; a form-encoded POST never cancels or submits.
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { startApi } from '../../api/server.ts';
import { errorOf, startTestApi } from '../helpers/api-harness.ts';
import { testConfig } from '../helpers/test-config.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';

let tdb: TestDatabase;
let api: Awaited<ReturnType<typeof startTestApi>>;
beforeAll(async () => {
  tdb = await createTestDatabase();
  api = await startTestApi(tdb, testConfig(), { listenPort: () => 8080 });
});
afterAll(async () => {
  await api?.stop();
  await tdb?.drop();
});

const taskCount = async () =>
  Number(
    (
      await tdb.db
        .selectFrom('agentq.tasks')
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirstOrThrow()
    ).n,
  );

async function submit(origin = 'http://localhost:8080'): Promise<{ id: string; status: string }> {
  const res = await api.app.request('http://localhost:8080/v1/tasks', {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin },
    body: JSON.stringify({ input: { prompt: 'hi' } }),
  });
  expect(res.status).toBe(201);
  return (await res.json()) as { id: string; status: string };
}

describe('Host', () => {
  it.each([
    'http://localhost:8080',
    'http://LOCALHOST:8080',
    'http://127.0.0.1:8080',
    'http://127.0.0.2:8080',
    'http://[::1]:8080',
  ])('answers %s', async (base) => {
    expect((await api.app.request(`${base}/v1/tasks`)).status).toBe(200);
  });

  it.each([
    'http://attacker.example:8080',
    'http://127.attacker.example:8080',
    'http://127.0.0.1.nip.io:8080',
    'http://localhost.attacker.example:8080',
    'http://10.0.0.5:8080',
    'http://localhost:9999',
    'http://localhost',
  ])('refuses %s with 403 forbidden_host, on /v1 and on health routes', async (base) => {
    for (const path of ['/v1/tasks', '/healthz', '/readyz']) {
      const res = await api.app.request(`${base}${path}`);
      expect(res.status).toBe(403);
      expect((await errorOf(res)).code).toBe('forbidden_host');
    }
  });

  it('refuses a rebound Host on submit and cancel: nothing is created or cancelled', async () => {
    const task = await submit();
    const before = await taskCount();
    const post = await api.app.request('http://attacker.example:8080/v1/tasks', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ input: { prompt: 'rebound' } }),
    });
    expect(post.status).toBe(403);
    const cancel = await api.app.request(
      `http://attacker.example:8080/v1/tasks/${task.id}/cancel`,
      { method: 'POST' },
    );
    expect(cancel.status).toBe(403);
    expect(await taskCount()).toBe(before);
    const now = await api.app.request(`http://localhost:8080/v1/tasks/${task.id}`);
    expect(((await now.json()) as { status: string }).status).toBe('queued');
  });
});

describe('Origin and cross-site requests', () => {
  it.each([
    'http://attacker.example',
    'https://attacker.example',
    'http://localhost:3000',
    'http://127.attacker.example:8080',
    'null',
    'file://',
  ])('refuses Origin %s with 403 forbidden_origin', async (origin) => {
    const before = await taskCount();
    const res = await api.app.request('http://localhost:8080/v1/tasks', {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin },
      body: JSON.stringify({ input: { prompt: 'cross-site' } }),
    });
    expect(res.status).toBe(403);
    expect((await errorOf(res)).code).toBe('forbidden_origin');
    expect(await taskCount()).toBe(before);
  });

  it('accepts a loopback Origin on the same port, and refuses Sec-Fetch-Site: cross-site', async () => {
    await submit('http://127.0.0.1:8080');
    const res = await api.app.request('http://localhost:8080/v1/tasks', {
      headers: { 'sec-fetch-site': 'cross-site' },
    });
    expect(res.status).toBe(403);
    expect((await errorOf(res)).code).toBe('forbidden_origin');
  });

  it.each(['application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'text/plain'])(
    'a %s POST never cancels, with or without a foreign Origin',
    async (type) => {
      const task = await submit();
      const cancelAs = (headers: Record<string, string>) =>
        api.app.request(`http://localhost:8080/v1/tasks/${task.id}/cancel`, {
          method: 'POST',
          headers: { 'content-type': type, ...headers },
          body: type.startsWith('multipart') ? '--x--\r\n' : 'a=1',
        });
      const crossSite = await cancelAs({ origin: 'http://attacker.example' });
      expect(crossSite.status).toBe(403);
      // No Origin at all (an old browser, a plugin): the content type alone refuses it.
      const noOrigin = await cancelAs({});
      expect(noOrigin.status).toBe(415);
      expect((await errorOf(noOrigin)).code).toBe('unsupported_media_type');
      const submitted = await api.app.request('http://localhost:8080/v1/tasks', {
        method: 'POST',
        headers: { 'content-type': type },
        body: 'input=x',
      });
      expect(submitted.status).toBe(415);
      const now = await api.app.request(`http://localhost:8080/v1/tasks/${task.id}`);
      expect(((await now.json()) as { status: string }).status).toBe('queued');
      // The documented way still works: no body, or a JSON one.
      const cancel = await api.app.request(`http://localhost:8080/v1/tasks/${task.id}/cancel`, {
        method: 'POST',
      });
      expect(cancel.status).toBe(200);
    },
  );

  it('does not apply with tokens: a browser cannot attach the bearer token by itself', async () => {
    const secured = await startTestApi(tdb, testConfig({ AGENTQ_API_TOKENS: 'token-one-123' }), {
      listenPort: () => 8080,
    });
    try {
      const res = await secured.app.request('http://api.example.com/v1/tasks', {
        headers: { authorization: 'Bearer token-one-123', origin: 'https://app.example.com' },
      });
      expect(res.status).toBe(200);
    } finally {
      await secured.stop();
    }
  });
});

describe('over a real socket', () => {
  it('reads the Host header the client sent, on the port the server bound', async () => {
    const running = await startApi({
      config: testConfig({ PORT: '0' }),
      pool: tdb.pool,
      connectionString: tdb.url,
      logger: pino({ level: 'silent' }),
    });
    try {
      const port = Number(new URL(running.url).port);
      const get = (host: string) =>
        new Promise<{ status: number; body: string }>((resolve, reject) => {
          const req = request(
            { host: '127.0.0.1', port, path: '/v1/tasks', headers: { host } },
            (res) => {
              let body = '';
              res.on('data', (chunk: Buffer) => (body += chunk.toString()));
              res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
            },
          );
          req.on('error', reject);
          req.end();
        });
      expect((await get(`127.0.0.1:${port}`)).status).toBe(200);
      expect((await get(`localhost:${port}`)).status).toBe(200);
      const rebound = await get(`attacker.example:${port}`);
      expect(rebound.status).toBe(403);
      expect(rebound.body).toContain('forbidden_host');
      expect((await get(`localhost:${port + 1}`)).status).toBe(403);
    } finally {
      await running.stop();
    }
  });
});
