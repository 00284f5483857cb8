// Hostile and edge-case input on every route: body limits, content types, field limits, prototype keys, odd ids.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';
import { errorOf, startTestApi } from '../helpers/api-harness.ts';

let tdb: TestDatabase;
// The default config: a 1 MiB body limit.
let api: Awaited<ReturnType<typeof startTestApi>>;
beforeAll(async () => {
  tdb = await createTestDatabase();
  api = await startTestApi(tdb);
});
afterAll(async () => {
  await api?.stop();
  await tdb?.drop();
});

interface TaskJson {
  id: string;
  status: string;
  input: { prompt: string };
  config: { model: string; system_prompt: string };
  priority: number;
  metadata: Record<string, unknown>;
  idempotency_key: string | null;
  run_at: string;
}

const SQL_TEXT = "'; DROP TABLE agentq.tasks; --";

/** POSTs raw text to /v1/tasks with the given headers. */
function postRaw(
  body: string,
  headers: Record<string, string> = { 'content-type': 'application/json' },
) {
  return api.app.request('/v1/tasks', { method: 'POST', headers, body });
}

async function created(res: Response): Promise<TaskJson> {
  if (res.status !== 201) throw new Error(`expected 201, got ${res.status}: ${await res.text()}`);
  return (await res.json()) as TaskJson;
}

async function expect400(res: Response, message?: string, code = 'invalid_request') {
  expect(res.status).toBe(400);
  const error = await errorOf(res);
  expect(error.code).toBe(code);
  if (message !== undefined) expect(error.message).toContain(message);
}

async function readBack(id: string): Promise<TaskJson> {
  const res = await api.get(`/v1/tasks/${id}`);
  expect(res.status).toBe(200);
  return (await res.json()) as TaskJson;
}

describe('body size', () => {
  it('refuses a 2 MB body with 413 under the default 1 MiB limit', async () => {
    const res = await api.post('/v1/tasks', { input: { prompt: 'x'.repeat(2 * 1000 * 1000) } });
    expect(res.status).toBe(413);
    expect((await errorOf(res)).code).toBe('payload_too_large');
  });

  it('refuses a 2 MB streamed body without a Content-Length with 413', async () => {
    const chunk = new TextEncoder().encode('x'.repeat(64 * 1024));
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent === 0) controller.enqueue(new TextEncoder().encode('{"input":{"prompt":"'));
        if (sent >= 2 * 1000 * 1000) return controller.close();
        controller.enqueue(chunk);
        sent += chunk.length;
      },
    });
    const res = await api.app.request('/v1/tasks', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      duplex: 'half',
    } as RequestInit);
    expect(res.status).toBe(413);
    expect((await errorOf(res)).code).toBe('payload_too_large');
  });

  it('refuses a Content-Length over the limit with 413 without reading the body', async () => {
    let pulls = 0;
    const body = new ReadableStream<Uint8Array>(
      {
        pull(controller) {
          pulls++;
          controller.enqueue(new TextEncoder().encode('{}'));
          controller.close();
        },
      },
      { highWaterMark: 0 },
    );
    const res = await api.app.request('/v1/tasks', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': String(50 * 1024 * 1024) },
      body,
      duplex: 'half',
    } as RequestInit);
    expect(res.status).toBe(413);
    expect((await errorOf(res)).code).toBe('payload_too_large');
    expect(pulls).toBe(0);
  });

  it('accepts a large body under the limit: a 100,000-character prompt and 16,000 bytes of metadata', async () => {
    const task = await created(
      await api.post('/v1/tasks', {
        input: { prompt: 'y'.repeat(100_000) },
        metadata: { pad: 'z'.repeat(16_000) },
      }),
    );
    expect(task.input.prompt).toHaveLength(100_000);
  });
});

