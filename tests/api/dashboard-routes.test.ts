// The dashboard's pages and files, served by the API outside /v1: shells with
// no task data (so no token needed even when tokens are set), a strict CSP,
// only the asset folder's files, and an open API's Host guard still in force.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorOf, startTestApi } from '../helpers/api-harness.ts';
import { testConfig } from '../helpers/test-config.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';

let tdb: TestDatabase;
let open: Awaited<ReturnType<typeof startTestApi>>;
let secured: Awaited<ReturnType<typeof startTestApi>>;
const SECRET_PROMPT = 'dashboard shell secret prompt';

beforeAll(async () => {
  tdb = await createTestDatabase();
  [open, secured] = await Promise.all([
    startTestApi(tdb, testConfig(), { listenPort: () => 8080 }),
    startTestApi(tdb, testConfig({ AGENTQ_API_TOKENS: 'dash-token' })),
  ]);
});
afterAll(async () => {
  await Promise.all([open?.stop(), secured?.stop()]);
  await tdb?.drop();
});

describe('dashboard pages', () => {
  it('serves the shells without a token, with a strict CSP and no task data', async () => {
    const res = await secured.post(
      '/v1/tasks',
      { input: { prompt: SECRET_PROMPT } },
      { authorization: 'Bearer dash-token' },
    );
    const { id } = (await res.json()) as { id: string };
    for (const path of ['/', `/tasks/${id}`, '/workers']) {
      const page = await secured.get(path);
      expect(page.status, path).toBe(200);
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
      expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
      const html = await page.text();
      expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
      expect(html).toContain('<body data-page=');
      expect(html).toContain('data-auth="token"');
      expect(html).toContain('src="/dashboard/assets/dashboard.js"');
      expect(html).not.toContain(SECRET_PROMPT);
      // Nothing inline for the CSP to refuse.
      expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>|\sstyle=|\son[a-z]+=/);
    }
    expect((await secured.get('/v1/tasks')).status).toBe(401);
    // /docs keeps its own page (its inline script) without the dashboard's CSP.
    expect((await secured.get('/docs')).headers.get('content-security-policy')).toBeNull();
  });

  it('says when no token is needed, and a bad task id is a 400', async () => {
    const page = await open.get('http://localhost:8080/');
    expect(await page.text()).toContain('data-auth="none"');
    const bad = await open.get('http://localhost:8080/tasks/not-a-task');
    expect(bad.status).toBe(400);
    expect((await errorOf(bad)).code).toBe('invalid_id');
  });

  it('serves the asset folder and nothing else', async () => {
    const js = await secured.get('/dashboard/assets/dashboard.js');
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(await js.text()).toContain("from './api-client.js'");
    expect(
      (await secured.get('/dashboard/assets/dashboard.css')).headers.get('content-type'),
    ).toMatch(/^text\/css/);
    for (const file of ['nope.js', '..%2Fdashboard-routes.tsx', '%2E%2E%2F%2E%2E%2Fapp.ts']) {
      const res = await secured.get(`/dashboard/assets/${file}`);
      expect(res.status, file).toBe(404);
    }
  });

  it('keeps the open API guard: a foreign Host gets no page', async () => {
    const res = await open.get('http://attacker.example:8080/');
    expect(res.status).toBe(403);
    expect((await errorOf(res)).code).toBe('forbidden_host');
  });
});
