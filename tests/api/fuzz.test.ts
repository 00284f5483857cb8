// Generated requests (fast-check) on every route: never a 5xx, 4xx always the error shape, no unacknowledged rows, healthy after.
import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROVIDER_NAMES, TOOL_NAMES } from '../../shared/catalog.ts';
import { startTestApi } from '../helpers/api-harness.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';

// Set FUZZ_SEED to replay a failure with the seed fast-check printed.
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
const RUNS = { submit: 1500, list: 1000, paths: 500 };

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

/** Every task id the API answered 201 (or replayed with 200). */
const acknowledged = new Set<string>();
/** Acknowledged ids in creation order, for generators to pick from by index. */
const knownIds: string[] = [];
/** next_cursor values the list route handed out. */
const realCursors: string[] = [];
const tally: Record<string, number> = {};
const count = (key: string) => void (tally[key] = (tally[key] ?? 0) + 1);

const STATUSES = ['queued', 'running', 'completed', 'failed', 'cancelled'] as const;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const SQL_STRINGS = [
  "'; DROP TABLE agentq.tasks; --",
  "x' OR '1'='1",
  '"; DELETE FROM agentq.tasks; --',
  '$$; TRUNCATE agentq.tasks; $$',
];
const JSON_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'application/merge-patch+json',
];
const NON_JSON_TYPES = [
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=----fuzz',
  'text/json',
  'application/jsonp',
];

// ---------- response checks ----------

interface Checked {
  status: number;
  body: unknown;
}

/** The checks every response gets: 2xx or 4xx, JSON, and the error shape on a 4xx. */
async function checked(res: Response): Promise<Checked> {
  const text = await res.text();
  const { status } = res;
  if (!((status >= 200 && status < 300) || (status >= 400 && status < 500))) {
    throw new Error(`status ${status} (neither 2xx nor 4xx): ${text.slice(0, 500)}`);
  }
  const type = res.headers.get('content-type') ?? '';
  if (!/^application\/json(;|$)/.test(type))
    throw new Error(`status ${status} with content-type "${type}": ${text.slice(0, 200)}`);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`status ${status} with a body that is not JSON: ${text.slice(0, 200)}`);
  }
  if (status >= 400) assertErrorShape(body, status);
  return { status, body };
}

function assertErrorShape(body: unknown, status: number): void {
  const fail = () =>
    new Error(`status ${status}: not the error shape: ${JSON.stringify(body).slice(0, 300)}`);
  if (!isObject(body) || Object.keys(body).join() !== 'error') throw fail();
  const error = body.error;
  if (!isObject(error) || typeof error.code !== 'string' || typeof error.message !== 'string')
    throw fail();
  if (!/^[a-z_]+$/.test(error.code) || error.message.length === 0) throw fail();
  if (Object.keys(error).some((k) => !['code', 'message', 'details'].includes(k))) throw fail();
}

const isObject = (x: unknown): x is Record<string, unknown> =>
  typeof x === 'object' && x !== null && !Array.isArray(x);

interface TaskShape {
  id: string;
  status: string;
  input: { prompt: string };
}

function assertTask(body: unknown): TaskShape {
  if (
    !isObject(body) ||
    typeof body.id !== 'string' ||
    !UUID.test(body.id) ||
    !isObject(body.input) ||
    typeof body.input.prompt !== 'string'
  ) {
    throw new Error(`not a task: ${JSON.stringify(body).slice(0, 300)}`);
  }
  return body as unknown as TaskShape;
}

// ---------- generators: submit ----------

/** What the server stores: no NUL, no lone surrogate, not nested past 32. */
function storable(value: unknown, depth = 0): boolean {
  if (depth > 32) return false;
  if (typeof value === 'string') return !value.includes('\u0000') && value.isWellFormed();
  if (Array.isArray(value)) return value.every((v) => storable(v, depth + 1));
  if (isObject(value))
    return Object.entries(value).every(([k, v]) => storable(k) && storable(v, depth + 1));
  return true;
}

const text = (maxLength: number) =>
  fc.string({ unit: 'grapheme', maxLength }).filter((s) => s.length <= maxLength && storable(s));

const prompt = fc
  .oneof(
    { arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 200 }), weight: 4 },
    { arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 60 }), weight: 2 },
    {
      arbitrary: fc
        .tuple(
          fc.constantFrom(' ', '\n\t', '\u3000', '\uFEFF'),
          fc.string({ minLength: 1, maxLength: 30 }),
        )
        .map(([w, s]) => `${w}${s}${w}`),
      weight: 1,
    },
    { arbitrary: fc.constantFrom(...SQL_STRINGS), weight: 1 },
  )
  .filter((s) => s.trim().length > 0 && s.trim().length <= 100_000 && storable(s));