describe('content types', () => {
  const body = JSON.stringify({ input: { prompt: 'typed' } });

  it.each([
    'application/json; charset=utf-8',
    'application/json;charset=UTF-8',
    'APPLICATION/JSON',
    'application/json ; charset=utf-8',
    'application/merge-patch+json',
    'application/vnd.agentq.task+json; version=1',
  ])('accepts Content-Type %s', async (type) => {
    const task = await created(await postRaw(body, { 'content-type': type }));
    expect(task.input.prompt).toBe('typed');
  });

  it.each([
    ['text/plain'],
    ['text/json'],
    ['application/jsonp'],
    ['application/json-seq'],
    ['application/x-www-form-urlencoded'],
    ['multipart/form-data; boundary=xyz'],
    ['json'],
    [''],
  ])('refuses Content-Type %j with 415 unsupported_media_type', async (type) => {
    const res = await postRaw(body, type === '' ? {} : { 'content-type': type });
    expect(res.status).toBe(415);
    expect((await errorOf(res)).code).toBe('unsupported_media_type');
  });

  it('refuses a body with no Content-Type at all with 415', async () => {
    const res = await api.app.request('/v1/tasks', {
      method: 'POST',
      body: new TextEncoder().encode(body),
    });
    expect(res.status).toBe(415);
    expect((await errorOf(res)).code).toBe('unsupported_media_type');
  });

  it('ignores a UTF-8 byte-order mark and reads invalid UTF-8 as U+FFFD, never a 500', async () => {
    const bom = await created(await postRaw(`\uFEFF${body}`));
    expect(bom.input.prompt).toBe('typed');
    const bytes = new Uint8Array([
      ...new TextEncoder().encode('{"input":{"prompt":"'),
      0xff,
      0xfe,
      0xc0,
      0xaf,
      ...new TextEncoder().encode('"}}'),
    ]);
    const res = await api.app.request('/v1/tasks', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: bytes,
    });
    expect((await created(res)).input.prompt).toBe('\uFFFD\uFFFD\uFFFD\uFFFD');
  });
});

describe('field limits', () => {
  it('accepts a prompt of exactly 100,000 characters and refuses 100,001', async () => {
    const ok = await created(
      await api.post('/v1/tasks', { input: { prompt: 'p'.repeat(100_000) } }),
    );
    expect(ok.input.prompt).toBe('p'.repeat(100_000));
    await expect400(
      await api.post('/v1/tasks', { input: { prompt: 'p'.repeat(100_001) } }),
      'input.prompt: must be at most 100000 characters',
    );
  });

  it('measures the prompt after trimming whitespace', async () => {
    const ok = await created(
      await api.post('/v1/tasks', { input: { prompt: `  \n\t${'q'.repeat(100_000)}\u3000 ` } }),
    );
    expect(ok.input.prompt).toBe('q'.repeat(100_000));
  });

  it('refuses metadata with 10,000 keys by the 16 KiB limit', async () => {
    const metadata = Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`k${i}`, i]));
    await expect400(
      await api.post('/v1/tasks', { input: { prompt: 'x' }, metadata }),
      'metadata: must be at most 16384 bytes as JSON',
    );
  });

  it('measures the metadata limit in UTF-8 bytes, not UTF-16 units', async () => {
    // 6,000 CJK characters: 6,000 UTF-16 units but 18,000 UTF-8 bytes.
    await expect400(
      await api.post('/v1/tasks', {
        input: { prompt: 'x' },
        metadata: { text: '漢'.repeat(6_000) },
      }),
      'metadata: must be at most 16384 bytes',
    );
    const ok = await created(
      await api.post('/v1/tasks', {
        input: { prompt: 'x' },
        metadata: { text: '漢'.repeat(5_000) },
      }),
    );
    expect(ok.metadata).toEqual({ text: '漢'.repeat(5_000) });
  });

  it('refuses timeout_s 0 and 3601, accepts 1 and 3600', async () => {
    await expect400(
      await api.post('/v1/tasks', { input: { prompt: 'x' }, timeout_s: 0 }),
      'timeout_s: must be at least 1',
    );
    await expect400(
      await api.post('/v1/tasks', { input: { prompt: 'x' }, timeout_s: 3601 }),
      'timeout_s: must be at most 3600',
    );
    await created(await api.post('/v1/tasks', { input: { prompt: 'x' }, timeout_s: 1 }));
    await created(await api.post('/v1/tasks', { input: { prompt: 'x' }, timeout_s: 3600 }));
  });

  it('refuses an idempotency key of 201 characters in the body or the header, accepts 200', async () => {
    await expect400(
      await api.post('/v1/tasks', { input: { prompt: 'x' }, idempotency_key: 'k'.repeat(201) }),
      'idempotency_key: must be at most 200 characters',
    );
    await expect400(
      await api.post(
        '/v1/tasks',
        { input: { prompt: 'x' } },
        { 'idempotency-key': 'h'.repeat(201) },
      ),
      'Idempotency-Key must be 1 to 200 characters',
    );
    const task = await created(
      await api.post('/v1/tasks', { input: { prompt: 'x' }, idempotency_key: 'k'.repeat(200) }),
    );
    expect(task.idempotency_key).toBe('k'.repeat(200));
    await expect400(
      await api.post('/v1/tasks', { input: { prompt: 'x' }, idempotency_key: '' }),
      'idempotency_key: must not be empty',
    );
  });

  it('refuses an Idempotency-Key header that differs from the body key, and creates nothing', async () => {
    const res = await api.post(
      '/v1/tasks',
      { input: { prompt: 'x' }, idempotency_key: 'body-key' },
      { 'idempotency-key': 'header-key' },
    );
    await expect400(res, 'Idempotency-Key header and idempotency_key differ');
    const n = await sql<{ n: number }>`
      SELECT count(*)::int AS n FROM agentq.tasks WHERE idempotency_key IN ('body-key', 'header-key')`.execute(
      tdb.db,
    );
    expect(n.rows[0]!.n).toBe(0);
    // The same key in both places is fine.
    await created(
      await api.post(
        '/v1/tasks',
        { input: { prompt: 'x' }, idempotency_key: 'same-key' },
        { 'idempotency-key': 'same-key' },
      ),
    );
  });

  it('answers 409 for the same idempotency key with a different run_at', async () => {
    const first = await created(
      await api.post('/v1/tasks', {
        input: { prompt: 'x' },
        run_at: '2030-01-01T00:00:00Z',
        idempotency_key: 'k-run-at',
      }),
    );
    const same = await api.post('/v1/tasks', {
      input: { prompt: 'x' },
      run_at: '2030-01-01T01:00:00+01:00',
      idempotency_key: 'k-run-at',
    });
    expect(same.status).toBe(200); // the same instant written another way
    expect(((await same.json()) as TaskJson).id).toBe(first.id);
    const other = await api.post('/v1/tasks', {
      input: { prompt: 'x' },
      run_at: '2031-06-01T00:00:00Z',
      idempotency_key: 'k-run-at',
    });
    expect(other.status).toBe(409);
    expect((await errorOf(other)).code).toBe('idempotency_conflict');
  });
});

