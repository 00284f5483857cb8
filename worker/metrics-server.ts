/**
 * The worker's own GET /metrics (a worker has no HTTP server otherwise): a
 * small node:http listener on HOST:AGENTQ_METRICS_PORT, started only when
 * that is set. Auth as the API's /metrics: the AGENTQ_API_TOKENS bearer
 * tokens unless AGENTQ_METRICS_PUBLIC=true. Without tokens it answers only
 * requests that name a loopback Host, as the open API does (a web page on
 * this machine could otherwise read it through DNS rebinding).
 *
 * The same listener answers orchestrators' probes, which need no token and
 * name no host, database or secret: GET /healthz is 200 while the process
 * runs; GET /readyz is 200 only when `readiness` says so (the worker's: the
 * database answers, its migrations are current, the worker registered with
 * its first heartbeat, graphile-worker runs), else 503 not_ready.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { bearerTokenCheck } from '../shared/bearer-token.ts';
import type { Logger } from '../shared/logger.ts';
import { isLoopbackHost } from '../shared/loopback.ts';
import type { Registry } from '../shared/metrics/metrics-registry.ts';

export interface MetricsServerOptions {
  registry: Registry;
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  tokens: readonly string[];
  public: boolean;
  logger: Logger;
  /** Whether the worker can take tasks now; without it /readyz answers as /healthz. */
  readiness?: () => Promise<Readiness>;
}

/** Not ready: `reason` is a stable code, `message` a sentence without secrets. */
export type Readiness =
  | { ready: true }
  | { ready: false; reason: string; message: string; details?: Record<string, unknown> };

export interface RunningMetricsServer {
  url: string;
  stop(): Promise<void>;
}

export async function startMetricsServer(
  options: MetricsServerOptions,
): Promise<RunningMetricsServer> {
  const { registry, logger } = options;
  const authorized = bearerTokenCheck(options.tokens);
  const needsToken = options.tokens.length > 0 && !options.public;

  const server = http.createServer((req, res) => {
    const reply = (status: number, code: string, message: string, headers = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify({ error: { code, message } }));
    };
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (!ROUTES.has(path)) return reply(404, 'not_found', `no route ${req.method} ${path}`);
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return reply(405, 'method_not_allowed', `GET ${path} only`, { allow: 'GET, HEAD' });
    if (path !== '/metrics') return probe(path, req, res);
    if (options.tokens.length === 0 && !isLoopbackHost(hostnameOf(req.headers.host))) {
      return reply(403, 'forbidden_host', 'without tokens, /metrics answers only a loopback Host');
    }
    if (needsToken && !authorized(req.headers.authorization)) {
      return reply(401, 'unauthorized', 'a valid bearer token is required', {
        'www-authenticate': 'Bearer realm="agentq"',
      });
    }
    registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (err: unknown) => {
        logger.error({ err }, 'metrics: collecting failed');
        reply(500, 'internal_error', 'collecting the metrics failed (see the worker log)');
      },
    );
  });

  /** /healthz and /readyz: no token, no Host check; they say up or ready and nothing else. */
  function probe(path: string, req: http.IncomingMessage, res: http.ServerResponse) {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : JSON.stringify(body));
    };
    if (path === '/healthz' || !options.readiness) return send(200, { status: 'ok' });
    options.readiness().then(
      (r) =>
        r.ready
          ? send(200, { status: 'ready' })
          : send(503, {
              error: {
                code: 'not_ready',
                message: r.message,
                details: { reason: r.reason, ...r.details },
              },
            }),
      (err: unknown) => {
        logger.warn({ err }, 'readiness check failed');
        send(503, {
          error: { code: 'not_ready', message: 'the readiness check failed (see the worker log)' },
        });
      },
    );
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  const url = `http://${host}:${port}/metrics`;
  logger.info({ url }, 'worker metrics listening');
  return {
    url,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

const ROUTES = new Set(['/metrics', '/healthz', '/readyz']);

/** The name in a Host header, without its port; '' when absent or unparsable. */
function hostnameOf(host: string | undefined): string {
  try {
    return new URL(`http://${host ?? ''}`).hostname;
  } catch {
    return '';
  }
}