/** A timestamp in one of the ISO-8601 forms the API takes, and the instant it names. */
const timestampCase = fc
  .record({
    at: fc.date({
      min: new Date('0001-01-02T00:00:00Z'),
      max: new Date('9999-12-30T00:00:00Z'),
      noInvalidDate: true,
    }),
    offsetMinutes: fc.integer({ min: -(23 * 60 + 59), max: 23 * 60 + 59 }),
    style: fc.constantFrom('Z', 'colon', 'compact', 'hour', 'space', 'space-before-offset'),
    fraction: fc.boolean(),
  })
  .map(({ at, offsetMinutes, style, fraction }) => {
    const iso = at.toISOString();
    if (style === 'Z') return { text: iso, iso };
    const offset = style === 'hour' ? offsetMinutes - (offsetMinutes % 60) : offsetMinutes;
    const local = new Date(at.getTime() + offset * 60_000).toISOString();
    const sign = offset < 0 ? '-' : '+';
    const hh = String(Math.floor(Math.abs(offset) / 60)).padStart(2, '0');
    const mm = String(Math.abs(offset) % 60).padStart(2, '0');
    const zone =
      style === 'hour'
        ? `${sign}${hh}`
        : style === 'compact'
          ? `${sign}${hh}${mm}`
          : `${sign}${hh}:${mm}`;
    const separator = style.startsWith('space') ? ' ' : 'T';
    const text = `${local.slice(0, 10)}${separator}${local.slice(11, 19)}${fraction ? local.slice(19, 23) : ''}${style === 'space-before-offset' ? ' ' : ''}${zone}`;
    return { text, iso: fraction ? iso : `${iso.slice(0, 19)}.000Z` };
  })
  .filter(({ text }) => /^\d{4}-/.test(text)); // an offset can push the local date out of four-digit years
const timestamp = timestampCase.map((t) => t.text);

const config = fc.record(
  {
    provider: fc.constantFrom(...PROVIDER_NAMES),
    // A name every provider accepts (hostile names are the mutated cases' job).
    model: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,60}$/).filter((s) => !s.includes('..')),
    max_steps: fc.integer({ min: 1, max: 100 }),
    temperature: fc.double({ min: 0, max: 2, noNaN: true }),
    tools: fc.shuffledSubarray([...TOOL_NAMES]),
    system_prompt: text(300),
  },
  { requiredKeys: [] },
);

const metadata = fc
  .dictionary(text(20), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 6 })
  .filter((m) => storable(m) && Buffer.byteLength(JSON.stringify(m)) <= 16 * 1024);

// A small pool of keys so replays (200) and conflicts (409) happen too.
const idempotencyKey = fc.oneof(
  { arbitrary: fc.constantFrom('fuzz-k1', 'fuzz-k2', 'fuzz-k3'), weight: 1 },
  { arbitrary: fc.stringMatching(/^[!-~]([ -~]{6,60}[!-~])$/), weight: 4 },
);

const validBody = fc.record(
  {
    type: fc.constant('agent'),
    input: fc.record({ prompt }),
    config,
    priority: fc.integer({ min: -100, max: 100 }),
    run_at: timestampCase,
    max_attempts: fc.integer({ min: 1, max: 20 }),
    timeout_s: fc.integer({ min: 1, max: 3600 }),
    metadata,
    idempotency_key: idempotencyKey,
  },
  { requiredKeys: ['input'] },
);

type GeneratedBody = typeof validBody extends fc.Arbitrary<infer T> ? T : never;

/** The body as sent (run_at as its text) and the run_at instant it names. */
function toWire(body: GeneratedBody): { sent: Record<string, unknown>; runAt: string | undefined } {
  const { run_at: runAt, ...rest } = body;
  return { sent: runAt === undefined ? rest : { ...rest, run_at: runAt.text }, runAt: runAt?.iso };
}

function nested(depth: number, kind: 'array' | 'object'): unknown {
  let value: unknown = 'leaf';
  for (let i = 0; i < depth; i++) value = kind === 'array' ? [value] : { d: value };
  return value;
}

const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  {
    arbitrary: fc.constantFrom<unknown>(
      null,
      true,
      false,
      0,
      -0,
      -1,
      1.5,
      1e308,
      -1e308,
      101,
      -101,
      2 ** 31,
      2 ** 53 + 2,
      5e-324,
      '',
      ' ',
      '5',
      '1.0',
      'agent',
      'offline',
      'calculator',
      '2030-01-01T00:00:00',
      '2030-02-31T00:00:00Z',
      '\u0000',
      'a\u0000b',
      '\ud800',
      'x\udc00y',
      '\ud83d',
      ...SQL_STRINGS,
      [],
      {},
      [null],
      ['calculator', 'calculator'],
      { $gt: '' },
      { prompt: 'x' },
    ),
    weight: 6,
  },
  { arbitrary: fc.jsonValue({ maxDepth: 4 }), weight: 4 },
  { arbitrary: fc.string({ unit: 'binary', maxLength: 30 }), weight: 2 },
  {
    arbitrary: fc
      .constantFrom(16 * 1024, 20_001, 100_001, 300_000, 1_100_000)
      .map((n) => 'h'.repeat(n)),
    weight: 1,
  },
  {
    arbitrary: fc
      .tuple(
        fc.integer({ min: 30, max: 1500 }),
        fc.constantFrom<'array' | 'object'>('array', 'object'),
      )
      .map(([d, k]) => nested(d, k)),
    weight: 1,
  },
);

