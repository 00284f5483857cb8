/**
 * One OpenTelemetry SERVER span per HTTP request, named `{method} {route}`
 * (`GET /v1/tasks/:id`) with the HTTP semantic-convention attributes. A
 * `traceparent` header from the client makes it a child of the client's span.
 * The span is the active context while the route runs, which is how a submit
 * stores it on the task (see shared/trace-context.ts).
 *
 * With tracing off the tracer, propagator and context manager are the API's
 * no-ops: a few cheap calls per request and nothing recorded. A streamed
 * response's span ends when its headers are sent, not when the stream closes.
 */
import {
  context,
  propagation,
  SpanKind,
  SpanStatusCode,
  trace,
  type TextMapGetter,
  type Tracer,
} from '@opentelemetry/api';
import type { Context as HonoContext, MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';

// Methods the HTTP conventions name; any other is reported as `_OTHER`.
const KNOWN_METHODS = new Set([
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'CONNECT',
  'OPTIONS',
  'TRACE',
  'PATCH',
]);

const headerGetter: TextMapGetter<Headers> = {
  get: (headers, key) => headers.get(key) ?? undefined,
  keys: (headers) => [...headers.keys()],
};

export function requestSpan(tracer: Tracer): MiddlewareHandler {
  return async (c, next) => {
    const parent = propagation.extract(context.active(), c.req.raw.headers, headerGetter);
    const original = c.req.method;
    const method = KNOWN_METHODS.has(original) ? original : '_OTHER';
    const span = tracer.startSpan(
      method === '_OTHER' ? 'HTTP' : method,
      {
        kind: SpanKind.SERVER,
        attributes: {
          'http.request.method': method,
          ...(method === '_OTHER' ? { 'http.request.method_original': original } : {}),
          'url.path': c.req.path,
          'url.scheme': c.req.url.startsWith('https:') ? 'https' : 'http',
        },
      },
      parent,
    );
    try {
      await context.with(trace.setSpan(parent, span), next);
    } finally {
      const route = routeOf(c);
      if (route !== undefined) {
        span.setAttribute('http.route', route);
        span.updateName(`${method === '_OTHER' ? 'HTTP' : method} ${route}`);
      }
      const status = c.res.status;
      span.setAttribute('http.response.status_code', status);
      // For a server, only 5xx is its own failure; a 4xx is the client's.
      if (status >= 500) {
        span.setAttribute('error.type', String(status));
        span.setStatus({ code: SpanStatusCode.ERROR });
      }
      span.end();
    }
  };
}

/**
 * The route pattern the request matched (`/v1/tasks/:id`), never the raw path;
 * undefined when only middleware matched (a 404). Middleware registered with
 * `use` is method `ALL`; the first route with a method is the one dispatched.
 */
function routeOf(c: HonoContext): string | undefined {
  return matchedRoutes(c).find((r) => r.method !== 'ALL')?.path;
}
