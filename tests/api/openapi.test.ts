// GET /openapi.json and /docs: the document is valid OpenAPI 3.1 (by an
// independent validator), names every route the app serves, its examples are
// accepted by the routes, and real answers validate against the schemas it
// documents (ajv, JSON Schema 2020-12). /docs loads nothing from the internet.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsPlugin from 'ajv-formats';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';
import { startTestApi } from '../helpers/api-harness.ts';
import { testConfig } from '../helpers/test-config.ts';

type Json = Record<string, unknown>;
interface Operation {
  operationId: string;
  parameters?: Array<{ in: string; name: string; schema?: { examples?: unknown[] } }>;
  requestBody?: { content: Record<string, { examples?: Record<string, { value: unknown }> }> };
  responses: Record<string, { content?: Record<string, { schema?: Json }> }>;
  security?: unknown[];
}
interface Document {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: Json;
  security?: unknown[];
}

// ajv-formats is CommonJS: its default export arrives as the module object.
const addFormats = ((addFormatsPlugin as unknown as { default?: unknown }).default ??
  addFormatsPlugin) as unknown as (ajv: Ajv2020) => void;

let tdb: TestDatabase;
let api: Awaited<ReturnType<typeof startTestApi>>;
let doc: Document;
let ajv: Ajv2020;

beforeAll(async () => {
  tdb = await createTestDatabase();
  api = await startTestApi(tdb, testConfig());
  const res = await api.get('/openapi.json');
  expect(res.status).toBe(200);
  doc = (await res.json()) as Document;
  // The whole document is one schema resource, so `#/components/schemas/Task` resolves.
  ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addSchema(doc, 'openapi.json');
});
afterAll(async () => {
  await api?.stop();
  await tdb?.drop();
});

/** JSON Pointer escaping of one path segment. */
const pointer = (s: string) => s.replaceAll('~', '~0').replaceAll('/', '~1');

/** Fails with ajv's errors unless `body` fits what `op` documents for `status`. */
function expectDocumented(path: string, method: string, status: number, body: unknown) {
  const response = doc.paths[path]?.[method]?.responses[String(status)];
  expect(response, `${method} ${path} documents ${status}`).toBeDefined();
  expect(response!.content?.['application/json']?.schema).toBeDefined();
  const ref =
    `openapi.json#/paths/${pointer(path)}/${method}/responses/${status}` +
    `/content/application~1json/schema`;
  const validate = ajv.getSchema(ref);
  expect(validate, ref).toBeDefined();
  const ok = validate!(body);
  expect(ok, `${method} ${path} ${status}: ${JSON.stringify(validate!.errors)}`).toBe(true);
}

const operations = () =>
  Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]) => ({ path, method, op })),
  );