const FIELD_PATHS: string[][] = [
  ['type'],
  ['input'],
  ['input', 'prompt'],
  ['config'],
  ['config', 'provider'],
  ['config', 'model'],
  ['config', 'max_steps'],
  ['config', 'temperature'],
  ['config', 'tools'],
  ['config', 'tools', '0'],
  ['config', 'system_prompt'],
  ['priority'],
  ['run_at'],
  ['max_attempts'],
  ['timeout_s'],
  ['metadata'],
  ['idempotency_key'],
];
const unknownKey = fc.oneof(
  fc.constantFrom(
    '__proto__',
    'constructor',
    'prototype',
    'toString',
    'extra',
    'Input',
    'PRIORITY',
  ),
  text(12),
);
const mutationPath = fc.oneof(
  { arbitrary: fc.constantFrom(...FIELD_PATHS), weight: 5 },
  {
    arbitrary: fc
      .tuple(fc.constantFrom([], ['input'], ['config'], ['metadata']), unknownKey)
      .map(([p, k]) => [...p, k]),
    weight: 2,
  },
);

/** Sets (or deletes) the value at path as an own data property, building objects on the way. */
function mutate(
  body: Record<string, unknown>,
  path: string[],
  value: unknown,
  remove: boolean,
): Record<string, unknown> {
  const root = structuredClone(body);
  let node: Record<string, unknown> = root;
  for (const key of path.slice(0, -1)) {
    const next = Object.hasOwn(node, key) ? node[key] : undefined;
    const child =
      typeof next === 'object' && next !== null ? (next as Record<string, unknown>) : {};
    Object.defineProperty(node, key, {
      value: child,
      enumerable: true,
      writable: true,
      configurable: true,
    });
    node = child;
  }
  const last = path.at(-1)!;
  if (remove) delete node[last];
  else
    Object.defineProperty(node, last, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  return root;
}

const contentType = fc.oneof(
  { arbitrary: fc.constant<string | undefined>('application/json'), weight: 12 },
  {
    arbitrary: fc.constantFrom<string | undefined>(...JSON_TYPES, ...NON_JSON_TYPES, undefined),
    weight: 3,
  },
  { arbitrary: fc.stringMatching(/^[!-~]{0,40}$/).map<string | undefined>((s) => s), weight: 1 },
);

interface SubmitCase {
  kind: 'valid' | 'mutated' | 'json' | 'raw' | 'replay';
  body: string;
  /** For a valid body with run_at: the instant, as the API should echo it. */
  runAt?: string | undefined;
  /** For a replay: which earlier created request to send again. */
  replayIndex?: number;
  contentType: string | undefined;
  headerKey: string | undefined;
}

const validCase = fc
  .record({ body: validBody, keyIn: fc.constantFrom('body', 'header', 'both') })
  .map(({ body, keyIn }): SubmitCase => {
    const { sent, runAt } = toWire(body);
    const key = body.idempotency_key;
    if (keyIn === 'header') delete sent.idempotency_key;
    const headerKey = key !== undefined && keyIn !== 'body' ? key : undefined;
    return {
      kind: 'valid',
      body: JSON.stringify(sent),
      runAt,
      contentType: 'application/json',
      headerKey,
    };
  });

const mutatedCase = fc
  .record({
    body: validBody,
    path: mutationPath,
    value: hostileValue,
    remove: fc.nat({ max: 9 }).map((n) => n === 0),
    contentType,
    headerKey: fc.option(idempotencyKey, { nil: undefined, freq: 8 }),
  })
  .map(({ body, path, value, remove, contentType, headerKey }): SubmitCase => ({
    kind: 'mutated',
    body: JSON.stringify(mutate(toWire(body).sent, path, value, remove)),
    contentType,
    headerKey,
  }));

const jsonCase = fc
  .record({
    value: fc.oneof(
      fc.jsonValue({ maxDepth: 5 }),
      fc.anything({ maxDepth: 3 }),
      fc.record({
        input: fc.oneof(
          fc.jsonValue({ maxDepth: 2 }),
          fc.record({ prompt: fc.jsonValue({ maxDepth: 2 }) }),
        ),
      }),
      fc
        .dictionary(unknownKey, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 })
        .map((d) => ({ ...d, input: { prompt: 'x' } })),
    ),
    contentType,
  })
  .map(({ value, contentType }): SubmitCase => ({
    kind: 'json',
    body: JSON.stringify(value) ?? 'undefined',
    contentType,
    headerKey: undefined,
  }));

