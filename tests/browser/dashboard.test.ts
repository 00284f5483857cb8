// The dashboard in a real browser (headless Chromium) against the real API and
// worker processes: the token form, submitting from the form and watching the
// steps stream in, cancelling a running task, filtering the live list, bulk
// cancel, a read-only token, the workers page, a phone-wide screen, and no
// console errors on any page. The setup saves screenshots of the list and of
// a task page (tests/helpers/browser.ts says where).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import {
  browserMissing,
  launchBrowser,
  openPage,
  screenshotPath,
  type WatchedPage,
} from '../helpers/browser.ts';
import { startFakeOpenAI } from '../helpers/fake-openai.ts';
import type { FakeLlmServer } from '../helpers/fake-llm-server.ts';
import { scriptedModel } from '../helpers/scripted-model.ts';
import { apiClient } from '../helpers/http-client.ts';
import { startApiProcess, startWorkerProcess, type AgentqProcess } from '../helpers/processes.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';
import { waitFor } from '../helpers/wait-for.ts';

const WRITE_TOKEN = 'dashboard-write-token';
/** A long prompt, cut in the list. */
const LOG = Array.from(
  { length: 40 },
  (_, i) => `2026-12-02T03:${String(i).padStart(2, '0')}:00Z api-7 p95 latency ${900 + i * 7} ms`,
).join('\n');
const READ_TOKEN = 'dashboard-read-token';

/** expect.poll with room for a loaded machine (its default gives up after 1 s). */
const poll = <T>(value: () => T | Promise<T>, options: { timeout?: number } = {}) =>
  expect.poll(value, { timeout: 20_000, ...options });

const missing = browserMissing();
if (missing) console.warn(`skipping the dashboard browser tests: ${missing}`);

