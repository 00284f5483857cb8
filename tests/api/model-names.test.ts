// Item 5: a model name can never reach a provider's URL path as anything but a
// name (the Gemini SDK builds `…/v1beta/models/${model}:generateContent`), and
// AGENTQ_ALLOWED_MODELS restricts models per provider.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorOf, startTestApi } from '../helpers/api-harness.ts';
import { testConfig } from '../helpers/test-config.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';

let tdb: TestDatabase;
let api: Awaited<ReturnType<typeof startTestApi>>;
beforeAll(async () => {
  tdb = await createTestDatabase();
  api = await startTestApi(tdb);
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

async function expectModelRefused(
  target: typeof api,
  config: Record<string, unknown>,
): Promise<string> {
  const before = await taskCount();
  const res = await target.post('/v1/tasks', { input: { prompt: 'hi' }, config });
  expect(res.status).toBe(400);
  const error = await errorOf(res);
  expect(error.code).toBe('invalid_request');
  expect(error.message).toMatch(/^config\.model: /);
  expect(error.details).toMatchObject({ issues: [{ field: 'config.model' }] });
  expect(await taskCount()).toBe(before);
  return error.message;
}

describe('model names', () => {
  it('refuses the Gemini path traversal from the issue with a 400 naming config.model', async () => {
    await expectModelRefused(api, {
      provider: 'google',
      model: '../../internal/admin/reset?x=',
    });
  });

  it.each([
    '../x',
    '..',
    'a..b',
    'models/../../x',
    '/gpt-4o',
    'gpt-4o/',
    'a/b/c',
    'gpt 4o',
    'gpt-4o\n',
    '\tgpt',
    'gpt?x=1',
    'gpt#frag',
    'gpt%2F..',
    'a\\b',
    '-rf',
    '.hidden',
    'gpt-4o\u0085',
    'ｇｐｔ',
    'a'.repeat(129),
  ])('refuses %j for every provider', async (model) => {
    for (const provider of ['openai', 'google', 'offline']) {
      await expectModelRefused(api, { provider, model });
    }
  });

  it('refuses ":" and namespaces other than models/ and tunedModels/ for google', async () => {
    for (const model of [
      'gemini:x',
      'gemini-2.0-flash:streamGenerateContent',
      'meta-llama/x',
      'files/abc',
    ])
      await expectModelRefused(api, { provider: 'google', model });
  });

  it.each([
    ['openai', 'gpt-4o-mini'],
    ['openai', 'llama3.1:8b'],
    ['openai', 'meta-llama/llama-3.1-8b-instruct'],
    ['openai', 'meta-llama/llama-3.1-8b-instruct:free'],
    ['openai', 'Qwen2.5-7B-Instruct_q4'],
    ['google', 'gemini-2.0-flash'],
    ['google', 'models/gemini-1.5-pro-002'],
    ['google', 'tunedModels/my-model-123'],
    ['offline', 'offline-demo'],
  ])('accepts %s model %s and stores it', async (provider, model) => {
    const res = await api.post('/v1/tasks', {
      input: { prompt: 'hi' },
      config: { provider, model },
    });
    expect(res.status).toBe(201);
    expect(((await res.json()) as { config: { model: string } }).config.model).toBe(model);
  });
});

describe('AGENTQ_ALLOWED_MODELS', () => {
  it('accepts only the listed models of the listed providers', async () => {
    const limited = await startTestApi(
      tdb,
      testConfig({ AGENTQ_ALLOWED_MODELS: 'openai=gpt-4o-mini, gpt-4o ; offline=offline-demo' }),
    );
    try {
      const ok = async (config: Record<string, unknown>, model: string) => {
        const res = await limited.post('/v1/tasks', { input: { prompt: 'hi' }, config });
        expect(res.status).toBe(201);
        expect(((await res.json()) as { config: { model: string } }).config.model).toBe(model);
      };
      await ok({ provider: 'openai', model: 'gpt-4o' }, 'gpt-4o');
      await ok({ provider: 'openai' }, 'gpt-4o-mini'); // the provider's default model
      await ok({}, 'offline-demo'); // the server's default provider and model
      const refused = await expectModelRefused(limited, { provider: 'openai', model: 'gpt-4.1' });
      expect(refused).toContain('gpt-4.1 is not allowed for provider openai');
      // A provider that is not listed accepts nothing, not even its default model.
      await expectModelRefused(limited, { provider: 'google' });
      await expectModelRefused(limited, { provider: 'google', model: 'gemini-2.0-flash' });
      await expectModelRefused(limited, { provider: 'offline', model: 'gpt-4o' });
    } finally {
      await limited.stop();
    }
  });
});