const rawText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.string({ maxLength: 200 }).map((s) => `{${s}`),
  validBody.chain((b) => {
    const json = JSON.stringify(toWire(b).sent);
    return fc.nat({ max: json.length - 1 }).map((n) => json.slice(0, n)); // truncated
  }),
  fc.constantFrom(
    "{'input': {'prompt': 'single quotes'}}",
    '{"input": {"prompt": "x",},}',
    '{"input": {"prompt": "x"}} // comment',
    '{"input": {"prompt": NaN}}',
    '{"input": {"prompt": "x"}}{"input": {"prompt": "y"}}',
    'input%5Bprompt%5D=x&priority=5',
    '------fuzz\r\nContent-Disposition: form-data; name="input"\r\n\r\n{"prompt":"x"}\r\n------fuzz--\r\n',
    'null',
    'true',
    '0',
    '""',
    '[]',
    '{}',
    ' ',
    '\n',
    '\u0000',
    '\ud800',
  ),
  fc
    .integer({ min: 1, max: 200_000 })
    .map((n) => `{"input":{"prompt":"x"},"metadata":{"a":${'['.repeat(n)}${']'.repeat(n)}}}`),
  fc.integer({ min: 1, max: 200_000 }).map((n) => '['.repeat(n)),
);

const rawCase = fc
  .record({ body: rawText, contentType })
  .map(({ body, contentType }): SubmitCase => ({
    kind: 'raw',
    body,
    contentType,
    headerKey: undefined,
  }));

/** Valid cases with an idempotency key that were created, for replays. */
const replayable: Array<{ c: SubmitCase; id: string }> = [];
const replayCase = fc.nat().map((n): SubmitCase => ({
  kind: 'replay',
  body: '',
  replayIndex: n,
  contentType: 'application/json',
  headerKey: undefined,
}));

const submitCase = fc.oneof(
  { arbitrary: validCase, weight: 3 },
  { arbitrary: replayCase, weight: 1 },
  { arbitrary: mutatedCase, weight: 4 },
  { arbitrary: jsonCase, weight: 2 },
  { arbitrary: rawCase, weight: 2 },
);

/** What the server reads: the body as UTF-8 (lone surrogates become U+FFFD; a BOM is dropped), then JSON. */
function parsedAsServer(body: string): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(new TextEncoder().encode(body)));
  } catch {
    return undefined;
  }
}

async function runSubmitCase(c: SubmitCase): Promise<void> {
  if (c.kind === 'replay') return runReplay(c.replayIndex ?? 0);
  const headers: Record<string, string> = {};
  if (c.contentType !== undefined) headers['content-type'] = c.contentType;
  if (c.headerKey !== undefined) headers['idempotency-key'] = c.headerKey;
  const res = await api.app.request('/v1/tasks', { method: 'POST', headers, body: c.body });
  const location = res.headers.get('location');
  const { status, body } = await checked(res);
  count(`submit ${c.kind} ${status}`);

  if (
    (c.contentType === undefined || NON_JSON_TYPES.includes(c.contentType)) &&
    status !== 415 &&
    status !== 413
  ) {
    throw new Error(
      `content-type ${String(c.contentType)} answered ${status}, not 415 (or 413 for a body over the limit)`,
    );
  }
  if (c.kind === 'valid' && ![201, 200, 409].includes(status)) {
    throw new Error(`a valid body answered ${status}: ${JSON.stringify(body).slice(0, 300)}`);
  }
  if (
    status === 409 &&
    (!isObject(body) || !isObject(body.error) || body.error.code !== 'idempotency_conflict')
  ) {
    throw new Error(`409 that is not idempotency_conflict: ${JSON.stringify(body)}`);
  }
  if (status >= 300) return;

  if (status !== 201 && status !== 200) throw new Error(`submit answered ${status}`);
  if (!/^application\/(.+\+)?json\s*(;|$)/i.test(c.contentType ?? '')) {
    throw new Error(`content-type ${String(c.contentType)} was accepted`);
  }
  const task = assertTask(body);
  if (location !== `/v1/tasks/${task.id}`)
    throw new Error(`Location ${String(location)} for task ${task.id}`);
  const sent = parsedAsServer(c.body);
  const sentPrompt = isObject(sent) && isObject(sent.input) ? sent.input.prompt : undefined;
  if (typeof sentPrompt !== 'string' || task.input.prompt !== sentPrompt.trim()) {
    throw new Error(
      `input.prompt ${JSON.stringify(task.input.prompt)} is not the trimmed prompt sent ${JSON.stringify(sentPrompt)}`,
    );
  }
  if (c.kind === 'valid' && status === 201) assertEchoed(c, body as Record<string, unknown>);
  if (status === 200) {
    if (res.headers.get('idempotent-replayed') !== 'true')
      throw new Error('a 200 submit without Idempotent-Replayed');
    if (!acknowledged.has(task.id))
      throw new Error(`a replay returned ${task.id}, which was never created with a 201`);
  } else {
    if (acknowledged.has(task.id)) throw new Error(`201 twice for ${task.id}`);
    acknowledged.add(task.id);
    knownIds.push(task.id);
    if (
      c.kind === 'valid' &&
      (c.headerKey !== undefined || 'idempotency_key' in (JSON.parse(c.body) as object))
    )
      replayable.push({ c, id: task.id });
  }
}