describe('numbers and timestamps', () => {
  it.each([
    ['1e308', 'priority: must be at most 100'],
    ['-1e308', 'priority: must be at least -100'],
    ['1e400', 'priority: must be a whole number'], // JSON.parse gives Infinity
    ['100.5', 'priority: must be a whole number'],
    ['"5"', 'priority: expected number'],
    ['null', 'priority: expected number'],
    ['true', 'priority: expected number'],
    ['[5]', 'priority: expected number'],
  ])('refuses priority %s', async (raw, message) => {
    await expect400(await postRaw(`{"input":{"prompt":"x"},"priority":${raw}}`), message);
  });

  it.each([
    ['1.0', 1],
    ['-0', 0],
    ['1e2', 100],
    ['-100', -100],
    ['5.000000000000000001', 5], // rounds to 5 in a double
  ])('accepts priority %s as %d', async (raw, expected) => {
    const task = await created(await postRaw(`{"input":{"prompt":"x"},"priority":${raw}}`));
    expect(task.priority).toBe(expected);
    expect(Object.is(task.priority, -0)).toBe(false);
  });

  it.each([
    ['2030-01-01T00:00:00', 'run_at: must be an ISO-8601 timestamp with a time zone'],
    ['2030-01-01', 'run_at: must be an ISO-8601 timestamp'],
    ['2030-13-01T00:00:00Z', 'run_at: must be an ISO-8601 timestamp'],
    ['2030-01-01T24:00:00Z', 'run_at: must be an ISO-8601 timestamp'],
    ['2030-02-31T00:00:00Z', 'run_at: is not a real date'],
    ['2029-02-29T00:00:00Z', 'run_at: is not a real date'],
    ['1735689600', 'run_at: expected string'],
  ])('refuses run_at %s', async (runAt, message) => {
    const value = /^\d+$/.test(runAt) ? Number(runAt) : runAt;
    await expect400(
      await api.post('/v1/tasks', { input: { prompt: 'x' }, run_at: value }),
      message,
    );
  });

  it.each([
    ['2028-02-29T12:00:00Z', '2028-02-29T12:00:00.000Z'],
    ['2030-01-01 05:30:00+05:30', '2030-01-01T00:00:00.000Z'],
    ['2030-01-01T00:00:00.123456789Z', '2030-01-01T00:00:00.123Z'],
    ['2030-01-01T00:00:00-0800', '2030-01-01T08:00:00.000Z'],
    ['2030-01-01T00:00:00+05', '2029-12-31T19:00:00.000Z'],
    ['2030-01-01T00:00:00 +05:30', '2029-12-31T18:30:00.000Z'],
    ['0049-01-01 00:00:00Z', '0049-01-01T00:00:00.000Z'], // not 2049
    ['0031-12-31 23:59:59-00:05', '0032-01-01T00:04:59.000Z'],
  ])('accepts run_at %s as %s', async (runAt, iso) => {
    const task = await created(
      await api.post('/v1/tasks', { input: { prompt: 'x' }, run_at: runAt }),
    );
    expect(task.run_at).toBe(iso);
  });

  it.each([
    ['created_after=2030-02-31T00:00:00Z', 'created_after: is not a real date'],
    ['created_before=2030-04-31T00:00:00%2B05', 'created_before: is not a real date'],
    ['created_before=2030-01-01T00:00:00', 'created_before: must be an ISO-8601 timestamp'],
    ['created_after=', 'created_after: must be an ISO-8601 timestamp'],
  ])('refuses list filter %s with a 400, not a 500', async (query, message) => {
    await expect400(await api.get(`/v1/tasks?${query}`), message);
  });

  it.each(['2030-01-01T00:00:00%20%2B05:30', '2030-01-01T00:00:00%2B05', '2030-01-01%2000:00:00Z'])(
    'accepts list filter created_after=%s (forms Date alone cannot read)',
    async (value) => {
      expect((await api.get(`/v1/tasks?created_after=${value}`)).status).toBe(200);
    },
  );

  it('stores run_at at the edges of four-digit years', async () => {
    const early = await created(
      await api.post('/v1/tasks', { input: { prompt: 'x' }, run_at: '0001-01-01T00:00:00Z' }),
    );
    expect(early.run_at).toBe('0001-01-01T00:00:00.000Z');
    const yearZero = await created(
      await api.post('/v1/tasks', { input: { prompt: 'x' }, run_at: '0000-01-01T00:00:00Z' }),
    );
    expect(yearZero.run_at).toBe('0000-01-01T00:00:00.000Z'); // 1 BC to Postgres
    const late = await created(
      await api.post('/v1/tasks', { input: { prompt: 'x' }, run_at: '9999-12-31T23:59:59-23:59' }),
    );
    expect(late.run_at).toBe('+010000-01-01T23:58:59.000Z');
    const listed = await api.get(
      `/v1/tasks?created_after=${encodeURIComponent('0000-01-01T00:00:00Z')}&created_before=${encodeURIComponent('9999-12-31T23:59:59-23:59')}`,
    );
    expect(listed.status).toBe(200);
  });
});

