/**
 * The OpenAPI 3.1 document (`GET /openapi.json`) and a docs page that needs
 * no internet (`GET /docs`, Swagger UI with its files served from the
 * swagger-ui-dist package). hono-openapi walks the app's routes and reads the
 * `describeRoute(…)` each route carries; the schemas in it are the valibot
 * schemas the routes validate with (request side) and api/openapi-schemas.ts
 * (answers), converted by @valibot/to-json-schema — nothing is written twice.
 *
 * Both are public like /healthz (they describe the API, they grant nothing);
 * an open API's Host/Origin guard still applies to them.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { swaggerUI } from '@hono/swagger-ui';
import type { Hono, MiddlewareHandler } from 'hono';
import { describeRoute, openAPIRouteHandler, resolver, uniqueSymbol } from 'hono-openapi';
import type { GenericSchema } from 'valibot';
import type { Config } from '../shared/config.ts';
import { ApiError } from './errors.ts';
import { ErrorSchema } from './openapi-schemas.ts';

/**
 * JSON Schema 2020-12 (OpenAPI 3.1's dialect) of what a client sends: a
 * pipeline is read up to its first transformation (`"5"` before it becomes 5),
 * and checks JSON Schema cannot say (a custom predicate) are left to the prose.
 */
const CONVERSION = { options: { target: 'draft-2020-12', typeMode: 'input' } };

/** A valibot schema as hono-openapi takes it in `describeRoute`. */
export const schemaOf = (schema: GenericSchema) => resolver(schema, CONVERSION);

/** A JSON body or answer described by `schema`, with named examples. */
export function jsonContent(schema: GenericSchema, examples?: Record<string, unknown>) {
  return {
    'application/json': {
      schema: schemaOf(schema),
      ...(examples && {
        examples: Object.fromEntries(Object.entries(examples).map(([k, value]) => [k, { value }])),
      }),
    },
  };
}

/**
 * Documents the query string or path parameters of a route from the valibot
 * object schema its handler parses them with, without validating anything
 * itself: the handler keeps its own parsing and error messages. hono-openapi
 * reads the schema through `uniqueSymbol`, the hook it offers for middleware
 * of one's own.
 */
export function documentInput(target: 'query' | 'param', schema: GenericSchema) {
  const noop: MiddlewareHandler = async (_c, next) => {
    await next();
  };
  return Object.assign(noop, { [uniqueSymbol]: { target, ...schemaOf(schema) } });
}

const ERROR_MEANINGS: Record<number, string> = {
  400: 'invalid input (`details.issues` names each field at fault)',
  401: 'tokens are configured and no valid `Authorization: Bearer <token>` was sent',
  403:
    'API without tokens: a foreign `Host` or a cross-site `Origin`; with tokens: ' +
    'a read-only token (AGENTQ_API_READ_TOKENS) on a write (`forbidden`)',
  404: 'no such task',
  409: 'a conflict (the code says which)',
  413: 'the body is larger than the limit',
  415: 'the body is not `application/json`',
  429: 'too many open streams and long-polls; honour `Retry-After`',
  503: 'the database is unavailable; honour `Retry-After`',
  500: 'a bug; the details are in the log',
};

/** The error answers of a route, each with the one error shape. */
export function errorResponses(...statuses: number[]) {
  return Object.fromEntries(
    statuses.map((status) => [
      String(status),
      { description: ERROR_MEANINGS[status] ?? 'error', content: jsonContent(ErrorSchema) },
    ]),
  );
}

const require = createRequire(import.meta.url);
const { version } = require('../package.json') as { version: string };
const swaggerDir = dirname(require.resolve('swagger-ui-dist/package.json'));
/** The only files /docs needs; nothing else of node_modules is reachable. */
const ASSETS: Record<string, string> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
};
const ASSET_BASE = '/docs/assets';

/** Adds /openapi.json, /docs and the docs page's files to `app` (call after every route). */
export function mountOpenApi(app: Hono, config: Config): void {
  const secured = config.apiTokens.length > 0;
  const publicRoute = { tags: ['meta'], security: [] };

  app.get(
    '/openapi.json',
    describeRoute({
      ...publicRoute,
      operationId: 'getOpenApiDocument',
      summary: 'This document',
      responses: { 200: { description: 'OpenAPI 3.1 document' } },
    }),
    openAPIRouteHandler(app, {
      documentation: {
        openapi: '3.1.0',
        info: {
          title: 'agentq',
          version,
          description:
            'Run LLM agent tasks on Postgres: submit, read (or long-poll), list, cancel, ' +
            'and follow the step log as JSON or server-sent events.\n\n' +
            (secured
              ? 'Every `/v1` route needs `Authorization: Bearer <token>` (AGENTQ_API_TOKENS).'
              : 'This server has no tokens: it answers only to a localhost `Host` and refuses ' +
                'cross-site `Origin`s. With AGENTQ_API_TOKENS set, `/v1` needs a bearer token.'),
        },
        tags: [
          { name: 'tasks', description: 'Submit, read, list and cancel tasks' },
          { name: 'events', description: "A task's step log" },
          { name: 'queue', description: 'The queue and its workers, and live changes' },
          { name: 'meta', description: 'Health and this documentation (no token needed)' },
        ],
        components: {
          securitySchemes: {
            bearerAuth: {
              type: 'http',
              scheme: 'bearer',
              description: 'One of the tokens in AGENTQ_API_TOKENS',
            },
          },
        },
        // The routes under /v1 need the token only when tokens are configured;
        // the others say `security: []`.
        ...(secured && { security: [{ bearerAuth: [] }] }),
      },
      defaultValidationErrorResponse: false,
      // /openapi.json looks like a static file to hono-openapi; the asset route has no description.
      excludeStaticFile: false,
    }),
  );

  app.get(
    '/docs',
    describeRoute({
      ...publicRoute,
      operationId: 'getDocsPage',
      summary: 'This document as a page (Swagger UI, no internet needed)',
      responses: { 200: { description: 'HTML', content: { 'text/html': {} } } },
    }),
    swaggerUI({
      title: 'agentq API',
      url: '/openapi.json',
      // Served below from the package, not from a CDN.
      baseUrl: ASSET_BASE,
      // Swagger UI would otherwise send the document to an online validator.
      validatorUrl: 'none',
      deepLinking: true,
    }),
  );

  const cache = new Map<string, Buffer>();
  app.get(`${ASSET_BASE}/swagger-ui-dist/:file`, async (c) => {
    const file = c.req.param('file');
    const type = ASSETS[file];
    if (type === undefined) throw new ApiError(404, 'not_found', `no docs asset ${file}`);
    let body = cache.get(file);
    if (body === undefined) {
      body = await readFile(join(swaggerDir, file));
      cache.set(file, body);
    }
    return c.body(new Uint8Array(body), 200, {
      'content-type': type,
      'cache-control': 'public, max-age=86400',
    });
  });
}