/** Sends an earlier created request again, keys reordered: the same task comes back with 200. */
async function runReplay(n: number): Promise<void> {
  const earlier = replayable[n % Math.max(replayable.length, 1)];
  if (earlier === undefined) return;
  const sent = JSON.parse(earlier.c.body) as Record<string, unknown>;
  const reordered = Object.fromEntries(Object.entries(sent).reverse());
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (earlier.c.headerKey !== undefined) headers['idempotency-key'] = earlier.c.headerKey;
  const res = await api.app.request('/v1/tasks', {
    method: 'POST',
    headers,
    body: JSON.stringify(reordered),
  });
  const { status, body } = await checked(res);
  count(`submit replay ${status}`);
  if (status !== 200)
    throw new Error(`a replay answered ${status}: ${JSON.stringify(body).slice(0, 300)}`);
  if (res.headers.get('idempotent-replayed') !== 'true')
    throw new Error('a replay without Idempotent-Replayed: true');
  if (assertTask(body).id !== earlier.id)
    throw new Error(`a replay returned ${assertTask(body).id}, not ${earlier.id}`);
}

/** JSON with sorted keys: equal for equal JSON whatever the key order (jsonb reorders keys). */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (isObject(value))
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`)
      .join(',')}}`;
  return JSON.stringify(value) ?? 'null';
}

/** A created task shows every field of a valid body as sent (run_at as the instant it names). */
function assertEchoed(c: SubmitCase, task: Record<string, unknown>): void {
  const sent = JSON.parse(c.body) as Record<string, unknown>;
  const expected: Record<string, unknown> = {
    type: 'agent',
    priority: sent.priority ?? 0,
    max_attempts: sent.max_attempts ?? 3,
    timeout_s: sent.timeout_s ?? 300,
    metadata: sent.metadata ?? {},
    idempotency_key: sent.idempotency_key ?? c.headerKey ?? null,
  };
  if (c.runAt !== undefined) expected.run_at = c.runAt;
  for (const [field, value] of Object.entries(expected)) {
    if (canonical(task[field]) !== canonical(value)) {
      throw new Error(
        `${field} came back as ${canonical(task[field]).slice(0, 300)}, sent ${canonical(value).slice(0, 300)}`,
      );
    }
  }
  const config = task.config as Record<string, unknown>;
  for (const [field, value] of Object.entries((sent.config ?? {}) as Record<string, unknown>)) {
    if (canonical(config[field]) !== canonical(value))
      throw new Error(
        `config.${field} came back as ${canonical(config[field])}, sent ${canonical(value)}`,
      );
  }
}

// ---------- generators: list ----------

const junk = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.constantFrom(
    '',
    ' ',
    '%',
    '%zz',
    '%00',
    '%FF%FE',
    '%C0%AF',
    '%E2%80%AE',
    '%2B',
    '+',
    '=',
    '==',
    '&',
    '#',
    ';',
    '[]',
    '%5B%5D',
    ...SQL_STRINGS,
  ),
  fc.stringMatching(/^(%[0-9A-Fa-f]{2}){1,8}$/),
);

const base64url = (s: string | Uint8Array) => Buffer.from(s).toString('base64url');

const cursorValue = fc.oneof(
  fc.nat().map((n) => ({ real: n }) as const),
  fc.uint8Array({ maxLength: 80 }).map(base64url),
  fc.uuid().map((id) => base64url(JSON.stringify({ v: 1, id }))),
  fc.uuid().map((id) => base64url(JSON.stringify({ v: 2, id }))),
  fc.jsonValue({ maxDepth: 2 }).map((v) => base64url(JSON.stringify(v))),
  fc.string({ unit: 'binary', maxLength: 40 }).map((s) => base64url(s)),
  fc.integer({ min: 190, max: 400 }).map((n) => 'A'.repeat(n)),
  junk,
);

type Pair = [string, string | { real: number }];

const listPair: fc.Arbitrary<Pair> = fc.oneof(
  fc.shuffledSubarray([...STATUSES], { minLength: 1 }).map((s): Pair => ['status', s.join(',')]),
  fc
    .oneof(junk, fc.constantFrom('QUEUED', 'queued,', ',queued', 'done'))
    .map((v): Pair => ['status', v]),
  fc.constantFrom('agent', 'AGENT', 'shell', '').map((v): Pair => ['type', v]),
  fc
    .tuple(
      fc.constantFrom('created_after', 'created_before'),
      fc.oneof(
        timestamp,
        junk,
        fc.constantFrom('2030-02-31T00:00:00Z', '2030-01-01T00:00:00+05', '2030-01-01'),
      ),
    )
    .map((p): Pair => p),
  fc
    .oneof(
      fc.integer({ min: -5, max: 250 }).map(String),
      fc.constantFrom('1e2', '007', '0x10', '2.5', ' 5', '99999', '-0'),
      junk,
    )
    .map((v): Pair => ['limit', v]),
  cursorValue.map((v): Pair => ['cursor', v]),
  fc
    .tuple(
      fc.oneof(fc.constantFrom('sort', 'offset', 'page', 'id', 'Status', 'status[]', ''), junk),
      junk,
    )
    .map((p): Pair => p),
);

