// Read-only tokens (AGENTQ_API_READ_TOKENS): every read under /v1 works, every
// write (each non-GET route the OpenAPI document lists) is a 403 `forbidden`
// that changes nothing; full tokens still do everything; GET /v1/me tells
// which access a request has.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config.ts';
import { errorOf, startTestApi } from '../helpers/api-harness.ts';
import { testConfig } from '../helpers/test-config.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';

const FULL = 'full-token-7f3a91';
const READ = 'read-token-c42e08';
const asFull = { authorization: `Bearer ${FULL}` };
const asReader = { authorization: `Bearer ${READ}` };

let tdb: TestDatabase;
let api: Awaited<ReturnType<typeof startTestApi>>;
beforeAll(async () => {
  tdb = await createTestDatabase();
  api = await startTestApi(
    tdb,
    testConfig({ AGENTQ_API_TOKENS: FULL, AGENTQ_API_READ_TOKENS: `other-read-1234,${READ}` }),
  );
});
afterAll(async () => {
  await api?.stop();
  await tdb?.drop();
});

async function submit(): Promise<string> {
  const res = await api.post('/v1/tasks', { input: { prompt: 'read-only fixture' } }, asFull);
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

const taskCount = async () =>
  (
    await tdb.db
      .selectFrom('agentq.tasks')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow()
  ).n;

describe('AGENTQ_API_READ_TOKENS', () => {
  it('is refused without AGENTQ_API_TOKENS, naming both, and obeys the token rules', () => {
    const load = (env: Record<string, string>) => () =>
      loadConfig({ AGENTQ_DEFAULT_PROVIDER: 'offline', ...env });
    expect(load({ AGENTQ_API_READ_TOKENS: READ })).toThrow(
      /^invalid AGENTQ_API_READ_TOKENS: .*AGENTQ_API_TOKENS/,
    );
    expect(load({ AGENTQ_API_TOKENS: FULL, AGENTQ_API_READ_TOKENS: 'changeme' })).toThrow(
      'invalid AGENTQ_API_READ_TOKENS: "changeme" is a placeholder',
    );
    expect(load({ AGENTQ_API_TOKENS: FULL, AGENTQ_API_READ_TOKENS: 'short1' })).toThrow(
      'invalid AGENTQ_API_READ_TOKENS: each token must be at least 8 characters',
    );
    expect(
      load({ AGENTQ_API_TOKENS: FULL, AGENTQ_API_READ_TOKENS: ` ${READ} ,` })().apiReadTokens,
    ).toEqual([READ]);
  });

  it('lets a read-only token read, long-poll and stream', async () => {
    const id = await submit();
    expect((await api.post(`/v1/tasks/${id}/cancel`, {}, asFull)).status).toBe(200);
    for (const path of [
      '/v1/tasks',
      `/v1/tasks/${id}`,
      `/v1/tasks/${id}?wait=1`,
      `/v1/tasks/${id}/events`,
    ]) {
      const res = await api.get(path, asReader);
      expect(res.status, path).toBe(200);
    }
    const stream = await api.get(`/v1/tasks/${id}/events`, {
      ...asReader,
      accept: 'text/event-stream',
    });
    expect(stream.headers.get('content-type')).toContain('text/event-stream');
    expect(await stream.text()).toContain('"to":"cancelled"');
    expect((await api.get('/metrics', asReader)).status).toBe(200);
  });

  it('answers every write with 403 forbidden and changes nothing', async () => {
    const doc = (await (await api.get('/openapi.json')).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    const writes = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops)
        .filter((m) => m !== 'get' && path.startsWith('/v1/'))
        .map((method) => ({ path, method: method.toUpperCase() })),
    );
    expect(writes.map((w) => `${w.method} ${w.path}`)).toContain('POST /v1/tasks');
    expect(writes.length).toBeGreaterThanOrEqual(3);
    const id = await submit();
    const before = await taskCount();
    for (const { path, method } of writes) {
      const res = await api.app.request(path.replace('{id}', id), {
        method,
        headers: { ...asReader, 'content-type': 'application/json' },
        body: JSON.stringify({ input: { prompt: 'x' }, tasks: [], filter: {} }),
      });
      expect(res.status, `${method} ${path}`).toBe(403);
      const error = await errorOf(res);
      expect(error.code).toBe('forbidden');
      expect(error.message).toMatch(/^this token is read-only/);
    }
    // Unknown routes and methods are refused too, before routing.
    expect(
      (await api.app.request('/v1/tasks', { method: 'DELETE', headers: asReader })).status,
    ).toBe(403);
    expect(await taskCount()).toBe(before);
    const task = (await (await api.get(`/v1/tasks/${id}`, asReader)).json()) as { status: string };
    expect(task.status).toBe('queued');
  });

  it('leaves full tokens able to write, and wrong tokens unauthorized', async () => {
    const id = await submit();
    expect((await api.post(`/v1/tasks/${id}/cancel`, {}, asFull)).status).toBe(200);
    const wrong = await api.post(
      '/v1/tasks',
      { input: { prompt: 'x' } },
      {
        authorization: 'Bearer not-a-token-at-all',
      },
    );
    expect(wrong.status).toBe(401);
    expect((await errorOf(wrong)).code).toBe('unauthorized');
    expect((await api.get('/v1/tasks')).status).toBe(401);
  });
});

describe('GET /v1/me', () => {
  it('says write or read with tokens, and write without auth on an open API', async () => {
    expect(await (await api.get('/v1/me', asFull)).json()).toEqual({ access: 'write', auth: true });
    expect(await (await api.get('/v1/me', asReader)).json()).toEqual({
      access: 'read',
      auth: true,
    });
    expect((await api.get('/v1/me')).status).toBe(401);
    const open = await startTestApi(tdb, testConfig());
    try {
      expect(await (await open.get('/v1/me')).json()).toEqual({ access: 'write', auth: false });
    } finally {
      await open.stop();
    }
  });
});