describe.skipIf(missing !== undefined)('the dashboard in Chromium', () => {
  let tdb: TestDatabase;
  let openai: FakeLlmServer;
  let api: AgentqProcess & { url: string };
  let worker: AgentqProcess & { id: string };
  let browser: Browser;
  let client: ReturnType<typeof apiClient>;
  const pages: WatchedPage[] = [];

  beforeAll(async () => {
    [tdb, openai, browser] = await Promise.all([
      createTestDatabase(),
      startFakeOpenAI({ apiKey: 'sk-test-valid' }),
      launchBrowser(),
    ]);
    const env = {
      DATABASE_URL: tdb.url,
      AGENTQ_DEFAULT_PROVIDER: 'offline',
      OPENAI_API_KEY: 'sk-test-valid',
      OPENAI_BASE_URL: openai.url,
      AGENTQ_API_TOKENS: WRITE_TOKEN,
      AGENTQ_API_READ_TOKENS: READ_TOKEN,
      AGENTQ_POLL_INTERVAL_MS: '200',
    };
    [api, worker] = await Promise.all([startApiProcess(env), startWorkerProcess(env)]);
    client = apiClient(api.url, WRITE_TOKEN);
  });

  afterAll(async () => {
    await browser?.close();
    await Promise.all([api?.stop(), worker?.stop()]);
    await openai?.close();
    await tdb?.drop();
  });

  /** A fresh page (its own storage); its console errors are checked after the test. */
  async function open(path: string, options: Parameters<typeof openPage>[1] = {}) {
    const watched = await openPage(browser, options);
    pages.push(watched);
    await watched.page.goto(`${api.url}${path}`);
    return watched.page;
  }

  afterEach(async () => {
    const errors = pages.flatMap((p) => p.errors);
    await Promise.all(pages.splice(0).map((p) => p.close()));
    expect(errors, 'console errors and page errors').toEqual([]);
  });

  async function submitted(body: Record<string, unknown>) {
    const res = await client.submit(body);
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body;
  }

  it('asks for a token once, then submits from the form and streams the steps to completed', async () => {
    const page = await open('/');
    await poll(() => page.locator('#token-panel').isVisible()).toBe(true);
    await page.getByLabel('API token').fill(WRITE_TOKEN);
    await page.getByRole('button', { name: 'Use token' }).click();
    await page.getByRole('heading', { name: 'Tasks' }).waitFor();
    expect(await page.locator('#token-panel').isVisible()).toBe(false);

    await page.getByText('New task').click();
    // The model takes 1.5 s over each reply: the page sees the task run.
    const model = scriptedModel();
    openai.setHandler(async (request) => ({ delayMs: 1500, then: await model(request) }));
    await page.getByLabel('Prompt').fill('What is 17 * 23? Use the calculator.');
    await page.locator('#submit-form').getByLabel('Provider').selectOption('openai');
    await page.getByLabel('Max steps').fill('4');
    await page.getByRole('button', { name: 'Submit task' }).click();
    await page.waitForURL(/\/tasks\/[0-9a-f-]{36}$/);
    const id = page.url().split('/').at(-1)!;
    // Marks this document: a reload would lose the mark.
    await page.evaluate(() => Object.assign(globalThis, { noReloadMark: true }));

    // The first LLM call is still waiting when the run starts: steps arrive one by one.
    await page.locator('#timeline li[data-type=status]', { hasText: 'running' }).waitFor();
    expect(await page.locator('#timeline li[data-type=answer]').count()).toBe(0);

    await poll(() => page.locator('#task-status').textContent(), { timeout: 30_000 }).toBe(
      'completed',
    );
    await poll(() => page.locator('#task-answer').textContent()).toContain('391');
    const types = await page
      .locator('#timeline li')
      .evaluateAll((lis) => lis.map((li) => li.getAttribute('data-type')));
    expect(types).toEqual(
      expect.arrayContaining(['llm_call', 'tool_call', 'tool_result', 'answer']),
    );
    const llm = await page.locator('#timeline li[data-type=llm_call]').first().textContent();
    expect(llm).toMatch(/openai · gpt-4o-mini[\w.-]* · [\d.]+ (ms|s)/);
    expect(llm).toMatch(/\d+ in \/ \d+ out tokens/);
    expect(await page.locator('#timeline li[data-type=tool_call]').textContent()).toContain(
      'calculator',
    );
    expect(await page.evaluate(() => 'noReloadMark' in globalThis)).toBe(true);
    expect((await client.get(id)).status).toBe('completed');
    // Finished: it can run again, not be cancelled.
    expect(await page.locator('#task-rerun').isVisible()).toBe(true);
    expect(await page.locator('#task-cancel').isVisible()).toBe(false);
    openai.reset();
    await poll(() => page.locator('#steps-live').textContent()).toBe('');
    await page.screenshot({ path: await screenshotPath('dashboard-task.png') });

    // Run again: a new task with the same input and config, on its own page.
    await page.getByRole('button', { name: 'Run again' }).click();
    await page.waitForURL(
      (url) => url.pathname.startsWith('/tasks/') && !url.pathname.endsWith(id),
    );
    const again = await client.get(page.url().split('/').at(-1)!);
    expect(again.config).toMatchObject({ provider: 'openai', max_steps: 4 });
    await poll(() => page.locator('#task-status').textContent(), { timeout: 30_000 }).toBe(
      'completed',
    );
    expect(await page.locator('#task-prompt').textContent()).toBe(
      'What is 17 * 23? Use the calculator.',
    );
  });

  it('cancels a running task from its page', async () => {
    const task = await submitted({
      input: { prompt: 'Think about it forever [hang]' },
      config: { provider: 'openai' },
    });
    await waitFor(async () => (await client.get(task.id)).status === 'running', {
      what: 'the task to run',
    });
    const page = await open(`/tasks/${task.id}`, { token: WRITE_TOKEN });
    await poll(() => page.locator('#task-status').textContent()).toBe('running');
    await page.getByRole('button', { name: 'Cancel task' }).click();
    await poll(() => page.locator('#task-status').textContent(), { timeout: 30_000 }).toBe(
      'cancelled',
    );
    await page.locator('#timeline li[data-type=cancel_requested]').waitFor();
    expect((await client.get(task.id)).status).toBe('cancelled');
    expect(await page.locator('#task-cancel').isVisible()).toBe(false);
  });

  it('filters the list, and a new matching task appears in it live', async () => {
    const alpha = await submitted({ input: { prompt: 'filtertest alpha: what is 2 + 2?' } });
    const beta = await submitted({
      input: { prompt: 'filtertest beta: say hello' },
      config: { provider: 'openai' },
    });
    await Promise.all([client.waitDone(alpha.id), client.waitDone(beta.id)]);

    const page = await open('/', { token: WRITE_TOKEN });
    const rows = page.locator('#task-table tbody tr');
    await page.locator(`tr[data-id="${alpha.id}"]`).waitFor();
    await page.locator('#filters').getByLabel('Provider').selectOption('openai');
    await page.getByLabel('Search').fill('filtertest');
    await page.getByRole('button', { name: 'Apply' }).click();
    await poll(() => rows.count()).toBe(1);
    expect(await rows.first().getAttribute('data-id')).toBe(beta.id);
    expect(page.url()).toContain('provider=openai');
    await poll(() => page.locator('#live-state').textContent()).toBe('live');

    const gamma = await submitted({
      input: { prompt: 'filtertest gamma: arrives live' },
      config: { provider: 'openai' },
    });
    const other = await submitted({ input: { prompt: 'filtertest delta: offline, not shown' } });
    await page.locator(`tr[data-id="${gamma.id}"]`).waitFor();
    expect(await rows.first().getAttribute('data-id')).toBe(gamma.id);
    await poll(() => page.locator(`tr[data-id="${gamma.id}"]`).getAttribute('data-status'), {
      timeout: 30_000,
    }).toBe('completed');
    await client.waitDone(other.id);
    expect(await page.locator(`tr[data-id="${other.id}"]`).count()).toBe(0);

    // A status count filters by its status.
    await page.getByRole('button', { name: 'Clear' }).click();
    await page.locator('#counts button[data-status=completed]').click();
    await poll(() =>
      rows.evaluateAll((trs) => [...new Set(trs.map((tr) => tr.getAttribute('data-status')))]),
    ).toEqual(['completed']);
    expect(page.url()).toContain('status=completed');
  });

  it('bulk-cancels by the current filter after saying how many', async () => {
    const later = new Date(Date.now() + 3600_000).toISOString();
    const queued = await Promise.all(
      [1, 2].map((i) => submitted({ input: { prompt: `bulkzz ${i}` }, run_at: later })),
    );
    const page = await open('/?q=bulkzz', { token: WRITE_TOKEN });
    await poll(() => page.locator('#task-table tbody tr').count()).toBe(2);
    await page.getByRole('button', { name: 'Cancel matching…' }).click();
    const dialog = page.getByRole('dialog');
    await poll(() => dialog.textContent()).toContain('2 queued or running tasks');
    await dialog.getByRole('button', { name: 'Cancel 2 tasks' }).click();
    for (const t of queued) {
      await poll(async () => (await client.get(t.id)).status).toBe('cancelled');
    }
    await poll(() => page.locator('#flash').textContent()).toContain('Cancelled 2');
  });

  it('shows a read-only token no actions; a write with that token is 403', async () => {
    const task = await submitted({ input: { prompt: 'read-only view: what is 6 * 7?' } });
    await client.waitDone(task.id);
    const page = await open('/', { token: READ_TOKEN });
    await page.locator(`tr[data-id="${task.id}"]`).waitFor();
    expect(await page.locator('#access').textContent()).toBe('read-only');
    for (const selector of ['#new-task', '#submit-form', '#bulk-cancel'])
      expect(await page.locator(selector).count(), selector).toBe(0);

    await page.locator(`tr[data-id="${task.id}"] a`).click();
    await poll(() => page.locator('#task-status').textContent()).toBe('completed');
    expect(await page.locator('#task-answer').textContent()).toContain('42');
    expect(await page.locator('#task-cancel, #task-rerun').count()).toBe(0);

    const res = await fetch(`${api.url}/v1/tasks`, {
      method: 'POST',
      headers: { authorization: `Bearer ${READ_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ input: { prompt: 'not allowed' } }),
    });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('forbidden');
  });

  it('shows the workers and the queue', async () => {
    const page = await open('/workers', { token: WRITE_TOKEN });
    const row = page.locator(`#workers-table tr[data-id="${worker.id}"]`);
    await row.waitFor();
    expect(await row.textContent()).toContain(`pid ${worker.proc.pid}`);
    expect(await row.textContent()).toContain('alive');
    await poll(() => page.locator('#queue').textContent()).toContain('Oldest queued');
  });

  it('fits a phone-wide screen and takes the keyboard; the list makes the screenshot', async () => {
    const narrow = await open('/', { token: WRITE_TOKEN, width: 390, height: 800 });
    await narrow.locator('#task-table tbody tr').first().waitFor();
    const width = Number(await narrow.evaluate('document.documentElement.scrollWidth'));
    expect(width).toBeLessThanOrEqual(390);
    // The keyboard reaches the page: the first Tab lands on the skip link, with a visible ring.
    await narrow.keyboard.press('Tab');
    expect(await narrow.evaluate('document.activeElement.textContent')).toBe('Skip to content');
    expect(await narrow.evaluate('getComputedStyle(document.activeElement).outlineStyle')).toBe(
      'solid',
    );

    // Realistic rows for the screenshot: done, failed, running, scheduled, a long prompt.
    const model = scriptedModel();
    openai.setHandler((request) =>
      request.prompt.includes('on-call report') ? { hang: true } : model(request),
    );
    const page = await open('/', { token: WRITE_TOKEN });
    await poll(() => page.locator('#live-state').textContent()).toBe('live');
    const tasks = [
      { input: { prompt: 'What is 1234 * 5678? Use the calculator.' }, config: { max_steps: 1 } },
      { input: { prompt: 'What time is it in Tokyo? Answer in one sentence.' } },
      {
        input: { prompt: `Summarise this incident log for the on-call channel:\n${LOG}` },
        config: { provider: 'openai' },
      },
      { input: { prompt: 'Send the weekly digest' }, run_at: '2030-01-01T09:00:00Z' },
      { input: { prompt: 'What is 17 * 23? Use the calculator.' }, config: { provider: 'openai' } },
      {
        input: { prompt: 'Draft the quarterly on-call report from the incident tickets.' },
        config: { provider: 'openai', tools: ['http_get', 'current_time'] },
      },
    ];
    const ids: string[] = [];
    for (const body of tasks) ids.push((await submitted(body)).id);
    await waitFor(async () => (await client.get(ids.at(-1)!)).status === 'running');
    await Promise.all(ids.slice(0, 3).map((id) => client.waitDone(id)));
    await poll(() => page.locator(`tr[data-id="${ids.at(-1)}"]`).getAttribute('data-status')).toBe(
      'running',
    );
    await page.screenshot({ path: await screenshotPath('dashboard-list.png') });
    openai.reset();
    await fetch(`${api.url}/v1/tasks/${ids.at(-1)}/cancel`, {
      method: 'POST',
      headers: { authorization: `Bearer ${WRITE_TOKEN}` },
    });
  });
});