const encoding = fc.constantFrom('encoded', 'raw', 'encoded', 'encoded');

interface ListCase {
  query: string;
}

const mixedQuery = fc.record({
  pairs: fc.array(fc.tuple(listPair, encoding, encoding), { maxLength: 6 }),
  trailing: fc.option(junk, { nil: undefined, freq: 6 }),
});

// Each parameter at most once, each value valid: these should page.
const validQuery = fc
  .record(
    {
      status: fc.shuffledSubarray([...STATUSES], { minLength: 1 }).map((s) => s.join(',')),
      type: fc.constant('agent'),
      created_after: timestamp,
      created_before: timestamp,
      limit: fc.integer({ min: 1, max: 200 }).map(String),
      cursor: fc.nat().map((n) => ({ real: n }) as const),
    },
    { requiredKeys: [] },
  )
  .map((q) => ({
    pairs: Object.entries(q).map(([k, v]): [Pair, string, string] => [
      [k, v],
      'encoded',
      'encoded',
    ]),
    trailing: undefined,
  }));

const listCase = fc.oneof(
  { arbitrary: validQuery, weight: 1 },
  { arbitrary: mixedQuery, weight: 1 },
);

function buildQuery(c: {
  pairs: Array<[Pair, string, string]>;
  trailing: string | undefined;
}): ListCase {
  const parts = c.pairs.map(([[key, value], keyEnc, valueEnc]) => {
    const v =
      typeof value === 'string'
        ? value
        : (realCursors[value.real % Math.max(realCursors.length, 1)] ?? 'none');
    const k = keyEnc === 'raw' ? key : encodeURIComponent(key);
    return `${k}=${valueEnc === 'raw' ? v : encodeURIComponent(v)}`;
  });
  if (c.trailing !== undefined) parts.push(c.trailing);
  return { query: parts.join('&') };
}

async function runListCase(c: ListCase): Promise<void> {
  const url = new URL(`http://localhost/v1/tasks?${c.query}`);
  const res = await api.app.request(url.href);
  const { status, body } = await checked(res);
  count(`list ${status}`);
  if (status !== 200 && status !== 400) throw new Error(`list answered ${status}`);
  if (status !== 200) return;
  if (
    !isObject(body) ||
    Object.keys(body).sort().join() !== 'data,next_cursor' ||
    !Array.isArray(body.data)
  ) {
    throw new Error(`not a page: ${JSON.stringify(body).slice(0, 300)}`);
  }
  const cursor = body.next_cursor;
  if (cursor !== null && typeof cursor !== 'string')
    throw new Error(`next_cursor ${JSON.stringify(cursor)}`);
  if (typeof cursor === 'string') realCursors.push(cursor);
  const params = url.searchParams;
  const limit = params.has('limit') ? Number(params.get('limit')) : 50;
  if (body.data.length > limit) throw new Error(`${body.data.length} rows for limit ${limit}`);
  const tasks = body.data.map(assertTask);
  for (const [i, t] of tasks.entries()) {
    if (!acknowledged.has(t.id)) throw new Error(`listed ${t.id}, which no submit acknowledged`);
    if (i > 0 && tasks[i - 1]!.id <= t.id) throw new Error('the page is not newest first');
  }
  const statusFilter = params.get('status');
  if (statusFilter !== null && tasks.some((t) => !statusFilter.split(',').includes(t.status))) {
    throw new Error(`status=${statusFilter} listed ${tasks.map((t) => t.status).join(',')}`);
  }
}

// ---------- generators: GET /:id, /events, /cancel ----------

type Segment = { known: number; upper: boolean } | string;

const segment: fc.Arbitrary<Segment> = fc.oneof(
  { arbitrary: fc.record({ known: fc.nat(), upper: fc.boolean() }), weight: 6 },
  { arbitrary: fc.uuid(), weight: 2 },
  { arbitrary: fc.uuid().map((u) => u.toUpperCase()), weight: 1 },
  { arbitrary: fc.string({ unit: 'binary', maxLength: 40 }).map(encodeURIComponent), weight: 2 },
  { arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }), weight: 2 },
  { arbitrary: fc.string({ minLength: 100, maxLength: 5000 }).map(encodeURIComponent), weight: 1 },
  { arbitrary: fc.stringMatching(/^(%[0-9A-Fa-f]{2}){1,12}$/), weight: 1 },
  {
    arbitrary: fc
      .tuple(fc.uuid(), fc.nat({ max: 4 }))
      .map(
        ([u, n]) => [`{${u}}`, `%7B${u}%7D`, u.replaceAll('-', ''), `${u}%0A`, `urn:uuid:${u}`][n]!,
      ),
    weight: 1,
  },
  {
    arbitrary: fc.constantFrom(
      '..',
      '.',
      '%2e%2e',
      '%2E',
      '%2F',
      '..%2F..%2Fetc%2Fpasswd',
      '../../etc/passwd',
      '%00',
      '%',
      '%zz',
      ' ',
      '%20',
      'null',
      '-1',
      '0',
      '',
    ),
    weight: 1,
  },
);