async function submitted(): Promise<string> {
  const res = await api.post('/v1/tasks', { input: { prompt: 'openapi fixture' } });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

/** A finished task (so a documented `wait` answers at once), with a step log. */
async function finishedTask(): Promise<string> {
  const id = await submitted();
  expect((await api.app.request(`/v1/tasks/${id}/cancel`, { method: 'POST' })).status).toBe(200);
  return id;
}

describe('GET /openapi.json', () => {
  it('is valid OpenAPI 3.1 by an independent validator', async () => {
    expect(doc.openapi).toMatch(/^3\.1\./);
    const validator = new Validator();
    const result = await validator.validate(doc as unknown as Json);
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
  });

  it('documents every route the app serves, and only those', () => {
    const served = new Set(
      api.app.routes
        .filter((r) => r.method !== 'ALL' && !r.path.startsWith('/docs/assets/'))
        .map((r) => `${r.method} ${r.path.replace(/:(\w+)/g, '{$1}')}`),
    );
    const documented = new Set(operations().map((o) => `${o.method.toUpperCase()} ${o.path}`));
    expect([...documented].sort()).toEqual([...served].sort());
    expect(documented).toContain('POST /v1/tasks');
    expect(documented).toContain('GET /v1/tasks/{id}/events');
    expect(documented).toContain('GET /openapi.json');
  });

  it('documents the error shape for every route under /v1', () => {
    for (const { path, method, op } of operations()) {
      if (!path.startsWith('/v1/')) continue;
      const statuses = Object.keys(op.responses).filter((s) => Number(s) >= 400);
      expect(statuses.length, `${method} ${path}`).toBeGreaterThan(2);
      for (const status of statuses) {
        expect(op.responses[status]!.content!['application/json']!.schema).toEqual({
          $ref: '#/components/schemas/Error',
        });
      }
    }
  });

  it('takes its request schemas from the validating valibot schemas', () => {
    const submit = doc.paths['/v1/tasks']!.post!.requestBody!.content['application/json'] as Json;
    // Strict like SubmitBody, with its bounds and defaults.
    expect(submit.schema).toMatchObject({
      type: 'object',
      additionalProperties: false,
      required: ['input'],
      properties: {
        priority: { type: 'integer', minimum: -100, maximum: 100, default: 0 },
        config: { additionalProperties: false },
      },
    });
    const list = doc.paths['/v1/tasks']!.get!.parameters!;
    expect(list.map((p) => p.name)).toEqual([
      'status',
      'type',
      'provider',
      'model',
      'q',
      'created_after',
      'created_before',
      'view',
      'limit',
      'cursor',
    ]);
  });

  it('says every /v1 route needs the bearer token only when tokens are configured', async () => {
    expect(doc.security).toBeUndefined();
    const secured = await startTestApi(
      tdb,
      testConfig({ AGENTQ_API_TOKENS: 'openapi-test-token' }),
    );
    try {
      // The document and the page are public; /v1 is not.
      const res = await secured.get('/openapi.json');
      expect(res.status).toBe(200);
      const securedDoc = (await res.json()) as Document;
      expect((await new Validator().validate(securedDoc as unknown as Json)).valid).toBe(true);
      expect(securedDoc.components.securitySchemes).toEqual({
        bearerAuth: expect.objectContaining({ type: 'http', scheme: 'bearer' }),
      });
      expect(securedDoc.security).toEqual([{ bearerAuth: [] }]);
      expect(securedDoc.paths['/healthz']!.get!.security).toEqual([]);
      expect(securedDoc.paths['/v1/tasks']!.post!.security).toBeUndefined();
      expect(securedDoc.paths['/v1/tasks']!.post!.responses['401']).toBeDefined();
      expect((await secured.get('/docs')).status).toBe(200);
      expect((await secured.get('/v1/tasks')).status).toBe(401);
    } finally {
      await secured.stop();
    }
  });
});

describe('documented examples and answers', () => {
  it('every documented example request is accepted and answered as documented', async () => {
    let sent = 0;
    for (const { path, method, op } of operations()) {
      if (!path.startsWith('/v1/')) continue;
      // A stream-only route (GET /v1/changes) has no JSON answer to check; its own test reads it.
      if (!op.responses['200']?.content?.['application/json'] && !op.responses['201']) continue;
      // Query parameters: the first documented example of each.
      const query = new URLSearchParams();
      for (const p of op.parameters ?? []) {
        const example = p.schema?.examples?.[0];
        if (p.in === 'query' && example !== undefined) query.set(p.name, String(example));
      }
      const bodies = Object.entries(
        op.requestBody?.content['application/json']?.examples ?? { none: undefined },
      );
      for (const [name, example] of bodies) {
        const id = method === 'post' ? await submitted() : await finishedTask();
        const url = path.replace('{id}', id) + (query.size > 0 ? `?${query}` : '');
        const res = await api.app.request(
          url,
          example === undefined
            ? { method: method.toUpperCase() }
            : {
                method: method.toUpperCase(),
                headers: { 'content-type': 'application/json' },
                body: JSON.stringify(example.value),
              },
        );
        const body = (await res.json()) as unknown;
        expect(res.status, `${method} ${url} (${name}): ${JSON.stringify(body)}`).toBeLessThan(300);
        expect(res.status).toBeGreaterThanOrEqual(200);
        expectDocumented(path, method, res.status, body);
        sent++;
      }
    }
    // submit ×2, batch, list, read, cancel, events
    expect(sent).toBeGreaterThanOrEqual(7);
  });

  it('a task in every documented field validates: running, with a cancel request', async () => {
    const id = await submitted();
    await tdb.db
      .updateTable('agentq.tasks')
      .set({ status: 'running', started_at: new Date(), attempts: 1, worker_id: 'w-openapi' })
      .where('id', '=', id)
      .execute();
    const res = await api.app.request(`/v1/tasks/${id}/cancel`, { method: 'POST' });
    expect(res.status).toBe(202);
    expectDocumented('/v1/tasks/{id}/cancel', 'post', 202, await res.json());
  });

  it('replays answer as documented', async () => {
    const body = { input: { prompt: 'replay me' }, idempotency_key: 'openapi-replay' };
    expect((await api.post('/v1/tasks', body)).status).toBe(201);
    const again = await api.post('/v1/tasks', body);
    expect(again.status).toBe(200);
    expectDocumented('/v1/tasks', 'post', 200, await again.json());
    const batch = await api.post('/v1/tasks/batch', { tasks: [body] });
    expect(batch.status).toBe(200);
    expectDocumented('/v1/tasks/batch', 'post', 200, await batch.json());
  });

  it('a summary page answers as documented', async () => {
    await api.post('/v1/tasks', { input: { prompt: 'long '.repeat(100) } });
    const res = await api.get('/v1/tasks?view=summary&limit=5');
    const page = (await res.json()) as { data: Array<{ input_truncated: boolean }> };
    expect(page.data.some((t) => t.input_truncated)).toBe(true);
    expectDocumented('/v1/tasks', 'get', 200, page);
  });

  it('the probes answer as documented', async () => {
    const health = await api.get('/healthz');
    expectDocumented('/healthz', 'get', 200, await health.json());
    const ready = await api.get('/readyz');
    expect(ready.status).toBe(200);
    expectDocumented('/readyz', 'get', 200, await ready.json());
  });

  it('errors answer with the documented error shape', async () => {
    const cases: Array<[string, string, RequestInit, number]> = [
      ['/v1/tasks/{id}', '/v1/tasks/not-a-uuid', {}, 400],
      ['/v1/tasks/{id}', '/v1/tasks/00000000-0000-7000-8000-000000000000', {}, 404],
      ['/v1/tasks', '/v1/tasks?limit=0', {}, 400],
      ['/v1/tasks/{id}/events', '/v1/tasks/not-a-uuid/events', {}, 400],
      [
        '/v1/tasks',
        '/v1/tasks',
        { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"x":1}' },
        400,
      ],
      ['/v1/tasks', '/v1/tasks', { method: 'POST', body: 'prompt=hi' }, 415],
    ];
    for (const [path, url, init, status] of cases) {
      const res = await api.app.request(url, init);
      expect(res.status, url).toBe(status);
      const method = (init.method ?? 'GET').toLowerCase();
      expectDocumented(path, method, status, await res.json());
    }
    const finished = await finishedTask();
    const again = await api.app.request(`/v1/tasks/${finished}/cancel`, { method: 'POST' });
    expect(again.status).toBe(200); // cancelling a cancelled task answers it again
  });

  it('a streamed step log carries documented events', async () => {
    const id = await finishedTask();
    const res = await api.get(`/v1/tasks/${id}/events`, { accept: 'text/event-stream' });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const text = await res.text(); // the stream ends after the terminal status event
    const events = text
      .split('\n')
      .filter((line) => line.startsWith('data: '))
      .map((line) => JSON.parse(line.slice(6)) as unknown);
    expect(events.length).toBeGreaterThan(0);
    const validate = ajv.getSchema('openapi.json#/components/schemas/Event')!;
    for (const event of events) expect(validate(event), JSON.stringify(validate.errors)).toBe(true);
  });
});

describe('GET /docs', () => {
  it('is an HTML page that loads its files from this app, never from the internet', async () => {
    const res = await api.get('/docs');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await res.text();
    expect(html).not.toMatch(/https?:\/\//i);
    expect(html).not.toMatch(/(src|href)\s*=\s*["']\/\//i); // protocol-relative
    expect(html).toContain("url: '/openapi.json'");
    const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(assets.some((a) => a.endsWith('.js'))).toBe(true);
    expect(assets.some((a) => a.endsWith('.css'))).toBe(true);
    for (const asset of assets) {
      expect(asset.startsWith('/docs/assets/')).toBe(true);
      const file = await api.get(asset);
      expect(file.status, asset).toBe(200);
      expect(file.headers.get('content-type')).toMatch(
        asset.endsWith('.js') ? /javascript/ : /css/,
      );
      expect((await file.arrayBuffer()).byteLength).toBeGreaterThan(10_000);
    }
  });

  it('serves no other file of the package', async () => {
    const res = await api.get('/docs/assets/swagger-ui-dist/package.json');
    expect(res.status).toBe(404);
    const traversal = await api.get('/docs/assets/swagger-ui-dist/..%2F..%2Fpackage.json');
    expect(traversal.status).toBe(404);
  });
});