describe('keys that look like JavaScript internals', () => {
  it('stores metadata keys __proto__, constructor and prototype as data, with no prototype pollution', async () => {
    const raw =
      '{"input":{"prompt":"proto"},"metadata":{"__proto__":{"polluted":"yes"},' +
      '"constructor":{"prototype":{"polluted":"yes"}},"prototype":{"polluted":"yes"},"toString":"nope"}}';
    const res = await postRaw(raw);
    const text = await res.text();
    expect(res.status, text).toBe(201);
    const task = JSON.parse(text) as TaskJson;
    for (const got of [task, await readBack(task.id)]) {
      const m = got.metadata;
      expect(Object.keys(m).sort()).toEqual(['__proto__', 'constructor', 'prototype', 'toString']);
      expect(Object.getPrototypeOf(m)).toBe(Object.prototype); // JSON.parse made __proto__ an own key
      expect(Object.getOwnPropertyDescriptor(m, '__proto__')?.value).toEqual({ polluted: 'yes' });
      expect(Object.getOwnPropertyDescriptor(m, 'constructor')?.value).toEqual({
        prototype: { polluted: 'yes' },
      });
      expect(m.toString).toBe('nope');
    }
    const row = await sql<{ keys: string[] }>`
      SELECT array(SELECT jsonb_object_keys(metadata) ORDER BY 1) AS keys FROM agentq.tasks WHERE id = ${task.id}`.execute(
      tdb.db,
    );
    expect(row.rows[0]!.keys).toEqual(['__proto__', 'constructor', 'prototype', 'toString']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((Object.prototype as Record<string, unknown>).polluted).toBeUndefined();
  });

  it.each([
    ['{"input":{"prompt":"x"},"__proto__":{"polluted":1}}', 'unknown field "__proto__"'],
    ['{"input":{"prompt":"x"},"constructor":1}', 'unknown field "constructor"'],
    ['{"input":{"prompt":"x"},"toString":1}', 'unknown field "toString"'],
    ['{"input":{"prompt":"x","__proto__":{}}}', 'unknown field "input.__proto__"'],
    [
      '{"input":{"prompt":"x"},"config":{"hasOwnProperty":1}}',
      'unknown field "config.hasOwnProperty"',
    ],
  ])('refuses a top-level or nested internal key: %s', async (raw, message) => {
    await expect400(await postRaw(raw), message);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('takes the last of duplicate keys, like JSON.parse', async () => {
    const task = await created(
      await postRaw(
        '{"input":{"prompt":"first"},"priority":5,"input":{"prompt":"second"},"priority":7}',
      ),
    );
    expect(task.input.prompt).toBe('second');
    expect(task.priority).toBe(7);
    const meta = await created(await postRaw('{"input":{"prompt":"x"},"metadata":{"a":1,"a":2}}'));
    expect(meta.metadata).toEqual({ a: 2 });
    // An unknown field stays unknown even when a later duplicate is valid.
    await expect400(
      await postRaw('{"input":{"prompt":"x"},"priority":1,"colour":"red","priority":2}'),
      'unknown field "colour"',
    );
  });
});

describe('text round-trips', () => {
  it.each([
    ['emoji', 'Family: 👩‍👩‍👧‍👦, flags 🇳🇱🇯🇵, skin tones 👍🏽'],
    ['right-to-left', 'مرحبا بالعالم — שלום עולם'],
    ['combining characters', 'e\u0301 vs \u00e9, Z\u0351\u0352\u0353a\u0300\u0301\u0302lgo'],
    ['bidi controls and zero-width', '\u202Eabc\u202C a\u200Bb\u200Dc \u2066x\u2069'],
    ['astral and private use', '𝕏 𠜎 \u{10FFFD} \uE000'],
    ['JSON-looking and escapes', '{"a":1}\\n\\u0000 "quoted" \t tab \n newline'],
    ['control characters', '\u0001\u0007\u001b[31mred\u001b[0m\u007f'],
  ])('keeps a %s prompt exactly through submit and GET', async (_name, prompt) => {
    const task = await created(await api.post('/v1/tasks', { input: { prompt } }));
    expect(task.input.prompt).toBe(prompt);
    expect((await readBack(task.id)).input.prompt).toBe(prompt);
    const row = await tdb.db
      .selectFrom('agentq.tasks')
      .select('input')
      .where('id', '=', task.id)
      .executeTakeFirstOrThrow();
    expect(row.input.prompt).toBe(prompt);
  });

  it('stores SQL-looking strings verbatim in every text field', async () => {
    const sqlish = [
      SQL_TEXT,
      "x' OR '1'='1",
      'Robert"); DROP TABLE students;--',
      '$1 $$ \\x00 ; COMMIT; --',
      "E'\\\\'",
    ];
    const ids: string[] = [];
    for (const [i, s] of sqlish.entries()) {
      const key = `${s}#${i}`;
      const res = await api.post(
        '/v1/tasks',
        {
          input: { prompt: s },
          config: { system_prompt: s },
          metadata: { [s]: s, nested: { list: [s] } },
          idempotency_key: key,
        },
        { 'idempotency-key': key },
      );
      const task = await created(res);
      ids.push(task.id);
      for (const got of [task, await readBack(task.id)]) {
        expect(got.input.prompt).toBe(s);
        expect(got.config.system_prompt).toBe(s);
        expect(got.metadata).toEqual({ [s]: s, nested: { list: [s] } });
        expect(got.idempotency_key).toBe(key);
      }
      // Replaying with the same key finds it by that key.
      const again = await api.post(
        '/v1/tasks',
        {
          input: { prompt: s },
          config: { system_prompt: s },
          metadata: { [s]: s, nested: { list: [s] } },
        },
        { 'idempotency-key': key },
      );
      expect(again.status).toBe(200);
      // A model name is the one field that is not free text (it reaches provider URLs).
      const asModel = await api.post('/v1/tasks', {
        input: { prompt: 'hi' },
        config: { model: s },
      });
      expect(asModel.status).toBe(400);
      expect((await errorOf(asModel)).message).toMatch(/^config\.model: /);
    }
    const listed = await api.get(`/v1/tasks?limit=200&type=agent`);
    expect(listed.status).toBe(200);
    const n = await sql<{
      n: number;
    }>`SELECT count(*)::int AS n FROM agentq.tasks WHERE id = ANY(${ids}::uuid[])`.execute(tdb.db);
    expect(n.rows[0]!.n).toBe(sqlish.length);
  });

  it('answers SQL-looking query values with a 400', async () => {
    await expect400(await api.get(`/v1/tasks?status=${encodeURIComponent(SQL_TEXT)}`), 'status');
    await expect400(await api.get(`/v1/tasks?type=${encodeURIComponent(SQL_TEXT)}`), 'type');
    await expect400(
      await api.get(`/v1/tasks?cursor=${encodeURIComponent(SQL_TEXT)}`),
      undefined,
      'invalid_cursor',
    );
  });
});

describe('task ids in paths', () => {
  let task: TaskJson;
  beforeAll(async () => {
    task = await created(await api.post('/v1/tasks', { input: { prompt: 'ids' } }));
  });

  type Route = { name: string; request: (id: string) => Response | Promise<Response> };
  const routes: Route[] = [
    { name: 'GET /v1/tasks/:id', request: (id) => api.get(`/v1/tasks/${id}`) },
    { name: 'GET /v1/tasks/:id/events', request: (id) => api.get(`/v1/tasks/${id}/events`) },
    { name: 'POST /v1/tasks/:id/cancel', request: (id) => api.post(`/v1/tasks/${id}/cancel`, {}) },
  ];

  it.each(routes)(
    '$name: dot segments resolve away from the route and answer 404 not_found',
    async ({ request }) => {
      // ('%2E%2E/%2e%2e' would climb to `/`, the dashboard's page shell, which holds no data.)
      for (const id of ['../../etc/passwd', '%2e%2e', '%2E%2E/x/%2e%2e', '..']) {
        const res = await request(id);
        expect(res.status, id).toBe(404);
        expect((await errorOf(res)).code).toBe('not_found');
      }
    },
  );

  it.each(routes)(
    '$name: encoded slashes, braces and near-UUIDs answer 400 invalid_id',
    async ({ request }) => {
      const bad = [
        encodeURIComponent('../../etc/passwd'),
        '..%2F..%2Fetc%2Fpasswd',
        '%252e%252e',
        encodeURIComponent(`{${task.id}}`),
        encodeURIComponent(`urn:uuid:${task.id}`),
        task.id.replaceAll('-', ''),
        `${task.id}%0A`,
        `%20${task.id}`,
        `${task.id}%00`,
        task.id.slice(0, -1),
        `${task.id}0`,
        '0'.repeat(5000),
        '%E0%A4%A', // a broken percent-escape
        '%F0%9F%92%A9',
      ];
      for (const id of bad) {
        const res = await request(id);
        expect(res.status, id).toBe(400);
        expect((await errorOf(res)).code, id).toBe('invalid_id');
      }
    },
  );

  it.each(routes)(
    '$name: a UUID in capitals is the same task, normalized to lower case',
    async ({ request }) => {
      const res = await request(task.id.toUpperCase());
      expect(res.status).toBe(200);
      const body = (await res.json()) as { id?: string; data?: unknown[] };
      if (body.id !== undefined) expect(body.id).toBe(task.id);
      else expect(Array.isArray(body.data)).toBe(true);
    },
  );

  it.each(routes)(
    '$name: a well-formed UUID of no task answers 404 not_found',
    async ({ request }) => {
      for (const id of [
        '00000000-0000-0000-0000-000000000000',
        'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF',
        '0190a0a0-0000-7000-8000-000000000000',
      ]) {
        const res = await request(id);
        expect(res.status, id).toBe(404);
        expect((await errorOf(res)).code).toBe('not_found');
      }
    },
  );

  it('still has the tasks table and the task after all of that', async () => {
    expect((await readBack(task.id)).id).toBe(task.id);
    expect((await api.get('/readyz')).status).toBe(200);
  });
});