const waitValue = fc.oneof(
  fc.constantFrom(
    '0',
    '0.01',
    '0.000',
    '00',
    '60.5',
    '61',
    '-1',
    '1e3',
    '',
    'abc',
    '0x10',
    ' 1',
    'Infinity',
    'NaN',
  ),
  // Anything else that is not a real wait of more than 50 ms (those would only slow the run).
  fc
    .string({ maxLength: 8 })
    .filter((s) => !/^\d+(\.\d+)?$/.test(s) || Number(s) <= 0.05 || Number(s) > 60),
);

const pathQueryPair: fc.Arbitrary<[string, string]> = fc.oneof(
  waitValue.map((v): [string, string] => ['wait', v]),
  fc
    .oneof(fc.integer({ min: -10, max: 2_000_000_000 }).map(String), junk)
    .map((v): [string, string] => ['after', v]),
  fc
    .oneof(fc.integer({ min: -10, max: 2000 }).map(String), junk)
    .map((v): [string, string] => ['limit', v]),
  fc.tuple(junk, junk),
);

const validPathQuery = fc
  .record(
    {
      wait: fc.constantFrom('0', '0.01', '0.000', '00', '0.05'),
      after: fc.integer({ min: 0, max: 1_000_000_000 }).map(String),
      limit: fc.integer({ min: 1, max: 1000 }).map(String),
    },
    { requiredKeys: [] },
  )
  .map((q) => ({ valid: true, pairs: Object.entries(q) }));

const pathQuery = fc.oneof(
  { arbitrary: fc.constant({ valid: true, pairs: [] as Array<[string, string]> }), weight: 3 },
  { arbitrary: validPathQuery, weight: 3 },
  {
    arbitrary: fc.array(pathQueryPair, { maxLength: 3 }).map((pairs) => ({ valid: false, pairs })),
    weight: 2,
  },
);

interface PathCase {
  route: 'get' | 'events' | 'cancel' | 'other-method';
  segment: Segment;
  /** valid: only parameters the route takes, with good values (those not for this route are dropped). */
  query: { valid: boolean; pairs: Array<[string, string]> };
  sse: boolean;
  cancelBody: string | undefined;
  method: string;
}

const pathCase: fc.Arbitrary<PathCase> = fc.record({
  route: fc.constantFrom('get', 'events', 'cancel', 'get', 'events', 'other-method'),
  segment,
  query: pathQuery,
  sse: fc.boolean(),
  cancelBody: fc.option(fc.oneof(fc.constant('{}'), junk), { nil: undefined }),
  method: fc.constantFrom('PUT', 'DELETE', 'PATCH', 'POST', 'OPTIONS'),
});

async function runPathCase(c: PathCase): Promise<void> {
  let seg: string;
  let knownId: string | undefined;
  if (typeof c.segment === 'string') {
    seg = c.segment;
  } else {
    knownId = knownIds[c.segment.known % knownIds.length]!;
    seg = c.segment.upper ? knownId.toUpperCase() : knownId;
  }
  // wait belongs to GET /:id, after and limit to /events.
  const belongs = (k: string) =>
    c.route === 'get' ? k === 'wait' : c.route === 'events' && k !== 'wait';
  const query = c.query.pairs
    .filter(([k]) => !c.query.valid || belongs(k))
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join('&');
  const suffix = query === '' ? '' : `?${query}`;
  let res: Response;
  if (c.route === 'get') {
    res = await api.app.request(`/v1/tasks/${seg}${suffix}`);
  } else if (c.route === 'events') {
    // A live stream of an unfinished task would stay open; only ask for one where it answers at once.
    const headers: Record<string, string> =
      c.sse && knownId === undefined ? { accept: 'text/event-stream' } : {};
    res = await api.app.request(`/v1/tasks/${seg}/events${suffix}`, { headers });
  } else if (c.route === 'cancel') {
    const init: RequestInit = { method: 'POST' };
    if (c.cancelBody !== undefined) init.body = c.cancelBody;
    res = await api.app.request(`/v1/tasks/${seg}/cancel`, init);
  } else {
    res = await api.app.request(`/v1/tasks/${seg}`, { method: c.method });
  }
  const { status, body } = await checked(res);
  count(`${c.route} ${status}`);
  if (status >= 300) {
    if (knownId !== undefined && c.query.valid && (c.route === 'get' || c.route === 'events')) {
      throw new Error(`${c.route} of a known task with a good query answered ${status}`);
    }
    return;
  }
  if (c.route === 'events') {
    if (!isObject(body) || !Array.isArray(body.data) || typeof body.next_after !== 'number') {
      throw new Error(`not an events page: ${JSON.stringify(body).slice(0, 300)}`);
    }
    return;
  }
  const task = assertTask(body);
  if (!acknowledged.has(task.id))
    throw new Error(`answered with ${task.id}, which no submit acknowledged`);
  if (knownId !== undefined && task.id !== knownId)
    throw new Error(`asked for ${seg}, got ${task.id}`);
  if (c.route === 'cancel' && !['cancelled', 'running'].includes(task.status))
    throw new Error(`cancel left status ${task.status}`);
}

