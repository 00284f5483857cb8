/**
 * GET /v1/me: what the caller's credentials allow, so a client (the
 * dashboard) can hide the actions a read-only token would be refused.
 */
import { Hono } from 'hono';
import { describeRoute } from 'hono-openapi';
import * as v from 'valibot';
import type { AppDeps } from './app-deps.ts';
import { errorResponses, jsonContent } from './openapi.ts';

export const MeSchema = v.pipe(
  v.strictObject({
    access: v.pipe(
      v.picklist(['write', 'read']),
      v.description('`read`: a token from AGENTQ_API_READ_TOKENS; every write answers 403'),
    ),
    auth: v.pipe(
      v.boolean(),
      v.description('false: the server has no tokens (loopback only) and grants `write`'),
    ),
  }),
  v.metadata({ ref: 'Me', description: 'What the credentials of this request allow.' }),
);

const meDocs = describeRoute({
  tags: ['meta'],
  operationId: 'getMe',
  summary: "What this request's token allows",
  responses: {
    200: { description: 'the access granted', content: jsonContent(MeSchema) },
    ...errorResponses(401, 403, 500),
  },
});

export function meRoutes(deps: AppDeps) {
  const app = new Hono();
  const auth = deps.config.apiTokens.length > 0;
  app.get('/me', meDocs, (c) =>
    c.json({ access: c.get('access') ?? 'write', auth } satisfies v.InferOutput<typeof MeSchema>),
  );
  return app;
}
