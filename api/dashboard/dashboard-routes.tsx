/**
 * The dashboard, outside /v1: page shells at `/`, `/tasks/:id` and
 * `/workers`, and their script and stylesheet under `/dashboard/assets/`.
 * The pages hold no task data, so they need no token (the script sends it
 * with every /v1 request); an open API's Host/Origin guard still applies.
 * Every answer carries a strict Content-Security-Policy: scripts, styles and
 * connections from this origin only, nothing inline.
 */
import { readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Hono, type MiddlewareHandler } from 'hono';
import { etag } from 'hono/etag';
import { describeRoute } from 'hono-openapi';
import type { JSX } from 'hono/jsx/jsx-runtime';
import type { Config } from '../../shared/config.ts';
import { ApiError } from '../errors.ts';
import { parseTaskId, TaskIdParams } from '../tasks/task-id.ts';
import { documentInput } from '../openapi.ts';
import { PageLayout, type PageName } from './page-layout.tsx';
import { TaskListPage } from './task-list-page.tsx';
import { TaskPage } from './task-page.tsx';
import { WorkersPage } from './workers-page.tsx';

const CSP = [
  "default-src 'self'",
  "base-uri 'none'",
  "object-src 'none'",
  "frame-ancestors 'none'",
  "form-action 'self'",
].join('; ');

const securityHeaders: MiddlewareHandler = async (c, next) => {
  await next();
  c.header('Content-Security-Policy', CSP);
  c.header('X-Content-Type-Options', 'nosniff');
  c.header('Referrer-Policy', 'no-referrer');
};

const ASSET_DIR = fileURLToPath(new URL('./assets/', import.meta.url));
const ASSET_TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

const pageDocs = (operationId: string, summary: string) =>
  describeRoute({
    tags: ['dashboard'],
    security: [],
    operationId,
    summary,
    description: 'A page shell of the dashboard (no task data: its script reads /v1).',
    responses: { 200: { description: 'HTML', content: { 'text/html': {} } } },
  });

const assetDocs = describeRoute({
  tags: ['dashboard'],
  security: [],
  operationId: 'getDashboardAsset',
  summary: "The dashboard's script modules, stylesheet and icon",
  responses: {
    200: {
      description: 'the file',
      content: { 'text/javascript': {}, 'text/css': {}, 'image/svg+xml': {} },
    },
    404: { description: 'no such file' },
  },
});

export function dashboardRoutes(config: Config) {
  const app = new Hono();
  const authRequired = config.apiTokens.length > 0;

  const render = async (title: string, page: PageName, body: JSX.Element) => {
    const html = await (
      <PageLayout title={title} page={page} authRequired={authRequired}>
        {body}
      </PageLayout>
    ).toString();
    return `<!DOCTYPE html>${html}`;
  };

  // Per route, not `use('*')`: mounted at '/', that would cover every route of the API
  // (and break /docs, whose page has an inline script).
  app.get(
    '/',
    pageDocs('getDashboard', 'Dashboard: the live task list'),
    securityHeaders,
    async (c) => c.html(await render('Tasks', 'tasks', <TaskListPage />)),
  );
  app.get(
    '/tasks/:id',
    pageDocs('getDashboardTask', 'Dashboard: one task and its live step log'),
    documentInput('param', TaskIdParams),
    securityHeaders,
    async (c) => {
      const id = parseTaskId(c.req.param('id'));
      return c.html(await render(`Task ${id.slice(0, 8)}`, 'task', <TaskPage id={id} />));
    },
  );
  app.get(
    '/workers',
    pageDocs('getDashboardWorkers', 'Dashboard: workers and queue'),
    securityHeaders,
    async (c) => c.html(await render('Workers', 'workers', <WorkersPage />)),
  );

  // Only the files in the folder when the app was built: nothing else is reachable.
  const files = new Set(readdirSync(ASSET_DIR).filter((f) => extname(f) in ASSET_TYPES));
  const cache = new Map<string, Uint8Array<ArrayBuffer>>();
  app.get('/dashboard/assets/:file', assetDocs, securityHeaders, etag(), async (c) => {
    const file = c.req.param('file');
    if (!files.has(file)) throw new ApiError(404, 'not_found', `no dashboard asset ${file}`);
    let body = cache.get(file);
    if (body === undefined) {
      body = new Uint8Array(await readFile(join(ASSET_DIR, file)));
      cache.set(file, body);
    }
    return c.body(body, 200, {
      'content-type': ASSET_TYPES[extname(file)]!,
      // Revalidated on each load, so a new version is picked up at once.
      'cache-control': 'no-cache',
    });
  });
  return app;
}