// ---------- the properties ----------

/** A generated case prints (only on failure) with long runs of one character and very long values shortened. */
function printable<T>(value: T): T {
  if (typeof value !== 'object' || value === null) return value;
  const show = () => {
    const shown = JSON.stringify(value, (_k, v: unknown) =>
      typeof v === 'string'
        ? v.replace(/(.)\1{40,}/gsu, (run, ch: string) => `${ch}<…×${run.length / ch.length}>`)
        : v,
    );
    return shown.length > 3000 ? `${shown.slice(0, 3000)}<…${shown.length} chars>` : shown;
  };
  Object.defineProperty(value, fc.toStringMethod, { value: show });
  return value;
}

function assertProperty<T>(
  arb: fc.Arbitrary<T>,
  run: (value: T) => Promise<void>,
  numRuns: number,
) {
  return fc.assert(fc.asyncProperty(arb.map(printable), run), { numRuns, seed: SEED });
}

describe('fuzzing the API with generated requests', () => {
  it(`POST /v1/tasks: ${RUNS.submit} generated bodies never give a 5xx, and an accepted one keeps the trimmed prompt`, async () => {
    await assertProperty(submitCase, runSubmitCase, RUNS.submit);
    // The generators must reach the success path as well as the refusals.
    expect(acknowledged.size).toBeGreaterThan(RUNS.submit / 10);
  });

  it(`GET and cancel by id: ${RUNS.paths} generated path segments and queries never give a 5xx`, async () => {
    await assertProperty(pathCase, runPathCase, RUNS.paths);
  });

  it(`GET /v1/tasks: ${RUNS.list} generated query strings never give a 5xx, and a page is newest first within its filters`, async () => {
    await assertProperty(listCase.map(buildQuery), runListCase, RUNS.list);
    expect(realCursors.length).toBeGreaterThan(0);
    expect(tally['list 200'] ?? 0).toBeGreaterThan(RUNS.list / 4);
  });

  it('is still healthy afterwards, with no task row that was not acknowledged', async () => {
    // Its own batch first, so the checks below have generated rows to look at
    // even when this case runs alone (vitest -t).
    await assertProperty(submitCase, runSubmitCase, 100);
    await assertProperty(pathCase, runPathCase, 50);
    expect(acknowledged.size).toBeGreaterThan(0);
    expect((await api.get('/healthz')).status).toBe(200);
    expect((await api.get('/readyz')).status).toBe(200);
    const res = await api.post('/v1/tasks', { input: { prompt: 'still here?' } });
    expect(res.status).toBe(201);
    const task = (await res.json()) as TaskShape;
    acknowledged.add(task.id);

    const rows = await sql<{ id: string }>`SELECT id FROM agentq.tasks`.execute(tdb.db);
    const stored = new Set(rows.rows.map((r) => r.id));
    expect([...stored].filter((id) => !acknowledged.has(id))).toEqual([]);
    expect([...acknowledged].filter((id) => !stored.has(id))).toEqual([]);

    // Every queued task still has its graphile-worker job: no half-written submit.
    const orphans = await sql<{ n: number }>`
      SELECT count(*)::int AS n FROM agentq.tasks t
      WHERE t.status = 'queued'
        AND NOT EXISTS (SELECT 1 FROM graphile_worker._private_jobs j WHERE j.payload->>'task_id' = t.id::text)`.execute(
      tdb.db,
    );
    expect(orphans.rows[0]!.n).toBe(0);

    // The LISTEN connection still wakes a long-poll.
    const poll = api.get(`/v1/tasks/${task.id}?wait=20`);
    const started = Date.now();
    expect((await api.post(`/v1/tasks/${task.id}/cancel`, {})).status).toBe(200);
    const polled = await poll;
    expect(((await polled.json()) as TaskShape).status).toBe('cancelled');
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(tdb.pool.waitingCount).toBe(0);
    const summary = Object.entries(tally)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, n]) => `${k}: ${n}`);
    console.info(
      `[fuzz] ${acknowledged.size} tasks created; responses by case and status: ${summary.join(', ')}`,
    );
  });
});
